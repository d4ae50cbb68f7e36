"""Why binary codes work for one model and not another: controlled measurements on the same corpus.

A sign bit per coordinate is a hyperplane through the origin, orthogonal to that coordinate's axis. The
Hamming distance between two codes counts the hyperplanes that separate the two vectors; for hyperplanes in
random directions its expectation is ``d * angle / pi`` (Charikar's SimHash), which is why it can stand in for
the cosine. A hyperplane separates nothing, though, when every vector of the corpus lies on the same side of
it: if the corpus sits in a narrow cone around its mean direction, most axis hyperplanes miss the cone and
their bits are the same for every document. :func:`sign_stats` measures that; the variants below change one
thing at a time (centring, a rotation, more bits, how candidates are rescored) and measure nDCG@10 again.

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

import numpy as np

from .grid import ndcg_at_k, recall_at_k
from .index import VectorIndex, int8_dequantize, int8_ranges, prefix


def sign_stats(docs: np.ndarray, stuck: float = 0.9) -> dict[str, float]:
    """How much the sign bits of unit rows (n, d) can tell documents apart.

    Returns:
        mean_norm: length of the corpus mean (0: centred; near 1: every row points the same way);
        mean_cos: mean cosine between two different rows, ``(|sum x|^2 - n) / (n (n - 1))`` for unit rows;
        stuck_share: share of dims whose sign is the same for more than ``stuck`` of the rows;
        bit_entropy: mean entropy of a dim's sign over the rows, in bits (1: a fair coin, 0: constant).
    """
    n = len(docs)
    total = docs.sum(0, dtype=np.float64)
    p = (docs > 0).mean(0)  # (d,) share of positive signs per dim
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return {"mean_norm": float(np.linalg.norm(total / n)),
            "mean_cos": float((total @ total - n) / (n * (n - 1))),
            "stuck_share": float(np.mean(np.maximum(p, 1 - p) > stuck)),
            "bit_entropy": float(np.mean(-(q * np.log2(q) + (1 - q) * np.log2(1 - q))))}


def pca_rotation(docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), rotation (d, d)): the corpus mean and its principal axes, largest variance first.

    ``(x - mean) @ rotation`` are the principal components; their signs are bits along the directions in
    which the corpus varies most (scaling each to unit variance, full whitening, would not change a sign).
    """
    mean = docs.mean(0)
    _, _, vt = np.linalg.svd(docs - mean, full_matrices=False)  # rows of vt: principal axes
    return mean, vt.T.astype(np.float32)


def binary_variant(queries: np.ndarray, docs: np.ndarray, relevant: list[set[int]], dims: int, *,
                   transform: str = "none", rescore: str = "float32", multiplier: int = 4, top_k: int = 10) -> dict:
    """nDCG@10, recall@1 and first-stage recall of binary search at ``dims`` after one change.

    Args:
        transform: where the bits come from: ``none`` (signs of the prefix), ``center`` (signs of the prefix minus
            the corpus mean), ``pca`` (signs of the centred prefix's principal components). Only the bits change:
            candidates are rescored against the untransformed prefix, so every variant ranks by the same cosine.
        rescore, multiplier: as in :meth:`VectorIndex.build` (``pca``: float32 only).

    Returns:
        A row: the settings, ``ndcg10``, ``recall1`` and ``candidates_recall``, the share of queries whose
        relevant passage is among the ``top_k * multiplier`` Hamming candidates (all that rescoring can recover).
    """
    q, x = prefix(queries, dims), prefix(docs, dims)
    tq, tx = q, x
    if transform == "pca":
        mean, rot = pca_rotation(x)
        tq, tx = (q - mean) @ rot, (x - mean) @ rot  # signs are unchanged by the norm: no need to re-normalise
    elif transform not in ("none", "center"):
        raise ValueError(f"transform {transform!r}: expected none, center or pca")
    center = transform == "center"
    first = VectorIndex.build(tx, dims, "binary", rescore="none", center=center)
    cand, _ = first.search(tq, top_k * multiplier)  # (nq, k * m) Hamming candidates
    if transform == "pca":
        if rescore != "float32":
            raise ValueError("transform 'pca' is measured with float32 rescoring only")
        exact = np.einsum("qd,qcd->qc", q, x[np.maximum(cand, 0)])
        exact[cand < 0] = -np.inf
        rows = np.take_along_axis(cand, np.argsort(-exact, axis=1, kind="stable")[:, :top_k], 1)
    else:
        rows, _ = VectorIndex.build(x, dims, "binary", rescore=rescore, multiplier=multiplier,
                                    center=center).search(q, top_k)
    return {"dims": dims, "transform": transform, "rescore": rescore, "multiplier": multiplier,
            "ndcg10": ndcg_at_k(rows, relevant), "recall1": recall_at_k(rows, relevant, 1),
            "candidates_recall": recall_at_k(cand, relevant, top_k * multiplier)}


def int8_variant(queries: np.ndarray, docs: np.ndarray, relevant: list[set[int]], dims: int, *,
                 calibration: str = "minmax", scoring: str = "asymmetric", multiplier: int = 4,
                 top_k: int = 10) -> dict:
    """nDCG@10 and recall@1 of int8 search at ``dims`` with one calibration and one way of scoring.

    ``scoring``: ``asymmetric`` is the library's index (float query against the documents' bucket centres);
    ``symmetric`` scores int8 query codes against int8 document codes (the inner product of the codes, as an
    int8 index without float queries does), ``symmetric+rescore`` then rescores its ``top_k * multiplier``
    best with the float query against the bucket centres (sentence-transformers' ``semantic_search_usearch``
    does both steps). The symmetric scores are computed here in numpy (exact, all documents): this measures
    the scoring rule, not an engine.
    """
    from sentence_transformers.util.quantization import quantize_embeddings

    q, x = prefix(queries, dims), prefix(docs, dims)
    if scoring == "asymmetric":
        index = VectorIndex.build(x, dims, "int8", calibration=calibration)
        rows, _ = index.search(q, top_k)
    else:
        ranges = int8_ranges(x, calibration)
        qc, xc = (quantize_embeddings(a, "int8", ranges=ranges).astype(np.float32) for a in (q, x))
        scores = qc @ xc.T  # (nq, n) inner products of the codes
        depth = top_k * multiplier if scoring == "symmetric+rescore" else top_k
        rows = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        if scoring == "symmetric+rescore":
            centres = int8_dequantize(quantize_embeddings(x, "int8", ranges=ranges), ranges)
            exact = np.einsum("qd,qcd->qc", q, centres[rows])
            rows = np.take_along_axis(rows, np.argsort(-exact, axis=1, kind="stable")[:, :top_k], 1)
    return {"dims": dims, "calibration": calibration, "scoring": scoring,
            "multiplier": multiplier if scoring == "symmetric+rescore" else 1,
            "ndcg10": ndcg_at_k(rows, relevant), "recall1": recall_at_k(rows, relevant, 1)}


def random_head(embeddings: np.ndarray, width: int, seed: int) -> np.ndarray:
    """The widening head of an untrained Piccolo2 model applied to unit rows: identity on the first d outputs,
    ``width - d`` rows of N(0, 0.02^2) (:func:`piccolo_lib.model.build.projection`, zero bias), re-normalised.

    The extra outputs are random projections of the same vector: their signs are SimHash bits.
    """
    from ..model.build import projection

    weight = projection(embeddings.shape[1], width, seed=seed).linear.weight.detach().numpy()  # (width, d)
    out = embeddings @ weight.T
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
