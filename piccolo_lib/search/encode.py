"""Encode a corpus for search: unit vectors, documents per second, a progress bar, and a cache on disk.

``SentenceTransformer.encode`` does the work (the model's own prompts, ``passage: `` / ``query: `` for e5, and
``normalize_embeddings=True``). Two things are added by hand, each for a reason:

- the texts are sorted by length once and encoded in blocks of ``block`` texts, so a progress bar can count
  *documents* (``doc/s``) rather than batches, while each block still packs texts of similar length;
- the result is cached under ``cache_dir`` by a key of the model's weights, its prompt, its maximum length and the
  texts, so a notebook re-run or a second benchmark pass does not encode 19k passages again.

Introduced in notebooks/10_search.ipynb.
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
    seconds: float  # wall time of the encoding (0 when read from the cache)
    cached: bool

    @property
    def per_second(self) -> float:
        """Texts encoded per second (nan when read from the cache)."""
        return len(self.embeddings) / self.seconds if self.seconds > 0 else float("nan")


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
        cache_dir: folder of cached ``.npy`` encodings (None: no cache).
        fingerprint: the model's :func:`model_fingerprint`, if already computed.

    Returns:
        :class:`Encoded` with ``embeddings`` of shape (len(texts), dim), in the order of ``texts``.
    """
    from tqdm.auto import tqdm

    kwargs = prompt_kwargs(model, kind)
    path = None
    if cache_dir is not None:
        key = hashlib.blake2b(digest_size=16)
        key.update((fingerprint or model_fingerprint(model)).encode() + kind.encode())
        for t in texts:
            key.update(t.encode() + b"\0")
        path = Path(cache_dir) / f"{kind}-{len(texts)}-{key.hexdigest()}.npy"
        if path.is_file():
            return Encoded(np.load(path), 0.0, True)
    order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first, as encode() sorts a call
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    t0 = time.perf_counter()
    with tqdm(total=len(texts), unit="doc", desc=desc or f"encode {kind}s", disable=not show_progress) as bar:
        for start in range(0, len(texts), block):
            rows = order[start:start + block]
            out[rows] = model.encode([texts[i] for i in rows], batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False, **kwargs)
            bar.update(len(rows))
    seconds = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(path)  # a killed run leaves no half-written cache entry
    return Encoded(out, seconds, False)
