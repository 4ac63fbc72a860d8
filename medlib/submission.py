"""`python -m medlib predict`: the course's submission CSV (id,Predicted) for every candidateN.npz in a folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import atomic
from .config import check_device
from .data.cubes import M3DV
from .data.m3dv import list_candidates, load_m3dv, read_labels
from .engine.checkpoint import load_model
from .engine.device import resolve_device
from .engine.loop import predict
from .engine.training import fitting_eval_batch
from .ensemble import average
from .errors import MedlibError
from .metrics import evaluate
from .tasks import BINARY

HEADER = "id,Predicted"  # the course's submission format, the only kind of file --out may replace


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out(out_csv, input_dir: Path, inputs) -> None:
    """Refuse an --out that would overwrite what predict reads (a checkpoint, the labels, a sample under --input) or
    an existing file that is not a submission CSV: a typo must never destroy a checkpoint or a sample."""
    if not str(out_csv).strip() or Path(out_csv).is_dir():
        raise MedlibError(
            f"--out {str(out_csv)!r} is {'a folder' if str(out_csv).strip() else 'empty'}; pass the CSV "
            "file to write, e.g. --out submission.csv."
        )
    out = Path(out_csv).resolve()
    for flag, p in inputs:
        if out == Path(p).resolve():
            raise MedlibError(
                f"--out {out_csv} is the {flag} file itself, which predict reads; pass a new file name, "
                "e.g. --out submission.csv."
            )
    if _is_under(out, input_dir.resolve()):
        raise MedlibError(
            f"--out {out_csv} lies inside --input {input_dir}, among the samples; write the CSV "
            "elsewhere, e.g. --out submission.csv."
        )
    if out.is_file():
        try:
            with open(out, "rb") as f:
                first = f.readline().decode("utf-8", "replace").strip()
        except OSError:
            first = ""
        if first != HEADER:
            raise MedlibError(
                f"--out {out_csv} exists and is not a submission CSV (its first line is not "
                f"{HEADER!r}); predict replaces only its own CSVs: pass a new file name."
            )


def check_candidate_names(input_dir: Path, names: list[str]) -> None:
    """Refuse files predict would read wrongly: a sample with an upper-case extension (skipped) or with spaces
    around its name (an id the course's scorer would not match)."""
    for p in sorted(input_dir.iterdir()):
        if p.suffix.lower() == ".npz" and p.suffix != ".npz":
            raise MedlibError(
                f"--input {input_dir} holds {p.name}, which predict would skip (it reads *.npz only); "
                f"rename it to {p.stem.strip()}.npz."
            )
    for n in names:
        if n != n.strip():
            raise MedlibError(
                f"--input {input_dir} holds {n + '.npz'!r}, whose name has spaces around it (the "
                f"submission id would too); rename it to {n.strip()}.npz."
            )


def _samples(path, cfg, input_dir: Path, names: list[str]):
    """The samples cut as checkpoint `path` was trained (its crop, mask, dilate); an error names the checkpoint."""
    try:
        return load_m3dv(
            input_dir, labels=False, crop=cfg.crop, mask=cfg.mask, dilate=cfg.dilate, ids=names, cache=False
        )
    except MedlibError as e:
        if "crop" not in str(e):
            raise
        why = str(e).split("; pass a smaller --crop")[0]
        raise MedlibError(
            f"{why}: checkpoint {path} was trained on {cfg.crop}³ cubes (its config) and cannot score "
            "smaller samples; pass samples at least that large, or a checkpoint trained with a smaller "
            "crop."
        ) from None


def predict_folder(checkpoints, input_dir, out_csv=None, labels=None, weights=None, device="auto") -> pd.DataFrame:
    """Crop and mask as each checkpoint was trained, average P(class 1), optionally write the CSV."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise MedlibError(f"--input {input_dir} is not a folder of candidateN.npz files.")
    if out_csv is not None:
        inputs = [("--checkpoint", c) for c in checkpoints] + ([("--labels", labels)] if labels is not None else [])
        check_out(out_csv, input_dir, inputs)
    table = read_labels(labels) if labels is not None else None  # a bad labels file fails before anything is written
    names = list_candidates(input_dir)
    check_candidate_names(input_dir, names)
    dev = resolve_device(check_device(device))
    probs = []
    for path in checkpoints:
        net, cfg, meta = load_model(path)
        if meta.dims != 3 or cfg.dataset != M3DV:
            raise MedlibError(f"{path} was trained on {cfg.dataset}, not M3DV; predict needs an M3DV checkpoint.")
        ds = _samples(path, cfg, input_dir, names)
        X = ds["all"].X
        batch = fitting_eval_batch(net, tuple(X.shape[1:]), dev, cfg.eval_batch_size, len(X))
        probs.append(predict(net.to(dev), X, dev, meta.task, batch_size=batch)[0])
    p = average(probs, weights)
    df = pd.DataFrame({"id": names, "Predicted": p[:, 1]})
    if table is not None:
        known = [i for i, n in enumerate(names) if n in table]
        if not known:
            raise MedlibError(f"--labels {labels} names none of the {len(names)} samples in {input_dir}.")
        y = [table[names[i]] for i in known]
        df.attrs["metrics"] = {**evaluate(y, p[known], BINARY), "n": len(known)}
    if out_csv is not None:  # last: a failure above leaves no CSV behind
        atomic.write_text(out_csv, df.to_csv(index=False))
    return df


def cmd_predict(args) -> None:
    df = predict_folder(args.checkpoint, args.input, args.out, args.labels, args.weights, args.device)
    print(f"wrote {len(df)} predictions to {args.out}")
    if "metrics" in df.attrs:
        m = df.attrs["metrics"]
        print(f"AUC {m['auc']:.4f}  ACC {m['acc']:.4f}  (n={m['n']} labelled)")


def add_command(sub) -> None:
    p = sub.add_parser("predict", help="submission CSV (id,Predicted) from one or more M3DV checkpoints")
    p.add_argument("--checkpoint", nargs="+", required=True, help="one or more best.pt; several are averaged")
    p.add_argument("--input", required=True, help="folder of candidateN.npz")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--labels", default=None, help="labels CSV (name,label or name,lable): print AUC too")
    p.add_argument("--weights", nargs="+", type=float, default=None, help="ensemble weights, one per checkpoint")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)
