"""Synthetic retrieval data: LLM-made (query, positive, hard negative) triples, as in the report's 200k rows.

    piccolo data synth OUT_DIR --url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    piccolo data synth OUT_DIR --backend transformers --model Qwen/Qwen2.5-7B-Instruct

Two steps, E5-mistral style (prompts: :mod:`piccolo_lib.synth_prompts`): brainstorm ``tasks_per_domain``
retrieval tasks per domain, then ask ``examples_per_task`` JSON triples per task, each with its own
query kind, length, clarity, passage length and difficulty (drawn with a seed from the example's id).
Backends: :mod:`piccolo_lib.synth.backends`. Checks: :mod:`piccolo_lib.synth.filters`.

Files in ``OUT_DIR``:

====================  ======================================================================================
``tasks.jsonl``       append-only log of brainstorm outcomes, one line per domain: ``id, domain, reply``
``generations.jsonl`` append-only log of example outcomes: ``id, domain, task, knobs, reply``
``retrieval.jsonl``   the result: ``text, text_pos, text_neg: [hard negative], type: retri_contrast``
``stats.json``        counts: planned, generated, failed replies and dropped by reason, kept, failed requests
                      of the last run
====================  ======================================================================================

Retries, within bounds. A request that fails (timeout, connection, 408/429/5xx) is retried by the backend
with backoff (tenacity), then left out of the logs, so a re-run asks again. A reply that arrives but cannot
be used (null or blank, ``finish_reason: length``, a brainstorm reply that is no task list) is asked again
with a new seed (the same seed would give the same sample), at most ``max_retries`` times; then it is logged
as a failure with its reason (``{"failure": "cut_off", "attempts": 5}``, :mod:`piccolo_lib.synth.journal`)
and counted in ``stats.json``, and ``retry_failed`` (``--retry-failed``) asks for those again, with further
seeds, instead of someone editing a log by hand.

Resumable: every request has a deterministic id (prompt version, seed, domain, task, example number);
a run first reads the logs and asks only for ids not in them, and writes each reply as one line, flushed
and synced, as soon as its batch returns. A run killed mid-write leaves at most a partial last line,
which the next run cuts off. So a re-run continues where the last stopped and never logs an id twice;
``retrieval.jsonl`` and ``stats.json`` are rebuilt from the logs at the end of every run (in plan order,
so an interrupted-then-resumed run gives the same rows as an uninterrupted one).

Introduced in notebooks/10_synthetic_data.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import HTTPBackend, Reply, SynthError, TransformersBackend
from .filters import MIN_CJK_SHARE, REASONS, check_triple, consistency_ranks, dedup, load_encoder, parse_tasks
from .journal import FAILURES, Journal, read_journal  # noqa: F401  (read_journal re-exported)
from .prompts import BRAINSTORM_PROMPT, DEFAULT_DOMAINS, EXAMPLE_PROMPT, KNOBS, PROMPT_VERSION
from ..io import atomic_write, jsonl_text

GIVEN_DOMAIN = "given"  # the domain of tasks passed in directly (no brainstorm step)


@dataclass
class SynthConfig:
    """Every knob of ``piccolo data synth``; a YAML file (``--config``) may set any of them."""

    out_dir: str = "runs/synth"
    backend: str = "http"  # http | transformers
    url: str | None = None  # http: the API base; default $PICCOLO_SYNTH_URL
    model: str | None = None  # the served model name (http) or a hub name / folder; default $PICCOLO_SYNTH_MODEL
    api_key_env: str = "PICCOLO_SYNTH_API_KEY"  # the key is read from this variable, never from a file
    domains: tuple[str, ...] = DEFAULT_DOMAINS
    tasks: tuple[str, ...] | None = None  # given tasks: skip brainstorming
    tasks_per_domain: int = 20
    examples_per_task: int = 5
    seed: int = 0
    batch_size: int = 8  # parallel HTTP requests, or prompts per generate() call
    rate: float | None = None  # requests per second (hosted APIs have quotas); None: no limit
    max_retries: int = 4  # per request: retries of a failed request, and of an unusable reply (new seeds)
    backoff: float = 1.0  # seconds before the first retry, doubled each retry
    timeout: float = 120.0  # seconds per HTTP request
    max_consecutive_failures: int = 20  # stop (resumably) when the endpoint seems down
    temperature: float = 1.0  # E5-mistral sampled at 1.0 for diversity
    top_p: float = 1.0
    max_new_tokens: int = 1024
    trust_remote_code: bool = False
    device: str | None = None
    min_cjk_share: float = MIN_CJK_SHARE
    filter_model: str | None = "e5-small"  # round-trip consistency model; None: no filter
    top_k: int = 3  # keep a triple when its positive ranks in the top k for its query
    limit: int | None = None  # at most this many new requests in this run (a budget; re-run to continue)
    retry_failed: bool = False  # ask again for replies logged as failures (empty, cut off, malformed tasks)
    progress: bool = True


def _id(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode("utf-8"), digest_size=8).hexdigest()


def request_seed(ident: str, attempt: int = 0) -> int:
    """The ``seed`` sent with a request: 32 bits of its id (vLLM and llama.cpp honour it); attempt ``k`` > 0 at an
    unusable reply gets 32 bits of another hash, so it draws a new sample, the same on every machine."""
    return int((ident if attempt == 0 else _id(ident, "attempt", attempt))[:8], 16)


def unusable(reply: Reply, brainstorm: bool, min_cjk_share: float = MIN_CJK_SHARE) -> str | None:
    """Why a reply that arrived cannot be used (one of :data:`FAILURES`), or None.

    A triple that is malformed is not asked again (it is counted as dropped, one place per reply); a brainstorm
    reply that is no task list would lose its whole domain, so it is.
    """
    if reply.text is None or not reply.text.strip():
        return "empty_reply"
    if reply.finish_reason == "length":
        return "cut_off"
    if brainstorm and parse_tasks(reply.text, min_cjk_share) is None:
        return "malformed_tasks"
    return None


def brainstorm_specs(cfg: SynthConfig) -> list[dict]:
    """One brainstorm request per domain."""
    return [{"id": _id(PROMPT_VERSION, cfg.seed, "brainstorm", d, cfg.tasks_per_domain), "domain": d,
             "prompt": BRAINSTORM_PROMPT.format(domain=d, n=cfg.tasks_per_domain)} for d in cfg.domains]


def tasks_from(cfg: SynthConfig, records: list[dict]) -> list[tuple[str, str]]:
    """(domain, task) pairs: the given tasks, else the parsed brainstorm replies (first ``tasks_per_domain``)."""
    if cfg.tasks:
        return [(GIVEN_DOMAIN, t) for t in cfg.tasks]
    replies = {r["id"]: r["reply"] for r in records}
    pairs = []
    for spec in brainstorm_specs(cfg):
        tasks = parse_tasks(replies.get(spec["id"], ""), cfg.min_cjk_share) or []
        pairs += [(spec["domain"], t) for t in tasks[: cfg.tasks_per_domain]]
    return pairs


def plan_examples(tasks: list[tuple[str, str]], cfg: SynthConfig) -> list[dict]:
    """``examples_per_task`` requests per task, each with knobs drawn from ``random.Random(its id)``."""
    specs = []
    for domain, task in tasks:
        for k in range(cfg.examples_per_task):
            ident = _id(PROMPT_VERSION, cfg.seed, domain, task, k)
            rng = random.Random(ident)
            knobs = {name: rng.choice(values) for name, values in KNOBS.items()}
            specs.append({"id": ident, "domain": domain, "task": task, "knobs": knobs,
                          "prompt": EXAMPLE_PROMPT.format(task=task, **knobs)})
    return specs


def _replies(backend: Any, prompts: list[str], seeds: list[int]) -> list[Reply | None]:
    """``backend.replies``, or a backend of one's own that only has ``generate`` (texts, no finish reason)."""
    if hasattr(backend, "replies"):
        return backend.replies(prompts, seeds)
    return [None if t is None else Reply(t) for t in backend.generate(prompts, seeds)]


