"""Refreshing negatives at scale: 100k retrieval rows against 200k passages, the picking without the encoding.

The refresh (piccolo_lib.train.refresh.refresh_negatives) encodes the queries and the corpus with the model being
trained, then ranks the corpus for every row and picks replacements from the rank window. Encoding 300k texts is
the model's cost (an e5-small forward), the same for any picker; this benchmark times the rest: the corpus
deduplication by text id, the blocked top-k ranking, and the per-row window picking. The "model" returns fixed
unit vectors (D = 384, e5-small's width), so nothing but the refresh is timed.

Side by side: the picker before issue 25 scored every row with ``d @ q[i]`` and a full ``argsort`` of the corpus
in Python; it is timed on ``OLD_ROWS`` rows and scaled to 100k rows linearly (its cost per row does not depend on
the number of rows).
"""

from __future__ import annotations

import random
import time

import torch

ROWS, PASSAGES, DIM, OLD_ROWS = 100_000, 200_000, 384, 200


class Fixed:
    """A 'model' whose ``encode`` looks the text's unit vector up (no forward pass)."""

    training = False

    def __init__(self, vectors: dict[str, torch.Tensor]) -> None:
        self.vectors = vectors

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def encode(self, texts, **_):
        return torch.stack([self.vectors[t] for t in texts])


def workload(rows: int, passages: int, dim: int, seed: int = 0):
    """``rows`` retrieval rows (one positive, one negative each) over a corpus of ``passages`` texts, and vectors."""
    g = torch.Generator().manual_seed(seed)
    docs = [f"passage {i}" for i in range(passages)]
    queries = [f"query {i}" for i in range(rows)]
    vecs = torch.nn.functional.normalize(torch.randn(passages + rows, dim, generator=g), dim=-1)
    vectors = dict(zip(docs + queries, vecs))
    rng = random.Random(seed)
    data = [{"text": q, "text_pos": docs[i % passages]} for i, q in enumerate(queries)]
    negatives = [[docs[rng.randrange(passages)]] for _ in range(rows)]
    return Fixed(vectors), data, negatives


def old_picker(q: torch.Tensor, d: torch.Tensor, lo: int, hi: int) -> float:
    """The pre-issue-25 inner loop (one ``d @ q[i]`` and a full argsort per row), seconds per row."""
    t0 = time.perf_counter()
    for i in range(q.shape[0]):
        sims = d @ q[i]
        torch.argsort(sims, descending=True)[lo:hi].tolist()
    return (time.perf_counter() - t0) / q.shape[0]


def run(quick: bool = False) -> dict:
    from piccolo_lib.train.refresh import refresh_negatives

    rows, passages = (2_000, 4_000) if quick else (ROWS, PASSAGES)
    model, data, negatives = workload(rows, passages, DIM)
    t0 = time.perf_counter()
    new, stats = refresh_negatives(model, data, negatives, threshold=0.05, range_min=50, range_max=100, seed=0,
                                   batch_size=4096)
    new_s = time.perf_counter() - t0
    q = torch.stack([model.vectors[r["text"]] for r in data[:OLD_ROWS]])
    d = torch.stack([model.vectors[f"passage {i}"] for i in range(passages)])
    per_row = old_picker(q, d, 50, 100)
    return {"rows": rows, "passages": passages, "dim": DIM, "threads": torch.get_num_threads(),
            "refresh_seconds": round(new_s, 1), "changed": stats.changed, "easy": stats.easy,
            "old_ms_per_row": round(per_row * 1e3, 2), "old_seconds_scaled": round(per_row * rows, 1),
            "speedup": round(per_row * rows / new_s, 1), "goal_seconds": 120, "met": new_s <= 120}


def render(data: dict) -> str:
    verdict = "met" if data["met"] else "**not met**"
    return (
        "## 10b. Refreshing negatives at scale (benchmarks/refresh_scale.py)\n\n"
        f"{data['rows']:,} rows against {data['passages']:,} passages, D = {data['dim']}, {data['threads']} threads; "
        "fixed unit vectors stand in for the encoder, so the time is the refresh's own (deduplication, blocked "
        "top-k, window picking).\n\n"
        "| picker | seconds for all rows |\n|---|---|\n"
        f"| before issue 25 (`d @ q[i]`, full argsort per row; {data['old_ms_per_row']} ms a row, scaled) "
        f"| {data['old_seconds_scaled']:,.0f} |\n"
        f"| blocked top-k + the shared window picker | {data['refresh_seconds']:,.1f} |\n\n"
        f"{data['speedup']}x faster; the goal of {data['goal_seconds']} s is {verdict}. "
        f"{data['changed']:,} negatives were replaced ({data['easy']:,} found too easy). Under DDP each rank "
        "ranks its own shard of the rows (train.refresh), so the other ranks wait at most one shard's time.\n")


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
