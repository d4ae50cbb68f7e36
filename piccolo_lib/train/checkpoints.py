"""Checkpoints that survive interruption: atomic writes, SIGTERM -> checkpoint -> exit, clean resume.

A multi-hour run is killed for ordinary reasons: a cluster preempts it (SIGTERM, then SIGKILL after a
grace period), the machine runs out of memory (SIGKILL), a user stops it. Three guarantees:

* **Never half-written.** transformers 5.24's ``Trainer._save_checkpoint`` writes the model, optimizer,
  scheduler, RNG states and finally ``trainer_state.json`` straight into ``checkpoint-N``; a kill in
  between leaves a folder that ``resume_from_checkpoint=True`` would pick (``get_last_checkpoint``
  looks at names only). :class:`AtomicCheckpoints` makes the whole checkpoint land in
  ``tmp-checkpoint-N/checkpoint-N`` first, then renames it into place: ``checkpoint-N`` either does
  not exist or is complete.
* **SIGTERM saves first.** :func:`stop_on_sigterm` turns SIGTERM into "save a checkpoint at the end of
  the current optimizer step, then stop", and training exits with status 143 (128 + SIGTERM), the
  status a scheduler expects from a terminated job.
* **Resume redoes only what was lost.** :func:`last_checkpoint` returns the newest complete
  checkpoint and ignores ``tmp-checkpoint-*`` leftovers (removed by :func:`remove_incomplete`).

Checkpoint contents are the Trainer's own: ``model.safetensors`` per module, ``optimizer.pt``,
``scheduler.pt``, ``rng_state*.pth`` (tensors and plain values, which transformers reads back with
``torch.load(weights_only=True)``) and JSON state. The Trainer's pickled ``training_args.bin`` (never
read back) is replaced by ``training_args.json``.

Introduced in notebooks/06_multi_device.ipynb.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # transformers' PREFIX_CHECKPOINT_DIR naming
STAGING_PREFIX = "tmp-"
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143: the shell's status for "terminated by SIGTERM"


class TrainingInterrupted(SystemExit):
    """Training stopped on SIGTERM after saving a checkpoint; ``code`` is 143. A SystemExit, so the
    ``piccolo`` command exits with that status instead of printing a traceback."""


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` (one with ``trainer_state.json``, written last), or None."""
    if not folder.is_dir():
        return None
    done = [(int(m.group(1)), p) for p in folder.iterdir()
            if (m := CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
    return max(done)[1] if done else None


def remove_incomplete(folder: Path) -> list[str]:
    """Delete ``tmp-checkpoint-*`` folders left by a run killed while saving; returns their names."""
    stale = sorted(p for p in folder.glob(f"{STAGING_PREFIX}checkpoint-*") if p.is_dir()) if folder.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return [p.name for p in stale]


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` to disk, so the rename publishes data that is really there."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())


class AtomicCheckpoints:
    """Trainer mixin: every checkpoint is written to a staging folder and renamed into place.

    The narrowest override of transformers 5.24: ``Trainer._save_checkpoint`` takes the run folder
    from ``self._get_output_dir(trial)`` and writes everything to ``<run folder>/checkpoint-N``. While
    it runs, ``_get_output_dir`` answers ``<run folder>/tmp-checkpoint-N`` instead, so the unchanged
    transformers code writes a complete ``tmp-checkpoint-N/checkpoint-N``; then, after every rank has
    written its part, rank 0 swaps the pickled ``training_args.bin`` for JSON, flushes the files and
    renames the folder to ``<run folder>/checkpoint-N`` (one ``rename``: atomic on a POSIX file system),
    and applies ``save_total_limit``, which the staged call applied to the staging folder.
    ``checkpoint_writers``: callables given the staged folder before the rename (rank 0), for state the
    Trainer does not save itself (refreshed negatives), so it is in the checkpoint or the checkpoint is not.
    Assumes one file system shared by all ranks (as the Trainer does for resuming).
    """

    _staging: str | None = None
    checkpoint_writers: tuple = ()

    def _get_output_dir(self, trial):
        return self._staging or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        from transformers.trainer_utils import rotate_checkpoints

        run_dir = Path(super()._get_output_dir(trial))
        name = f"checkpoint-{self.state.global_step}"
        staging = run_dir / f"{STAGING_PREFIX}{name}"
        self._staging = str(staging)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()  # other ranks' RNG states / optimizer shards are in staging
        if self.args.should_save:
            src, dst = staging / name, run_dir / name
            for write in self.checkpoint_writers:
                write(src)
            args_bin = src / "training_args.bin"
            if args_bin.exists():
                args_bin.unlink()
                (src / "training_args.json").write_text(self.args.to_json_string(), encoding="utf-8")
            _fsync_tree(src)
            if dst.exists():  # the same step saved by an earlier run that did not resume from it
                shutil.rmtree(dst)
            os.replace(src, dst)
            shutil.rmtree(staging, ignore_errors=True)
            rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()


def _any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on one (ranks must stop at the same step, or the
    ones still running would wait forever in their next collective)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sigterm_callback(received: threading.Event):
    """A TrainerCallback: once ``received`` is set (on any rank), save at the end of this step and stop."""
    from transformers import TrainerCallback

    class StopOnSigterm(TrainerCallback):
        stopped_at: int | None = None

        def on_step_end(self, args, state, control, **kwargs):
            if _any_rank(received.is_set()):
                control.should_save = True
                control.should_training_stop = True
                self.stopped_at = state.global_step
            return control

    return StopOnSigterm()


@contextmanager
def stop_on_sigterm():
    """Within the block, SIGTERM only sets the yielded Event (a :func:`sigterm_callback` acts on it);
    a second SIGTERM terminates at once. The previous handler comes back on exit. Signal handlers
    belong to the main thread: elsewhere the block changes nothing."""
    received = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        received.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        print("SIGTERM: saving a checkpoint at the end of this step, then stopping "
              "(send SIGTERM again to stop at once)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
