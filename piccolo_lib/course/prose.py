"""Prose that matches its page: every measured number a markdown cell quotes must be on the page it sits on.

A notebook's markdown is written once; its outputs change whenever the code, the data or a dependency changes.
A number typed into the prose ("LoRA trails full fine-tuning by 3.1 points") then drifts from the output beside
it. :func:`unbacked_numbers` lists, for an executed notebook, every decimal number and percentage of its markdown
that

* is not printed in any output of the page (allowing for rounding: a quoted 33.7 is backed by an output 33.73,
  9.3% by 0.093), and
* does not stand in the page's code (a knob such as ``lr = 3e-5`` or ``0.05``), and
* is not marked as a figure from elsewhere: its sentence cites a source (``report``, ``paper``,
  ``leaderboard``, ``RESULTS.md``, ``published``), or says it is an example (``e.g.``, ``for example``, ...).

Numbers inside inline code, LaTeX (``$...$``) and links are formulas, names and addresses, not claims. A claim
that depends on a number ("MRL helps at 96 dims") belongs in an output, printed by the code that measured it.

Used by tests/test_pages.py on the published course (docs/course).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

NUMBER = re.compile(r"(?<![\w.,/-])(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?(%)?(?![\w.]*\w)")
SOURCES = re.compile(r"\b(report|paper|leaderboard|RESULTS\.md|published|reference code)\b", re.I)
EXAMPLES = re.compile(r"(\be\.g\b|\bfor example\b|\bfor instance\b|\bsuch as\b|\bimagine\b|\bsuppose\b)", re.I)
_SKIP = re.compile(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\]\([^)]*\)|https?://\S+|arXiv \d{4}\.\d{4,5}", re.S)
_OUTPUT_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?")


def _sentences(text: str) -> list[str]:
    text = text.replace("e.g.", "e.g").replace("i.e.", "i.e").replace("vs.", "vs")  # not sentence ends
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n\s*\n|\n\s*[-*|] |\n\s*\d+\. ", text) if s.strip()]


def quoted_numbers(markdown: str) -> list[tuple[str, str]]:
    """(number as written, its sentence) for every decimal number, percentage or number with thousands separators
    (4,700) of ``markdown`` outside code, LaTeX, links and arXiv ids, whose sentence names no source or example."""
    out = []
    for sentence in _sentences(_SKIP.sub(" ", markdown)):
        if SOURCES.search(sentence) or EXAMPLES.search(sentence):
            continue
        for m in NUMBER.finditer(sentence):
            whole, frac, pct = m.groups()
            if whole is None and frac is None:
                continue
            if frac or pct or (whole and "," in whole):  # measurements; bare small integers are mostly structure
                out.append((m.group(0), sentence.strip()))
    return out


def _values(text: str) -> list[float]:
    vals = []
    for tok in _OUTPUT_NUMBER.findall(text):
        try:
            vals.append(float(tok.replace(",", "")))
        except ValueError:
            pass
    return vals


def _backed(quoted: str, outputs: list[float], code: str) -> bool:
    text = quoted.replace(",", "")
    if text in code:
        return True
    pct = text.endswith("%")
    value = float(text.rstrip("%"))
    decimals = len(text.rstrip("%").split(".")[1]) if "." in text else 0
    half = 0.5 * 10 ** -decimals + 1e-12
    for v in outputs:
        for candidate in ((v, v * 100) if pct else (v,)):
            if abs(candidate - value) <= half:
                return True
    return False


def _output_text(cell: dict) -> str:
    parts = []
    for o in cell.get("outputs", []):
        parts.append("".join(o.get("text", "")))
        for mime, data in o.get("data", {}).items():
            if mime.startswith("text/"):
                parts.append("".join(data) if isinstance(data, list) else str(data))
    return "\n".join(parts)


def unbacked_numbers(executed: Path | dict) -> list[str]:
    """One line per number a markdown cell of an executed notebook quotes that nothing on its page backs."""
    nb = json.loads(Path(executed).read_text(encoding="utf-8")) if not isinstance(executed, dict) else executed
    cells = nb["cells"]
    outputs = _values("\n".join(_output_text(c) for c in cells if c["cell_type"] == "code"))
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for number, sentence in quoted_numbers("".join(cell["source"])):
            if not _backed(number, outputs, code):
                problems.append(f"cell {i}: {number!r} is in no output of the page: {sentence[:120]!r}")
    return problems
