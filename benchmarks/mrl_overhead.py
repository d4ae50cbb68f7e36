"""What Matryoshka costs: piccolo_lib's training step with the 7 MRL dims vs without MRL.

The embeddings are computed once either way (piccolo_lib.losses.matryoshka repeats only the
similarity part per dim), so the overhead should be a few percent of a step; it is largest,
relatively, where the encoder is cheapest (the tiny offline BERT). Mixed workload, interleaved steps.
"""

from __future__ import annotations

from .common import backbones, build, stats
from .recipes import Piccolo
from .train_step import time_recipes
from .workload import mixed_batches


def run(quick: bool = False) -> dict:
    """Per backbone: cycle time with and without MRL, the overhead ratio and its per-cycle spread."""
    out = {}
    for backbone in backbones(quick):
        model, dims = build(backbone)
        big = backbone != "offline-bert"
        recipes = {"mrl": Piccolo(model, dims), "no_mrl": Piccolo(model, None)}
        n_cycles = 2 if quick else (5 if big else 21)
        timed = time_recipes(model, recipes, mixed_batches(n_cycles, seed=1), budget_s=45 if big else 40,
                             n_min=1 if quick else (2 if big else 3))
        with_, without = timed["mrl"], timed["no_mrl"]
        out[backbone] = {
            "dims": dims, "mrl_cycle_s": with_["cycle_s"], "no_mrl_cycle_s": without["cycle_s"],
            "ratio": with_["cycle_s"]["median"] / without["cycle_s"]["median"],
            "paired_ratio": stats([x / y for x, y in zip(with_["cycles"], without["cycles"])]),
        }
    return {"backbones": out}
