"""Our AUC/ACC against the oracle, medmnist.Evaluator's functions, and sklearn, on every task type."""

import numpy as np
import pytest
from medmnist import Evaluator
from medmnist.evaluator import getACC, getAUC
from sklearn.metrics import roc_auc_score

from medlib import metrics

TASKS = [("binary-class", 2), ("multi-class", 9), ("ordinal-regression", 5), ("multi-label, binary-class", 14)]


def fake(task, k, n=500, seed=0, round_to=None):
    rng = np.random.default_rng(seed)
    if task.startswith("multi-label"):
        y = (rng.random((n, k)) < 0.3).astype(np.uint8)
        s = 1 / (1 + np.exp(-(rng.normal(size=(n, k)) + y)))
    else:
        y = rng.integers(0, k, (n, 1)).astype(np.uint8)
        logits = rng.normal(size=(n, k))
        logits[np.arange(n), y[:, 0]] += 1.0
        s = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if round_to is not None:
        s = np.round(s, round_to)  # many ties
    return y, s


@pytest.mark.parametrize("task,k", TASKS)
@pytest.mark.parametrize("round_to", [None, 1])
def test_equals_evaluator_functions(task, k, round_to):
    y, s = fake(task, k, round_to=round_to)
    assert metrics.auc(y, s, task) == pytest.approx(getAUC(y, s, task), abs=1e-12)
    assert metrics.acc(y, s, task) == pytest.approx(getACC(y, s, task), abs=1e-12)


def test_binary_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    s = rng.integers(0, 7, 1000).astype(float)
    assert metrics.binary_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_single_class_auc_is_nan_not_a_crash():
    assert np.isnan(metrics.binary_auc(np.ones(5), np.arange(5)))


def test_evaluator_class_on_real_labels(real_data):
    ev = Evaluator("breastmnist", "test", root=str(real_data / "medmnist"))
    y = ev.labels
    rng = np.random.default_rng(0)
    p1 = np.clip(0.6 * y[:, 0] + rng.random(len(y)) * 0.7, 0, 1)
    scores = np.stack([1 - p1, p1], 1)
    official = ev.evaluate(scores)
    assert metrics.auc(y, scores, "binary-class") == pytest.approx(official.AUC, abs=1e-12)
    assert metrics.acc(y, scores, "binary-class") == pytest.approx(official.ACC, abs=1e-12)
