"""Where things are: the repository, its data samples, and the cache of built backbones.

The bottom layer: every module may import it, it imports nothing of piccolo_lib.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_SAMPLES = REPO_ROOT / "data_samples"


def cache_root() -> Path:
    """Folder where built backbones and other artefacts are cached (``$PICCOLO_CACHE``)."""
    return Path(os.environ.get("PICCOLO_CACHE", Path.home() / ".cache" / "piccolo_lib"))
