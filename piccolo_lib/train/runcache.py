"""One training per configuration: the course trains each distinct run once and every later notebook reuses it.

Notebook 00 fine-tunes e5-small with the quickstart config; 04 compares it with a run without the head, 05 with
one without MRL, 07 evaluates it, 11 indexes it, 01 mines hard negatives with it. Trained in each notebook, the same seed-42
model would be trained four times. :func:`trained` keys a run by everything that decides its weights (the
resolved config without its output folder, the content of its data files, the library's code) and keeps it under
``$PICCOLO_CACHE/course-runs/<key>``: the first notebook that asks trains it, the others load it and say so.

The run folder holds what ``train`` writes (``final/``, ``metrics.jsonl``) and ``run.json`` (the key's inputs);
it is written under a temporary name and renamed into place, so an interrupted training leaves no half run.

Introduced in notebooks/00_overview.ipynb (``quickstart(..., reuse=True)``); a training concept, so it lives in
``train`` where :mod:`piccolo_lib.pipeline` can use it (``piccolo_lib.course.runcache`` still imports).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from ..io import atomic_path
from ..paths import REPO_ROOT, cache_root

# keys that change how a run is logged or where it goes, not the weights it produces
VOLATILE = ("output_dir", "resume", "logging_steps", "report_to", "save_steps", "mode")


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(REPO_ROOT) if f.is_relative_to(REPO_ROOT) else f).encode())
            h.update(f.read_bytes() if f.exists() else b"<missing>")
    return h.hexdigest()


def _data_files(cfg) -> list[Path]:
    """The config's data paths and, for a meta list, the files it lists."""
    from ..data.files import read_meta_list
    from ..train.config import resolve_path

    out = []
    for p in map(Path, (resolve_path(x) for x in cfg.data)):
        out.append(p)
        if p.suffix == ".txt" and p.is_file():
            root = resolve_path(cfg.data_root) if cfg.data_root else None
            out += [entry for entry, _ in read_meta_list(p, root)]
    return out


def run_inputs(cfg) -> dict:
    """What decides a run's weights: the config (precision resolved on this machine), the data, the code."""
    from ..train.config import auto_precision

    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in VOLATILE}
    if config.get("precision") == "auto":
        config["precision"] = auto_precision("cuda" if cfg.device == "cuda" else "cpu")
    code = sorted((REPO_ROOT / "piccolo_lib").rglob("*.py"))
    return {"config": config, "data": _digest(_data_files(cfg)), "code": _digest(code)}


def _key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_key(cfg) -> str:
    """16 hex digits naming the run of ``cfg`` (same key, same weights)."""
    return _key(run_inputs(cfg))


def runs_root() -> Path:
    return cache_root() / "course-runs"


def trained(cfg, *, verbose: bool = True) -> Path:
    """The run folder of ``cfg`` (``final/`` is the model, ``metrics.jsonl`` its steps): trained once, then reused.

    Prints whether it trained the run or reuses one an earlier notebook (or an earlier call) trained.
    """
    from ..train.loop import train

    inputs = run_inputs(cfg)  # computed once: the key and run.json both come from it
    key = _key(inputs)
    folder = runs_root() / key
    if (folder / "final" / "modules.json").is_file() and (folder / "run.json").is_file():
        if verbose:
            print(f"reusing the run {key}: trained earlier for this same config, data and code ({folder})")
        return folder
    with atomic_path(folder) as staged:
        train(dataclasses.replace(cfg, output_dir=str(staged), resume=False))
        (staged / "run.json").write_text(json.dumps({"key": key, **inputs}, indent=1, default=str), encoding="utf-8")
    if verbose:
        print(f"trained the run {key} and kept it for the notebooks that ask for the same config ({folder})")
    return folder


def trained_model(cfg, *, verbose: bool = True) -> Path:
    """:func:`trained`'s model folder (``final/``): a drop-in for ``train(cfg)``, which returns the same folder."""
    return trained(cfg, verbose=verbose) / "final"
