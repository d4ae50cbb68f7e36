"""The trade-off grid: MRL dims x precision, each cell's quality, size and speed against exact float32 search.

Quality is measured on the local benchmark's queries, whose relevant passages are known (:mod:`.corpus`):

- nDCG@10 (C-MTEB's retrieval metric): DCG@10 / IDCG@10, DCG@10 = sum over ranks r <= 10 of rel_r / log2(r + 1);
- recall@1: the share of a query's relevant passages found at rank 1 (one relevant passage per query here:
  top-1 accuracy). Recall@10 is not reported: it is saturated at full float (about 99%) and cannot judge a trade-off.

Every figure is a mean over queries, in percent; ``kept`` is a cell's nDCG@10 over the model's exact float32
nDCG@10 at full dims (the anchor). Latency is the wall time of one query's search (quantizing the query, the
index scan, rescoring), queries run one at a time; encoding the query is the model's cost and is reported apart.

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

import time

import numpy as np

from .index import VectorIndex, bytes_per_vector, exact_search, faiss_module

FRACTIONS = (1, 2, 4, 8)  # full dims, 1/2, 1/4, 1/8
# the grid's rows per dims: name -> VectorIndex.build settings (binary-centred: signs of x - corpus mean)
VARIANTS = {"float32": {"precision": "float32"}, "int8": {"precision": "int8"},
            "binary": {"precision": "binary"}, "binary-centred": {"precision": "binary", "center": True}}


def ndcg_at_k(rows: np.ndarray, relevant: list[set[int]], k: int = 10) -> float:
    """Mean nDCG@k in percent, binary relevance. ``rows``: (nq, >= k) ranked document rows (-1: none)."""
    discounts = 1 / np.log2(np.arange(2, k + 2))  # (k,) rank r -> 1 / log2(r + 1)
    gains = np.array([[r in rel for r in ranked[:k]] for ranked, rel in zip(rows, relevant)], dtype=float)
    ideal = np.array([discounts[:min(len(rel), k)].sum() for rel in relevant])
    return float(100 * np.mean(np.divide(gains @ discounts[:gains.shape[1]], ideal, out=np.zeros(len(ideal)),
                                         where=ideal > 0)))


def recall_at_k(rows: np.ndarray, relevant: list[set[int]], k: int = 1) -> float:
    """Mean recall@k in percent: the share of each query's relevant rows among its top k."""
    return float(100 * np.mean([len(rel & set(ranked[:k].tolist())) / len(rel) if rel else 0.0
                                for ranked, rel in zip(rows, relevant)]))


def latency_ms(index: VectorIndex, queries: np.ndarray, top_k: int = 10, limit: int | None = 300,
               threads: int = 1, repeats: int = 3) -> np.ndarray:
    """Milliseconds of :meth:`VectorIndex.search` per query, one query at a time (the first ``limit``).

    Each query is timed ``repeats`` times and its fastest run kept: on a shared machine a descheduled process
    adds tens of milliseconds to random calls, which says nothing about the index. faiss runs on ``threads``
    OpenMP threads meanwhile (default 1, how a server answers many queries at once: one query per core); with
    2 threads on a busy 2-core machine, threads waiting for each other made one small scan 100x slower.
    """
    faiss = faiss_module()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        index.search(queries[:1], top_k)  # warm-up: first-call allocations
        times = np.full((len(queries[:limit]), repeats), np.inf)
        for rep in range(repeats):
            for i, q in enumerate(queries[:limit]):
                t0 = time.perf_counter()
                index.search(q[None], top_k)
                times[i, rep] = 1e3 * (time.perf_counter() - t0)
    finally:
        faiss.omp_set_num_threads(before)
    return times.min(1)


def measure_cell(index: VectorIndex, queries: np.ndarray, relevant: list[set[int]], *, top_k: int = 10,
                 latency_queries: int | None = 300) -> dict:
    """Quality, size and speed of one built index: a row of the grid."""
    rows, _ = index.search(queries, top_k)
    lat = latency_ms(index, queries, top_k, latency_queries) if latency_queries else np.array([np.nan])
    return {"dims": index.dims, "precision": index.precision, "rescore": index.rescore,
            "multiplier": index.multiplier, "bytes_per_vector": bytes_per_vector(index.dims, index.precision),
            "index_bytes": index.code_bytes, "rescore_bytes": index.rescore_bytes,
            "ndcg10": ndcg_at_k(rows, relevant, 10), "recall1": recall_at_k(rows, relevant, 1),
            "build_s": index.build_seconds, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99))}


