"""`piccolo eval`'s encoding path vs `SentenceTransformer.encode` on the same saved model.

The eval path is what ``piccolo_lib.evaluate.run.evaluate_model`` does to a SentenceTransformer: wrap
it in the mteb encoder it builds (``SentenceTransformerEncoderWrapper``), enter its run settings
(``_run_settings``: thread pools, progress bars), and let mteb turn the texts into a data loader and
encode them (``create_dataloader`` + ``wrapper.encode``, as mteb's retrieval search does for queries
and documents). Both paths encode the local retrieval task's queries and corpus with batch size 64
(``evaluate_model``'s default), interleaved; the embeddings must agree.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .common import build, stats

BATCH_SIZE = 64


def _retrieval_texts():
    from piccolo_lib.backbones import DATA_SAMPLES
    from piccolo_lib.evaluate.run import local_tasks

    task = next(t for t in local_tasks(DATA_SAMPLES / "eval") if t.metadata.type == "Retrieval")
    task.load_data()
    split = task.dataset["default"]["test"]
    return task.metadata, split["queries"], split["corpus"]


def _eval_path(model, metadata, queries, corpus) -> tuple[float, np.ndarray, float]:
    """Seconds, embeddings, and the seconds spent building mteb's data loaders (query and document sides)."""
    import warnings

    from mteb._create_dataloaders import create_dataloader
    from mteb.types import PromptType

    from piccolo_lib import evaluation as ev

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = ev.SentenceTransformerEncoderWrapper(model)  # as evaluate_model wraps a SentenceTransformer
    out, loader_s = [], 0.0
    with ev._run_settings(model, None, False):
        for data, kind in ((queries, PromptType.query), (corpus, PromptType.document)):
            t1 = time.perf_counter()
            loader = create_dataloader(data, task_metadata=metadata, prompt_type=kind, batch_size=BATCH_SIZE)
            loader_s += time.perf_counter() - t1
            out.append(np.asarray(wrapper.encode(loader, task_metadata=metadata, hf_split="test", hf_subset="default",
                                                 prompt_type=kind, batch_size=BATCH_SIZE, show_progress_bar=False)))
    return time.perf_counter() - t0, np.concatenate(out), loader_s


def _plain(model, queries, corpus) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = [model.encode(list(d["text"]), batch_size=BATCH_SIZE, show_progress_bar=False) for d in (queries, corpus)]
    return time.perf_counter() - t0, np.concatenate(out)


def run(quick: bool = False) -> dict:
    """Texts/s of both paths on the saved offline-bert model, their ratio, and the largest embedding gap."""
    from sentence_transformers import SentenceTransformer

    built, _ = build("offline-bert")
    metadata, queries, corpus = _retrieval_texts()
    if quick:  # a slice of each side
        queries, corpus = queries.select(range(64)), corpus.select(range(64))
    n_texts = len(queries) + len(corpus)
    with tempfile.TemporaryDirectory(prefix="piccolo-bench-") as tmp:
        built.save(str(Path(tmp) / "model"), safe_serialization=True)
        model = SentenceTransformer(str(Path(tmp) / "model"), device="cpu")  # as `piccolo eval MODEL` loads it
        times = {"eval_path": [], "encode": []}
        loader_s: list[float] = []
        gap = 0.0
        n = 2 if quick else 8
        for i in range(n + 1):  # round 0 is warm-up
            order = ["eval_path", "encode"] if i % 2 == 0 else ["encode", "eval_path"]
            embs = {}
            for name in order:
                if name == "eval_path":
                    dt, embs[name], dl = _eval_path(model, metadata, queries, corpus)
                    if i > 0:
                        loader_s.append(dl)
                else:
                    dt, embs[name] = _plain(model, queries, corpus)
                if i > 0:
                    times[name].append(dt)
            gap = max(gap, float(np.abs(embs["eval_path"] - embs["encode"]).max()))
    ev, enc = stats(times["eval_path"]), stats(times["encode"])
    return {
        "model": "offline-bert", "texts": n_texts, "batch_size": BATCH_SIZE,
        "eval_path_s": ev, "encode_s": enc, "dataloader_s": stats(loader_s),
        "eval_path_texts_per_s": n_texts / ev["median"], "encode_texts_per_s": n_texts / enc["median"],
        "ratio": enc["median"] / ev["median"],
        "paired_ratio": stats([e / p for p, e in zip(times["eval_path"], times["encode"])]),
        "max_abs_embedding_diff": gap,
    }
