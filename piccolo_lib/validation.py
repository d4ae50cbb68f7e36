"""Validation of training data: every problem named by file, row and field, before any model is built.

A bad row found at step 40,000 of a multi-GPU run wastes hours, and a NaN score silently turns the
CoSENT loss into NaN. :func:`validate` checks a dataset against its record type
(:mod:`piccolo_lib.data`) and returns one message per problem. Two implementations of the same rules:

* :func:`_check_row`, one row in plain Python: the reference, and the source of every message;
* :func:`_bad_rows`, whole Arrow columns with ``pyarrow.compute`` kernels: finds the bad rows of a
  large dataset without a Python loop over rows; :func:`_check_row` then words the messages.

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import datasets

from .losses import canonical_type

RECORD_COLUMNS = {
    "retri_contrast": ("text", "text_pos", "text_neg"),
    "cosent": ("text", "text_pair", "label"),
    "cls_contrast": ("text", "text_pos", "text_neg"),
}
MAX_ERRORS = 20  # per dataset: enough to see the pattern, not a wall of text
Records = datasets.Dataset | list[dict]


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


_KNOWN_FIELDS = {c for cols in RECORD_COLUMNS.values() for c in cols} | {"type"}


def _missing(row: dict, field: str) -> str:
    """``missing`` plus a hint when another key of the row looks like a misspelling of ``field``."""
    others = [k for k, v in row.items() if v is not None and k not in _KNOWN_FIELDS]
    close = difflib.get_close_matches(field, others, n=1, cutoff=0.6)
    return f"missing (or null){f'; the row has {close[0]!r}: misspelled?' if close else ''}"


def _check_row(row: dict, task_type: str, neg_num: int) -> list[tuple[str, str]]:
    """Problems of one row as (field, message) pairs: the reference for :func:`_bad_rows`."""
    problems = []

    def text(field: str) -> None:
        value = row.get(field)
        if not _is_text(value):
            problems.append((field, _missing(row, field) if value is None else
                             f"expected a non-empty string, got {value!r}"))

    text("text")
    if task_type == "cosent":
        text("text_pair")
        label = row.get("label")
        if label is None:
            problems.append(("label", _missing(row, "label")))
        elif isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
            problems.append(("label", f"expected a finite number, got {label!r}"))
        return problems
    pos, neg = row.get("text_pos"), row.get("text_neg")
    pos_list = pos if isinstance(pos, list) else [pos]
    if pos is None:
        problems.append(("text_pos", _missing(row, "text_pos")))
    elif not pos_list or not all(_is_text(p) for p in pos_list):
        problems.append(("text_pos", f"expected a non-empty string or list of strings, got {pos!r}"))
    if neg is None:
        problems.append(("text_neg", _missing(row, "text_neg")))
    elif not isinstance(neg, list) or not all(_is_text(n) for n in neg):
        problems.append(("text_neg", f"expected a list of non-empty strings, got {neg!r}"))
    elif task_type == "cls_contrast" and isinstance(pos, str) and pos in neg:
        problems.append(("text_neg", f"contains the gold label {pos!r}"))
    elif task_type == "cls_contrast" and not neg:  # fewer than cls_neg_num is fine: min(K, available) per row
        problems.append(("text_neg", "empty: a classification row needs at least one negative label"))
    elif neg_num > 0 and not neg:
        problems.append(("text_neg", f"empty, but neg_num={neg_num}; give negatives or set neg_num=0 "
                                     "(in-batch negatives only)"))
    return problems


def _bad_rows(ds: datasets.Dataset, task_type: str, neg_num: int, limit: int,
              batch_rows: int = 1 << 16) -> list[int]:
    """Indices of the first ``limit`` rows that :func:`_check_row` refuses, found with Arrow compute
    kernels over whole columns instead of a Python loop over rows (the loop dominated the time
    ``piccolo data validate`` took on 1M rows; see benchmarks/validate_speed.py).

    Mirrors :func:`_check_row` (tests/test_data.py checks both refuse the same tricky rows); blank means
    empty after Unicode whitespace trimming, which for Arrow and ``str.strip`` is the same set of
    code points.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def is_string(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    def blank(arr: pa.Array) -> np.ndarray:  # (n,) True where not a non-blank string
        if not is_string(arr.type):  # numbers, lists, or all null: every row fails
            return np.ones(len(arr), bool)
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0)
        return pc.fill_null(empty, True).to_numpy(zero_copy_only=False)

    def list_bad(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
        """(row has a bad element or is null, parent row of each element, element count, flat values)."""
        bad = pc.is_null(arr).to_numpy(zero_copy_only=False).copy()
        flat, parents = pc.list_flatten(arr), pc.list_parent_indices(arr).to_numpy()
        if len(flat) and not is_string(flat.type):
            bad[parents] = True
        elif len(flat):
            bad[parents[blank(flat)]] = True
        return bad, parents, pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False), flat

    found: list[int] = []
    offset = 0
    for table in ds.with_format("arrow").iter(batch_size=batch_rows):
        for rb in table.to_batches():
            n, col = rb.num_rows, rb.column
            bad = blank(col("text"))
            if task_type == "cosent":
                bad |= blank(col("text_pair"))
                label = col("label")
                if pa.types.is_integer(label.type):
                    bad |= pc.is_null(label).to_numpy(zero_copy_only=False)
                elif pa.types.is_floating(label.type):
                    bad |= ~pc.fill_null(pc.is_finite(label), False).to_numpy(zero_copy_only=False)
                else:
                    bad[:] = True
            else:
                pos, neg = col("text_pos"), col("text_neg")
                if pa.types.is_list(pos.type) or pa.types.is_large_list(pos.type):
                    pos_bad, _, pos_len, _ = list_bad(pos)
                    bad |= pos_bad | (pos_len == 0)
                    pos = None  # a list of positives: no gold-label checks (the reference takes one label)
                else:
                    bad |= blank(pos)
                    pos = pos if is_string(pos.type) else None
                if pa.types.is_list(neg.type) or pa.types.is_large_list(neg.type):
                    neg_bad, parents, neg_len, flat = list_bad(neg)
                    bad |= neg_bad
                    if task_type == "cls_contrast":
                        bad |= neg_len == 0
                        if pos is not None and len(flat) and is_string(flat.type):
                            same = pc.fill_null(pc.equal(flat, pc.take(pos, pa.array(parents))), False)
                            bad[parents[same.to_numpy(zero_copy_only=False)]] = True
                    elif neg_num > 0:
                        bad |= neg_len == 0
                else:
                    bad[:] = True
            found += (np.flatnonzero(bad)[: limit - len(found)] + offset).tolist()
            offset += n
            if len(found) >= limit:
                return found
    return found


