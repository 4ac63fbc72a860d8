"""One house: every medlib module read with `ast` (nothing imported), checked against the package's layering.

Layers, lowest first (a lower layer never imports a higher one):

    leaves (errors, version, tasks, choices, atomic, progress) -> ops, metrics -> data -> models -> config ->
    plans, engine -> results -> experiments -> analysis -> report -> book -> submission, cli

(plans are data just above config, so results labels records by them; the workflows in experiments build on the
one results module; analysis: what medlib measures about networks and curves, the trend test and Grad-CAM; report:
tables and figures; book: the notebooks' machinery, their set-up, execution and offline HTML.)

* Imports of medlib itself sit at the top of their modules, never inside a function; a function may import
  only an optional or heavy third-party module lazily (OPTIONAL_LAZY).
* No two top-level units (subpackages and modules directly under medlib/) import each other; in fact the
  units form no cycle at all, and nothing imports the package root (`medlib/__init__.py` only re-exports).
* No function is longer than MAX_FUNCTION_LINES.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medlib"
MAX_FUNCTION_LINES = 60

# third-party modules a function may import lazily, and why
OPTIONAL_LAZY = {
    "IPython": "notebooks extra (ipykernel)",
    "ipywidgets": "notebooks extra (widget progress bars), probed to choose them",
    "jinja2": "notebooks extra",
    "jupyter_core": "notebooks extra (ipykernel's), for the kernel folder of `medlib kernel` only",
    "latex2mathml": "notebooks extra",
    "nbclient": "notebooks extra",
    "nbconvert": "notebooks extra",
    "nbformat": "notebooks extra",
    "plotly": "heavy, for figures only",
    "resource": "Unix only",
    "scipy": "scipy.stats is slow to import, for the trend test only",
    "skimage": "slow to import, for Otsu thresholds and marching cubes only",
    "sklearn": "slow to import, for its version string only",
}
# (module file, imported module) still lazy in files another change is editing; remove each once it is moved
PENDING_LAZY: set = set()


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts), path.name == "__init__.py"


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel.with_suffix(".py")).is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def _targets(node, module: str, is_package: bool) -> list[str]:
    """The medlib modules an import statement names (a `from X import name` names X.name when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "medlib"]
    if node.level:
        base = module.split(".")[: len(module.split(".")) - (node.level - (1 if is_package else 0))]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "medlib":
        return []
    return [f"{source}.{a.name}" if _is_module(f"{source}.{a.name}") else source for a in node.names]


def _imports():
    """(file relative to medlib/, module, imported medlib modules, third-party module or None, inside a function)."""
    for path, module, is_package in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                in_function.update(id(n) for n in ast.walk(fn) if n is not fn)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                medlib = _targets(node, module, is_package)
                other = None
                if not medlib:
                    other = node.names[0].name if isinstance(node, ast.Import) else node.module
                rel = path.relative_to(PACKAGE).as_posix()
                yield rel, module, medlib, other, id(node) in in_function, node.lineno


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _unit_graph() -> dict[str, set[str]]:
    graph = defaultdict(set)
    for _, module, targets, _, _, _ in _imports():
        for t in targets:
            if _unit(t) != _unit(module) and module != "medlib":
                graph[_unit(module)].add(_unit(t))
    return graph


def test_medlib_imports_are_at_the_top():
    lazy = [
        f"{rel}:{line} imports {', '.join(targets)} inside a function"
        for rel, _, targets, _, inside, line in _imports()
        if inside and targets
    ]
    assert lazy == [], "\n".join(lazy)


def test_only_optional_third_party_modules_are_imported_lazily():
    lazy = [
        f"{rel}:{line} imports {other} inside a function"
        for rel, _, _, other, inside, line in _imports()
        if inside
        and other
        and other.split(".")[0] not in OPTIONAL_LAZY
        and (rel, other.split(".")[0]) not in PENDING_LAZY
    ]
    assert lazy == [], "\n".join(lazy) + "\n(move it to the top, or add an optional module to OPTIONAL_LAZY)"


def test_nothing_imports_the_package_root():
    root = [f"{rel}:{line}" for rel, module, targets, _, _, line in _imports() if "medlib" in targets]
    assert root == [], f"import the defining module (e.g. medlib.version), not the package root: {root}"


def test_no_two_units_import_each_other():
    graph = _unit_graph()
    pairs = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph.get(b, ())})
    assert pairs == [], f"units that import each other: {pairs}; move what both need to the lower one"


def test_units_form_no_cycle():
    graph, state, stack = _unit_graph(), {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(v) :] + [v]))
            if v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            visit(u)


@pytest.mark.parametrize(
    "lower, higher",
    [
        ("medlib.data", "medlib.engine"),
        ("medlib.ops", "medlib.data"),
        ("medlib.metrics", "medlib.data"),
        ("medlib.models", "medlib.engine"),
        ("medlib.plans", "medlib.engine"),
        ("medlib.engine", "medlib.results"),
        ("medlib.results", "medlib.experiments"),
        ("medlib.experiments", "medlib.report"),
        ("medlib.results", "medlib.analysis"),
        ("medlib.results", "medlib.report"),
        ("medlib.analysis", "medlib.report"),
        ("medlib.report", "medlib.book"),
        ("medlib.report", "medlib.cli"),
        ("medlib.book", "medlib.cli"),
    ],
)
def test_a_lower_layer_never_reaches_a_higher_one(lower, higher):
    graph, seen, todo = _unit_graph(), set(), [lower]
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo.extend(graph.get(u, ()))
    assert higher not in seen, f"{lower} reaches {higher}"


def test_no_function_is_longer_than_the_limit():
    long = []
    for path, _, _ in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE).as_posix()}:{node.lineno} {node.name}() has {n} lines")
    assert long == [], "\n".join(long) + f"\n(split it into named steps of at most {MAX_FUNCTION_LINES} lines)"
