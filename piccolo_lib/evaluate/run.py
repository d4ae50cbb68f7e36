"""Run mteb (2.26) on an embedding model: cached, resumable, per Matryoshka dim, with zero-shot extras.

- :func:`evaluate_model` runs any mteb tasks (the local benchmark of :mod:`piccolo_lib.local_benchmark`,
  or C-MTEB's from :mod:`piccolo_lib.cmteb`) through mteb's evaluators and returns a summary whose every
  score carries its split, metric and the mteb version.
- Results are mteb's own files in ``output_dir/results/<model>/<revision>/<task>.json``, truncated
  embeddings under ``.../experiments/truncate_dim_<d>/`` (see :func:`results_dir`). A re-run computes
  only what is missing (mteb's ``only-missing``); files are written atomically (:class:`AtomicResultCache`),
  so a run killed at any point resumes with the unfinished tasks; an unreadable or stale file (other data
  revision) is moved aside and its task recomputed.
- :func:`zero_shot_task` turns a classification task into zero-shot classification by label retrieval
  (embed the label names, pick the nearest), scored beside mteb's logistic regression.

Introduced in notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import mteb
import numpy as np
import torch
from datasets import ClassLabel, Dataset
from mteb.abstasks import AbsTaskZeroShotClassification
from mteb.cache import ResultCache
from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
from mteb.models.abs_encoder import AbsEncoder, get_prompt_name
from mteb.models.model_meta import ScoringFunction
from mteb.results import TaskResult
from mteb.types import PromptType
from sentence_transformers import SentenceTransformer
from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning
from threadpoolctl import ThreadpoolController

from .local import TfidfEncoder, local_tasks, subscores  # noqa: F401  (re-exported)
from .real import is_real, real_tasks  # noqa: F401  (re-exported)
from ..io import atomic_path
from ..scores import CATEGORIES, aggregate, format_table  # noqa: F401  (re-exported)

TFIDF_NAME = "tfidf-char-ngram"
_REVISION = "local"  # mteb's model-revision folder: a model is identified by model_name alone
logger = logging.getLogger(__name__)


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


class _AtomicWrite:
    """A TaskResult whose ``to_disk`` writes a temp file and renames it over the target."""

    def __init__(self, result: TaskResult) -> None:
        self._result = result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def to_disk(self, path: Path) -> None:
        with atomic_path(path) as tmp:  # readers see the old or the new file, never a half-written one
            self._result.to_disk(tmp)  # mteb's own serialisation, only the destination changes


class AtomicResultCache(ResultCache):
    """mteb's result cache, with each task result file written atomically.

    mteb 2.26 writes ``<task>.json`` with ``open("w")`` + ``json.dump`` (``TaskResult.to_disk``, called by
    ``save_to_cache`` after every subset and at the end of each task). A kill during that write leaves a
    truncated file, and the next run stops on it when mteb reads the cache. This patches the narrowest
    point: the one ``to_disk`` call inside ``save_to_cache`` goes through a temp file + ``os.replace``.
    ``model_meta.json`` and ``run_settings.jsonl`` stay mteb's: the first is rewritten on every save and
    never read on resume, and mteb skips unparsable lines of the second.
    """

    def save_to_cache(self, task_result: TaskResult, model_name: Any, model_revision: str | None = None,
                      **kwargs: Any) -> None:
        super().save_to_cache(_AtomicWrite(task_result), model_name, model_revision, **kwargs)


def _drop_stale(cache: ResultCache, meta: ModelMeta, tasks: list) -> None:
    """Move aside cached results mteb would trip over or wrongly reuse: unreadable files, other data."""
    for task in tasks:
        path = cache.get_task_result_path(task.metadata.name, meta)
        if not path.is_file():
            continue
        try:
            revision = TaskResult.from_disk(path).dataset_revision
        except Exception as err:  # truncated by a crash before atomic writes, edited by hand, ...
            aside = path.with_name(path.name + ".corrupt")
            logger.warning("Unreadable result %s (%s); moved to %s, recomputing", path, err, aside.name)
            os.replace(path, aside)
            continue
        if revision != task.metadata.revision:  # mteb would reuse a complete result of other data
            logger.info("Data of %s changed since it was cached; recomputing", task.metadata.name)
            path.unlink()


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


def _not_superseded(record: logging.LogRecord) -> bool:
    """MTEB(cmn, v1) and the legacy set pin the original task versions on purpose: no "superseded" notice."""
    return "is superseded by" not in record.getMessage()


@contextmanager
def _run_settings(model: Any, truncate_dim: int | None, show_progress: bool) -> Iterator[None]:
    """Set the model's truncate_dim, progress bars, logging and thread pools; restore them after."""
    is_st, old_dim = isinstance(model, SentenceTransformer), getattr(model, "truncate_dim", None)
    bars_on, mteb_logger = datasets.is_progress_bar_enabled(), logging.getLogger("mteb")
    old_level = mteb_logger.level
    task_logger = logging.getLogger("mteb.abstasks.abstask")  # logs (and warns) "superseded" per task
    task_logger.addFilter(_not_superseded)
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
        with pools.limit(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)  # precision of never-predicted labels
            # mteb's classifier is LogisticRegression(max_iter=100), part of the protocol: keep it, mute it
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message=r"The task '.*' is superseded by")  # see _not_superseded
            yield
    finally:
        task_logger.removeFilter(_not_superseded)
        mteb_logger.setLevel(old_level)
        if is_st:
            model.truncate_dim = old_dim
        if bars_on:
            datasets.enable_progress_bars()