def _request_all(cfg: SynthConfig, backend: Callable[[], Any], specs: list[dict], journal: Journal,
                 desc: str, budget: int | None) -> tuple[int, int]:
    """Ask for every spec without an outcome in ``journal`` (with ``retry_failed``, failed ones too), in batches;
    log each outcome. Returns (requests sent, failed requests).

    An unusable reply is asked again with the next seed, the batch's unusable ones together, at most
    ``max_retries`` rounds; no wait between rounds, since the server answered. (A plain loop over rounds: the
    transport retries, which need backoff, are tenacity's, inside the HTTP backend.)
    """
    from tqdm.auto import tqdm

    brainstorm = desc == "brainstorm"
    done = journal.ids - ({r["id"] for r in journal.failures} if cfg.retry_failed else set())
    pending = [s for s in specs if s["id"] not in done][:budget]
    failed = streak = 0
    with tqdm(total=len(pending), desc=desc, disable=not cfg.progress or not pending) as bar:
        for start in range(0, len(pending), cfg.batch_size):
            todo = [(s, journal.attempts(s["id"])) for s in pending[start: start + cfg.batch_size]]
            for round_ in range(cfg.max_retries + 1):
                replies = _replies(backend(), [s["prompt"] for s, _ in todo],
                                   [request_seed(s["id"], k) for s, k in todo])
                again = []
                for (spec, attempt), reply in zip(todo, replies):
                    if reply is None:  # failed every transport retry: not logged, a re-run asks again
                        failed, streak = failed + 1, streak + 1
                        continue
                    streak = 0
                    record = {k: v for k, v in spec.items() if k != "prompt"}
                    reason = unusable(reply, brainstorm, cfg.min_cjk_share)
                    if reason is None:
                        journal.append({**record, "reply": reply.text})
                    elif round_ == cfg.max_retries:
                        journal.append({**record, "failure": reason, "attempts": attempt + 1})
                    else:
                        again.append((spec, attempt + 1))
                todo = again
                if not todo:
                    break
            bar.update(min(cfg.batch_size, len(pending) - start))
            if streak >= cfg.max_consecutive_failures:
                raise SynthError(f"{streak} requests in a row failed (last: {getattr(backend(), 'last_error', '?')}); "
                                 "replies so far are saved: re-run the same command to continue")
    return len(pending), failed


