"""Hard-negative mining (report, 'Training data and settings'): rank window, positive and too-close filters, stats, seeding."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from piccolo_lib.data import read_jsonl
from piccolo_lib.train.mining import MiningStats, mine_file, mine_hard_negatives
from piccolo_lib.model import build_model
from piccolo_lib.text import text_id

RETRIEVAL = Path(__file__).resolve().parent.parent / "data_samples" / "train" / "retrieval.jsonl"


class TableModel:
    """A fake retriever whose ranking is known exactly.

    Every query is the unit vector (1, 0); a passage with similarity s is (s, sqrt(1 - s^2)), so the
    cosine to any query is exactly the s given in the table. Unknown texts raise KeyError.
    """

    def __init__(self, sims: dict[str, float], queries: tuple[str, ...] = ("q",)):
        self.vectors = {t: [s, math.sqrt(1 - s * s)] for t, s in sims.items()}
        self.vectors.update({q: [1.0, 0.0] for q in queries})
        self.calls: list[dict] = []

    def encode(self, texts, **kwargs):
        self.calls.append(kwargs)
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


class HashModel:
    """A fake retriever with a pseudo-random, deterministic vector per (normalised) text."""

    def encode(self, texts, **kwargs):
        return np.stack([np.random.default_rng(text_id(t)).standard_normal(16) for t in texts]).astype(np.float32)


def ranked_docs(n: int, top: float = 0.9, step: float = 0.01) -> dict[str, float]:
    """Passages "doc 000".. with strictly decreasing similarity: doc r is at rank r."""
    return {f"doc {r:03d}": top - step * r for r in range(n)}


def rank_of(text: str) -> int:
    return int(text.split()[1])


def row(pos="gold", **extra):
    return {"text": "q", "text_pos": pos, "text_neg": ["old negative"], "type": "retri_contrast", **extra}


def test_negatives_come_only_from_the_rank_window_and_cover_it():
    docs = ranked_docs(40)
    model = TableModel({**docs, "gold": 0.95})
    seen = set()
    for seed in range(30):
        out, stats = mine_hard_negatives(model, [row()], corpus=list(docs), range_min=10, range_max=20,
                                         num_negatives=4, relative_margin=None, seed=seed, show_progress=False)
        ranks = [rank_of(n) for n in out[0]["text_neg"]]
        assert len(ranks) == 4 and all(10 <= r < 20 for r in ranks) and ranks == sorted(ranks)
        seen.update(ranks)
        assert (stats.candidates_seen, stats.kept, stats.mined, stats.queries_short) == (10, 10, 4, 0)
    assert seen == set(range(10, 20))  # random over the window, not always its top
    call = model.calls[-1]
    assert call["normalize_embeddings"] and call["batch_size"] == 64 and call["show_progress_bar"] is False


def test_every_positive_is_excluded_even_respelled():
    docs = ranked_docs(30)
    corpus = list(docs) + ["  POS   b ", "pos c"]  # a respelled positive and an exact one
    model = TableModel({**docs, "  POS   b ": 0.895 - 0.01 * 12, "pos c": 0.895 - 0.01 * 15,
                        "pos a": 0.97, "pos b": 0.96})
    rows = [row(pos=["pos a", "pos b", "pos c"], id=7)]
    out, stats = mine_hard_negatives(model, rows, corpus=corpus, range_min=10, range_max=20, num_negatives=10,
                                     relative_margin=None, show_progress=False)
    negs = out[0]["text_neg"]
    positive_ids = {text_id(p) for p in rows[0]["text_pos"]}
    assert not positive_ids & {text_id(n) for n in negs}
    assert stats.dropped_positive == 2 and stats.candidates_seen == 10 and stats.kept == 8 == len(negs)
    assert stats.queries_short == 1  # 8 usable < 10 asked
    assert out[0]["text_pos"] == rows[0]["text_pos"] and out[0]["id"] == 7 and out[0]["type"] == "retri_contrast"
    assert rows[0]["text_neg"] == ["old negative"]  # input untouched


def test_duplicate_queries_pool_their_positives():
    docs = ranked_docs(20)
    model = TableModel({**docs, "A": 0.895 - 0.01 * 3, "B": 0.895 - 0.01 * 5})
    rows = [row(pos="A"), row(pos="B")]
    out, stats = mine_hard_negatives(model, rows, corpus=list(docs) + ["A", "B"], range_min=2, range_max=10,
                                     num_negatives=8, relative_margin=None, show_progress=False)
    for r in out:
        assert "A" not in r["text_neg"] and "B" not in r["text_neg"]
    assert stats.dropped_positive == 4 and stats.kept + stats.dropped_positive == stats.candidates_seen == 16


def test_too_close_candidates_are_dropped_and_counted():
    docs = ranked_docs(40, top=0.6)  # doc r: 0.60 - 0.01 r
    model = TableModel({**docs, "gold": 0.5})
    kw = dict(corpus=list(docs), range_min=5, range_max=25, num_negatives=10, show_progress=False)
    # bar: 0.5 * (1 - 0.09) = 0.455, so ranks 5..14 (sims 0.55..0.46) are too close, 15..24 are kept
    out, stats = mine_hard_negatives(model, [row()], relative_margin=0.09, **kw)
    assert (stats.candidates_seen, stats.dropped_too_close, stats.kept, stats.dropped_positive) == (20, 10, 10, 0)
    assert [rank_of(n) for n in out[0]["text_neg"]] == list(range(15, 25))
    out, stats = mine_hard_negatives(model, [row()], relative_margin=None, **kw)
    assert stats.dropped_too_close == 0 and stats.kept == 20


def test_margin_uses_the_least_similar_positive():
    docs = ranked_docs(20, top=0.6)
    model = TableModel({**docs, "p1": 0.9, "p2": 0.5})
    _, stats = mine_hard_negatives(model, [row(pos=["p1", "p2"])], corpus=list(docs), range_min=0, range_max=20,
                                   relative_margin=0.09, show_progress=False)
    assert stats.dropped_too_close == 15  # bar 0.455 from p2: ranks 0..14 (0.60..0.46)


def test_seed_determinism():
    docs = ranked_docs(60)
    model = TableModel({**docs, "gold": 0.95})
    rows = [row(), row(pos="gold")]
    kw = dict(corpus=list(docs), range_min=10, range_max=50, relative_margin=None, show_progress=False)
    a, sa = mine_hard_negatives(model, rows, seed=1, **kw)
    b, sb = mine_hard_negatives(model, rows, seed=1, **kw)
    assert a == b and sa == sb
    others = [mine_hard_negatives(model, rows, seed=s, **kw)[0] for s in range(2, 6)]
    assert any(o != a for o in others)


def test_small_corpus_uses_what_exists_and_counts_short_queries():
    docs = ranked_docs(12)
    model = TableModel({**docs, "gold": 0.95})
    out, stats = mine_hard_negatives(model, [row()], corpus=list(docs), range_min=10, range_max=100,
                                     relative_margin=None, show_progress=False)
    assert out[0]["text_neg"] == ["doc 010", "doc 011"]
    assert (stats.candidates_seen, stats.kept, stats.mined, stats.queries_short) == (2, 2, 2, 1)
    out, stats = mine_hard_negatives(model, [row()], corpus=list(docs), range_min=12, range_max=100,
                                     show_progress=False)
    assert out[0]["text_neg"] == [] and stats.candidates_seen == 0 and stats.queries_short == 1
    assert "queries short of negatives: 1" in str(stats)


def test_default_corpus_and_window_against_an_independent_ranking():
    rows = [{"text": f"query {i}", "text_pos": f"passage {i}", "text_neg": [f"other {i}", f"other {i} b"],
             "type": "retri_contrast", "id": i} for i in range(30)]
    out, stats = mine_hard_negatives(HashModel(), rows, range_min=5, range_max=25, num_negatives=3,
                                     relative_margin=None, show_progress=False)
    corpus = [t for r in rows for t in [r["text_pos"], *r["text_neg"]]]
    emb = HashModel().encode(corpus)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    for r, o in zip(rows, out):
        q = HashModel().encode([r["text"]])[0]
        order = [corpus[j] for j in np.argsort(-(emb @ (q / np.linalg.norm(q))))]
        assert all(5 <= order.index(n) < 25 for n in o["text_neg"]) and r["text_pos"] not in o["text_neg"]
        assert {k: v for k, v in o.items() if k != "text_neg"} == {k: v for k, v in r.items() if k != "text_neg"}
    assert stats.candidates_seen == 30 * 20 == stats.kept + stats.dropped_positive
    assert stats.mined == 90 and stats.queries_short == 0


def test_bad_inputs_are_rejected():
    model = HashModel()
    with pytest.raises(ValueError, match="retri_contrast"):
        mine_hard_negatives(model, [{"text": "a", "text_pair": "b", "label": 1.0, "type": "cosent"}])
    with pytest.raises(ValueError, match="range_min"):
        mine_hard_negatives(model, [row()], range_min=10, range_max=10)
    assert mine_hard_negatives(model, []) == ([], MiningStats())


@pytest.fixture(scope="module")
def bert():
    return build_model("offline-bert", projection_dim=0)


def check_structure(rows, out, stats, num_negatives):
    assert len(out) == len(rows) == stats.queries
    corpus = {text_id(t) for r in rows for t in ([r["text_pos"]] + r["text_neg"])}
    for r, o in zip(rows, out):
        assert (o["text"], o["text_pos"], o["type"]) == (r["text"], r["text_pos"], r["type"])
        assert len(o["text_neg"]) <= num_negatives and len(set(o["text_neg"])) == len(o["text_neg"])
        assert all(text_id(n) in corpus for n in o["text_neg"])
        assert text_id(r["text_pos"]) not in {text_id(n) for n in o["text_neg"]}
    assert stats.kept + stats.dropped_positive + stats.dropped_too_close == stats.candidates_seen
    assert stats.mined == sum(len(o["text_neg"]) for o in out)
    assert stats.queries_short == sum(len(o["text_neg"]) < num_negatives for o in out)


def test_offline_bert_on_sample_rows(bert):
    rows = read_jsonl(RETRIEVAL)[:24]
    out, stats = mine_hard_negatives(bert, rows, range_min=2, range_max=10, num_negatives=3, show_progress=False)
    check_structure(rows, out, stats, 3)
    assert stats.candidates_seen == 24 * 8  # the corpus (positives + negatives) has more than 10 passages
    # the window, checked against the model's own ranking
    corpus = list(dict.fromkeys(t for r in rows for t in [r["text_pos"], *r["text_neg"]]))
    d = bert.encode(corpus, normalize_embeddings=True, convert_to_numpy=True)
    q = bert.encode([r["text"] for r in rows], normalize_embeddings=True, convert_to_numpy=True)
    for qv, o in zip(q, out):
        order = [corpus[j] for j in np.argsort(-(d @ qv))]
        assert all(2 <= order.index(n) < 10 for n in o["text_neg"])


def test_mine_file_writes_utf8_jsonl_and_loads_saved_models(bert, tmp_path):
    rows = read_jsonl(RETRIEVAL)[:16]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    kw = dict(range_min=2, range_max=8, num_negatives=2, show_progress=False)
    expected, expected_stats = mine_hard_negatives(bert, rows, **kw)
    stats = mine_file("offline-bert", src, tmp_path / "out" / "a.jsonl", **kw)
    assert stats == expected_stats and read_jsonl(tmp_path / "out" / "a.jsonl") == expected
    assert rows[0]["text"] in (tmp_path / "out" / "a.jsonl").read_text(encoding="utf-8")  # not \u-escaped
    bert.save(str(tmp_path / "st"))
    assert mine_file(str(tmp_path / "st"), src, tmp_path / "b.jsonl", **kw) == expected_stats
    check_structure(rows, read_jsonl(tmp_path / "b.jsonl"), stats, 2)


def test_the_querys_own_text_is_never_its_negative():
    """Mining and refreshing share one picker (piccolo_lib.data.negatives); refreshing always excluded the query's
    own text, mining did not: a passage that *is* the query (another row's positive) was mined as a negative."""
    docs = ranked_docs(6)
    model = TableModel({**docs, "gold": 0.95, "Q ": 0.99}, queries=("q",))
    model.vectors["Q "] = [1.0, 0.0]  # the query's own text, spelled otherwise, in the corpus: rank 0
    out, stats = mine_hard_negatives(model, [row()], corpus=["Q "] + list(docs), range_min=0, range_max=4,
                                     num_negatives=4, relative_margin=None, show_progress=False)
    assert "Q " not in out[0]["text_neg"] and stats.dropped_positive == 1  # excluded like a positive
    assert out[0]["text_neg"] == ["doc 000", "doc 001", "doc 002"]
