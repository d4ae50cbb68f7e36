"""The course's run cache: one training per config, data and code; reused and said so."""

import dataclasses
from pathlib import Path

from piccolo_lib.train import runcache
from piccolo_lib.train.config import load_config
from piccolo_lib.paths import REPO_ROOT

TOY = REPO_ROOT / "configs" / "quickstart-toy.yaml"


def test_the_key_follows_what_decides_the_weights(tmp_path):
    base = load_config(TOY, {"max_steps": 2})
    key = runcache.run_key(base)
    assert runcache.run_key(dataclasses.replace(base, output_dir=str(tmp_path), logging_steps=1)) == key
    assert runcache.run_key(dataclasses.replace(base, seed=base.seed + 1)) != key
    data = tmp_path / "retri.jsonl"
    data.write_text('{"text": "a", "text_pos": "b", "text_neg": ["c"], "type": "retri_contrast"}\n', encoding="utf-8")
    other = dataclasses.replace(base, data=[str(data)])
    first = runcache.run_key(other)
    data.write_text('{"text": "a", "text_pos": "B", "text_neg": ["c"], "type": "retri_contrast"}\n', encoding="utf-8")
    assert runcache.run_key(other) != first  # the data's content, not only its path


def test_a_run_is_trained_once_then_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PICCOLO_CACHE", str(tmp_path))
    calls = []

    def fake_train(cfg):
        calls.append(cfg.output_dir)
        (Path(cfg.output_dir) / "final").mkdir(parents=True)
        (Path(cfg.output_dir) / "final" / "modules.json").write_text("[]")
        return Path(cfg.output_dir) / "final"

    import piccolo_lib.train.loop as loop

    monkeypatch.setattr(loop, "train", fake_train)
    cfg = load_config(TOY, {"max_steps": 2, "output_dir": str(tmp_path / "mine")})
    first = runcache.trained(cfg)
    assert "trained the run" in capsys.readouterr().out
    again = runcache.trained(dataclasses.replace(cfg, output_dir=str(tmp_path / "elsewhere")))
    assert again == first and len(calls) == 1 and "reusing the run" in capsys.readouterr().out
    assert (first / "run.json").is_file() and first.parent == tmp_path / "course-runs"
