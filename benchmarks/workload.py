"""The fixed benchmark workload: raw batches drawn from data_samples/train, identical for every recipe.

Mixed workload (issue 8): equal shares of retrieval with K=1 hard negative, STS, and classification
with K=9 label negatives (every other label); batch 32; max length 64 for queries, STS texts and labels, 128 for
passages. A batch is plain text (no tokens), so each recipe tokenizes it its own way inside the
timed step, as training does in its collator.

Negatives: a retrieval row lists 3-4 hard negatives; when K exceeds them, random passages of other
rows fill up (step cost depends on lengths, not content). A classification row lists its 9 other
labels (the set has 10): the mixed workload takes all 9, since a row uses min(K, available) negatives
(PiccoloCollator, as the reference does); the scaling benchmark's K > 9 draws with replacement, for timing. The
reference strategy encodes every drawn label string; deduplication encodes each distinct one once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from piccolo_lib.data import read_jsonl
from piccolo_lib.paths import REPO_ROOT

TASKS = ("retri_contrast", "cosent", "cls_contrast")  # record types, in workload order
TASK_NAMES = {"retri_contrast": "retrieval", "cosent": "STS", "cls_contrast": "classification"}
FILES = {"retri_contrast": "retrieval.jsonl", "cosent": "sts.jsonl", "cls_contrast": "classification.jsonl"}
MIXED_K = {"retri_contrast": 1, "cosent": 0, "cls_contrast": 9}  # 9: every other label of the 10
BATCH = 32
QUERY_MAX_LEN, PASSAGE_MAX_LEN = 64, 128


@dataclass
class Batch:
    """One task-homogeneous batch of text.

    ``texts``: (B,) queries / STS first sides / texts to classify. ``positives``: (B,) the positive
    passage or gold label text (STS: the second side). ``negatives``: (B, K) strings (empty for STS).
    ``scores``: (B,) STS gold scores (None otherwise).
    """

    task: str
    texts: list[str]
    positives: list[str]
    negatives: list[list[str]]
    scores: list[float] | None = None

    @property
    def size(self) -> int:
        return len(self.texts)

    @property
    def k(self) -> int:
        return len(self.negatives[0]) if self.negatives else 0


def _rows(task: str) -> list[dict]:
    return read_jsonl(REPO_ROOT / "data_samples" / "train" / FILES[task])


def _retrieval_negatives(row: dict, k: int, passages: list[str], rng: random.Random) -> list[str]:
    listed = list(row["text_neg"])
    if k <= len(listed):
        return rng.sample(listed, k)
    others = [p for p in passages if p != row["text_pos"] and p not in listed]
    return listed + rng.sample(others, k - len(listed))


def make_batch(task: str, batch_size: int, k: int, rng: random.Random) -> Batch:
    """Draw one batch of ``batch_size`` distinct rows of ``task`` with ``k`` negatives per row."""
    rows = _rows(task)
    picked = rng.sample(rows, batch_size)
    if task == "cosent":
        return Batch(task, [r["text"] for r in picked], [r["text_pair"] for r in picked], [],
                     [float(r["label"]) for r in picked])
    positives = [r["text_pos"] if isinstance(r["text_pos"], str) else r["text_pos"][0] for r in picked]
    if task == "retri_contrast":
        passages = sorted({r["text_pos"] for r in rows if isinstance(r["text_pos"], str)})
        negatives = [_retrieval_negatives(r, k, passages, rng) for r in picked]
    else:  # classification: the row's other labels, with replacement once K exceeds them
        negatives = [rng.sample(r["text_neg"], k) if k <= len(r["text_neg"])
                     else [rng.choice(r["text_neg"]) for _ in range(k)] for r in picked]
    return Batch(task, [r["text"] for r in picked], positives, negatives)


def mixed_batches(n_cycles: int, *, batch_size: int = BATCH, seed: int = 0) -> list[list[Batch]]:
    """``n_cycles`` cycles of the mixed workload, each cycle one batch of every task (retrieval, STS, cls)."""
    rng = random.Random(seed)
    return [[make_batch(t, batch_size, MIXED_K[t], rng) for t in TASKS] for _ in range(n_cycles)]


def distinct_labels(batch: Batch) -> int:
    """Distinct label texts of a classification batch (what label deduplication encodes)."""
    return len(set(batch.positives) | {n for row in batch.negatives for n in row})
