"""C-MTEB-style tables: per-task main scores -> one score per category and the average.

The leaderboard convention (and the report's): a category's score is the mean of its tasks' main
scores, and the average is over all tasks (dataset-weighted), not over categories.

Introduced in notebooks/06_cmteb_eval.ipynb.
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


def model_card_section(training_info: dict, summaries: list[dict] | None = None) -> str:
    """Markdown for the saved model's README: data mix, losses, MRL dims and (optionally) scores.

    Args:
        training_info: the ``piccolo_training.json`` content written by :func:`piccolo_lib.training.train`.
        summaries: evaluation summaries (``piccolo_lib.evaluation.evaluate_model``) to list.
    """
    cfg = training_info["config"]
    lines = ["## Piccolo2 training (piccolo_lib)", "",
             f"Backbone `{cfg['backbone']}`, pooling `{cfg['pooling']}`, MRL dims {training_info['mrl_dims']}, "
             f"batch {cfg['batch_size']} per device, lr {cfg['lr']}, seed {cfg['seed']}.", "",
             "| dataset | type | rows | repeat | temperature | weight |", "|---|---|---|---|---|---|"]
    for d in training_info["data"]:
        hp = training_info.get("losses", {}).get(d["type"], {})
        lines.append(f"| {d['name']} | {d['type']} | {d['rows']} | {d['repeat']} | "
                     f"{hp.get('temperature', '')} | {hp.get('weight', '')} |")
    if summaries:
        lines += ["", "Scores (%, main metric per task, mteb " + summaries[0].get("mteb_version", "?") + "):", "",
                  format_table(summaries)]
    return "\n".join(lines) + "\n"