def measure_grid(queries: np.ndarray, docs: np.ndarray, relevant: list[set[int]], *,
                 fractions: tuple[int, ...] = FRACTIONS, variants: tuple[str, ...] = tuple(VARIANTS),
                 rescore: str = "float32", multiplier: int = 4, calibration: str = "minmax",
                 latency_queries: int | None = 300, progress: bool = False) -> list[dict]:
    """Every (dims, variant) cell for one model's embeddings, plus ``kept`` against exact float32 at full dims.

    Args:
        queries, docs: (nq, D) and (n, D) unit rows of one model (full width D).
        relevant: per query, the rows of its relevant documents (``SearchCorpus.relevant()``).
        fractions: dims D // f for each f (MRL prefixes).
        variants: names of :data:`VARIANTS` (precision, and centring for binary).
        rescore, multiplier, calibration: binary and int8 settings (:meth:`VectorIndex.build`).
        latency_queries: queries timed one by one per cell (None: no timing).
    """
    from tqdm.auto import tqdm

    full = docs.shape[1]
    anchor = ndcg_at_k(exact_search(queries, docs, full, 10)[0], relevant, 10)
    cells = [(full // f, v) for f in fractions for v in variants]
    out = []
    for dims, variant in tqdm(cells, desc="grid (dims, variant)", disable=not progress):
        index = VectorIndex.build(docs, dims, rescore=rescore, multiplier=multiplier, calibration=calibration,
                                  **VARIANTS[variant])
        row = measure_cell(index, queries, relevant, latency_queries=latency_queries)
        row.update(variant=variant, fraction=f"1/{full // dims}" if dims != full else "full", full_dims=full,
                   kept=100 * row["ndcg10"] / anchor, anchor_ndcg10=anchor)
        out.append(row)
    return out


def format_grid(rows: list[dict], name: str = "") -> str:
    """A markdown table of :func:`measure_grid` rows."""
    head = ("| model | dims | precision | bytes/vector | index KiB | rescoring KiB (disk) | nDCG@10 | recall@1 | "
            "kept | build s | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {name} | {r['dims']} ({r['fraction']}) | {r.get('variant', r['precision'])}"
        f"{' + ' + r['rescore'] + ' rescore x' + str(r['multiplier']) if r['precision'] == 'binary' and r['rescore'] != 'none' else ''}"
        f" | {r['bytes_per_vector']:g} | {r['index_bytes'] / 1024:,.0f} | {r['rescore_bytes'] / 1024:,.0f} | "
        f"{r['ndcg10']:.2f} | {r['recall1']:.2f} | {r['kept']:.1f}% | {r['build_s']:.3f} | {r['p50_ms']:.2f} | "
        f"{r['p99_ms']:.2f} |\n" for r in rows)
    return head + body


def plot_tradeoff(grids: dict[str, list[dict]], *, metric: str = "ndcg10", ax=None, title: str = ""):
    """Quality against bytes per vector (log scale), one line per variant (precision), one line style per model.

    ``grids``: model name -> :func:`measure_grid` rows. Each model's exact float32 nDCG@10 at full dims is a
    dotted horizontal line. Needs matplotlib (the ``[course]`` extra).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    colors = {"float32": "tab:blue", "int8": "tab:orange", "binary": "tab:green", "binary-centred": "tab:red"}
    styles = ["-", "--", ":", "-."]
    for (name, rows), style in zip(grids.items(), styles):
        for variant, color in colors.items():
            pts = sorted((r["bytes_per_vector"], r[metric], r["dims"]) for r in rows
                         if r.get("variant", r["precision"]) == variant)
            if not pts:
                continue
            label = variant + (" + rescoring" if variant.startswith("binary") else "")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", color=color, label=f"{name}: {label}")
            for x, y, dims in pts:
                ax.annotate(str(dims), (x, y), textcoords="offset points", xytext=(3, -9), fontsize=7, color=color)
        ax.axhline(rows[0]["anchor_ndcg10"] if metric == "ndcg10" else max(r[metric] for r in rows),
                   color="grey", linestyle=style, linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("bytes per vector (log scale; numbers: dims kept)")
    ax.set_ylabel({"ndcg10": "nDCG@10 (%)", "recall1": "recall@1 (%)"}.get(metric, metric))
    ax.set_title(title or "quality vs index size per vector")
    ax.legend(fontsize=7, ncol=2)
    return ax
