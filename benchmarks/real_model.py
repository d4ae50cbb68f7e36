"""The real model: e5-small (multilingual-e5-small, 118M parameters) beside the 1M-parameter toy.

Two measurements, both on the mixed workload of benchmarks.workload:

1. **Step time and samples/s of piccolo_lib's training step** for e5-small with every parameter trained,
   with the word-embedding matrix frozen (96M of its 118M parameters; what `configs/quickstart.yaml`
   does) and with only the top 4 layers trained, beside offline-bert, at the quickstart's batch (16).
2. **piccolo_lib vs plain sentence-transformers vs the reference strategy on e5-small**, interleaved on
   identical batches (the harness of benchmarks.train_step, batch 32), with the word embeddings frozen
   for all three recipes alike (the quickstart's setting), plus the loss agreement check.
"""

from __future__ import annotations

import statistics

import torch

from .common import build, e5_small_missing, make_optimizer, param_counts, repeats, stats, train_step
from .recipes import RECIPES, Piccolo
from .train_step import _paired, loss_check, time_recipes
from .workload import MIXED_K, TASKS, mixed_batches

VARIANTS = {  # name -> freeze_for_speed keywords
    "all parameters": {},
    "word embeddings frozen": {"word_embeddings": True},
    "top 4 layers": {"train_top_layers": 4},
}
STEP_BATCH = 16  # configs/quickstart.yaml


def _fresh(backbone: str, variant: dict):
    from piccolo_lib.model import freeze_for_speed

    model, dims = build(backbone)
    counts = freeze_for_speed(model, **variant) if variant else {"trainable": param_counts(model)["all"]}
    return model, dims, counts["trainable"]


def step_times(backbone: str, variant: dict, quick: bool) -> dict:
    """Median step time per task and samples/s of the mixed cycle, piccolo_lib's recipe, batch 16."""
    model, dims, trainable = _fresh(backbone, variant)
    recipe = Piccolo(model, dims)
    optimizer = make_optimizer(model)
    cycles = mixed_batches(2 if quick else 5, batch_size=STEP_BATCH, seed=1)
    times = {t: [] for t in TASKS}
    cycle_s = []
    model.train()
    for c in repeats(len(cycles), budget_s=40, n_min=2 if quick else 3):
        spent = 0.0
        for batch in cycles[c]:
            dt, _, _ = train_step(model, optimizer, lambda b=batch: recipe.prepare(b), lambda p, b=batch: recipe.loss(b, p))
            spent += dt
            if c > 0:
                times[batch.task].append(dt)
        if c > 0:
            cycle_s.append(spent)
    per_cycle = STEP_BATCH * len(TASKS)
    return {"trainable": trainable, "task_s": {t: stats(v) for t, v in times.items()},
            "samples_per_s": stats([per_cycle / s for s in cycle_s])}


def versus(quick: bool) -> dict:
    """The three recipes on e5-small (word embeddings frozen for all), as benchmarks.train_step does."""
    from piccolo_lib.model import freeze_for_speed

    model, dims = build("e5-small")
    freeze_for_speed(model, word_embeddings=True)
    recipes = {n: cls(model, dims) for n, cls in RECIPES.items()}
    cycles = mixed_batches(2 if quick else 6)
    check = loss_check(model, recipes, cycles[:1])
    timed = time_recipes(model, recipes, cycles, budget_s=150, n_min=1 if quick else 4)
    a, b, c = (timed[n] for n in RECIPES)
    return {
        "params": param_counts(model), "mrl_dims": dims, "k": MIXED_K, "recipes": timed, "losses": check,
        "ratios": {"mixed_vs_st": b["cycle_s"]["median"] / a["cycle_s"]["median"],
                   "mixed_vs_reference": c["cycle_s"]["median"] / a["cycle_s"]["median"],
                   **{f"{t}_vs_st": b["task_s"][t]["median"] / a["task_s"][t]["median"] for t in TASKS}},
        "paired_ratios": {"mixed_vs_st": _paired(a["cycles"], b["cycles"]),
                          "mixed_vs_reference": _paired(a["cycles"], c["cycles"])},
        "share_of_st_cycle": {t: statistics.median(b["task_times"][t]) / b["cycle_s"]["median"] for t in TASKS},
    }


def run(quick: bool = False) -> dict:
    missing = e5_small_missing()
    if missing:
        return {"skipped": missing}
    torch.manual_seed(0)
    steps = {"offline-bert": {"all parameters": step_times("offline-bert", {}, quick)}}
    steps["e5-small"] = {name: step_times("e5-small", v, quick)
                         for name, v in (list(VARIANTS.items())[1:2] if quick else VARIANTS.items())}
    return {"step_batch": STEP_BATCH, "steps": steps, "versus": versus(quick)}
