"""Search with a trained model (issue 28): MRL dims x precision on the local corpus plus all of People's Daily.

The corpus is the local retrieval task plus all 18,994 People's Daily paragraphs (``news_min_chars=1``) as
distractors; the queries and relevant passages are the local benchmark's. Two models: e5-small zero-shot and the
quickstart model (``runs/quickstart/final`` when it exists, else trained here from configs/quickstart.yaml into
build/bench-search/). Both read at most 128 tokens per text. Per model:

- encode throughput on a fixed sample of 512 passages, never cached (the full corpus comes from the encoding
  cache in runs/search-cache when an earlier run or the notebook filled it);
- the grid (:func:`piccolo_lib.search.measure_grid`): for dims D, D/2, D/4, D/8 and float32, int8, binary with
  float32 rescoring (x4): nDCG@10, recall@1, kept share of exact full-float nDCG@10, bytes per vector, codes in
  memory, rescoring vectors on disk, build time, single-query latency p50/p99 (300 queries, one faiss thread);
- the controlled measurements of notebooks/11_search.ipynb section 7 (:mod:`piccolo_lib.search.study`);
- the MRL control: the same quickstart trained without MRL (``mrl_dims: []``, everything else equal, trained once
  into build/bench-search/no-mrl), against the MRL model, on the local corpus plus 2,000 paragraphs (one more
  encoding of 19.6k passages would take an hour on a busy 2-core machine; the two MRL-trained models' subset
  encodings come from the cache).

Quick mode (tests): the 1M-parameter toy as both models, 200 paragraphs; no claims. Runs go to build/bench-search/.
"""

from __future__ import annotations

import random
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench-search"
CACHE = ROOT / "runs" / "search-cache"
FINETUNED = ROOT / "runs" / "quickstart" / "final"
PLOT = Path(__file__).resolve().parent / "search_tradeoff.png"
GOALS = {"int8": 97.0, "binary": 95.0, "binary-centred": 95.0}  # share of full-float nDCG@10 at 1/4 dims (issue 28)
MAX_SEQ_LENGTH, MULTIPLIER, SAMPLE = 128, 4, 512
MRL_CONTROL_NEWS = 2000


def _finetuned() -> Path:
    """The quickstart model: reused from runs/quickstart/final, else trained (once) into build/bench-search."""
    if (FINETUNED / "modules.json").is_file():
        return FINETUNED
    from piccolo_lib import pipeline
    from piccolo_lib.train.loop import load_config, train

    done = OUT / "quickstart" / "final"
    if (done / "modules.json").is_file():
        return done
    return Path(train(load_config(pipeline.QUICK_CONFIG, {"output_dir": str(OUT / "quickstart")})))


def _no_mrl() -> Path:
    """The quickstart without MRL (mrl_dims: []), trained once into build/bench-search/no-mrl."""
    from piccolo_lib import pipeline
    from piccolo_lib.train.loop import load_config, train

    done = OUT / "no-mrl" / "final"
    if (done / "modules.json").is_file():
        return done
    return Path(train(load_config(pipeline.QUICK_CONFIG, {"output_dir": str(OUT / "no-mrl"), "mrl_dims": []})))


