"""Hard negatives refreshed during training (Conan-embedding's dynamic hard negatives).

Negatives mined once before training go stale: as the model learns, a mined negative it now ranks
far below the positive gives almost no gradient (InfoNCE weighs a negative by exp((s_n - s_p) / tau):
at tau = 0.01 a gap of 0.05 in cosine is a weight of e^-5). Conan-embedding (arXiv 2408.15710)
re-scores the candidates every ~100 steps and replaces such negatives. Here, every
``refresh_negatives_every`` steps, for each retrieval dataset:

1. the current model embeds the dataset's queries and its corpus (every positive and negative of
   the dataset, deduplicated by normalised text);
2. a negative n of query q is **too easy** when cos(q, n) < cos(q, p) - ``threshold``, p being the
   query's least similar positive;
3. each too-easy negative is replaced by a candidate from the query's rank window
   [``range_min``, ``range_max``) of the current ranking that is not a positive, not the query's own
   text, not already a negative of the row, and not itself too easy (seeded choice per row and
   refresh). A row without such a candidate keeps its negative.

The collator then samples from the refreshed lists (from step N + 2 for a refresh at the end of step N:
the data loader may already hold the next batch). Under DDP rank 0 computes the refresh and broadcasts it,
so every rank sees the same data, at the same step, whatever the number of processes.

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ..data.sampling import text_id


@dataclass
class RefreshStats:
    """What one refresh of one dataset did (logged to metrics.jsonl)."""

    rows: int = 0  # rows re-scored
    easy: int = 0  # negatives found too easy
    changed: int = 0  # negatives replaced (easy ones with a usable candidate in the window)


def default_window(corpus_size: int) -> tuple[int, int]:
    """The report's ranks 50-100, shrunk for small corpora: at most 5%-10% of the corpus (at least 1-2)."""
    return min(50, max(1, corpus_size // 20)), min(100, max(2, corpus_size // 10))


def _positives(row: dict) -> list[str]:
    pos = row["text_pos"]
    return list(pos) if isinstance(pos, list) else [pos]


@torch.no_grad()
def _unit_encode(model, texts: list[str], prompt: str, batch_size: int) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        emb = model.encode([prompt + t for t in texts], batch_size=batch_size, convert_to_tensor=True,
                           show_progress_bar=False)
    finally:
        model.train(was_training)
    return torch.nn.functional.normalize(emb.float().cpu(), dim=-1)


def refresh_negatives(model, rows: list[dict], negatives: list[list[str]], *, threshold: float = 0.05,
                      range_min: int | None = None, range_max: int | None = None, seed: int = 0,
                      query_prompt: str = "", passage_prompt: str = "", batch_size: int = 64
                      ) -> tuple[list[list[str]], RefreshStats]:
    """Replace the negatives the current model finds too easy by harder ones from a rank window.

    Args:
        model: a SentenceTransformer (or anything with its ``encode``), e.g. the model being trained.
        rows: retrieval records {text, text_pos (str or list)}.
        negatives: the current negative list of each row (same order as ``rows``).
        threshold: cosine gap below the (least similar) positive that makes a negative too easy.
        range_min, range_max: rank window (0-based, end excluded) of the current ranking of the
            corpus; None: :func:`default_window` of the corpus size.
        seed: replacement choice uses ``random.Random(f"{seed}/{i}")`` for row i.
        query_prompt, passage_prompt: prefixes as used in training.
        batch_size: encoding batch size.

    Returns:
        (new negative lists, same lengths as before; :class:`RefreshStats`).
    """
    corpus: dict[int, str] = {}
    for row, negs in zip(rows, negatives):
        for t in _positives(row) + list(negs):
            corpus.setdefault(text_id(t), t)
    ids, docs = list(corpus), list(corpus.values())
    lo, hi = default_window(len(docs)) if range_min is None or range_max is None else (range_min, range_max)
    hi = min(hi, len(docs))
    q = _unit_encode(model, [r["text"] for r in rows], query_prompt, batch_size)  # (R, D)
    d = _unit_encode(model, docs, passage_prompt, batch_size)  # (N, D)
    index = {i: j for j, i in enumerate(ids)}
    pooled: dict[int, set[int]] = {}  # a query seen in several rows pools its positives
    for row in rows:
        pooled.setdefault(text_id(row["text"]), set()).update(text_id(p) for p in _positives(row))
    stats, out = RefreshStats(rows=len(rows)), []
    for i, (row, negs) in enumerate(zip(rows, negatives)):
        sims = d @ q[i]  # (N,)
        pos_ids = pooled[text_id(row["text"])]
        bar = min(float(sims[index[p]]) for p in pos_ids) - threshold
        taken = pos_ids | {text_id(row["text"])} | {text_id(n) for n in negs}
        window = torch.argsort(sims, descending=True)[lo:hi].tolist()
        pool = [j for j in window if ids[j] not in taken and float(sims[j]) >= bar]
        random.Random(f"{seed}/{i}").shuffle(pool)
        new = list(negs)
        for k, n in enumerate(negs):
            if float(sims[index[text_id(n)]]) >= bar:
                continue
            stats.easy += 1
            if pool:
                new[k] = docs[pool.pop()]
                stats.changed += 1
        out.append(new)
    return out, stats


def _broadcast(obj):
    """Rank 0's object on every rank (identity outside torch.distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class DatedOverrides:
    """Refreshed negative lists, each version used from a given optimizer step on.

    The data loader may have built the next step's first batch before a refresh at the end of step N
    (it looks one batch ahead), so a refresh takes effect at step N + 2 whatever the process layout:
    the collator asks for the lists of the step its current batch belongs to (``batches_built``).
    """

    def __init__(self, collator, batches_per_step: int) -> None:
        self.collator, self.per_step = collator, batches_per_step
        self.versions: list[tuple[int, dict]] = []  # (first step, {(dataset, row): negatives})

    def add(self, first_step: int, table: dict) -> None:
        self.versions.append((first_step, {**self.latest(), **table}))
        self.versions = self.versions[-2:]  # at most one version waits while one is in use

    def latest(self) -> dict:
        return self.versions[-1][1] if self.versions else {}

    def get(self, key, default):
        step = (self.collator.batches_built - 1) // self.per_step + 1  # the step of the batch being built
        for first, table in reversed(self.versions):
            if first <= step:
                return table.get(key, default)
        return default


def make_refresh_callback(model, datasets: dict[str, list[dict]], collator, *, every: int, threshold: float,
                          range_min: int | None, range_max: int | None, seed: int, events: dict,
                          batches_per_step: int = 1):
    """A TrainerCallback refreshing each retrieval dataset's negatives every ``every`` steps.

    Args:
        model: the (unwrapped) SentenceTransformer being trained.
        datasets: {dataset name: its rows} for the retrieval datasets with hard negatives.
        collator: the :class:`~piccolo_lib.sampling.PiccoloCollator`; its ``negative_overrides`` becomes a
            :class:`DatedOverrides`: lists refreshed at the end of step N are used from step N + 2.
        every, threshold, range_min, range_max, seed: see :func:`refresh_negatives`.
        events: the step's extra metrics; ``{"negatives_refreshed": {dataset: counts}}`` is put there.
        batches_per_step: batches one process collates per optimizer step (``grad_accum``).
    """
    from transformers import TrainerCallback

    overrides = DatedOverrides(collator, batches_per_step)
    collator.negative_overrides = overrides

    class RefreshNegatives(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):  # a resumed run: batches of earlier steps
            collator.batches_built = state.global_step * batches_per_step

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every or state.global_step + 2 > state.max_steps:
                return  # (a refresh nobody would train on)
            result = None
            if state.is_world_process_zero:
                result = {name: self._refresh(name, rows, state.global_step) for name, rows in datasets.items()}
            result = _broadcast(result)
            table = {(name, i): negs for name, (new, _) in result.items() for i, negs in enumerate(new)}
            overrides.add(state.global_step + 2, table)
            events["negatives_refreshed"] = {name: {"changed": st.changed, "easy": st.easy, "rows": st.rows}
                                             for name, (_, st) in result.items()}

        def _refresh(self, name: str, rows: list[dict], step: int):
            spec, latest = collator.specs[name], overrides.latest()
            current = [latest.get((name, i), r["text_neg"]) for i, r in enumerate(rows)]
            return refresh_negatives(model, rows, current, threshold=threshold, range_min=range_min,
                                     range_max=range_max, seed=seed * 1_000_003 + step,
                                     query_prompt=spec.query_prompt, passage_prompt=spec.passage_prompt)

    return RefreshNegatives()
