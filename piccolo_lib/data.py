"""Piccolo2 training data: the three record types, loading, validation, and C-MTEB conversion.

Record types (report section 2.2; the reference code's ``type`` field picks the loss):

==================  ===================================================  ==================
``type``            fields                                               task families
==================  ===================================================  ==================
``retri_contrast``  text, text_pos (str or list), text_neg: [str]        retrieval, reranking
``cosent``          text, text_pair, label: number                       STS, pair classification
``cls_contrast``    text, text_pos: label text, text_neg: [label texts]  classification, clustering
==================  ===================================================  ==================

Files: JSONL, CSV/TSV, Parquet, or a folder written by ``datasets.Dataset.save_to_disk`` (the
reference layout), and the reference's meta list (one ``folder repeat_count`` a line). Batching
lives in :mod:`piccolo_lib.sampling`.

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import datasets

from .losses import canonical_type

RECORD_COLUMNS = {
    "retri_contrast": ("text", "text_pos", "text_neg"),
    "cosent": ("text", "text_pair", "label"),
    "cls_contrast": ("text", "text_pos", "text_neg"),
}
LOSS_NAMES = {"retri_contrast": "InfoNCE (tau 0.01)", "cosent": "CoSENT (tau 0.05, w 0.04)",
              "cls_contrast": "label contrast (tau 0.05, w 0.2)"}
MAX_ERRORS = 20  # per dataset: enough to see the pattern, not a wall of text


class DataError(ValueError):
    """Bad training data. The message names the file, the row (1-based) and the field."""


@dataclass
class TrainSet:
    """One training dataset: all rows share one record type, so every batch of it has one loss."""

    name: str
    task_type: str
    dataset: datasets.Dataset
    source: str
    repeat: int = 1


class Rows(list):
    """JSONL rows (dicts) and, in ``lines``, the 1-based file line of each (blank lines are skipped)."""

    lines: list[int]


def read_jsonl(path: Path) -> Rows:
    """Read a JSONL file; a bad line raises DataError naming the file and line.

    The exact reader, one ``json.loads`` per line: :func:`read_table` first tries Arrow's
    multithreaded JSON parser and comes here when Arrow refuses a file, to name the bad line.
    """
    raw = Path(path).read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (some editors write one)
        raw = raw[3:]
    rows = Rows()
    rows.lines = []
    last = raw.count(b"\n") + (not raw.endswith(b"\n"))
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: row {lineno}: invalid UTF-8 at byte {e.start} of the line") from None
        except json.JSONDecodeError as e:
            hint = " (truncated last line?)" if lineno == last else ""
            raise DataError(f"{path}: row {lineno}: not valid JSON{hint}: {e.msg} at column {e.colno}") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
        rows.lines.append(lineno)
    return rows


def _read_jsonl_arrow(path: Path) -> datasets.Dataset | None:
    """The fast path: Arrow's multithreaded C++ JSON reader (a 1M-row file in seconds, where
    ``json.loads`` per line takes tens). None when Arrow refuses the file: bad JSON or UTF-8, or a
    field whose type changes between rows (``text_pos`` str in one row, list in another), which
    the exact reader then handles or names.
    """
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        table = pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 24))
        table.validate(full=True)  # the reader does not check UTF-8; full validation does
    except (pa.ArrowException, UnicodeDecodeError, OSError):
        return None
    stat = path.stat()  # a cheap fingerprint instead of datasets hashing the whole table
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    return datasets.Dataset(table, fingerprint="jsonl-" + hashlib.sha256(key).hexdigest()[:16])


def _line_numbers(path: Path) -> list[int]:
    """1-based line of each non-blank line of a JSONL file (rows skip blank lines; messages name lines)."""
    with path.open("rb") as f:
        return [i for i, line in enumerate(f, start=1) if line.strip() and line.strip() != b"\xef\xbb\xbf"]


Records = datasets.Dataset | list[dict]


def read_table(path: str | Path) -> Records:
    """Load one dataset from JSONL/JSON, CSV, TSV, Parquet, or a ``save_to_disk`` folder.

    JSONL that Arrow reads comes back as a Dataset; JSONL that it refuses comes back as
    :class:`Rows` (dicts), so :func:`validate` can report wrongly typed fields by row (Arrow would
    refuse the whole file with no row number); convert with :func:`to_dataset` once valid.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return datasets.load_from_disk(str(path))
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return _read_jsonl_arrow(path) or read_jsonl(path)
    if suffix in (".csv", ".tsv"):
        import pandas as pd

        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False)
        for col in ("text_neg", "text_pos"):  # list columns are stored as JSON strings in CSV
            if col in frame and frame[col].astype(str).str.startswith("[").any():
                frame[col] = [json.loads(v) if str(v).startswith("[") else v for v in frame[col]]
        return datasets.Dataset.from_pandas(frame, preserve_index=False)
    if suffix == ".parquet":
        return datasets.Dataset.from_parquet(str(path))
    raise DataError(f"{path}: unsupported format {suffix!r}; expected .jsonl, .csv, .tsv, .parquet or a folder")


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
    elif task_type == "cls_contrast" and len(neg) < neg_num:
        problems.append(("text_neg", f"{len(neg)} label negatives, fewer than cls_neg_num={neg_num}; "
                                     f"set cls_neg_num to at most {len(neg)} or list more labels"))
    elif neg_num > 0 and not neg:
        problems.append(("text_neg", f"empty, but neg_num={neg_num}; give negatives or set neg_num=0 "
                                     "(in-batch negatives only)"))
    return problems


