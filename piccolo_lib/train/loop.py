"""Training: one YAML config -> a fine-tuned Piccolo2-style model, on the sentence-transformers Trainer.

The Trainer (and through it transformers/accelerate) does the loop, mixed precision, gradient
checkpointing, DDP and checkpoints. This module adds what Piccolo2 needs on top: one loss per
dataset routed by record type (a dict of :class:`~piccolo_lib.losses.PiccoloLoss`), the
rank-aligned task-homogeneous sampler, the collator, and a per-step ``metrics.jsonl``.

The same entry point runs in one process or under ``torchrun --nproc_per_node N``.

Introduced in notebooks/06_multi_device.ipynb.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from pathlib import Path

from .checkpoints import (EXIT_SIGTERM, AtomicCheckpoints, TrainingInterrupted, last_checkpoint,
                          remove_incomplete, sigterm_callback, stop_on_sigterm)
from .config import REPO_ROOT, TrainConfig, auto_precision, load_config, resolve_path  # noqa: F401 (re-exported: the old home)
from .metrics import make_callback, truncate_metrics  # noqa: F401 (make_callback re-exported: the old home)
from ..data import as_retrieval, load_train_sets, summary
from ..errors import ConfigError
from ..io import atomic_path
from ..model.card import model_card_section


def _loggers(report_to: str, out: Path) -> tuple[str, list]:
    """(``report_to`` for the Trainer, extra callbacks); checks an optional logger is installed up front.

    TensorBoard gets its own callback writing to ``output_dir/tensorboard``: transformers 5 dropped
    ``logging_dir`` and would otherwise pick the folder from a process-wide environment variable.
    """
    import importlib.util

    needs = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}.get(report_to)
    if needs and importlib.util.find_spec(needs) is None:
        raise ConfigError(f"report_to={report_to!r} needs the {needs!r} package: pip install {needs}")
    if report_to != "tensorboard":
        return report_to, []
    from transformers.integrations import TensorBoardCallback

    tb = TensorBoardCallback()
    tb.logging_dir = str(out / "tensorboard")  # the writer is created on rank 0 at train begin
    return "none", [tb]


def warn_small_datasets(sets: list, cfg: TrainConfig, world_size: int) -> list[str]:
    """Warn, naming it, about each dataset with fewer rows (x repeat) than one optimizer step takes.

    One step is batch_size x world_size x grad_accum rows of one dataset; with ``sampling: size`` such a
    dataset gets no step at all, with the other modes its steps repeat rows. Returns the messages.
    """
    import warnings

    step = cfg.batch_size * world_size * cfg.grad_accum
    messages = []
    for s in sets:
        if len(s.dataset) * s.repeat < step:
            effect = ("it gets no training step" if cfg.sampling == "size" else
                      "each of its steps repeats rows")
            messages.append(f"dataset {s.name!r}: {len(s.dataset)} rows x repeat {s.repeat} = "
                            f"{len(s.dataset) * s.repeat} < one global batch of {step} (batch_size {cfg.batch_size} x "
                            f"{world_size} process(es) x grad_accum {cfg.grad_accum}): {effect} (sampling={cfg.sampling}); "
                            "raise its repeat in the meta list or lower batch_size")
            warnings.warn(messages[-1], UserWarning, stacklevel=2)
    return messages


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
    """Issue-16 knobs whose values depend on each other: a clear error before anything is built.

    (Single-key choices such as ``false_negative_masking`` are refused by ``config.load_config``.)
    """
    if cfg.gradient_cache and cfg.gradient_cache_minibatch < 1:
        raise ConfigError(f"gradient_cache_minibatch must be >= 1 with gradient_cache, got {cfg.gradient_cache_minibatch}")
    if cfg.refresh_negatives_every and (cfg.refresh_range_min is None) != (cfg.refresh_range_max is None):
        raise ConfigError("set both refresh_range_min and refresh_range_max, or neither (the default window)")


@dataclasses.dataclass
class TrainingParts:
    """Everything :func:`train` hands the Trainer, built by :func:`training_parts` (one place, so a loop by hand
    in notebooks/05_matryoshka.ipynb uses the very objects ``train`` uses).

    ``datasets``: one ``datasets.Dataset`` per dataset name, with a ``_row`` (row index) column; the collator also
    reads ``dataset_name``, a column the Trainer adds to each row (a loop by hand adds it itself). ``losses``: dataset name -> its :class:`~piccolo_lib.losses.PiccoloLoss` (the
    routed loss of its task type, with MRL over ``mrl_dims``). ``sampler``: the task-homogeneous batch sampler
    with every knob bound; call it as the Trainer does, ``sampler(ConcatDataset(datasets), batch_samplers,
    seed=cfg.seed)`` (only ``batch_samplers[0].batch_size`` / ``drop_last`` are read).
    """

    model: object
    sets: list
    hard_negatives: dict[str, int]
    mrl_dims: list[int]
    datasets: dict[str, object]
    losses: dict[str, object]
    collator: object
    sampler: functools.partial


def training_parts(cfg: TrainConfig, *, world_size: int = 1, tracker: list | None = None,
                   verbose: bool = True) -> TrainingParts:
    """Check the config, read the data, build the model and the sampler, collator and routed losses.

    ``world_size`` x ``cfg.grad_accum`` consecutive batches of the sampler form one optimizer step (all from one
    dataset). ``tracker``: each loss appends (dataset, task, loss) to it (the metrics callback reads it).
    ``verbose``: print the data summary and small-dataset warnings (rank 0). Bad data raises
    :class:`piccolo_lib.data.DataError` before any model is built.
    """
    from transformers import set_seed

    from ..model import (add_lora, build_model, default_mrl_dims, embedding_dim, extend_position_embeddings,
                        freeze_for_speed, freeze_position_embeddings, load_projection, set_dropout)
    from ..data.sampling import TaskHomogeneousBatchSampler
    from ..tasks import EpochState, PiccoloCollator, TaskSpec
    from .adapter import PiccoloLoss

    _check_knobs(cfg)
    sets = load_train_sets([resolve_path(p) for p in cfg.data], root=cfg.data_root and resolve_path(cfg.data_root),
                           neg_num={"retri_contrast": cfg.neg_num, "cls_contrast": cfg.cls_neg_num,
                                    **cfg.dataset_neg_num}, batch_size=cfg.batch_size)
    for knob in ("dataset_prompts", "dataset_neg_num"):
        unknown = sorted(set(getattr(cfg, knob)) - {s.name for s in sets})
        if unknown:
            raise ConfigError(f"{knob} names unknown dataset(s) {unknown}; datasets: {[s.name for s in sets]}")
    hard_negatives = {s.name: cfg.dataset_neg_num.get(s.name, cfg.neg_num) if s.task_type == "retri_contrast" else
                      cfg.dataset_neg_num.get(s.name, cfg.cls_neg_num) if s.task_type == "cls_contrast" else 0
                      for s in sets}
    if cfg.retrieval_for:  # the ablation's baseline: these datasets go through InfoNCE (data.as_retrieval)
        converted = [as_retrieval(s) if s.task_type in cfg.retrieval_for else s for s in sets]
        hard_negatives.update({s.name: 0 for s, c in zip(sets, converted) if s.task_type == "cosent" and c is not s})
        sets = converted
    if verbose:
        warn_small_datasets(sets, cfg, world_size)
        print(summary(sets))
    set_seed(cfg.seed)
    # built on the CPU: the Trainer moves it to each rank's own device (under torchrun, cuda:LOCAL_RANK);
    # building on "cuda" would first load every rank's copy onto GPU 0
    model = build_model(cfg.backbone, pooling=cfg.pooling, projection_dim=cfg.projection_dim,
                        max_seq_length=cfg.max_seq_length, seed=cfg.seed,
                        trust_remote_code=cfg.trust_remote_code, device="cpu", dtype=cfg.dtype,
                        attn_implementation=cfg.attn_implementation)
    if cfg.dropout is not None:  # e.g. 0: every step deterministic (a loop by hand reproduces train's losses)
        set_dropout(model, cfg.dropout)
    if cfg.extend_max_length:
        extend_position_embeddings(model, cfg.extend_max_length)
    if cfg.freeze_position_embeddings:
        freeze_position_embeddings(model)
    if cfg.freeze_word_embeddings or cfg.train_top_layers:
        counts = freeze_for_speed(model, word_embeddings=cfg.freeze_word_embeddings,
                                  train_top_layers=cfg.train_top_layers)
        if verbose:
            print(f"trainable parameters: {counts['trainable']:,} (frozen: {counts['frozen']:,})")
    if cfg.projection_init:
        load_projection(model, cfg.projection_init)
    if cfg.lora_r:  # checkpoints would hold unmerged adapter layers, which a plain load cannot read back
        if cfg.resume or cfg.save_steps:
            raise ConfigError("lora_r > 0 saves only the final (merged) model: set save_steps=0 and resume=false")
        add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules)
    dims = default_mrl_dims(embedding_dim(model)) if cfg.mrl_dims is None else list(cfg.mrl_dims)
    specs, losses, train_sets = {}, {}, {}
    for s in sets:
        k = hard_negatives[s.name]
        own = cfg.dataset_prompts.get(s.name, {})  # else the config's prompts, else the model's own (e5: query: )
        specs[s.name] = TaskSpec(s.task_type, k, own.get("query", cfg.query_prompt or model.prompts.get("query", "")),
                                 own.get("passage", cfg.passage_prompt or model.prompts.get("document", "")))
        hp = cfg.losses.get(s.task_type, {})
        losses[s.name] = PiccoloLoss(model, s.task_type, mrl_dims=dims, dataset_name=s.name, tracker=tracker,
                                     temperature=hp.get("temperature"), weight=hp.get("weight"),
                                     cross_device=cfg.cross_device_negatives,
                                     false_negatives=cfg.false_negative_masking,
                                     false_negative_margin=cfg.false_negative_margin,
                                     gradient_cache_minibatch=cfg.gradient_cache_minibatch if cfg.gradient_cache else 0,
                                     packed=cfg.packed_encoding)
        train_sets[s.name] = s.dataset.add_column("_row", list(range(len(s.dataset))))
    state = EpochState()
    pad = getattr(model.tokenizer, "pad_token_id", None)  # taken here, where the model is not wrapped by DDP yet
    collator = PiccoloCollator(model.preprocess, specs, seed=cfg.seed, query_max_len=cfg.query_max_len,
                               passage_max_len=cfg.passage_max_len, state=state, pad_token_id=pad or 0)
    # one optimizer step = world_size x grad_accum batches, all from one dataset: every rank and every
    # accumulated micro-batch of a step has the same task type, whatever the process layout
    sampler = functools.partial(TaskHomogeneousBatchSampler, world_size=world_size * cfg.grad_accum,
                                repeats=[s.repeat for s in sets], mode=cfg.sampling,
                                weights=cfg.sampling_weights, temperature=cfg.sampling_temperature, state=state)
    return TrainingParts(model=model, sets=sets, hard_negatives=hard_negatives, mrl_dims=dims,
                         datasets=train_sets, losses=losses, collator=collator, sampler=sampler)


def training_arguments(cfg: TrainConfig, out: Path, *, precision: str, use_cuda: bool, world_size: int,
                       sampler, report_to: str):
    """The Trainer's arguments for ``cfg`` (checkpoints under ``out / "checkpoints"``)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, seed=cfg.seed,
        data_seed=cfg.seed, bf16=precision == "bf16", fp16=precision == "fp16",
        activation_checkpointing=cfg.gradient_checkpointing, logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no", save_steps=cfg.save_steps or 500,
        report_to=report_to, use_cpu=not use_cuda, ddp_backend="gloo" if world_size > 1 and not use_cuda else None,
        multi_dataset_batch_sampler=sampler, remove_unused_columns=False, deepspeed=cfg.deepspeed,
        # Ranks run different numbers of encoder calls per step (packed chunks, GradCache mini-batches): a DDP that
        # broadcast buffers at every forward would pair mismatched collectives. sentence-transformers' arguments
        # default to False too; said here so the run does not depend on that default (tests/test_training.py).
        ddp_broadcast_buffers=False,
        dataloader_num_workers=0,  # the collator reads the epoch from the sampler's shared state
    )


