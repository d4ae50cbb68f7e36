"""``piccolo index`` and ``piccolo search``: a model and a corpus in, an index folder out; queries against it.

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .corpus import benchmark_corpus, read_corpus
from .encode import encode
from .index import VectorIndex
from .store import SearchIndex, load_index, save_index


def load_search_model(name: str, *, max_seq_length: int | None = None, device: str | None = None) -> tuple[Any, str]:
    """(SentenceTransformer, the path or hub name it was loaded from): offline aliases (``e5-small``,
    ``offline-bert``) resolved to their folders, so a plain sentence-transformers user can load the same."""
    from sentence_transformers import SentenceTransformer

    from ..model.backbones import resolve_backbone

    path = resolve_backbone(name)
    model = SentenceTransformer(path, device=device)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model, str(Path(path).resolve()) if Path(path).exists() else path


def index_corpus(model_name: str, out: str | Path, *, corpus: str = "benchmark", news: int | None = None,
                 news_min_chars: int = 20, dims: int | None = None, precision: str = "float32",
                 rescore: str = "float32", multiplier: int = 4, center: bool = True, batch_size: int = 32,
                 max_seq_length: int | None = None, keep_texts: bool = True, cache_dir: str | Path | None = None,
                 seed: int = 0, show_progress: bool = True, device: str | None = None) -> dict[str, Any]:
    """Encode a corpus with a model, index its ``dims``-prefixes at ``precision`` and write the folder ``out``.

    Args:
        corpus: ``benchmark`` (the local retrieval corpus plus ``news`` People's Daily paragraphs, None: all of
            those with >= ``news_min_chars`` characters) or a JSONL file of ``{"id", "text"}`` rows.
        dims: the prefix to keep (None: the full embedding).
        precision, rescore, multiplier, center: see :meth:`piccolo_lib.search.index.VectorIndex.build`; binary
            codes are centred by default (signs of x minus the corpus mean): notebooks/11_search.ipynb, section 7.

    Returns:
        A summary: folder, documents, documents per second, build seconds, code and rescoring bytes.
    """
    model, model_path = load_search_model(model_name, max_seq_length=max_seq_length, device=device)
    if corpus == "benchmark":
        data = benchmark_corpus(news=news, news_min_chars=news_min_chars, seed=seed)
        ids, texts, description = data.doc_ids, data.docs, data.description
    else:
        ids, texts = read_corpus(corpus)
        description = f"{corpus} ({len(ids):,} documents)"
    encoded = encode(model, texts, "document", batch_size=batch_size, show_progress=show_progress,
                     cache_dir=cache_dir)
    full = model.get_embedding_dimension()
    vectors = VectorIndex.build(encoded.embeddings, dims or full, precision, rescore=rescore, multiplier=multiplier,
                                center=center)
    prompts = getattr(model, "prompts", {})
    save_index(out, vectors, ids, model=model_path, full_dims=full, query_prompt=prompts.get("query", ""),
               document_prompt=prompts.get("document", ""), texts=texts if keep_texts else None,
               corpus=description)
    return {"folder": str(out), "documents": len(ids), "docs_per_s": encoded.per_second,
            "encode_s": encoded.seconds, "build_s": vectors.build_seconds, "code_bytes": vectors.code_bytes,
            "rescore_bytes": vectors.rescore_bytes, "dims": vectors.dims, "full_dims": full,
            "precision": precision, "corpus": description}


def search_folder(folder: str | Path, queries: list[str], *, top_k: int = 10, model: str | None = None,
                  device: str | None = None) -> tuple[SearchIndex, list[list[tuple[str, float]]]]:
    """Load an index folder and its model (or ``model``), and answer ``queries``: (index, hits per query)."""
    index = load_index(folder)
    st, _ = load_search_model(model or index.manifest["model"], device=device)
    index.check_model(st, model or index.manifest["model"])
    return index, index.query(st, queries, top_k)
