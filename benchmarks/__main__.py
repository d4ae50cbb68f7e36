"""`python -m benchmarks [--quick] [--only NAME[,NAME]] [--course] [--output PATH]` (also `make bench`).

Runs the benchmarks and rewrites RESULTS.md (default benchmarks/RESULTS.md; quick runs default to
build/benchmarks-quick/RESULTS.md so they never overwrite the real results). The measured dicts are
kept in results.json beside it: a run with ``--only`` replaces those sections and re-renders the
rest from the file, each section with its own date. Benchmarks (one module each, ``run(quick) -> dict``):

    train_step     training-step throughput and peak memory: piccolo_lib vs plain ST vs the reference strategy
    mrl_overhead   step time with the 7 MRL dims vs without
    eval_encode    `piccolo eval`'s encoding path vs SentenceTransformer.encode
    scaling        step time vs batch size and vs negatives K, with plots
    ceiling        float32 matmul GFLOP/s and the training step's model FLOP/s
    validate_speed `piccolo data validate` on 1M rows (when benchmarks/validate_speed.py exists)
    real_model     e5-small (the real model): step time beside the toy, and the three recipes on it
    gradcache      GradCache vs plain: peak step memory and step time vs batch size on e5-small (--only)
    refresh        static vs refreshed hard negatives on e5-small, held-out retrieval, 2 seeds (--only)
    merging        base e5-small vs a retrieval fine-tune vs merges, per category (--only, after refresh)
    levers         e5-small speed levers: packing, bf16 autocast, attention, step by phase, memory, loss drift (--only)
    packing        the quickstart with packed encoding off and on, 2 seeds: held-out scores, training time (--only)
    search         search with MRL prefixes at float32/int8/binary on ~19.6k passages: quality, size, latency (--only)
    course         notebooks and quickstart wall time (10-15 min): only with --course, --only course,
                   or when the rest of a full run leaves room for it within 15 minutes
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

HERE = Path(__file__).resolve().parent
ORDER = ("train_step", "mrl_overhead", "eval_encode", "scaling", "ceiling", "validate_speed", "real_model",
         "gradcache", "refresh", "refresh_scale", "merging", "levers", "packing", "search", "course")
ON_REQUEST = ("gradcache", "refresh", "refresh_scale", "merging", "levers", "packing", "search", "course")  # e5-small runs of 15-60 min: only with --only
DEFAULT = tuple(n for n in ORDER if n not in ON_REQUEST)
BUDGET_S = 15 * 60  # the full run's target on an idle 2-core machine
COURSE_ESTIMATE_S = 900  # until a course section has been measured (7 notebooks + quickstart)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced runs (for tests): no speed claims")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(ORDER)}")
    p.add_argument("--course", action="store_true", help="also time the notebooks and the quickstart (~10 min)")
    p.add_argument("--output", default=None, help="RESULTS.md path (default benchmarks/RESULTS.md; "
                                                  "quick: build/benchmarks-quick/RESULTS.md)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own; quick: 1)")
    args = p.parse_args(argv)
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(ORDER))
        if unknown:
            p.error(f"--only: unknown benchmark(s) {unknown}; choose from {', '.join(ORDER)}")
    return args


def _load(store: Path, quick: bool) -> dict:
    """Previous sections of the same kind of run (quick or full), or nothing."""
    if store.exists():
        old = json.loads(store.read_text(encoding="utf-8"))
        if old.get("quick") == quick:
            return old
    return {"quick": quick, "sections": {}}


def _run_one(name: str, quick: bool, out_dir: Path) -> dict:
    from benchmarks.common import machine

    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"benchmarks.{name}":
            return {"skipped": f"benchmarks/{name}.py is not there"}
        raise
    t0 = time.perf_counter()
    try:
        data = module.run(quick=quick)
        error = None
    except Exception:  # noqa: BLE001  (one failing benchmark must not lose the others)
        data, error = None, traceback.format_exc(limit=3)
    section = {"data": data, "error": error, "quick": quick, "wall_s": time.perf_counter() - t0,
               "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    if name == "scaling" and data:
        from benchmarks.scaling import plot

        section["images"] = [p.name for p in plot(data, out_dir)]
    return section


def render(store: dict, course_note: str | None) -> str:
    """RESULTS.md from the stored sections."""
    from benchmarks import report

    sec = store["sections"]
    ok = {k: v for k, v in sec.items() if v.get("data")}
    latest = max((v["measured_at"] for v in sec.values() if "measured_at" in v), default="never")
    newest = max((v for v in sec.values() if "machine" in v), key=lambda v: v["measured_at"], default={})
    machine = newest.get("machine")
    parts = ["# Benchmark results\n\nWritten by `python -m benchmarks` (`make bench`); regenerate rather than edit. "
             "Every comparison interleaves its variants step by step on identical inputs, so machine noise hits them "
             "alike; figures are medians after warm-up with the min-max spread in brackets, and each ratio comes "
             f"from one run. Latest section measured {latest}.\n"]
    if machine:
        parts.append(report.machine_section(machine, store["quick"]))
    try:
        parts.append(report.goals_section(ok))
    except (KeyError, TypeError) as exc:
        parts.append(f"## Goals\n\nA section is stored in an older format ({exc!r}): rerun `python -m benchmarks`.\n")
    renderers = {
        "train_step": lambda s: report.train_section(s["data"]),
        "mrl_overhead": lambda s: report.mrl_section(s["data"]),
        "eval_encode": lambda s: report.eval_section(s["data"]),
        "scaling": lambda s: report.scaling_section(s["data"], s.get("images", [])),
        "ceiling": lambda s: report.ceiling_section(s["data"], (ok.get("train_step") or {}).get("data")),
        "validate_speed": lambda s: report.generic_section("6. Data validation speed (benchmarks/validate_speed.py)",
                                                           s["data"]),
        "real_model": lambda s: report.real_model_section(s["data"]),
        **{n: (lambda s, n=n: importlib.import_module(f"benchmarks.{n}").render(s["data"]))
           for n in ("gradcache", "refresh", "refresh_scale", "merging", "levers", "packing", "search")},
    }
    for name in ORDER[:-1]:
        s = sec.get(name)
        if s is None:
            continue
        if s.get("skipped"):
            parts.append(f"## {name}\n\nSkipped: {s['skipped']}.\n")
            continue
        if s.get("error"):
            parts.append(f"## {name}\n\nFailed ({s['measured_at']}):\n\n```\n{s['error']}\n```\n")
            continue
        try:
            body = renderers[name](s)
        except (KeyError, TypeError) as exc:  # a section stored by an older version of the harness
            body = f"## {name}\n\nStored in an older format ({exc!r}): rerun `python -m benchmarks --only {name}`.\n"
        stamp = f"\n_Measured {s['measured_at']} in {s['wall_s']:.0f} s{' (QUICK)' if s['quick'] else ''}._\n"
        parts.append(body + stamp)
    course = sec.get("course")
    if course and course.get("data"):
        note = f"_Measured {course['measured_at']} in {course['wall_s']:.0f} s{' (QUICK)' if course['quick'] else ''}._"
        parts.append(report.course_section(course["data"], (course_note + "\n\n" + note) if course_note else note))
    elif course and course.get("error"):
        parts.append(f"## 7. Course timing\n\nFailed:\n\n```\n{course['error']}\n```\n")
    else:
        note = course_note or "Not measured yet: `python -m benchmarks --only course`."
        parts.append(report.course_section(None, note))
    walls = {k: v["wall_s"] for k, v in sec.items() if "wall_s" in v}
    parts.append("## Run time per section\n\n| section | seconds |\n|---|---|\n"
                 + "".join(f"| {k} | {v:.0f} |\n" for k, v in walls.items())
                 + f"| total | {sum(walls.values()):.0f} |\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*negatives < neg_num.*")  # K > listed labels: sampled with replacement
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if args.threads or args.quick:  # quick runs share busy machines: 1 thread unless told otherwise
        torch.set_num_threads(args.threads or 1)
    output = Path(args.output) if args.output else (
        HERE.parent / "build" / "benchmarks-quick" / "RESULTS.md" if args.quick else HERE / "RESULTS.md")
    output.parent.mkdir(parents=True, exist_ok=True)
    store_path = output.with_name("results.json")
    store = _load(store_path, args.quick)
    names = args.only.split(",") if args.only else list(DEFAULT) + (["course"] if args.course else [])
    names = [n for n in ORDER if n in names]
    t_start = time.perf_counter()
    course_note = None
    for name in names:
        print(f"[benchmarks] {name} ...", flush=True)
        store["sections"][name] = _run_one(name, args.quick, output.parent)
        print(f"[benchmarks] {name}: {store['sections'][name].get('wall_s', 0):.0f} s", flush=True)
    if "course" not in names and not args.quick and not args.only:  # included when the 15-min budget allows
        previous = (store["sections"].get("course") or {}).get("data") or {}
        estimate = previous.get("total_s", COURSE_ESTIMATE_S)
        elapsed = time.perf_counter() - t_start
        if elapsed + estimate <= BUDGET_S:
            store["sections"]["course"] = _run_one("course", False, output.parent)
        else:
            course_note = (f"Not part of this run: it takes about {estimate / 60:.0f} min and the other sections took "
                           f"{elapsed / 60:.1f} min of the {BUDGET_S // 60}-minute budget. It is a separate "
                           "`python -m benchmarks --only course` (or `python -m benchmarks --course`).")
    store_path.write_text(json.dumps(store, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    text = render(store, course_note)
    output.write_text(text, encoding="utf-8")
    print(text)
    print(f"[benchmarks] wrote {output} and {store_path} in {time.perf_counter() - t_start:.0f} s")
    return 1 if any(s.get("error") for s in store["sections"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