def train(cfg: TrainConfig) -> Path:
    """Train and save. Returns the folder of the final SentenceTransformer model.

    Bad data raises :class:`piccolo_lib.data.DataError` before any model is built.
    """
    import torch
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformerTrainer

    from ..model import merge_lora

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank0 = int(os.environ.get("RANK", "0")) == 0
    tracker: list = []
    parts = training_parts(cfg, world_size=world_size, tracker=tracker, verbose=rank0)
    model, sets, hard_negatives, dims = parts.model, parts.sets, parts.hard_negatives, parts.mrl_dims
    losses, train_sets, collator, sampler = parts.losses, parts.datasets, parts.collator, parts.sampler
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    precision = auto_precision("cuda" if use_cuda else "cpu") if cfg.precision == "auto" else cfg.precision
    if rank0 and cfg.precision == "auto":
        print(f"precision auto: {precision} on {'cuda' if use_cuda else 'cpu'} (precision=fp32 turns it off)")
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    if rank0 and not cfg.resume and metrics_path.exists():
        metrics_path.unlink()

    report_to, loggers = _loggers(cfg.report_to, out)
    args = training_arguments(cfg, out, precision=precision, use_cuda=use_cuda, world_size=world_size,
                              sampler=sampler, report_to=report_to)
    events: dict = {}
    callback = make_callback(tracker, metrics_path, cfg.batch_size * world_size * cfg.grad_accum, events)
    refresh = _refresh_callback(cfg, model, sets, hard_negatives, collator, events)
    # checkpoints are written to tmp-checkpoint-N and renamed into place (piccolo_lib.checkpoints)
    trainer_cls = type("PiccoloTrainer", (AtomicCheckpoints, SentenceTransformerTrainer), {})
    with stop_on_sigterm() as received_sigterm:
        on_sigterm = sigterm_callback(received_sigterm)
        trainer = trainer_cls(model=model, args=args, train_dataset=DatasetDict(train_sets), loss=losses,
                              data_collator=collator,
                              callbacks=[*filter(None, [refresh]), callback, on_sigterm, *loggers])
        if refresh is not None:  # refreshed negatives travel with every checkpoint
            trainer.checkpoint_writers = (refresh.overrides.save,)
        if rank0:
            remove_incomplete(out / "checkpoints")  # a run killed while saving: never resumed from
        last = last_checkpoint(out / "checkpoints") if cfg.resume else None
        step = int(last.name.split("-")[1]) if last else None
        if last is not None and refresh is not None:
            refresh.overrides.load(last)  # the negatives of the refreshes before the checkpoint
        if last is not None and rank0 and metrics_path.exists():  # steps after the checkpoint are redone
            truncate_metrics(metrics_path, step)  # atomic; a torn last line is dropped with a warning
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
        info = {
            "config": dataclasses.asdict(cfg), "mrl_dims": dims,
            "losses": {t: {"temperature": loss.temperature, "weight": loss.weight}
                       for t, loss in {l.task_type: l for l in losses.values()}.items()},
            "data": [{"name": s.name, "type": s.task_type, "rows": len(s.dataset), "repeat": s.repeat} for s in sets],
        }
        with atomic_path(final) as staged:  # the final folder is complete (model, training info, card) or absent
            model.save(str(staged), safe_serialization=True)
            (staged / "piccolo_training.json").write_text(json.dumps(info, ensure_ascii=False, indent=2),
                                                          encoding="utf-8")
            with (staged / "README.md").open("a", encoding="utf-8") as f:
                f.write("\n" + model_card_section(info))
    return final
