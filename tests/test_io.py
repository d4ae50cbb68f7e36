"""piccolo_lib.io and its users (issue 25, defect 6): files appear whole or not at all, and append-only logs
survive a torn last line.

One test per behaviour: a torn tail is dropped with a warning naming file and line; a bad line in the middle
is one error naming file and line; an interrupted write leaves the old file (or folder). Then the writers that
use it: resuming a run whose ``metrics.jsonl`` ends in a torn line, and ``piccolo data mine``'s output.
"""

import json
import re
import shutil

import pytest

from piccolo_lib.errors import DamagedFile, UserError
from piccolo_lib.io import append_jsonl, atomic_path, atomic_write, read_jsonl_tolerant


def test_a_torn_last_line_is_dropped_with_a_warning_naming_file_and_line(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, [{"step": 1}, {"step": 2}])
    with log.open("ab") as f:  # a kill in the middle of the third write
        f.write(b'{"step": 3, "lo')
    with pytest.warns(UserWarning, match=re.escape(f"{log}: line 3: torn last line dropped")):
        assert read_jsonl_tolerant(log) == [{"step": 1}, {"step": 2}]
    with pytest.warns(UserWarning, match=re.escape(f"{log}: line 3: torn last line dropped")):
        append_jsonl(log, [{"step": 3}])  # the fragment is cut off, never glued to the new line
    assert log.read_text(encoding="utf-8").splitlines() == ['{"step": 1}', '{"step": 2}', '{"step": 3}']
    complete = tmp_path / "complete.jsonl"
    complete.write_text('{"step": 1}', encoding="utf-8")  # whole, only its newline missing: kept
    append_jsonl(complete, [{"step": 2}])
    assert read_jsonl_tolerant(complete) == [{"step": 1}, {"step": 2}]
    assert read_jsonl_tolerant(tmp_path / "missing.jsonl") == []


def test_a_bad_line_in_the_middle_is_one_error_naming_file_and_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1}\nnot json\n{"step": 3}\n', encoding="utf-8")
    with pytest.raises(DamagedFile, match=re.escape(f"{log}: line 2: not valid JSON")) as err:
        read_jsonl_tolerant(log)
    assert isinstance(err.value, UserError) and "\n" not in str(err.value)


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "stats.json"
    atomic_write(target, '{"old": true}\n')
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"new": tr', encoding="utf-8")  # half of the new content
            raise RuntimeError("killed mid-write")
    assert target.read_text(encoding="utf-8") == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]
    atomic_write(target, b'{"new": true}\n')
    assert json.loads(target.read_text(encoding="utf-8")) == {"new": True}

    folder = tmp_path / "task"  # a folder: the old one stays whole until the new one is complete
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "a.json").write_text("1", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / "b.json").write_text("2", encoding="utf-8")
            raise RuntimeError("killed")
    assert [p.name for p in folder.iterdir()] == ["a.json"]
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "b.json").write_text("2", encoding="utf-8")
    assert [p.name for p in folder.iterdir()] == ["b.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json", "task"]


def test_mined_output_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A failure while writing the mined rows leaves the previous output file as it was (it used to be opened
    with "w" first, so a crash half-way lost the old file and left a cut-off one)."""
    from piccolo_lib.train import mining

    rows = [{"text": "问题", "text_pos": "答案", "text_neg": ["无关"], "type": "retri_contrast"}]
    (tmp_path / "in.jsonl").write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("the previous output\n", encoding="utf-8")
    monkeypatch.setattr(mining, "resolve_backbone", lambda name: name)
    monkeypatch.setattr(mining, "is_sentence_transformers_folder", lambda path: True)
    monkeypatch.setattr(mining, "SentenceTransformer", lambda path: object())
    unwritable = {**rows[0], "text_neg": {"a set is not JSON"}}  # fails on the second row, after the first
    monkeypatch.setattr(mining, "mine_hard_negatives", lambda model, rows_, **kw: ([rows[0], unwritable], None))
    with pytest.raises(TypeError, match="not JSON serializable"):
        mining.mine_file("model", tmp_path / "in.jsonl", out)
    assert out.read_text(encoding="utf-8") == "the previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    monkeypatch.setattr(mining, "mine_hard_negatives", lambda model, rows_, **kw: (rows, "stats"))
    assert mining.mine_file("model", tmp_path / "in.jsonl", out) == "stats"
    assert [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] == rows


def test_resume_drops_a_torn_metrics_line_and_refuses_a_damaged_one(tmp_path):
    """metrics.jsonl after a kill mid-write: the resume drops the torn line (warning naming file and line), cuts
    the steps after the checkpoint (atomically) and appends the redone ones; garbage in the middle stops the
    resume with one line naming file and line, before any step is trained."""
    from piccolo_lib.training import load_config, train
    from test_training import fixture_data

    out = tmp_path / "out"
    settings = {"data": fixture_data(tmp_path, n=8), "batch_size": 4, "neg_num": 1, "cls_neg_num": 2,
                "max_steps": 3, "save_steps": 2, "max_seq_length": 16, "query_max_len": 8, "passage_max_len": 8,
                "output_dir": str(out), "device": "cpu", "seed": 1}
    train(load_config(None, settings))
    metrics = out / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3]
    shutil.rmtree(out / "checkpoints" / "checkpoint-3")  # as if killed after logging step 3, before its save

    metrics.write_text("\n".join([lines[0], "{garbage", *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(DamagedFile, match=re.escape(f"{metrics}: line 2: not valid JSON")):
        train(load_config(None, {**settings, "resume": True}))

    metrics.write_text("\n".join(lines) + '\n{"step": 4, "epoch": 1.0, "dat', encoding="utf-8")
    with pytest.warns(UserWarning, match=re.escape(f"{metrics}: line 4: torn last line dropped")):
        train(load_config(None, {**settings, "resume": True}))  # resumes from checkpoint-2, redoes step 3
    steps = [json.loads(x)["step"] for x in metrics.read_text(encoding="utf-8").splitlines()]
    assert steps == [1, 2, 3]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no temporary left behind"
