"""``piccolo data synth``: options, config file, task file, and the printed summary.

    piccolo data synth OUT_DIR [--config synth.yaml] [--backend http|transformers] [--url URL] [--model NAME]
                       [--domains 电商购物,医疗健康] [--tasks-file tasks.txt] [--tasks-per-domain 20]
                       [--examples-per-task 5] [--batch-size 8] [--rate 2] [--limit N] [--filter-model e5-small|none]
                       [--top-k 3] [--seed 0] [--retry-failed] ...

Precedence: defaults < the YAML config < command-line options. The API key is only ever read from the
environment variable named by ``api_key_env`` (default ``PICCOLO_SYNTH_API_KEY``). Errors the user can fix
print one line naming the file, row or key, and exit 1.

Introduced in notebooks/10_synthetic_data.ipynb.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import fields
from pathlib import Path

from .pipeline import SynthConfig, run_synth
from .backends import SynthError
from .filters import MIN_CJK_SHARE, REASONS, cjk_share

_POSITIVE = ("tasks_per_domain", "examples_per_task", "batch_size", "top_k", "max_new_tokens", "max_consecutive_failures")


def load_config(path: str | Path | None = None, **overrides: object) -> SynthConfig:
    """A :class:`SynthConfig` from a YAML file (optional) and overrides (None values ignored), checked."""
    import yaml

    values: dict = {}
    source = str(path) if path else "synth config"
    if path:
        p = Path(path)
        if not p.is_file():
            raise SynthError(f"{p}: no such config file")
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise SynthError(f"{p}: expected a mapping of key: value, got {type(data).__name__}")
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    names = [f.name for f in fields(SynthConfig)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            raise SynthError(f"{source}: unknown key {key!r}{f'; did you mean {close[0]!r}?' if close else ''} "
                             f"(valid: {', '.join(names)})")
    for key in ("domains", "tasks"):
        if isinstance(values.get(key), str):
            values[key] = [x.strip() for x in values[key].split(",") if x.strip()]
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    for key in _POSITIVE:
        v = values.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SynthError(f"{source}: key {key!r}: expected an integer >= 1, got {v!r}")
    if values.get("filter_model") in ("none", "None", ""):
        values["filter_model"] = None
    return SynthConfig(**values)


def read_tasks_file(path: str | Path, min_cjk_share: float = MIN_CJK_SHARE) -> tuple[str, ...]:
    """One task per line (blank lines and ``#`` comments skipped); a non-Chinese line is an error."""
    p = Path(path)
    if not p.is_file():
        raise SynthError(f"{p}: no such tasks file")
    tasks = []
    for row, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if cjk_share(line) < min_cjk_share:
            raise SynthError(f"{p}: row {row}: task: expected a task described in Chinese "
                             f"(CJK share >= {min_cjk_share}), got {line[:60]!r}")
        tasks.append(line)
    if not tasks:
        raise SynthError(f"{p}: no task in the file (one task per line)")
    return tuple(tasks)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``synth`` under ``piccolo data``."""
    s = sub.add_parser("synth", help="LLM-made retrieval triples: brainstorm tasks, generate, check, filter")
    s.add_argument("out_dir")
    s.add_argument("--config", default=None, help="YAML file of SynthConfig keys (piccolo_lib/synth.py)")
    s.add_argument("--backend", default=None, choices=["http", "transformers"])
    s.add_argument("--url", default=None, help="OpenAI-compatible API base (default $PICCOLO_SYNTH_URL)")
    s.add_argument("--model", default=None, help="served model name, or a hub name/folder for transformers")
    s.add_argument("--api-key-env", default=None, help="environment variable holding the key (PICCOLO_SYNTH_API_KEY)")
    s.add_argument("--domains", default=None, help="comma-separated domains to brainstorm tasks for")
    s.add_argument("--tasks-file", default=None, help="one task per line: skip brainstorming")
    for flag, kind in (("--tasks-per-domain", int), ("--examples-per-task", int), ("--seed", int),
                       ("--batch-size", int), ("--rate", float), ("--max-retries", int), ("--timeout", float),
                       ("--temperature", float), ("--max-new-tokens", int), ("--top-k", int), ("--limit", int)):
        s.add_argument(flag, type=kind, default=None)
    s.add_argument("--filter-model", default=None, help="consistency filter model (default e5-small; none: off)")
    s.add_argument("--device", default=None)
    s.add_argument("--trust-remote-code", action="store_true", default=None,
                   help="let a transformers model run its repository's code (off by default)")
    s.add_argument("--retry-failed", action="store_true", default=None,
                   help="ask again for replies logged as failures after their retries (empty, cut off, "
                        "malformed task lists), with new seeds")


def format_stats(stats: dict, out_dir: str) -> str:
    """The run's counts, one per line."""
    lines = []
    if "brainstorm" in stats:
        b = stats["brainstorm"]
        lost = {r: n for r, n in stats.get("brainstorm_failed_replies", {}).items() if n}
        lines.append(f"brainstorm: {b['replied']} of {b['domains']} domains replied, {b['malformed']} malformed"
                     + (f" ({', '.join(f'{r} {n}' for r, n in lost.items())} after retries; "
                        "--retry-failed asks again)" if lost else ""))
    failed = sum(stats["failed_replies"].values())
    lines += [f"planned {stats['planned']} examples over {stats['tasks']} tasks; generated {stats['generated']}, "
              f"failed {failed}, pending {stats['pending']}"]
    lines += [f"  failed {r:<27}{n:>7}" for r, n in stats["failed_replies"].items() if n]
    if failed:
        lines.append("  (replies unusable after every retry; --retry-failed asks again)")
    lines += [f"  dropped {r:<26}{stats['dropped'][r]:>7}" for r in REASONS]
    lines.append(f"  kept{'':<31}{stats['kept']:>7}  -> {Path(out_dir) / 'retrieval.jsonl'}")
    run = stats["this_run"]
    lines.append(f"this run: {run['requests']} requests, {run['failed']} failed after retries (re-run to retry them)")
    return "\n".join(lines)


def cli(args: argparse.Namespace) -> int:
    """Run ``piccolo data synth``; a SynthError (or missing model) is one line on stderr and exit 1."""
    keys = {f.name for f in fields(SynthConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in keys}
    try:
        cfg = load_config(args.config, **overrides)
        if args.tasks_file:
            cfg.tasks = read_tasks_file(args.tasks_file, cfg.min_cjk_share)
        stats = run_synth(cfg)
    except (SynthError, FileNotFoundError) as e:
        print(f"piccolo data synth: {e}", file=sys.stderr)
        return 1
    print(format_stats(stats, cfg.out_dir))
    run = stats["this_run"]
    if run["failed"]:  # the folder is usable but incomplete: say so in the exit status
        print(f"piccolo data synth: {run['failed']} of {run['requests']} requests failed after retries "
              f"(last: {run['last_error']}); re-run the same command to retry them", file=sys.stderr)
        return 1
    return 0
