"""data_samples/eval is held out: no eval text appears in any train file, and the eval files have the
sizes data_samples/README.md states (regenerate with scripts/data_samples/*.py)."""

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data_samples"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _texts(path: Path) -> set[str]:
    out: set[str] = set()
    for row in _rows(path):
        for key, value in row.items():
            if key in ("id", "query_id", "corpus_id", "type", "label", "score", "kind", "group"):
                continue
            out.update([value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
                       if isinstance(value, list) else [])
    return out


def test_no_eval_text_appears_in_train():
    train = set().union(*(_texts(p) for p in (DATA / "train").glob("*.jsonl")))
    # classification/clustering label names are shared by design (they are labels, not texts)
    labels = {r["label"] for name in ("classification.jsonl", "clustering.jsonl") for r in _rows(DATA / "eval" / name)}
    for path in sorted((DATA / "eval").glob("*.jsonl")):
        shared = (_texts(path) - labels) & train
        assert not shared, f"{path.name}: {len(shared)} text(s) also in train, e.g. {sorted(shared)[:3]}"


def test_eval_sizes_and_retrieval_structure():
    counts = {p.name: len(_rows(p)) for p in (DATA / "eval").glob("*.jsonl")}
    assert counts == {"sts.jsonl": 307, "pair_classification.jsonl": 168, "retrieval_queries.jsonl": 600,
                      "retrieval_corpus.jsonl": 600, "retrieval_qrels.jsonl": 600, "reranking.jsonl": 300,
                      "classification.jsonl": 200, "clustering.jsonl": 160}
    corpus = {r["id"] for r in _rows(DATA / "eval" / "retrieval_corpus.jsonl")}
    queries = {r["id"] for r in _rows(DATA / "eval" / "retrieval_queries.jsonl")}
    qrels = _rows(DATA / "eval" / "retrieval_qrels.jsonl")
    assert {r["query_id"] for r in qrels} == queries and {r["corpus_id"] for r in qrels} <= corpus
    for row in _rows(DATA / "eval" / "reranking.jsonl"):
        assert len(row["positive"]) == 1 and 5 <= len(row["negative"]) <= 7
        assert not set(row["positive"]) & set(row["negative"])
