"""Plots the notebooks show, one ``show_*`` function per kind of picture (matplotlib).

Each function draws on ``ax`` (or ``axes``) when given, else on a new figure, and returns what it drew on, so a
notebook cell states the idea (``show_softmax(cos[0], taus, cols)``) and can still adjust the picture. None of
them computes a result a notebook asserts: the numbers come from the cell, the picture only shows them.

Used by notebooks/02_three_losses.ipynb, 05_matryoshka.ipynb and 07_cmteb_eval.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def legend_outside(ax, **kwargs):
    """The legend to the right of the axes, where it cannot cover a bar or a line (``kwargs``: fontsize, ncol...)."""
    kwargs.setdefault("fontsize", 8)
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False, **kwargs)


def _axes(ax=None, figsize=(6, 3)):
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _np(x) -> np.ndarray:
    """A numpy array from a numpy array, list or (CPU or GPU) torch tensor."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def show_heatmap(values, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str = "", ax=None,
                 boxes: Sequence[tuple[int, int]] = (), divider: float | None = None, annotate: str | None = None,
                 cmap: str = "viridis", xlabel: str = "", ylabel: str = "", figsize=(8, 3.2)):
    """A (rows, cols) matrix as an image, e.g. the cosines of queries against candidates (notebook 02).

    ``boxes``: (row, col) cells outlined in red (the targets); ``divider``: x of a white vertical line (between
    positives and negatives); ``annotate``: a format (``"{:.2f}"``) to write each finite value in its cell.
    NaN cells stay blank. Returns the axes.
    """
    v = _np(values).astype(float)
    ax = _axes(ax, figsize)
    im = ax.imshow(v, cmap=cmap, aspect="auto")
    for i, j in boxes:
        ax.add_patch(plt.Rectangle((j - .5, i - .5), 1, 1, fill=False, ec="red", lw=2))
    if divider is not None:
        ax.axvline(divider, color="white", lw=2)
    if annotate:
        mid = np.nanmean(v)
        for i, j in zip(*np.nonzero(np.isfinite(v))):
            ax.text(j, i, annotate.format(v[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if (v[i, j] > mid) == (cmap.endswith("_r")) else "black")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90 if len(col_labels) > 8 else 0, fontsize=7)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.figure.colorbar(im, ax=ax)
    return ax


def show_softmax(cosines, taus: Sequence[float], col_labels: Sequence[str], *, ax=None, figsize=(5, 3)):
    """softmax(cos / tau) of one query over its candidates, one line per temperature (InfoNCE, notebook 02).

    ``cosines``: (C,) the query's cosines with its C candidates, the target first. The softmax is how InfoNCE
    shares the gradient among the candidates: at a low tau it goes to the few hardest. Returns the axes.
    """
    c = _np(cosines).astype(float)
    ax = _axes(ax, figsize)
    for t in taus:
        z = c / t
        p = np.exp(z - z.max())
        ax.plot(p / p.sum(), "o-", ms=3, label=f"tau={t:g}")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=7)
    ax.set(title="softmax of row q0 over its candidates", ylabel="probability", ylim=(-0.02, 1.02))
    legend_outside(ax, fontsize=8)
    return ax


def show_histories(results: Mapping[tuple[str, str], Mapping[str, list]], *, axes=None, figsize=(15, 3.6)):
    """Notebook 02's experiment: loss per step of each (setting, loss) run, and held-out Spearman over steps.

    ``results[(setting, loss_name)]`` has ``loss`` (per step), ``eval_step`` and ``spearman`` lists; the first
    loss name gets the first panel, the others the second. Returns the three axes.
    """
    if axes is None:
        axes = plt.subplots(1, 3, figsize=figsize)[1]
    settings = list(dict.fromkeys(s for s, _ in results))
    losses = list(dict.fromkeys(l for _, l in results))
    colors = dict(zip(settings, ("tab:blue", "tab:red", "tab:green", "tab:purple")))
    for (s, l), h in results.items():
        ax = axes[0] if l == losses[0] else axes[1]
        ax.plot(h["loss"], color=colors[s], alpha=.8, label=s)
        axes[2].plot(h["eval_step"], h["spearman"], "-" if l == losses[0] else "--", color=colors[s],
                     label=f"{s[:1]} / {l}")
    for ax, l in zip(axes[:2], losses):
        ax.set(title=f"{l} loss", xlabel="step")
        legend_outside(ax, fontsize=8)
    axes[2].set(title="held-out Spearman(cos, gold grade)", xlabel="step")
    legend_outside(axes[2], fontsize=8)
    return axes


