"""The training config: every knob of a run (:class:`TrainConfig`) and how a YAML file becomes one.

Every key is typed and range-checked by pydantic when a config is built (the types, with the words an error
uses, are in :mod:`piccolo_lib.train.config_types`): a mistake is one line naming the file or override, the
key, the value and what was expected, before any data or model is loaded. pydantic is the kept library for
this; by hand stay the "did you mean" for unknown keys and choice words, YAML typing of ``key=value``
overrides, the deepspeed file lookup and its ZeRO-stage check.

Split out of :mod:`piccolo_lib.training` so that module stays about the loop; ``from
piccolo_lib.training import TrainConfig, load_config`` keeps working (it re-exports these names).

Introduced in notebooks/06_multi_device.ipynb.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import field
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from ..errors import ConfigError, InputNotFound
from ..losses import FALSE_NEGATIVE_MODES
from ..tasks import canonical_type
from ..paths import REPO_ROOT  # noqa: F401  (re-exported: config.REPO_ROOT, training.REPO_ROOT)
from .config_types import (NOT_BOOL, Flag, Fraction, Int0, Int1, MaxSteps, NonNegative, Number, PathText,
                           Positive, Text, known_keys, one_line, one_of)

# keys whose value must be one of a few words (a typo is refused with the list)
CHOICES = {
    "pooling": ("auto", "mean", "cls", "lasttoken"),
    "precision": ("fp32", "bf16", "fp16", "auto"),
    "dtype": ("float32", "bfloat16", "float16", "auto"),
    "sampling": ("size", "explicit", "temperature"),
    "device": ("auto", "cpu", "cuda"),
    "mode": ("auto", "quick", "full"),
    "false_negative_masking": FALSE_NEGATIVE_MODES,
}


def _task_types(value: list[str]) -> list[str]:
    return [canonical_type(k) for k in value]  # aliases (sts, retrieval, ...) -> record types; unknown: an error


def _loss_settings(value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    for name, hp in value.items():
        if hp.get("temperature", 1.0) <= 0:
            raise ValueError(f"{name!r}: temperature must be > 0, got {hp['temperature']}")
        if hp.get("weight", 0.0) < 0:
            raise ValueError(f"{name!r}: weight must be >= 0, got {hp['weight']}")
    return {canonical_type(k): v for k, v in value.items()}


def _as_list(value: object) -> object:
    return [value] if isinstance(value, (str, Path)) else value  # `data: one/file.jsonl`


# the compound keys' types, with the words an error uses
DataPaths = Annotated[list[PathText], BeforeValidator(_as_list),
                      Field(min_length=1, description="a data file, folder or meta list, or a list of them")]
MrlDims = Annotated[list[Int1], Field(description="a list of integers >= 1, e.g. [64, 128, 256]")]
Losses = Annotated[dict[str, dict[str, Annotated[float, NOT_BOOL]]],
                   known_keys(("temperature", "weight")), AfterValidator(_loss_settings),
                   Field(description="a mapping of task type -> {temperature: a number > 0, weight: a number >= 0}")]
TaskTypes = Annotated[list[str], AfterValidator(_task_types), Field(description="a list of task types")]
NegNums = Annotated[dict[str, Int0], Field(description="a mapping of dataset name -> an integer >= 0")]
DatasetPrompts = Annotated[dict[str, dict[str, str]], known_keys(("query", "passage")),
                           Field(description="a mapping of dataset name -> {query: text, passage: text}")]
Weights = Annotated[list[NonNegative], Field(description="a list of numbers >= 0, one per dataset")]
TargetModules = Annotated[list[str] | str, Field(description="'all-linear' or a list of Linear layer names")]
Pooling, Precision, DType = one_of(CHOICES["pooling"]), one_of(CHOICES["precision"]), one_of(CHOICES["dtype"])
Sampling, Device, Mode = one_of(CHOICES["sampling"]), one_of(CHOICES["device"]), one_of(CHOICES["mode"])
FalseNegatives = one_of(CHOICES["false_negative_masking"])


# typed and range-checked by pydantic when built (load_config turns its first error into one line); still a
# dataclass, so dataclasses.asdict / fields work on it
@dataclass(config=ConfigDict(allow_inf_nan=False))
class TrainConfig:
    """Every knob of a training run (YAML keys; ``key=value`` overrides on the command line)."""

    backbone: PathText = "offline-bert"  # or a hub name, e.g. sensenova/piccolo-large-zh-v2
    pooling: Pooling = "auto"  # mean | cls | lasttoken | auto
    projection_dim: Int0 | None = None  # None: 1.75 x hidden (report: 1024 -> 1792); 0: no head
    mrl_dims: MrlDims | None = None  # None: the report's dims scaled to the width; []: no MRL
    projection_init: PathText | None = None  # a saved model folder whose projection head starts this run
    freeze_position_embeddings: Flag = False  # the reference freezes them
    freeze_word_embeddings: Flag = False  # CPU speed: e5-small's 96M-of-118M embedding matrix gets no grad/AdamW state
    train_top_layers: Int0 = 0  # > 0: train only the top k backbone layers (+ head); 0: every layer
    extend_max_length: Int1 | None = None  # extend learned position embeddings (the reference's extend_pe)
    max_seq_length: Int1 = 512
    # the backbone's dropout probability (every torch Dropout, hidden and attention): None keeps the checkpoint's
    # (BERT/e5: 0.1); 0 turns it off, so a step is a deterministic function of the weights and the batch
    # (notebooks/05_matryoshka.ipynb's loop by hand reproduces train()'s losses with it). LoRA: lora_dropout.
    dropout: Fraction | None = None
    data: DataPaths = field(default_factory=lambda: ["data_samples/train/meta_list.txt"])
    data_root: PathText | None = None  # root of the meta list's folders (default: the list's folder)
    losses: Losses = field(default_factory=dict)  # {type: {temperature, weight}}
    retrieval_for: TaskTypes = field(default_factory=list)  # ablation: train these types' data with InfoNCE
    batch_size: Int1 = 32  # per device
    neg_num: Int0 = 1  # hard negatives per retrieval row (reference: 1)
    cls_neg_num: Int0 = 10  # label negatives per classification row, min(this, available) per row (reference: 10)
    dataset_neg_num: NegNums = field(default_factory=dict)  # {dataset: k}: its neg_num or cls_neg_num
    query_max_len: Int1 = 64
    passage_max_len: Int1 = 128
    cross_device_negatives: Flag = False  # retrieval: every rank's passages are negatives (reference: off)
    # Prompts. query_prompt prefixes retrieval queries, BOTH texts of an STS / pair-classification row (symmetric;
    # the reference prefixes STS pairs) and classification/clustering texts; passage_prompt prefixes retrieval
    # passages (positives, negatives) and label texts (the candidates a text is matched against).
    # "" means the model's own saved prompts ("query" / "document"; e5-small: "query: " / "passage: "), if any.
    # The saved model keeps them as "query" / "document": mteb applies those to retrieval and reranking only.
    query_prompt: Text = ""  # saved as the model's "query" prompt
    passage_prompt: Text = ""  # saved as the "document" prompt
    dataset_prompts: DatasetPrompts = field(default_factory=dict)  # {dataset: {query, passage}}: per dataset
    # (an instruction-style retrieval prompt, e.g. piccolo-gpt's, belongs here rather than on every task type)
    sampling: Sampling = "size"  # size | explicit | temperature
    sampling_weights: Weights | None = None
    sampling_temperature: Positive = 1.0
    epochs: Positive = 1.0
    max_steps: MaxSteps = -1  # > 0 overrides epochs
    lr: NonNegative = 2e-5  # 0 is allowed: a step that updates nothing (the DDP test's untrained reference)
    warmup_ratio: Fraction = 0.1
    weight_decay: NonNegative = 0.01
    seed: Int0 = 42
    precision: Precision = "fp32"  # fp32 | bf16 | fp16: autocast (mixed precision) over the weights' dtype below
    # | auto: bf16 where the device has bf16 matrix units (a CUDA GPU that supports it; a CPU with AMX or
    # AVX512-BF16, see auto_precision), else fp32
    # the weights' (and AdamW states') dtype. float32: fp32 master weights, whatever the checkpoint was saved
    # in (transformers 5 would load a bf16 checkpoint as bf16); bfloat16 | float16: half-precision weights
    # (less memory, less exact updates); auto: as saved
    dtype: DType = "float32"
    attn_implementation: Text | None = None  # None: transformers' pick (sdpa where the model supports it) | sdpa | eager | flash_attention_2
    gradient_checkpointing: Flag = False
    grad_accum: Int1 = 1
    logging_steps: Int1 = 10  # console; metrics.jsonl gets every step
    report_to: Text = "none"  # none | tensorboard (event files under output_dir/tensorboard) | wandb | ...
    save_steps: Int0 = 0  # 0: save only the final model
    output_dir: PathText = "runs/quickstart"
    resume: Flag = False
    trust_remote_code: Flag = False
    lora_r: Int0 = 0  # > 0: freeze the backbone, train LoRA adapters of this rank (large LLMs; E5-mistral: 16)
    lora_alpha: Positive = 32.0  # the adapters' update is scaled by lora_alpha / lora_r
    lora_dropout: Fraction = 0.1
    lora_target_modules: TargetModules = "all-linear"  # or Linear names, e.g. [q_proj, v_proj]
    deepspeed: PathText | None = None
    device: Device = "auto"  # auto | cpu | cuda
    mode: Mode = "auto"  # quick | full | auto
    # -- issue 16: beyond the anchors --
    gradient_cache: Flag = False  # GradCache: whole-batch loss, activations of gradient_cache_minibatch rows at a time
    gradient_cache_minibatch: Int1 = 32  # rows per chunk when gradient_cache is on (memory ~ this, not batch_size)
    refresh_negatives_every: Int0 = 0  # > 0: every N steps re-score retrieval negatives, replace too-easy ones (Conan)
    refresh_range_min: Int0 | None = None  # rank window of replacements; None: the report's 50-100 scaled to the corpus
    refresh_range_max: Int1 | None = None
    refresh_threshold: Number = 0.05  # a negative is too easy when cos(q, neg) < cos(q, pos) - this (5 tau at 0.01)
    false_negative_masking: FalseNegatives = "text"  # text (same text as the positive) | margin (near/above it) | off
    false_negative_margin: Number = 0.0  # margin mode: drop candidates with cos > cos(q, pos) - margin (Qwen3: -0.1)
    # -- issue 20: speed --
    packed_encoding: Flag = True  # encode each distinct row of a batch once, in length-sorted chunks (same loss)

    @model_validator(mode="after")
    def _keys_that_depend_on_each_other(self) -> TrainConfig:
        if self.precision == "fp16" and self.dtype == "float16":
            raise ValueError("precision fp16 needs fp32 master weights (the gradient scaler cannot unscale fp16 "
                             "gradients): set dtype float32, or precision bf16 with dtype bfloat16")
        low, high = self.refresh_range_min, self.refresh_range_max
        if low is not None and high is not None and low >= high:
            raise ValueError(f"refresh_range_min ({low}) must be below refresh_range_max ({high})")
        return self


def _coerce(name: str, raw: str):
    """Parse a ``key=value`` override with YAML rules (``1e-5``, ``true``, ``[1, 2]``, ``null``)."""
    value = yaml.safe_load(raw)
    return str(value) if name in ("backbone", "output_dir", "query_prompt", "passage_prompt") else value


def _read_yaml(path: Path) -> dict:
    """The config file as a dict; a missing file, bad YAML or a non-mapping is one clear error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputNotFound(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value, got {type(raw).__name__}")
    return raw or {}


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> TrainConfig:
    """Read a YAML config (safe loader), apply overrides, and type and range-check every key.

    Any mistake is one :class:`~piccolo_lib.errors.ConfigError` line naming the source (the file, or the override
    that set the key), the key, the value and what was expected; an unknown key gets the closest valid one.
    """
    source = str(path or "config")
    raw = _read_yaml(Path(path)) if path else {}
    origin: dict[str, str] = {}  # key -> the override that set it (the file set the others)
    if isinstance(overrides, dict):
        raw.update(overrides)
        origin.update({key: "override" for key in overrides})
    for item in overrides or [] if not isinstance(overrides, dict) else []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, value = item.split("=", 1)
        raw[key.strip()] = _coerce(key.strip(), value)
        origin[key.strip()] = f"override {item}"
    valid = [f.name for f in dataclasses.fields(TrainConfig)]
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}{hint} (valid keys: {', '.join(valid)})")
    if isinstance(raw.get("deepspeed"), (str, Path)) and str(raw["deepspeed"]):  # anything else: typed below
        raw["deepspeed"] = _find_file(str(raw["deepspeed"]), Path(path).parent if path else None,
                                      f"{source}: deepspeed")
    try:
        cfg = TrainConfig(**raw)
    except ValidationError as err:
        hints = typing.get_type_hints(TrainConfig, include_extras=True)
        raise ConfigError(one_line(err, hints, raw, source, origin)) from None
    if cfg.gradient_cache and cfg.deepspeed:
        _check_zero_stage(cfg.deepspeed, source)
    return cfg


