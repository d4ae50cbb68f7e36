"""piccolo_lib.plots: the curves it draws are the metrics' own curves (checked against scikit-learn)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score

from piccolo_lib import plots


def pairs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels * 0.3 + rng.normal(0, 0.25, n), labels


def test_threshold_curve_peaks_at_the_best_single_threshold_accuracy():
    scores, labels = pairs()
    _, acc = plots.accuracy_at_thresholds(scores, labels)
    inner = np.sort(scores)[:-1]  # "score > t" at t = each score but the largest: every cut with both sides non-empty
    assert acc[1:-1].max() == pytest.approx(max(((scores > t) == (labels == 1)).mean() for t in inner))
    assert acc[0] == pytest.approx(labels.mean()) and acc[-1] == pytest.approx(1 - labels.mean())  # all 1 / all 0


def test_precision_recall_averages_to_sklearn_average_precision():
    scores, labels = pairs(seed=1)
    recall, precision = plots.precision_recall(scores, labels)
    y = labels[np.argsort(-scores, kind="stable")]
    assert recall[-1] == 1.0
    assert precision[y == 1].mean() == pytest.approx(average_precision_score(labels, scores))
    ax = plots.show_precision_recall(scores, labels)
    assert f"{average_precision_score(labels, scores):.3f}" in ax.get_title()


def test_pca_2d_matches_sklearn_up_to_sign():
    x = np.random.default_rng(2).normal(size=(40, 6)) * np.arange(1, 7)
    ours, ref = plots.pca_2d(x), PCA(2).fit_transform(x)
    assert np.allclose(np.abs(ours), np.abs(ref), atol=1e-8)


def test_show_functions_return_what_they_drew_on():
    ax = plots.show_softmax(np.array([0.9, 0.5, 0.1]), [1.0, 0.01], ["p0", "n0", "n1"])
    lines = [l.get_ydata() for l in ax.get_lines()]
    assert len(lines) == 2 and all(abs(l.sum() - 1) < 1e-9 for l in lines)
    assert lines[1][0] > lines[0][0]  # a lower temperature puts more mass on the top candidate
    axes = plots.show_projection(np.zeros((4, 2)), {"gold": list("aabb"), "k-means": [0, 1, 1, 1]})
    assert [len(a.collections) for a in axes] == [2, 2]
