"""`piccolo course`: papermill with the named kernel, failures recorded, HTML index, parameters cell required."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from piccolo_lib import course


def write(folder: Path, name: str, cells: list, tag_params: bool = True) -> Path:
    nb = new_notebook()
    params = new_code_cell('mode = "auto"\noutput_dir = "runs/x"')
    if tag_params:
        params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[new_code_cell(c) for c in cells]]
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    path = folder / name
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write(folder, "01_ok.ipynb", ["import sys\nprint('ran with', mode, sys.executable)"])
    write(folder, "02_fails.ipynb", ["raise ValueError('broken on purpose')"])
    write(folder, "03_untagged.ipynb", ["print(1)"], tag_params=False)
    return folder


def test_named_kernel_is_this_interpreter():
    from jupyter_client.kernelspec import KernelSpecManager

    name = course.ensure_kernel()
    spec = KernelSpecManager().get_kernel_spec(name)
    assert name == "piccolo-course" and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()


@pytest.mark.slow
def test_course_runs_every_notebook_records_failures_and_writes_an_index(notebooks, tmp_path):
    out = tmp_path / "build"
    results = course.run_course("quick", "01,02", out, folder=notebooks, timeout=120)
    assert [r["notebook"] for r in results] == ["01_ok.ipynb", "02_fails.ipynb"]
    assert results[0]["ok"] and not results[1]["ok"]
    assert "ValueError: broken on purpose" in results[1]["error"] and "raise ValueError" in results[1]["traceback"]
    executed = json.loads((out / "01_ok.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "ran with quick" in text and str(Path(sys.executable).parent) in text  # injected mode, named kernel
    index = (out / "index.html").read_text()
    assert "href='01_ok.html'" in index and "FAILED: cell" in index and "1 of 2 ran without error" in index
    assert (out / "01_ok.html").exists() and (out / "02_fails.html").exists()
    assert [r["notebook"] for r in json.loads((out / "timings.json").read_text())["notebooks"]] == [
        "01_ok.ipynb", "02_fails.ipynb"]


def test_a_notebook_without_parameters_cell_is_refused_before_anything_runs(notebooks, tmp_path):
    with pytest.raises(course.CourseError, match=r"03_untagged.ipynb: needs exactly one cell tagged 'parameters'"):
        course.run_course("quick", None, tmp_path / "build", folder=notebooks)
    assert not (tmp_path / "build").exists() or not any((tmp_path / "build").iterdir())
    with pytest.raises(course.CourseError, match="no notebook numbered 09"):
        course.select("01,09", notebooks)


def test_cli_course_reports_a_bad_selection(capsys):
    from piccolo_lib.cli import main

    assert main(["course", "--only", "99", "--mode", "quick"]) == 2
    assert "no notebook numbered 99" in capsys.readouterr().err


def test_strip_removes_outputs_counts_and_widget_state(notebooks):
    path = notebooks / "01_ok.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    nb["cells"][1]["execution_count"] = 3
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    path.write_text(json.dumps(nb))
    assert course.strip(path) is True and course.strip(path) is False
    clean = json.loads(path.read_text())
    assert "widgets" not in clean["metadata"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in clean["cells"] if c["cell_type"] == "code")
