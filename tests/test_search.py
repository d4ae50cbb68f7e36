"""piccolo_lib.search: quantized search against exact search, the index folder, its errors, Qdrant, the CLI."""

import json

import numpy as np
import pytest

from piccolo_lib.search import (IndexFolderError, VectorIndex, benchmark_corpus, exact_search, load_index,
                                ndcg_at_k, news_distractors, prefix, read_corpus, recall_at_k, save_index)
from piccolo_lib.search.index import int8_dequantize


def unit(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    docs = unit(rng, 500, 64)
    queries = docs[:40] + 0.3 * unit(rng, 40, 64)  # each query near its own document
    return queries.astype(np.float32), docs


def brute_force(queries: np.ndarray, docs: np.ndarray, dims: int, k: int) -> np.ndarray:
    scores = prefix(queries, dims) @ prefix(docs, dims).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("dims", [64, 32, 16])
def test_a_float32_index_is_brute_force(data, dims):
    queries, docs = data
    rows, scores = VectorIndex.build(docs, dims, "float32").search(queries, 10)
    assert (rows == brute_force(queries, docs, dims, 10)).all()
    assert np.allclose(scores, np.take_along_axis(prefix(queries, dims) @ prefix(docs, dims).T, rows, 1), atol=1e-5)
    assert (exact_search(queries, docs, dims, 10)[0] == rows).all()


def test_int8_stores_sentence_transformers_codes_and_scores_the_float_query_against_them(data):
    import faiss
    from sentence_transformers.util.quantization import quantize_embeddings

    queries, docs = data
    index = VectorIndex.build(docs, 32, "int8")
    stored = faiss.vector_to_array(index.index.codes).reshape(len(docs), 32).astype(int) - 128  # (n, 32)
    codes = quantize_embeddings(prefix(docs, 32), "int8", ranges=index.ranges).astype(int)
    assert np.mean(stored == codes) > 0.999 and np.abs(stored - codes).max() <= 1  # float rounding at bucket edges
    by_hand = prefix(queries, 32) @ int8_dequantize(stored, index.ranges).T  # q . bucket centres, every document
    rows, scores = index.search(queries, 10)
    assert np.allclose(scores, np.take_along_axis(by_hand, rows, 1), atol=1e-5)
    assert (rows == np.argsort(-by_hand, axis=1, kind="stable")[:, :10]).mean() > 0.99  # float ties may swap
    assert index.code_bytes == len(docs) * 32  # one byte per dim


def test_binary_with_float_rescoring_is_exact_over_its_hamming_candidates(data):
    queries, docs = data
    dims, k, m = 48, 5, 4
    index = VectorIndex.build(docs, dims, "binary", rescore="float32", multiplier=m)
    bits_q, bits_d = prefix(queries, dims) > 0, prefix(docs, dims) > 0
    hamming = (bits_q[:, None, :] != bits_d[None, :, :]).sum(-1)  # (nq, n)
    rows, scores = index.search(queries, k)
    exact = prefix(queries, dims) @ prefix(docs, dims).T
    for i in range(len(queries)):
        cutoff = np.sort(hamming[i])[k * m - 1]  # the k*m-th smallest distance (ties may go either way)
        assert (hamming[i, rows[i]] <= cutoff).all()
        assert np.allclose(scores[i], exact[i, rows[i]], atol=1e-5) and (np.diff(scores[i]) <= 1e-6).all()
    assert index.code_bytes == len(docs) * dims // 8
    everything = VectorIndex.build(docs, dims, "binary", rescore="float32", multiplier=len(docs))
    assert (everything.search(queries, k)[0] == brute_force(queries, docs, dims, k)).all()  # all candidates: exact


@pytest.mark.parametrize("rescore", ["int8", "bits", "none"])
def test_binary_variants_find_the_query_s_own_document(data, rescore):
    queries, docs = data
    rows, _ = VectorIndex.build(docs, 64, "binary", rescore=rescore, multiplier=10, center=True).search(queries, 10)
    assert recall_at_k(rows, [{i} for i in range(len(queries))], 10) > 90


def test_ndcg_matches_pytrec_eval():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(1)
    rows = np.array([rng.permutation(30)[:10] for _ in range(25)])
    relevant = [set(rng.choice(30, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(25)]
    qrels = {f"q{i}": {f"d{d}": 1 for d in rel} for i, rel in enumerate(relevant)}
    run = {f"q{i}": {f"d{d}": float(10 - r) for r, d in enumerate(ranked)} for i, ranked in enumerate(rows)}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    assert ndcg_at_k(rows, relevant, 10) == pytest.approx(100 * np.mean([v["ndcg_cut_10"] for v in per_query.values()]))


def saved(tmp_path, data, **kw):
    _, docs = data
    ids = [f"doc-{i}" for i in range(len(docs))]
    vectors = VectorIndex.build(docs, kw.pop("dims", 32), kw.pop("precision", "binary"), **kw)
    return save_index(tmp_path / "idx", vectors, ids, model="some/model", full_dims=64, query_prompt="query: ",
                      texts=[f"text {i}" for i in range(len(docs))]), vectors


@pytest.mark.parametrize("precision", ["float32", "int8", "binary"])
def test_ids_and_results_survive_the_folder(tmp_path, data, precision):
    queries, _ = data
    folder, vectors = saved(tmp_path, data, precision=precision)
    index = load_index(folder)
    rows, scores = vectors.search(queries, 10)
    hits = index.search(queries, 10)
    assert [[i for i, _ in h] for h in hits] == [[f"doc-{r}" for r in rr] for rr in rows]
    assert np.allclose([[s for _, s in h] for h in hits], scores, atol=1e-6)
    assert index.texts[7] == "text 7" and index.manifest["query_prompt"] == "query: "


def test_bad_index_folders_are_one_line_errors(tmp_path, data):
    with pytest.raises(IndexFolderError, match="no such folder"):
        load_index(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexFolderError, match=r"manifest\.json: missing; .* is not an index folder"):
        load_index(tmp_path / "empty")
    folder, _ = saved(tmp_path, data)
    manifest = json.loads((folder / "manifest.json").read_text())
    cases = [({**manifest, "dims": "32"}, r"field 'dims' is '32'; expected int"),
             ({k: v for k, v in manifest.items() if k != "count"}, r"field 'count' is None; expected int"),
             ({**manifest, "precision": "int4"}, r"field 'precision' is 'int4'; expected one of"),
             ({**manifest, "format": "other"}, r"field 'format' is 'other'"),
             ({**manifest, "count": 7}, r"field 'count' 7 and 'dims' 32 do not match the files"),
             ({**manifest, "index_file": "gone.faiss"}, r"gone\.faiss: missing \(named by field 'index_file'")]
    for broken, message in cases:
        (folder / "manifest.json").write_text(json.dumps(broken))
        with pytest.raises(IndexFolderError, match=message) as err:
            load_index(folder)
        assert "\n" not in str(err.value)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFolderError, match="not valid JSON"):
        load_index(folder)


def test_a_dims_mismatch_is_a_one_line_error(tmp_path, data):
    folder, _ = saved(tmp_path, data)
    index = load_index(folder)
    with pytest.raises(IndexFolderError, match=r"query embeddings have 384 dims, but this index holds 32-dim prefixes "
                                               r"of 64-dim embeddings") as err:
        index.search(np.ones((2, 384), dtype=np.float32))
    assert "\n" not in str(err.value)

    class Model:
        def get_embedding_dimension(self):
            return 672

    with pytest.raises(IndexFolderError, match=r"field 'full_dims' is 64 but the model gives 672-dim embeddings"):
        index.check_model(Model())


@pytest.mark.parametrize("precision,rescore", [("float32", "none"), ("binary", "float32")])
def test_the_export_round_trips_through_qdrant_local_mode(tmp_path, data, precision, rescore):
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient

    from piccolo_lib.search import qdrant

    queries, docs = data
    folder, _ = saved(tmp_path, data, precision=precision, rescore=rescore)
    index = load_index(folder)
    client = QdrantClient(path=str(tmp_path / "qdrant"))  # embedded: on disk, in this process
    assert qdrant.export(index, client, "docs") == len(docs)
    client.close()
    client = QdrantClient(path=str(tmp_path / "qdrant"))  # reopened: the collection persisted
    found = qdrant.search(client, "docs", index.manifest, queries, 5)
    client.close()
    exact = brute_force(queries, docs, 32, 5)  # local mode scans the float vectors exactly
    assert [[i for i, _ in h] for h in found] == [[f"doc-{r}" for r in rr] for rr in exact]


def test_qdrant_export_needs_float_vectors(tmp_path, data):
    from piccolo_lib.search import qdrant

    folder, _ = saved(tmp_path, data, rescore="bits")
    with pytest.raises(IndexFolderError, match="keeps only sign bits"):
        qdrant.float_vectors(load_index(folder).vectors)


def test_the_benchmark_corpus_keeps_the_local_qrels_and_adds_distractors():
    corpus = benchmark_corpus(news=50, seed=3)
    local = corpus.sources["local"]
    assert corpus.sources["news"] == 50 and len(corpus.docs) == local + 50
    relevant = corpus.relevant()
    assert len(relevant) == len(corpus.queries) and all(rel and max(rel) < local for rel in relevant)
    ids, texts = news_distractors(None)
    sample = dict(zip(*news_distractors(50, seed=3)))
    assert all(texts[ids.index(i)] == t for i, t in sample.items())  # an id names the same paragraph everywhere
    assert benchmark_corpus(news=50, seed=3).doc_ids == corpus.doc_ids  # same seed, same corpus


def test_a_bad_corpus_row_names_file_line_and_field(tmp_path):
    from piccolo_lib.data import DataError

    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.jsonl, line 2: field 'text' is missing or empty"):
        read_corpus(path)
    path.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: field 'id' 'a' repeats line 1"):
        read_corpus(path)


def test_cli_index_and_search_round_trip(tmp_path, capsys):
    from piccolo_lib.cli import main

    texts = ["今天天气很好，适合去公园散步", "股票市场今天大幅下跌", "猫喜欢吃鱼和老鼠", "火车站在城市的北边",
             "这家餐厅的饺子很好吃", "明天下午三点开会"]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"t{i}", "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(texts)), encoding="utf-8")
    out = tmp_path / "index"
    assert main(["index", "offline-bert", str(out), "--corpus", str(corpus), "--precision", "binary",
                 "--dims", "64", "--multiplier", "6", "--mode", "quick"]) == 0
    assert "indexed 6 documents" in capsys.readouterr().out
    assert main(["search", str(out), texts[2], texts[4], "--top-k", "3", "--mode", "quick"]) == 0
    printed = capsys.readouterr().out.splitlines()
    firsts = [printed[i + 1].split()[2] for i, line in enumerate(printed) if line.startswith("query: ")]
    assert firsts == ["t2", "t4"]  # each query's own text comes first: rescored exactly over all 6

    assert main(["search", str(tmp_path / "nowhere"), "x", "--mode", "quick"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("piccolo search: ") and "no such folder" in err and "\n" not in err


@pytest.mark.slow
def test_the_benchmark_section_runs_and_renders(tmp_path, monkeypatch):
    import benchmarks.search as bench

    monkeypatch.setattr(bench, "OUT", tmp_path)
    monkeypatch.setattr(bench, "CACHE", tmp_path / "cache")
    data = bench.run(quick=True)  # the toy as the model, 200 paragraphs
    text = bench.render(data)
    assert text.startswith("## 14. Search") and "| toy | 128 (full) | float32 |" in text
    grid = data["models"]["toy"]["grid"]
    assert len(grid) == 16 and {r["variant"] for r in grid} == {"float32", "int8", "binary", "binary-centred"}
    assert next(r for r in grid if r["fraction"] == "full" and r["variant"] == "float32")["kept"] == pytest.approx(100)
    assert (tmp_path / "search_tradeoff.png").stat().st_size > 0
