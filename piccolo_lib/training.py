"""Training: one YAML config -> a fine-tuned Piccolo2-style model, on the sentence-transformers Trainer.

The Trainer (and through it transformers/accelerate) does the loop, mixed precision, gradient
checkpointing, DDP and checkpoints. This module adds what Piccolo2 needs on top: one loss per
dataset routed by record type (a dict of :class:`~piccolo_lib.losses.PiccoloLoss`), the
rank-aligned task-homogeneous sampler, the collator, and a per-step ``metrics.jsonl``.

The same entry point runs in one process or under ``torchrun --nproc_per_node N``.

Introduced in notebooks/05_multi_device.ipynb.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .checkpoints import (EXIT_SIGTERM, AtomicCheckpoints, TrainingInterrupted, last_checkpoint,
                          remove_incomplete, sigterm_callback, stop_on_sigterm)
from .data import as_retrieval, load_train_sets, summary
from .losses import canonical_type
from .reporting import model_card_section

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class TrainConfig:
    """Every knob of a training run (YAML keys; ``key=value`` overrides on the command line)."""

    backbone: str = "offline-bert"  # or a hub name, e.g. sensenova/piccolo-large-zh-v2
    pooling: str = "auto"  # mean | cls | lasttoken | auto
    projection_dim: int | None = None  # None: 1.75 x hidden (report: 1024 -> 1792); 0: no head
    mrl_dims: list[int] | None = None  # None: the report's dims scaled to the width; []: no MRL
    projection_init: str | None = None  # a saved model folder whose projection head starts this run
    freeze_position_embeddings: bool = False  # the reference freezes them
    extend_max_length: int | None = None  # extend learned position embeddings (the reference's extend_pe)
    max_seq_length: int = 512
    data: list[str] = field(default_factory=lambda: ["data_samples/train/meta_list.txt"])
    data_root: str | None = None  # root of the meta list's folders (default: the list's folder)
    losses: dict[str, dict[str, float]] = field(default_factory=dict)  # {type: {temperature, weight}}
    retrieval_for: list[str] = field(default_factory=list)  # ablation: train these types' data with InfoNCE
    batch_size: int = 32  # per device
    neg_num: int = 1  # hard negatives per retrieval row (reference: 1)
    cls_neg_num: int = 10  # negative label texts per classification row (reference: 10)
    query_max_len: int = 64
    passage_max_len: int = 128
    cross_device_negatives: bool = False  # retrieval: every rank's passages are negatives (reference: off)
    query_prompt: str = ""  # prefix/instruction for retrieval queries (saved as the model's "query" prompt)
    passage_prompt: str = ""  # prefix for passages (saved as the "document" prompt)
    dataset_prompts: dict[str, dict[str, str]] = field(default_factory=dict)  # {dataset: {query, passage}}
    sampling: str = "size"  # size | explicit | temperature
    sampling_weights: list[float] | None = None
    sampling_temperature: float = 1.0
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    precision: str = "fp32"  # fp32 | bf16 | fp16
    gradient_checkpointing: bool = False
    grad_accum: int = 1
    logging_steps: int = 10  # console; metrics.jsonl gets every step
    report_to: str = "none"  # none | tensorboard (event files under output_dir/tensorboard) | wandb | ...
    save_steps: int = 0  # 0: save only the final model
    output_dir: str = "runs/quickstart"
    resume: bool = False
    trust_remote_code: bool = False
    lora_r: int = 0  # > 0: freeze the backbone, train LoRA adapters of this rank (large LLMs; E5-mistral: 16)
    lora_alpha: float = 32.0  # the adapters' update is scaled by lora_alpha / lora_r
    lora_dropout: float = 0.1
    lora_target_modules: list[str] | str = "all-linear"  # or Linear names, e.g. [q_proj, v_proj]
    deepspeed: str | None = None
    device: str = "auto"  # auto | cpu | cuda
    mode: str = "auto"  # quick | full | auto
    # -- issue 16: beyond the anchors --
    gradient_cache: bool = False  # GradCache: whole-batch loss, activations of gradient_cache_minibatch rows at a time
    gradient_cache_minibatch: int = 32  # rows per chunk when gradient_cache is on (memory ~ this, not batch_size)
    refresh_negatives_every: int = 0  # > 0: every N steps re-score retrieval negatives, replace too-easy ones (Conan)
    refresh_range_min: int | None = None  # rank window of replacements; None: the report's 50-100 scaled to the corpus
    refresh_range_max: int | None = None
    refresh_threshold: float = 0.05  # a negative is too easy when cos(q, neg) < cos(q, pos) - this (5 tau at 0.01)
    false_negative_masking: str = "text"  # text (same text as the positive) | margin (also near/above it) | off
    false_negative_margin: float = 0.0  # margin mode: drop candidates with cos > cos(q, pos) - margin (Qwen3: -0.1)


def _coerce(name: str, raw: str):
    """Parse a ``key=value`` override with YAML rules (``1e-5``, ``true``, ``[1, 2]``, ``null``)."""
    value = yaml.safe_load(raw)
    return str(value) if name in ("backbone", "output_dir", "query_prompt", "passage_prompt") else value


def _typed(key: str, value, source: str):
    """Numbers YAML 1.1 reads as strings (``1e-4``) become floats; a non-number is a clear error."""
    hint = str(typing.get_type_hints(TrainConfig)[key])
    if isinstance(value, str) and hint in ("<class 'float'>", "<class 'int'>"):
        try:
            return float(value) if "float" in hint else int(value)
        except ValueError:
            raise ValueError(f"{source}: key {key!r}: expected a number, got {value!r}") from None
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> TrainConfig:
    """Read a YAML config (safe loader) and apply overrides; unknown keys are an error with a hint."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else {}
    raw = raw or {}
    if isinstance(overrides, dict):
        raw.update(overrides)
    for item in overrides or [] if not isinstance(overrides, dict) else []:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value")
        key, value = item.split("=", 1)
        raw[key.strip()] = _coerce(key.strip(), value)
    valid = [f.name for f in dataclasses.fields(TrainConfig)]
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{path or 'config'}: unknown key {key!r}{hint} (valid keys: {', '.join(valid)})")
    raw = {k: _typed(k, v, str(path or "config")) for k, v in raw.items()}
    if isinstance(raw.get("data"), str):
        raw["data"] = [raw["data"]]
    if raw.get("losses"):  # aliases (sts, retrieval, ...) -> record types; unknown types are an error
        raw["losses"] = {canonical_type(k): v for k, v in raw["losses"].items()}
    if raw.get("retrieval_for"):
        raw["retrieval_for"] = [canonical_type(k) for k in raw["retrieval_for"]]
    return TrainConfig(**raw)


