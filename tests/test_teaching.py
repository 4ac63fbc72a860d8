"""What a reader of notebook 02 sees comes from real runs and the records: no shrunken run in the committed
outputs, claims computed from the reference tables, a saliency map that depends on the weights."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from medlib import plans, results
from medlib.analysis import saliency
from medlib.engine import run_dir
from medlib.ensemble import average
from medlib.metrics import auc
from medlib.models import build_model
from medlib.models.conv import OnePositionAsMatmul
from medlib.report import layers, reference, reproduction, tables

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
RESULTS = Path(__file__).resolve().parents[1] / "results"
RUN_NAME = re.compile(r"\b([a-z0-9]+mnist(?:3d)?_\d+-[a-z0-9_]+-s(\d+)-[0-9a-f]{10})\b")


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, 4)
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", ""))
            for kind in ("text/plain", "text/html", "text/markdown"):
                texts.append(str(out.get("data", {}).get(kind, "")))
    return "\n".join(texts)


def test_notebook_02_trains_nothing_smaller_than_its_plan():
    """Every run folder named in 02's committed outputs is a plan config (any seed), never a quick subset."""
    text = _outputs(NOTEBOOKS / "02_decathlon.ipynb")
    assert "training images, " not in text.replace("all training images, ", "")  # '≤ 512 training images'
    names = {m.group(1): int(m.group(2)) for m in RUN_NAME.finditer(text)}
    assert names, "the committed notebook shows no run trained in it"
    planned = {run_dir(cfg.replace(seed=seed)).name for _, cfg in plans.plan("gpu") for seed in set(names.values())}
    assert set(names) <= planned, set(names) - planned


def test_report1_readings_are_the_reference_numbers():
    text = tables.report1_readings()
    r1 = reference.report1().set_index(["model", "dataset", "split", "metric"])["value"]
    assert f"test {r1[('resnet18', 'breastmnist', 'test', 'AUC')]:.3f}" in text
    assert f"ACC {r1[('resnet18', 'chestmnist', 'test', 'ACC')]:.3f}" in text
    off = reference.official_scores("resnet50", 28)["test_auc"]
    ahead = [d for d in reference.REPORT1_DATASETS if r1[("resnet50", d, "test", "AUC")] >= off[d]]
    assert ahead == ["breastmnist"] and "breastmnist 0.871 vs 0.857" in text  # not "trails on every set"
    t = pd.Series(
        {d: r1[("resnet18", d, "test", "AUC")] - r1[("resnet50", d, "test", "AUC")] for d in reference.REPORT1_DATASETS}
    )
    assert f"higher test AUC on {(t > 0).sum()} of 10 sets, ties on {(t == 0).sum()}" in text


def test_departures_name_what_the_records_show():
    rec = results.records(RESULTS)
    text = tables.report1_departures(rec)
    d = results.select(rec, "report1", dataset="breastmnist", model="resnet50")
    if d.empty:
        return
    best = ", ".join(str(b) for b in sorted(d["best_epoch"].astype(int)))
    assert f"best validation AUC at epochs {best} of 50" in text


def test_beside_sets_a_new_seed_among_the_committed_ones():
    rec = results.records(RESULTS)
    d = results.select(rec, "report1", dataset="breastmnist", model="resnet18")
    new, old = d.iloc[[0]], d.iloc[1:]
    note = reproduction.where_it_lands(old, new).data
    lo, hi = old["test_auc"].min(), old["test_auc"].max()
    assert f"range {lo:.3f}–{hi:.3f}" in note
    assert ("inside" in note) == (lo <= new["test_auc"].iloc[0] <= hi)


def test_rank_correlation_is_spearmans():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 7, 7)), rng.random((3, 7, 7))
    b[0] = a[0] * 2 + 0.1  # a monotone copy: rho 1
    ours = saliency.rank_correlation(torch.as_tensor(a), torch.as_tensor(b))
    for i in range(3):
        assert abs(ours[i] - spearmanr(a[i].ravel(), b[i].ravel())[0]) < 1e-9
    assert abs(ours[0] - 1) < 1e-12


