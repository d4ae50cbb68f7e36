"""The GPU check script's path, exercised on CPU (no speed or memory claims here)."""

import pytest


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_and_writes_its_table(tmp_path):
    from benchmarks import gpu_check

    out = tmp_path / "GPU_CHECK.md"
    assert gpu_check.main(["--device", "cpu", "--precision", "fp32", "--steps", "2", "--e5-batch-size", "4",
                           "--output", str(out)]) == 0
    text = out.read_text()
    assert "| toy (offline-bert), one device | 2 |" in text
    assert "| e5-small, one device, batch 4 | 2 |" in text  # the real model, not only the toy
    assert "- e5-small, one device, batch 4: " in text  # its loss curve
    assert "e5-small on 2 processes: skipped (needs 2 GPUs)" in text
    assert "ZeRO-1 run skipped: DeepSpeed is not installed" in text or "| toy + DeepSpeed ZeRO-1 |" in text


def test_markdown_reports_every_run_and_why_one_is_missing():
    from benchmarks.gpu_check import markdown

    run = {"steps": 3, "samples_per_s": 10.0, "gpu_mem_peak_mb": 812.5, "final_loss": 1.2, "loss_curve": [2.0, 1.5, 1.2]}
    text = markdown({"runs": {"e5-small, 2 processes, batch 32 each": run}, "notes": ["toy: failed: boom"]}, "2 x H100", "bf16")
    assert "| e5-small, 2 processes, batch 32 each | 3 | 10.0 | 812.5 | 1.2 |" in text
    assert "- e5-small, 2 processes, batch 32 each: 2.0, 1.5, 1.2" in text and "toy: failed: boom" in text
