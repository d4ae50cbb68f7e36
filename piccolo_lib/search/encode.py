"""Encode a corpus for search: unit vectors, documents per second, a progress bar, and a cache on disk.

``SentenceTransformer.encode`` does the work (the model's own prompts, ``passage: `` / ``query: `` for e5, and
``normalize_embeddings=True``). Two things are added by hand, each for a reason:

- the texts are sorted by length once and encoded in blocks of ``block`` texts, so a progress bar can count
  *documents* (``doc/s``) rather than batches, while each block still packs texts of similar length;
- each vector is cached under ``cache_dir``, keyed by the model's weights, maximum length and prompts
  (:func:`model_fingerprint`), the kind (query / document) and the text, so a notebook re-run, a smaller sample
  of the same corpus or a second benchmark pass encodes only texts it has not seen.

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("query", "document")


@dataclass
class Encoded:
    """What :func:`encode` returns."""

    embeddings: np.ndarray  # (n, dim) float32, unit rows
    seconds: float  # wall time of encoding the texts not in the cache (0 when all were)
    cached: bool  # every text came from the cache
    encoded: int = 0  # texts encoded now (the others came from the cache)

    @property
    def per_second(self) -> float:
        """Texts encoded per second, over the texts encoded now (nan when all came from the cache)."""
        return self.encoded / self.seconds if self.seconds > 0 else float("nan")


def model_fingerprint(model: Any) -> str:
    """A hash of every parameter of a torch model (its weights), its maximum length and its prompts."""
    digest = hashlib.blake2b(digest_size=16)
    for name, param in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().numpy().tobytes())
    digest.update(repr((getattr(model, "max_seq_length", None), sorted(getattr(model, "prompts", {}).items()))).encode())
    return digest.hexdigest()


def prompt_kwargs(model: Any, kind: str) -> dict[str, str]:
    """``{"prompt_name": kind}`` when the model has a non-empty prompt of that name (e5: query / document)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {KINDS}")
    return {"prompt_name": kind} if getattr(model, "prompts", {}).get(kind) else {}


def _text_keys(texts: list[str]) -> np.ndarray:
    """(n, 16) uint8: a 128-bit hash per text."""
    return np.array([np.frombuffer(hashlib.blake2b(t.encode(), digest_size=16).digest(), dtype=np.uint8)
                     for t in texts]).reshape(len(texts), 16)


def _cached(folder: Path) -> dict[bytes, np.ndarray]:
    """Every vector stored under ``folder`` (``*.npz`` shards of keys and vectors), by text key."""
    found: dict[bytes, np.ndarray] = {}
    for shard in sorted(folder.glob("*.npz")):
        with np.load(shard) as z:
            found.update(zip(map(bytes, z["keys"]), z["vectors"]))
    return found


def encode(model: Any, texts: list[str], kind: str = "document", *, batch_size: int = 32, block: int = 256,
           show_progress: bool = True, cache_dir: str | Path | None = None, fingerprint: str | None = None,
           desc: str | None = None) -> Encoded:
    """Encode ``texts`` with a SentenceTransformer into unit vectors, with a documents-per-second bar.

    Args:
        model: a SentenceTransformer (its ``truncate_dim`` should be None: the index slices the prefixes).
        texts: the texts, in corpus order.
        kind: ``document`` or ``query``: picks the model's prompt of that name, if it has one.
        batch_size: texts per forward pass.
        block: texts per ``encode`` call (the bar advances per block).
        show_progress: draw the bar (tqdm: ``doc/s`` on the right).
        cache_dir: folder of cached vectors (None: no cache); only texts not found there are encoded.
        fingerprint: the model's :func:`model_fingerprint`, if already computed.

    Returns:
        :class:`Encoded` with ``embeddings`` of shape (len(texts), dim), in the order of ``texts``;
        ``seconds`` covers the texts encoded now, ``cached`` is True when every text came from the cache.
    """
    from tqdm.auto import tqdm

    kwargs = prompt_kwargs(model, kind)
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    todo = np.arange(len(texts))
    folder = keys = None
    if cache_dir is not None:
        folder = Path(cache_dir) / f"{fingerprint or model_fingerprint(model)}-{kind}"
        keys = _text_keys(texts)
        found = _cached(folder) if folder.is_dir() else {}
        hit = np.array([bytes(k) in found for k in keys], dtype=bool)
        for i in np.flatnonzero(hit):
            out[i] = found[bytes(keys[i])]
        todo = np.flatnonzero(~hit)
    order = todo[np.argsort([-len(texts[i]) for i in todo], kind="stable")]  # longest first, as encode() sorts
    t0 = time.perf_counter()
    with tqdm(total=len(order), unit="doc", desc=desc or f"encode {kind} texts", disable=not show_progress) as bar:
        for start in range(0, len(order), block):
            rows = order[start:start + block]
            out[rows] = model.encode([texts[i] for i in rows], batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False, **kwargs)
            bar.update(len(rows))
    seconds = time.perf_counter() - t0
    if folder is not None and len(todo):
        folder.mkdir(parents=True, exist_ok=True)
        new = np.unique(keys[todo], axis=0, return_index=True)[1]  # a text repeated in ``texts`` is stored once
        shard = folder / f"{hashlib.blake2b(keys[todo].tobytes(), digest_size=8).hexdigest()}.npz"
        tmp = shard.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys[todo][new], vectors=out[todo][new])
        tmp.replace(shard)  # a killed run leaves no half-written shard
    return Encoded(out, seconds if len(todo) else 0.0, not len(todo), encoded=len(todo))