def show_gradient_profile(grads: Mapping[str, object], boundaries: Sequence[int] = (), *, ax=None, figsize=(9, 2.8)):
    """Mean |dL/dq_j| per coordinate j, one line per loss; dotted lines at the MRL prefix ``boundaries``."""
    ax = _axes(ax, figsize)
    for name, g in grads.items():
        ax.plot(_np(g), lw=1, label=name)
    for d in boundaries:
        ax.axvline(d - 0.5, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="query coordinate j (dotted: MRL prefix boundaries)", ylabel="mean |dL/dq_j|")
    legend_outside(ax)
    return ax


def show_task_losses(logs: Mapping[str, Sequence[Mapping]], tasks=("retri_contrast", "cosent", "cls_contrast"), *,
                     axes=None, figsize=(14, 2.8)):
    """Training loss per step from ``metrics.jsonl`` lines, one panel per task type, one line per run.

    ``logs``: run name -> its lines (each with ``step``, ``task``, ``loss``). Returns the axes.
    """
    if axes is None:
        axes = plt.subplots(1, len(tasks), figsize=figsize)[1]
    for k, (name, log) in enumerate(logs.items()):
        for ax, task in zip(axes, tasks):
            pts = [(s["step"], s["loss"]) for s in log if s["task"] == task]
            if pts:
                ax.plot(*zip(*pts), ".-" if k == 0 else ".--", label=name, alpha=0.8)
            ax.set(title=task, xlabel="step")
    axes[0].set_ylabel("training loss")
    legend_outside(axes[0])
    return axes


def show_scores_per_dim(scores: Mapping[str, Mapping[int, float]], report: Mapping[int, float], *, title: str = "",
                        axes=None, figsize=(15, 3.6)):
    """Notebook 05: score per Matryoshka prefix dim of each model, the report's curve, and both as shares.

    ``scores``: model name -> {dim: score}; ``report``: {dim: score} of the Piccolo2 report. Panels: this
    notebook's scores per dim, the report's, and each curve as % of its full-width score against d / width.
    Returns the three axes.
    """
    if axes is None:
        axes = plt.subplots(1, 3, figsize=figsize)[1]
    marks = ("o-", "s--", "d:", "v-.")
    colors = ("tab:blue", "tab:orange", "tab:grey", "tab:purple")  # green is the report's
    for mark, color, (name, per) in zip(marks, colors, scores.items()):
        ds = sorted(per)
        axes[0].plot(ds, [per[d] for d in ds], mark, color=color, label=name)
        axes[2].plot([d / ds[-1] for d in ds], [100 * per[d] / per[ds[-1]] for d in ds], mark, color=color,
                     label=f"{name} (this notebook)")
    rd = sorted(report)
    axes[1].plot(rd, [report[d] for d in rd], "^-", color="tab:green")
    for d in rd:
        axes[1].annotate(f"{report[d]:.2f}", (d, report[d]), textcoords="offset points", xytext=(0, 6), ha="center",
                         fontsize=8)
    axes[2].plot([d / rd[-1] for d in rd], [100 * report[d] / report[rd[-1]] for d in rd], "^-", color="tab:green",
                 label="Piccolo2 (report)")
    ds = sorted(next(iter(scores.values())))
    axes[0].set(xlabel="prefix dim d", ylabel="average score (%)", xticks=ds, title=title)
    lo, hi = min(report.values()), max(report.values())
    axes[1].set(xlabel="prefix dim d", ylabel="C-MTEB average (%)", xticks=rd, ylim=(lo - 0.5, hi + 0.35),
                title="Piccolo2 report: 1792-wide model with MRL")
    axes[2].set(xlabel="d / full width", ylabel="% of the full-width score", title="share of the full-width score kept")
    legend_outside(axes[0])
    legend_outside(axes[2], fontsize=8)
    axes[1].tick_params(axis="x", labelrotation=45)
    return axes


