"""The bad-input catalogue (issue #9): each case goes through the public entry point ``training.train``
with a config pointing at the bad data, and must (1) raise a message naming the file, the row (the
file's line) and the field, and (2) train nothing: no output folder, no checkpoint, no metrics, and no
model ever built (``build_model`` is replaced by a function that fails the test).

Cases covered elsewhere, not repeated here:
- a config key that does not exist (closest key suggested): tests/test_training.py
  ``test_unknown_config_key_suggests_the_closest`` and ``test_cli_overrides_after_options`` (the config
  is refused by ``load_config``, before ``train`` could start);
- a retrieval row with an empty ``text_neg`` while ``neg_num > 0``: tests/test_training.py
  ``test_empty_negatives_and_unknown_dataset_prompts_are_refused``. Decision: refused (not trained
  with in-batch negatives only), since a silently weaker loss on some rows is the failure users
  cannot see; set ``neg_num=0`` to train on in-batch negatives (docs/troubleshooting.md).
"""

import json
import re
import socket
import typing
from pathlib import Path

import pytest

from piccolo_lib.data import DataError
from piccolo_lib.errors import ConfigError
from piccolo_lib.training import load_config, train
from test_training import fixture_data


def rows_of(path):
    return [json.loads(x) for x in open(path, encoding="utf-8")]


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def no_model(monkeypatch):
    import piccolo_lib.model as model_module

    monkeypatch.setattr(model_module, "build_model", lambda *a, **k: pytest.fail("a model was built on bad input"))


def refused(tmp_path, data, message, *, error=DataError, **overrides):
    """Run train() on ``data``; the error must match ``message`` and nothing may be written."""
    out = tmp_path / "out"
    cfg = load_config(None, {"data": data, "batch_size": 8, "neg_num": 1, "cls_neg_num": 2,
                             "output_dir": str(out), "save_steps": 1, **overrides})
    with pytest.raises(error) as err:
        train(cfg)
    assert re.search(message, str(err.value)), str(err.value)
    assert not out.exists(), "no output folder, checkpoint or metrics.jsonl on bad input"
    return str(err.value)


def edit(tmp_path, name, change):
    """The fixture's three files, with ``change(rows)`` applied to ``name`` (retri, sts or cls)."""
    paths = fixture_data(tmp_path)
    path = tmp_path / f"{name}.jsonl"
    rows = rows_of(path)
    write(path, change(rows) or rows)
    return paths, re.escape(str(path))


def set_field(row, field, value):
    def change(rows):
        rows[row - 1][field] = value
    return change


def test_missing_column(tmp_path, no_model):
    def drop(rows):
        return [{k: v for k, v in r.items() if k != "text_neg"} for r in rows]
    paths, f = edit(tmp_path, "retri", drop)
    refused(tmp_path, paths, f + r": missing column\(s\) \['text_neg'\] for type 'retri_contrast'")


def test_misspelled_column_in_every_row_and_in_one_row(tmp_path, no_model):
    paths, f = edit(tmp_path, "sts", lambda rows: [{("lable" if k == "label" else k): v for k, v in r.items()}
                                                   for r in rows])
    refused(tmp_path, paths, f + r": missing column\(s\) \['label'\] for type 'cosent'; misspelled\? "
                                 r"found 'lable' for 'label'")

    def one_row(rows):
        rows[2]["lable"] = rows[2].pop("label")
    paths, f = edit(tmp_path, "sts", one_row)
    refused(tmp_path, paths, f + r": row 3: field 'label': missing \(or null\); the row has 'lable': misspelled\?")


def test_unknown_type(tmp_path, no_model):
    paths, f = edit(tmp_path, "sts", lambda rows: [{**r, "type": "regression"} for r in rows])
    refused(tmp_path, paths, f + r": row 1: field 'type': unknown task type 'regression'")


@pytest.mark.parametrize("value", ["", "  \u3000\t"])  # empty, and whitespace-only (ASCII + ideographic space)
def test_empty_or_whitespace_text(tmp_path, no_model, value):
    paths, f = edit(tmp_path, "cls", set_field(2, "text", value))
    refused(tmp_path, paths, f + r": row 2: field 'text': expected a non-empty string")


@pytest.mark.parametrize("field, value", [("text", 5), ("text_pos", ["答案", None]), ("text_neg", [1, 2])])
def test_non_string_text(tmp_path, no_model, field, value):
    paths, f = edit(tmp_path, "retri", set_field(7, field, value))
    refused(tmp_path, paths, f + rf": row 7: field '{field}': expected a (non-empty string|list of non-empty)")


@pytest.mark.parametrize("value, shown", [("high", "'high'"), (float("nan"), "nan"), (float("inf"), "inf"),
                                          (True, "True"), ("3.5", "'3.5'")])