def _mrl_control(finetuned: str) -> dict:
    """Float and binary quality per prefix, MRL vs no MRL, on the local corpus + 2,000 paragraphs."""
    from piccolo_lib.search import benchmark_corpus, encode, exact_search, load_search_model, ndcg_at_k
    from piccolo_lib.search.study import binary_variant

    corpus = benchmark_corpus(news=MRL_CONTROL_NEWS, news_min_chars=1)
    relevant = corpus.relevant()
    out = {"corpus": corpus.description, "documents": len(corpus.docs), "rows": []}
    for name, path in (("MRL (quickstart)", finetuned), ("no MRL", str(_no_mrl()))):
        model, _ = load_search_model(path, max_seq_length=MAX_SEQ_LENGTH)
        q = encode(model, corpus.queries, "query", cache_dir=CACHE, desc=f"{name}: queries").embeddings
        d = encode(model, corpus.docs, "document", cache_dir=CACHE, desc=f"{name}: passages").embeddings
        full = d.shape[1]
        anchor = ndcg_at_k(exact_search(q, d, full)[0], relevant)
        for f in (1, 2, 4, 8):
            row = {"model": name, "dims": full // f, "float32": ndcg_at_k(exact_search(q, d, full // f)[0], relevant),
                   "anchor": anchor}
            for t in ("none", "center"):
                row[f"binary_{t}"] = binary_variant(q, d, relevant, full // f, transform=t,
                                                    multiplier=MULTIPLIER)["ndcg10"]
            out["rows"].append(row)
    return out


