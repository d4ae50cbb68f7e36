"""Classification batches: encode each distinct label text once vs every label string of every row.

The reference implementation encodes B x (1 + K) label strings per classification batch; the same
few labels repeat across rows, so piccolo_lib encodes the distinct ones and gathers (same loss and
gradient). This measures rows encoded, step time and the loss difference on data_samples.
"""

from __future__ import annotations

import random
import statistics
import time

import torch

from piccolo_lib.data import read_jsonl
from piccolo_lib.losses import PiccoloLoss, cls_contrast
from piccolo_lib.model import build_model
from piccolo_lib.training import REPO_ROOT


def _batches(batch_size: int, k: int, n_batches: int, seed: int = 0) -> list[tuple[list[str], list[list[str]]]]:
    rows = read_jsonl(REPO_ROOT / "data_samples" / "train" / "classification.jsonl")
    rng = random.Random(seed)
    out = []
    for _ in range(n_batches):
        batch = rng.sample(rows, batch_size)
        out.append(([r["text"] for r in batch], [[r["text_pos"]] + rng.sample(r["text_neg"], k) for r in batch]))
    return out


def _step(model, texts, labels, dedup: bool) -> tuple[float, float]:
    """One forward + backward; returns (seconds, loss)."""
    t0 = time.perf_counter()
    prep = lambda xs: model.preprocess(xs, max_length=64)
    b, k1 = len(labels), len(labels[0])
    if dedup:
        distinct = sorted({x for row in labels for x in row})
        index = torch.tensor([[distinct.index(x) for x in row] for row in labels])  # (B, 1 + K)
        loss = PiccoloLoss(model, "cls_contrast")([prep(texts), prep(distinct)], index)
    else:  # the reference strategy: every label string of every row goes through the encoder
        text_emb = model(prep(texts))["sentence_embedding"]  # (B, D)
        every = model(prep([x for row in labels for x in row]))["sentence_embedding"].reshape(b, k1, -1)
        loss = cls_contrast(text_emb, every[:, 0], every[:, 1:])
    loss.backward()
    model.zero_grad()
    return time.perf_counter() - t0, float(loss)


def run(quick: bool = False) -> dict:
    """Median step time of both strategies on identical batches, rows encoded, and the loss gap."""
    torch.manual_seed(0)
    model = build_model("offline-bert", device="cpu")
    n = 3 if quick else 12
    batches = _batches(32, 9, n + 2)
    results = {name: {"times": [], "losses": []} for name in ("every_label", "dedup")}
    for i, (texts, labels) in enumerate(batches):  # interleaved, so machine noise hits both alike
        for name in ("every_label", "dedup"):
            dt, loss = _step(model, texts, labels, name == "dedup")
            if i >= 2:  # warm-up
                results[name]["times"].append(dt)
            results[name]["losses"].append(loss)
    for r in results.values():
        r.update(median_s=statistics.median(r["times"]), min_s=min(r["times"]), max_s=max(r["times"]))
    distinct = [len({x for row in labels for x in row}) for _, labels in batches]
    return {
        "batch": 32, "k": 9, "rows_encoded_every_label": 32 + 32 * 10,
        "rows_encoded_dedup_mean": 32 + statistics.mean(distinct),
        "speedup": results["every_label"]["median_s"] / results["dedup"]["median_s"],
        "max_loss_diff": max(abs(a - b) for a, b in zip(results["dedup"]["losses"], results["every_label"]["losses"])),
        **{k: {kk: vv for kk, vv in v.items() if kk not in ("losses", "times")} for k, v in results.items()},
    }
