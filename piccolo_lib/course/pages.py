"""The published course: every notebook executed in quick mode, committed under ``docs/course/``.

    make pages        # = piccolo course --publish: runs all notebooks (~25 min on 2 cores), rewrites docs/course/

Outputs are stripped from ``notebooks/`` (the sources stay diffable), so a reader on GitHub would see
no plot and no table. ``docs/course/`` holds the executed copies instead: GitHub renders an ``.ipynb``
with its outputs, so every plot and printed number can be read without running anything. Beside them,
``MANIFEST.json`` records for each page the SHA-256 of the source notebook it was executed from (cell
types, sources and tags; not outputs), whether it ran clean and its wall time, and ``README.md`` is the
index. ``stale()`` compares the manifest with the notebooks as they are now; ``tests/test_pages.py``
fails when a notebook changed since its page was published, naming ``make pages`` as the fix.

The pages are executed with ``solutions=True``, as the tests run the notebooks: every exercise check runs on
a real answer and shows "correct" (the solutions code itself is not printed; it stays in
``notebooks/solutions/``), so a publish run is also a full check of the course.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from . import runner as course
from ..paths import REPO_ROOT

PAGES = REPO_ROOT / "docs" / "course"
MANIFEST = "MANIFEST.json"
SCRATCH = "<scratch>"  # replaces the temporary run folder in the published pages (it differs every run)
# the machine's own paths, as a page shows them instead (longest first: the venv is inside the repository)
def _machine_paths() -> list[tuple[str, str]]:
    import sys

    from ..paths import cache_root

    pairs = [(sys.prefix, "<venv>"), (str(cache_root()), "<cache>"), (str(REPO_ROOT), "<repo>"),
             (str(Path.home()), "~")]
    return sorted(((a, b) for a, b in pairs if len(a) > 1), key=lambda ab: -len(ab[0]))


def source_hash(path: Path) -> str:
    """SHA-256 over what a reader writes in a notebook: each cell's type, source and tags (not outputs)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = [[c["cell_type"], "".join(c["source"]), sorted(c.get("metadata", {}).get("tags", []))] for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8")).hexdigest()


def _tidy(executed: Path, scratch: Path, target: Path) -> None:
    """Copy an executed notebook to ``target`` without run-specific noise (timestamps, the scratch path)."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        nb.get("metadata", {}).get("papermill", {}).pop(key, None)
    text = json.dumps(nb, ensure_ascii=False, indent=1) + "\n"
    text = text.replace(str(scratch), SCRATCH)
    for path, name in _machine_paths():  # no absolute path of the machine that ran it
        text = text.replace(path, name)
    target.write_text(text, encoding="utf-8")


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_at_start": round(os.getloadavg()[0], 2)}


def _commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    return out.stdout.strip() or None


def _index(manifest: dict) -> str:
    rows = [f"| [{n['notebook']}]({n['notebook']}) | {'ok' if n['ok'] else 'FAILED: ' + (n['error'] or '')} "
            f"| {n['seconds']:.0f} |" for n in manifest["notebooks"]]
    m = manifest["machine"]
    return "\n".join([
        "# The course, executed",
        "",
        "Every notebook of `notebooks/`, executed in quick mode (offline, CPU) with its outputs: GitHub shows the plots "
        "and tables. The exercises are filled in from `notebooks/solutions/` so that every check runs (the answers are "
        "not printed). Written by `make pages` "
        "(`piccolo course --publish`); do not edit by hand. `tests/test_pages.py` fails when a notebook changed since.",
        "",
        f"Executed {manifest['generated']} at commit `{manifest['commit']}` on {m['cpu']} ({m['cores']} cores; "
        f"load average {m['load_average_at_start']} at the start, {m['load_average_at_end']} at the end): "
        f"{manifest['total_s']:.0f} s in all.",
        "",
        "| notebook | status | seconds |",
        "|---|---|---|",
        *rows,
        "",
    ])


def publish(out: Path = PAGES, only: str | None = None, solutions: bool = True, timeout: int = course.CELL_TIMEOUT_S) -> dict:
    """Execute the notebooks in quick mode and write their pages, the manifest and the index into ``out``.

    With ``only``, the other notebooks' pages and manifest entries are kept. Returns the manifest.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old = read_manifest(out)
    kept = {n["notebook"]: n for n in (old or {}).get("notebooks", [])} if only else {}
    machine = _machine()
    kernel = course.ensure_kernel()
    with tempfile.TemporaryDirectory(prefix="piccolo-pages-") as tmp:
        for path in tqdm(course.select(only), desc="notebooks"):
            r = course.execute(path, Path(tmp), mode="quick", timeout=timeout, kernel=kernel, progress=False,
                               solutions=solutions)
            if (Path(tmp) / path.name).exists():
                _tidy(Path(tmp) / path.name, Path(tmp), out / path.name)
            kept[path.name] = {"notebook": path.name, "source_sha256": source_hash(path), "ok": r["ok"],
                               "seconds": r["seconds"], "error": r["error"]}
            print(f"{path.name}: {'ok' if r['ok'] else 'FAILED (' + r['error'] + ')'} in {r['seconds']:.0f} s", flush=True)
    names = {p.name for p in course.select()}
    for stale_page in out.glob("[0-9][0-9]_*.ipynb"):  # pages of notebooks that no longer exist
        if stale_page.name not in names:
            stale_page.unlink()
    machine["load_average_at_end"] = round(os.getloadavg()[0], 2)
    entries = [kept[n] for n in sorted(kept) if n in names]
    manifest = {"mode": "quick", "solutions": solutions, "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "commit": _commit(), "machine": machine, "total_s": round(sum(e["seconds"] for e in entries), 1),
                "notebooks": entries}
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_index(manifest), encoding="utf-8")
    return manifest


def read_manifest(folder: Path = PAGES) -> dict | None:
    """The manifest of a pages folder, or None when there is none."""
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def stale(folder: Path = PAGES, notebooks: list[Path] | None = None) -> list[str]:
    """One line per problem: a notebook without a page, changed since, or whose page failed; [] when current."""
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"{folder}: no {MANIFEST}"]
    entries = {n["notebook"]: n for n in manifest["notebooks"]}
    problems = []
    for path in notebooks if notebooks is not None else course.select():
        entry = entries.get(path.name)
        if entry is None or not (Path(folder) / path.name).exists():
            problems.append(f"{path.name}: not published")
        elif entry["source_sha256"] != source_hash(path):
            problems.append(f"{path.name}: changed since its page was published")
        elif not entry["ok"]:
            problems.append(f"{path.name}: its published run failed ({entry['error']})")
    return problems
