"""Hard negatives refreshed during training (Conan-embedding's dynamic hard negatives).

Negatives mined once before training go stale: as the model learns, a mined negative it now ranks
far below the positive gives almost no gradient (InfoNCE weighs a negative by exp((s_n - s_p) / tau):
at tau = 0.01 a gap of 0.05 in cosine is a weight of e^-5). Conan-embedding (arXiv 2408.15710)
re-scores the candidates every ~100 steps and replaces such negatives. Here, every
``refresh_negatives_every`` steps, for each retrieval dataset:

1. the current model embeds the dataset's queries and its corpus (every positive and negative of
   the dataset, deduplicated by the one text identity, :func:`piccolo_lib.text.text_id`);
2. a negative n of query q is **too easy** when cos(q, n) < cos(q, p) - ``threshold``, p being the
   query's least similar positive;
3. each too-easy negative is replaced by a candidate from the query's rank window
   [``range_min``, ``range_max``) of the current ranking, picked by the rules mining uses too
   (:mod:`piccolo_lib.data.negatives`): not a positive, not the query's own text, not already a negative of
   the row, and not itself too easy (seeded choice per row and refresh). A row without one keeps its negative.

The ranking is blocked (:func:`~piccolo_lib.data.negatives.rank_topk`), never a full similarity matrix or a
sort of the corpus per row. Under DDP every rank does a share of the work: rank r encodes the chunks r, r + W, ...
of ``batch_size`` texts and picks for its block of rows, then the ranks exchange results. So no rank waits for
another longer than one rank's share takes (one chunk and one block of rows more, at most), and the result is
the one a single process computes: each chunk is encoded as the same call whatever the number of processes.

The collator samples from the refreshed lists from step N + 2 for a refresh at the end of step N (the data
loader may already hold the next batch). The lists are part of every checkpoint (``refreshed_negatives.json``),
so a run resumed after a refresh trains on the same negatives as one that never stopped.

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.negatives import rank_topk, window_candidates
from ..text import text_id

STATE_FILE = "refreshed_negatives.json"  # in each checkpoint folder


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


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def _unit_encode(model, texts: list[str], prompt: str, batch_size: int) -> torch.Tensor:
    """(len(texts), D) unit float32 embeddings on the CPU.

    The texts are cut into the batches ``model.encode`` would make of the whole list (longest first, as
    sentence-transformers sorts them) and each batch is one ``encode`` call; under DDP rank r makes the calls
    r, r + W, ... and the ranks exchange their embeddings, so every process count computes the same numbers.
    """
    import numpy as np

    rank, world = _world()
    prompted = [prompt + t for t in texts]
    order = np.argsort([-len(t) for t in prompted])  # sentence-transformers' own order within encode
    chunks = [[prompted[i] for i in order[s:s + batch_size]] for s in range(0, len(texts), batch_size)]
    was_training = model.training
    model.eval()
    try:
        mine = [model.encode(chunk, batch_size=batch_size, convert_to_tensor=True,
                             show_progress_bar=False).float().cpu() for chunk in chunks[rank::world]]
    finally:
        model.train(was_training)
    if world > 1:
        import torch.distributed as dist

        gathered: list = [None] * world
        dist.all_gather_object(gathered, mine)
        mine = [gathered[c % world][c // world] for c in range(len(chunks))]
    if not mine:
        return torch.empty(0, 0)
    emb = torch.empty_like(torch.cat(mine))
    emb[torch.as_tensor(order)] = torch.cat(mine)
    return torch.nn.functional.normalize(emb, dim=-1)


def _share(items: list, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous block of ``items``' indices (blocks differ in size by at most one)."""
    per, extra = divmod(len(items), world)
    start = rank * per + min(rank, extra)
    return range(start, start + per + (rank < extra))


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
        batch_size: encoding batch size (also the chunk each rank encodes under DDP).

    Returns:
        (new negative lists, same lengths as before; :class:`RefreshStats`), the same on every rank.
    """
    corpus: dict[int, str] = {}
    for row, negs in zip(rows, negatives):
        for t in _positives(row) + list(negs):
            corpus.setdefault(text_id(t), t)
    ids, docs = list(corpus), list(corpus.values())
    lo, hi = default_window(len(docs)) if range_min is None or range_max is None else (range_min, range_max)
    q = _unit_encode(model, [r["text"] for r in rows], query_prompt, batch_size)  # (R, D)
    d = _unit_encode(model, docs, passage_prompt, batch_size)  # (N, D)
    index = {i: j for j, i in enumerate(ids)}
    pooled: dict[int, set[int]] = {}  # a query seen in several rows pools its positives
    for row in rows:
        pooled.setdefault(text_id(row["text"]), set()).update(text_id(p) for p in _positives(row))
    rank, world = _world()
    block = _share(rows, rank, world)
    top_sims, top_idx = rank_topk(q[block.start:block.stop], d, hi) if len(block) else (None, None)
    mine = []
    for b, i in enumerate(block):
        row, negs = rows[i], negatives[i]
        qid = text_id(row["text"])
        sim = lambda tid: float(q[i] @ d[index[tid]])  # noqa: E731
        bar = min(sim(p) for p in pooled[qid]) - threshold
        exclude = pooled[qid] | {qid} | {text_id(n) for n in negs}
        pool = window_candidates(top_sims[b, lo:].tolist(), top_idx[b, lo:].tolist(), ids, exclude=exclude,
                                 min_sim=bar)
        random.Random(f"{seed}/{i}").shuffle(pool)
        new, easy, changed = list(negs), 0, 0
        for k, n in enumerate(negs):
            if sim(text_id(n)) >= bar:
                continue
            easy += 1
            if pool:
                new[k], changed = docs[pool.pop()], changed + 1
        mine.append((new, easy, changed))
    if world > 1:
        import torch.distributed as dist

        gathered: list = [None] * world
        dist.all_gather_object(gathered, mine)
        mine = [x for part in gathered for x in part]
    stats = RefreshStats(rows=len(rows), easy=sum(e for _, e, _ in mine), changed=sum(c for _, _, c in mine))
    return [new for new, _, _ in mine], stats


class DatedOverrides:
    """Refreshed negative lists, each version used from a given optimizer step on; saved with every checkpoint.

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

    def save(self, checkpoint: Path) -> None:
        """Write the versions into a checkpoint folder (called while it is still being staged)."""
        data = [{"first_step": first, "lists": [[name, row, negs] for (name, row), negs in sorted(table.items())]}
                for first, table in self.versions]
        (Path(checkpoint) / STATE_FILE).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    def load(self, checkpoint: Path) -> bool:
        """Read the versions a checkpoint holds; False when it has none (no refresh had happened)."""
        path = Path(checkpoint) / STATE_FILE
        if not path.is_file():
            return False
        self.versions = [(v["first_step"], {(name, row): negs for name, row, negs in v["lists"]})
                         for v in json.loads(path.read_text(encoding="utf-8"))]
        return True


def make_refresh_callback(model, datasets: dict[str, list[dict]], collator, *, every: int, threshold: float,
                          range_min: int | None, range_max: int | None, seed: int, events: dict,
                          batches_per_step: int = 1):
    """A TrainerCallback refreshing each retrieval dataset's negatives every ``every`` steps.

    Args:
        model: the (unwrapped) SentenceTransformer being trained.
        datasets: {dataset name: its rows} for the retrieval datasets with hard negatives.
        collator: the :class:`~piccolo_lib.tasks.PiccoloCollator`; its ``negative_overrides`` becomes a
            :class:`DatedOverrides` (the callback's ``overrides``): lists refreshed at the end of step N are used
            from step N + 2. Save it with each checkpoint (``overrides.save``), load it on resume.
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
            result = {name: self._refresh(name, rows, state.global_step) for name, rows in datasets.items()}
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

    callback = RefreshNegatives()
    callback.overrides = overrides
    return callback
