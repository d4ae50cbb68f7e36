"""The GPU check script's path, exercised on CPU (no speed or memory claims here)."""

import pytest


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_and_writes_its_table(tmp_path):
    from benchmarks import gpu_check

    out = tmp_path / "GPU_CHECK.md"
    assert gpu_check.main(["--device", "cpu", "--precision", "fp32", "--steps", "3", "--output", str(out)]) == 0
    text = out.read_text()
    assert "| one GPU, gradient checkpointing | 3 |" in text
    assert "ZeRO-1 run skipped: DeepSpeed is not installed" in text or "| + DeepSpeed ZeRO-1 |" in text  # its row or why not
