"""Loading the three record types from every supported format, and the validation messages."""

import json

import datasets
import pytest

from piccolo_lib.cli import main
from piccolo_lib.data import (
    DataError, from_classification, from_pairs, load_train_sets, read_jsonl, read_meta_list, validate,
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


@pytest.mark.parametrize("row, field, message", [
    ({"text": " ", "text_pair": "b", "label": 1}, "text", "non-empty string"),
    ({"text": "a", "text_pair": 5, "label": 1}, "text_pair", "non-empty string"),
    ({"text": "a", "text_pair": "b", "label": "high"}, "label", "finite number"),
    ({"text": "a", "text_pair": "b", "label": float("nan")}, "label", "finite number"),
])
def test_bad_cosent_rows_name_file_row_and_field(tmp_path, row, field, message):
    rows = STS[:2] + [{**row, "type": "cosent"}]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")  # NaN is written as NaN (Python json)
    with pytest.raises(DataError) as err:
        load_train_sets(path)
    assert f"{path}: row 3: field '{field}'" in str(err.value) and message in str(err.value)


def test_schema_errors(tmp_path):
    ds = datasets.Dataset.from_list([{"text": "a", "text_pair": "b", "type": "cosent"}])
    _, errors = validate(ds, "x.jsonl")
    assert "missing column(s) ['label']" in errors[0]
    mixed = datasets.Dataset.from_list([STS[0], {**STS[1], "type": "cls_contrast"}])
    assert "mixed record types" in validate(mixed, "m.jsonl")[1][0]
    unknown = datasets.Dataset.from_list([{**STS[0], "type": "regression"}])
    assert "unknown task type 'regression'" in validate(unknown, "u.jsonl")[1][0]
    gold = datasets.Dataset.from_list([{**CLS[0], "text_neg": ["体育", "财经"]}])
    assert "row 1: field 'text_neg': contains the gold label '体育'" in validate(gold, "g.jsonl")[1][0]
    small = datasets.Dataset.from_list(STS)
    assert "fewer than one batch (32)" in validate(small, "s.jsonl", batch_size=32)[1][-1]


def test_bad_jsonl_and_meta_list(tmp_path):
    (tmp_path / "t.jsonl").write_bytes(b'{"text": "a"}\n{"text": "b", "lab')
    with pytest.raises(DataError, match=r"t.jsonl: row 2: not valid JSON \(truncated last line\?\)"):
        read_jsonl(tmp_path / "t.jsonl")
    (tmp_path / "u.jsonl").write_bytes(b'{"text": "a"}\n{"text": "\xff"}\n')
    with pytest.raises(DataError, match="u.jsonl: row 2: invalid UTF-8"):
        read_jsonl(tmp_path / "u.jsonl")
    (tmp_path / "meta.txt").write_text("missing.dataset 1\nsts.jsonl two\n")
    write_jsonl(tmp_path / "sts.jsonl", STS)
    with pytest.raises(DataError) as err:
        read_meta_list(tmp_path / "meta.txt")
    assert "meta.txt: row 1: folder" in str(err.value) and "does not exist" in str(err.value)
    assert "meta.txt: row 2: expected 'folder repeat_count' with a positive integer" in str(err.value)


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
