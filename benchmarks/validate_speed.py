"""`piccolo data validate` on N rows (issue #9: 1M rows in under a minute on CPU).

Writes N rows (a third each of retrieval, STS and classification, built from data_samples/ with the
row number appended so no two rows are equal) as three JSONL files and a meta list, then times:

- ``validate_s``: ``piccolo_lib.cli.main(["data", "validate", meta_list])`` in this process (reading,
  checking, and building the Arrow datasets, as ``piccolo train`` does before any model is built);
- ``cli_s``: the same as a fresh ``piccolo data validate`` process, interpreter start and imports included;
- ``error_last_row_s``: the same files with the very last row broken (an empty text), the worst case for
  finding an error; ``error_message_ok`` says the message named that file, line and field;
- ``exact_reader_s``: the retrieval file alone with ``text_pos`` a string in some rows and a list in
  others, which Arrow's reader refuses, so the exact per-line reader does the work (the slow path).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from piccolo_lib.cli import main as cli
from piccolo_lib.data import read_jsonl
from piccolo_lib.paths import REPO_ROOT

FILES = ("retrieval", "sts", "classification")


def write_rows(folder: Path, n: int) -> Path:
    """N rows in three JSONL files and a meta list; returns the meta list."""
    for k, name in enumerate(FILES):
        source = read_jsonl(REPO_ROOT / "data_samples" / "train" / f"{name}.jsonl")
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for i in range(n // len(FILES) + (k < n % len(FILES))):  # exactly n rows in all
                row = source[i % len(source)]
                f.write(json.dumps({**row, "text": f"{row['text']} {i}"}, ensure_ascii=False) + "\n")
    meta = folder / "meta_list.txt"
    meta.write_text("".join(f"{name}.jsonl 1\n" for name in FILES), encoding="utf-8")
    return meta


def _timed_cli(args: list[str]) -> tuple[float, int, str]:
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli(args)
    return time.perf_counter() - t0, code, err.getvalue()


def run(quick: bool = False) -> dict:
    """Time validation of 20k rows (quick) or 1M rows; see the module docstring for the keys."""
    n = 20_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="piccolo-validate-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        meta = write_rows(folder, n)
        generate_s = time.perf_counter() - t0
        rows = n
        size = sum((folder / f"{name}.jsonl").stat().st_size for name in FILES)

        validate_s, code, _ = _timed_cli(["data", "validate", str(meta)])
        assert code == 0, "the generated rows must be valid"
        t0 = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "piccolo"), "data", "validate", str(meta)], check=True,
                       capture_output=True)
        cli_s = time.perf_counter() - t0

        last = folder / "classification.jsonl"
        lines = last.read_text(encoding="utf-8").splitlines()
        broken = json.loads(lines[-1])
        lines[-1] = json.dumps({**broken, "text": " "}, ensure_ascii=False)
        last.write_text("\n".join(lines) + "\n", encoding="utf-8")
        error_s, code, err = _timed_cli(["data", "validate", str(meta)])
        error_ok = code == 1 and f"{last}: row {len(lines)}: field 'text'" in err

        retrieval = folder / "retrieval.jsonl"
        rows_r = retrieval.read_text(encoding="utf-8").splitlines()
        for i in range(0, len(rows_r), 2):  # every other row: text_pos as a one-element list
            row = json.loads(rows_r[i])
            rows_r[i] = json.dumps({**row, "text_pos": [row["text_pos"]]}, ensure_ascii=False)
        retrieval.write_text("\n".join(rows_r) + "\n", encoding="utf-8")
        exact_s, code, _ = _timed_cli(["data", "validate", str(retrieval)])
        assert code == 0, "mixed str/list text_pos is valid data"
    return {
        "quick": quick, "rows": rows, "megabytes": round(size / 2**20, 1), "generate_s": round(generate_s, 2),
        "validate_s": round(validate_s, 2), "rows_per_s": round(rows / validate_s), "cli_s": round(cli_s, 2),
        "error_last_row_s": round(error_s, 2), "error_message_ok": error_ok,
        "exact_reader_rows": len(rows_r), "exact_reader_s": round(exact_s, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