def model_fingerprint(model: SentenceTransformer) -> str:
    """16 hex digits naming what decides ``model``'s embeddings: every weight's bytes, the module stack, the max
    length and the prompts. Two models with the same fingerprint encode every text the same way."""
    import hashlib
    import json

    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    h.update(json.dumps([[type(m).__name__ for m in model], model.max_seq_length, model.prompts],
                        sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _embedding_folder(model: SentenceTransformer) -> Path:
    from ..paths import cache_root

    return cache_root() / "embeddings" / model_fingerprint(model)


def _load_embeddings(folder: Path) -> dict:
    import json

    if not (folder / "keys.json").is_file():
        return {}
    keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
    vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    return {(tuple(k[:3]), k[3]): row for k, row in zip(keys, vectors)}


def _save_embeddings(folder: Path, store: dict) -> None:
    import json

    keys = [[*tag, text] for tag, text in store]
    with atomic_path(folder) as tmp:  # readers see the old folder or the new one
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "keys.json").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
        np.save(tmp / "vectors.npy", np.stack(list(store.values())).astype(np.float32), allow_pickle=False)


@contextmanager
def reuse_embeddings(model: SentenceTransformer, persist: bool = False) -> Iterator[dict]:
    """Within the block, ``model`` encodes each (text, prompt) once: later calls slice cached embeddings.

    For scoring one model at several Matryoshka dims: sentence-transformers truncates *after* the last
    module (``embeddings[:, :truncate_dim]``, then the optional normalisation), so a prefix of a cached
    full-width embedding is exactly what a fresh truncated encode returns, and the dims after the first
    cost no encoding. The model must not change inside the block. Yields the cache (``{key: vector}``).

    With ``persist``, the cache also lives on disk under ``$PICCOLO_CACHE/embeddings/<model_fingerprint>``: a
    later block (another notebook scoring the same weights) starts from it, and the block says how many texts it
    found there. The course uses it so that one model is encoded once across notebooks.

    Written here because sentence-transformers has no embedding cache, and mteb's ``CachedEmbeddingWrapper``
    keys its files by task, so neither shares one encoding between tasks, dims and zero-shot twins.
    """
    folder = _embedding_folder(model) if persist else None
    original, store = model.encode, (_load_embeddings(folder) if folder else {})
    loaded = len(store)

    def encode(inputs: Any, prompt_name: str | None = None, prompt: str | None = None,
               truncate_dim: int | None = None, convert_to_tensor: bool = False,
               normalize_embeddings: bool = False, **kwargs: Any) -> Any:
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        if not all(isinstance(t, str) for t in texts):  # images, pairs, dicts: not cached
            return original(inputs, prompt_name=prompt_name, prompt=prompt, truncate_dim=truncate_dim,
                            convert_to_tensor=convert_to_tensor, normalize_embeddings=normalize_embeddings, **kwargs)
        tag = (prompt, prompt_name, None if kwargs.get("task") is None else str(kwargs.get("task")))
        todo = [t for t in dict.fromkeys(texts) if (tag, t) not in store]
        if todo:
            dim, model.truncate_dim = model.truncate_dim, None
            try:
                fresh = original(todo, prompt_name=prompt_name, prompt=prompt, convert_to_numpy=True,
                                 **{k: v for k, v in kwargs.items() if k not in ("convert_to_numpy", "output_value")})
            finally:
                model.truncate_dim = dim
            store.update({(tag, t): row for t, row in zip(todo, np.asarray(fresh, dtype=np.float32))})
        out = np.stack([store[(tag, t)] for t in texts])  # (n, full width)
        dim = truncate_dim or model.truncate_dim
        if dim:
            out = out[:, :dim]
        if normalize_embeddings:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        out = torch.from_numpy(out) if convert_to_tensor else out
        return out[0] if single else out

    model.encode = encode
    try:
        yield store
    finally:
        del model.encode  # back to the class's method
        if folder is not None and len(store) > loaded:
            _save_embeddings(folder, store)
        if folder is not None and loaded:
            print(f"embeddings: {loaded:,} texts of this model's earlier encodings read from the cache "
                  f"({len(store) - loaded:,} encoded now)")


def _prompts_used(wrapper: Any, task: Any) -> dict[str, str]:
    """{input kind: name of the model prompt mteb applies}, e.g. {"query": "query", "document": "document"}.

    mteb encodes retrieval queries and documents with prompt types query/document, everything else with
    none; it then looks the prompt up by task name, task type and prompt type (see mteb's get_prompt_name).
    """
    prompts = getattr(wrapper, "model_prompts", None)
    if not prompts:
        return {}
    kinds = ([PromptType.query, PromptType.document] if task.metadata.type in ("Retrieval", "Reranking")
             else [None])
    found = {(k.value if k else "text"): get_prompt_name(prompts, task.metadata, k) for k in kinds}
    return {k: name for k, name in found.items() if name and prompts.get(name)}  # "" prompts change nothing


def evaluate_model(model: Any, tasks: list, output_dir: str | Path, *, model_name: str,
                   truncate_dim: int | None = None, batch_size: int = 64, show_progress: bool = True,
                   prediction_folder: str | Path | None = None) -> dict:
    """Run mteb's evaluators for ``tasks`` on an embedding model, reusing cached results.

    Args:
        model: A SentenceTransformer (wrapped by mteb, so its prompts are used: ``query``/``document``
            for retrieval, or keyed by task name or type) or any object with a SentenceTransformer-like
            ``encode(texts, batch_size=..., show_progress_bar=...)``.
        tasks: mteb tasks, e.g. ``local_tasks(...)``, ``cmteb.benchmark_tasks(...)``, ``zero_shot_task(...)``.
        output_dir: mteb result cache; results go to ``results_dir(output_dir, model_name, truncate_dim)``.
            Tasks found there (with unchanged data) are not recomputed: name a new checkpoint anew.
        model_name: Identifies the model in the cache and in the summary.
        truncate_dim: Evaluate the first ``truncate_dim`` embedding dimensions only (Matryoshka); the
            model's own ``truncate_dim`` is restored afterwards. None: the model's own (full if unset).
        batch_size: Encoding batch size.
        show_progress: Show mteb's task and sentence-transformers' encoding progress bars.
        prediction_folder: Also save mteb's predictions there (``<task>_predictions.json``: each retrieval
            query's top documents with scores, each classification experiment's labels), for the tasks
            computed in this call (cached tasks are not recomputed).

    Returns:
        ``{"model", "truncate_dim", "mteb_version", "results_dir", "tasks": {name: {"category",
        "main_score" (percent), "metric", "split", "prompts"[, "kinds": {kind: percent}]}}, "categories":
        {category: mean of its tasks}, "average": mean over all tasks (None if none is in a category),
        "real": {name: ...}, "extras": {name: ...}}``. Real public tasks (:mod:`piccolo_lib.evaluate.real`)
        go to ``real`` and tasks outside the six C-MTEB categories (zero-shot classification) to ``extras``:
        neither enters an average. ``kinds`` holds the per-kind scores of a task whose queries have kinds.
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
    cache = AtomicResultCache(output_dir)
    _drop_stale(cache, meta, tasks)
    with _run_settings(model, truncate_dim, show_progress):
        result = mteb.evaluate(wrapper, tasks, cache=cache, overwrite_strategy="only-missing",
                               encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress},
                               show_progress_bar=show_progress, co2_tracker=False,
                               prediction_folder=prediction_folder)
    by_name = {r.task_name: r for r in result.task_results}
    failed = [t.metadata.name for t in tasks if t.metadata.name not in by_name]
    if failed:
        raise RuntimeError(f"mteb returned no result for {failed}: {[str(e) for e in result.exceptions]}")
    task_scores, extras, real = {}, {}, {}
    for task in tasks:
        splits = list(task.eval_splits)
        entries = [s for split in splits for s in by_name[task.metadata.name].scores[split]
                   if s["hf_subset"] in task.hf_subsets]
        score = {"category": task.metadata.type,  # mteb stores fractions rounded to 6 decimals
                 "main_score": round(100 * float(np.mean([s["main_score"] for s in entries])), 4),
                 "metric": task.metadata.main_score, "split": "+".join(splits),
                 "prompts": _prompts_used(wrapper, task)}
        if task.hf_subsets != ["default"]:
            score["subset"] = "+".join(task.hf_subsets)
        if len(entries) == 1 and (kinds := subscores(entries[0], task.metadata.main_score)):
            score["kinds"] = kinds
        target = extras if task.metadata.type not in CATEGORIES else real if is_real(task) else task_scores
        target[task.metadata.name] = score
    categories, average = aggregate(task_scores) if task_scores else ({}, None)
    return {"model": model_name, "truncate_dim": truncate_dim, "mteb_version": mteb.__version__,
            "results_dir": str(cache.get_task_result_path("x", meta).parent), "tasks": task_scores,
            "categories": categories, "average": average, "real": real, "extras": extras}


def label_names(data: Dataset, column: str = "label") -> list[str] | None:
    """The class names of a classification split: a ClassLabel's names, or the sorted string labels."""
    feature = data.features[column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = list(data[column])
    return sorted(set(values)) if values and isinstance(values[0], str) else None


class _ZeroShotTwin(AbsTaskZeroShotClassification):
    """Zero-shot classification by label retrieval on another task's eval data (``source``)."""

    input_column_name = "text"
    source: Any
    template: str = "{}"
    names: list[str] | None = None

    def load_data(self, *args: Any, **kwargs: Any) -> None:
        src = self.source
        if not src.data_loaded:
            src.load_data()
        nested = {"default": src.dataset} if isinstance(next(iter(src.dataset.values())), Dataset) else src.dataset
        self.dataset = {}
        for subset in self.hf_subsets:
            self.dataset[subset] = {}
            for split in self.eval_splits:
                data = nested[subset][split]
                names = self.names or label_names(data, src.label_column_name)
                if names is None:
                    raise ValueError(f"{src.metadata.name}: labels are integers without names; zero-shot "
                                     "classification needs label names (zero_shot_task(..., names=[...]))")
                self.names = names
                self.dataset[subset][split] = data.select_columns([src.input_column_name, src.label_column_name]) \
                    .rename_columns({src.input_column_name: "text", src.label_column_name: "label"})
        self.data_loaded = True

    def get_candidate_labels(self) -> list[str]:
        return [self.template.format(name) for name in self.names]


def zero_shot_task(task: Any, template: str = "{}", names: list[str] | None = None) -> Any:
    """Zero-shot classification by label retrieval on a classification task's eval split.

    Each eval text is embedded, each label name is embedded (formatted by ``template``, e.g.
    ``"这是一条关于{}的文本"``), and the prediction is the label with the highest cosine. No training
    data is used, unlike mteb's logistic regression (``main_score`` accuracy, as the source task).

    Args:
        task: An mteb classification task whose labels have names (a ClassLabel or string column).
        template: Format string for the label texts.
        names: Label names by label id, for tasks whose labels are bare integers.

    Returns:
        An mteb ``AbsTaskZeroShotClassification`` named ``<task name>ZeroShot`` (type ZeroShotClassification).
    """
    if task.metadata.type != "Classification":
        raise ValueError(f"zero_shot_task needs a Classification task, got {task.metadata.name} ({task.metadata.type})")
    metadata = task.metadata.model_copy(update={
        "name": f"{task.metadata.name}ZeroShot", "type": "ZeroShotClassification", "main_score": "accuracy",
        "description": f"{task.metadata.name} by label retrieval (zero-shot, label texts {template!r})",
        "superseded_by": None})
    cls = type(metadata.name, (_ZeroShotTwin,), {"metadata": metadata, "source": task, "template": template,
                                                 "names": names, "__module__": __name__})
    twin = cls()
    twin._eval_splits, twin.hf_subsets = list(task.eval_splits), list(task.hf_subsets)
    return twin


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
    from .local import fit_texts as local_fit_texts

    texts = local_fit_texts(tasks) if fit_texts is None else fit_texts
    if not texts:
        raise ValueError("No texts to fit the TF-IDF vocabulary on; pass fit_texts")
    return evaluate_model(TfidfEncoder(texts), tasks, output_dir, model_name=TFIDF_NAME,
                          batch_size=256, show_progress=False)
