"""No notebook cell creates a widget unless a person drives the kernel; a kernel that stops working fails fast."""

import json
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from piccolo_lib import course, widgets

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _notebook(folder: Path, name: str, cells: list[str]) -> Path:
    nb = new_notebook()
    params = new_code_cell('mode = "auto"\noutput_dir = "runs/x"\nsolutions = False')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[new_code_cell(c) for c in cells]]
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    path = folder / name
    nbformat.write(nb, str(path))
    return path


def test_outside_a_notebook_the_function_is_called_once_with_its_defaults(capsys):
    calls = []

    def show(tau=0.01, query=3):
        calls.append((tau, query))

    assert widgets.interactive(show, tau=widgets.Slider(0.005, 1, log=True), query=widgets.Slider(0, 9, integer=True)) \
        == {"tau": 0.01, "query": 3}
    assert calls == [(0.01, 3)]


def test_a_control_without_a_default_is_refused():
    def show(tau):
        return tau

    with pytest.raises(TypeError, match=r"show needs a default value for \['tau'\]"):
        widgets.interactive(show, tau=widgets.Slider(0, 1))


def test_in_a_live_kernel_the_widgets_are_built_from_the_specs(monkeypatch):
    import IPython
    import ipywidgets

    class ZMQInteractiveShell:  # what get_ipython() returns in JupyterLab or Colab
        pass

    monkeypatch.delenv(widgets.ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    seen = {}
    monkeypatch.setattr(ipywidgets, "interact", lambda fn, **kw: seen.update(kw))
    assert widgets.is_interactive()

    def show(tau=0.01, dim=64, name="a"):
        raise AssertionError("a live kernel calls it through the widgets, not directly")

    widgets.interactive(show, tau=widgets.Slider(0.005, 1, log=True), dim=widgets.Choice([32, 64], slider=True),
                        name=widgets.Choice(["a", "b"]))
    assert type(seen["tau"]).__name__ == "FloatLogSlider" and abs(seen["tau"].value - 0.01) < 1e-9
    assert type(seen["dim"]).__name__ == "SelectionSlider" and seen["dim"].value == 64
    assert type(seen["name"]).__name__ == "Dropdown" and seen["name"].value == "a"
    monkeypatch.setenv(widgets.ENV, "0")
    assert not widgets.is_interactive()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_builds_a_widget_itself(path):
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        src = "".join(cell["source"])
        if cell["cell_type"] == "code":
            assert "ipywidgets" not in src and "interact(" not in src.replace("interactive(", ""), \
                f"{path.name} cell {i}: make widgets through piccolo_lib.course.widgets.interactive (a static fallback " \
                "under papermill, where a widget can hang the run: jupyter/nbclient#312)"


@pytest.mark.slow
def test_a_course_kernel_is_non_interactive_and_its_progress_bars_are_off(tmp_path):
    nb = _notebook(tmp_path, "01_env.ipynb", [
        "import os\nfrom tqdm.auto import tqdm\nfrom piccolo_lib.widgets import is_interactive\n"
        "print('interactive', is_interactive(), os.environ['PICCOLO_INTERACTIVE'])\n"
        "for _ in tqdm(range(3), desc='bar'): pass\nprint('tqdm', tqdm.__name__)",
    ])
    result = course.execute(nb, tmp_path / "out", progress=False, idle_limit=60)
    assert result["ok"], result
    executed = json.loads((tmp_path / "out" / nb.name).read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "interactive False 0" in text and "tqdm _Quiet" in text and "bar" not in text
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert "widgets" not in executed["metadata"]


@pytest.mark.slow
def test_a_cell_that_stops_working_fails_fast_naming_notebook_and_cell(tmp_path):
    nb = _notebook(tmp_path, "01_hangs.ipynb", [
        "x = sum(i * i for i in range(3_000_000))   # busy: activity",
        "import time\ntime.sleep(600)   # idle, like a kernel waiting on a widget reply",
        "print('never reached')",
    ])
    t0 = time.perf_counter()
    result = course.execute(nb, tmp_path / "out", progress=False, idle_limit=8)
    took = time.perf_counter() - t0
    assert not result["ok"] and took < 90, (result, took)
    assert result["error"].startswith("01_hangs.ipynb: cell 2 ('import time')"), result["error"]
    assert "no kernel activity" in result["error"] and "nbclient#312" in result["error"]


@pytest.mark.slow
def test_a_busy_cell_is_not_mistaken_for_a_hung_one(tmp_path):
    nb = _notebook(tmp_path, "01_busy.ipynb", [
        "import time\nt = time.time()\nwhile time.time() - t < 20:\n    sum(range(10_000))\nprint('done')",
    ])
    result = course.execute(nb, tmp_path / "out", progress=False, idle_limit=6)
    assert result["ok"], result
