"""medlib.report: reference loaders, Report 1's layout from run folders, Report 2's loss-curve cases, layer table."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from medlib import results
from medlib.analysis import diagnose
from medlib.config import TrainConfig
from medlib.engine import load_run, run_dir
from medlib.errors import MedlibError
from medlib.models import build_model, count_parameters
from medlib.report import layers, reference, tables

# ---------------------------------------------------------------- reference numbers


def test_reference_row_counts():
    r1 = reference.report1()
    assert len(r1) == 2 * 10 * 3 * 2  # models x datasets x splits x metrics
    assert set(r1["dataset"]) == set(reference.REPORT1_DATASETS)
    t = reference.report1_table("resnet18")
    assert t.shape == (6, 10) and list(t.index) == reference.ROWS
    assert t.at["testAUC", "breastmnist"] == 0.855 and t.at["testACC", "retinamnist"] == 0.455
    assert reference.report1_table("resnet50").at["trainAUC", "retinamnist"] == 0.956
    off = reference.official()
    assert len(off) == 12 * 7 + 6 * 8 and off["dataset"].nunique() == 18
    assert reference.official_scores("resnet18", 28).at["breastmnist", "test_auc"] == 0.901
    assert len(reference.report2()) == 8


def test_report2_figures_are_as_written():
    text = reference.report2_text()
    figs = reference.report2_figures()
    assert len(figs) == len(reference.REPORT2_FIGURES)
    for phrase in figs["as_written"]:
        assert phrase in text, phrase
    assert reference.report2_auc() == 0.66217


# ---------------------------------------------------------------- Report 2's loss-curve cases

E = np.arange(1, 31, dtype=float)
RNG = np.random.default_rng(0)
FALL = 2.0 * np.exp(-0.08 * E) + 0.1
FLAT = 0.5 + 0.002 * RNG.standard_normal(30)
RISE = 0.4 + 0.03 * E


def hist(train, val):
    return pd.DataFrame({"epoch": E[: len(train)], "train_loss": train, "val_loss": val})


@pytest.mark.parametrize(
    "train, val, case",
    [
        (FALL, 1.5 * np.exp(-0.07 * E) + 0.2, "both falling: still learning"),
        (FALL, FLAT, "train falling, val flat: overfitting"),
        (FALL, RISE, "train falling, val rising: overfitting"),
        (FLAT, FALL, "train flat, val falling: data problem"),
        (FLAT, FLAT[::-1], "both flat: plateau — lower lr or batch"),
        (RISE, RISE * 1.1, "both rising: bad architecture/hyper-parameters"),
    ],
)
def test_diagnose_cases(train, val, case):
    d = diagnose.diagnose(hist(train, val))
    assert d.case == case
    assert d.confident and d.report2
    assert (d.first_epoch, d.last_epoch) == (16, 30)  # the last half


def test_noise_is_not_a_trend():
    # large noise around a flat level: the relative slope may pass 1 %, the t-test must not
    noisy = 0.6 + 0.15 * np.random.default_rng(3).standard_normal(30)
    assert diagnose.trend(noisy[-15:], E[-15:]).direction == "flat"


def test_short_history_is_not_confident():
    d = diagnose.diagnose(hist(np.array([1.0, 0.8]), np.array([1.0, 0.9])))
    assert not d.confident
    assert d.case == "both falling: still learning"
    with pytest.raises(MedlibError, match="history"):
        diagnose.diagnose(pd.DataFrame({"train_loss": []}))


def test_tail_window():
    assert diagnose.tail_window(30) == (15, 30)
    assert diagnose.tail_window(4) == (1, 4)
    assert diagnose.tail_window(2) == (0, 2)


# ---------------------------------------------------------------- Report 1's Figure 2


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
@pytest.mark.parametrize("stem", ["imagenet", "small"])
def test_layer_params_sum_to_count_parameters(arch, stem):
    p = layers.stage_profile(arch, 224, stem)
    assert p.loc[layers.STAGES, "params"].sum() == p.at["total", "params"]
    assert p.at["total", "params"] == count_parameters(build_model(arch, 3, 1000, stem=stem))


def test_flops_match_the_papers():
    assert layers.macs("resnet18", 224) == pytest.approx(1.82e9, rel=0.01)
    assert layers.macs("resnet50", 224) == pytest.approx(4.09e9, rel=0.01)
    v1 = layers.stage_profile(net=layers.stride_on_1x1(layers.build("resnet50")))
    assert v1.at["total", "macs"] == pytest.approx(3.86e9, rel=0.01)
    assert layers.stage_profile("resnet18", 224).at["total", "params"] == layers.PUBLISHED["resnet18"]
    assert layers.stage_profile("resnet50", 224).at["total", "params"] == layers.PUBLISHED["resnet50"]


def test_output_sizes():
    p = layers.stage_profile("resnet18", 224, "imagenet")
    assert p.at["conv1", "output"] == (64, 112, 112) and p.at["conv5_x", "output"] == (512, 7, 7)
    # Report 1's stem at 28 px leaves a single pixel for conv5_x
    assert layers.stage_profile("resnet18", 28, "imagenet").at["conv5_x", "output"] == (512, 1, 1)
    assert layers.stage_profile("resnet50", 28, "small").at["conv5_x", "output"] == (2048, 4, 4)
    text = repr(layers.layer_table("resnet18"))
    assert "11,689,512" in text and "1,814.1" in text and repr(layers.layer_table("resnet18")) == text


# ---------------------------------------------------------------- tables from fake run folders


def fake_run(root, dataset="breastmnist", model="resnet18", seed=0, fold=0, auc=0.9, mixup=0.0, n_epochs=4):
    cfg = TrainConfig(
        dataset=dataset, model=model, seed=seed, fold=fold, mixup_alpha=mixup, epochs=n_epochs, max_train=64
    )
    folder = run_dir(cfg, root)
    folder.mkdir(parents=True)
    splits = {"train": auc + 0.05, "val": auc, "test": auc - 0.02}
    metrics = {s: {"auc": a, "acc": a - 0.1, "loss": 0.5, "n": 20} for s, a in splits.items()}
    (folder / "run.json").write_text(
        json.dumps(
            {
                "status": "complete",
                "config": asdict(cfg),
                "data": {"name": dataset, "task": "binary-class"},
                "device": "cpu",
                "best_epoch": n_epochs,
                "seconds_per_epoch": 1.5,
                "wall_time_s": 6.0,
                "metrics": metrics,
            }
        )
    )
    e = np.arange(1, n_epochs + 1)
    pd.DataFrame(
        {
            "epoch": e,
            "lr": 1e-3,
            "train_loss": 1 / e,
            "train_auc": 0.5 + 0.1 * e,
            "train_acc": 0.5,
            "val_loss": 1 / e + 0.1,
            "val_auc": 0.5 + 0.08 * e,
            "val_acc": 0.5,
            "seconds": 1.5,
        }
    ).to_csv(folder / "history.csv", index=False)
    rng = np.random.default_rng(seed + 10 * fold)
    ids = [f"candidate{i}" for i in range(fold * 10, fold * 10 + 10)]
    label = np.arange(10) % 2
    p1 = np.clip(0.3 + 0.4 * label + 0.3 * rng.standard_normal(10), 0, 1)
    scores = pd.DataFrame({"id": ids, "label": label, "score_0": 1 - p1, "score_1": p1})
    scores.to_csv(folder / "test_scores.csv", index=False)
    return load_run(folder)


def test_compare_means_over_seeds(tmp_path):
    runs = [fake_run(tmp_path, seed=s, auc=a) for s, a in ((0, 0.90), (1, 0.92))]
    runs += [fake_run(tmp_path, model="resnet50", auc=0.80), fake_run(tmp_path, dataset="retinamnist", auc=0.7)]
    rec = results.frame(runs)
    mean, std, n = tables.report_layout(rec, "resnet18")
    assert list(mean.index) == reference.ROWS and list(mean.columns) == ["breastmnist", "retinamnist"]
    assert mean.at["valAUC", "breastmnist"] == pytest.approx(0.91) and n.at["valAUC", "breastmnist"] == 2
    st = tables.compare(rec, "resnet18")
    text = repr(st)
    assert "0.910 ± 0.014" in text and "0.855" in text and "0.901" in text  # medlib, Report 1, official
    assert st.to_html() == tables.compare(rec, "resnet18").to_html()  # reproducible (no random ids)
    assert "compare_resnet18" in st.to_html()
    pair = repr(tables.r18_vs_r50(rec))
    assert "0.871" in pair and "0.780" in pair  # Report 1 R50 breast test AUC; medlib R50 test AUC


def test_cv_and_ensemble_tables(tmp_path):
    runs = [
        fake_run(tmp_path, dataset="m3dv", model=m, fold=f, mixup=a, auc=0.6 + 0.05 * f)
        for m in ("baseline3d", "densenet3d")
        for a in (0.0, 0.2)
        for f in (0, 1)
    ]

    df = results.frame(runs)
    cv = tables.cv_table(df, None)
    assert cv["test AUC"].tolist() == ["0.605 ± 0.035"] * 4  # test AUC 0.58 and 0.63 over two folds, 4 groups
    ens = tables.ensemble_table(df, None)
    assert ens["ensemble"].iloc[-1] == "all configurations" and len(ens) == 4 + 2 + 1
    assert ens["members per fold"].tolist() == ["1"] * 4 + ["2", "2", "4"]
    d = diagnose.diagnose_runs(runs)
    assert len(d) == 8 and set(d["case"]) == {"both falling: still learning"}


def test_curves_return_figures(tmp_path):
    from matplotlib.figure import Figure

    from medlib.report import curves

    runs = [fake_run(tmp_path, model=m, seed=s) for m in ("resnet18", "resnet50") for s in (0, 1)]
    for fig in (
        curves.loss_curves(runs),
        curves.auc_curves(runs),
        curves.model_comparison(results.frame(runs)),
        curves.diagnosis_plot(runs[:2]),
    ):
        assert isinstance(fig, Figure) and fig.axes


def test_dataset_tables_without_data(synth_root):
    facts = tables.dataset_facts()
    assert len(facts.data) == 18 and facts.data["Report 1"].eq("✓").sum() == 10
    status = tables.dataset_status()
    assert (status.data["present"] == "-").all()
    how = set(status.data["how to get"])
    assert "python -m medlib train --dataset pathmnist (downloads pathmnist.npz first)" in how


# ---------------------------------------------------------------- the report command


def test_report_command_is_registered():
    from medlib import cli

    args = cli.build_parser().parse_args(["report", "--profile", "quick", "--only", "00"])
    assert args.only == ["00"] and args.func.__name__ == "cmd_report"


def test_build_report_shares_one_plotlyjs(tmp_path):
    import nbformat

    from medlib.book.build import build_report

    books = tmp_path / "notebooks"
    books.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A tiny notebook"),
        nbformat.v4.new_code_cell(
            "from medlib.book import notebook\nnotebook.setup()\n"
            "import plotly.graph_objects as go\ngo.Figure(go.Scatter(y=[1, 3, 2]))"
        ),
    ]
    nbformat.write(nb, books / "00_tiny.ipynb")
    results = build_report("quick", tmp_path / "reports", notebooks=books, verbose=False)
    assert [r.ok for r in results] == [True]
    page = (tmp_path / "reports" / "00_tiny.html").read_text()
    # the page draws its figure with the report's one plotly.min.js, beside it on the disk: works offline
    assert '<script src="plotly.min.js"></script>' in page and "Plotly.newPlot" in page
    assert "window.Plotly = Plotly" not in page and len(page) < 1_000_000
    assert "window.Plotly" in (tmp_path / "reports" / "plotly.min.js").read_text()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "00_tiny.html" in index and "A tiny notebook" in index


# ---------------------------------------------------------------- notebook logic that lives in the library


def test_layer_count_matches_the_names():
    """ResNet-18 and ResNet-50 are named after their weighted layers (stem conv + block convs + fc)."""
    assert layers.layer_count("resnet18").startswith("resnet18: 1 stem conv + 16 block convs + 1 fc = 18 layers")
    assert layers.layer_count("resnet50") == (
        "resnet50: 1 stem conv + 48 block convs + 1 fc = 50 layers; 16 blocks, 4 with a projection shortcut"
    )


def test_fold_table_counts_every_sample_once(synth_root):
    from synth_m3dv import write_m3dv

    from medlib.data.m3dv import load_m3dv

    write_m3dv(synth_root / "m3dv", n=20, size=24)
    ds = load_m3dv(crop=16)
    df = tables.fold_table(ds, k=4).data
    assert list(df.index) == [0, 1, 2, 3]
    tests = [int(v.split()[0]) for v in df["test (pos)"]]
    assert sum(tests) == 20  # the test folds partition the data
    assert all(
        int(t.split()[0]) + int(v.split()[0]) + int(s.split()[0]) == 20
        for t, v, s in zip(df["train (pos)"], df["val (pos)"], df["test (pos)"])
    )


def test_usable_lists_present_sets_without_downloading(synth_root, capsys):
    from synth_medmnist import write_npz

    from medlib.book import notebook

    write_npz(synth_root, "breastmnist")
    assert notebook.usable(["breastmnist", "retinamnist"]) == ["breastmnist"]
    assert "training on: breastmnist | absent: retinamnist" in capsys.readouterr().out


def test_best_variant_by_mean_fold_auc(tmp_path):
    from medlib.experiments.cv import best_variant

    cv = {
        (m, a): [fake_run(tmp_path, dataset="m3dv", model=m, fold=f, mixup=a, auc=auc + 0.01 * f) for f in (0, 1)]
        for (m, a), auc in ((("baseline3d", 0.0), 0.62), (("densenet3d", 0.2), 0.66), (("densenet3d", 0.0), 0.64))
    }
    assert best_variant(cv) == ("densenet3d", 0.2)


def test_notebook_start_is_setup_then_the_banner():
    from medlib.book import notebook

    md = notebook.start("quick")
    assert md.data == notebook.provenance("quick") and "quick" in md.data
