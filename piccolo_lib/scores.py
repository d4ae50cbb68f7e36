"""Scores of one model on a benchmark: the six C-MTEB categories, their averages, a markdown table.

The bottom of the evaluation layers: task definitions (``local_benchmark``, ``cmteb``, ``mirror``), the
runner (``evaluation``) and reporting all use these, and this module imports none of them.

Introduced in notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

from statistics import fmean

CATEGORIES = ("Classification", "Clustering", "PairClassification", "Reranking", "Retrieval", "STS")


def aggregate(task_scores: dict[str, dict]) -> tuple[dict[str, float], float]:
    """Category means and the all-task average.

    Args:
        task_scores: {task name: {"category": ..., "main_score": percent, ...}}.

    Returns:
        ({category: mean of its tasks' scores}, mean over all tasks).
    """
    if not task_scores:
        raise ValueError("no task scores to aggregate")
    per_category: dict[str, list[float]] = {}
    for t in task_scores.values():
        per_category.setdefault(t["category"], []).append(t["main_score"])
    return ({c: fmean(v) for c, v in per_category.items()},
            fmean(t["main_score"] for t in task_scores.values()))


def format_table(summaries: list[dict]) -> str:
    """Markdown table: a row per summary (model, dim), a column per category and 'Average' (2 decimals)."""
    seen = {c for s in summaries for c in s["categories"]}
    cats = [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))
    lines = ["| " + " | ".join(["Model", "Dim", *cats, "Average"]) + " |", "|" + "---|" * (len(cats) + 3)]
    for s in summaries:
        cells = [s["model"], str(s["truncate_dim"] or "full")]
        cells += [f"{s['categories'][c]:.2f}" if c in s["categories"] else "-" for c in cats]
        lines.append("| " + " | ".join([*cells, f"{s['average']:.2f}"]) + " |")
    return "\n".join(lines)
