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


def test_quickstart_keys_are_taken_out_of_the_overrides_and_checked():
    from piccolo_lib.errors import ConfigError
    from piccolo_lib.pipeline import PIPELINE_KEYS, pipeline_options

    rest, options = pipeline_options(["seed=3", "review_rows=0", "distractors=250", "lr=1e-4"])
    assert rest == ["seed=3", "lr=1e-4"] and options == {"review_rows": 0, "distractors": 250}
    assert pipeline_options(None) == ([], PIPELINE_KEYS)
    with pytest.raises(ConfigError, match="distractors='many': expected a non-negative integer"):
        pipeline_options(["distractors=many"])


def test_the_review_split_joins_the_mix_once(tmp_path, monkeypatch):
    from piccolo_lib.data import public
    from piccolo_lib.pipeline import QUICK_CONFIG, with_review_rows
    from piccolo_lib.train.loop import load_config

    monkeypatch.setenv("PICCOLO_CACHE", str(tmp_path))
    cfg = load_config(QUICK_CONFIG)
    before = list(cfg.data)
    with_review_rows(cfg, 20)
    with_review_rows(cfg, 20)
    assert cfg.data == before + [str(public.review_train_file(20))] and str(tmp_path) in cfg.data[-1]
    assert with_review_rows(load_config(QUICK_CONFIG), 0).data == before


def test_side_by_side_keeps_the_real_task_out_of_the_average_column():
    from piccolo_lib.evaluate.real import format_side_by_side, side_by_side

    summary = {"model": "m", "truncate_dim": None, "average": 70.0,
               "tasks": {"PiccoloLocalRetrieval": {"category": "Retrieval", "kinds": {"nearmiss": 60.0, "plain": 80.0}}},
               "real": {"Rev": {"main_score": 81.5}}, "extras": {"RevZeroShot": {"main_score": 79.25}}}
    assert side_by_side(summary) == {"Local average": 70.0, "Retrieval near-miss": 60.0, "Retrieval plain": 80.0,
                                     "Rev (logistic regression)": 81.5, "Rev (zero-shot, label texts)": 79.25}
    table = format_side_by_side([summary, {**summary, "model": "n", "real": {}, "extras": {}}]).splitlines()
    assert table[2] == "| m | full | 70.00 | 60.00 | 80.00 | 81.50 | 79.25 |" and table[3].endswith("| - | - |")


def test_trim_rankings_keeps_the_top_k_of_retrieval_predictions_only(tmp_path):
    from piccolo_lib.pipeline import trim_rankings

    ranking = {"q1": {f"d{i}": i / 10 for i in range(20)}}
    (tmp_path / "R_predictions.json").write_text(json.dumps({"mteb_model_meta": {}, "default": {"test": ranking}}))
    labels = {"mteb_model_meta": {}, "default": {"test": [[0, 1], [1, 1]]}}
    (tmp_path / "C_predictions.json").write_text(json.dumps(labels))
    trim_rankings(tmp_path, k=3)
    kept = json.loads((tmp_path / "R_predictions.json").read_text())["default"]["test"]["q1"]
    assert list(kept) == ["d19", "d18", "d17"]
    assert json.loads((tmp_path / "C_predictions.json").read_text()) == labels


def test_bad_quickstart_and_eval_options_are_one_line_errors(capsys):
    from piccolo_lib import cli

    assert cli.main(["quickstart", "--mode", "quick", "--backbone", "offline-bert", "distractors=lots"]) == 2  # a bad option is a usage error: exit 2, as argparse and the typed config
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["piccolo quickstart: distractors='lots': expected a non-negative integer"]
    assert cli.main(["eval", "offline-bert", "--mode", "quick", "--distractors", "-3", "--output", "/nonexistent/x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["piccolo eval: distractors must be >= 0, got -3"]


def _warns_and_doubles(x: int) -> int:
    import warnings

    warnings.warn("the same words from every run", UserWarning)
    return 2 * x


def test_side_by_side_runs_show_each_distinct_warning_once():
    """Two workers raising the same warning: the caller sees it once, and the results come back in order."""
    import warnings

    from piccolo_lib.pipeline import run_side_by_side

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = run_side_by_side(_warns_and_doubles, {"a": 1, "b": 2}, workers=2)
    assert out == {"a": 2, "b": 4}
    assert [str(w.message) for w in caught].count("the same words from every run") == 1