def test_randomized_copy_redraws_weights_and_leaves_the_network_alone():
    torch.manual_seed(0)
    net = build_model("resnet18", 1, 2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    twin = saliency.randomized_copy(net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the trained net is untouched
    conv = [k for k in before if k.endswith("conv1.weight")][0]
    assert not torch.equal(twin.state_dict()[conv], before[conv])


def test_sanity_layer_keeps_a_spatial_map_at_28px():
    x = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    net = build_model("resnet18", 1, 2, stem="imagenet")  # Report 1's stem: layer4 is 1x1 at 28 px
    layer, name, shape = saliency.spatial_layer(net, x)
    assert name == "layer2" and shape == (4, 4) and layer is net.layer2
    _, name, shape = saliency.spatial_layer(build_model("resnet18", 1, 2, stem="small"), x)  # 3x3 stem: 4x4 at layer4
    assert name == "layer4" and shape == (4, 4)


def test_notebook_01s_stem_claims_hold():
    """01 [17]: 35 M vs 457 M multiply-adds at 28 px; the official ResNet-18 beats Report 1's on all ten sets."""
    cells = nbformat.read(NOTEBOOKS / "01_resnet_from_scratch.ipynb", 4).cells
    text = next(c.source for c in cells if "multiply-adds instead of" in c.source)
    small, imagenet = layers.macs("resnet18", 28, "small") / 1e6, layers.macs("resnet18", 28, "imagenet") / 1e6
    flat = re.sub(r"\s+", " ", text)
    assert f"costs {imagenet:.0f} M multiply-adds instead of {small:.0f} M" in flat
    net = layers.build("resnet18", "imagenet")  # every convolution as nn.Conv2d computes it, padding taps included
    for m in net.modules():
        if isinstance(m, OnePositionAsMatmul):
            m.one_position = False
    assert f"A plain convolution would spend {layers.macs('resnet18', 28, 'imagenet', net=net) / 1e6:.0f} M" in flat
    rows = json.loads((ROOT / "benchmarks" / "results" / "cpu2d-avx2.json").read_text())["results"]
    speed = {r["mode"]: r["per_s"] for r in rows if not r.get("competing_processes")}
    assert f"train {speed['contiguous'] / speed['before']:.1f}× faster" in flat
    r1 = reference.report1()
    r1 = r1[(r1["model"] == "resnet18") & (r1["split"] == "test") & (r1["metric"] == "AUC")].set_index("dataset")
    off = reference.official_scores("resnet18", 28)["test_auc"]
    assert "beats Report 1's test AUC on all ten" in text.replace("\n", " ").replace("   ", " ")
    assert all(off[d] > r1.at[d, "value"] for d in reference.REPORT1_DATASETS)


def test_simplex_grid_is_every_weighting_of_the_step():
    from math import comb

    grid = list(tables._simplex(4, 0.1))
    assert len(grid) == comb(10 + 3, 3) and all(abs(w.sum() - 1) < 1e-12 and (w >= 0).all() for w in grid)


def test_weighted_ensemble_weights_come_from_validation_alone():
    rec = results.records(RESULTS)
    t = tables.weighted_ensemble_table(rec)
    if t.empty:
        return
    assert list(t["ensemble"]) == ["best single model by validation AUC", "equal weights", "weights fit on validation"]
    d = results.select(rec, "report2")
    g = d[d["fold"] == 0].sort_values(["model", "mixup_alpha"])
    val = tables.ensemble_parts(g, "val")
    y = val[0]["label"].to_numpy()
    best = max(tables._simplex(len(g), 0.1), key=lambda w: auc(y, average(val[1], w), "binary-class"))
    names = [f"{r['model']} α{r['mixup_alpha']:g}" for _, r in g.iterrows()]
    expect = "f0: " + ", ".join(f"{n} {w:.1f}" for n, w in zip(names, best) if w > 0)
    assert t.iloc[2]["chosen on validation"].startswith(expect)


CUBE_RUN = re.compile(r"\b(m3dv-[a-z0-9_]+-f(?:\d+|all)-s(\d+)-[0-9a-f]{10})\b")


def test_notebook_04_trains_nothing_smaller_than_its_plan():
    """Every M3DV run folder named in 04's committed outputs is a plan config (any seed), never a quick subset,
    and the shipped-model section shows the records that ship weights, each with its run.json's SHA-256."""
    text = _outputs(NOTEBOOKS / "04_densenet_mixup.ipynb")
    names = {m.group(1): int(m.group(2)) for m in CUBE_RUN.finditer(text)}
    planned = {
        run_dir(cfg.replace(seed=seed)).name
        for _, cfg in plans.plan("gpu") + plans.plan("cpu")
        for seed in set(names.values()) | {0}
    }
    assert set(names) <= planned, set(names) - planned
    shipped = results.shipped(results.records(RESULTS))
    if shipped.empty:
        return
    for _, row in shipped.iterrows():
        assert row["label"] in text and row["weights"][:16] in text, row["label"]
    assert "No `report2` shipped-weights records" not in text


def test_notebook_04_tta_sentence_is_its_table():
    """The sentence under the test-time augmentation table restates the table's first and last rows."""
    nb = nbformat.read(NOTEBOOKS / "04_densenet_mixup.ipynb", 4)
    cell = next((c for c in nb.cells if c.cell_type == "code" and "reproduction.tta(REC)" in c.source), None)
    assert cell is not None
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in cell.outputs)
    md = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in cell.outputs)
    if "M3DV is not under the data root" in md or not html:
        return
    pooled = re.findall(r"Averaging the \d+ \w+ of each held-out cube .* pooled (\d\.\d{3}) → (\d\.\d{3})", md)
    assert pooled, md
    first, last = pooled[0]
    assert first in html and last in html


