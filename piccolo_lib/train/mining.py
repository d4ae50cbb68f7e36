"""Hard-negative mining for retrieval data: ranks ``range_min``..``range_max`` of a first-stage retriever.

Piccolo2 (report, 'Training data and settings') mines retrieval negatives from ranks 50 to 100 of a retriever, skipping
the top ranks, where unlabelled passages often answer the query (false negatives). Two more guards:
a candidate that is a positive of the query or the query's own text (by the one text identity,
:func:`piccolo_lib.text.text_id`) is never used, and one within ``relative_margin`` of the positive
(sim_neg > sim_pos - |sim_pos| * margin, NV-Retriever's "TopK-PercPos") is dropped as "too close". The window
and these rules are the picker refreshing uses too (:mod:`piccolo_lib.data.negatives`).

Hand-written rather than ``sentence_transformers.util.mine_hard_negatives`` (6.2), whose rules it
follows (that margin, the least similar positive sets it, duplicate queries pool their positives),
because that function (1) matches positives by exact string, so a positive spelled with other
spacing or case is mined as a negative; (2) counts ranks *after* removing positives and too-close
candidates, so its window slides below rank ``range_max``; (3) prints skip counts instead of
returning them, with no per-query "short" count; (4) samples with the global ``random`` module, not
a seed; (5) returns new Dataset columns, dropping ``type`` and other fields. The ranking (unit
embeddings from the model's ``encode``, a similarity matrix, ``torch.topk``) is small.

Rank r: the r-th passage (0-based) of the model's cosine ranking of the deduplicated corpus, positives
included. A corpus under ``range_max`` passages gives the window ``range_min``..len(corpus); a row with
fewer than ``num_negatives`` usable candidates gets them all (maybe none, which ``data.validate`` rejects
when ``neg_num > 0``) and counts in ``queries_short``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer

from ..data import DataError, read_jsonl
from ..data.negatives import WindowCounts, rank_topk, window_candidates
from ..errors import ConfigError
from ..io import atomic_write, jsonl_text
from ..model import build_model, is_sentence_transformers_folder
from ..model.backbones import resolve_backbone
from ..tasks import canonical_type
from ..text import text_id


@dataclass
class MiningStats:
    """Counts of one mining run; ``candidates_seen == kept + dropped_positive + dropped_too_close``."""

    queries: int = 0  # rows mined
    candidates_seen: int = 0  # corpus passages inside the rank window, summed over rows
    kept: int = 0  # usable candidates (negatives are sampled from these)
    dropped_positive: int = 0  # a positive of the query or its own text (text-id match)
    dropped_too_close: int = 0  # within relative_margin of the positive's similarity
    queries_short: int = 0  # rows with fewer than num_negatives usable candidates
    mined: int = 0  # negatives written (sum over rows of min(num_negatives, usable))

    def __str__(self) -> str:
        pct = lambda n: f"{n / self.candidates_seen:.1%}" if self.candidates_seen else "n/a"  # noqa: E731
        return "\n".join([
            f"queries mined:          {self.queries:,}",
            f"candidates in window:   {self.candidates_seen:,}",
            f"  kept:                 {self.kept:,} ({pct(self.kept)})",
            f"  dropped (positive):   {self.dropped_positive:,} ({pct(self.dropped_positive)})",
            f"  dropped (too close):  {self.dropped_too_close:,} ({pct(self.dropped_too_close)})",
            f"negatives written:      {self.mined:,}",
            f"queries short of negatives: {self.queries_short:,}",
        ])


def _positives(row: dict) -> list[str]:
    pos = row.get("text_pos")
    return list(pos) if isinstance(pos, list) else [pos]


def _encode(model: Any, texts: list[str], batch_size: int, show_progress: bool, prompt: str | None) -> torch.Tensor:
    """The model's own ``encode``, batched, as unit vectors (float32, CPU)."""
    kwargs = {"prompt": prompt} if prompt else {}
    emb = model.encode(texts, batch_size=batch_size, show_progress_bar=show_progress,
                       convert_to_tensor=True, normalize_embeddings=True, **kwargs)
    return torch.nn.functional.normalize(torch.as_tensor(emb).float().cpu(), dim=-1)


