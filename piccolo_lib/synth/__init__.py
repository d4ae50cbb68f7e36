"""LLM-made retrieval triples (notebook 10): prompts, backends, filters, the resumable pipeline and its command.

Modules: ``prompts``, ``backends`` (OpenAI-compatible HTTP, in-process transformers), ``filters`` (checks by
reason, dedup, round-trip consistency), ``journal`` (the append-only logs of outcomes), ``pipeline`` (the
journaled run), ``cli`` (``piccolo data synth``).
``piccolo_lib.synth`` re-exports the public names of ``pipeline``, so `from piccolo_lib.synth import ...`
keeps working as before the split.
"""

from .pipeline import (BRAINSTORM_PROMPT, DEFAULT_DOMAINS, EXAMPLE_PROMPT, FAILURES, GIVEN_DOMAIN, HTTPBackend,
                       Journal, KNOBS, MIN_CJK_SHARE, PROMPT_VERSION, REASONS, Reply, SynthConfig, SynthError,
                       TransformersBackend, brainstorm_specs, check_triple, consistency_ranks, dedup,
                       finalize, load_encoder, make_backend, parse_tasks, plan_examples, read_journal,
                       request_seed, run_synth, tasks_from, unusable)  # noqa: F401
