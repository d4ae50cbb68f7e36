"""GradCache: peak step memory and step time vs batch size, cached vs uncached, on e5-small.

The workload: retrieval batches (InfoNCE, 1 hard negative, the 7 MRL dims, projection head) from
data_samples/train, queries cut at 16 tokens and passages at 32 (short, so 2 CPU cores reach batch 512),
word embeddings frozen (96M of e5-small's 118M parameters; AdamW on them would dominate the step).
Each (variant, batch size) runs in a fresh process, as benchmarks/memory.py does: one warm-up step at
batch 8, then the measured step; memory is the step's peak RSS above the process at rest (weights and
AdamW state resident), read from VmHWM after resetting it. Cached = GradCache with chunks of 32 rows.

``python -m benchmarks.gradcache VARIANT BATCH`` prints one JSON line (used by :func:`run`).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BACKBONE = "e5-small"
MINIBATCH = 32
QUERY_LEN, PASSAGE_LEN = 16, 32
BATCHES = {"cached": (32, 64, 128, 256, 512), "uncached": (32, 64, 128)}  # uncached 256+: ~8-16 GB on a shared 23 GB box


def _batch(model, n: int) -> tuple[list[dict], object]:
    """n distinct retrieval rows (retrieval + reranking files) collated as in training."""
    from piccolo_lib.data import read_jsonl
    from piccolo_lib.paths import REPO_ROOT
    from piccolo_lib.tasks import PiccoloCollator, TaskSpec

    rows = [r for f in ("retrieval.jsonl", "reranking.jsonl") for r in read_jsonl(REPO_ROOT / "data_samples/train" / f)]
    rows = [{**r, "dataset_name": "d", "_row": i} for i, r in enumerate(rows[:n])]
    if len(rows) < n:
        raise ValueError(f"only {len(rows)} distinct rows for batch {n}")
    spec = TaskSpec("retri_contrast", 1, "query: ", "passage: ")
    out = PiccoloCollator(model.preprocess, {"d": spec}, query_max_len=QUERY_LEN, passage_max_len=PASSAGE_LEN,
                          pad_token_id=model.tokenizer.pad_token_id)(rows)
    return [{k[len("texts_"):]: v for k, v in out.items() if k.startswith("texts_")}], out["label"]


def child(variant: str, batch: int) -> dict:
    """In a fresh process: one warm-up step, then the measured one."""
    import torch

    from piccolo_lib.train.adapter import PiccoloLoss

    from .common import build, make_optimizer
    from .memory import _reset_peak, _status

    model, dims = build(BACKBONE)
    model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    optimizer = make_optimizer(model)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss_fn = PiccoloLoss(model, "retrieval", mrl_dims=dims,
                          gradient_cache_minibatch=MINIBATCH if variant == "cached" else 0)

    def step(n: int) -> tuple[float, float]:
        features, labels = _batch(model, n)
        t0 = time.perf_counter()
        loss = loss_fn(features, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0, float(loss.detach())

    step(8)
    gc.collect()
    _reset_peak()
    base = _status("VmRSS")
    seconds, loss = step(batch)
    return {"variant": variant, "batch": batch, "step_s": seconds, "loss": loss,
            "peak_mb": (_status("VmHWM") - base) / 2**20, "rest_mb": base / 2**20,
            "threads": torch.get_num_threads()}


def interleaved_times(batches: tuple[int, ...] = (32, 64), rounds: int = 3) -> dict:
    """Step time of both variants in one process, alternating step by step (machine noise hits both alike).

    Returns:
        {batch: {"uncached": stats, "cached": stats, "ratio": median of per-round cached/uncached}}.
    """
    import torch

    from piccolo_lib.train.adapter import PiccoloLoss

    from .common import build, make_optimizer, stats

    model, dims = build(BACKBONE)
    model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    optimizer = make_optimizer(model)
    fns = {v: PiccoloLoss(model, "retrieval", mrl_dims=dims, gradient_cache_minibatch=MINIBATCH if v == "cached" else 0)
           for v in ("uncached", "cached")}
    out = {}
    for b in batches:
        features, labels = _batch(model, b)
        times: dict[str, list[float]] = {v: [] for v in fns}
        for r in range(rounds + 1):  # round 0 warms up
            for v, fn in fns.items():
                t0 = time.perf_counter()
                fn(features, labels).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if r:
                    times[v].append(time.perf_counter() - t0)
        ratios = [c / u for c, u in zip(times["cached"], times["uncached"])]
        out[b] = {"uncached": stats(times["uncached"]), "cached": stats(times["cached"]), "ratio": stats(ratios),
                  "threads": torch.get_num_threads()}
        print(b, out[b], flush=True)
    return out


def measure(variant: str, batch: int, timeout_s: float = 900) -> dict:
    """:func:`child` in a fresh interpreter (malloc settings of benchmarks/memory.py)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-m", "benchmarks.gradcache", variant, str(batch)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError(f"gradcache child {variant}/{batch} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False, batches: dict[str, tuple[int, ...]] | None = None) -> dict:
    """Each variant at its batch sizes (quick: 8 and 16 rows, no claims)."""
    batches = batches or ({"cached": (8, 16), "uncached": (8, 16)} if quick else BATCHES)
    rows = []
    for b in sorted({b for v in batches.values() for b in v}):
        for variant in ("uncached", "cached"):
            if b in batches[variant]:
                rows.append(measure(variant, b))
                print(json.dumps(rows[-1]), flush=True)
    times = interleaved_times((8, 16) if quick else (32, 64), 1 if quick else 3)
    return {"backbone": BACKBONE, "minibatch": MINIBATCH, "query_len": QUERY_LEN, "passage_len": PASSAGE_LEN,
            "rows": rows, "times": times}


