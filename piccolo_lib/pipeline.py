"""The main job end to end: train on data_samples, evaluate on held-out samples, print the table.

``piccolo quickstart`` runs :func:`quickstart`: it evaluates the starting model (the pretrained e5-small
zero-shot by default; same backbone, same head initialisation), trains the Piccolo2 recipe (three losses, projection head, MRL), saves
it, evaluates it at every MRL dim, and puts a character n-gram TF-IDF baseline beside them so the
numbers have context.

Introduced in notebooks/00_overview.ipynb.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .model.backbones import DATA_SAMPLES
from .train.loop import REPO_ROOT, load_config, train

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


def dropped_categories(before: dict, after: dict, tol: float = 0.0) -> dict[str, float]:
    """{category: change} for every category whose score fell by more than ``tol`` points."""
    return {c: round(after["categories"][c] - v, 2) for c, v in before["categories"].items()
            if v is not None and after["categories"].get(c) is not None and after["categories"][c] < v - tol}


def quickstart(mode: str = "quick", config: str | Path | None = None, overrides: list[str] | None = None,
               data_dir: str | Path = DATA_SAMPLES / "eval", show_progress: bool = True,
               backbone: str | None = None) -> dict:
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
    """
    from . import runtime

    mode = runtime.setup(mode)
    from sentence_transformers import SentenceTransformer

    from .evaluate.run import evaluate_model, local_tasks, reuse_embeddings, tfidf_baseline
    from .model import build_model
    from .evaluate.reporting import format_table

    overrides = list(overrides or []) + ([f"backbone={backbone}"] if backbone else [])
    cfg = load_config(quickstart_config(mode, config, backbone), overrides)
    pretrained = cfg.backbone in PRETRAINED_BACKBONES or cfg.backbone not in ("offline-bert", "offline-decoder")
    start_name = "pretrained (zero-shot)" if pretrained else "untrained"
    out = Path(cfg.output_dir)
    eval_dir = out / "eval"
    shutil.rmtree(eval_dir, ignore_errors=True)  # results belong to the weights of this run only
    tasks = local_tasks(data_dir)
    t0 = time.perf_counter()
    device = "cpu" if cfg.device == "cpu" else None
    start = build_model(cfg.backbone, pooling=cfg.pooling, projection_dim=cfg.projection_dim,
                        max_seq_length=cfg.max_seq_length, seed=cfg.seed, device=device)
    say = print if show_progress else (lambda *a, **k: None)  # one line per phase; library-internal bars off
    say(f"[quickstart] evaluating the {start_name} model on the held-out benchmark ...", flush=True)
    before = evaluate_model(start, tasks, eval_dir, model_name=start_name.split(" ")[0], show_progress=False)
    before["model"] = start_name
    del start
    t1 = time.perf_counter()
    length = f"{cfg.max_steps} steps" if cfg.max_steps > 0 else f"{cfg.epochs} epochs"
    say(f"[quickstart] training {cfg.backbone} for {length} ...", flush=True)
    final = train(cfg)
    t2 = time.perf_counter()
    model = SentenceTransformer(str(final), device=device)
    dims = json.loads((final / "piccolo_training.json").read_text(encoding="utf-8"))["mrl_dims"]
    say(f"[quickstart] evaluating the fine-tuned model at {len(dims)} dims ...", flush=True)
    with reuse_embeddings(model):  # every dim is a prefix of one encoding
        after = evaluate_model(model, tasks, eval_dir, model_name="piccolo2-finetuned", show_progress=False)
        per_dim = [evaluate_model(model, tasks, eval_dir, model_name="piccolo2-finetuned", truncate_dim=d,
                                  show_progress=False) for d in sorted(dims, reverse=True)[1:]]
    baseline = tfidf_baseline(tasks, eval_dir)
    t3 = time.perf_counter()
    drops = dropped_categories(before, after)
    result = {
        "mode": mode, "backbone": cfg.backbone, "model_path": str(final), "mrl_dims": dims,
        "tfidf": baseline, "start": before, "untrained": before, "finetuned": after, "per_dim": per_dim,
        "dropped": drops, "seconds": {"eval_start": t1 - t0, "train": t2 - t1, "eval_finetuned": t3 - t2},
    }
    with (final / "README.md").open("a", encoding="utf-8") as f:  # the model card gets its scores
        f.write("\nHeld-out local benchmark (data_samples/eval):\n\n" + format_table([after] + per_dim) + "\n")
    (out / "quickstart_results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nHeld-out local C-MTEB-style benchmark (scores in %, data_samples/eval), backbone {cfg.backbone}:")
    print(format_table([baseline, before, after]))
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
    print(f"Timings: evaluate the start {t1 - t0:.0f} s, train {t2 - t1:.0f} s, evaluate the result {t3 - t2:.0f} s")
    return result


def train_and_evaluate(cfg, data_dir: str | Path = DATA_SAMPLES / "eval", dims: list[int] | None = None) -> dict:
    """Train one config, then score the final model on the local benchmark (full width and ``dims``).

    Returns ``{"path": model folder, "summaries": [full, *dims]}`` (see ``evaluation.evaluate_model``).
    Results are cached under ``output_dir/eval``, which is cleared first: they belong to this run's weights.
    """
    from sentence_transformers import SentenceTransformer

    from .evaluate.run import evaluate_model, local_tasks, reuse_embeddings

    final = train(cfg)
    eval_dir = Path(cfg.output_dir) / "eval"
    shutil.rmtree(eval_dir, ignore_errors=True)
    model = SentenceTransformer(str(final), device="cpu" if cfg.device == "cpu" else None)
    tasks = local_tasks(data_dir)
    name = Path(cfg.output_dir).name
    with reuse_embeddings(model):  # every dim is a prefix of one encoding
        summaries = [evaluate_model(model, tasks, eval_dir, model_name=name, truncate_dim=d, show_progress=False)
                     for d in [None, *(dims or [])]]
    return {"path": str(final), "summaries": summaries}


def run_side_by_side(fn, items: dict, workers: int = 2, threads: int = 1, desc: str | None = None) -> dict:
    """``{key: fn(item)}``, computed in ``workers`` fresh processes with ``threads`` torch threads each.

    For several small CPU runs (notebooks 03, 04, 07): a 1M-parameter model gains nothing from a second
    intra-op thread, so two single-threaded runs side by side use two cores better than two runs in a
    row. Workers are started with ``spawn`` (fresh interpreters: no forked torch or CUDA state) and
    inherit the environment, so quick mode's offline switches hold; progress bars are turned off
    (several would garble each other). ``fn`` must be importable (a module-level function).
    ``workers=1`` runs in this process, one item after the other. ``desc``: a progress bar over items.
    """
    import multiprocessing
    import os
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
        futures = {key: pool.submit(fn, item) for key, item in items.items()}
        for _ in as_completed(futures.values()):
            bar.update()
        bar.close()
        return {key: f.result() for key, f in futures.items()}
