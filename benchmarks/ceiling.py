"""Hardware ceiling: the machine's float32 matmul throughput, and what a training step achieves of it.

Ceiling: ``torch.mm`` of two n x n float32 matrices (2 n^3 FLOPs) with torch's thread count, median
over repeats, best n. Achieved: the usual model-FLOPs estimate 6 x parameters x tokens per step
(forward 2, backward 4 FLOPs per parameter and token; Kaplan et al. 2020), with padded tokens, since
the encoder computes on padding too; see :func:`achieved`.
"""

from __future__ import annotations

import time

import torch

from .common import stats

SIZES = (1024, 2048)


def matmul_gflops(n: int, reps: int) -> dict:
    """GFLOP/s of an n x n float32 matmul: median, min, max over ``reps`` (after 2 warm-up products)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.mm(a, b)
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return stats(rates)


def run(quick: bool = False) -> dict:
    """Matmul GFLOP/s per size; the ceiling is the best median."""
    sizes = {n: matmul_gflops(n, 3 if quick else (20 if n <= 1024 else 8)) for n in SIZES}
    best = max(sizes, key=lambda n: sizes[n]["median"])
    return {"threads": torch.get_num_threads(), "sizes": {str(n): s for n, s in sizes.items()},
            "ceiling_gflops": sizes[best]["median"], "best_n": best}


def achieved(train: dict, ceiling_gflops: float, recipe: str = "piccolo_lib") -> dict:
    """Model FLOP/s of ``recipe``'s mixed-workload cycle in a train_step result, and the fraction of the ceiling."""
    r = train["recipes"][recipe]
    tokens = sum(r["tokens"].values())  # padded tokens encoded in one cycle (one batch of each task)
    seconds = r["cycle_s"]["median"]
    out = {"tokens_per_cycle": tokens, "cycle_s": seconds}
    for kind, n in train["params"].items():
        gflops = 6 * n * tokens / seconds / 1e9
        out[kind] = {"params": n, "gflops": gflops, "fraction": gflops / ceiling_gflops}
    return out
