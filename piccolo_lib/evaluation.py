"""Offline C-MTEB-style evaluation on the repo's small local data (``data_samples/eval``).

Six local tasks, one per C-MTEB category, run through mteb's own abstasks and evaluators (mteb 2.26),
each with the metadata of a real C-MTEB task, so a score means what it means on C-MTEB (on tiny data):

- Classification (AbsTaskClassification, as TNews): accuracy of mteb's logistic regression on frozen
  embeddings, 32 train texts per label, mean of 10 draws.
- Clustering (the fast AbsTaskClustering, as CLSClusteringS2S.v2): v_measure of MiniBatchKMeans.
- PairClassification (AbsTaskPairClassification, as Ocnli): max_accuracy, the best-threshold accuracy
  over cosine/dot/euclidean/manhattan scores (max_ap, what the old C-MTEB leaderboard showed, is in the
  result files too).
- Reranking (AbsTaskRetrieval with top_ranked candidates, as T2Reranking): map_at_1000.
- Retrieval (AbsTaskRetrieval, as T2Retrieval): ndcg_at_10 over the whole corpus.
- STS (AbsTaskSTS, as LCQMC): cosine_spearman.

mteb caches results in ``output_dir/results/<model>/<revision>/<task>.json``, truncated embeddings under
``.../experiments/truncate_dim_<d>/`` (see ``results_dir``); a task whose files changed is recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import mteb
import numpy as np
import torch
from datasets import Dataset, DatasetDict
from mteb.abstasks import (
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from mteb.cache import ResultCache
from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ScoringFunction
from mteb.results import TaskResult
from sentence_transformers import SentenceTransformer
from sklearn.exceptions import UndefinedMetricWarning
from threadpoolctl import ThreadpoolController

from .data import read_jsonl
from .reporting import CATEGORIES, aggregate, format_table  # noqa: F401  (format_table: re-exported)
TFIDF_NAME = "tfidf-char-ngram"
_REVISION = "local"  # mteb's model-revision folder: a model is identified by model_name alone
_TASK_VERSION = "1"  # part of each task's data hash: bump it when task construction changes
logger = logging.getLogger(__name__)


class _LocalTask:
    """Mixin for a task read from jsonl files (``files``: role -> path); data load on first use."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        super().__init__()  # AbsTask.__init__: seeds, hf_subsets

    def rows(self, role: str) -> list[dict[str, Any]]:
        return read_jsonl(self.files[role])

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
    def _splits(self) -> dict[str, Dataset]:
        return {"test": Dataset.from_list([{"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                                            "score": float(r["score"])} for r in self.rows("eval")])}


class _LocalPairClassification(_LocalTask, AbsTaskPairClassification):
    label_column_name = "label"

    def _splits(self) -> dict[str, Dataset]:
        return {"test": Dataset.from_list([{"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                                            "label": int(r["label"])} for r in self.rows("eval")])}


class _LocalClassification(_LocalTask, AbsTaskClassification):
    samples_per_label = 32  # as C-MTEB's TNews / IFlyTek; 10 experiments (mteb default)

    def _splits(self) -> DatasetDict:
        train = [(r["text"], r["text_pos"]) for r in self.rows("train")]
        test = [(r["text"], r["label"]) for r in self.rows("eval")]
        ids = {name: i for i, name in enumerate(sorted({label for _, label in train + test}))}
        return DatasetDict({split: Dataset.from_list([{"text": t, "label": ids[label]} for t, label in pairs])
                            for split, pairs in (("train", train), ("test", test))})


class _LocalClustering(_LocalTask, AbsTaskClustering):
    """The fast (non-legacy) clustering task: every text is embedded once, then each of 10 experiments
    runs MiniBatchKMeans on a full-size bootstrap resample and v_measure is averaged. Its defaults (embed
    4% of the data, 16k texts per experiment) are meant for large corpora, so they are adapted here;
    the legacy task would give one noisy k-means run on ~160 texts."""

    input_column_name, label_column_name = "text", "label"
    max_fraction_of_documents_to_embed = None

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


class _LocalRetrieval(_LocalTask, AbsTaskRetrieval):
    def _splits(self) -> dict[str, dict]:
        qrels: dict[str, dict[str, int]] = {}
        for r in self.rows("qrels"):
            qrels.setdefault(str(r["query_id"]), {})[str(r["corpus_id"])] = int(r["score"])
        queries = [{"id": str(r["id"]), "text": r["text"]} for r in self.rows("queries")]
        corpus = [{"id": str(r["id"]), "text": r["text"]} for r in self.rows("corpus")]
        return _retrieval_split(queries, corpus, qrels, None)


class _LocalReranking(_LocalTask, AbsTaskRetrieval):
    """mteb v2 reranking: retrieval restricted to each query's own candidates (``top_ranked``)."""

    def _splits(self) -> dict[str, dict]:
        doc_ids: dict[str, str] = {}  # identical texts share one corpus entry
        queries, qrels, top_ranked = [], {}, {}
        for i, r in enumerate(self.rows("eval")):
            queries.append({"id": f"q{i}", "text": r["query"]})
            candidates = [doc_ids.setdefault(t, f"d{len(doc_ids)}") for t in r["positive"] + r["negative"]]
            top_ranked[f"q{i}"] = list(dict.fromkeys(candidates))
            qrels[f"q{i}"] = {doc_ids[t]: 1 for t in r["positive"]}
        corpus = [{"id": d, "text": t} for t, d in doc_ids.items()]
        return _retrieval_split(queries, corpus, qrels, top_ranked)


# category -> (task class, real C-MTEB task whose metadata is copied, {role: file}); "train:" = train_dir
_SPECS: dict[str, tuple[type, str, dict[str, str]]] = {
    "Classification": (_LocalClassification, "TNews",
                       {"eval": "classification.jsonl", "train": "train:classification.jsonl"}),
    "Clustering": (_LocalClustering, "CLSClusteringS2S.v2", {"eval": "clustering.jsonl"}),
    "PairClassification": (_LocalPairClassification, "Ocnli", {"eval": "pair_classification.jsonl"}),
    "Reranking": (_LocalReranking, "T2Reranking", {"eval": "reranking.jsonl"}),
    "Retrieval": (_LocalRetrieval, "T2Retrieval", {"queries": "retrieval_queries.jsonl",
                  "corpus": "retrieval_corpus.jsonl", "qrels": "retrieval_qrels.jsonl"}),
    "STS": (_LocalSTS, "LCQMC", {"eval": "sts.jsonl"}),
}


def local_tasks(data_dir: str | Path, train_dir: str | Path | None = None) -> list:
    """Build the six local tasks (``PiccoloLocal<Category>``) from ``data_dir``'s jsonl files.

    Args:
        data_dir: Folder with the eval files (sts.jsonl, pair_classification.jsonl, retrieval_*.jsonl,
            reranking.jsonl, classification.jsonl, clustering.jsonl).
        train_dir: Folder with classification.jsonl, the classifier's training split
            (default: ``data_dir/../train``).

    Returns:
        One mteb task per category, in ``CATEGORIES`` order. Each task's dataset revision is a hash of
        its files, so cached results of changed data are recomputed.
    """
    data_dir = Path(data_dir)
    train_dir = Path(train_dir) if train_dir is not None else data_dir.parent / "train"
    tasks = []
    for category in CATEGORIES:
        base, source, roles = _SPECS[category]
        files = {role: train_dir / f[6:] if f.startswith("train:") else data_dir / f
                 for role, f in roles.items()}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{category} task needs {missing}")
        digest = hashlib.sha256(_TASK_VERSION.encode())
        for role in sorted(files):
            digest.update(role.encode() + files[role].read_bytes())
        name = f"PiccoloLocal{category}"
        metadata = mteb.get_task(source).metadata.model_copy(update={
            "name": name, "description": f"Piccolo2 local {category} sample from {data_dir}",
            "dataset": {"path": str(data_dir), "revision": digest.hexdigest()[:16]},
            "eval_splits": ["test"], "superseded_by": None, "prompt": None})
        # A class per call: metadata is class-level in mteb (unload_data() drops instance copies).
        tasks.append(type(name, (base,), {"metadata": metadata, "__module__": __name__})(files))
    return tasks


def _mteb_meta(base: ModelMeta | None, model_name: str, revision: str,
               truncate_dim: int | None) -> ModelMeta:
    """The ModelMeta that decides where mteb caches: results/<name>/<revision>[/experiments/<exp>]."""
    base = base or ModelMeta.create_empty(overwrites={"similarity_fn_name": ScoringFunction.COSINE})
    update = {"name": model_name if "/" in model_name else f"local/{model_name}",  # mteb wants org/name
              "revision": revision, "experiment_kwargs": {"truncate_dim": truncate_dim} if truncate_dim else None}
    return base.model_copy(update={**update, **({"embed_dim": truncate_dim} if truncate_dim else {})})


def results_dir(output_dir: str | Path, model_name: str, truncate_dim: int | None = None,
                revision: str = _REVISION) -> Path:
    """The folder in which ``evaluate_model`` stores ``<task name>.json`` for this model and dim."""
    meta = _mteb_meta(None, model_name, revision, truncate_dim)
    return ResultCache(output_dir).get_task_result_path("x", meta).parent


class _EncodeAdapter(AbsEncoder):
    """mteb encoder around any object with ``encode(texts, batch_size=, show_progress_bar=)``."""

    def __init__(self, model: Any, truncate_dim: int | None) -> None:
        self.model, self.truncate_dim = model, truncate_dim

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        emb = self.model.encode(texts, batch_size=kwargs.get("batch_size", 32),
                                show_progress_bar=kwargs.get("show_progress_bar", False))
        emb = np.asarray(emb.detach().cpu().float() if hasattr(emb, "detach") else emb, dtype=np.float32)
        return emb[:, : self.truncate_dim] if self.truncate_dim else emb


@contextmanager
def _run_settings(model: Any, truncate_dim: int | None, show_progress: bool) -> Iterator[None]:
    """Set the model's truncate_dim, progress bars, logging and thread pools; restore them after."""
    is_st, old_dim = isinstance(model, SentenceTransformer), getattr(model, "truncate_dim", None)
    bars_on, mteb_logger = datasets.is_progress_bar_enabled(), logging.getLogger("mteb")
    old_level = mteb_logger.level
    # One thread for BLAS and scikit-learn's OpenMP (torch keeps its pool): the logistic regressions and
    # k-means here are tiny, and on a busy 2-core machine their spinning threads made runs 5-15x slower.
    pools, torch_dir = ThreadpoolController(), str(Path(torch.__file__).parent)
    pools = pools.select(filepath=[lib.filepath for lib in pools.lib_controllers if torch_dir not in lib.filepath])
    try:
        if is_st:
            model.truncate_dim = None
            full = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
            if truncate_dim and full and truncate_dim > full:
                raise ValueError(f"truncate_dim={truncate_dim} exceeds the embedding size {full}")
            model.truncate_dim = truncate_dim
        if not show_progress:
            datasets.disable_progress_bars()
        mteb_logger.setLevel(max(mteb_logger.getEffectiveLevel(), logging.WARNING))  # no per-task INFO
        with pools.limit(limits=1):
            yield
    finally:
        mteb_logger.setLevel(old_level)
        if is_st:
            model.truncate_dim = old_dim
        if bars_on:
            datasets.enable_progress_bars()


def evaluate_model(model: Any, tasks: list, output_dir: str | Path, *, model_name: str,
                   truncate_dim: int | None = None, batch_size: int = 64, show_progress: bool = True) -> dict:
    """Run mteb's evaluators for ``tasks`` on an embedding model, reusing cached results.

    Args:
        model: A SentenceTransformer (wrapped by mteb, so its query/document prompts are used) or any
            object with a SentenceTransformer-like ``encode(texts, batch_size=..., show_progress_bar=...)``.
        tasks: mteb tasks, e.g. ``local_tasks(...)``.
        output_dir: mteb result cache; results go to ``results_dir(output_dir, model_name, truncate_dim)``.
            Tasks found there (with unchanged data) are not recomputed: name a new checkpoint anew.
        model_name: Identifies the model in the cache and in the summary.
        truncate_dim: Evaluate the first ``truncate_dim`` embedding dimensions only (Matryoshka); the
            model's own ``truncate_dim`` is restored afterwards. None: the model's own (full if unset).
        batch_size: Encoding batch size.
        show_progress: Show mteb's task and sentence-transformers' encoding progress bars.

    Returns:
        ``{"model", "truncate_dim", "mteb_version", "results_dir", "tasks": {name: {"category",
        "main_score" (percent), "metric", "split"}}, "categories": {category: mean of its tasks},
        "average": mean over all tasks}``, all scores in percent.
    """
    is_st = isinstance(model, SentenceTransformer)
    if truncate_dim is None and is_st:  # a model loaded with truncate_dim=d is evaluated, and filed, at d
        truncate_dim = model.truncate_dim
    if truncate_dim is not None and truncate_dim < 1:
        raise ValueError(f"truncate_dim must be positive, got {truncate_dim}")
    with warnings.catch_warnings():  # mteb 2.26 trips over its own deprecations when wrapping
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        wrapper = SentenceTransformerEncoderWrapper(model) if is_st else _EncodeAdapter(model, truncate_dim)
    revision = getattr(model, "cache_revision", _REVISION)
    wrapper.mteb_model_meta = meta = _mteb_meta(wrapper.mteb_model_meta, model_name, revision, truncate_dim)
    cache = ResultCache(output_dir)
    for task in tasks:  # mteb reuses a complete result even if the data changed: drop it ourselves
        path = cache.get_task_result_path(task.metadata.name, meta)
        if path.is_file() and TaskResult.from_disk(path).dataset_revision != task.metadata.revision:
            logger.info("Data of %s changed since it was cached; recomputing", task.metadata.name)
            path.unlink()
    with _run_settings(model, truncate_dim, show_progress), warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # precision of never-predicted labels
        result = mteb.evaluate(wrapper, tasks, cache=cache, overwrite_strategy="only-missing",
                               encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress},
                               show_progress_bar=show_progress, co2_tracker=False)
    by_name = {r.task_name: r for r in result.task_results}
    task_scores = {}
    for task in tasks:
        split = task.metadata.eval_splits[0]
        score = np.mean([s["main_score"] for s in by_name[task.metadata.name].scores[split]])
        task_scores[task.metadata.name] = {  # mteb stores fractions rounded to 6 decimals
            "category": task.metadata.type, "main_score": round(100 * float(score), 4),
            "metric": task.metadata.main_score, "split": split}
    categories, average = aggregate(task_scores)
    return {"model": model_name, "truncate_dim": truncate_dim, "mteb_version": mteb.__version__,
            "results_dir": str(cache.get_task_result_path("x", meta).parent), "tasks": task_scores,
            "categories": categories, "average": average}


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


def tfidf_baseline(tasks: list, output_dir: str | Path, fit_texts: list[str] | None = None) -> dict:
    """The lexical baseline: ``TfidfEncoder`` through the same mteb tasks, as model 'tfidf-char-ngram'.

    Args:
        tasks: mteb tasks, e.g. ``local_tasks(...)``.
        output_dir: mteb result cache.
        fit_texts: Texts to fit vocabulary and idf on; default: every distinct text of the local tasks'
            train and eval files (unsupervised and transductive, as usual for this baseline).

    Returns:
        The summary dict of ``evaluate_model``.
    """
    if fit_texts is None:
        fit_texts = list(dict.fromkeys(t for task in tasks if isinstance(task, _LocalTask) for t in task.texts()))
    if not fit_texts:
        raise ValueError("No texts to fit the TF-IDF vocabulary on; pass fit_texts")
    return evaluate_model(TfidfEncoder(fit_texts), tasks, output_dir, model_name=TFIDF_NAME,
                          batch_size=256, show_progress=False)
