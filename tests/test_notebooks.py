"""Every notebook: a tagged parameters cell, no committed outputs, and a clean run in quick mode."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterised(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert "mode" in "".join(tagged[0]["source"]), f"{path.name}: the parameters cell must set mode"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, \
                f"{path.name}: outputs must be stripped before committing"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: strip widget state"
    from piccolo_lib.course import COLAB_BLOCK, colab_url

    assert colab_url(path.name) in (path.parent.parent / "README.md").read_text(encoding="utf-8"), \
        f"{path.name}: README's course map needs its Colab badge"

    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    after_params = code[code.index(tagged[0]) + 1]
    assert "".join(after_params["source"]).startswith(COLAB_BLOCK), \
        f"{path.name}: the cell after the parameters must start with piccolo_lib.course.COLAB_BLOCK (Colab install)"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    from piccolo_lib import course

    # the same runner as `piccolo course`: the named kernel, per-cell timeout, mode and output_dir injected;
    # solutions=True fills in every exercise answer, so every check runs on a real answer
    result = course.execute(path, tmp_path, mode="quick", progress=False, solutions=True)
    assert result["ok"], f"{path.name}: {result['error']}\n{result['traceback']}"


@pytest.mark.slow
def test_a_notebook_runs_to_the_end_with_its_exercises_unanswered(tmp_path):
    """As a learner first runs it (solutions=False): every check says what to do, none claims a right answer."""
    from piccolo_lib import course

    path = next(p for p in NOTEBOOKS if p.stem == "02_three_losses")  # the cheapest notebook (~30 s)
    result = course.execute(path, tmp_path, mode="quick", progress=False, solutions=False)
    assert result["ok"], f"{path.name}: {result['error']}\n{result['traceback']}"
    executed = json.loads((tmp_path / path.name).read_text(encoding="utf-8"))
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert code[-1]["outputs"], "the exercise cell (the last one) ran"
    printed = "".join("".join(o.get("text", "")) for c in code for o in c["outputs"] if o.get("output_type") == "stream")
    names = re.findall(r'^exercises\.check\(\s*"(\w+)"', "".join(code[-1]["source"]), re.M)
    assert len(names) == 5, names
    for name in names:
        assert f"{name}: not answered yet: " in printed, f"{name}: no hint printed"
    assert "correct" not in printed and "solutions: filled" not in printed
