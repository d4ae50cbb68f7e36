"""Course timing: wall time of every notebook in quick mode (papermill) and of `piccolo quickstart --mode quick`.

Run the way `piccolo course` and tests/test_notebooks.py run them (``piccolo_lib.course.execute``:
the named kernel, mode=quick, a scratch output_dir, cwd notebooks/), and quickstart as a fresh process writing to a scratch
folder. A failure is recorded with its error, not raised. 10-15 minutes in all on 2 cores, so it is
opt-in: ``python -m benchmarks --course`` or ``python -m benchmarks --only course``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from piccolo_lib import course
from piccolo_lib.paths import REPO_ROOT


def _notebook(path: Path, tmp: Path) -> dict:
    t0 = time.perf_counter()
    try:
        error = course.execute(path, tmp, mode="quick", progress=False)["error"]
    except Exception as exc:  # noqa: BLE001  (a kernel death or timeout too: reported, the others still run)
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]
    return {"name": path.stem, "seconds": time.perf_counter() - t0, "error": error}


def _quickstart(tmp: Path) -> dict:
    exe = Path(sys.executable).parent / "piccolo"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "piccolo_lib.cli"]
    env = {**os.environ, "PICCOLO_MODE": "quick", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.perf_counter()
    out = subprocess.run([*cmd, "quickstart", "--mode", "quick", f"output_dir={tmp / 'quickstart'}"], cwd=REPO_ROOT,
                         env=env, capture_output=True, text=True, timeout=1800)
    error = None if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"[:300]
    return {"name": "piccolo quickstart --mode quick", "seconds": time.perf_counter() - t0, "error": error}


def run(quick: bool = False) -> dict:
    """Seconds per notebook and for quickstart (quick: the first notebook only, no quickstart)."""
    with tempfile.TemporaryDirectory(prefix="piccolo-course-") as tmp:
        items = [_notebook(p, Path(tmp)) for p in (course.select()[:1] if quick else course.select())]
        if not quick:
            items.append(_quickstart(Path(tmp)))
    return {"items": items, "total_s": sum(i["seconds"] for i in items)}
