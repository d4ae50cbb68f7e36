"""piccolo_lib.cmteb and .mirror: the two C-MTEB benchmarks, and evaluation from an offline mirror with no network.

The mirror is the course's sample mirror: real mteb task classes (TNews, CLSClusteringS2S, Ocnli,
T2Reranking, T2Retrieval, LCQMC) with data_samples as their data, in the layout `download` writes.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import mteb
import pytest

from piccolo_lib import cli
from piccolo_lib.backbones import DATA_SAMPLES
from piccolo_lib.cmteb import CMTEB, LEGACY_EXTRAS, benchmark_spec, benchmark_tasks
from piccolo_lib.evaluation import TfidfEncoder, evaluate_model, results_dir
from piccolo_lib.local_benchmark import fit_texts, local_tasks
from piccolo_lib.mirror import mirror_tasks, sample_mirror
from piccolo_lib.reporting import build_reports

SAMPLE_TASKS = {"TNews": "Classification", "CLSClusteringS2S": "Clustering", "Ocnli": "PairClassification",
                "T2Reranking": "Reranking", "T2Retrieval": "Retrieval", "LCQMC": "STS"}


def test_benchmarks_tasks_splits_subsets_and_metrics():
    cm = benchmark_tasks("cmteb")
    assert len(cm) == 31 and Counter(t.metadata.type for t in cm) == {
        "Retrieval": 8, "STS": 7, "Classification": 6, "Reranking": 4, "Clustering": 4, "PairClassification": 2}
    legacy = {t.metadata.name: t for t in benchmark_tasks("cmteb-legacy")}
    assert len(legacy) == 35 and {t.metadata.name for t in cm} < set(legacy)
    for name, subset in LEGACY_EXTRAS.items():  # multilingual tasks: their Chinese subset, test split
        assert legacy[name].hf_subsets == [subset] and legacy[name].eval_splits == ["test"]
    assert legacy["MultilingualSentiment"].eval_splits == ["validation"]  # the legacy leaderboard's split
    assert {t.metadata.name: t.eval_splits for t in cm}["MultilingualSentiment"] == ["validation", "test"]
    assert legacy["ATEC"].eval_splits == ["test"]
    # fresh objects every call: mteb's shared benchmark is never modified
    assert benchmark_tasks("cmteb")[0] is not cm[0]
    shared = {t.metadata.name: t for t in mteb.get_benchmark(CMTEB).tasks}
    assert shared["MultilingualSentiment"].eval_splits == ["validation", "test"]
    with pytest.raises(ValueError, match=r"\['Nope'\] not in benchmark"):
        benchmark_tasks("cmteb", ["TNews", "Nope"])
    metric = {name: {t.category: t.metric for t in benchmark_spec(name).tasks} for name in ("cmteb", "cmteb-legacy")}
    assert metric["cmteb"]["PairClassification"] == "max_accuracy" and metric["cmteb-legacy"]["PairClassification"] == "cosine_ap"
    assert benchmark_spec("cmteb-legacy").round_tasks == 2 and benchmark_spec("cmteb").round_tasks is None
    with pytest.raises(ValueError, match="unknown benchmark"):
        benchmark_spec("mteb")


def test_download_without_hub_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture):
    target = tmp_path / "mirror"
    assert cli.main(["cmteb", "download", "--to", str(target), "--tasks", "TNews"]) == 1
    err = capsys.readouterr().err
    assert "needs the Hugging Face hub" in err and f"--data-dir {target}" in err
    assert not target.exists()
    assert cli.main(["eval", "offline-bert", "--benchmark", "cmteb", "--tasks", "TNews", "--mode", "quick",
                     "--output", str(tmp_path / "out")]) == 1
    assert "piccolo cmteb download --to DIR" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    assert sample_mirror(root) == list(SAMPLE_TASKS)
    return root


def test_mirror_layout(mirror: Path):
    manifest = json.loads((mirror / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["tasks"]) == set(SAMPLE_TASKS) and manifest["format"] == 1
    info = json.loads((mirror / "TNews" / "mirror.json").read_text(encoding="utf-8"))
    assert info["subsets"] == {"default": ["train", "validation"]} and info["revision"].startswith("data_samples-")
    assert info["mteb_version"] == mteb.__version__ and "not the real dataset" in info["source"]
    dev = mirror / "T2Reranking" / "default" / "dev"
    assert {p.name for p in dev.iterdir()} == {"corpus", "queries", "relevant_docs.json", "top_ranked.json"}
    assert not (mirror / "T2Retrieval" / "default" / "dev" / "top_ranked.json").exists()
    assert not list(mirror.glob(".*"))  # no half-written task or manifest left behind


def test_mirrored_tasks_run_offline_and_match_the_local_tasks(mirror: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a mirrored task tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    tasks = mirror_tasks(benchmark_tasks("cmteb", list(SAMPLE_TASKS)), mirror)
    local = local_tasks(DATA_SAMPLES / "eval")
    encoder = TfidfEncoder(fit_texts(local))
    mirrored = evaluate_model(encoder, tasks, tmp_path, model_name="tfidf", show_progress=False)
    direct = evaluate_model(encoder, local, tmp_path, model_name="tfidf-local", show_progress=False)
    local_score = {t["category"]: t["main_score"] for t in direct["tasks"].values()}
    for name, category in SAMPLE_TASKS.items():
        task = mirrored["tasks"][name]
        assert task["category"] == category and task["split"] == mteb.get_task(name).eval_splits[0]
        if category != "Clustering":  # same data, same evaluator: the same score through save/load
            assert task["main_score"] == pytest.approx(local_score[category], abs=1e-4), name
    # the legacy clustering task (one k-means per set) differs from the local fast one, but is a v-measure
    assert 0 < mirrored["tasks"]["CLSClusteringS2S"]["main_score"] <= 100
    saved = json.loads((Path(mirrored["results_dir"]) / "TNews.json").read_text(encoding="utf-8"))
    assert saved["dataset_revision"] == json.loads((mirror / "TNews" / "mirror.json").read_text())["revision"]
    with pytest.raises(FileNotFoundError, match="no mirror of Cmnli.*piccolo cmteb download"):
        mirror_tasks(benchmark_tasks("cmteb", ["Cmnli"]), mirror)


def test_piccolo_eval_offline_bert_from_mirror_then_rerun(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "eval"
    args = ["eval", "offline-bert", "--benchmark", "cmteb", "--tasks", ",".join(SAMPLE_TASKS), "--data-dir", str(mirror),
            "--output", str(out), "--mode", "quick", "--zero-shot"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "6 of its tasks" in printed and "| tasks found | | 6/6 |" in printed and "| TNews | local/offline-bert |" in printed
    (report,) = build_reports(out, "cmteb", tasks=list(SAMPLE_TASKS))
    assert report.data["n_tasks"] == 6 and report.data["missing"] == [] and 0 < report.data["average"] < 100
    assert set(report.zero_shot) == {"TNews"}  # zero-shot by label retrieval beside logistic regression
    files = sorted(results_dir(out, "offline-bert").glob("*.json"))
    assert {f.stem for f in files} == set(SAMPLE_TASKS) | {"TNewsZeroShot", "model_meta"}
    mtimes = [f.stat().st_mtime_ns for f in files if f.stem != "model_meta"]
    assert cli.main(args) == 0  # a re-run finds every task done and recomputes none
    assert capsys.readouterr().out == printed
    assert [f.stat().st_mtime_ns for f in files if f.stem != "model_meta"] == mtimes
