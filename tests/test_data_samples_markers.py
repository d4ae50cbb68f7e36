"""No surface marker decides relevance in data_samples' retrieval and reranking files (issue 24).

Every fixed string that recurs in more than 10% of a view's passages (train: retrieval + reranking rows; eval
retrieval; eval reranking) is discovered generically: character n-grams of 2 to 10 characters, and the first
and last 1 to 8 characters of a passage as "starts with" / "ends with" patterns. For each, its rate among
positives and its rate among hard negatives must differ by at most 10 points. A hard negative is a passage
written to compete with the query: a train row's ``text_neg``, a reranking row's ``negative``, and for eval
retrieval the other passages of the query's ``group`` (its topic or near-miss family); the news distractors
the local benchmark adds at evaluation time are not in these files. Each query weighs the same on both sides
(the negatives' rate is averaged per query first), so a family with 39 siblings does not outweigh a topic
with 3.

The rate test alone would not have caught the old template: "相关问题：" ended 82% of the eval queries'
relevant passages and 91% of the other passages, a 9-point gap, because it sat on nearly every passage. What made it learnable was
its content, the query's own words after it in a distractor (156 of 600 eval queries). So a second test
checks that no query appears word for word in a passage that does not answer it, and the third that the
string is gone.
"""

import json
from collections import Counter, defaultdict
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data_samples"
SHARE, MAX_GAP = 0.10, 0.10


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def views(root: Path = DATA) -> dict[str, list[tuple[str, list[str]]]]:
    """{view: [(positive, [hard negatives]), ...]}, one entry per query."""
    first = lambda p: p if isinstance(p, str) else p[0]  # noqa: E731
    train = [(first(r["text_pos"]), r["text_neg"]) for name in ("retrieval.jsonl", "reranking.jsonl")
             for r in _rows(root / "train" / name)]
    corpus = {d["id"]: d for d in _rows(root / "eval" / "retrieval_corpus.jsonl")}
    relevant = defaultdict(set)
    for r in _rows(root / "eval" / "retrieval_qrels.jsonl"):
        relevant[r["query_id"]].add(r["corpus_id"])
    retrieval = []
    for q in _rows(root / "eval" / "retrieval_queries.jsonl"):
        (pos,) = relevant[q["id"]]
        negs = [d["text"] for i, d in corpus.items() if d["group"] == q["group"] and i not in relevant[q["id"]]]
        retrieval.append((corpus[pos]["text"], negs))
    reranking = [(r["positive"][0], r["negative"]) for r in _rows(root / "eval" / "reranking.jsonl")]
    return {"train": train, "eval retrieval": retrieval, "eval reranking": reranking}


def recurring_strings(passages: set[str], share: float = SHARE) -> dict[str, float]:
    """{pattern: share of passages holding it} for every pattern in more than ``share`` of the passages.
    Patterns: n-grams (n = 2..10), ``^prefix`` and ``suffix$`` (1..8 characters)."""
    counts: Counter = Counter()
    for p in passages:
        grams = {p[i:i + n] for n in range(2, 11) for i in range(len(p) - n + 1)}
        grams |= {"^" + p[:k] for k in range(1, 9)} | {p[-k:] + "$" for k in range(1, 9)}
        counts.update(grams)
    return {g: c / len(passages) for g, c in counts.items() if c / len(passages) > share}


def holds(pattern: str, text: str) -> bool:
    if pattern.startswith("^"):
        return text.startswith(pattern[1:])
    if pattern.endswith("$"):
        return text.endswith(pattern[:-1])
    return pattern in text


def rate_gaps(view: list[tuple[str, list[str]]]) -> list[tuple[float, str, float, float]]:
    """[(|gap|, pattern, rate among positives, rate among hard negatives)], largest gap first."""
    passages = {t for pos, negs in view for t in (pos, *negs)}
    out = []
    for g in recurring_strings(passages):
        pos = sum(holds(g, p) for p, _ in view) / len(view)
        neg = sum(sum(holds(g, t) for t in negs) / len(negs) for _, negs in view) / len(view)
        out.append((abs(pos - neg), g, pos, neg))
    return sorted(out, reverse=True)


def test_the_pattern_finder_finds_a_planted_template():
    """The detector itself, on a made-up view: a suffix on every negative and no positive is found and flagged."""
    view = [(f"答案{i}，办理需要三天。", [f"其他{i}{j}，相关问题：别的" for j in range(3)]) for i in range(20)]
    gaps = {g: gap for gap, g, _, _ in rate_gaps(view)}
    assert gaps["相关问题："] == 1.0 and gaps["别的$"] == 1.0 and gaps["^答案"] == 1.0
    assert recurring_strings({"abc", "abd", "xyz"}, share=0.5) == {"ab": 2 / 3, "^a": 2 / 3, "^ab": 2 / 3}


def test_no_recurring_string_marks_positives_or_hard_negatives():
    for name, view in views().items():
        gaps = rate_gaps(view)
        assert gaps, f"{name}: no recurring string found at all (the detector is broken)"
        bad = [(g, round(p, 3), round(n, 3)) for gap, g, p, n in gaps if gap > MAX_GAP]
        assert not bad, f"{name}: strings in >10% of passages with positive vs hard-negative rates >10 points apart: {bad[:5]}"


def test_no_query_appears_in_a_passage_that_does_not_answer_it():
    corpus = {d["id"]: d["text"] for d in _rows(DATA / "eval" / "retrieval_corpus.jsonl")}
    relevant = defaultdict(set)
    for r in _rows(DATA / "eval" / "retrieval_qrels.jsonl"):
        relevant[r["query_id"]].add(r["corpus_id"])
    leaks = [q["text"] for q in _rows(DATA / "eval" / "retrieval_queries.jsonl")
             if any(q["text"] in t for i, t in corpus.items() if i not in relevant[q["id"]])]
    leaks += [r["query"] for r in _rows(DATA / "eval" / "reranking.jsonl") if any(r["query"] in t for t in r["negative"])]
    leaks += [r["text"] for name in ("retrieval.jsonl", "reranking.jsonl") for r in _rows(DATA / "train" / name)
              if any(r["text"] in t for t in r["text_neg"])]
    assert not leaks, f"{len(leaks)} queries appear word for word in a passage that does not answer them: {leaks[:3]}"


def test_the_old_template_is_gone_and_every_eval_row_has_a_kind():
    for path in sorted(DATA.glob("*/*.jsonl")):
        assert "相关问题" not in path.read_text(encoding="utf-8"), path
    kinds = Counter(r["kind"] for r in _rows(DATA / "eval" / "retrieval_queries.jsonl"))
    assert kinds == {"plain": 400, "nearmiss": 200}
    assert Counter(r["kind"] for r in _rows(DATA / "eval" / "reranking.jsonl")) == {"plain": 200, "nearmiss": 100}
