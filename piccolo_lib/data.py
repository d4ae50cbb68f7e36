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


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSONL file; a bad line raises DataError naming the file and line."""
    raw = Path(path).read_bytes()
    rows = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: row {lineno}: invalid UTF-8 at byte {e.start} of the line") from None
        except json.JSONDecodeError as e:
            hint = " (truncated last line?)" if lineno >= raw.count(b"\n") else ""
            raise DataError(f"{path}: row {lineno}: not valid JSON{hint}: {e.msg}") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


Records = datasets.Dataset | list[dict]


def read_table(path: str | Path) -> Records:
    """Load one dataset from JSONL/JSON, CSV, TSV, Parquet, or a ``save_to_disk`` folder.

    JSONL comes back as a list of dicts, so rows with wrongly typed fields can be reported by
    :func:`validate` (Arrow would refuse the whole file with no row number); convert with
    :func:`to_dataset` once valid.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return datasets.load_from_disk(str(path))
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return read_jsonl(path)
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


def _check_row(row: dict, task_type: str, neg_num: int) -> list[tuple[str, str]]:
    """Problems of one row as (field, message) pairs."""
    problems = []
    if not _is_text(row.get("text")):
        problems.append(("text", f"expected a non-empty string, got {row.get('text')!r}"))
    if task_type == "cosent":
        if not _is_text(row.get("text_pair")):
            problems.append(("text_pair", f"expected a non-empty string, got {row.get('text_pair')!r}"))
        label = row.get("label")
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
            problems.append(("label", f"expected a finite number, got {label!r}"))
        return problems
    pos = row.get("text_pos")
    pos_list = pos if isinstance(pos, list) else [pos]
    if not pos_list or not all(_is_text(p) for p in pos_list):
        problems.append(("text_pos", f"expected a non-empty string or list of strings, got {pos!r}"))
    neg = row.get("text_neg")
    if not isinstance(neg, list) or not all(_is_text(n) for n in neg):
        problems.append(("text_neg", f"expected a list of non-empty strings, got {neg!r}"))
    elif neg_num > 0 and not neg:
        problems.append(("text_neg", f"empty, but neg_num={neg_num}; give negatives or set neg_num=0"))
    elif task_type == "cls_contrast" and isinstance(pos, str) and pos in neg:
        problems.append(("text_neg", f"contains the gold label {pos!r}"))
    return problems


def to_dataset(records: Records, source: str = "") -> datasets.Dataset:
    """An Arrow dataset from validated records."""
    if isinstance(records, datasets.Dataset):
        return records
    try:
        return datasets.Dataset.from_list(records)
    except (TypeError, ValueError) as e:  # pyarrow errors subclass these: e.g. an extra column of mixed types
        raise DataError(f"{source}: rows cannot be stored as one table: {e}") from None


def validate(ds: Records, source: str, *, task_type: str | None = None, neg_num: int | dict[str, int] = 0,
             batch_size: int | None = None) -> tuple[str, list[str]]:
    """Check a dataset against its record type.

    Returns:
        (task_type, errors): the canonical type, and one message per problem, each naming the
        source, the 1-based row and the field. Empty errors means the dataset is usable.
    """
    errors: list[str] = []
    columns = ds.column_names if isinstance(ds, datasets.Dataset) else list(ds[0]) if ds else []
    if "type" in columns:
        types = {str(r.get("type")) for r in ds} if isinstance(ds, list) else set(ds.unique("type"))
        if len(types) > 1:
            return "", [f"{source}: field 'type': mixed record types {sorted(map(str, types))} in one dataset; "
                        "split them into one dataset per type (every batch must have one loss)"]
        found = types.pop() if types else None
        if task_type is not None and found is not None and canonical_type(task_type) != canonical_type(found):
            errors.append(f"{source}: field 'type': rows say {found!r} but the config says {task_type!r}")
        task_type = task_type or found
    if task_type is None:
        return "", [f"{source}: no 'type' column and no task type given; add type: retri_contrast|cosent|cls_contrast"]
    try:
        task_type = canonical_type(task_type)
    except ValueError as e:
        return "", [f"{source}: field 'type': {e}"]
    if isinstance(neg_num, dict):  # per record type, e.g. {"retri_contrast": 1, "cls_contrast": 10}
        neg_num = neg_num.get(task_type, 0)
    missing = [c for c in RECORD_COLUMNS[task_type] if c not in columns]
    if missing:
        return task_type, [f"{source}: missing column(s) {missing} for type {task_type!r}; "
                           f"found {columns}, expected {list(RECORD_COLUMNS[task_type])}"]
    for i, row in enumerate(ds):
        for field, msg in _check_row(row, task_type, neg_num):
            errors.append(f"{source}: row {i + 1}: field {field!r}: {msg}")
        if len(errors) >= MAX_ERRORS:
            errors.append(f"{source}: stopped after {MAX_ERRORS} errors")
            break
    if batch_size and len(ds) < batch_size:
        errors.append(f"{source}: {len(ds)} rows, fewer than one batch ({batch_size}); "
                      "lower batch_size or merge it with a dataset of the same type")
    return task_type, errors


def read_meta_list(path: str | Path, root: str | Path | None = None) -> list[tuple[Path, int]]:
    """Parse the reference meta list: ``folder repeat_count`` per line, resolved against ``root``."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    entries, errors = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
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
