"""Loading the three record types from every supported format, and the validation messages."""

import json

import datasets
import pytest

from piccolo_lib.cli import main
from piccolo_lib.data import (
    from_classification, from_pairs, load_train_sets, validate,
)

RETRI = [{"text": f"问题{i}", "text_pos": f"答案{i}", "text_neg": [f"干扰{i}", "其他"], "type": "retri_contrast"}
         for i in range(6)]
STS = [{"text": f"句子{i}", "text_pair": f"句子{i + 1}", "label": i % 5, "type": "cosent"} for i in range(6)]
CLS = from_classification([f"文本{i}" for i in range(6)], ["体育", "财经", "科技"] * 2)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_reference_layout_save_to_disk_and_meta_list(tmp_path):
    """The reference code's layout: save_to_disk folders listed in a meta list with repeat counts."""
    for name, rows in [("retri.dataset", RETRI), ("sts.dataset", STS), ("cls.dataset", CLS)]:
        datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / name))
    (tmp_path / "meta_list.txt").write_text("cls.dataset 1\nretri.dataset 2\nsts.dataset 1\n")
    sets = load_train_sets(tmp_path / "meta_list.txt")
    assert [(s.name, s.task_type, len(s.dataset), s.repeat) for s in sets] == [
        ("cls", "cls_contrast", 6, 1), ("retri", "retri_contrast", 6, 2), ("sts", "cosent", 6, 1)]