def columns(ds: Records) -> list[str]:
    """Column names; for a list of dicts, the keys of every row in first-seen order."""
    if isinstance(ds, datasets.Dataset):
        return ds.column_names
    seen: dict[str, None] = {}
    for row in ds:  # every row's keys: a column missing from row 1 only is still a column
        seen.update(dict.fromkeys(row))
    return list(seen)


def _type_column(ds: Records) -> tuple[list[str | None], int | None]:
    """(distinct values of ``type`` in first-seen order, 0-based index of the first row differing from row 1)."""
    if isinstance(ds, datasets.Dataset):
        values = ds.unique("type")
        if len(values) < 2:
            return values, None
        import numpy as np
        import pyarrow.compute as pc

        first, offset = ds[0]["type"], 0
        for table in ds.select_columns(["type"]).with_format("arrow").iter(batch_size=1 << 16):
            col = table.column(0)
            differs = pc.fill_null(pc.not_equal(col, first), True) if first is not None else pc.is_valid(col)
            hits = np.flatnonzero(differs.to_numpy(zero_copy_only=False))
            if len(hits):
                return values, offset + int(hits[0])
            offset += len(table)
        return values, None
    values = list(dict.fromkeys(r.get("type") for r in ds))
    if len(values) < 2:
        return values, None
    first = ds[0].get("type")
    return values, next(i for i, r in enumerate(ds) if r.get("type") != first)