def _resolve(path: str) -> str:
    """Relative data paths are tried against the working directory, then the repo root."""
    p = Path(path)
    return str(p if p.is_absolute() or p.exists() else REPO_ROOT / p)


def _loggers(report_to: str, out: Path) -> tuple[str, list]:
    """(``report_to`` for the Trainer, extra callbacks); checks an optional logger is installed up front.

    TensorBoard gets its own callback writing to ``output_dir/tensorboard``: transformers 5 dropped
    ``logging_dir`` and would otherwise pick the folder from a process-wide environment variable.
    """
    import importlib.util

    needs = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}.get(report_to)
    if needs and importlib.util.find_spec(needs) is None:
        raise ValueError(f"report_to={report_to!r} needs the {needs!r} package: pip install {needs}")
    if report_to != "tensorboard":
        return report_to, []
    from transformers.integrations import TensorBoardCallback

    tb = TensorBoardCallback()
    tb.logging_dir = str(out / "tensorboard")  # the writer is created on rank 0 at train begin
    return "none", [tb]


def _mean_over_ranks(total: float, count: int, device) -> float:
    """Mean loss of a step over every rank's micro-batches (rank 0's own losses cover 1/N of the step).

    A collective: under DDP every rank must call it at every step.
    """
    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = torch.tensor([total, count], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        total, count = t.tolist()
    return total / count if count else float("nan")


def make_callback(tracker: list, metrics_path: Path, rows_per_step: int, extras: dict | None = None):
    """A TrainerCallback writing one JSON line per optimizer step (rank 0 only).

    ``extras``: filled by other callbacks during the step (e.g. ``negatives_refreshed``), merged into the line.
    """
    from transformers import TrainerCallback

    class MetricsLogger(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            entries, tracker[:] = list(tracker), []
            loss = _mean_over_ranks(sum(e[2] for e in entries), len(entries), args.device)  # every rank calls it
            extra = dict(extras or {})
            if extras:
                extras.clear()
            if not state.is_world_process_zero or not entries:
                return
            sched = kwargs.get("lr_scheduler")
            dt = time.perf_counter() - self.t0
            line = {
                "step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                "dataset": entries[0][0], "task": entries[0][1],
                "loss": loss,
                "lr": sched.get_last_lr()[0] if sched is not None else None,
                "samples_per_second": round(rows_per_step / dt, 2) if dt > 0 else None,
                **extra,
            }
            if args.device.type == "cuda":  # peak memory of this process since the run started
                import torch

                line["gpu_mem_peak_mb"] = round(torch.cuda.max_memory_allocated(args.device) / 2**20, 1)
            with metrics_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")

    return MetricsLogger()


def _refresh_callback(cfg: TrainConfig, model, sets, hard_negatives: dict, collator, events: dict):
    """The negative-refresh callback (piccolo_lib.refresh) when ``refresh_negatives_every`` > 0, else None."""
    if cfg.refresh_negatives_every <= 0:
        return None
    from .refresh import make_refresh_callback

    datasets = {s.name: s.dataset.to_list() for s in sets
                if s.task_type == "retri_contrast" and hard_negatives[s.name] > 0}
    return make_refresh_callback(model, datasets, collator, every=cfg.refresh_negatives_every,
                                 threshold=cfg.refresh_threshold, range_min=cfg.refresh_range_min,
                                 range_max=cfg.refresh_range_max, seed=cfg.seed, events=events,
                                 batches_per_step=cfg.grad_accum)


def _check_knobs(cfg: TrainConfig) -> None:
    """Issue-16 knobs with a wrong value are a clear error before anything is built."""
    from .losses import FALSE_NEGATIVE_MODES

    if cfg.false_negative_masking not in FALSE_NEGATIVE_MODES:
        raise ValueError(f"false_negative_masking must be one of {FALSE_NEGATIVE_MODES}, got {cfg.false_negative_masking!r}")
    if cfg.gradient_cache and cfg.gradient_cache_minibatch < 1:
        raise ValueError(f"gradient_cache_minibatch must be >= 1 with gradient_cache, got {cfg.gradient_cache_minibatch}")
    if cfg.refresh_negatives_every and (cfg.refresh_range_min is None) != (cfg.refresh_range_max is None):
        raise ValueError("set both refresh_range_min and refresh_range_max, or neither (the default window)")


def train(cfg: TrainConfig) -> Path:
    """Train and save. Returns the folder of the final SentenceTransformer model.

    Bad data raises :class:`piccolo_lib.data.DataError` before any model is built.
    """
    import torch
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import set_seed

    from .losses import PiccoloLoss
    from .model import (add_lora, build_model, default_mrl_dims, embedding_dim, extend_position_embeddings,
                        freeze_position_embeddings, load_projection, merge_lora)
    from .sampling import EpochState, PiccoloCollator, TaskHomogeneousBatchSampler, TaskSpec

    _check_knobs(cfg)
    sets = load_train_sets([_resolve(p) for p in cfg.data], root=cfg.data_root and _resolve(cfg.data_root),
                           neg_num={"retri_contrast": cfg.neg_num, "cls_contrast": cfg.cls_neg_num},
                           batch_size=cfg.batch_size)
    hard_negatives = {s.name: cfg.neg_num if s.task_type == "retri_contrast" else
                      cfg.cls_neg_num if s.task_type == "cls_contrast" else 0 for s in sets}
    if cfg.retrieval_for:  # the ablation's baseline: these datasets go through InfoNCE (data.as_retrieval)
        converted = [as_retrieval(s) if s.task_type in cfg.retrieval_for else s for s in sets]
        hard_negatives.update({s.name: 0 for s, c in zip(sets, converted) if s.task_type == "cosent" and c is not s})
        sets = converted
    unknown = sorted(set(cfg.dataset_prompts) - {s.name for s in sets})
    if unknown:
        raise ValueError(f"dataset_prompts names unknown dataset(s) {unknown}; datasets: {[s.name for s in sets]}")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0:
        print(summary(sets))
    set_seed(cfg.seed)
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    model = build_model(cfg.backbone, pooling=cfg.pooling, projection_dim=cfg.projection_dim,
                        max_seq_length=cfg.max_seq_length, seed=cfg.seed,
                        trust_remote_code=cfg.trust_remote_code, device="cuda" if use_cuda else "cpu")
    if cfg.extend_max_length:
        extend_position_embeddings(model, cfg.extend_max_length)
    if cfg.freeze_position_embeddings:
        freeze_position_embeddings(model)
    if cfg.projection_init:
        load_projection(model, cfg.projection_init)
    if cfg.lora_r:  # checkpoints would hold unmerged adapter layers, which a plain load cannot read back
        if cfg.resume or cfg.save_steps:
            raise ValueError("lora_r > 0 saves only the final (merged) model: set save_steps=0 and resume=false")
        add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules)
    dims = default_mrl_dims(embedding_dim(model)) if cfg.mrl_dims is None else list(cfg.mrl_dims)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    if rank0 and not cfg.resume and metrics_path.exists():
        metrics_path.unlink()

    tracker: list = []
    specs, losses, train_sets = {}, {}, {}
    for s in sets:
        k = hard_negatives[s.name]
        own = cfg.dataset_prompts.get(s.name, {})
        specs[s.name] = TaskSpec(s.task_type, k, own.get("query", cfg.query_prompt), own.get("passage", cfg.passage_prompt))
        hp = cfg.losses.get(s.task_type, {})
        losses[s.name] = PiccoloLoss(model, s.task_type, mrl_dims=dims, dataset_name=s.name, tracker=tracker,
                                     temperature=hp.get("temperature"), weight=hp.get("weight"),
                                     cross_device=cfg.cross_device_negatives,
                                     false_negatives=cfg.false_negative_masking,
                                     false_negative_margin=cfg.false_negative_margin,
                                     gradient_cache_minibatch=cfg.gradient_cache_minibatch if cfg.gradient_cache else 0)
        train_sets[s.name] = s.dataset.add_column("_row", list(range(len(s.dataset))))
    state = EpochState()
    collator = PiccoloCollator(model.preprocess, specs, seed=cfg.seed, query_max_len=cfg.query_max_len,
                               passage_max_len=cfg.passage_max_len, state=state)
    # one optimizer step = world_size x grad_accum batches, all from one dataset: every rank and every
    # accumulated micro-batch of a step has the same task type, whatever the process layout
    sampler = functools.partial(TaskHomogeneousBatchSampler, world_size=world_size * cfg.grad_accum,
                                repeats=[s.repeat for s in sets], mode=cfg.sampling,
                                weights=cfg.sampling_weights, temperature=cfg.sampling_temperature, state=state)
    report_to, loggers = _loggers(cfg.report_to, out)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, seed=cfg.seed,
        data_seed=cfg.seed, bf16=cfg.precision == "bf16", fp16=cfg.precision == "fp16",
        activation_checkpointing=cfg.gradient_checkpointing, logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no", save_steps=cfg.save_steps or 500,
        report_to=report_to, use_cpu=not use_cuda, ddp_backend="gloo" if world_size > 1 and not use_cuda else None,
        multi_dataset_batch_sampler=sampler, remove_unused_columns=False, deepspeed=cfg.deepspeed,
        dataloader_num_workers=0,  # the collator reads the epoch from the sampler's shared state
    )
    events: dict = {}
    callback = make_callback(tracker, metrics_path, cfg.batch_size * world_size * cfg.grad_accum, events)
    extra_callbacks = [_refresh_callback(cfg, model, sets, hard_negatives, collator, events)]
    # checkpoints are written to tmp-checkpoint-N and renamed into place (piccolo_lib.checkpoints)
    trainer_cls = type("PiccoloTrainer", (AtomicCheckpoints, SentenceTransformerTrainer), {})
    with stop_on_sigterm() as received_sigterm:
        on_sigterm = sigterm_callback(received_sigterm)
        trainer = trainer_cls(model=model, args=args, train_dataset=DatasetDict(train_sets), loss=losses,
                              data_collator=collator,
                              callbacks=[*filter(None, extra_callbacks), callback, on_sigterm, *loggers])
        if rank0:
            remove_incomplete(out / "checkpoints")  # a run killed while saving: never resumed from
        last = last_checkpoint(out / "checkpoints") if cfg.resume else None
        step = int(last.name.split("-")[1]) if last else None
        if last is not None and rank0 and metrics_path.exists():  # steps after the checkpoint are redone
            kept = [x for x in metrics_path.read_text(encoding="utf-8").splitlines() if json.loads(x)["step"] <= step]
            metrics_path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
        # the path, not True: transformers' own pick is the highest-numbered folder, complete or not
        trainer.train(resume_from_checkpoint=str(last) if last else None)
    if on_sigterm.stopped_at is not None:
        if rank0:
            print(f"stopped by SIGTERM after step {on_sigterm.stopped_at}; checkpoint: "
                  f"{out / 'checkpoints' / f'checkpoint-{on_sigterm.stopped_at}'}; rerun with resume=true to continue",
                  file=sys.stderr, flush=True)
        raise TrainingInterrupted(EXIT_SIGTERM)
    final = out / "final"
    if trainer.is_world_process_zero():
        # prompts travel with the model, so mteb and plain SentenceTransformer users encode as in training
        model.prompts.update({k: v for k, v in (("query", cfg.query_prompt), ("document", cfg.passage_prompt)) if v})
        model.model_card_data.tags = ["piccolo2", "sentence-transformers", "matryoshka"]
        if cfg.lora_r:
            merge_lora(model)  # fold the adapters in: the folder is a plain model, loadable without peft
        model.save(str(final), safe_serialization=True)
        info = {
            "config": dataclasses.asdict(cfg), "mrl_dims": dims,
            "losses": {t: {"temperature": loss.temperature, "weight": loss.weight}
                       for t, loss in {l.task_type: l for l in losses.values()}.items()},
            "data": [{"name": s.name, "type": s.task_type, "rows": len(s.dataset), "repeat": s.repeat} for s in sets],
        }
        (final / "piccolo_training.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        with (final / "README.md").open("a", encoding="utf-8") as f:
            f.write("\n" + model_card_section(info))
    return final
