"""The journals of ``piccolo data synth``: append-only JSONL logs of every request's outcome.

One line per outcome, flushed and fsynced as soon as its batch returns: a usable reply
(``{"id", ..., "reply": text}``) or a failure after the retries (``{"id", ..., "failure": reason, "attempts": n}``,
reason one of :data:`FAILURES`). The last line of an id is its outcome: a failure may be followed by a reply
when a later run asks again (``--retry-failed``), a reply is final. Nothing is ever rewritten: a run killed
mid-write leaves at most a partial last line, which the next run cuts off.

Introduced in notebooks/10_synthetic_data.ipynb.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .backends import SynthError

# why a reply that arrived was still unusable after every retry
FAILURES = ("empty_reply", "cut_off", "malformed_tasks")  # null/blank; finish_reason length; brainstorm not a list


def read_journal(path: Path, failures: bool = False) -> list[dict]:
    """The reply records of an append-only JSONL log (with ``failures=True``: every record, failures too).

    An unterminated last line (a run killed mid-write) is cut off the file; a bad complete line raises
    :class:`SynthError` naming file and row.
    """
    if not path.exists():
        return []
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if len(complete) < len(raw):
        with path.open("r+b") as f:
            f.truncate(len(complete))
    records = []
    for row, line in enumerate(complete.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SynthError(f"{path}: row {row}: not valid JSON ({e}); the log is damaged: fix or delete that line") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or not (
                isinstance(rec.get("reply"), str) or rec.get("failure") in FAILURES):
            raise SynthError(f"{path}: row {row}: field 'id'/'reply': expected a record written by piccolo data synth")
        records.append(rec)
    return records if failures else [r for r in records if "reply" in r]


class Journal:
    """An append-only JSONL log of outcomes: ``append`` writes one whole line, flushed and fsynced.

    ``outcome``: id -> its last record. ``records``: the usable replies; ``failures``: ids whose outcome is a
    failure. An id that has a reply is never logged again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.outcome = {r["id"]: r for r in read_journal(path, failures=True)}
        self._file = path.open("ab")

    @property
    def ids(self) -> set[str]:
        """Ids with an outcome (a reply, or a failure after the retries)."""
        return set(self.outcome)

    @property
    def records(self) -> list[dict]:
        return [r for r in self.outcome.values() if "reply" in r]

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.outcome.values() if "failure" in r]

    def attempts(self, ident: str) -> int:
        """Attempts already spent on ``ident`` by failed runs (a retry continues with new seeds)."""
        return int(self.outcome.get(ident, {}).get("attempts", 0))

    def append(self, record: dict) -> None:
        if "reply" in self.outcome.get(record["id"], {}):
            return
        self._file.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.outcome[record["id"]] = record

    def close(self) -> None:
        self._file.close()
