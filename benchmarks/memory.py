"""Peak memory of one training step, per recipe, each in a fresh process.

What it measures: the peak resident memory (RSS) a step adds on top of a training process at rest,
i.e. with the weights and AdamW's two moment buffers resident and no gradients. That covers the
activations kept for backward, the gradients and the temporaries (similarity matrices, tokenized
batches). How: Linux's high-water mark VmHWM is reset through /proc/self/clear_refs before each step
and read after it; the step's figure is VmHWM - VmRSS at the reset. glibc's mmap threshold is fixed
at 64 KiB in that process, so freed tensors leave RSS at once instead of staying cached in the heap
(which would hide later peaks). tracemalloc does not see torch's allocations; RSS does.

``python -m benchmarks.memory BACKBONE RECIPE [RECIPE ...]`` prints one JSON line (used by :func:`measure`).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
        f.write("5")  # 5: reset the peak RSS (VmHWM) to the current RSS


def child(backbone: str, recipe_names: list[str], frozen_words: bool = False, batch_size: int | None = None) -> dict:
    """Runs in the fresh process: idle state, then one step per task (twice, the larger peak kept).

    One recipe per process in full runs; quick runs measure all recipes in one process, one after another.
    ``frozen_words``: the word-embedding matrix gets no gradient and no AdamW state (the quickstart's setting).
    ``batch_size``: the workload's batch (default benchmarks.workload.BATCH).
    """
    import torch

    from .common import build, make_optimizer, train_step
    from .recipes import ALL_RECIPES
    from .workload import mixed_batches

    model, dims = build(backbone)
    if frozen_words:
        model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    optimizer = make_optimizer(model)
    for p in (p for p in model.parameters() if p.requires_grad):  # AdamW's state once: the process at rest
        p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    out = {}
    for name in recipe_names:
        recipe = ALL_RECIPES[name](model, dims)
        peaks: dict[str, int] = {}
        for _ in range(2):
            for batch in mixed_batches(1, **({"batch_size": batch_size} if batch_size else {}))[0]:
                gc.collect()
                _reset_peak()
                base = _status("VmRSS")
                train_step(model, optimizer, lambda b=batch: recipe.prepare(b), lambda p, b=batch: recipe.loss(b, p))
                peaks[batch.task] = max(peaks.get(batch.task, 0), _status("VmHWM") - base)
        out[name] = {"idle_rss_mb": _status("VmRSS") / 2**20, "step_peak_mb": {t: v / 2**20 for t, v in peaks.items()},
                     "fresh_process": len(recipe_names) == 1}
    return out


def supported() -> bool:
    """Whether this OS lets a process reset its peak RSS (Linux >= 4.0)."""
    try:
        _reset_peak()
        return True
    except OSError:
        return False


def measure(backbone: str, recipe_names: list[str], timeout_s: float = 600, frozen_words: bool = False,
            batch_size: int | None = None) -> dict | None:
    """Run :func:`child` in a fresh interpreter: {recipe: result}; None where the OS cannot measure it."""
    if not supported():
        return None
    import torch

    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0",
           "OMP_NUM_THREADS": str(torch.get_num_threads()),  # the parent's thread count
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    flag = (["--frozen-words"] if frozen_words else []) + ([f"--batch={batch_size}"] if batch_size else [])
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", *flag, backbone, *recipe_names], env=env, cwd=root,
                         capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError(f"memory child {backbone}/{recipe_names} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    batch = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--batch=")), None)
    print(json.dumps(child(args[0], args[1:], frozen_words="--frozen-words" in sys.argv, batch_size=batch)))