def validate(ds: Records, source: str, *, task_type: str | None = None, neg_num: int | dict[str, int] = 0,
             batch_size: int | None = None) -> tuple[str, list[str]]:
    """Check a dataset against its record type.

    Returns:
        (task_type, errors): the canonical type, and one message per problem, each naming the
        source, the row (the file's 1-based line for JSONL) and the field. Empty errors means the
        dataset is usable.
    """
    errors: list[str] = []
    names = columns(ds)
    line = _line_mapper(ds, source)
    if "type" in names:
        types, differs = _type_column(ds)
        if differs is not None:
            shown = sorted(map(str, types))
            return "", [f"{source}: row {line(differs)}: field 'type': {ds[differs].get('type')!r}, but row "
                        f"{line(0)} says {ds[0].get('type')!r}: mixed record types {shown} in one dataset; "
                        "split them into one file per type (every batch must have one loss)"]
        found = types[0] if types else None
        try:
            found = canonical_type(found) if found is not None else None
        except ValueError as e:  # every row has this type, so row 1 names it
            return "", [f"{source}: row {line(0)}: field 'type': {e}"]
        if task_type is not None and found is not None and canonical_type(task_type) != found:
            errors.append(f"{source}: field 'type': rows say {found!r} but the config says {task_type!r}")
        task_type = task_type or found
    if task_type is None:
        return "", [f"{source}: no 'type' column and no task type given; add type: retri_contrast|cosent|cls_contrast"]
    try:
        task_type = canonical_type(task_type)
    except ValueError as e:
        return "", [f"{source}: task type: {e}"]
    if isinstance(neg_num, dict):  # per record type, e.g. {"retri_contrast": 1, "cls_contrast": 10}
        neg_num = neg_num.get(task_type, 0)
    expected = RECORD_COLUMNS[task_type]
    missing = [c for c in expected if c not in names]
    if missing:
        hints = [f"{c!r} for {m!r}" for m in missing
                 for c in difflib.get_close_matches(m, [c for c in names if c not in expected], n=1, cutoff=0.6)]
        hint = f"; misspelled? found {', '.join(hints)}" if hints else ""
        return task_type, [f"{source}: missing column(s) {missing} for type {task_type!r}{hint}; "
                           f"found {names}, expected {list(expected)}"]
    if isinstance(ds, datasets.Dataset):
        rows = ((i, ds[i]) for i in _bad_rows(ds, task_type, neg_num, MAX_ERRORS))
    else:
        rows = enumerate(ds)
    for i, row in rows:
        for field, msg in _check_row(row, task_type, neg_num):
            errors.append(f"{source}: row {line(i)}: field {field!r}: {msg}")
        if len(errors) >= MAX_ERRORS:
            errors.append(f"{source}: stopped after {MAX_ERRORS} errors")
            break
    if batch_size and len(ds) < batch_size:
        errors.append(f"{source}: {len(ds)} rows, fewer than one batch ({batch_size}); "
                      "lower batch_size or merge it with a dataset of the same type")
    return task_type, errors


def _line_mapper(ds: Records, source: str):
    """0-based row index -> the number messages show: the file line for JSONL (blank lines shift
    rows), else the 1-based row. Lines of an Arrow-read file are counted only when a message needs one."""
    lines_of = getattr(ds, "lines", None)  # data.Rows: JSONL rows read line by line
    if lines_of is not None:
        return lambda i: lines_of[i]
    path = Path(source)
    if isinstance(ds, datasets.Dataset) and path.suffix.lower() in (".jsonl", ".json") and path.is_file():
        lines: list[int] = []

        def line(i: int) -> int:
            if not lines:
                lines.extend(_line_numbers(path))
            return lines[i] if i < len(lines) else i + 1
        return line
    return lambda i: i + 1


def _line_numbers(path: Path) -> list[int]:
    """1-based line of each non-blank line of a JSONL file (rows skip blank lines; messages name lines)."""
    with path.open("rb") as f:
        return [i for i, line in enumerate(f, start=1) if line.strip() and line.strip() != b"\xef\xbb\xbf"]