def show_grouped_bars(values: Mapping[str, Sequence[float]], labels: Sequence[str], *, ax=None, title: str = "",
                      ylabel: str = "", fmt: str | None = None, colors: Mapping[str, str] | None = None,
                      figsize=(7, 2.6)):
    """One group of bars per label, one bar per series (``values``: series name -> one value per label).

    ``fmt``: a ``bar_label`` format (``"%.0f"``) to print each value on its bar; ``colors``: series name -> colour
    (default: matplotlib's cycle). Returns the axes.
    """
    ax = _axes(ax, figsize)
    width = 0.8 / len(values)
    x = np.arange(len(labels))
    for k, (name, v) in enumerate(values.items()):
        bars = ax.bar(x + (k - (len(values) - 1) / 2) * width, v, width, label=name,
                      color=(colors or {}).get(name))
        if fmt:
            ax.bar_label(bars, fmt=fmt, fontsize=7)
    ax.set_xticks(x, labels, fontsize=8, rotation=15 if max(map(len, labels)) > 8 else 0)
    ax.set(title=title, ylabel=ylabel)
    legend_outside(ax, fontsize=8)
    return ax


def show_dim_curves(per_dim: Mapping[int, Mapping], categories: Sequence[str], *, baseline: float | None = None,
                    baseline_label: str = "", ax=None, figsize=(6, 3.4)):
    """Score per Matryoshka dim: one thin line per category, the average in bold (notebook 07).

    ``per_dim``: {dim: {"categories": {category: score}, "average": score}}. Returns the axes.
    """
    ax = _axes(ax, figsize)
    ds = sorted(per_dim)
    for c in categories:
        ax.plot(ds, [per_dim[d]["categories"][c] for d in ds], ".-", lw=0.8, alpha=0.5, label=c)
    ax.plot(ds, [per_dim[d]["average"] for d in ds], "ko-", lw=2, label="Average")
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls="--", lw=1, label=baseline_label)
    ax.set(xlabel="embedding dim (prefix)", xticks=ds, title="fine-tuned model per Matryoshka dim")
    legend_outside(ax, fontsize=7, ncol=2)
    return ax


def accuracy_at_thresholds(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, accuracy) of "predict 1 when score > t", t below all scores (all 1), at each midpoint between
    distinct scores, and above all (all 0). The maximum over the midpoints is mteb's PairClassification accuracy
    for this similarity (mteb cuts only between two distinct scores)."""
    s, y = _np(scores).astype(float), _np(labels).astype(int)
    u = np.unique(s)
    cuts = np.concatenate([[u[0] - 1e-3], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-3]])
    return cuts, np.array([((s > t) == (y == 1)).mean() for t in cuts])


def precision_recall(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) after each of the pairs ranked by decreasing score: the curve whose average over the
    positives' positions is the average precision, AP = mean of precision@k at each positive k."""
    y = _np(labels).astype(int)[np.argsort(-_np(scores), kind="stable")]
    hits = np.cumsum(y)
    return hits / max(y.sum(), 1), hits / np.arange(1, len(y) + 1)


def show_threshold_accuracy(scores, labels, *, ax=None, figsize=(5, 3.2)):
    """Accuracy of "same intent when cos > t" against t, the best threshold marked. Returns the axes."""
    ax = _axes(ax, figsize)
    s, y = _np(scores), _np(labels)
    t, acc = accuracy_at_thresholds(s, y)
    best = 1 + int(acc[1:-1].argmax())  # mteb's best cut: between two distinct scores
    ax.plot(t, acc, "-", color="tab:blue")
    ax.plot(s[y == 1], np.full((y == 1).sum(), 0.02), "|", color="tab:green", ms=12, label="positive pairs")
    ax.plot(s[y == 0], np.full((y == 0).sum(), 0.06), "|", color="tab:red", ms=12, label="negative pairs")
    ax.axvline(t[best], color="grey", ls=":", lw=1)
    ax.annotate(f"max accuracy {acc[best]:.3f}\nat t = {t[best]:.3f}", (t[best], acc[best]), xytext=(6, -24),
                textcoords="offset points", fontsize=8)
    ax.set(xlabel="threshold t on the cosine", ylabel="accuracy", ylim=(0, 1.05),
           title="accuracy of 'cos > t' (one threshold)")
    legend_outside(ax, fontsize=7)
    return ax


