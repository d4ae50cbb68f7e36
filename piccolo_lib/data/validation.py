"""Validation of training data: every problem named by file, row and field, before any model is built.

A bad row found at step 40,000 of a multi-GPU run wastes hours, and a NaN score silently turns the
CoSENT loss into NaN. :func:`validate` checks a dataset against its record type and returns one message per
problem. The rules are written once, as data: each task family declares its ``columns`` and ``rules``
(:mod:`piccolo_lib.tasks`; read from its registry at every call), read by two interpreters:

* :func:`_check_row`, one row in plain Python: the source of every message;
* :func:`_bad_rows`, whole Arrow columns with ``pyarrow.compute`` kernels: finds the bad rows of a
  large dataset without a Python loop over rows; :func:`_check_row` then words the messages.

Introduced in notebooks/01_data_formats.ipynb; its messages are shown in notebooks/12_appendix_reference.ipynb.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import datasets

from ..tasks import TASKS, canonical_type, get_task
from ..tasks.base import Rule

RECORD_COLUMNS = {name: task.columns for name, task in TASKS.items()}  # the built-in families' columns (a snapshot)
MAX_ERRORS = 20  # per dataset: enough to see the pattern, not a wall of text
Records = datasets.Dataset | list[dict]


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _known_fields() -> set[str]:
    return {c for task in TASKS.values() for c in task.columns} | {"type"}


def _missing(row: dict, field: str) -> str:
    """``missing`` plus a hint when another key of the row looks like a misspelling of ``field``."""
    others = [k for k, v in row.items() if v is not None and k not in _known_fields()]
    close = difflib.get_close_matches(field, others, n=1, cutoff=0.6)
    return f"missing (or null){f'; the row has {close[0]!r}: misspelled?' if close else ''}"


# ---------------------------------------------------------------- the rule set, written once
# Every check is a Rule of a task (piccolo_lib.tasks.base.Rule). Two interpreters read them: _check_row (one row in
# Python: it words the messages) and _bad_rows (whole Arrow columns: it finds the bad rows of a large file fast). A
# new rule of an existing kind is one Rule on the task; a new kind needs a branch in each interpreter, and
# tests/test_data.py runs both on the same tricky rows.


_EXPECTED = {"text": "a non-empty string", "texts": "a list of non-empty strings",
             "text|texts": "a non-empty string or list of strings", "number": "a finite number"}


def _row_problem(rule: Rule, row: dict, task_type: str, neg_num: int) -> str | None:
    """The message for one rule on one row, or None when the row passes it."""
    value = row.get(rule.field)
    kind = rule.kind
    if kind in _EXPECTED:
        if value is None:
            return _missing(row, rule.field)
        ok = {"text": lambda v: _is_text(v),
              "texts": lambda v: isinstance(v, list) and all(_is_text(x) for x in v),
              "text|texts": lambda v: _is_text(v) or (isinstance(v, list) and bool(v) and all(_is_text(x) for x in v)),
              "number": lambda v: not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)}[kind]
        return None if ok(value) else f"expected {_EXPECTED[kind]}, got {value!r}"
    if not isinstance(value, list) or not all(_is_text(x) for x in value):
        return None  # the field rule has already said what is wrong
    pos = row.get("text_pos")
    if kind == "gold_not_negative":
        return f"contains the gold label {pos!r}" if isinstance(pos, str) and pos in value else None
    if kind == "negatives" and not value:
        if task_type == "cls_contrast":
            return "empty: a classification row needs at least one negative label"
        return (f"empty, but neg_num={neg_num}; give negatives or set neg_num=0 (in-batch negatives only)")
    return None


def _check_row(row: dict, task_type: str, neg_num: int) -> list[tuple[str, str]]:
    """Problems of one row as (field, message) pairs, at most one per field (its first failing rule)."""
    problems, failed = [], set()
    for rule in get_task(task_type).rules:
        if rule.field in failed or (rule.when == "neg_num" and neg_num <= 0):
            continue
        message = _row_problem(rule, row, task_type, neg_num)
        if message:
            problems.append((rule.field, message))
            failed.add(rule.field)
    return problems


def _bad_rows(ds: datasets.Dataset, task_type: str, neg_num: int, limit: int,
              batch_rows: int = 1 << 16) -> list[int]:
    """Indices of the first ``limit`` rows that :func:`_check_row` refuses, found by interpreting RULES with
    Arrow compute kernels over whole columns instead of a Python loop over rows (the loop dominated the time
    ``piccolo data validate`` took on 1M rows; see benchmarks/validate_speed.py). Blank means empty after
    Unicode whitespace trimming, which for Arrow and ``str.strip`` is the same set of code points.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def is_string(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    def is_list(t: pa.DataType) -> bool:
        return pa.types.is_list(t) or pa.types.is_large_list(t)

    def blank(arr: pa.Array) -> np.ndarray:  # (n,) True where not a non-blank string
        if not is_string(arr.type):  # numbers, lists, or all null: every row fails
            return np.ones(len(arr), bool)
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0)
        return pc.fill_null(empty, True).to_numpy(zero_copy_only=False)

    def list_bad(arr: pa.Array) -> np.ndarray:  # (n,) True where null, or an element is not a non-blank string
        bad = pc.is_null(arr).to_numpy(zero_copy_only=False).copy()
        flat, parents = pc.list_flatten(arr), pc.list_parent_indices(arr).to_numpy()
        if len(flat) and not is_string(flat.type):
            bad[parents] = True
        elif len(flat):
            bad[parents[blank(flat)]] = True
        return bad

    def lengths(arr: pa.Array) -> np.ndarray:
        return pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)

    def fails(rule: Rule, col) -> np.ndarray:
        arr = col(rule.field)
        if rule.kind == "text":
            return blank(arr)
        if rule.kind == "texts":
            return list_bad(arr) if is_list(arr.type) else np.ones(len(arr), bool)
        if rule.kind == "text|texts":
            return (list_bad(arr) | (lengths(arr) == 0)) if is_list(arr.type) else blank(arr)
        if rule.kind == "number":
            if pa.types.is_integer(arr.type):
                return pc.is_null(arr).to_numpy(zero_copy_only=False)
            if pa.types.is_floating(arr.type):
                return ~pc.fill_null(pc.is_finite(arr), False).to_numpy(zero_copy_only=False)
            return np.ones(len(arr), bool)
        if not is_list(arr.type):
            return np.zeros(len(arr), bool)  # the field rule refuses these rows
        if rule.kind == "negatives":
            return lengths(arr) == 0
        if rule.kind == "gold_not_negative":
            pos, out = col("text_pos"), np.zeros(len(arr), bool)
            flat, parents = pc.list_flatten(arr), pc.list_parent_indices(arr).to_numpy()
            if is_string(pos.type) and len(flat) and is_string(flat.type):
                same = pc.fill_null(pc.equal(flat, pc.take(pos, pa.array(parents))), False)
                out[parents[same.to_numpy(zero_copy_only=False)]] = True
            return out
        raise ValueError(f"no Arrow interpreter for rule kind {rule.kind!r}")

    rules = [r for r in get_task(task_type).rules if r.when == "always" or neg_num > 0]
    found: list[int] = []
    offset = 0
    for table in ds.with_format("arrow").iter(batch_size=batch_rows):
        for rb in table.to_batches():
            bad = np.zeros(rb.num_rows, bool)
            for rule in rules:
                bad |= fails(rule, rb.column)
            found += (np.flatnonzero(bad)[: limit - len(found)] + offset).tolist()
            offset += rb.num_rows
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
    expected = get_task(task_type).columns
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