def make_backend(cfg: SynthConfig) -> Any:
    """The generator backend of ``cfg``; url and model fall back to $PICCOLO_SYNTH_URL / $PICCOLO_SYNTH_MODEL."""
    model = cfg.model or os.environ.get("PICCOLO_SYNTH_MODEL")
    if cfg.backend == "http":
        url = cfg.url or os.environ.get("PICCOLO_SYNTH_URL")
        if not url or not model:
            raise SynthError("backend http needs an endpoint and a model: --url http://HOST:PORT/v1 --model NAME "
                             "(or PICCOLO_SYNTH_URL and PICCOLO_SYNTH_MODEL)")
        return HTTPBackend(url, model, os.environ.get(cfg.api_key_env), timeout=cfg.timeout,
                           max_retries=cfg.max_retries, backoff=cfg.backoff, rate=cfg.rate,
                           concurrency=cfg.batch_size, temperature=cfg.temperature, top_p=cfg.top_p,
                           max_tokens=cfg.max_new_tokens)
    if cfg.backend == "transformers":
        if not model:
            raise SynthError("backend transformers needs --model: a hub name (Qwen/Qwen2.5-7B-Instruct) or a folder")
        return TransformersBackend(model, device=cfg.device, trust_remote_code=cfg.trust_remote_code,
                                   temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                                   seed=cfg.seed)
    raise SynthError(f"key 'backend': unknown backend {cfg.backend!r}; expected http or transformers")


