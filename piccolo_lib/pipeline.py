"""The main job end to end: train on data_samples, evaluate on held-out samples, print the table.

``piccolo quickstart`` runs :func:`quickstart`: it evaluates the untrained model (same backbone,
same head initialisation), trains the Piccolo2 recipe (three losses, projection head, MRL), saves
it, evaluates it at every MRL dim, and puts a character n-gram TF-IDF baseline beside them so the
numbers have context.

Introduced in notebooks/00_overview.ipynb.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .backbones import DATA_SAMPLES
from .training import REPO_ROOT, load_config, train

QUICK_CONFIG = REPO_ROOT / "configs" / "quickstart.yaml"
FULL_CONFIG = REPO_ROOT / "configs" / "quickstart-full.yaml"


def quickstart(mode: str = "quick", config: str | Path | None = None, overrides: list[str] | None = None,
               data_dir: str | Path = DATA_SAMPLES / "eval", show_progress: bool = True) -> dict:
    """Train, evaluate and compare. Returns the evaluation summaries and timings.

    Args:
        mode: ``quick`` (offline BERT, CPU), ``full`` (hub backbone, GPU) or ``auto``.
        config: YAML config; default ``configs/quickstart.yaml`` (quick) or ``quickstart-full.yaml``.
        overrides: ``key=value`` strings applied on top of the config.
        data_dir: folder of the held-out eval files.
    """
    from . import runtime

    mode = runtime.setup(mode)
    from sentence_transformers import SentenceTransformer

    from .evaluation import evaluate_model, local_tasks, tfidf_baseline
    from .model import build_model
    from .reporting import format_table

    cfg = load_config(config or (QUICK_CONFIG if mode == "quick" else FULL_CONFIG), overrides)
    out = Path(cfg.output_dir)
    eval_dir = out / "eval"
    shutil.rmtree(eval_dir, ignore_errors=True)  # results belong to the weights of this run only
    tasks = local_tasks(data_dir)
    t0 = time.perf_counter()
    untrained = build_model(cfg.backbone, pooling=cfg.pooling, projection_dim=cfg.projection_dim,
                            max_seq_length=cfg.max_seq_length, seed=cfg.seed, device="cpu" if cfg.device == "cpu" else None)
    before = evaluate_model(untrained, tasks, eval_dir, model_name="untrained", show_progress=show_progress)
    t1 = time.perf_counter()
    final = train(cfg)
    t2 = time.perf_counter()
    model = SentenceTransformer(str(final), device="cpu" if cfg.device == "cpu" else None)
    dims = json.loads((final / "piccolo_training.json").read_text(encoding="utf-8"))["mrl_dims"]
    after = evaluate_model(model, tasks, eval_dir, model_name="piccolo2-finetuned", show_progress=show_progress)
    per_dim = [evaluate_model(model, tasks, eval_dir, model_name="piccolo2-finetuned", truncate_dim=d,
                              show_progress=show_progress) for d in sorted(dims, reverse=True)[1:]]
    baseline = tfidf_baseline(tasks, eval_dir)
    t3 = time.perf_counter()
    result = {
        "mode": mode, "model_path": str(final), "mrl_dims": dims,
        "tfidf": baseline, "untrained": before, "finetuned": after, "per_dim": per_dim,
        "seconds": {"eval_untrained": t1 - t0, "train": t2 - t1, "eval_finetuned": t3 - t2},
    }
    with (final / "README.md").open("a", encoding="utf-8") as f:  # the model card gets its scores
        f.write("\nHeld-out local benchmark (data_samples/eval):\n\n" + format_table([after] + per_dim) + "\n")
    (out / "quickstart_results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print("\nHeld-out local C-MTEB-style benchmark (scores in %, data_samples/eval):")
    print(format_table([baseline, before, after]))
    print("\nMatryoshka: the fine-tuned model truncated to each dim:")
    print(format_table([after] + per_dim))
    gain = after["average"] - before["average"]
    verdict = "beats" if gain > 0 else "does NOT beat"
    print(f"\nFine-tuned {verdict} untrained on the held-out average: {after['average']:.2f} vs "
          f"{before['average']:.2f} ({gain:+.2f}). Model saved to {final}")
    return result


def train_and_evaluate(cfg, data_dir: str | Path = DATA_SAMPLES / "eval", dims: list[int] | None = None) -> dict:
    """Train one config, then score the final model on the local benchmark (full width and ``dims``).

    Returns ``{"path": model folder, "summaries": [full, *dims]}`` (see ``evaluation.evaluate_model``).
    Results are cached under ``output_dir/eval``, which is cleared first: they belong to this run's weights.
    """
    from sentence_transformers import SentenceTransformer

    from .evaluation import evaluate_model, local_tasks

    final = train(cfg)
    eval_dir = Path(cfg.output_dir) / "eval"
    shutil.rmtree(eval_dir, ignore_errors=True)
    model = SentenceTransformer(str(final), device="cpu" if cfg.device == "cpu" else None)
    tasks = local_tasks(data_dir)
    name = Path(cfg.output_dir).name
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
