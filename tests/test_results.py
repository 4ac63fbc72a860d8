"""The results layer against numpy / sklearn, the reproduce plan (dry run, resume, only), and the README in sync."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import medlib
from medlib import plans, results
from medlib.engine import training
from medlib.errors import MedlibError
from medlib.experiments import reproduce
from medlib.report import studies, tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_records(tmp_path_factory):
    """The quick plan, really trained once (tiny runs on real BreastMNIST and M3DV)."""
    if not (Path(os.environ.get("MEDLIB_DATA", "data")) / "m3dv").exists():
        pytest.skip("needs the real data (MEDLIB_DATA)")
    out = tmp_path_factory.mktemp("quick")
    reproduce.reproduce("quick", out=out, device="cpu")
    return out


def test_aggregate_is_mean_and_sample_std(quick_records):
    df = results.records(quick_records)
    assert len(df) == 5 and set(df["study"]) == {"report1", "loss-bce", "report2", "lr-batch"}
    agg = results.aggregate(results.select(df, "report2"), ["model"])
    x = results.select(df, "report2")["test_auc"].to_numpy()
    assert agg.loc[0, "test_auc_mean"] == pytest.approx(x.mean())
    assert agg.loc[0, "test_auc_std"] == pytest.approx(x.std(ddof=1)) and agg.loc[0, "n"] == 2


def test_fmt_and_mean_std():
    assert results.fmt(0.91234) == "0.912" and results.fmt(0.9, 0.01, 3) == "0.900 ± 0.010"
    assert results.fmt(float("nan")) == results.EMPTY
    s = results.mean_std([0.5, 0.7, float("nan")])
    assert s == {"mean": pytest.approx(0.6), "std": pytest.approx(np.std([0.5, 0.7], ddof=1)), "n": 2}


def test_ensemble_of_one_fold_is_the_mean_of_its_members(quick_records):
    df = results.records(quick_records)
    r1 = results.select(df, "report1")
    twins = pd.concat([r1, results.select(df, "loss-bce")])
    e = results.ensemble(twins)
    a, b = (results.runs(twins)[i].scores("test") for i in (0, 1))
    np.testing.assert_allclose(e["score_1"], (a["score_1"] + b["score_1"]) / 2)


def test_full_batch_is_one_step_per_epoch_and_shown_as_full(quick_records):
    d = results.select(results.records(quick_records), "lr-batch")
    t = tables.lr_batch_table(d.assign(study="lr-batch"))
    assert list(t["batch"]) == ["full"] and t.loc[0, "folds"] == 1
    run = results.runs(d)[0]
    assert run.record["data"]["n_train"] < 512  # the whole training set in one batch


def test_markdown_has_each_study_with_provenance(quick_records):
    md = studies.markdown(results.records(quick_records))
    assert "Report 1's recipe" in md and "BCE-with-logits" in md and "5-fold" in md
    assert md.count("<sub>") == md.count("#### ") and "torch " in md and "seeds 0" in md


def test_reproduce_dry_run_resume_and_only(quick_records, capsys, tmp_path, monkeypatch):
    rows = reproduce.reproduce("quick", out=quick_records, dry_run=True, device="cpu")
    assert [r["status"] for r in rows] == ["complete"] * 5  # finished runs are reused, not trained again
    assert "0 to run" in capsys.readouterr().out
    # a run cut during its second epoch is 'partial' and resumes where it stopped
    real, calls = training.train_epoch, []

    def cut(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        m.setattr(training, "train_epoch", cut)
        m.setattr(training, "CHECKPOINT_SECONDS", 0)
        with pytest.raises(KeyboardInterrupt):
            reproduce.reproduce("quick", only="report1/*", out=out, device="cpu")
    rows = reproduce.reproduce("quick", only="report1/*", out=out, dry_run=True, device="cpu")
    assert len(rows) == 1 and rows[0]["status"] == "partial" and rows[0]["epochs"] == "1/2"
    reproduce.reproduce("quick", only="report1/*", out=out, device="cpu")
    rec = json.loads((rows[0]["folder"] / "run.json").read_text())
    assert rec["status"] == "complete" and rec["epochs_this_session"] == 1
    with pytest.raises(MedlibError, match="matches no run of plan 'quick'"):
        reproduce.reproduce("quick", only="nothing/*", out=quick_records, dry_run=True)
    with pytest.raises(MedlibError, match="--plan 'nope' is unknown"):
        plans.plan("nope")


def test_cpu_plan_leaves_out_what_a_cpu_cannot_finish(monkeypatch):
    # ResNet-18-3D as benchmarked (3³ stem) is a GPU job; the CPU plan has it with the 48x cheaper ImageNet stem
    cpu = [(label, cfg) for label, cfg in plans.plan("cpu") if cfg.model == "resnet18_3d"]
    assert cpu and all(cfg.stem == "imagenet" and "imagenet-stem" in label for label, cfg in cpu)
    gpu = [label for label, cfg in plans.plan("gpu") if cfg.model == "resnet18_3d" and cfg.stem == "small"]
    assert "medmnist3d/adrenalmnist3d_28/resnet18_3d-small-stem/s0" in gpu
    monkeypatch.setattr(medlib.engine.cost, "sgemm_gflops", lambda: 200.0)  # injected: not this machine's speed
    rows = (
        reproduce.schedule(
            "gpu",
            "medmnist3d/adrenalmnist3d_28/resnet18_3d-small-stem/s0",
            Path("/nonexistent"),
            medlib.engine.device.resolve_device("cpu"),
        )
        if (Path(os.environ.get("MEDLIB_DATA", "data")) / "medmnist" / "adrenalmnist3d.npz").exists()
        else None
    )
    if rows is not None:
        assert rows[0]["status"] == "skip (GPU job)"


def test_readme_tables_are_generated_from_results():
    """The README's results section is exactly what `python -m medlib results --write-readme` makes of results/."""
    doc = (ROOT / "README.md").read_text(encoding="utf-8")
    start = doc.index(results.README_BEGIN) + len(results.README_BEGIN) + 1
    shown = doc[start : doc.index(results.README_END)]
    assert shown == studies.markdown(results.records(ROOT / "results"))


