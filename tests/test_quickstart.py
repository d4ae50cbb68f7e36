"""The main job end to end, as a user runs it: `piccolo quickstart --mode quick`."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from piccolo_lib.reporting import CATEGORIES


@pytest.mark.slow
def test_quickstart_fine_tuned_beats_untrained(tmp_path):
    exe = shutil.which("piccolo", path=str(Path(sys.executable).parent))
    out = tmp_path / "qs"
    proc = subprocess.run([exe, "quickstart", "--mode", "quick", f"output_dir={out}"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Fine-tuned beats untrained on the held-out average" in proc.stdout
    result = json.loads((out / "quickstart_results.json").read_text(encoding="utf-8"))
    assert result["mode"] == "quick"
    for key in ("tfidf", "untrained", "finetuned"):
        assert set(result[key]["categories"]) == set(CATEGORIES)
        assert 0 <= result[key]["average"] <= 100
    assert result["finetuned"]["average"] > result["untrained"]["average"]
    dims = result["mrl_dims"]
    assert [d["truncate_dim"] for d in result["per_dim"]] == sorted(dims, reverse=True)[1:]
    assert (out / "final" / "2_Dense" / "model.safetensors").exists()
