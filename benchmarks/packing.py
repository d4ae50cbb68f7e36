"""Packed encoding in a real training run: the quickstart with ``packed_encoding`` off and on, 2 seeds.

With dropout off, packing gives the same loss and gradients as one pass per column (tests/test_packing.py).
The quickstart trains with e5-small's own dropout (0.1), and a text that repeats in a batch then shares one
dropout mask: the runs can differ as two seeds do. This measures how much, on the local held-out benchmark
(all six categories, texts never seen in training), and what packing saves in the training's wall time
(``train()`` end to end: model build, 40 steps, save). Runs go to build/bench-packing/.
"""

from __future__ import annotations

import time
from pathlib import Path

from .common import e5_small_missing

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench-packing"
SEEDS = (42, 1)


def _run(seed: int, packed: bool, quick: bool) -> dict:
    from sentence_transformers import SentenceTransformer

    from piccolo_lib.evaluation import evaluate_model, local_tasks
    from piccolo_lib.training import load_config, train

    name = f"{'packed' if packed else 'unpacked'}-seed{seed}{'-quick' if quick else ''}"
    cfg = load_config(ROOT / "configs" / "quickstart.yaml",
                      {"seed": seed, "packed_encoding": packed, "output_dir": str(OUT / name), "logging_steps": 1000,
                       **({"max_steps": 3, "batch_size": 4} if quick else {})})
    t0 = time.perf_counter()
    final = train(cfg)
    train_s = time.perf_counter() - t0
    model = SentenceTransformer(str(final), device="cpu")
    tasks = local_tasks(ROOT / "data_samples" / "eval")
    result = evaluate_model(model, tasks, OUT / "eval", model_name=name, show_progress=False)
    return {"seed": seed, "packed": packed, "train_s": train_s, "average": result["average"],
            "categories": result["categories"]}


def run(quick: bool = False) -> dict:
    missing = e5_small_missing()
    if missing:
        return {"skipped": missing}
    rows = [_run(seed, packed, quick) for seed in (SEEDS[:1] if quick else SEEDS) for packed in (False, True)]
    return {"rows": rows}


def render(data: dict) -> str:
    rows = data["rows"]
    cats = list(rows[0]["categories"])
    lines = ["## 13. Packed encoding in training: held-out scores and time (benchmarks/packing.py)\n",
             "`configs/quickstart.yaml` (e5-small, batch 16, 40 steps, dropout 0.1, fp32) with `packed_encoding` off "
             "and on; local held-out benchmark, all six categories. Training time is `train()` end to end.\n",
             "| seed | packed | training s | average | " + " | ".join(cats) + " |", "|---|---|---|---|" + "---|" * len(cats)]
    for r in rows:
        lines.append(f"| {r['seed']} | {'on' if r['packed'] else 'off'} | {r['train_s']:.0f} | {r['average']:.2f} | "
                     + " | ".join(f"{r['categories'][c]:.2f}" for c in cats) + " |")
    by = {(r["seed"], r["packed"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    deltas = [by[(s, True)]["average"] - by[(s, False)]["average"] for s in seeds if (s, True) in by and (s, False) in by]
    off = [by[(s, False)]["average"] for s in seeds if (s, False) in by]
    speed = [by[(s, False)]["train_s"] / by[(s, True)]["train_s"] for s in seeds if (s, True) in by and (s, False) in by]
    if deltas:
        lines += ["", f"Packed minus unpacked, average: {', '.join(f'{d:+.2f}' for d in deltas)} (seeds "
                  f"{', '.join(map(str, seeds))}); the seed-to-seed spread unpacked: {max(off) - min(off):.2f}. "
                  f"Training time unpacked / packed: {', '.join(f'{x:.2f}x' for x in speed)}."]
    return "\n".join(lines) + "\n"
