"""Cost growth: training-step time vs batch size and vs number of negatives K, per loss (offline-bert).

Expectation: the encoder dominates a step, so step time is about linear in the rows encoded. Rows per
step: retrieval B(2+K), STS 2B, classification B + distinct labels with deduplication (piccolo_lib)
but B(2+K) with every label string encoded (the reference strategy). So deduplicated classification
should stay nearly flat in K (this data has 10 labels) while the reference grows with B*K.
Each point's steps are interleaved with every other point's, repeat by repeat; repeat 0 is warm-up.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path

from .common import build, make_optimizer, repeats, stats, train_step
from .recipes import Piccolo, Reference
from .workload import MIXED_K, TASK_NAMES, make_batch

BATCHES = (8, 16, 32, 64, 128)
KS = (1, 4, 10, 30)


def _series(quick: bool) -> list[dict]:
    """The measured points: {sweep, series, recipe, task, b, k}."""
    bs, ks = (BATCHES[:2], KS[:2]) if quick else (BATCHES, KS)
    points = []
    for task in ("retri_contrast", "cosent", "cls_contrast"):
        for recipe in ("piccolo_lib", "reference") if task == "cls_contrast" else ("piccolo_lib",):
            label = f"{TASK_NAMES[task]} ({recipe})"
            points += [dict(sweep="batch", series=label, recipe=recipe, task=task, b=b, k=MIXED_K[task]) for b in bs]
            if task != "cosent":
                points += [dict(sweep="k", series=label, recipe=recipe, task=task, b=32, k=k) for k in ks]
    return points


def linear_fit(x: list[float], y: list[float]) -> dict:
    """Least-squares y = a + b x and its R^2 (None when x does not vary)."""
    mx, my = statistics.mean(x), statistics.mean(y)
    sxx = sum((v - mx) ** 2 for v in x)
    if sxx == 0:
        return {"intercept": my, "slope": 0.0, "r2": None}
    slope = sum((u - mx) * (v - my) for u, v in zip(x, y)) / sxx
    intercept = my - slope * mx
    ss_res = sum((v - intercept - slope * u) ** 2 for u, v in zip(x, y))
    ss_tot = sum((v - my) ** 2 for v in y)
    return {"intercept": intercept, "slope": slope, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


def run(quick: bool = False) -> dict:
    """Median step time, rows encoded and tokens for every point; a linear fit of time on rows per series."""
    model, dims = build("offline-bert")
    recipes = {"piccolo_lib": Piccolo(model, dims), "reference": Reference(model, dims)}
    optimizer = make_optimizer(model)
    model.train()
    points = _series(quick)
    rng = random.Random(2)
    times: list[list[float]] = [[] for _ in points]
    rows: list[list[int]] = [[] for _ in points]
    tokens: list[list[int]] = [[] for _ in points]
    for rep in repeats(2 if quick else 6, budget_s=30 if quick else 90, n_min=2 if quick else 4):
        for i, p in enumerate(points):
            batch = make_batch(p["task"], p["b"], p["k"], rng)
            r = recipes[p["recipe"]]
            dt, _, prepared = train_step(model, optimizer, lambda: r.prepare(batch), lambda x: r.loss(batch, x))
            n_rows, n_tokens = r.encoded(prepared[0])
            rows[i].append(n_rows)
            tokens[i].append(n_tokens)
            if rep > 0:
                times[i].append(dt)
    measured = [{**p, "step_s": stats(t), "rows": statistics.mean(r), "tokens": statistics.mean(tk)}
                for p, t, r, tk in zip(points, times, rows, tokens)]
    fits = {}
    for sweep in ("batch", "k"):
        for series in dict.fromkeys(p["series"] for p in measured if p["sweep"] == sweep):
            pts = [p for p in measured if p["sweep"] == sweep and p["series"] == series]
            x, y = [p["rows"] for p in pts], [p["step_s"]["median"] for p in pts]
            fits[f"{sweep}/{series}"] = {**linear_fit(x, y), "rows_growth": x[-1] / x[0], "time_growth": y[-1] / y[0],
                                         "from": pts[0]["b" if sweep == "batch" else "k"],
                                         "to": pts[-1]["b" if sweep == "batch" else "k"]}
    return {"backbone": "offline-bert", "points": measured, "fits": fits}


def plot(result: dict, folder: str | Path) -> list[Path]:
    """cost_vs_batch.png and cost_vs_k.png: median step time per series, rows encoded written at each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for sweep, key, name, xlabel in (("batch", "b", "cost_vs_batch.png", "batch size B"),
                                     ("k", "k", "cost_vs_k.png", "negatives per row K (B = 32)")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        pts = [p for p in result["points"] if p["sweep"] == sweep]
        for series in dict.fromkeys(p["series"] for p in pts):
            s = [p for p in pts if p["series"] == series]
            x, y = [p[key] for p in s], [p["step_s"]["median"] for p in s]
            err = [[p["step_s"]["median"] - p["step_s"]["min"] for p in s],
                   [p["step_s"]["max"] - p["step_s"]["median"] for p in s]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=series)
            for xi, yi, p in zip(x, y, s):
                ax.annotate(f"{p['rows']:.0f}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log", base=2)
        ticks = sorted({p[key] for p in pts})
        ax.set_xticks(ticks, labels=[str(t) for t in ticks])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training step time (s), median, min-max bars")
        ax.set_title(f"Step time vs {xlabel.split(' (')[0]} (offline-bert); numbers: rows encoded per step", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(folder) / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
