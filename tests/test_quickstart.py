"""The main job end to end, as a user runs it: `piccolo quickstart --mode quick` fine-tunes e5-small."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from piccolo_lib.pipeline import TOY_CONFIG, dropped_categories, quickstart_config
from piccolo_lib.reporting import CATEGORIES


def test_quickstart_config_choice():
    assert quickstart_config("quick").name == "quickstart.yaml"
    assert quickstart_config("quick", backbone="offline-bert") == TOY_CONFIG
    assert quickstart_config("full").name == "quickstart-full.yaml"
    assert quickstart_config("quick", "x.yaml", "offline-bert") == Path("x.yaml")


def test_dropped_categories_names_each_drop():
    before = {"categories": {"STS": 70.0, "Retrieval": 80.0, "Clustering": None}}
    after = {"categories": {"STS": 69.5, "Retrieval": 81.0, "Clustering": 50.0}}
    assert dropped_categories(before, after) == {"STS": -0.5}
    assert dropped_categories(before, after, tol=1.0) == {}


@pytest.mark.slow
def test_quickstart_command_on_the_toy(tmp_path):
    """`piccolo quickstart --backbone offline-bert`, end to end through the console script.

    The default run (e5-small, 40 steps, the bar "beats the pretrained model") is executed by notebook 00,
    which calls the same ``pipeline.quickstart`` with the same config and asserts the same bar; running it
    twice would cost CI about five more minutes.
    """
    exe = shutil.which("piccolo", path=str(Path(sys.executable).parent))
    out = tmp_path / "qs"
    proc = subprocess.run([exe, "quickstart", "--mode", "quick", "--backbone", "offline-bert", f"output_dir={out}",
                           "epochs=3"], capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Fine-tuned beats the untrained model on the held-out average" in proc.stdout
    assert "Batches:" not in proc.stdout + proc.stderr  # library-internal progress bars are off
    result = json.loads((out / "quickstart_results.json").read_text(encoding="utf-8"))
    assert result["mode"] == "quick" and result["backbone"] == "offline-bert"
    for key in ("tfidf", "start", "finetuned"):
        assert set(result[key]["categories"]) == set(CATEGORIES)
        assert 0 <= result[key]["average"] <= 100
    assert result["finetuned"]["average"] > result["start"]["average"]
    for category, change in result["dropped"].items():  # every drop is named in the output
        assert f"{category} ({change:+.2f})" in proc.stdout
    if not result["dropped"]:
        assert "No category dropped." in proc.stdout
    dims = result["mrl_dims"]
    assert dims == [32, 64, 96, 128, 160, 192, 224]  # the report's 7 dims scaled to 128 x 1.75
    assert [d["truncate_dim"] for d in result["per_dim"]] == sorted(dims, reverse=True)[1:]
    assert (out / "final" / "2_Dense" / "model.safetensors").exists()