def render(data: dict) -> str:
    """The RESULTS.md section: one row per batch size."""
    by = {(r["variant"], r["batch"]): r for r in data["rows"]}
    sizes = sorted({r["batch"] for r in data["rows"]})
    lines = ["## 9. GradCache: memory and time vs batch size (benchmarks/gradcache.py)\n",
             f"{data['backbone']}, retrieval batches (1 hard negative, 7 MRL dims), queries {data['query_len']} / "
             f"passages {data['passage_len']} tokens, word embeddings frozen; cached = chunks of {data['minibatch']} "
             "rows. Peak = the step's RSS above the process at rest (weights and AdamW state resident); one "
             "measured step per fresh process. Uncached above 128 rows not run: extrapolated 8-16 GB on a shared "
             "23 GB machine.\n",
             "| batch | peak MB uncached | peak MB cached |", "|---|---|---|"]
    for b in sizes:
        u, c = by.get(("uncached", b)), by.get(("cached", b))
        cell = lambda r: f"{r['peak_mb']:.0f}" if r else "not run"  # noqa: E731
        lines.append(f"| {b} | {cell(u)} | {cell(c)} |")
    pairs = [(by[("uncached", b)], by[("cached", b)]) for b in sizes if ("uncached", b) in by and ("cached", b) in by]
    cached = sorted((r for r in data["rows"] if r["variant"] == "cached"), key=lambda r: r["batch"])
    if len(pairs) >= 2 and len(cached) >= 2:
        (u0, c0), (u1, c1) = pairs[0], pairs[-1]
        lines.append(f"\nFrom batch {u0['batch']} to {u1['batch']} the uncached step's peak grows "
                     f"{u1['peak_mb'] / u0['peak_mb']:.1f}x ({u0['peak_mb']:.0f} -> {u1['peak_mb']:.0f} MB), the cached "
                     f"one {c1['peak_mb'] / c0['peak_mb']:.1f}x ({c0['peak_mb']:.0f} -> {c1['peak_mb']:.0f} MB); from "
                     f"{cached[0]['batch']} to {cached[-1]['batch']} rows the cached peak goes {cached[0]['peak_mb']:.0f} -> "
                     f"{cached[-1]['peak_mb']:.0f} MB. Dropout is on here, so the two variants' losses differ "
                     "by their dropout masks once a batch spans several chunks; with dropout off, tests/test_gradcache.py "
                     "shows equal losses and gradients.")
    times = data.get("times") or {}
    if times:
        lines += ["\nStep time (forward, backward, AdamW), both variants alternating in one process, median "
                  "[min-max] of the rounds after a warm-up:\n", "| batch | uncached s | cached s | cached / uncached |",
                  "|---|---|---|---|"]
        for b, t in times.items():
            lines.append(f"| {b} | {s3(t['uncached'], fmt='.2f')} | {s3(t['cached'], fmt='.2f')} | "
                         f"{s3(t['ratio'], fmt='.2f')} |")
    if data.get("note"):
        lines.append("\n" + data["note"])
    return "\n".join(lines) + "\n"


def s3(st: dict, fmt: str = ".2f") -> str:
    return f"{st['median']:{fmt}} [{st['min']:{fmt}}-{st['max']:{fmt}}]"


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
