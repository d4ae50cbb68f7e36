"""Generate the sample retrieval and reranking data for the Piccolo2 course.

All queries and passages are hand-written, original simplified-Chinese texts,
kept as Python data in ``retrieval_content/`` (two modules per domain):
e-commerce, finance, medicine, news/policy and daily life.  Each module holds a
list ``TOPICS``; a topic is ``{"name": str, "items": [{"q": [query, paraphrase],
"p": passage}, ...]}`` with 3-5 items (4 in this release) whose passages share
the topic, so the passages of sibling items are hard negatives (same topic,
plausible, but not the answer).  150 topics, 600 items, 1200 queries.

Whole topics are assigned to one of four splits, per domain, with a fixed seed
(never items of one topic across splits), so no eval query or passage appears
in any train file:

* train-retrieval -> data_samples/train/retrieval.jsonl
* train-reranking -> data_samples/train/reranking.jsonl
    {"text": query, "text_pos": passage, "text_neg": [3-4 passages], "type": "retri_contrast"}
    One row per query wording (2 per item).  Negatives: the sibling passages of
    the topic, plus one passage of another topic of the same domain and split
    when the topic has only 3 items.
* eval-retrieval  -> data_samples/eval/retrieval_{queries,corpus,qrels}.jsonl
    queries {"id": "q1", "text"}, corpus {"id": "d1", "text"},
    qrels {"query_id", "corpus_id", "score": 1}.  Each query (both wordings of
    every item) has exactly one relevant passage.  The corpus holds every
    passage of the eval-retrieval topics (siblings are hard distractors) and,
    if that is under MIN_CORPUS passages, the eval-reranking passages as extra
    distractors.
* eval-reranking  -> data_samples/eval/reranking.jsonl
    {"query", "positive": [passage], "negative": [5-7 passages]}: the sibling
    passages plus passages of other eval-reranking topics of the same domain.

Run from the repository root:  python3 scripts/data_samples/retrieval.py
Standard library only; the output is deterministic.
"""

import importlib
import json
import random
import sys
from pathlib import Path

SEED = 20240607
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

DOMAINS = {
    "ecommerce": ["ecommerce_1", "ecommerce_2"],
    "finance": ["finance_1", "finance_2"],
    "medicine": ["medicine_1", "medicine_2"],
    "policy": ["policy_1", "policy_2"],
    "daily": ["daily_1", "daily_2"],
}
# Topics per domain for each split (each domain has 30 topics).
SPLIT_SIZES = [("train_retrieval", 10), ("train_reranking", 5), ("eval_retrieval", 10), ("eval_reranking", 5)]
MIN_CORPUS = 300
TRAIN_NEG_MIN = 3
TRAIN_NEG_MAX = 4
EVAL_NEG_MIN, EVAL_NEG_MAX = 5, 7


def load_topics() -> dict:
    """{domain: [topic, ...]} with every topic tagged by its domain."""
    out = {}
    for domain, modules in DOMAINS.items():
        topics = []
        for name in modules:
            module = importlib.import_module(f"retrieval_content.{name}")
            for topic in module.TOPICS:
                topics.append({**topic, "domain": domain})
        out[domain] = topics
    return out


def split_topics(by_domain: dict, rng: random.Random) -> dict:
    """{split: [topic, ...]}: whole topics, the same number per domain in each split."""
    splits = {name: [] for name, _ in SPLIT_SIZES}
    for domain in sorted(by_domain):
        topics = list(by_domain[domain])
        need = sum(n for _, n in SPLIT_SIZES)
        if len(topics) < need:
            raise SystemExit(f"domain {domain}: {len(topics)} topics, need {need}")
        rng.shuffle(topics)
        start = 0
        for name, n in SPLIT_SIZES:
            splits[name].extend(topics[start:start + n])
            start += n
    return splits


def other_passages(topic: dict, pool: list) -> list:
    """Passages of the other topics of the same domain within one split."""
    return [it["p"] for t in pool if t["domain"] == topic["domain"] and t is not topic for it in t["items"]]


def train_rows(topics: list, rng: random.Random) -> list:
    rows = []
    for topic in topics:
        others = other_passages(topic, topics)
        for item in topic["items"]:
            siblings = [it["p"] for it in topic["items"] if it is not item][:TRAIN_NEG_MAX]
            for query in item["q"]:
                negs = list(siblings)
                if len(negs) < TRAIN_NEG_MIN:
                    negs += rng.sample(others, TRAIN_NEG_MIN - len(negs))
                rng.shuffle(negs)
                rows.append({"text": query, "text_pos": item["p"], "text_neg": negs, "type": "retri_contrast"})
    rng.shuffle(rows)
    return rows


def eval_retrieval(topics: list, extra: list, rng: random.Random) -> tuple:
    passages = [it["p"] for t in topics for it in t["items"]]
    if len(passages) < MIN_CORPUS:
        passages += [it["p"] for t in extra for it in t["items"]]
    rng.shuffle(passages)
    doc_id = {p: f"d{i}" for i, p in enumerate(passages, start=1)}
    pairs = [(q, it["p"]) for t in topics for it in t["items"] for q in it["q"]]
    rng.shuffle(pairs)
    queries, qrels = [], []
    for i, (q, p) in enumerate(pairs, start=1):
        queries.append({"id": f"q{i}", "text": q})
        qrels.append({"query_id": f"q{i}", "corpus_id": doc_id[p], "score": 1})
    corpus = [{"id": doc_id[p], "text": p} for p in passages]
    return queries, corpus, qrels


def eval_reranking(topics: list, rng: random.Random) -> list:
    rows = []
    for topic in topics:
        others = other_passages(topic, topics)
        for item in topic["items"]:
            siblings = [it["p"] for it in topic["items"] if it is not item]
            for query in item["q"]:
                total = rng.randint(EVAL_NEG_MIN, EVAL_NEG_MAX)
                negs = siblings + rng.sample(others, max(0, total - len(siblings)))
                rng.shuffle(negs)
                rows.append({"query": query, "positive": [item["p"]], "negative": negs})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(ROOT)}: {len(rows)} rows")


def main() -> None:
    rng = random.Random(SEED)
    splits = split_topics(load_topics(), rng)
    train_dir, eval_dir = ROOT / "data_samples" / "train", ROOT / "data_samples" / "eval"
    write_jsonl(train_dir / "retrieval.jsonl", train_rows(splits["train_retrieval"], rng))
    write_jsonl(train_dir / "reranking.jsonl", train_rows(splits["train_reranking"], rng))
    queries, corpus, qrels = eval_retrieval(splits["eval_retrieval"], splits["eval_reranking"], rng)
    write_jsonl(eval_dir / "retrieval_queries.jsonl", queries)
    write_jsonl(eval_dir / "retrieval_corpus.jsonl", corpus)
    write_jsonl(eval_dir / "retrieval_qrels.jsonl", qrels)
    write_jsonl(eval_dir / "reranking.jsonl", eval_reranking(splits["eval_reranking"], rng))


if __name__ == "__main__":
    main()
