"""``metrics.jsonl``: one line per optimizer step, append-only, and cut back atomically when a run resumes.

Rank 0 appends each step's line (dataset, task type, loss averaged over every rank, lr, throughput, extras
such as ``negatives_refreshed``) with :func:`piccolo_lib.io.append_jsonl`: a kill can tear only the last
line. On resume the steps after the checkpoint are dropped, since they are trained again, by
:func:`truncate_metrics`, which reads the log tolerantly (a torn last line is dropped with a warning, a bad
line in the middle is one error naming file and line) and replaces the file atomically.

Split out of :mod:`piccolo_lib.train.loop` (issue 25, defect 6); ``from piccolo_lib.training import
make_callback`` keeps working. Introduced in notebooks/06_multi_device.ipynb.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import DamagedFile
from ..io import append_jsonl, atomic_write, jsonl_text, read_jsonl_tolerant


def _mean_over_ranks(total: float, count: int, device) -> float:
    """Mean loss of a step over every rank's micro-batches (rank 0's own losses cover 1/N of the step).

    A collective: under DDP every rank must call it at every step.
    """
    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = torch.tensor([total, count], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        total, count = t.tolist()
    return total / count if count else float("nan")


def make_callback(tracker: list, metrics_path: Path, rows_per_step: int, extras: dict | None = None):
    """A TrainerCallback appending one JSON line per optimizer step to ``metrics_path`` (rank 0 only).

    ``extras``: filled by other callbacks during the step (e.g. ``negatives_refreshed``), merged into the line.
    """
    from transformers import TrainerCallback

    class MetricsLogger(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            entries, tracker[:] = list(tracker), []
            loss = _mean_over_ranks(sum(e[2] for e in entries), len(entries), args.device)  # every rank calls it
            extra = dict(extras or {})
            if extras:
                extras.clear()
            if not state.is_world_process_zero or not entries:
                return
            sched = kwargs.get("lr_scheduler")
            dt = time.perf_counter() - self.t0
            line = {
                "step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                "dataset": entries[0][0], "task": entries[0][1],
                "loss": loss,
                "lr": sched.get_last_lr()[0] if sched is not None else None,
                "samples_per_second": round(rows_per_step / dt, 2) if dt > 0 else None,
                **extra,
            }
            if args.device.type == "cuda":  # peak memory of this process since the run started
                import torch

                line["gpu_mem_peak_mb"] = round(torch.cuda.max_memory_allocated(args.device) / 2**20, 1)
            append_jsonl(metrics_path, [line])

    return MetricsLogger()


def truncate_metrics(metrics_path: Path, step: int) -> int:
    """Keep the lines of steps ``<= step`` (the checkpoint resumed from); the file is replaced atomically.

    Returns the number of lines kept. A torn last line is dropped with a warning; a line in the middle that
    is not JSON, or a record without an integer ``step``, raises :class:`~piccolo_lib.errors.DamagedFile`.
    """
    records = read_jsonl_tolerant(metrics_path)
    for row, rec in enumerate(records, start=1):
        if not isinstance(rec, dict) or isinstance(rec.get("step"), bool) or not isinstance(rec.get("step"), int):
            raise DamagedFile(f"{metrics_path}: record {row}: expected an object with an integer 'step', "
                              f"got {str(rec)[:80]}")
    kept = [rec for rec in records if rec["step"] <= step]
    atomic_write(metrics_path, jsonl_text(kept))
    return len(kept)
