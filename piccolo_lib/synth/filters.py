"""Checks of LLM-made retrieval triples: parse, validate, deduplicate, round-trip consistency.

Every generation ends in exactly one outcome, so the counts add up (``generated == kept + dropped``):

======================  ===========================================================================
reason                  the generation is dropped when
======================  ===========================================================================
``malformed_json``      the reply is not one JSON object (a ```json fenced block is accepted)
``missing_field``       ``query``, ``positive`` or ``hard_negative`` is absent or not a string
``empty_text``          one of them is blank
``not_chinese``         one of them has a CJK share below ``min_cjk_share`` (see :func:`cjk_share`)
``positive_equals_negative``  positive and hard negative are the same normalised text
``duplicate``           its query or positive (normalised) was already kept from an earlier generation
``inconsistent``        its positive does not rank in the top ``top_k`` of all generated passages
                        for its query under an embedding model (round-trip consistency)
======================  ===========================================================================

Introduced in notebooks/10_synthetic_data.ipynb.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from ..text import normalize_text, text_hash  # noqa: F401  (the one text identity; re-exported)
from .prompts import FIELDS

REASONS = ("malformed_json", "missing_field", "empty_text", "not_chinese", "positive_equals_negative",
           "duplicate", "inconsistent")
MIN_CJK_SHARE = 0.3  # "iPhone 15 电池续航" has 4 of 12: brand names and numbers are fine, English prose is not
_FENCE = re.compile(r"```[A-Za-z]*\s*\n?(.*?)```", re.DOTALL)


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2FA1F or 0xF900 <= cp <= 0xFAFF


def cjk_share(text: str) -> float:
    """Share of CJK ideographs among the letters and digits of ``text`` (punctuation and spaces not
    counted); 0.0 for a text with none of them."""
    chars = [c for c in text if unicodedata.category(c)[0] in "LN"]
    return sum(map(_is_cjk, chars)) / len(chars) if chars else 0.0


def parse_json_reply(reply: str) -> Any:
    """The JSON value of a reply: the whole text, or the first ```json fenced block in it.

    Returns None when neither parses (other prose around a bare object is not accepted: the prompt
    asks for JSON only, and a model that ignores that is counted, not guessed around).
    """
    fence = _FENCE.search(reply)
    candidates = [reply.strip()] + ([fence.group(1).strip()] if fence else [])
    for text in candidates:
        try:
            return json.loads(text)
        except (json.JSONDecodeError, ValueError):
            continue
    return None


def check_triple(reply: str, min_cjk_share: float = MIN_CJK_SHARE) -> tuple[dict | None, str | None]:
    """Parse and validate one generation.

    Returns:
        (triple, None) with ``triple = {"query", "positive", "hard_negative"}`` (stripped strings), or
        (None, reason) with ``reason`` one of the first five :data:`REASONS`.
    """
    obj = parse_json_reply(reply)
    if not isinstance(obj, dict):
        return None, "malformed_json"
    if not all(isinstance(obj.get(f), str) for f in FIELDS):
        return None, "missing_field"
    triple = {f: obj[f].strip() for f in FIELDS}
    if not all(triple.values()):
        return None, "empty_text"
    if any(cjk_share(t) < min_cjk_share for t in triple.values()):
        return None, "not_chinese"
    if normalize_text(triple["positive"]) == normalize_text(triple["hard_negative"]):
        return None, "positive_equals_negative"
    return triple, None


def parse_tasks(reply: str, min_cjk_share: float = MIN_CJK_SHARE) -> list[str] | None:
    """Tasks of a brainstorm reply: a JSON list of strings (or ``{"tasks": [...]}``); None when malformed.

    Blank, non-Chinese and repeated (normalised) tasks are left out; an empty list is a valid reply.
    """
    obj = parse_json_reply(reply)
    if isinstance(obj, dict) and isinstance(obj.get("tasks"), list):
        obj = obj["tasks"]
    if not isinstance(obj, list):
        return None
    seen: dict[str, str] = {}
    for task in obj:
        if isinstance(task, str) and task.strip() and cjk_share(task) >= min_cjk_share:
            seen.setdefault(normalize_text(task), task.strip())
    return list(seen.values())


def dedup(triples: list[dict]) -> list[bool]:
    """Keep-mask, first come first kept: a triple whose query or positive (normalised) appeared in a kept
    triple before is a duplicate (two rows with one positive would be false negatives of each other)."""
    seen: set[str] = set()
    keep = []
    for t in triples:
        keys = {"q" + text_hash(t["query"]), "p" + text_hash(t["positive"])}
        keep.append(not keys & seen)
        if keep[-1]:
            seen |= keys
    return keep


def consistency_ranks(encoder: Any, triples: list[dict], batch_size: int = 32, chunk: int = 1024) -> list[int]:
    """0-based rank of each triple's positive among every generated passage (all positives and hard
    negatives, deduplicated), for its query, by cosine similarity under ``encoder``.

    ``encoder`` is a SentenceTransformer (its ``query`` / ``document`` prompts are used when it has
    them, e.g. e5's ``query: `` / ``passage: ``). Rank = number of passages scoring strictly higher.
    """
    import torch

    passages = list(dict.fromkeys(p for t in triples for p in (t["positive"], t["hard_negative"])))
    index = {p: i for i, p in enumerate(passages)}
    prompts = getattr(encoder, "prompts", None) or {}

    def enc(texts: list[str], name: str) -> torch.Tensor:  # (len(texts), dim), unit rows
        kw = {"prompt_name": name} if name in prompts else {}
        emb = encoder.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                             show_progress_bar=False, **kw)
        return torch.nn.functional.normalize(torch.as_tensor(emb).float().cpu(), dim=-1)

    q = enc([t["query"] for t in triples], "query")  # (n, dim)
    d = enc(passages, "document")  # (P, dim)
    pos = torch.tensor([index[t["positive"]] for t in triples])  # (n,)
    ranks: list[int] = []
    for start in range(0, len(triples), chunk):  # (chunk, P) scores at a time: 200k x 400k would not fit
        scores = q[start: start + chunk] @ d.T  # (chunk, P)
        pos_score = scores.gather(1, pos[start: start + chunk, None])  # (chunk, 1)
        ranks += (scores > pos_score).sum(1).tolist()
    return ranks


def load_encoder(name: str, device: str | None = None) -> Any:
    """The consistency filter's embedding model: an offline backbone alias (``e5-small``), a folder or a hub name."""
    from sentence_transformers import SentenceTransformer

    from ..model.backbones import resolve_backbone

    return SentenceTransformer(resolve_backbone(name), device=device)