def _check_zero_stage(deepspeed: str, source: str) -> None:
    """GradCache runs its chunks under ``no_sync``, which DeepSpeed refuses from ZeRO stage 2 on (gradients are
    partitioned as they are produced: ``assert not self.zero_optimization_partition_gradients()``). Refused here,
    at load, instead of at the first step; stages 0 and 1 partition only optimizer states and work."""
    try:
        ds = json.loads(Path(deepspeed).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{deepspeed}: not valid JSON ({err})") from None
    stage = (ds.get("zero_optimization") or {}).get("stage", 0) if isinstance(ds, dict) else 0
    if stage in (2, 3):
        raise ConfigError(f"{source}: gradient_cache cannot run with deepspeed ZeRO stage {stage} ({deepspeed}: "
                          "zero_optimization.stage): ZeRO-2/3 partition gradients, and GradCache's no_sync asserts "
                          "there; use a stage 0 or 1 config (configs/ds_zero1.json) or gradient_cache=false")
    if stage not in (0, 1):
        raise ConfigError(f"{deepspeed}: key 'zero_optimization.stage': expected 0, 1, 2 or 3, got {stage!r}")


def resolve_path(path: str) -> str:
    """Relative data paths are tried against the working directory, then the repo root."""
    p = Path(path)
    return str(p if p.is_absolute() or p.exists() else REPO_ROOT / p)


def _find_file(name: str, config_dir: Path | None, what: str) -> str:
    """A file named in a config: as given if absolute, else the first of the config file's folder, the
    working directory and the repo root that has it (so a run works from any folder)."""
    p = Path(name).expanduser()
    candidates = [p] if p.is_absolute() else [d / p for d in (config_dir, Path.cwd(), REPO_ROOT) if d is not None]
    for c in candidates:
        if c.is_file():
            return str(c.resolve())
    raise InputNotFound(f"{what} {name!r}: no such file (looked in {', '.join(str(c.parent) for c in candidates)})")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def auto_precision(device: str) -> str:
    """What ``precision: auto`` means on ``device`` (``cpu`` | ``cuda``): ``bf16``, ``fp16`` or ``fp32``.

    bf16 autocast pays only where bf16 matrix multiplies run in hardware: on a CUDA GPU that reports bf16
    support (Ampere and later), or on a CPU with AMX (``amx_bf16``) or AVX512-BF16. A CUDA GPU without bf16
    (a T4 or V100, Colab's free GPU) gets fp16 autocast with the Trainer's dynamic loss scaling: its tensor cores
    run fp16, and the scaler keeps small gradients from underflowing. A CPU without bf16 units stays in fp32
    (autocast would emulate bf16, slower than fp32). The weights (and AdamW states) stay in ``dtype`` (float32
    by default): fp32 master weights. Measured in benchmarks/RESULTS.md, section 12, "Speed levers on e5-small".
    """
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_flags() & {"amx_bf16", "avx512_bf16"} else "fp32"