def test_non_numeric_nan_or_infinite_score(tmp_path, no_model, value, shown):
    paths, f = edit(tmp_path, "sts", set_field(5, "label", value))  # Python's json writes NaN / Infinity
    refused(tmp_path, paths, f + rf": row 5: field 'label': expected a finite number, got {shown}")


def test_mixed_record_types_in_one_dataset(tmp_path, no_model):
    paths, f = edit(tmp_path, "sts", set_field(4, "type", "cls_contrast"))
    refused(tmp_path, paths, f + r": row 4: field 'type': 'cls_contrast', but row 1 says 'cosent': mixed record types")


def test_classification_negatives_contain_the_gold_label(tmp_path, no_model):
    def gold(rows):
        rows[1]["text_neg"] = [rows[1]["text_pos"], "科技"]
    paths, f = edit(tmp_path, "cls", gold)
    refused(tmp_path, paths, f + r": row 2: field 'text_neg': contains the gold label '(体育|财经)'")


def test_empty_label_negatives(tmp_path, no_model):
    """A row with fewer label negatives than cls_neg_num trains on the ones it has (min(K, available), the
    reference's rule; tests/test_full_mode.py); an empty list is still refused: the loss would have nothing."""
    def empty(rows):
        rows[0]["text_neg"] = []
    paths, f = edit(tmp_path, "cls", empty)
    refused(tmp_path, paths, f + r": row 1: field 'text_neg': empty: a classification row needs at least one "
                                 r"negative label", cls_neg_num=3)


def test_dataset_smaller_than_one_batch(tmp_path, no_model):
    paths = fixture_data(tmp_path, n=24)
    refused(tmp_path, paths, re.escape(paths[0]) + r": 24 rows, fewer than one batch \(32\)", batch_size=32)


def test_meta_list_missing_folder_and_bad_repeat_counts(tmp_path, no_model):
    paths = fixture_data(tmp_path)
    meta = tmp_path / "meta_list.txt"
    meta.write_text("retri.jsonl 1\nmissing.dataset 1\nsts.jsonl two\ncls.jsonl 1.5\nretri.jsonl 0\n")
    msg = refused(tmp_path, [str(meta)], re.escape(str(meta)) + r": row 2: folder '.*missing.dataset' does not exist")
    for row, got in [(3, "sts.jsonl two"), (4, "cls.jsonl 1.5"), (5, "retri.jsonl 0")]:
        assert f"{meta}: row {row}: expected 'folder repeat_count' with a positive integer, got {got!r}" in msg
    refused(tmp_path, [str(tmp_path / "meta.txt")], re.escape(str(tmp_path / "meta.txt")) + ": no such meta list")


def test_invalid_utf8(tmp_path, no_model):
    paths = fixture_data(tmp_path)
    path = tmp_path / "sts.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].replace("天".encode(), b"\xe5\xa4", 1)  # a character cut after 2 of its 3 bytes
    path.write_bytes(b"\n".join(lines))
    refused(tmp_path, paths, re.escape(str(path)) + r": row 6: invalid UTF-8 at byte \d+ of the line")


def test_truncated_last_line(tmp_path, no_model):
    paths = fixture_data(tmp_path)
    path = tmp_path / "cls.jsonl"
    path.write_bytes(path.read_bytes()[:-25])  # a copy interrupted mid-row
    refused(tmp_path, paths, re.escape(str(path)) + r": row 24: not valid JSON \(truncated last line\?\)")


def test_blank_lines_do_not_shift_the_row_named(tmp_path, no_model):
    paths = fixture_data(tmp_path)
    path = tmp_path / "sts.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[9] = lines[9].replace('"今天天气9"', '"  "')
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")  # a blank line between rows: row 10 is line 19
    refused(tmp_path, paths, re.escape(str(path)) + r": row 19: field 'text'")