def _study(name: str, queries, docs, relevant) -> dict:
    from piccolo_lib.search.study import binary_variant, int8_variant, sign_stats
    from piccolo_lib.search import prefix

    full = docs.shape[1]
    out = {"sign_stats": {f: sign_stats(prefix(docs, full // f)) for f in (1, 2, 4, 8)}, "binary": [], "depth": [],
           "rescore": [], "int8": []}
    for f in (1, 4):
        for t in ("none", "center", "pca"):
            out["binary"].append(binary_variant(queries, docs, relevant, full // f, transform=t, multiplier=MULTIPLIER))
    for t in ("none", "center"):
        for m in (1, 2, 4, 10, 40):
            out["depth"].append(binary_variant(queries, docs, relevant, full // 4, transform=t, multiplier=m))
        for r in ("none", "bits", "int8", "float32"):
            out["rescore"].append(binary_variant(queries, docs, relevant, full // 4, transform=t, rescore=r,
                                                 multiplier=MULTIPLIER))
    for c in ("minmax", "quantile"):
        for s in ("asymmetric", "symmetric", "symmetric+rescore"):
            out["int8"].append(int8_variant(queries, docs, relevant, full // 4, calibration=c, scoring=s,
                                            multiplier=MULTIPLIER))
    return out


def run(quick: bool = False) -> dict:
    import numpy as np
    import torch

    from piccolo_lib import runtime

    runtime.setup("quick")
    from piccolo_lib.search import benchmark_corpus, encode, exact_search, load_search_model, measure_grid, ndcg_at_k
    from piccolo_lib.search.grid import plot_tradeoff
    from piccolo_lib.search.study import binary_variant, random_head

    corpus = benchmark_corpus(news=200 if quick else None, news_min_chars=1)
    relevant = corpus.relevant()
    paths = {"toy": "offline-bert"} if quick else {"zero-shot": "e5-small", "fine-tuned": str(_finetuned())}
    data = {"quick": quick, "corpus": corpus.description, "documents": len(corpus.docs), "queries": len(corpus.queries),
            "threads": torch.get_num_threads(), "max_seq_length": MAX_SEQ_LENGTH, "multiplier": MULTIPLIER,
            "models": {}}
    emb = {}
    sample = random.Random(0).sample(range(len(corpus.docs)), 50 if quick else SAMPLE)
    for name, path in paths.items():
        model, resolved = load_search_model(path, max_seq_length=MAX_SEQ_LENGTH)
        fresh = encode(model, [corpus.docs[i] for i in sample], "document", show_progress=False)  # never cached
        q = encode(model, corpus.queries, "query", cache_dir=CACHE, show_progress=not quick, desc=f"{name}: queries")
        d = encode(model, corpus.docs, "document", cache_dir=CACHE, show_progress=not quick, desc=f"{name}: passages")
        emb[name] = (q.embeddings, d.embeddings)
        t0 = time.perf_counter()
        grid = measure_grid(q.embeddings, d.embeddings, relevant, multiplier=MULTIPLIER,
                            latency_queries=20 if quick else 300, progress=not quick)
        data["models"][name] = {
            "path": resolved if Path(resolved).exists() and quick else path, "full_dims": d.embeddings.shape[1],
            "sample_docs_per_s": fresh.per_second, "sample_size": len(sample),
            "corpus_encoded_now": d.encoded, "corpus_encode_s": d.seconds, "grid": grid,
            "grid_s": time.perf_counter() - t0, "study": _study(name, q.embeddings, d.embeddings, relevant)}
    if not quick:  # the two cross-model controls: the fine-tuned model at the zero-shot width, the untrained head
        (zq, zd), (fq, fd) = emb["zero-shot"], emb["fine-tuned"]
        w0, w1 = zd.shape[1], fd.shape[1]
        head = (random_head(zq, w1, 42), random_head(zd, w1, 42))
        data["controls"] = []
        for label, (q, d), dims in (("fine-tuned at the zero-shot width", (fq, fd), w0),
                                    ("zero-shot + untrained head (seed 42)", head, w1)):
            exact = ndcg_at_k(exact_search(q, d, dims)[0], relevant)
            for t in ("none", "center"):
                data["controls"].append({**binary_variant(q, d, relevant, dims, transform=t, multiplier=MULTIPLIER),
                                         "model": label, "exact_ndcg10": exact})
        data["mrl_control"] = _mrl_control(paths["fine-tuned"])
    data["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    path = (OUT / "search_tradeoff.png") if quick else PLOT
    path.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    grids = {n: m["grid"] for n, m in data["models"].items()}
    plot_tradeoff(grids, ax=axes[0], title=f"nDCG@10 vs bytes per vector ({len(corpus.docs):,} passages)")
    plot_tradeoff(grids, metric="recall1", ax=axes[1], title="recall@1 vs bytes per vector")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    data["plot"] = path.name
    return data


def _cell(grid: list[dict], fraction: str, variant: str) -> dict:
    return next(r for r in grid if r["fraction"] == fraction and r["variant"] == variant)


def render(data: dict) -> str:
    from piccolo_lib.search import format_grid

    models = data["models"]
    lines = ["## 14. Search: MRL dims x precision on People's Daily (benchmarks/search.py)\n",
             f"Corpus: {data['corpus']}: {data['documents']:,} passages, {data['queries']:,} queries with known relevant "
             f"passages. Both models read at most {data['max_seq_length']} tokens per text. Binary cells shortlist "
             f"top 10 x {data['multiplier']} by Hamming distance and rescore them with the float query against the "
             "float prefixes kept on disk (not counted in the index's memory; listed as rescoring KiB); "
             "*binary-centred* takes the signs of the prefix minus the corpus mean (stored with the index). Latency: one "
             "query at a time, one faiss thread, fastest of 3 runs per query, search only (the query's encoding is "
             "the model's cost). The plot: `benchmarks/search_tradeoff.png`.\n",
             "| model | full dims | encode, fresh sample | corpus encoded this run |", "|---|---|---|---|"]
    for name, m in models.items():
        lines.append(f"| {name} | {m['full_dims']} | {m['sample_docs_per_s']:.1f} passages/s ({m['sample_size']} passages) "
                     f"| {m['corpus_encoded_now']:,} in {m['corpus_encode_s']:.0f} s (the rest cached) |")
    lines.append("")
    for name, m in models.items():
        lines += [format_grid(m["grid"], name)]
    lines.append(f"Peak resident memory of the benchmark process: {data['peak_rss_mib']:,.0f} MiB.\n")
    lines.append("**Goals at 1/4 of the dims** (share of the model's exact full-float nDCG@10):\n")
    for name, m in models.items():
        for precision, goal in GOALS.items():
            r = _cell(m["grid"], "1/4", precision)
            ratio = 4 * m["full_dims"] / r["bytes_per_vector"]
            verdict = "met" if r["kept"] >= goal else f"**missed** by {goal - r['kept']:.1f} points"
            lines.append(f"- {name}, {precision} at {r['dims']} dims ({ratio:.0f}x smaller codes): kept {r['kept']:.1f}% "
                         f"(nDCG@10 {r['ndcg10']:.2f} of {r['anchor_ndcg10']:.2f}); goal >= {goal:.0f}%: {verdict}")
    lines.append("\n**Why binary works for one model and not the other** (notebooks/11_search.ipynb, section 7).\n")
    lines += ["| model | dims | corpus mean length | mean cosine | stuck dims (>90% one sign) | bit entropy |",
              "|---|---|---|---|---|---|"]
    for name, m in models.items():
        for f, s in m["study"]["sign_stats"].items():
            lines.append(f"| {name} | {m['full_dims'] // int(f)} | {s['mean_norm']:.3f} | {s['mean_cos']:.3f} | "
                         f"{100 * s['stuck_share']:.1f}% | {s['bit_entropy']:.3f} |")
    lines += ["", "Binary + float32 rescoring (x4), bits taken from the prefix as is, around the corpus mean, or along "
              "its principal axes; *shortlist* = queries whose relevant passage is among the 40 Hamming candidates.\n",
              "| model | dims | bits from | shortlist | nDCG@10 | kept |", "|---|---|---|---|---|---|"]
    for name, m in models.items():
        anchor = m["grid"][0]["anchor_ndcg10"]
        for r in m["study"]["binary"]:
            lines.append(f"| {name} | {r['dims']} | {r['transform']} | {r['candidates_recall']:.1f}% | {r['ndcg10']:.2f} | "
                         f"{100 * r['ndcg10'] / anchor:.1f}% |")
    for r in data.get("controls", []):
        lines.append(f"| {r['model']} | {r['dims']} | {r['transform']} | {r['candidates_recall']:.1f}% | {r['ndcg10']:.2f} "
                     f"| {100 * r['ndcg10'] / r['exact_ndcg10']:.1f}% of its exact {r['exact_ndcg10']:.2f} |")
    lines += ["", "Rescoring source and depth at 1/4 of the dims:\n",
              "| model | bits from | rescore against | m | shortlist | nDCG@10 |", "|---|---|---|---|---|---|"]
    for name, m in models.items():
        for r in m["study"]["rescore"] + m["study"]["depth"]:
            lines.append(f"| {name} | {r['transform']} | {r['rescore']} | {r['multiplier']} | {r['candidates_recall']:.1f}% "
                         f"| {r['ndcg10']:.2f} |")
    control = data.get("mrl_control")
    if control:
        lines += ["", f"MRL control on {control['corpus']} ({control['documents']:,} passages): the quickstart with and "
                  "without MRL, everything else equal; each cell as a share of the model's own exact full-float nDCG@10 "
                  "(binary: float32 rescoring x4).\n",
                  "| model | dims | float32 | binary | binary, centred |", "|---|---|---|---|---|"]
        for r in control["rows"]:
            lines.append(f"| {r['model']} | {r['dims']} | {100 * r['float32'] / r['anchor']:.1f}% | "
                         f"{100 * r['binary_none'] / r['anchor']:.1f}% | {100 * r['binary_center'] / r['anchor']:.1f}% |")
    lines += ["", "int8 at 1/4 of the dims: calibration and scoring (asymmetric: float query . bucket centres, the "
              "library's index; symmetric: int8 query codes . int8 passage codes; +rescore: its top 40 rescored "
              "against the bucket centres).\n",
              "| model | calibration | scoring | nDCG@10 | recall@1 |", "|---|---|---|---|---|"]
    for name, m in models.items():
        for r in m["study"]["int8"]:
            lines.append(f"| {name} | {r['calibration']} | {r['scoring']} | {r['ndcg10']:.2f} | {r['recall1']:.2f} |")
    return "\n".join(lines) + "\n"
