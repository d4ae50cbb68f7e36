"""The section a trained model's README gets: data mix, losses, MRL dims and (optionally) scores.

Written into ``final/README.md`` by :func:`piccolo_lib.training.train`; kept apart from ``reporting``
(which reads benchmark result files) so that training needs nothing from the evaluation layers.

Introduced in notebooks/04_projection_head.ipynb (the saved model folder).
"""

from __future__ import annotations

from ..scores import format_table


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