@pytest.mark.parametrize("backbone, message", [
    ("/no/such/backbone", "backbone '/no/such/backbone': no such folder"),
    ("./models/my-bert", "backbone './models/my-bert': no such folder"),
    ("some-org/some-model", "is not a local folder, and quick/offline mode never downloads"),
])
def test_backbone_that_does_not_exist_fails_without_a_network_attempt(tmp_path, monkeypatch, backbone, message):
    def no_network(*args, **kwargs):
        pytest.fail(f"network connection attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    paths = fixture_data(tmp_path)
    refused(tmp_path, paths, re.escape(message), error=FileNotFoundError, backbone=backbone)


# ---------------------------------------------------------------- issue 25, defects 7 and 8: config values

TOY = Path(__file__).resolve().parent.parent / "configs" / "quickstart-toy.yaml"


@pytest.mark.parametrize("override, expected", [  # the five of issue 25, then more of the same kind
    ("packed_encoding=maybe", "key 'packed_encoding': expected true or false, got 'maybe'"),  # trained silently
    ("epochs=0", "key 'epochs': expected a number > 0, got 0"),  # trained no step, silently
    ("batch_size=3.5", "key 'batch_size': expected an integer >= 1, got 3.5"),  # a traceback deep in torch
    ("mrl_dims=64", "key 'mrl_dims': expected a list of integers >= 1, e.g. [64, 128, 256], or null, got 64"),
    ("lr=-1", "key 'lr': expected a number >= 0, got -1"),
    ("batch_size=true", "key 'batch_size': expected an integer >= 1, got True"),
    ("warmup_ratio=10", "key 'warmup_ratio': expected a number >= 0 and < 1, got 10"),  # 10 warmup *steps* in HF
    ("max_steps=0", "key 'max_steps': expected -1 (train for `epochs`) or an integer >= 1, got 0"),
    ("lr=.nan", "key 'lr': expected a number >= 0, got nan"),
    ("losses={sts: {temprature: 0.1}}", "key 'losses': 'sts': unknown setting 'temprature'; did you mean "
                                        "'temperature'? (expected temperature, weight)"),
])
def test_piccolo_train_refuses_a_bad_value_with_one_line_and_exit_2(tmp_path, capsys, no_model, override, expected):
    from piccolo_lib import cli

    out = tmp_path / "out"
    status = cli.main(["train", str(TOY), "--mode", "quick", f"output_dir={out}", override])
    err = capsys.readouterr().err
    assert err == f"piccolo train: {TOY}: {expected} (override {override})\n"
    assert status == 2 and not out.exists()


def test_a_bad_value_in_the_file_names_the_file_and_no_override(tmp_path, capsys, no_model):
    from piccolo_lib import cli

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'out'}\nbatch_size: 0\ncls_neg_num: -2\n", encoding="utf-8")
    assert cli.main(["train", str(cfg), "--mode", "quick"]) == 2
    assert capsys.readouterr().err == f"piccolo train: {cfg}: key 'batch_size': expected an integer >= 1, got 0\n"
    with pytest.raises(ConfigError, match=r"^config: key 'dataset_prompts': 'retri': unknown setting 'querry'"):
        load_config(None, {"dataset_prompts": {"retri": {"querry": "问: "}}})


def test_typed_values_keep_yaml_typing_aliases_and_defaults(tmp_path):
    import dataclasses

    from piccolo_lib.train.config import TrainConfig
    from piccolo_lib.train.config_types import expected

    cfg = load_config(TOY, ["lr=1e-4", "epochs=2", "mrl_dims=[32, 64]", "packed_encoding=false", "seed=7"])
    assert (cfg.lr, cfg.epochs, cfg.mrl_dims, cfg.packed_encoding, cfg.seed) == (1e-4, 2.0, [32, 64], False, 7)
    cfg = load_config(None, {"losses": {"sts": {"weight": 0.1}}, "retrieval_for": ["sts"], "lr": "1e-4",
                             "output_dir": tmp_path / "out", "data": tmp_path / "a.jsonl", "batch_size": 8.0})
    assert cfg.losses == {"cosent": {"weight": 0.1}} and cfg.retrieval_for == ["cosent"] and cfg.lr == 1e-4
    assert cfg.output_dir == str(tmp_path / "out") and cfg.data == [str(tmp_path / "a.jsonl")]
    assert cfg.batch_size == 8 and isinstance(cfg.batch_size, int)
    assert dataclasses.asdict(load_config(None)) == dataclasses.asdict(TrainConfig())  # every default as it was
    assert (TrainConfig().batch_size, TrainConfig().lr, TrainConfig().packed_encoding) == (32, 2e-5, True)
    hints = typing.get_type_hints(TrainConfig, include_extras=True)
    for f in dataclasses.fields(TrainConfig):  # every key says in words what it takes
        words = expected(hints[f.name])
        assert words and "typing" not in words and "<class" not in words and "Annotated" not in words, (f.name, words)


@pytest.mark.parametrize("stage, refused", [(0, False), (1, False), (2, True), (3, True)])
def test_gradient_cache_with_deepspeed_zero_2_or_3_is_refused_at_load(tmp_path, stage, refused):
    """ZeRO-2/3 partition gradients and DeepSpeed's no_sync, which GradCache's chunks run under, asserts on them:
    refused when the config is read, not at the first step; stages 0 and 1 stay allowed."""
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": stage}, "train_micro_batch_size_per_gpu": "auto"}))
    cfg = tmp_path / "run.yaml"
    cfg.write_text("deepspeed: ds.json\ngradient_cache: true\n", encoding="utf-8")
    if refused:
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        assert str(err.value) == (f"{cfg}: gradient_cache cannot run with deepspeed ZeRO stage {stage} ({ds}: "
                                  "zero_optimization.stage): ZeRO-2/3 partition gradients, and GradCache's no_sync "
                                  "asserts there; use a stage 0 or 1 config (configs/ds_zero1.json) or "
                                  "gradient_cache=false")
    else:
        assert load_config(cfg).deepspeed == str(ds)
    assert load_config(cfg, ["gradient_cache=false"]).deepspeed == str(ds)  # ZeRO alone: any stage
