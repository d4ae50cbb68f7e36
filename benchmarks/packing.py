"""Packed encoding in a real training run: the quickstart with ``packed_encoding`` off and on, 2 seeds.

With dropout off, packing gives the same loss and gradients as one pass per column (tests/test_packing.py).
The quickstart trains with e5-small's own dropout (0.1), and a text that repeats in a batch then shares one
dropout mask: the runs can differ as two seeds do. This measures how much, on the local held-out benchmark
(all six categories, texts never seen in training), and what packing saves in the training's wall time
(``train()`` end to end: model build, 40 steps, save; a finished run's record, run.json, is reused by later
calls, so adding a seed trains only that seed). A third run per seed adds ``precision: auto`` (bf16
autocast where the CPU has bf16 matrix units) to packing, for the same question about bf16. Runs go to
build/bench-packing/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .common import e5_small_missing

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench-packing"
SEEDS = (42, 1, 2)


VARIANTS = ((False, "fp32"), (True, "fp32"), (True, "auto"))  # (packed_encoding, precision)


def _run(seed: int, packed: bool, precision: str, quick: bool) -> dict:
    from sentence_transformers import SentenceTransformer

    from piccolo_lib.evaluate.run import evaluate_model, local_tasks
    from piccolo_lib.train.loop import load_config, train

    from piccolo_lib.train.config import auto_precision

    name = f"{'packed' if packed else 'unpacked'}-{precision}-seed{seed}{'-quick' if quick else ''}"
    record = OUT / name / "run.json"
    if record.exists() and not quick:
        return json.loads(record.read_text(encoding="utf-8"))
    cfg = load_config(ROOT / "configs" / "quickstart.yaml",
                      {"seed": seed, "packed_encoding": packed, "precision": precision, "output_dir": str(OUT / name),
                       "logging_steps": 1000,
                       **({"max_steps": 3, "batch_size": 4} if quick else {})})
    t0 = time.perf_counter()
    final = train(cfg)
    train_s = time.perf_counter() - t0
    model = SentenceTransformer(str(final), device="cpu")
    tasks = local_tasks(ROOT / "data_samples" / "eval")
    result = evaluate_model(model, tasks, OUT / "eval", model_name=name, show_progress=False)
    resolved = auto_precision("cpu") if precision == "auto" else precision
    row = {"seed": seed, "packed": packed, "precision": resolved, "train_s": train_s, "average": result["average"],
           "categories": result["categories"]}
    record.write_text(json.dumps(row), encoding="utf-8")
    return row


def run(quick: bool = False) -> dict:
    missing = e5_small_missing()
    if missing:
        return {"skipped": missing}
    rows = [_run(seed, packed, precision, quick) for seed in (SEEDS[:1] if quick else SEEDS)
            for packed, precision in VARIANTS]
    return {"rows": rows}


def render(data: dict) -> str:
    rows = data["rows"]
    cats = list(rows[0]["categories"])
    lines = ["## 13. Packed encoding in training: held-out scores and time (benchmarks/packing.py)\n",
             "`configs/quickstart.yaml` (e5-small, batch 16, 40 steps, dropout 0.1) with `packed_encoding` off and on, "
             "and packed with `precision: auto`; local held-out benchmark, all six categories. Training time is "
             "`train()` end to end.\n",
             "| seed | packed | precision | training s | average | " + " | ".join(cats) + " |",
             "|---|---|---|---|---|" + "---|" * len(cats)]
    for r in rows:
        lines.append(f"| {r['seed']} | {'on' if r['packed'] else 'off'} | {r['precision']} | {r['train_s']:.0f} | "
                     f"{r['average']:.2f} | " + " | ".join(f"{r['categories'][c]:.2f}" for c in cats) + " |")
    base = {r["seed"]: r for r in rows if not r["packed"]}
    off = [r["average"] for r in base.values()]
    lines.append("")
    for label, pick in (("packed fp32", lambda r: r["packed"] and r["precision"] == "fp32"),
                        ("packed bf16", lambda r: r["packed"] and r["precision"] == "bf16")):
        pairs = [(r, base[r["seed"]]) for r in rows if pick(r) and r["seed"] in base]
        if pairs:
            lines.append(f"- {label} minus unpacked fp32, average: "
                         + ", ".join(f"{a['average'] - b['average']:+.2f} (seed {a['seed']})" for a, b in pairs)
                         + "; training time unpacked / this: "
                         + ", ".join(f"{b['train_s'] / a['train_s']:.2f}x" for a, b in pairs))
    if len(off) > 1:
        lines.append(f"- seed-to-seed spread (max - min) of the average, unpacked fp32: {max(off) - min(off):.2f}")
        for label, pick in (("unpacked fp32", lambda r: not r["packed"]),
                            ("packed fp32", lambda r: r["packed"] and r["precision"] == "fp32"),
                            ("packed bf16", lambda r: r["packed"] and r["precision"] == "bf16")):
            avg = [r["average"] for r in rows if pick(r)]
            if avg:
                lines.append(f"- {label}: mean average {sum(avg) / len(avg):.2f} over {len(avg)} seeds "
                             f"(min {min(avg):.2f}, max {max(avg):.2f})")
    return "\n".join(lines) + "\n"
