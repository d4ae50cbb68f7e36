"""Piccolo2 training data: the three record types, loading, and C-MTEB conversion.

Record types (report, 'Multi-task hybrid loss training'; the reference code's ``type`` field picks the loss):

==================  ===================================================  ==================
``type``            fields                                               task families
==================  ===================================================  ==================
``retri_contrast``  text, text_pos (str or list), text_neg: [str]        retrieval, reranking
``cosent``          text, text_pair, label: number                       STS, pair classification
``cls_contrast``    text, text_pos: label text, text_neg: [label texts]  classification, clustering
==================  ===================================================  ==================

Files: JSONL, CSV/TSV, Parquet, or a folder written by ``datasets.Dataset.save_to_disk`` (the
reference layout), and the reference's meta list (one ``folder repeat_count`` a line). The checks
live in :mod:`piccolo_lib.validation` (``validate`` is re-exported here), batching in
:mod:`piccolo_lib.sampling`.

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..errors import UserError
from ..tasks import TASKS
from .validation import RECORD_COLUMNS, Records, columns, validate  # noqa: F401 (RECORD_COLUMNS re-exported)

LOSS_NAMES = {name: task.loss_label for name, task in TASKS.items()}  # how the data summary names each loss


class DataError(UserError, ValueError):
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

    columns_ = columns(records)  # every row's keys (Dataset.from_list keeps only the first row's)
    try:
        table = pa.Table.from_pydict({c: [r.get(c) for r in records] for c in columns_})
    except (TypeError, ValueError) as e:  # pyarrow errors subclass these: e.g. an extra column of mixed types
        raise DataError(f"{source}: rows cannot be stored as one table: {e}") from None
    # a random fingerprint, as datasets gives unhashable data: hashing 1M rows took longer than reading them
    return datasets.Dataset(table, fingerprint=generate_random_fingerprint())


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
    ``neg_num``: one number, or a dict keyed by record type and/or dataset name (the name wins).
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
        own = neg_num.get(path.name.split(".")[0]) if isinstance(neg_num, dict) else None
        task_type, errs = validate(ds, str(path), neg_num=neg_num if own is None else own, batch_size=batch_size)
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


def as_retrieval(s: TrainSet) -> TrainSet:
    """A dataset re-expressed as InfoNCE rows: the "retrieval loss only" baseline of the report's ablation.

    Piccolo2's ablation (report, 'Ablation studies') starts from every dataset trained with the retrieval loss, then
    gives STS/pair data CoSENT and classification/clustering data the label loss. This builds the baseline:

    - ``cosent`` rows whose score is in the upper half of the dataset's score range become
      (query = text, positive = text_pair) with no hard negatives; the other pairs are dropped
      (InfoNCE has no use for a graded "not similar" pair).
    - ``cls_contrast`` rows keep their text as the query, the label text as the positive and the other
      label texts as hard negatives; other rows' labels become in-batch candidates too (the same label
      text in another row is a false negative, masked by text identity in the loss).
    - ``retri_contrast`` sets are returned unchanged.
    """
    if s.task_type == "retri_contrast":
        return s
    cols = s.dataset.to_dict()
    if s.task_type == "cosent":
        lo, hi = min(cols["label"]), max(cols["label"])
        keep = [i for i, y in enumerate(cols["label"]) if y >= (lo + hi) / 2 and hi > lo]
        rows = {"text": [cols["text"][i] for i in keep], "text_pos": [cols["text_pair"][i] for i in keep],
                "text_neg": [[] for _ in keep]}
    else:
        rows = {"text": cols["text"], "text_pos": cols["text_pos"], "text_neg": cols["text_neg"]}
    rows["type"] = ["retri_contrast"] * len(rows["text"])
    if not rows["text"]:
        raise DataError(f"{s.source}: no row left after converting {s.task_type} data to retrieval pairs")
    return TrainSet(name=s.name, task_type="retri_contrast", dataset=datasets.Dataset.from_dict(rows),
                    source=s.source, repeat=s.repeat)