def test_seed_ensemble_is_the_mean_of_the_seeds_probabilities():
    """The seed-ensemble rows against sklearn on the averaged per-sample scores of the committed records."""
    from sklearn.metrics import roc_auc_score

    rec = results.records(RESULTS)
    t = tables.seed_ensemble_table(rec)
    if t.empty:
        return
    row = t[t["members"].str.startswith("average")].iloc[0]
    d = tables.seed_rows(rec)
    d = d[(d["model"] == row["model"]) & (d["mixup_alpha"] == row["mixup_alpha"])]
    aucs = []
    for _, g in d.groupby("fold"):
        s = [pd.read_csv(Path(p) / "test_scores.csv").set_index("id") for p in g["dir"]]
        mean = sum(x["score_1"] for x in s) / len(s)
        aucs.append(roc_auc_score(s[0]["label"], mean.loc[s[0].index]))
    assert row["test AUC (per fold)"] == results.fmt(np.mean(aucs), np.std(aucs, ddof=1), len(aucs))


def test_flaws_table_rows_are_the_committed_folds():
    """The flaws table's 'none' row is cv_table's baseline / mixup 0.2 row; each flaw row's test AUC is the mean
    of its five records' test AUC (sklearn on their scores), and the gap is val minus test per fold."""
    from sklearn.metrics import roc_auc_score

    rec = results.records(RESULTS)
    t = tables.flaws_table(rec)
    if t.empty:
        return
    cv = tables.cv_table(rec)
    base = cv[(cv["model"] == "baseline3d") & (cv["mixup_alpha"] == 0.2)].iloc[0]
    none = t[t["flaw put back"] == "none (medlib)"].iloc[0]
    assert none["test AUC"] == base["test AUC"] and none["pooled test AUC"] == base["pooled AUC"]
    for flaw, change in plans.REPORT2_FLAWS.items():
        d = results.select(rec, "report2-flaws", model="baseline3d", **change)
        if len(d) < 5:
            continue
        row = t[t["flaw put back"] == flaw].iloc[0]
        scores = [pd.read_csv(Path(p) / "test_scores.csv") for p in d["dir"]]
        aucs = [roc_auc_score(s["label"], s["score_1"]) for s in scores]
        assert row["test AUC"] == results.fmt(np.mean(aucs), np.std(aucs, ddof=1), len(aucs))
        assert row["val − test"] == f"{(d['val_auc'] - d['test_auc']).mean():+.3f}"