def mine_hard_negatives(model: Any, rows: list[dict], *, corpus: list[str] | None = None, range_min: int = 50,
                        range_max: int = 100, num_negatives: int = 3, relative_margin: float | None = 0.05,
                        seed: int = 0, batch_size: int = 64, show_progress: bool = True,
                        query_prompt: str | None = None,
                        passage_prompt: str | None = None) -> tuple[list[dict], MiningStats]:
    """Replace each row's ``text_neg`` with negatives from ranks [range_min, range_max) (report, 'Training data and settings').

    Args:
        model: a SentenceTransformer, or anything with a compatible ``encode``.
        rows: ``retri_contrast`` records {text, text_pos (str or list), text_neg?, type}.
        corpus: passages to mine from; default: every positive and existing negative of ``rows``.
            Deduplicated by normalised text (the first spelling is kept).
        range_min, range_max: the rank window (0-based, end excluded); the report uses 50 and 100.
        num_negatives: negatives per row, sampled without replacement from the usable candidates.
        relative_margin: drop candidates with sim > sim_pos - |sim_pos| * margin, sim_pos being the
            lowest similarity among the query's positives; None keeps them.
        seed: sampling seed (row i uses ``random.Random(f"{seed}/{i}")``); same inputs, same output.
        batch_size, show_progress: passed to ``model.encode``.
        query_prompt, passage_prompt: optional prefixes for the retriever (as in training).

    Returns:
        (records, stats): copies of ``rows`` (all fields kept) whose ``text_neg`` lists the mined
        negatives in rank order, and the run's :class:`MiningStats`.
    """
    if not (0 <= range_min < range_max and num_negatives >= 1):
        raise ConfigError(f"need 0 <= range_min < range_max and num_negatives >= 1, got {range_min}, "
                         f"{range_max}, {num_negatives}")
    for i, row in enumerate(rows):
        if "type" in row and canonical_type(str(row["type"])) != "retri_contrast":
            raise DataError(f"row {i + 1}: type {row['type']!r}; mining needs retri_contrast records")
        if not isinstance(row.get("text"), str) or not all(isinstance(p, str) for p in _positives(row)):
            raise DataError(f"row {i + 1}: needs a string 'text' and 'text_pos' (a string or list of strings)")
    if not rows:
        return [], MiningStats()
    source = corpus if corpus is not None else [t for r in rows for t in _positives(r) + list(r.get("text_neg") or [])]
    unique: dict[int, str] = {}
    for t in source:  # deduplicate by normalised text, keeping the first spelling
        unique.setdefault(text_id(t), t)
    doc_ids, docs = list(unique), list(unique.values())
    # A query seen in several rows pools its positives (as sentence-transformers does).
    pos_texts: dict[int, dict[str, None]] = {}
    for row in rows:
        pos_texts.setdefault(text_id(row["text"]), {}).update(dict.fromkeys(_positives(row)))
    pos_ids = {q: {text_id(p) for p in ps} for q, ps in pos_texts.items()}

    queries = list(dict.fromkeys(r["text"] for r in rows))
    passages = list(dict.fromkeys(docs + [p for r in rows for p in _positives(r)]))
    q_index = {q: i for i, q in enumerate(queries)}
    p_index = {p: i for i, p in enumerate(passages)}
    q_emb = _encode(model, queries, batch_size, show_progress, query_prompt)
    p_emb = _encode(model, passages, batch_size, show_progress, passage_prompt)
    d_emb = p_emb[[p_index[d] for d in docs]] if docs else p_emb[:0]

    top_sims, top_idx = rank_topk(q_emb, d_emb, range_max)  # a block of queries at a time

    stats = MiningStats(queries=len(rows))
    counts = WindowCounts()
    out = []
    for i, row in enumerate(rows):
        qi, tid = q_index[row["text"]], text_id(row["text"])
        limit = float("inf")
        if relative_margin is not None:  # the least similar positive sets the bar: more drops, fewer false negatives
            sim_pos = min(float(q_emb[qi] @ p_emb[p_index[p]]) for p in pos_texts[tid])
            limit = sim_pos - abs(sim_pos) * relative_margin
        usable = window_candidates(top_sims[qi, range_min:].tolist(), top_idx[qi, range_min:].tolist(), doc_ids,
                                   exclude=pos_ids[tid] | {tid}, max_sim=limit, counts=counts)
        stats.queries_short += len(usable) < num_negatives
        picked = sorted(random.Random(f"{seed}/{i}").sample(range(len(usable)), min(num_negatives, len(usable))))
        stats.mined += len(picked)
        out.append({**row, "type": row.get("type", "retri_contrast"), "text_neg": [docs[usable[p]] for p in picked]})
    stats.candidates_seen, stats.kept = counts.seen, counts.kept
    stats.dropped_positive, stats.dropped_too_close = counts.excluded, counts.too_close
    return out, stats


def mine_file(model_name_or_path: str, in_path: str | Path, out_path: str | Path, **kwargs: Any) -> MiningStats:
    """Mine a retrieval JSONL file with a retriever and write the result as JSONL.

    Args:
        model_name_or_path: a sentence-transformers model (a folder or hub name with ``modules.json``,
            or ``e5-small``), used as saved; or a backbone for
            :func:`piccolo_lib.model.build_model` (pooling auto, no projection head, so the
            backbone's own embedding ranks), e.g. ``offline-bert`` or a hub name.
        in_path, out_path: input and output JSONL (output written UTF-8, ``ensure_ascii=False``).
        **kwargs: passed to :func:`mine_hard_negatives`.
    """
    source = resolve_backbone(str(model_name_or_path))
    if is_sentence_transformers_folder(source):  # local or hub: its own pooling, head and prompts, as saved
        model = SentenceTransformer(source)
    else:  # a bare transformer: pooling auto (last token only for decoder LLMs), as build_model does
        model = build_model(source, projection_dim=0)
    rows, stats = mine_hard_negatives(model, read_jsonl(Path(in_path)), **kwargs)
    # whole or not at all: a run killed while writing leaves the old file (or none), never a cut-off JSONL
    atomic_write(out_path, jsonl_text(rows))
    return stats
