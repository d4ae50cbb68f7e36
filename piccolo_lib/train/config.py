"""The training config: every knob of a run (:class:`TrainConfig`) and how a YAML file becomes one.

Split out of :mod:`piccolo_lib.training` so that module stays about the loop; ``from
piccolo_lib.training import TrainConfig, load_config`` keeps working (it re-exports these names).

Introduced in notebooks/05_multi_device.ipynb.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError, InputNotFound
from ..losses import FALSE_NEGATIVE_MODES
from ..tasks import canonical_type
from ..paths import REPO_ROOT  # noqa: F401  (re-exported: config.REPO_ROOT, training.REPO_ROOT)


@dataclass
class TrainConfig:
    """Every knob of a training run (YAML keys; ``key=value`` overrides on the command line)."""

    backbone: str = "offline-bert"  # or a hub name, e.g. sensenova/piccolo-large-zh-v2
    pooling: str = "auto"  # mean | cls | lasttoken | auto
    projection_dim: int | None = None  # None: 1.75 x hidden (report: 1024 -> 1792); 0: no head
    mrl_dims: list[int] | None = None  # None: the report's dims scaled to the width; []: no MRL
    projection_init: str | None = None  # a saved model folder whose projection head starts this run
    freeze_position_embeddings: bool = False  # the reference freezes them
    freeze_word_embeddings: bool = False  # CPU speed: e5-small's 96M-of-118M embedding matrix gets no grad/AdamW state
    train_top_layers: int = 0  # > 0: train only the top k backbone layers (+ head); 0: every layer
    extend_max_length: int | None = None  # extend learned position embeddings (the reference's extend_pe)
    max_seq_length: int = 512
    # the backbone's dropout probability (every torch Dropout, hidden and attention): None keeps the checkpoint's
    # (BERT/e5: 0.1); 0 turns it off, so a step is a deterministic function of the weights and the batch
    # (notebooks/04_matryoshka.ipynb's loop by hand reproduces train()'s losses with it). LoRA: lora_dropout.
    dropout: float | None = None
    data: list[str] = field(default_factory=lambda: ["data_samples/train/meta_list.txt"])
    data_root: str | None = None  # root of the meta list's folders (default: the list's folder)
    losses: dict[str, dict[str, float]] = field(default_factory=dict)  # {type: {temperature, weight}}
    retrieval_for: list[str] = field(default_factory=list)  # ablation: train these types' data with InfoNCE
    batch_size: int = 32  # per device
    neg_num: int = 1  # hard negatives per retrieval row (reference: 1)
    cls_neg_num: int = 10  # label negatives per classification row, min(this, available) per row (reference: 10)
    dataset_neg_num: dict[str, int] = field(default_factory=dict)  # {dataset: k}: its neg_num or cls_neg_num
    query_max_len: int = 64
    passage_max_len: int = 128
    cross_device_negatives: bool = False  # retrieval: every rank's passages are negatives (reference: off)
    # Prompts. query_prompt prefixes retrieval queries, BOTH texts of an STS / pair-classification row (symmetric;
    # the reference prefixes STS pairs) and classification/clustering texts; passage_prompt prefixes retrieval
    # passages (positives, negatives) and label texts (the candidates a text is matched against).
    # "" means the model's own saved prompts ("query" / "document"; e5-small: "query: " / "passage: "), if any.
    # The saved model keeps them as "query" / "document": mteb applies those to retrieval and reranking only.
    query_prompt: str = ""  # saved as the model's "query" prompt
    passage_prompt: str = ""  # saved as the "document" prompt
    dataset_prompts: dict[str, dict[str, str]] = field(default_factory=dict)  # {dataset: {query, passage}}: per dataset
    # (an instruction-style retrieval prompt, e.g. piccolo-gpt's, belongs here rather than on every task type)
    sampling: str = "size"  # size | explicit | temperature
    sampling_weights: list[float] | None = None
    sampling_temperature: float = 1.0
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    precision: str = "fp32"  # fp32 | bf16 | fp16: autocast (mixed precision) over the weights' dtype below
    # | auto: bf16 where the device has bf16 matrix units (a CUDA GPU that supports it; a CPU with AMX or
    # AVX512-BF16, see auto_precision), else fp32
    # the weights' (and AdamW states') dtype. float32: fp32 master weights, whatever the checkpoint was saved
    # in (transformers 5 would load a bf16 checkpoint as bf16); bfloat16 | float16: half-precision weights
    # (less memory, less exact updates); auto: as saved
    dtype: str = "float32"
    attn_implementation: str | None = None  # None: transformers' pick (sdpa where the model supports it) | sdpa | eager | flash_attention_2
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
    # -- issue 20: speed --
    packed_encoding: bool = True  # encode each distinct row of a batch once, in length-sorted chunks (same loss)


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
            raise ConfigError(f"{source}: key {key!r}: expected a number, got {value!r}") from None
    return value


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
    """Read a YAML config (safe loader) and apply overrides; unknown keys are an error with a hint."""
    raw = _read_yaml(Path(path)) if path else {}
    if isinstance(overrides, dict):
        raw.update(overrides)
    for item in overrides or [] if not isinstance(overrides, dict) else []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, value = item.split("=", 1)
        raw[key.strip()] = _coerce(key.strip(), value)
    valid = [f.name for f in dataclasses.fields(TrainConfig)]
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{path or 'config'}: unknown key {key!r}{hint} (valid keys: {', '.join(valid)})")
    raw = {k: _typed(k, v, str(path or "config")) for k, v in raw.items()}
    for key, allowed in CHOICES.items():
        if key in raw and raw[key] not in allowed:
            close = difflib.get_close_matches(str(raw[key]), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{path or 'config'}: key {key!r}: {raw[key]!r} is not one of {', '.join(allowed)}{hint}")
    if raw.get("precision") == "fp16" and raw.get("dtype") == "float16":
        raise ConfigError(f"{path or 'config'}: precision fp16 needs fp32 master weights (the gradient scaler "
                         "cannot unscale fp16 gradients): set dtype float32, or precision bf16 with dtype bfloat16")
    if raw.get("deepspeed"):
        raw["deepspeed"] = _find_file(str(raw["deepspeed"]), Path(path).parent if path else None,
                                      f"{path or 'config'}: deepspeed")
    if isinstance(raw.get("data"), str):
        raw["data"] = [raw["data"]]
    if raw.get("losses"):  # aliases (sts, retrieval, ...) -> record types; unknown types are an error
        raw["losses"] = {canonical_type(k): v for k, v in raw["losses"].items()}
    if raw.get("retrieval_for"):
        raw["retrieval_for"] = [canonical_type(k) for k in raw["retrieval_for"]]
    return TrainConfig(**raw)


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
    """What ``precision: auto`` means on ``device`` (``cpu`` | ``cuda``): ``bf16`` or ``fp32``.

    bf16 autocast pays only where bf16 matrix multiplies run in hardware: on a CUDA GPU that reports bf16
    support, or on a CPU with AMX (``amx_bf16``) or AVX512-BF16. Elsewhere autocast emulates bf16 and is
    slower than fp32. The weights (and AdamW states) stay in ``dtype`` (float32 by default): fp32 master
    weights. Measured in benchmarks/RESULTS.md, section 12, "Speed levers on e5-small".
    """
    import torch

    if device == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_flags() & {"amx_bf16", "avx512_bf16"} else "fp32"