def _bad_rows(ds: datasets.Dataset, task_type: str, neg_num: int, limit: int,
              batch_rows: int = 1 << 16) -> list[int]:
    """Indices of the first ``limit`` rows that :func:`_check_row` refuses, found with Arrow compute
    kernels over whole columns instead of a Python loop over rows (the loop dominated the time
    ``piccolo data validate`` took on 1M rows; see benchmarks/validate_speed.py).

    Mirrors :func:`_check_row` (tests/test_data.py checks both agree on tricky rows); blank means
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
                        bad |= neg_len < neg_num
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


def to_dataset(records: Records, source: str = "") -> datasets.Dataset:
    """An Arrow dataset from validated records."""
    if isinstance(records, datasets.Dataset):
        return records
    records = list(records)
    if any(isinstance(r.get("text_pos"), list) for r in records):  # str in some rows, lists in others:
        records = [{**r, "text_pos": [r["text_pos"]]} if isinstance(r.get("text_pos"), str) else r
                   for r in records]  # one Arrow column type (a 1-element list samples the same positive)
    import pyarrow as pa
    from datasets.fingerprint import generate_random_fingerprint

    columns = _columns(records)  # every row's keys (Dataset.from_list keeps only the first row's)
    try:
        table = pa.Table.from_pydict({c: [r.get(c) for r in records] for c in columns})
    except (TypeError, ValueError) as e:  # pyarrow errors subclass these: e.g. an extra column of mixed types
        raise DataError(f"{source}: rows cannot be stored as one table: {e}") from None
    # a random fingerprint, as datasets gives unhashable data: hashing 1M rows took longer than reading them
    return datasets.Dataset(table, fingerprint=generate_random_fingerprint())


def _columns(ds: Records) -> list[str]:
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
    columns = _columns(ds)
    line = _line_mapper(ds, source)
    if "type" in columns:
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
    missing = [c for c in expected if c not in columns]
    if missing:
        hints = [f"{c!r} for {m!r}" for m in missing
                 for c in difflib.get_close_matches(m, [c for c in columns if c not in expected], n=1, cutoff=0.6)]
        hint = f"; misspelled? found {', '.join(hints)}" if hints else ""
        return task_type, [f"{source}: missing column(s) {missing} for type {task_type!r}{hint}; "
                           f"found {columns}, expected {list(expected)}"]
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
    if isinstance(ds, Rows):
        return lambda i: ds.lines[i]
    path = Path(source)
    if isinstance(ds, datasets.Dataset) and path.suffix.lower() in (".jsonl", ".json") and path.is_file():
        lines: list[int] = []
        def line(i: int) -> int:
            if not lines:
                lines.extend(_line_numbers(path))
            return lines[i] if i < len(lines) else i + 1
        return line
    return lambda i: i + 1


def read_meta_list(path: str | Path, root: str | Path | None = None) -> list[tuple[Path, int]]:
    """Parse the reference meta list: ``folder repeat_count`` per line, resolved against ``root``."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    entries, errors = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such meta list") from None
    except UnicodeDecodeError as e:
        row = path.read_bytes()[:e.start].count(b"\n") + 1
        raise DataError(f"{path}: row {row}: invalid UTF-8") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("+").isdigit() or int(parts[1]) < 1:
            errors.append(f"{path}: row {lineno}: expected 'folder repeat_count' with a positive integer, got {line!r}")
            continue
        folder = root / parts[0]
        if not folder.exists():
            errors.append(f"{path}: row {lineno}: folder {str(folder)!r} does not exist (root {str(root)!r})")
            continue
        entries.append((folder, int(parts[1])))
    if errors:
        raise DataError("\n".join(errors))
    return entries