def test_results_command_and_bad_marker(tmp_path):
    readme = tmp_path / "R.md"
    readme.write_text("no markers here\n")
    r = subprocess.run(
        [sys.executable, "-m", "medlib", "results", str(tmp_path), "--write-readme", str(readme)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "has no results markers" in r.stderr and "Traceback" not in r.stderr
    readme.write_text(f"a\n{results.README_BEGIN}\nold\n{results.README_END}\nb\n")
    shutil.rmtree(tmp_path / "empty", ignore_errors=True)
    r = subprocess.run(
        [sys.executable, "-m", "medlib", "results", str(tmp_path), "--write-readme", str(readme)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert (
        r.returncode == 0 and "No reproduction records yet" in readme.read_text() and readme.read_text().endswith("b\n")
    )


def test_dry_run_downloads_nothing_and_lists_runs_without_their_data(tmp_path, monkeypatch, capsys):
    """On an empty data root a dry run still lists the plan: MedMNIST sizes come from INFO, M3DV is 'no data'."""
    from medlib.data import files
    from medlib.engine import cost

    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)
    monkeypatch.setattr(files, "download", lambda *a, **k: pytest.fail("a dry run downloaded a file"))
    monkeypatch.setattr(cost, "sgemm_gflops", lambda: 200.0)  # an injected rate: 'GPU job' must not hang on this CPU
    rows = reproduce.reproduce(
        "gpu",
        only="medmnist3d/vesselmnist3d_64/*/s0,report2/densenet3d/mixup0.2/f0",
        out=tmp_path / "out",
        dry_run=True,
        device="cpu",
    )
    status = {r["label"]: r["status"] for r in rows}
    assert status["medmnist3d/vesselmnist3d_64/baseline3d/s0"] == "todo"
    assert status["report2/densenet3d/mixup0.2/f0"] == "no data"
    out = capsys.readouterr().out
    assert "m3dv" in out.lower() and "1 without their data" in out
    with pytest.raises(MedlibError, match=r"nothing to run: 1 run\(s\) lack their data. M3DV folder"):
        reproduce.reproduce("gpu", only="report2/densenet3d/mixup0.2/f0", out=tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sizes_from_info_match_the_loaded_data(real_data):
    from medlib.config import make_config
    from medlib.engine.splits import load_for_config, split_sizes

    for cfg in (make_config(dataset="breastmnist"), make_config(dataset="retinamnist", max_train=100, max_eval=50)):
        meta, n_train, n_eval = split_sizes(cfg)
        ds = load_for_config(cfg)
        assert (meta.n_classes, meta.n_channels, meta.dims) == (ds.meta.n_classes, ds.meta.n_channels, ds.meta.dims)
        assert (n_train, n_eval) == (len(ds["train"]), len(ds["val"]) + len(ds["test"]))


def test_each_committed_curve_case_lands_in_the_case_it_was_made_for():
    """Report 2's five loss-curve cases, read by `diagnose` from the committed histories of runs made for them."""
    t = tables.curve_cases_table(results.records(ROOT / "results"))
    assert len(t) == len(plans.CURVE_CASES)
    words = {
        "still learning": "still learning",
        "overfitting": "overfitting",
        "plateau": "plateau",
        "train flat val falling": "train flat, val falling",
        "both rising": "both rising",
    }
    for made, diagnosis in zip(t["made to show"], t["diagnosis"]):
        assert words[made] in diagnosis, (made, diagnosis)
    assert set(t["made to show"]) == set(words)
    assert "0.001 → 0.04" in set(t["lr"])  # a range test shows where its rate went


def test_breast_recipe_is_the_search_candidate_with_the_best_validation_auc():
    """The tuned BreastMNIST recipe is chosen by validation AUC over the committed search records, not by test."""
    df = results.records(ROOT / "results")
    t = tables.search_table(df)
    assert set(t["candidate"]) == set(plans.BREAST_CANDIDATES) and (t["seeds"] == len(plans.SEEDS)).all()
    assert tables.best_candidate(df) == plans.TUNED_BREAST
    assert list(t["chosen"]) == ["yes"] + [""] * (len(t) - 1)  # sorted by validation AUC, the winner first
    val = [float(v.split(" ")[0]) for v in t["val AUC"]]
    assert val == sorted(val, reverse=True)
    # the cross-validated finalists (issue 24) are the search's four best by validation AUC, then the official recipe
    assert plans.SELECT_BREAST == (*t["candidate"][:4], "official-100")


def test_estimates_rest_on_finished_runs_like_them_on_this_device(tmp_path, monkeypatch):
    """A finished run on this device times the runs that cost the same per epoch; others fall back to FLOPs."""
    from medlib.engine.device import device_name, resolve_device

    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "empty"))  # breast sizes come from INFO
    cpu = resolve_device("cpu")
    ((label, cfg),) = [(lb, c) for lb, c in plans.plan("cpu") if lb == "report1/breastmnist/resnet18/s0"]
    folder = tmp_path / "out" / "finished"  # a whole committed record (the reader checks it), of another seed:
    shutil.copytree(ROOT / "results" / "breastmnist_28-resnet18-s1-98da1fdb9e", folder)  # the same cost per epoch
    record = json.loads((folder / "run.json").read_text())
    record.update(
        device=device_name(cpu), precision=medlib.engine.hardware.resolve_precision(cfg.amp, cpu), seconds_per_epoch=2.5
    )
    (folder / "run.json").write_text(json.dumps(record))
    rows = {r["label"]: r for r in reproduce.schedule("cpu", "report1/breastmnist/*", tmp_path / "out", cpu)}
    assert rows[label]["basis"] == "measured" and rows[label]["estimate_s"] == pytest.approx(2.5 * cfg.epochs)
    r50 = rows["report1/breastmnist/resnet50/s0"]
    assert r50["basis"] == "counted" and r50["estimate_s"] > 0  # another network: no record to go by
    (folder / "run.json").write_text(json.dumps({**record, "device": "cpu (elsewhere, 64 threads)"}))
    rows = {r["label"]: r for r in reproduce.schedule("cpu", "report1/breastmnist/*", tmp_path / "out", cpu)}
    assert rows[label]["basis"] == "counted"  # a record from another machine says nothing about this one


def test_reproduce_amp_sets_every_runs_precision_but_not_its_identity(tmp_path, monkeypatch):
    """`reproduce --amp fp32` trains in fp32 into the same run folders (precision is not hashed)."""
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "empty"))  # breast sizes come from INFO
    trained = []

    class Done:
        metrics = {"test": {"auc": 0.5, "acc": 0.5}}

    monkeypatch.setattr(reproduce, "fit", lambda cfg, out, verbose, reuse: trained.append(cfg) or Done)
    reproduce.reproduce("cpu", only="report1/breastmnist/resnet18/s0", out=tmp_path / "out", device="cpu", amp="fp32")
    (planned,) = [c for lb, c in plans.plan("cpu") if lb == "report1/breastmnist/resnet18/s0"]
    assert [c.amp for c in trained] == ["fp32"] and planned.amp == "auto"
    assert trained[0].key() == planned.key()