def test_jsonl_csv_tsv_parquet_load_the_same_rows(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", RETRI)
    ds = datasets.Dataset.from_list(RETRI)
    ds.to_parquet(str(tmp_path / "b.parquet"))
    frame = ds.to_pandas()
    frame["text_neg"] = frame["text_neg"].map(lambda v: json.dumps(list(v), ensure_ascii=False))
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    sets = load_train_sets([tmp_path / f for f in ("a.jsonl", "b.parquet", "c.csv", "d.tsv")])
    for s in sets:
        assert s.task_type == "retri_contrast"
        assert [list(r["text_neg"]) for r in s.dataset] == [r["text_neg"] for r in RETRI]


def test_conversion_builds_negatives_from_other_labels():
    assert CLS[0] == {"text": "文本0", "text_pos": "体育", "text_neg": ["科技", "财经"], "type": "cls_contrast"}
    assert from_pairs(["a"], ["b"], [4])[0] == {"text": "a", "text_pair": "b", "label": 4.0, "type": "cosent"}


# The bad-input catalogue (one case per test, through train()) is tests/test_bad_input.py. Here: the
# fast column-wise check and the exact per-row check must refuse the same rows.
WS = " \u3000\t\u2028\x1c"  # ASCII, ideographic, line-separator and control-char whitespace
TRICKY = {
    "cosent": [
        {"text": "a", "text_pair": "b", "label": 1.5}, {"text": WS, "text_pair": "b", "label": 1.0},
        {"text": "a", "text_pair": "", "label": 1.0}, {"text": "a", "text_pair": "b", "label": float("nan")},
        {"text": "a", "text_pair": "b", "label": float("inf")}, {"text": "a", "text_pair": "b", "label": -float("inf")},
        {"text": "a", "text_pair": "b", "label": None}, {"text": None, "text_pair": "b", "label": 0.0},
        {"text": "x" + WS, "text_pair": WS + "y", "label": -2.0},
    ],
    "retri_contrast": [
        {"text": "q", "text_pos": ["p"], "text_neg": ["n"]}, {"text": "q", "text_pos": [], "text_neg": ["n"]},
        {"text": "q", "text_pos": ["p", WS], "text_neg": ["n"]},
        {"text": "q", "text_pos": ["p", None], "text_neg": ["n"]},
        {"text": "q", "text_pos": None, "text_neg": ["n"]}, {"text": "q", "text_pos": ["p"], "text_neg": []},
        {"text": "q", "text_pos": ["p"], "text_neg": None}, {"text": "q", "text_pos": ["p"], "text_neg": ["n", ""]},
        {"text": "q", "text_pos": ["p"], "text_neg": [None]}, {"text": "", "text_pos": ["p"], "text_neg": ["n"]},
        {"text": "q", "text_pos": ["p", "p2"], "text_neg": ["p"]},
    ],
    "cls_contrast": [
        {"text": "t", "text_pos": "体育", "text_neg": ["财经", "科技"]},
        {"text": "t", "text_pos": "体育", "text_neg": ["财经"]},
        {"text": "t", "text_pos": "体育", "text_neg": ["体育", "科技"]},
        {"text": "t", "text_pos": WS, "text_neg": ["a", "b"]},
        {"text": "t", "text_pos": None, "text_neg": ["a", "b"]},
        {"text": "t", "text_pos": "体育", "text_neg": []},
        {"text": "t", "text_pos": "体育", "text_neg": ["财经", "科技", "体育"]},
        {"text": "t", "text_pos": "a", "text_neg": None},
    ],
}


@pytest.mark.parametrize("task_type", list(TRICKY))
@pytest.mark.parametrize("neg_num", [0, 2])
def test_column_checks_refuse_the_same_rows_as_row_checks(task_type, neg_num):
    from piccolo_lib.validation import _bad_rows, _check_row

    rows = TRICKY[task_type] * 3  # three copies, read in batches of 4 rows: offsets across batch borders
    exact = [i for i, r in enumerate(rows) if _check_row(r, task_type, neg_num)]
    # a view starting at row 2 of its Arrow table, as after select/shuffle
    ds = datasets.Dataset.from_list(rows[:2] + rows).select(range(2, 2 + len(rows)))
    assert 0 < len(exact) < len(rows)
    assert _bad_rows(ds, task_type, neg_num, limit=len(rows), batch_rows=4) == exact
    assert _bad_rows(ds, task_type, neg_num, limit=3) == exact[:3]


@pytest.mark.parametrize("task_type, column, value", [
    ("cosent", "label", "4"), ("cosent", "text", 7), ("retri_contrast", "text_neg", "n"),
    ("cls_contrast", "text_pos", 3), ("cosent", "label", True)])
def test_a_column_of_the_wrong_type_refuses_every_row(task_type, column, value):
    from piccolo_lib.validation import _bad_rows

    rows = [{**r, column: value} for r in TRICKY[task_type][:1] * 5]
    assert _bad_rows(datasets.Dataset.from_list(rows), task_type, 0, limit=10) == [0, 1, 2, 3, 4]


def test_fast_and_exact_jsonl_readers_give_the_same_rows_and_messages(tmp_path):
    """Arrow reads a clean file; a field typed str in one row and list in another sends it to the
    exact reader; both name the same line, and a UTF-8 byte-order mark is accepted by both."""
    from piccolo_lib.data import Rows, read_table

    rows = [{**r, "type": "retri_contrast"} for r in TRICKY["retri_contrast"][:2]]
    bom = b"\xef\xbb\xbf"
    (tmp_path / "fast.jsonl").write_bytes(bom + "\n\n".join(json.dumps(r) for r in rows).encode() + b"\n")
    mixed = [{**rows[0], "text_pos": "p"}, rows[1]]  # text_pos: a string in row 1, a list in row 2
    (tmp_path / "exact.jsonl").write_bytes(bom + "\n\n".join(json.dumps(r) for r in mixed).encode() + b"\n")
    fast, exact = read_table(tmp_path / "fast.jsonl"), read_table(tmp_path / "exact.jsonl")
    assert isinstance(fast, datasets.Dataset) and isinstance(exact, Rows) and exact.lines == [1, 3]
    assert fast.to_list() == rows
    for ds, name in [(fast, "fast.jsonl"), (exact, "exact.jsonl")]:
        _, errors = validate(ds, str(tmp_path / name))
        assert errors == [f"{tmp_path / name}: row 3: field 'text_pos': expected a non-empty string or list of "
                          "strings, got []"]
    write_jsonl(tmp_path / "ok.jsonl", [mixed[0], {**mixed[1], "text_pos": ["p1", "p2"]}])
    (ok,) = load_train_sets(tmp_path / "ok.jsonl")  # one column type: a string positive becomes a 1-element list
    assert [r["text_pos"] for r in ok.dataset] == [["p"], ["p1", "p2"]]


def test_cli_validate_exit_codes(tmp_path, capsys):
    good = write_jsonl(tmp_path / "good.jsonl", STS)
    assert main(["data", "validate", str(good)]) == 0
    assert "cosent" in capsys.readouterr().out
    bad = write_jsonl(tmp_path / "bad.jsonl", STS[:1] + [{**STS[1], "text": ""}])
    assert main(["data", "validate", str(bad)]) == 1
    assert "bad.jsonl: row 2: field 'text'" in capsys.readouterr().err


def test_shipped_data_samples_are_valid():
    from piccolo_lib.training import REPO_ROOT

    sets = load_train_sets(REPO_ROOT / "data_samples" / "train" / "meta_list.txt", batch_size=32)
    assert {s.task_type for s in sets} == {"retri_contrast", "cosent", "cls_contrast"}
    assert sum(len(s.dataset) for s in sets) >= 1500