def load_train_sets(paths: list[str | Path] | str | Path, *, root: str | Path | None = None,
                    neg_num: int | dict[str, int] = 0, batch_size: int | None = None) -> list[TrainSet]:
    """Load and validate every training dataset; raise one DataError listing all problems.

    ``paths`` is a meta list (``.txt``), or one or more data files/folders (repeat 1 each).
    Nothing is trained on bad data: this runs before any model is built.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    entries: list[tuple[Path, int]] = []
    for p in map(Path, paths):
        entries += read_meta_list(p, root) if p.suffix == ".txt" else [(p, 1)]
    sets, errors = [], []
    for path, repeat in entries:
        try:
            ds = read_table(path)
        except DataError as e:
            errors.append(str(e))
            continue
        task_type, errs = validate(ds, str(path), neg_num=neg_num, batch_size=batch_size)
        errors += errs
        if errs:
            continue
        try:
            ds = to_dataset(ds, str(path))
        except DataError as e:
            errors.append(str(e))
            continue
        name = path.name.split(".")[0]
        if any(s.name == name for s in sets):
            name = f"{name}_{len(sets)}"
        sets.append(TrainSet(name=name, task_type=task_type, dataset=ds, source=str(path), repeat=repeat))
    if errors:
        raise DataError("invalid training data:\n" + "\n".join(errors))
    return sets


def summary(sets: list[TrainSet]) -> str:
    """A table: dataset, type, rows, repeat, the loss it routes to."""
    lines = [f"{'dataset':<24}{'type':<16}{'rows':>8}{'repeat':>8}  loss"]
    for s in sets:
        lines.append(f"{s.name:<24}{s.task_type:<16}{len(s.dataset):>8}{s.repeat:>8}  {LOSS_NAMES[s.task_type]}")
    return "\n".join(lines)


def from_classification(texts: list[str], labels: list[str]) -> list[dict]:
    """C-MTEB-style classification rows (text, label) -> ``cls_contrast`` records.

    ``text_pos`` is the label; ``text_neg`` all other labels of the same dataset (sorted).
    """
    label_set = sorted(set(labels))
    return [{"text": t, "text_pos": y, "text_neg": [o for o in label_set if o != y], "type": "cls_contrast"}
            for t, y in zip(texts, labels)]


def from_pairs(texts: list[str], pairs: list[str], scores: list[float]) -> list[dict]:
    """C-MTEB-style STS / pair-classification rows -> ``cosent`` records."""
    return [{"text": a, "text_pair": b, "label": float(s), "type": "cosent"} for a, b, s in zip(texts, pairs, scores)]
