"""The benchmark harness runs and writes a well-formed RESULTS file (no speed thresholds here)."""

import pytest


@pytest.mark.slow
def test_quick_benchmarks_write_results(tmp_path):
    from benchmarks import __main__ as bench
    from benchmarks import label_dedup

    out = tmp_path / "RESULTS.md"
    assert bench.main(["--quick", "--output", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "QUICK run" in text and "| distinct labels, gathered (piccolo_lib) |" in text
    d = label_dedup.run(quick=True)
    assert d["max_loss_diff"] < 1e-4  # same loss whether labels are deduplicated or not
    assert d["rows_encoded_dedup_mean"] < d["rows_encoded_every_label"]
    assert d["dedup"]["min_s"] <= d["dedup"]["median_s"] <= d["dedup"]["max_s"]
