"""Does refreshing hard negatives during training help held-out retrieval? e5-small, short runs, 2 seeds.

Each run fine-tunes e5-small (no projection head, the default MRL dims, all parameters) on the two
retrieval files of data_samples/train (600 rows, their hand-written same-topic negatives), batch 16,
one hard negative per row, ``STEPS`` steps; ``refresh`` runs re-score the negatives every
``EVERY`` steps (window and threshold at their defaults; the ``top`` variant takes replacements from
ranks 1-9, since the default window of this 200-passage corpus, ranks 10-19, holds mostly other topics). Scores: the local benchmark's Retrieval
(nDCG@10) and Reranking (MAP) tasks, whose texts never occur in training. Runs go to
build/bench-refresh/ (kept for benchmarks/merging.py, which merges the no-refresh run with the base).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench-refresh"
STEPS, EVERY, SEEDS = 24, 8, (1, 2)
CATEGORIES = ("Retrieval", "Reranking")


TOP_WINDOW = (1, 10)  # variant "top": replacements from ranks 1-9 instead of the default window


def config(seed: int, refresh: bool | str, steps: int = STEPS) -> dict:
    """The run's TrainConfig overrides (``refresh``: False, True, or "top" for the TOP_WINDOW variant)."""
    train = ROOT / "data_samples" / "train"
    return {"backbone": "e5-small", "projection_dim": 0, "data": [str(train / "retrieval.jsonl"),
                                                                  str(train / "reranking.jsonl")],
            "batch_size": 16, "neg_num": 1, "query_max_len": 32, "passage_max_len": 64, "max_seq_length": 64,
            "max_steps": steps, "lr": 3e-5, "warmup_ratio": 0.1, "seed": seed, "device": "cpu",
            "query_prompt": "query: ", "passage_prompt": "passage: ", "logging_steps": 1000,
            "refresh_negatives_every": EVERY if refresh else 0, "output_dir": str(OUT / f"{_name(seed, refresh)}"),
            **({"refresh_range_min": TOP_WINDOW[0], "refresh_range_max": TOP_WINDOW[1]} if refresh == "top" else {})}


def _name(seed: int, refresh: bool | str) -> str:
    return {False: "static", True: "refresh", "top": "refresh-top"}[refresh] + f"-seed{seed}"


def evaluate(path: str | Path, name: str, categories: tuple[str, ...] | None = CATEGORIES) -> dict:
    """Local-benchmark scores of a model folder (only ``categories``; None: all six)."""
    from sentence_transformers import SentenceTransformer

    from piccolo_lib.evaluate.run import evaluate_model, local_tasks

    tasks = [t for t in local_tasks(ROOT / "data_samples" / "eval")
             if categories is None or t.metadata.type in categories]
    model = SentenceTransformer(str(path), device="cpu")
    result = evaluate_model(model, tasks, OUT / "eval", model_name=name, show_progress=False)
    return {"categories": result["categories"], "average": result["average"]}


def run(quick: bool = False, variants: tuple = (False, True, "top"), seeds: tuple[int, ...] = SEEDS) -> dict:
    """Train and evaluate static vs refreshed negatives (default and top window) for each seed."""
    from piccolo_lib.train.loop import load_config, train

    rows = []
    for seed in seeds[:1] if quick else seeds:
        for refresh in variants:
            name = _name(seed, refresh)
            final = Path(config(seed, refresh)["output_dir"]) / "final"
            if not final.exists():
                train(load_config(None, config(seed, refresh, 4 if quick else STEPS)))
            log = [json.loads(x) for x in (final.parent / "metrics.jsonl").read_text().splitlines()]
            changes = {x["step"]: x["negatives_refreshed"] for x in log if "negatives_refreshed" in x}
            rows.append({"seed": seed, "refresh": refresh, "scores": evaluate(final, name), "refreshes": changes})
            print(json.dumps(rows[-1]), flush=True)
    return {"steps": STEPS, "every": EVERY, "rows": rows}


def render(data: dict) -> str:
    """The RESULTS.md section: per seed and variant, the two retrieval-type scores and their mean."""
    lines = ["## 10. Refreshed hard negatives on e5-small (benchmarks/refresh.py)\n",
             f"{data['steps']} steps, batch 16, 1 hard negative, retrieval + reranking training files; refresh every "
             f"{data['every']} steps (threshold 0.05, default window). Held-out local Retrieval (nDCG@10) and "
             "Reranking (MAP). Last column: negatives replaced and negatives found too easy, both datasets together.\n",
             "| seed | negatives | Retrieval | Reranking | mean | replaced per refresh |",
             "|---|---|---|---|---|---|"]
    label = {False: "static", True: "refreshed", "top": f"refreshed, ranks {TOP_WINDOW[0]}-{TOP_WINDOW[1] - 1}"}
    for r in data["rows"]:
        c = r["scores"]["categories"]
        mean = sum(c[k] for k in CATEGORIES) / len(CATEGORIES)
        changed = ", ".join(f"step {s}: {sum(v['changed'] for v in d.values())} of "
                            f"{sum(v['easy'] for v in d.values())} easy" for s, d in r["refreshes"].items()) or "-"
        lines.append(f"| {r['seed']} | {label[r['refresh']]} | {c['Retrieval']:.2f} | "
                     f"{c['Reranking']:.2f} | {mean:.2f} | {changed} |")
    for variant in (True, "top"):
        deltas = []
        for seed in sorted({r["seed"] for r in data["rows"]}):
            pair = {r["refresh"]: r["scores"]["categories"] for r in data["rows"] if r["seed"] == seed}
            if False in pair and variant in pair:
                deltas.append(f"seed {seed} {sum(pair[variant][k] - pair[False][k] for k in CATEGORIES) / 2:+.2f}")
        if deltas:
            lines.append(f"\n{label[variant].capitalize()} minus static, mean of the two scores: {', '.join(deltas)} points.")
    if data.get("note"):
        lines.append("\n" + data["note"])
    return "\n".join(lines) + "\n"
