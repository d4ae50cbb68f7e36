"""Training-step throughput and peak memory: piccolo_lib vs plain sentence-transformers vs the reference.

On the mixed workload (benchmarks.workload: retrieval K=1, STS, classification K=10, batch 32) each
cycle runs one batch of every task through each recipe (benchmarks.recipes), interleaved and in a
rotating order, on one shared model and optimizer (weights drift the same way for all; a step's cost
does not depend on the weights). Before timing, the losses of the three recipes are computed on the
same batches with the same weights and dropout off, and compared where they compute the same thing.
"""

from __future__ import annotations

import statistics

import torch

from .common import backbones, build, make_optimizer, param_counts, repeats, stats, train_step
from .memory import measure
from .recipes import RECIPES, Piccolo
from .workload import BATCH, MIXED_K, TASKS, mixed_batches

NAMES = list(RECIPES)  # piccolo_lib, sentence-transformers, reference
SAME = {  # (task, recipe, recipe) pairs that compute the same loss; "piccolo_lib*" = false-negative masking off
    "retri_contrast": [("piccolo_lib*", "sentence-transformers"), ("piccolo_lib*", "reference")],
    "cosent": [("piccolo_lib", "sentence-transformers"), ("piccolo_lib", "reference")],
    "cls_contrast": [("piccolo_lib", "reference")],
}


def loss_check(model, recipes: dict, cycles: list) -> dict:
    """Loss of every recipe on the same batches and weights (dropout off); max |diff| per same-loss pair."""
    recipes = {**recipes, "piccolo_lib*": Piccolo(model, recipes["piccolo_lib"].mrl_dims, mask_false_negatives=False)}
    values: dict[str, dict[str, list[float]]] = {t: {n: [] for n in recipes} for t in TASKS}
    model.eval()
    with torch.no_grad():
        for cycle in cycles:
            for batch in cycle:
                for name, recipe in recipes.items():
                    values[batch.task][name].append(float(recipe.loss(batch, recipe.prepare(batch))))
    model.train()
    out = {"pairs": [], "batches": len(cycles)}
    for task, pairs in SAME.items():
        for x, y in pairs:
            diff = max(abs(a - b) for a, b in zip(values[task][x], values[task][y]))
            out["pairs"].append({"task": task, "a": x, "b": y, "max_abs_diff": diff})
    retrieval = values["retri_contrast"]
    masked = [abs(a - b) for a, b in zip(retrieval["piccolo_lib"], retrieval["piccolo_lib*"])]
    out["masking"] = {"batches_changed": sum(d > 1e-6 for d in masked), "max_effect": max(masked)}
    out["cls_plain_st_vs_piccolo"] = {  # MNRL also treats other rows' labels as negatives: a different loss
        "piccolo_lib": statistics.mean(values["cls_contrast"]["piccolo_lib"]),
        "sentence-transformers": statistics.mean(values["cls_contrast"]["sentence-transformers"])}
    return out


def time_recipes(model, recipes: dict, cycles: list, budget_s: float, n_min: int = 3) -> dict:
    """Interleaved steps; cycle 0 is warm-up. Per recipe: cycle time, per-task time, rows and tokens."""
    optimizer = make_optimizer(model)
    model.train()
    names = list(recipes)
    rec = {n: {"cycle": [], "task": {t: [] for t in TASKS}, "rows": {t: [] for t in TASKS},
               "tokens": {t: [] for t in TASKS}} for n in names}
    for c in repeats(len(cycles), budget_s, n_min=n_min + 1):
        order = names[c % len(names):] + names[:c % len(names)]
        spent = dict.fromkeys(names, 0.0)
        for batch in cycles[c]:
            for name in order:
                r = recipes[name]
                dt, _, prepared = train_step(model, optimizer, lambda r=r: r.prepare(batch),
                                             lambda p, r=r: r.loss(batch, p))
                rows, tokens = r.encoded(prepared[0])
                spent[name] += dt
                if c > 0:
                    rec[name]["task"][batch.task].append(dt)
                    rec[name]["rows"][batch.task].append(rows)
                    rec[name]["tokens"][batch.task].append(tokens)
        if c > 0:
            for name in names:
                rec[name]["cycle"].append(spent[name])
    per_cycle = BATCH * len(TASKS)
    out = {}
    for name, r in rec.items():
        out[name] = {
            "cycle_s": stats(r["cycle"]),
            "samples_per_s": stats([per_cycle / s for s in r["cycle"]]),
            "task_s": {t: stats(v) for t, v in r["task"].items()},
            "rows": {t: statistics.mean(v) for t, v in r["rows"].items()},
            "tokens": {t: statistics.mean(v) for t, v in r["tokens"].items()},
            "cycles": r["cycle"], "task_times": r["task"],
        }
    return out


def _paired(a: list[float], b: list[float]) -> dict:
    """Per-cycle ratios b/a (how many times faster a is), paired by cycle."""
    return stats([y / x for x, y in zip(a, b)])


def compare(backbone: str, quick: bool) -> dict:
    model, dims = build(backbone)
    recipes = {n: cls(model, dims) for n, cls in RECIPES.items()}
    big = backbone != "offline-bert"
    n_cycles = 2 if quick else (6 if big else 16)  # includes the warm-up cycle
    cycles = mixed_batches(n_cycles)
    check = loss_check(model, recipes, cycles[:1] if quick or big else cycles[:4])
    timed = time_recipes(model, recipes, cycles, budget_s=100 if big else 60, n_min=1 if quick else 3)
    a, b, c = (timed[n] for n in NAMES)
    ratios = {
        "mixed_vs_st": b["cycle_s"]["median"] / a["cycle_s"]["median"],
        "mixed_vs_reference": c["cycle_s"]["median"] / a["cycle_s"]["median"],
        "cls_vs_st": b["task_s"]["cls_contrast"]["median"] / a["task_s"]["cls_contrast"]["median"],
        "cls_vs_reference": c["task_s"]["cls_contrast"]["median"] / a["task_s"]["cls_contrast"]["median"],
    }
    paired = {
        "mixed_vs_st": _paired(a["cycles"], b["cycles"]),
        "mixed_vs_reference": _paired(a["cycles"], c["cycles"]),
        "cls_vs_st": _paired(a["task_times"]["cls_contrast"], b["task_times"]["cls_contrast"]),
        "cls_vs_reference": _paired(a["task_times"]["cls_contrast"], c["task_times"]["cls_contrast"]),
    }
    if quick:  # one process for all recipes (reduced); full runs: a fresh process per recipe
        memory = measure(backbone, NAMES)
    else:
        memory = {n: (measure(backbone, [n]) or {}).get(n) for n in NAMES}
    return {"backbone": backbone, "params": param_counts(model), "mrl_dims": dims, "batch": BATCH, "k": MIXED_K,
            "recipes": timed, "ratios": ratios, "paired_ratios": paired, "losses": check, "memory": memory}


def run(quick: bool = False) -> dict:
    """Throughput, memory and loss agreement of the three recipes on each backbone."""
    return {"backbones": {bb: compare(bb, quick) for bb in backbones(quick)}}
