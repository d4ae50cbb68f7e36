"""A flat vector index over MRL prefixes at float32, int8 or binary precision (faiss), with rescoring.

One stored embedding serves every cell of the trade-off: cut it to its first ``dims`` coordinates and
re-normalise (Matryoshka, notebook 05), then store each coordinate in 32, 8 or 1 bit(s).

=========  =====================================  ============  ==================================================
precision  faiss index                            bytes/vector  score of a query q (float) and a document x
=========  =====================================  ============  ==================================================
float32    ``IndexFlatIP``                        4 d           q . x, exact (the anchor)
int8       ``IndexScalarQuantizer`` (``QT_8bit``)   d             q . x^, x^ the centre of x's 8-bit bucket in each dim
binary     ``IndexBinaryFlat``                    d / 8         Hamming distance of sign bits, top ``k * m``;
                                                                then rescored, q . x over those candidates
=========  =====================================  ============  ==================================================

The int8 codes are sentence-transformers' (``quantize_embeddings(x, "int8", ranges)``, plus 128: bucket
``floor((x - lo) / step)``, step ``(hi - lo) / 255`` per dim, ranges from a calibration set). faiss decodes
them to bucket centres and scores the float query against them, all documents, no second stage.

Binary keeps the sign of each coordinate (``quantize_embeddings(x, "ubinary")``), optionally of the coordinate
minus the corpus mean (``center=True``). Rescoring re-ranks the ``k * m`` Hamming candidates with the float
query against (``rescore=``) ``"bits"``: the ±1 bits themselves (sentence-transformers' own rescoring, nothing
more stored), ``"int8"``: int8 codes of the prefixes, or ``"float32"``: the float prefixes (both kept on disk
beside the index and memory-mapped, read for ``k * m`` rows per query).

All three are flat (exact) indexes: at tens of thousands of vectors a full scan takes about a millisecond, and
the point here is what the *codes* cost in quality. An HNSW graph (faiss ``IndexHNSW*``, usearch) adds roughly
130-170 bytes per vector, more than a binary code; it pays off at millions of vectors.

float32 and binary search through ``sentence_transformers.util.quantization.semantic_search_faiss``. int8 does
not: that helper keeps "uint8" corpora in an ``IndexFlatIP``, as float32 values (4 bytes per dim, nothing
saved), so int8 uses faiss's scalar quantizer directly.

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import MissingPackage

INSTALL_HINT = "pip install 'piccolo-course[search]' (faiss-cpu, qdrant-client)"
PRECISIONS = ("float32", "int8", "binary")
RESCORE = ("float32", "int8", "bits", "none")  # what binary candidates are rescored against
CALIBRATIONS = ("minmax", "quantile")  # int8 ranges: min and max per dim, or the [q, 1-q] quantiles


def faiss_module():
    """``faiss``, or one line saying how to install it (the ``[search]`` extra)."""
    try:
        import faiss
    except ImportError:
        raise MissingPackage(f"vector search needs faiss: {INSTALL_HINT}") from None
    return faiss


def prefix(embeddings: np.ndarray, dims: int) -> np.ndarray:
    """The first ``dims`` coordinates of each row, re-normalised: (n, D) -> (n, dims) float32 unit rows."""
    if not 0 < dims <= embeddings.shape[1]:
        raise ValueError(f"dims {dims}: the embeddings have {embeddings.shape[1]}")
    x = np.ascontiguousarray(embeddings[:, :dims], dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def bytes_per_vector(dims: int, precision: str) -> float:
    """Bytes of one stored code: 4 d (float32), d (int8), ceil(d / 8) (binary)."""
    return {"float32": 4 * dims, "int8": dims, "binary": -(-dims // 8)}[precision]


def int8_ranges(calibration: np.ndarray, method: str = "minmax", quantile: float = 0.001) -> np.ndarray:
    """(2, d) lower and upper bound per dim: min/max (sentence-transformers' default) or [q, 1-q] quantiles."""
    if method == "minmax":
        return np.stack([calibration.min(0), calibration.max(0)]).astype(np.float32)
    if method == "quantile":
        return np.quantile(calibration, [quantile, 1 - quantile], axis=0).astype(np.float32)
    raise ValueError(f"calibration {method!r}: expected one of {CALIBRATIONS}")


def int8_dequantize(codes: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """int8 codes (n, d) -> the centres of their buckets, float32: lo + (code + 128 + 0.5) * step."""
    lo, step = ranges[0], np.maximum((ranges[1] - ranges[0]) / 255, 1e-12)
    return (lo + (codes.astype(np.float32) + 128.5) * step).astype(np.float32)


@dataclass
class VectorIndex:
    """A built index: the faiss object plus what its search needs (ranges, mean, rescoring vectors).

    Build it with :meth:`build`; save and load it as a folder with :mod:`piccolo_lib.search.store`.
    """

    index: object  # faiss.Index or faiss.IndexBinary
    dims: int
    precision: str
    rescore: str = "none"
    multiplier: int = 1
    ranges: np.ndarray | None = None  # int8: (2, dims) the index's ranges; binary + int8 rescoring: those codes'
    mean: np.ndarray | None = None  # binary with centring: (dims,) subtracted before taking signs
    rescore_vectors: np.ndarray | None = None  # binary: (n, dims) float32 or int8 (memory-mapped when loaded)
    build_seconds: float = 0.0

    @classmethod
    def build(cls, docs: np.ndarray, dims: int, precision: str = "float32", *, rescore: str = "float32", multiplier: int = 4,
              calibration: str = "minmax", center: bool = False) -> "VectorIndex":
        """Index ``docs`` (n, D) unit rows (any D >= dims) at ``dims`` dims and ``precision``.

        Args:
            rescore, multiplier: binary only: what the ``top_k * multiplier`` Hamming candidates are
                rescored against (see :data:`RESCORE`), and the oversampling factor.
            calibration: int8 ranges (and int8 rescoring vectors' ranges) from the documents themselves.
            center: binary only: signs of ``x - mean(docs)`` instead of ``x``.
        """
        from sentence_transformers.util.quantization import quantize_embeddings

        faiss = faiss_module()
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {PRECISIONS}")
        if rescore not in RESCORE:
            raise ValueError(f"rescore {rescore!r}: expected one of {RESCORE}")
        t0 = time.perf_counter()
        x = prefix(docs, dims)  # (n, dims)
        out = cls(index=None, dims=dims, precision=precision)
        if precision == "float32":
            out.index = faiss.IndexFlatIP(dims)
            out.index.add(x)
        elif precision == "int8":
            out.ranges = int8_ranges(x, calibration)
            out.index = faiss.IndexScalarQuantizer(dims, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            faiss.copy_array_to_vector(np.concatenate([out.ranges[0], out.ranges[1] - out.ranges[0]]),
                                       out.index.sq.trained)  # faiss keeps (lo, hi - lo) per dim
            out.index.is_trained = True
            out.index.add(x)
        else:
            out.rescore, out.multiplier = rescore, multiplier if rescore != "none" else 1
            if center:
                out.mean = x.mean(0)
            out.index = faiss.IndexBinaryFlat(8 * -(-dims // 8))  # whole bytes: packbits pads with zero bits
            out.index.add(quantize_embeddings(x - (out.mean if center else 0), precision="ubinary"))
            if rescore == "float32":
                out.rescore_vectors = x
            elif rescore == "int8":
                out.ranges = int8_ranges(x, calibration)
                out.rescore_vectors = quantize_embeddings(x, precision="int8", ranges=out.ranges)
        out.build_seconds = time.perf_counter() - t0
        return out

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    @property
    def code_bytes(self) -> int:
        """Bytes of the codes held in memory by the index (the rescoring vectors stay on disk)."""
        return int(self.index.ntotal * self.index.code_size)

    @property
    def rescore_bytes(self) -> int:
        return 0 if self.rescore_vectors is None else int(self.rescore_vectors.nbytes)

    def search(self, queries: np.ndarray, top_k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top ``top_k`` documents per query: (rows (nq, k) int64, scores (nq, k) float32), best first.

        ``queries`` are (nq, D) float rows with D >= dims (a full embedding: the prefix is taken here) or
        exactly ``dims``. Rows are positions in the indexed documents; -1 pads when the index holds fewer.
        """
        from sentence_transformers.util.quantization import semantic_search_faiss

        if queries.ndim != 2 or queries.shape[1] < self.dims:
            raise ValueError(f"queries of shape {queries.shape}: this index needs (n, >= {self.dims}) float rows")
        q = prefix(queries, self.dims)
        k = min(top_k, self.count)
        if self.precision == "int8":
            scores, rows = self.index.search(q, k)
            return rows.astype(np.int64), scores
        if self.precision == "float32":
            hits, _ = semantic_search_faiss(q, corpus_index=self.index, corpus_precision="float32", top_k=k,
                                            rescore=False)
            return _arrays(hits, k)
        qb = q - self.mean if self.mean is not None else q
        if self.rescore in ("none", "bits"):  # sentence-transformers rescoring: float query . the +-1 bits
            hits, _ = semantic_search_faiss(qb, corpus_index=self.index, corpus_precision="ubinary", top_k=k,
                                            rescore=self.rescore == "bits", rescore_multiplier=self.multiplier)
            rows, scores = _arrays(hits, k)
            return rows, (-scores if self.rescore == "none" else scores)  # none: minus the Hamming distance
        # Rescoring against vectors kept beside the index is not in the helper: it rescores against the
        # index's own codes. Take its k * m Hamming candidates and score them against the stored vectors.
        hits, _ = semantic_search_faiss(qb, corpus_index=self.index, corpus_precision="ubinary",
                                        top_k=min(k * self.multiplier, self.count), rescore=False)
        cand, _ = _arrays(hits, min(k * self.multiplier, self.count))  # (nq, k * m)
        vecs = self.rescore_vectors[np.maximum(cand, 0)]  # (nq, k * m, dims), read from disk when memory-mapped
        if self.rescore == "int8":
            vecs = int8_dequantize(vecs, self.ranges)
        scores = np.einsum("qd,qcd->qc", q, vecs.astype(np.float32))
        scores[cand < 0] = -np.inf
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(cand, best, 1), np.take_along_axis(scores, best, 1).astype(np.float32)


def _arrays(hits: list[list[dict]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """sentence-transformers' [[{"corpus_id", "score"}, ...], ...] -> (rows, scores) arrays padded with -1."""
    rows = np.full((len(hits), k), -1, dtype=np.int64)
    scores = np.full((len(hits), k), -np.inf, dtype=np.float32)
    for i, per_query in enumerate(hits):
        for j, hit in enumerate(per_query[:k]):
            rows[i, j], scores[i, j] = hit["corpus_id"], hit["score"]
    return rows, scores


def exact_search(queries: np.ndarray, docs: np.ndarray, dims: int, top_k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in torch: cosine of the ``dims`` prefixes, top ``top_k`` (rows, scores). The reference."""
    import torch

    q, x = (torch.from_numpy(prefix(a, dims)) for a in (queries, docs))
    top = (q @ x.T).topk(min(top_k, len(x)), dim=1)  # (nq, n) scores -> (nq, k)
    return top.indices.numpy().astype(np.int64), top.values.numpy()