def run_synth(cfg: SynthConfig, backend: Any = None, encoder: Any = None) -> dict:
    """Brainstorm, generate, check and write; returns the stats (also in ``OUT_DIR/stats.json``).

    ``backend`` / ``encoder``: ready objects to use instead of building them from ``cfg`` (the backend is
    built only when some request is pending, so a finished folder re-runs without a server or model).
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made: list[Any] = [backend] if backend is not None else []

    def get_backend() -> Any:  # built on first use: a finished folder re-runs without a server or a model
        if not made:
            made.append(make_backend(cfg))
        return made[0]

    budget, sent, failed = cfg.limit, 0, 0
    brainstorm = Journal(out / "tasks.jsonl")
    try:
        if not cfg.tasks:
            sent, failed = _request_all(cfg, get_backend, brainstorm_specs(cfg), brainstorm, "brainstorm", budget)
    finally:
        brainstorm.close()
    specs = plan_examples(tasks_from(cfg, brainstorm.records), cfg)
    generations = Journal(out / "generations.jsonl")
    try:
        more_sent, more_failed = _request_all(cfg, get_backend, specs, generations, "examples",
                                              None if budget is None else max(0, budget - sent))
    finally:
        generations.close()
    stats = finalize(cfg, specs, generations.records, encoder, failures=generations.failures)
    if not cfg.tasks:  # replied: domains with an outcome; malformed: of those, no task list (failures included)
        replies, lost = [r["reply"] for r in brainstorm.records], brainstorm.failures
        stats["brainstorm"] = {"domains": len(cfg.domains), "replied": len(replies) + len(lost),
                               "malformed": sum(parse_tasks(r, cfg.min_cjk_share) is None for r in replies) + len(lost)}
        stats["brainstorm_failed_replies"] = _by_reason(lost)
    stats["this_run"] = {"requests": sent + more_sent, "failed": failed + more_failed}
    if failed + more_failed:
        stats["this_run"]["last_error"] = getattr(made[0], "last_error", None)
    atomic_write(out / "stats.json", json.dumps(stats, ensure_ascii=False, indent=2) + "\n")
    return stats


def _by_reason(failures: list[dict]) -> dict[str, int]:
    """Failure records counted by reason, every reason of :data:`FAILURES` present."""
    counts = Counter(f["failure"] for f in failures)
    return {r: counts[r] for r in FAILURES}


def finalize(cfg: SynthConfig, specs: list[dict], records: list[dict], encoder: Any = None,
             failures: list[dict] = ()) -> dict:
    """Check every logged reply (in plan order), deduplicate, filter by consistency, write ``retrieval.jsonl``.

    ``failures``: the examples logged as failures (not pending: they are counted in ``failed_replies``), so
    ``planned == generated + sum(failed_replies) + pending``.
    """
    order = {s["id"]: i for i, s in enumerate(specs)}
    records = sorted(records, key=lambda r: order.get(r["id"], len(order)))  # stable: unplanned ids last
    dropped = Counter({r: 0 for r in REASONS})
    triples = []
    for rec in records:
        triple, reason = check_triple(rec["reply"], cfg.min_cjk_share)
        if reason:
            dropped[reason] += 1
        else:
            triples.append(triple)
    keep = dedup(triples)
    dropped["duplicate"] = keep.count(False)
    triples = [t for t, k in zip(triples, keep) if k]
    if cfg.filter_model and triples:
        ranks = consistency_ranks(encoder or load_encoder(cfg.filter_model, cfg.device), triples)
        dropped["inconsistent"] = sum(r >= cfg.top_k for r in ranks)
        triples = [t for t, r in zip(triples, ranks) if r < cfg.top_k]
    rows = [{"text": t["query"], "text_pos": t["positive"], "text_neg": [t["hard_negative"]], "type": "retri_contrast"}
            for t in triples]
    atomic_write(Path(cfg.out_dir) / "retrieval.jsonl", jsonl_text(rows))
    planned_failures = [f for f in failures if f["id"] in order]
    done = sum(r["id"] in order for r in records) + len(planned_failures)
    return {"planned": len(specs), "generated": len(records), "failed_replies": _by_reason(planned_failures),
            "pending": len(specs) - done,
            "dropped": dict(dropped), "kept": len(rows), "tasks": len({(s["domain"], s["task"]) for s in specs}),
            "filter": {"model": cfg.filter_model, "top_k": cfg.top_k} if cfg.filter_model else None}

