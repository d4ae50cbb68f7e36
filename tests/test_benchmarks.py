"""The benchmark harness: the quick run works end to end and its output is well formed (never a speed threshold)."""

import json
import re

import pytest

SECTIONS = ["## Machine", "## Goals", "## 1. Training step", "## 2. Matryoshka overhead", "## 3. Evaluation encoding",
            "## 4. Cost growth", "## 5. Hardware ceiling", "## 7. Course timing", "## 8. The real model: e5-small",
            "## Run time per section"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from benchmarks import __main__ as bench

    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    assert bench.main(["--quick", "--threads", "1", "--output", str(out)]) == 0
    return out, json.loads(out.with_name("results.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_results_file_has_every_section_and_parsable_numbers(quick_run):
    out, store = quick_run
    text = out.read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert heading in text, heading
    assert "QUICK run" in text
    assert (out.parent / "cost_vs_batch.png").stat().st_size > 0 and (out.parent / "cost_vs_k.png").exists()
    # every "median [min-max]" cell parses and is ordered
    cells = re.findall(r"(\d+\.\d+) \[(\d+\.\d+)-(\d+\.\d+)\]", text)
    assert len(cells) >= 15
    for median, lo, hi in cells:
        assert float(lo) <= float(median) <= float(hi)
    # a goal row per goal, each saying yes or no
    goals = [line for line in text.splitlines()
             if line.startswith("| ") and ("| yes |" in line or "| **no** |" in line)]
    assert len(goals) == 5  # 4 on the toy + piccolo_lib vs plain sentence-transformers on e5-small
    for name, section in store["sections"].items():
        assert section.get("error") is None, (name, section.get("error"))


@pytest.mark.slow
def test_losses_agree_where_the_recipes_compute_the_same_thing(quick_run):
    _, store = quick_run
    check = store["sections"]["train_step"]["data"]["backbones"]["offline-bert"]["losses"]
    assert {(p["task"], p["b"]) for p in check["pairs"]} == {
        ("retri_contrast", "sentence-transformers"), ("retri_contrast", "reference"),
        ("cosent", "sentence-transformers"), ("cosent", "reference"), ("cls_contrast", "reference")}
    for pair in check["pairs"]:
        assert pair["max_abs_diff"] < 1e-4, pair
    # plain MNRL on label texts is a different loss (in-batch label negatives): it must not match
    c = check["cls_plain_st_vs_piccolo"]
    assert abs(c["sentence-transformers"] - c["piccolo_lib"]) > 1e-3


@pytest.mark.slow
def test_rows_encoded_are_the_expected_counts(quick_run):
    _, store = quick_run
    d = store["sections"]["train_step"]["data"]["backbones"]["offline-bert"]
    b, k_r, k_c = d["batch"], d["k"]["retri_contrast"], d["k"]["cls_contrast"]
    every_label = b + b * (1 + k_c)  # texts + every label string
    for name in ("piccolo_lib", "sentence-transformers", "reference"):
        rows = d["recipes"][name]["rows"]
        if name == "piccolo_lib":  # packed: each distinct text once (repeats in a batch encode once)
            assert 0 < rows["retri_contrast"] <= b * (2 + k_r) and 0 < rows["cosent"] <= 2 * b
            assert rows["cls_contrast"] <= b + 10  # texts + the distinct labels (data_samples' set has 10)
        else:
            assert rows["retri_contrast"] == b * (2 + k_r) and rows["cosent"] == 2 * b
            assert rows["cls_contrast"] == every_label
    for p in store["sections"]["scaling"]["data"]["points"]:
        expected = {"retri_contrast": p["b"] * (2 + p["k"]), "cosent": 2 * p["b"]}.get(p["task"])
        if p["recipe"] == "reference":
            assert p["rows"] == (p["b"] * (2 + p["k"]) if p["task"] == "cls_contrast" else expected), p
        elif p["task"] == "cls_contrast":  # piccolo_lib: distinct texts + distinct labels
            assert 0 < p["rows"] <= p["b"] + 10, p
        else:  # piccolo_lib packed: at most one row per column entry, fewer when texts repeat
            assert 0 < p["rows"] <= expected, p


@pytest.mark.slow
def test_real_model_section_counts_and_losses(quick_run):
    _, store = quick_run
    d = store["sections"]["real_model"]["data"]
    steps = d["steps"]
    # e5-small: 117,653,760 parameters (BERT pooler included), 96,014,208 of them word embeddings; head 384 -> 672
    assert steps["e5-small"]["word embeddings frozen"]["trainable"] == 117_653_760 - 96_014_208 + 384 * 672 + 672
    assert steps["offline-bert"]["all parameters"]["trainable"] < 2_000_000
    v = d["versus"]
    assert v["params"]["all"] == steps["e5-small"]["word embeddings frozen"]["trainable"]
    for pair in v["losses"]["pairs"]:  # same batches, same weights: the same loss where the recipes agree
        assert pair["max_abs_diff"] < 1e-4, pair
    for name, r in v["recipes"].items():
        assert all(x > 0 for x in r["rows"].values()), name


@pytest.mark.slow
def test_memory_eval_and_ceiling_figures_are_sane(quick_run):
    _, store = quick_run
    s = store["sections"]
    mem = s["train_step"]["data"]["backbones"]["offline-bert"]["memory"]
    if mem is not None:  # Linux: peak RSS of a step above the resting process
        for name, m in mem.items():
            assert all(v > 0 for v in m["step_peak_mb"].values()), name
        # every label string costs memory: the reference's classification step needs more than deduplication
        assert mem["reference"]["step_peak_mb"]["cls_contrast"] > mem["piccolo_lib"]["step_peak_mb"]["cls_contrast"]
    ev = s["eval_encode"]["data"]
    assert ev["max_abs_embedding_diff"] < 1e-5 and ev["ratio"] > 0
    assert s["ceiling"]["data"]["ceiling_gflops"] > 0


def test_cli_rejects_unknown_benchmark_names():
    from benchmarks import __main__ as bench

    with pytest.raises(SystemExit):
        bench.main(["--only", "train_step,nonsense"])


def test_growth_fit_recovers_a_line():
    from benchmarks.scaling import linear_fit

    f = linear_fit([10, 20, 40], [1.5, 2.5, 4.5])
    assert f["intercept"] == pytest.approx(0.5) and f["slope"] == pytest.approx(0.1) and f["r2"] == pytest.approx(1.0)
    assert linear_fit([42, 42], [1.0, 1.1])["r2"] is None


@pytest.mark.slow
def test_levers_section_is_well_formed(tmp_path):
    from benchmarks import __main__ as bench
    from benchmarks.levers import VARIANTS

    out = tmp_path / "RESULTS.md"
    assert bench.main(["--quick", "--threads", "1", "--only", "levers", "--output", str(out)]) == 0
    data = json.loads(out.with_name("results.json").read_text(encoding="utf-8"))["sections"]["levers"]["data"]
    if "skipped" in data:
        pytest.skip(data["skipped"])
    assert set(data["variants"]) == set(VARIANTS)
    for name, v in data["variants"].items():
        phases = v["phases_ms"]["retri_contrast"]
        assert set(phases) == {"collate", "forward", "loss", "backward", "optimizer"}, name
        assert all(ms >= 0 for ms in phases.values()) and phases["forward"] > 0 and phases["backward"] > 0, name
        assert phases["loss"] < phases["forward"], name  # the loss on embeddings is cheaper than encoding
    drift = data["drift"]
    assert len(drift["losses"]["fp32"]) == len(drift["losses"]["bf16"]) == drift["steps"]
    assert drift["losses"]["fp32"] != drift["losses"]["bf16"]  # autocast really ran in bf16
    assert drift["median_rel_diff"] < 0.05  # ... and bf16 rounding moves a loss by well under 5%
    assert all(0 <= x < 1 for k, x in data["counts"].items() if "share" in k or "repeated" in k)
    assert all(x > 0 for k, x in data["counts"].items() if "packed / unpacked" in k)
    if data["memory"] is not None:
        assert set(data["memory"]) == {"piccolo_lib", "piccolo_lib, unpacked", "sentence-transformers", "reference"}
    text = out.read_text(encoding="utf-8")
    assert "## 12. Speed levers on e5-small" in text and "| piccolo_lib bf16 | cls_contrast |" in text
