"""piccolo_lib.reporting: category means, task-weighted average, and tables from hand-made result files.

The result files are written here in the three shapes found in the wild: mteb >= 1.11 (fractions), the
legacy C-MTEB leaderboard files (``mteb_version`` null or "0.0.0", ``cos_sim_*`` keys, percents or
fractions), and mteb < 1.11 (metrics keyed by split, then subset, with nested ``cos_sim``/``max`` dicts).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from statistics import fmean

import pytest

from piccolo_lib import cli
from piccolo_lib.reporting import CATEGORIES, aggregate, build_reports, format_table, render


def test_average_is_over_tasks_not_categories():
    scores = {"A": {"category": "STS", "main_score": 60.0}, "B": {"category": "STS", "main_score": 80.0},
              "C": {"category": "Retrieval", "main_score": 40.0}}
    cats, avg = aggregate(scores)
    assert cats == {"STS": 70.0, "Retrieval": 40.0}
    assert avg == pytest.approx(60.0)  # (60 + 80 + 40) / 3, not (70 + 40) / 2 = 55
    with pytest.raises(ValueError, match="no task scores"):
        aggregate({})


def test_table_has_two_decimals_and_dash_for_missing_category():
    table = format_table([{"model": "m", "truncate_dim": None, "categories": {"STS": 70.0}, "average": 70.0},
                          {"model": "m", "truncate_dim": 64, "categories": {"Retrieval": 1 / 3}, "average": 1 / 3}])
    lines = table.splitlines()
    assert lines[0] == "| Model | Dim | Retrieval | STS | Average |"
    assert lines[2] == "| m | full | - | 70.00 | 70.00 |" and lines[3] == "| m | 64 | 0.33 | - | 0.33 |"


# ---------------------------------------------------------------- result files by hand

LANG = {"default": ["cmn-Hans"], "zh": ["cmn-Hans"], "zh-CN": ["cmo-Hans"], "en": ["eng-Latn"]}


def write_v2(folder: Path, task: str, scores: dict[str, dict[str, dict]], version: str | None = "2.26.24") -> Path:
    """A result file in mteb's current layout: {split: [{hf_subset, languages, metrics...}]}.
    version None or "0.0.0" gives the legacy leaderboard files' shape."""
    body = {"dataset_revision": "None", "task_name": task, "mteb_version": version,
            "evaluation_time": None if version is None else 1.0,
            "scores": {split: [{"hf_subset": sub, "languages": LANG[sub], "main_score": _main(metrics), **metrics}
                               for sub, metrics in subs.items()] for split, subs in scores.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{task}.json").write_text(json.dumps(body), encoding="utf-8")
    return folder / f"{task}.json"


def _main(metrics: dict) -> float:
    """The file's main_score: max_accuracy for pair classification (as the public files), else the first metric."""
    return metrics.get("max_accuracy", next(iter(metrics.values())))


def write_pre111(folder: Path, task: str, splits: dict[str, dict]) -> Path:
    """A result file of mteb < 1.11: {"mteb_dataset_name", split: {metrics or subset: {metrics}}}."""
    body = {"dataset_revision": "x", "mteb_dataset_name": task, "mteb_version": "1.1.1",
            **{split: {**metrics, "evaluation_time": 2.0} for split, metrics in splits.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{task}.json").write_text(json.dumps(body), encoding="utf-8")
    return folder / f"{task}.json"


# Piccolo2 (sensenova/piccolo-large-zh-v2) on the 35 legacy C-MTEB tasks: the numbers of its public result
# files (embeddings-benchmark/results, results/sensenova__piccolo-large-zh-v2/external), stored there as
# fractions for some tasks and percents for others, as reproduced here. task: (split, subset, metrics)
PICCOLO2 = {
    "TNews": ("validation", "default", {"accuracy": 0.54521, "main_score": 0.54521}),
    "IFlyTek": ("validation", "default", {"accuracy": 52.104655636783384}),
    "Waimai": ("test", "default", {"accuracy": 89.58999999999999}),
    "OnlineShopping": ("test", "default", {"accuracy": 94.61999999999999}),
    "JDReview": ("test", "default", {"accuracy": 88.57410881801127}),
    "MultilingualSentiment": ("validation", "default", {"accuracy": 79.08666666666666}),
    "AmazonReviewsClassification": ("test", "zh", {"accuracy": 49.440000000000005}),
    "MassiveIntentClassification": ("test", "zh-CN", {"accuracy": 77.71015467383997}),
    "MassiveScenarioClassification": ("test", "zh-CN", {"accuracy": 85.63214525891055}),
    "CLSClusteringP2P": ("test", "default", {"v_measure": 57.92713421071616}),
    "CLSClusteringS2S": ("test", "default", {"v_measure": 0.48096546680932234}),
    "ThuNewsClusteringP2P": ("test", "default", {"v_measure": 0.742003249023509}),
    "ThuNewsClusteringS2S": ("test", "default", {"v_measure": 68.4277378629746}),
    "Cmnli": ("validation", "default", {"cos_sim_ap": 92.64373114205229, "max_ap": 92.64373114205229,
                                        "max_accuracy": 86.08538785327721, "cos_sim_accuracy": 86.08538785327721}),
    "Ocnli": ("validation", "default", {"cos_sim_ap": 87.83572265803564, "max_ap": 87.83572265803564,
                                       "max_accuracy": 84.35300487276665, "cos_sim_accuracy": 84.35300487276665}),
    "T2Reranking": ("dev", "default", {"map": 0.6714759526113295, "mrr": 0.7736422096484723}),
    "MMarcoReranking": ("dev", "default", {"map": 33.386980266936106, "mrr": 32.11904761904762}),
    "CMedQAv1-reranking": ("test", "default", {"map": 0.8931003741715936, "mrr": 0.9138075396825397}),
    "CMedQAv2-reranking": ("test", "default", {"map": 0.9013769781784876, "mrr": 0.9214329365079366}),
    "T2Retrieval": ("dev", "default", {"ndcg_at_10": 0.8613599999999999, "recall_at_1000": 0.98848}),
    "MMarcoRetrieval": ("dev", "default", {"ndcg_at_10": 79.54299999999999, "recall_at_1000": 98.656}),
    "DuRetrieval": ("dev", "default", {"ndcg_at_10": 89.13600000000001, "recall_at_1000": 99.384}),
    "CovidRetrieval": ("dev", "default", {"ndcg_at_10": 86.777, "recall_at_1000": 100.0}),
    "CmedqaRetrieval": ("dev", "default", {"ndcg_at_10": 47.583999999999996, "recall_at_1000": 99.045}),
    "EcomRetrieval": ("dev", "default", {"ndcg_at_10": 67.755, "recall_at_1000": 97.5}),
    "MedicalRetrieval": ("dev", "default", {"ndcg_at_10": 0.64878, "recall_at_1000": 0.9789999999999999}),
    "VideoRetrieval": ("dev", "default", {"ndcg_at_10": 73.099, "recall_at_1000": 99.1}),
    "AFQMC": ("validation", "default", {"cos_sim_spearman": 61.49271876861677, "cosine_spearman": 61.49271876861677}),
    "ATEC": ("test", "default", {"cos_sim_spearman": 59.19831457688953, "cosine_spearman": 59.19831457688953}),
    "BQ": ("test", "default", {"cos_sim_spearman": 72.87565357908989}),
    "LCQMC": ("test", "default", {"cos_sim_spearman": 79.5459672237356}),
    "PAWSX": ("test", "default", {"cos_sim_spearman": 46.48035295363829, "cosine_spearman": 46.48035295363829}),
    "QBQTC": ("test", "default", {"cos_sim_spearman": 45.906917552219156}),
    "STS22": ("test", "zh", {"cos_sim_spearman": 63.76187490245927, "cosine_spearman": 63.76187490245927}),
    "STSB": ("test", "default", {"cos_sim_spearman": 78.71478656159289}),
}
# The report's table (arXiv 2405.06932, Table: C-MTEB results): six category means and the 35-task average.
REPORT_TABLE = {"Classification": 74.59, "Clustering": 62.17, "PairClassification": 90.24, "Reranking": 70.00,
                "Retrieval": 74.36, "STS": 63.50}


def _percent(metrics: dict, key: str) -> float:
    values = [v for k, v in metrics.items()]
    return metrics[key] * (1 if any(v > 1 for v in values) else 100)


@pytest.fixture(scope="module")
def piccolo2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("results") / "sensenova__piccolo-large-zh-v2" / "external"
    for task, (split, subset, metrics) in PICCOLO2.items():
        write_v2(folder, task, {split: {subset: metrics}}, version=None if len(task) % 2 else "0.0.0")
    (folder / "model_meta.json").write_text(json.dumps({"name": "sensenova/piccolo-large-zh-v2"}), encoding="utf-8")
    return folder.parent.parent


def test_library_copy_of_the_public_scores_matches_the_files():
    """piccolo_lib.cmteb.PICCOLO2_PUBLIC_SCORES (notebook 12) holds the same split, subset and values as above."""
    from piccolo_lib.cmteb import PICCOLO2_PUBLIC_SCORES

    assert set(PICCOLO2_PUBLIC_SCORES) == set(PICCOLO2)
    for task, (split, subset, metrics) in PICCOLO2_PUBLIC_SCORES.items():
        assert (split, subset) == PICCOLO2[task][:2], task
        for key, value in metrics.items():
            assert abs(value - PICCOLO2[task][2][key]) < 1e-9, (task, key)


def test_legacy_conventions_reproduce_the_report_table(piccolo2_dir: Path):
    (report,) = build_reports(piccolo2_dir, "cmteb-legacy")
    assert report.model == "sensenova/piccolo-large-zh-v2" and report.dim is None
    data = report.data
    assert data["n_tasks"] == 35 and data["missing"] == []
    assert {c: round(v, 2) for c, v in data["categories"].items()} == REPORT_TABLE
    assert round(data["average"], 2) == 70.95
    # pair classification is cosine AP on the legacy leaderboard (not mteb 2's max_accuracy) ...
    assert data["tasks"]["Cmnli"] == 92.64 and report.details["Cmnli"]["key"] == "cos_sim_ap"
    # ... reranking the old "map", STS the old "cos_sim_spearman", read through their aliases
    assert report.details["T2Reranking"]["key"] == "map" and report.details["BQ"]["key"] == "cos_sim_spearman"
    assert report.details["AmazonReviewsClassification"]["subset"] == "zh"
    assert report.details["MassiveIntentClassification"]["subset"] == "zh-CN"
    # fractions and percents both end up in percent
    assert data["tasks"]["TNews"] == 54.52 and data["tasks"]["IFlyTek"] == 52.1 and data["tasks"]["T2Retrieval"] == 86.14


def test_cmteb_convention_on_the_same_files(piccolo2_dir: Path):
    (report,) = build_reports(piccolo2_dir, "cmteb")
    data = report.data
    legacy_only = {"AmazonReviewsClassification", "MassiveIntentClassification", "MassiveScenarioClassification", "STS22"}
    assert data["n_tasks"] == 31 and data["missing"] == [] and not legacy_only & set(data["tasks"])
    keys = {"PairClassification": "max_accuracy", "Reranking": "map", "Classification": "accuracy",
            "Clustering": "v_measure", "Retrieval": "ndcg_at_10", "STS": "cos_sim_spearman"}
    expected = {t: _percent(m, "cosine_spearman" if "cosine_spearman" in m else keys[c])
                for t, (_, _, m) in PICCOLO2.items() if t not in legacy_only
                for c in [report.details[t]["category"]]}
    assert data["tasks"] == pytest.approx(expected, abs=1e-4)
    assert data["categories"]["PairClassification"] == pytest.approx((86.08538785327721 + 84.35300487276665) / 2, abs=1e-4)
    assert data["average"] == pytest.approx(fmean(expected.values()), abs=1e-4)


def test_split_subset_metric_choice_and_missing_tasks(tmp_path: Path):
    folder = tmp_path / "m"
    # mteb < 1.11, multilingual: the Chinese subset of the test split, not English, not validation
    write_pre111(folder, "AmazonReviewsClassification",
                 {"test": {"en": {"accuracy": 0.61}, "zh": {"accuracy": 0.4944, "f1": 0.46}},
                  "validation": {"zh": {"accuracy": 0.10}}})
    # mteb 2 runs MultilingualSentiment on validation and test: cmteb averages both, legacy reads validation
    write_v2(folder, "MultilingualSentiment", {"validation": {"default": {"accuracy": 0.70, "main_score": 0.70}},
                                                "test": {"default": {"accuracy": 0.80, "main_score": 0.80}}})
    # mteb < 1.11 pair classification: nested cos_sim / max dicts, fractions
    write_pre111(folder, "Ocnli", {"validation": {"cos_sim": {"accuracy": 0.80, "ap": 0.85}, "max": {"accuracy": 0.81, "ap": 0.86}}})
    # the benchmark's split absent: the preference order test > dev > validation picks dev
    write_v2(folder, "ATEC", {"dev": {"default": {"cosine_spearman": 0.30}}, "validation": {"default": {"cosine_spearman": 0.20}}})
    (folder / "BQ.json").write_text("{not json", encoding="utf-8")  # unreadable: missing, with the reason
    legacy = build_reports(tmp_path, "cmteb-legacy")[0]
    assert legacy.model == "m"
    assert legacy.data["tasks"] == {"AmazonReviewsClassification": 49.44, "MultilingualSentiment": 70.0,
                                    "Ocnli": 85.0, "ATEC": 30.0}
    assert legacy.details["ATEC"]["split"] == "dev" and legacy.details["Ocnli"]["key"] == "cosine_ap"
    cm = build_reports(tmp_path, "cmteb")[0]
    assert cm.data["tasks"]["MultilingualSentiment"] == pytest.approx(75.0)
    assert cm.details["MultilingualSentiment"]["split"] == "validation+test"
    assert cm.data["tasks"]["Ocnli"] == pytest.approx(81.0)  # max_accuracy under mteb 2's convention
    for report, n in ((legacy, 4), (cm, 3)):  # AmazonReviewsClassification is in the legacy set only
        assert report.data["n_tasks"] == n and "Cmnli" in report.data["missing"] and "BQ" in report.data["missing"]
        assert report.reasons["Cmnli"] == "no result file" and report.reasons["BQ"].startswith("unreadable")
        assert report.data["average"] is None and set(report.data["categories"]) == set(CATEGORIES)
        assert all(v is None for v in report.data["categories"].values())  # every category lacks a task
    md = render([legacy], "md")
    assert "Missing for m" in md and "BQ (unreadable" in md and "| Ocnli | PairClassification | validation | cosine_ap |" in md


def _local_files(folder: Path, scores: dict[str, float], meta_name: str | None) -> None:
    for category, score in scores.items():
        metric = {"Classification": "accuracy", "Clustering": "v_measure", "PairClassification": "max_accuracy",
                  "Reranking": "map_at_1000", "Retrieval": "ndcg_at_10", "STS": "cosine_spearman"}[category]
        write_v2(folder, f"PiccoloLocal{category}", {"test": {"default": {metric: score, "main_score": score}}})
    if meta_name:
        (folder / "model_meta.json").write_text(json.dumps({"name": meta_name}), encoding="utf-8")


def test_models_side_by_side_dims_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture):
    base = tmp_path / "results"
    a = {c: 0.5 + 0.05 * i for i, c in enumerate(CATEGORIES)}
    _local_files(base / "local__a" / "local", a, "local/a")
    _local_files(base / "local__a" / "local" / "experiments" / "truncate_dim_64", {c: v - 0.1 for c, v in a.items()}, "local/a")
    _local_files(base / "local__b" / "local", {c: 0.4 for c in CATEGORIES}, "local/b")
    reports = build_reports(tmp_path, "local")
    assert [(r.model, r.dim) for r in reports] == [("local/a", None), ("local/a", 64), ("local/b", None)]
    full, small = reports[0].data["average"], reports[1].data["average"]
    assert full == pytest.approx(100 * fmean(a.values())) and small == pytest.approx(full - 10)
    md = render(reports, "md")
    assert "| Category (tasks) | metric | local/a | local/a @64 | local/b |" in md
    assert "| 64 |" in md and f"| {small:.2f} | -10.00 |" in md  # the dims table: score and drop vs full
    assert "Matryoshka dims, local/b" not in md  # one dim only: no dims table
    rows = list(csv.DictReader(io.StringIO(render(reports, "csv"))))
    sts = [r for r in rows if r["level"] == "task" and r["name"] == "PiccoloLocalSTS" and r["model"] == "local/a" and not r["dim"]]
    assert sts == [{"model": "local/a", "dim": "", "level": "task", "name": "PiccoloLocalSTS", "category": "STS",
                    "metric": "cosine_spearman", "split": "test", "subset": "default", "mteb_version": "2.26.24",
                    "score": str(round(100 * a["STS"], 4))}]
    # piccolo report --format json: exactly the documented keys; --models keeps one model
    assert cli.main(["report", str(tmp_path), "--format", "json", "--models", "local/b"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["benchmark", "categories", "average", "n_tasks", "missing", "tasks"]
    assert out["benchmark"] == "local" and list(out["categories"]) == list(CATEGORIES)  # auto-detected
    assert out["average"] == pytest.approx(40.0) and out["n_tasks"] == 6 and out["missing"] == []
    assert cli.main(["report", str(tmp_path), "--format", "json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"local/a", "local/a @64", "local/b"}
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 1
    assert "no results folder" in capsys.readouterr().err