def show_precision_recall(scores, labels, *, ax=None, figsize=(5, 3.2)):
    """Precision against recall down the ranking by score, the positives' precisions marked; AP in the title."""
    ax = _axes(ax, figsize)
    recall, precision = precision_recall(scores, labels)
    y = _np(labels).astype(int)[np.argsort(-_np(scores), kind="stable")]
    ap = precision[y == 1].mean()
    ax.plot(recall, precision, "-", color="tab:purple", lw=1)
    ax.plot(recall[y == 1], precision[y == 1], "o", ms=4, color="tab:purple", label="precision at each positive")
    ax.axhline(y.mean(), color="grey", ls="--", lw=1, label=f"share of positives {y.mean():.2f} (random ranking)")
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.05), title=f"precision-recall: AP = {ap:.3f}")
    legend_outside(ax, fontsize=7)
    return ax


def pca_2d(x) -> np.ndarray:
    """(n, 2): the rows of ``x`` (n, d) centred and projected on their two principal axes (SVD, no fitting)."""
    x = _np(x).astype(float)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def show_projection(points, colourings: Mapping[str, Sequence], *, axes=None, figsize=(11, 4)):
    """The same 2-D points in one panel per colouring (e.g. gold label, k-means cluster). Returns the axes."""
    if axes is None:
        axes = plt.subplots(1, len(colourings), figsize=figsize, sharex=True, sharey=True)[1]
    p = _np(points)
    for ax, (title, groups) in zip(np.atleast_1d(axes), colourings.items()):
        groups = np.asarray([str(g) for g in groups])
        for k, g in enumerate(sorted(set(groups))):
            on = groups == g
            ax.scatter(p[on, 0], p[on, 1], s=22, color=plt.cm.tab10(k % 10), label=g, alpha=0.85)
        ax.set(title=title, xlabel="principal axis 1", ylabel="principal axis 2")
        legend_outside(ax, fontsize=7, ncol=2)
    return axes


def show_ranking(relevant: Sequence[bool], *, labels: Sequence[str] = (), title: str = "", ax=None, figsize=(10, 1.6)):
    """One query's top-k as a strip of boxes, rank 1 on the left, relevant documents filled green.

    Beside the strip (in the title) go the metrics a cell computed; ``labels``: a short text per box.
    Returns the axes.
    """
    ax = _axes(ax, figsize)
    for r, hit in enumerate(relevant):
        ax.add_patch(plt.Rectangle((r, 0), 0.9, 1, color="tab:green" if hit else "lightgrey"))
        ax.text(r + 0.45, 0.62, str(r + 1), ha="center", va="center", fontsize=10, weight="bold")
        if r < len(labels):
            ax.text(r + 0.45, 0.25, labels[r], ha="center", va="center", fontsize=6)
    ax.set(xlim=(-0.1, len(relevant)), ylim=(0, 1), title=title)
    ax.axis("off")
    return ax


def show_rank_discounts(max_rank: int = 10, *, mark: int | None = None, ax=None, figsize=(4, 2.6)):
    """What one relevant document at rank r is worth: nDCG's 1/log2(1+r) against MRR's 1/r (r <= max_rank)."""
    ax = _axes(ax, figsize)
    r = np.arange(1, max_rank + 1)
    ax.plot(r, 1 / np.log2(1 + r), "o-", ms=3, label="nDCG@10: 1/log2(1+r)")
    ax.plot(r, 1 / r, "s--", ms=3, label="MRR@10: 1/r")
    if mark is not None:
        ax.axvline(mark, color="grey", ls=":", lw=1)
    ax.set(xlabel="rank r of the relevant document", ylabel="score of the query", xticks=r, ylim=(0, 1.05))
    legend_outside(ax, fontsize=7)
    return ax
