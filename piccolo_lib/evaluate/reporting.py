"""C-MTEB-style tables from mteb result files: one score per category, the average, per model and dim.

The leaderboard convention (and the report's): a category's score is the mean of its tasks' scores,
and the average is over all tasks (dataset-weighted), not over categories. A model that lacks a task
gets no score for that task's category nor an average: the missing tasks are listed instead.

:func:`build_reports` reads mteb result files of any age (``mteb.results.TaskResult.from_disk`` converts
files from before mteb 1.11 and the legacy C-MTEB files with ``cos_sim_*`` keys), in the benchmark's
metric convention (:mod:`piccolo_lib.cmteb`), on the benchmark's split (else test, dev, validation) and
subset, in percent: a file whose mteb version is unknown or 0.0.0 (hand-converted legacy files) is in
percent when any of the entry's metric values exceeds 1, else in fractions, as mteb itself writes.

Introduced in notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from ..model.card import model_card_section  # noqa: F401  (re-exported: its old home)
from ..scores import CATEGORIES, aggregate, format_table  # noqa: F401  (re-exported: reporting.CATEGORIES, ...)

SPLIT_PREFERENCE = ("test", "dev", "validation")
_NOT_METRIC = re.compile(r"time|samples|^num_|^n_|count|hf_subset|languages|version")


# ---------------------------------------------------------------- reading result files


@dataclass
class Report:
    """One model (at one dim) on one benchmark. ``data`` is the JSON of ``piccolo report --format json``."""

    model: str
    dim: int | None
    data: dict
    details: dict[str, dict] = field(default_factory=dict)  # task -> metric, split, subset, mteb_version, path
    reasons: dict[str, str] = field(default_factory=dict)  # missing task -> why
    zero_shot: dict[str, dict] = field(default_factory=dict)  # task -> {"zero_shot": x, "logreg": y}

    @property
    def label(self) -> str:
        return self.model + (f" @{self.dim}" if self.dim else "")


def _model_of(folder: Path, root: Path) -> tuple[str, int | None]:
    """(model label, truncate dim) of a folder of result files, from mteb's cache layout if it is one:
    ``<model>/<revision>[/experiments/truncate_dim_<d>]`` with ``model_meta.json`` in the revision folder."""
    rel, dim = folder.relative_to(root).parts, None
    if "experiments" in rel:
        i = rel.index("experiments")
        exp = "/".join(rel[i + 1:])
        match = re.fullmatch(r"truncate_dim_(\d+)", exp)
        dim, rel = (int(match.group(1)) if match else None), rel[:i] + (() if match else (exp,))
    for meta in (root.joinpath(*rel) / "model_meta.json", folder / "model_meta.json"):
        if meta.is_file() and len(rel) >= 2:
            return json.loads(meta.read_text(encoding="utf-8")).get("name") or rel[-2].replace("__", "/"), dim
    return "/".join(rel) or root.name, dim


def _percent_scale(entry: dict, mteb_version: str | None) -> float:
    """100 for an entry stored as fractions, 1 for one already in percent (see the module docstring)."""
    from packaging.version import InvalidVersion, Version

    try:
        written_by_mteb = mteb_version is not None and Version(mteb_version) >= Version("1.11")
    except InvalidVersion:
        written_by_mteb = False
    if written_by_mteb:
        return 100.0
    values = [v for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
              and not _NOT_METRIC.search(k)]
    return 1.0 if any(abs(v) > 1.0 for v in values) else 100.0


def _task_score(result: Any, spec: Any) -> tuple[float, dict] | str:
    """(percent score, details) of one result for one TaskSpec, or the reason it cannot be scored."""
    splits = [s for s in spec.splits if s in result.scores]
    if not splits:
        splits = [s for s in SPLIT_PREFERENCE if s in result.scores][:1]
    if not splits:
        return f"no split among {list(spec.splits) + list(SPLIT_PREFERENCE)} (has {sorted(result.scores)})"
    values, subsets, keys = [], set(), set()
    for split in splits:
        entries = [e for e in result.scores[split] if e.get("hf_subset") in spec.subsets]
        if not entries and spec.subsets == ("default",) and len(result.scores[split]) == 1:
            entries = result.scores[split]  # a monolingual task filed under another subset name
        if not entries:
            return f"no subset {list(spec.subsets)} in split {split}"
        for entry in entries:
            key = next((k for k in spec.metric_keys if isinstance(entry.get(k), (int, float))), None)
            if key is None:
                return f"no {' / '.join(spec.metric_keys)} in split {split}"
            values.append(entry[key] * _percent_scale(entry, result.mteb_version))
            subsets.add(entry.get("hf_subset", "default"))
            keys.add(key)
    return fmean(values), {"metric": spec.metric, "key": "/".join(sorted(keys)), "split": "+".join(splits),
                           "subset": "+".join(sorted(subsets)), "mteb_version": result.mteb_version or "unknown"}


def build_reports(results_dir: str | Path, benchmark: str = "cmteb", models: list[str] | None = None,
                  tasks: list[str] | None = None) -> list[Report]:
    """Score every model (and Matryoshka dim) found under ``results_dir`` on ``benchmark``.

    Args:
        results_dir: Any folder holding mteb result files (``<task>.json``): an ``evaluate_model`` output
            dir, a clone of embeddings-benchmark/results, or a flat folder of one model's files.
        benchmark: ``cmteb``, ``cmteb-legacy`` or ``local`` (:func:`piccolo_lib.cmteb.benchmark_spec`).
        models: keep models whose label contains one of these strings.
        tasks: score only these tasks of the benchmark (its title then says so).

    Returns:
        One Report per (model, dim), sorted by model then dim (full first).
    """
    from mteb.results import TaskResult

    from .cmteb import benchmark_spec

    root, spec = Path(results_dir), benchmark_spec(benchmark, tasks)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder {root}")
    names = {t.name for t in spec.tasks}
    folders: dict[tuple[str, int | None], dict[str, Path]] = {}
    for path in sorted(root.rglob("*.json")):
        task = path.stem[:-len("ZeroShot")] if path.stem.endswith("ZeroShot") else path.stem
        if task in names:
            key = _model_of(path.parent, root)
            if not models or any(m in key[0] for m in models):
                folders.setdefault(key, {})[path.stem] = path
    reports = []
    for (model, dim), files in sorted(folders.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        report = Report(model, dim, {})
        scores: dict[str, dict] = {}
        for task in spec.tasks:
            if task.name not in files:
                report.reasons[task.name] = "no result file"
                continue
            try:
                found = _task_score(TaskResult.from_disk(files[task.name]), task)
            except Exception as err:  # unreadable or not a task result: say so, never average it in
                found = f"unreadable {files[task.name]}: {err}"
            if isinstance(found, str):
                report.reasons[task.name] = found
                continue
            # files hold fractions to 6 decimals: 4 in percent (legacy: the leaderboard's 2)
            value = round(found[0], 4 if spec.round_tasks is None else spec.round_tasks)
            scores[task.name] = {"category": task.category, "main_score": value}
            report.details[task.name] = {**found[1], "category": task.category, "path": str(files[task.name])}
            zs = files.get(f"{task.name}ZeroShot")
            if zs is not None and not isinstance(zs_score := _task_score(TaskResult.from_disk(zs), task), str):
                report.zero_shot[task.name] = {"zero_shot": zs_score[0], "logreg": value}
        report.data = _report_json(spec, scores, list(report.reasons))
        reports.append(report)
    return reports


def _report_json(spec: Any, scores: dict[str, dict], missing: list[str]) -> dict:
    """The exact JSON of a report: category means only where no task of the category is missing."""
    incomplete = {t.category for t in spec.tasks if t.name in missing}
    categories: dict[str, float | None] = {c: None for c in CATEGORIES}
    if scores:
        means, average = aggregate(scores)
        categories.update({c: v for c, v in means.items() if c not in incomplete})
    return {"benchmark": spec.name, "categories": categories,
            "average": average if scores and not missing else None, "n_tasks": len(scores),
            "missing": missing, "tasks": {n: s["main_score"] for n, s in scores.items()}}


# ---------------------------------------------------------------- rendering


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(reports: list[Report], fmt: str = "md", benchmark: str | None = None,
           tasks: list[str] | None = None) -> str:
    """The reports as ``md`` (tables, 2 decimals), ``json`` (one report: its object; several: {label:
    object}) or ``csv`` (one row per model, dim and number, with its split, metric and mteb version)."""
    if not reports:
        raise ValueError("no result files of this benchmark's tasks were found")
    if fmt == "json":
        out = reports[0].data if len(reports) == 1 else {r.label: r.data for r in reports}
        return json.dumps(out, indent=2, ensure_ascii=False)
    if fmt == "csv":
        return _render_csv(reports)
    if fmt != "md":
        raise ValueError(f"unknown format {fmt!r}: md, json or csv")
    return _render_md(reports, benchmark, tasks)


def _render_csv(reports: list[Report]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "dim", "level", "name", "category", "metric", "split", "subset", "mteb_version", "score"])
    for r in reports:
        for name, score in r.data["tasks"].items():
            d = r.details[name]
            w.writerow([r.model, r.dim or "", "task", name, d["category"], d["key"], d["split"], d["subset"],
                        d["mteb_version"], score])
        for c, v in r.data["categories"].items():
            w.writerow([r.model, r.dim or "", "category", c, c, "", "", "", "", "" if v is None else v])
        w.writerow([r.model, r.dim or "", "average", "Average", "", "", "", "", "", r.data["average"] or ""])
        for name in r.data["missing"]:
            w.writerow([r.model, r.dim or "", "missing", name, "", "", "", "", "", ""])
        for name, z in r.zero_shot.items():
            w.writerow([r.model, r.dim or "", "zero_shot", f"{name}ZeroShot", "Classification", "accuracy",
                        r.details[name]["split"], "", r.details[name]["mteb_version"], z["zero_shot"]])
    return buf.getvalue()


def _render_md(reports: list[Report], benchmark: str | None, tasks: list[str] | None) -> str:
    from .cmteb import benchmark_spec

    spec = benchmark_spec(benchmark or reports[0].data["benchmark"], tasks)
    metrics = {c: sorted({t.metric for t in spec.tasks if t.category == c}) for c in CATEGORIES}
    counts = {c: sum(t.category == c for t in spec.tasks) for c in CATEGORIES}
    head = ["Category (tasks)", "metric", *[r.label for r in reports]]
    lines = [f"**{spec.title}**, scores in %" + (f", task scores rounded to {spec.round_tasks} decimals "
                                                "before averaging" if spec.round_tasks is not None else ""), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in (c for c in CATEGORIES if counts[c]):
        lines.append(f"| {c} ({counts[c]}) | {', '.join(metrics[c])} | "
                     + " | ".join(_cell(r.data["categories"][c]) for r in reports) + " |")
    lines.append(f"| **Average ({len(spec.tasks)})** | | "
                 + " | ".join(_cell(r.data["average"]) for r in reports) + " |")
    lines.append("| tasks found | | " + " | ".join(f"{r.data['n_tasks']}/{len(spec.tasks)}" for r in reports) + " |")
    for r in (r for r in reports if r.data["missing"]):
        lines.append(f"\nMissing for {r.label} (no category score or average where a task is missing): "
                     + ", ".join(f"{n} ({r.reasons[n]})" for n in r.data["missing"]))
    lines += ["", "| Task | Category | split | metric (key read) | " + " | ".join(r.label for r in reports) + " |",
              "|" + "---|" * (4 + len(reports))]
    for t in spec.tasks:
        ds = [r.details[t.name] for r in reports if t.name in r.details]
        split = "/".join(sorted({d["split"] + ("" if d["subset"] == "default" else f" ({d['subset']})")
                                 for d in ds})) or "-"
        key = "/".join(sorted({d["key"] for d in ds})) or t.metric
        lines.append(f"| {t.name} | {t.category} | {split} | {key} | "
                     + " | ".join(_cell(r.data["tasks"].get(t.name)) for r in reports) + " |")
    versions = {r.label: sorted({d["mteb_version"] for d in r.details.values()}) for r in reports}
    lines.append("\nmteb version of the result files: "
                 + "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in versions.items()))
    if any(r.zero_shot for r in reports):
        lines += ["", "Zero-shot classification by label retrieval (nearest label name) vs mteb's logistic regression "
                  "(accuracy, %):", "", "| Task | model | logistic regression | zero-shot |", "|---|---|---|---|"]
        lines += [f"| {task} | {r.label} | {z['logreg']:.2f} | {z['zero_shot']:.2f} |"
                  for r in reports for task, z in r.zero_shot.items()]
    lines += dims_table(reports)
    return "\n".join(lines) + "\n"


def dims_table(reports: list[Report]) -> list[str]:
    """Markdown lines: per model with truncated-dim results, score per dim and the drop vs full."""
    lines: list[str] = []
    for model in dict.fromkeys(r.model for r in reports):
        rows = sorted((r for r in reports if r.model == model), key=lambda r: -(r.dim or 10**9))
        full = next((r for r in rows if r.dim is None), None)
        if len(rows) < 2 or full is None:
            continue
        lines += ["", f"Matryoshka dims, {model}:", "",
                  "| Dim | " + " | ".join(CATEGORIES) + " | Average | vs full |", "|" + "---|" * (len(CATEGORIES) + 3)]
        for r in rows:
            a, f = r.data["average"], full.data["average"]
            drop = "" if r.dim is None or a is None or f is None else f"{a - f:+.2f}"
            lines.append(f"| {r.dim or 'full'} | " + " | ".join(_cell(r.data["categories"][c]) for c in CATEGORIES)
                         + f" | {_cell(a)} | {drop} |")
    return lines