def test_breast_selection_chooses_the_best_cross_validated_mean_over_complete_folds():
    """The cross-validated choice on generated fold AUCs: numpy's argmax of the complete finalists' means, a finalist
    with a fold missing listed but not chosen, and the search's 78-image validation mean beside each."""
    from dataclasses import asdict

    real = results.records(ROOT / "results")
    rng = np.random.default_rng(0)
    rows, means = [], {}
    for label, cfg in plans.breast_selection():
        name, fold = plans.parse_label(label).parts[1], cfg.cv_fold
        if name == "official-60" and fold == 4:
            continue  # one fold short: shown, never chosen
        auc = 0.85 + 0.02 * plans.SELECT_BREAST.index(name) % 0.07 + rng.normal(0, 0.01)
        means.setdefault(name, []).append(auc)
        rows.append(
            {
                **asdict(cfg),
                "key": cfg.key(),
                "status": "complete",
                "val_auc": auc,
                "val_acc": 0.8,
                **{m: np.nan for m in results.METRICS if not m.startswith("val")},
            }
        )
    others = real[~real["key"].isin({r["key"] for r in rows} | {c.key() for _, c in plans.breast_selection()})]
    t = tables.selection_table(pd.concat([others, pd.DataFrame(rows)], ignore_index=True))  # the generated folds only
    full = {n: np.mean(v) for n, v in means.items() if len(v) == plans.CV_FOLDS}
    assert set(t["candidate"]) == set(plans.SELECT_BREAST)
    assert t.loc[t["chosen"] == "yes", "candidate"].tolist() == [max(full, key=full.get)]
    assert t.set_index("candidate").loc["official-60", "folds"] == plans.CV_FOLDS - 1
    searched = tables.search_table(real).set_index("candidate")["val AUC"]
    shown = t.set_index("candidate")["search val AUC (78 images)"]
    assert all(shown[c] == searched[c] for c in plans.SELECT_BREAST if c in searched.index)
    assert shown["official-100"] == results.EMPTY  # not in the search
    assert tables.selection_table(others).empty  # no fold runs, no table
