"""Files that appear whole or not at all, and logs that only grow: the one place piccolo_lib writes them.

A run can be killed at any instruction (SIGKILL, a full disk, a preempted node). Two kinds of file survive that:

* **Atomic files and folders** (:func:`atomic_write`, :func:`atomic_path`): the content is written under a
  temporary name in the same folder, flushed to disk, and renamed over the target with ``os.replace``, one
  system call that readers see as before or after, never between. An interrupted write leaves the old file
  (or none) and no half file; the temporary is removed.
* **Append-only JSONL logs** (:func:`append_jsonl`, :func:`read_jsonl_tolerant`): each record is one line
  written in one call and flushed. A kill can tear only the last line, so a reader drops a torn last line
  with a warning naming file and line, while a bad line anywhere else is damage nobody should train past:
  a one-line :class:`~piccolo_lib.errors.DamagedFile` naming file and line.

Written by hand (about 100 lines): the standard library has the pieces (``tempfile``, ``os.replace``,
``os.fsync``) but no atomic writer, and the packages that offer one (``atomicwrites``, archived) do files
only, not folders, and no JSONL. Introduced in notebooks/06_multi_device.ipynb (``metrics.jsonl``, resume).

A ground module: it imports nothing of piccolo_lib but :mod:`~piccolo_lib.errors`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import DamagedFile


def _temp_name(path: Path, kind: str) -> Path:
    """A hidden sibling of ``path`` no other writer uses (``.NAME.<random>.<kind>``); same folder, same file system."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.{kind}")


def _fsync_tree(path: Path) -> None:
    """Flush a file, or every file under a folder, to disk, so the rename publishes data that is really there."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        with f.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without an error, it replaces ``path``.

    The caller writes a file *or a folder* at the yielded path (it does not exist yet). On success the
    temporary is flushed and renamed over ``path`` with ``os.replace``; on any exception (or a kill) ``path``
    keeps its old content and the temporary is removed. A folder that already exists is first moved aside
    and deleted after the rename (``os.replace`` cannot replace a non-empty folder): a kill between those
    two renames leaves the old folder as ``.NAME.*.old`` beside it, never a half-written one at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path, "tmp")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written to the temporary path of {path}")
        _fsync_tree(tmp)
        if tmp.is_dir() and path.is_dir():
            aside = _temp_name(path, "old")
            os.replace(path, aside)
            os.replace(tmp, path)
            _remove(aside)
        else:
            os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        _remove(tmp)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically: readers see the old or the new file."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def jsonl_text(records: Iterable[Any]) -> str:
    """Records as JSONL: one ``json.dumps(record, ensure_ascii=False)`` line each (Chinese stays readable)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _cut_torn_tail(path: Path) -> None:
    """Before appending: a last line without its newline is either complete (then terminate it) or torn (cut
    it off, with a warning), so a new record never glues onto a fragment in the middle of the file."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        raw = path.read_bytes()
    start = raw.rfind(b"\n") + 1
    try:
        json.loads(raw[start:])
        complete = True
    except (json.JSONDecodeError, UnicodeDecodeError):
        complete = False
    with path.open("r+b") as f:
        if complete:
            f.seek(size)
            f.write(b"\n")
        else:
            f.truncate(start)
            line = raw.count(b"\n", 0, start) + 1
            warnings.warn(f"{path}: line {line}: torn last line dropped (a run stopped mid-write)",
                          UserWarning, stacklevel=3)


def append_jsonl(path: str | Path, records: Iterable[Any], *, fsync: bool = True) -> None:
    """Append records to a JSONL log, each as one whole line, flushed (and fsynced unless ``fsync=False``).

    A torn last line left by an earlier kill is cut off first (with a warning), so the log stays readable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        _cut_torn_tail(path)
    with path.open("ab") as f:
        f.write(jsonl_text(records).encode("utf-8"))
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def read_jsonl_tolerant(path: str | Path) -> list[Any]:
    """The records of an append-only JSONL log; blank lines are skipped.

    A last line that is not valid JSON (torn by a kill mid-write) is dropped with a ``UserWarning`` naming file
    and line; a bad line before it raises :class:`~piccolo_lib.errors.DamagedFile` naming file and line. A
    missing file is an empty log.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for i, line in enumerate(lines[: last + 1]):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            if i == last:
                warnings.warn(f"{path}: line {i + 1}: torn last line dropped (a run stopped mid-write)",
                              UserWarning, stacklevel=2)
                break
            raise DamagedFile(f"{path}: line {i + 1}: not valid JSON ({err}); only a torn last line is "
                              "tolerated: fix or delete that line") from None
    return records
