"""Model merging: weighted averages (LM-Cocktail) and spherical interpolation (slerp) of embedding models.

Fine-tuning on a narrow task mix can cost general ability; merging the fine-tuned weights with the
base model's (or averaging checkpoints) recovers much of it at no training cost. LM-Cocktail
(Xiao et al. 2023, arXiv 2311.13534) uses a weighted average; Qwen3-Embedding merges checkpoints by
spherical linear interpolation. Both act tensor by tensor on models of the same architecture:

    linear:  theta = sum_m w_m theta_m                     (weights normalised to sum 1)
    slerp:   theta = sin((1-t) W) / sin W * a + sin(t W) / sin W * b,   cos W = <a, b> / (|a| |b|)

with a, b one tensor of each model flattened, and t the second model's weight. Nearly parallel
tensors (sin W tiny, e.g. a frozen embedding matrix) fall back to the linear formula, which slerp
approaches there. Integer buffers (position ids) must be equal and are copied.

Introduced in notebooks/08_ablation.ipynb.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from ..io import atomic_path

METHODS = ("linear", "slerp")
PARALLEL_EPS = 1e-6  # |sin W| below this: linear fallback


class MergeError(ValueError):
    """Models that cannot be merged (different architecture, tensor names or shapes)."""


def linear(tensors: list[Tensor], weights: list[float]) -> Tensor:
    """sum_m w_m * t_m, computed in float64 and returned in the first tensor's dtype."""
    out = sum(w * t.double() for w, t in zip(weights, tensors))
    return out.to(tensors[0].dtype)


def slerp(a: Tensor, b: Tensor, t: float, eps: float = PARALLEL_EPS) -> Tensor:
    """Spherical interpolation from ``a`` (t = 0) to ``b`` (t = 1) along the great circle of their directions.

    The angle is taken between the flattened tensors; the interpolation weights are applied to the
    raw tensors (so norms interpolate too). Falls back to ``(1 - t) a + t b`` when |sin W| < ``eps``.
    """
    x, y = a.double().flatten(), b.double().flatten()
    nx, ny = x.norm(), y.norm()
    if nx == 0 or ny == 0:
        return linear([a, b], [1 - t, t])
    cos = torch.clamp(x @ y / (nx * ny), -1.0, 1.0)
    omega = float(torch.arccos(cos))
    if abs(math.sin(omega)) < eps:
        return linear([a, b], [1 - t, t])
    s = math.sin(omega)
    out = math.sin((1 - t) * omega) / s * x + math.sin(t * omega) / s * y
    return out.reshape(a.shape).to(a.dtype)


def check_compatible(states: list[dict[str, Tensor]], names: list[str]) -> None:
    """Raise :class:`MergeError` naming the first tensor that differs (missing, or another shape)."""
    first = states[0]
    for state, name in zip(states[1:], names[1:]):
        for key in first.keys() | state.keys():
            if key not in state or key not in first:
                where, other = (name, names[0]) if key not in state else (names[0], name)
                raise MergeError(f"cannot merge: tensor {key!r} is in {other} but not in {where}")
            if first[key].shape != state[key].shape:
                raise MergeError(f"cannot merge: tensor {key!r} has shape {tuple(first[key].shape)} in {names[0]} "
                                 f"but {tuple(state[key].shape)} in {name}")


def merge_states(states: list[dict[str, Tensor]], weights: list[float], method: str = "linear",
                 names: list[str] | None = None) -> dict[str, Tensor]:
    """Merge state dicts tensor by tensor.

    Args:
        states: two or more state dicts with the same keys and shapes.
        weights: one weight per state (normalised to sum 1; slerp: exactly two states, t = w_2).
        method: ``linear`` or ``slerp``.
        names: labels for error messages (default ``model 1``, ``model 2``, ...).
    """
    names = names or [f"model {i + 1}" for i in range(len(states))]
    if method not in METHODS:
        raise MergeError(f"unknown merge method {method!r}; expected one of {METHODS}")
    if len(states) < 2 or len(weights) != len(states):
        raise MergeError(f"need at least 2 models and one weight per model, got {len(states)} and {len(weights)}")
    if method == "slerp" and len(states) != 2:
        raise MergeError(f"slerp merges exactly 2 models, got {len(states)}")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise MergeError(f"weights must be >= 0 with a positive sum, got {weights}")
    weights = [w / sum(weights) for w in weights]
    check_compatible(states, names)
    out = {}
    for key, first in states[0].items():
        tensors = [s[key] for s in states]
        if not first.is_floating_point():
            if any(not torch.equal(first, t) for t in tensors[1:]):
                raise MergeError(f"cannot merge: integer tensor {key!r} differs between the models")
            out[key] = first.clone()
        else:
            out[key] = slerp(*tensors, weights[1]) if method == "slerp" else linear(tensors, weights)
    return out


def _architecture(path: str) -> list[str]:
    """The module classes a sentence-transformers folder lists in modules.json (read before loading)."""
    import json

    return [m["type"].rsplit(".", 1)[-1] for m in json.loads((Path(path) / "modules.json").read_text(encoding="utf-8"))]


def _settings(model) -> dict[str, object]:
    """What a merge would otherwise take silently from one model: each module's config but the backbone's
    (pooling mode, head shape and activation, ...) and the prompts. Keys name the thing for error messages."""
    out: dict[str, object] = {}
    for i, module in enumerate(model):
        if i == 0 or not hasattr(module, "get_config_dict"):  # module 0: the backbone, compared tensor by tensor
            continue
        kind = {"Pooling": "pooling", "Dense": "head"}.get(type(module).__name__, type(module).__name__)
        for key, value in sorted(module.get_config_dict().items()):
            out[key if key.startswith(kind) else f"{kind} {key}"] = value  # "pooling_mode", "head out_features"
    out.update({f"prompt {name!r}": text for name, text in model.prompts.items()})
    out["default prompt"] = model.default_prompt_name
    return out


def _differences(settings: list[dict[str, object]], names: list[str]) -> list[str]:
    """One phrase per setting in which a model differs from the first, e.g. ``pooling_mode 'cls' in A but 'mean'
    in B``."""
    return [f"{key} {settings[0].get(key)!r} in {names[0]} but {other.get(key)!r} in {name}"
            for other, name in zip(settings[1:], names[1:])
            for key in sorted(settings[0].keys() | other.keys()) if settings[0].get(key) != other.get(key)]


def merge_models(paths: list[str | Path], out: str | Path, weights: list[float] | None = None,
                 method: str = "linear", keep_from: int | None = None) -> Path:
    """Merge sentence-transformers folders into ``out`` (safetensors; tokenizer and config of one model).

    Pooling, the head's configuration (shape, activation) and the prompts cannot be averaged: a merge of a
    CLS-pooled and a mean-pooled model, or of models with other prompts, is refused with one line naming both
    models and what differs, unless ``keep_from`` says whose to keep. Then the output takes that model's
    pooling, prompts and tokenizer, and a head whose configuration differs is copied from it unmerged (heads
    of other shapes cannot be averaged); everything else is merged.

    Args:
        paths: two or more SentenceTransformer folders of the same architecture (the same module list).
        out: output folder; loads with plain ``SentenceTransformer(out)``. Written to a temporary folder and
            renamed into place, so an interrupted merge leaves no half-written folder (and an old one intact).
        weights: one per model (default: equal); normalised to sum 1.
        method: ``linear`` (weighted average) or ``slerp`` (two models).
        keep_from: 1-based index into ``paths`` of the model whose pooling, head, prompts, tokenizer and config
            files the output takes (``piccolo merge --keep-from N``); None: the first model's, and models that
            differ in pooling, head or prompts are refused.

    Returns:
        The output folder.
    """
    from sentence_transformers import SentenceTransformer

    names = [str(p) for p in paths]
    if keep_from is not None and not 1 <= keep_from <= len(names):
        raise MergeError(f"keep_from={keep_from}: expected a model number from 1 to {len(names)}")
    for p in names:
        if not (Path(p) / "modules.json").is_file():
            raise MergeError(f"cannot merge: {p} is not a sentence-transformers folder (no modules.json)")
    arch = [_architecture(p) for p in names]
    for a, p in zip(arch[1:], names[1:]):
        if a != arch[0]:
            raise MergeError(f"cannot merge: modules {arch[0]} in {names[0]} but {a} in {p}")
    models = [SentenceTransformer(p, device="cpu") for p in names]
    differ = _differences([_settings(m) for m in models], names)
    if differ and keep_from is None:
        raise MergeError(f"cannot merge: {'; '.join(differ)}; pass keep_from=N (piccolo merge --keep-from N) "
                         "to keep model N's")
    target = models[(keep_from or 1) - 1]
    kept = _modules_to_keep(models, target)  # module indices copied from the target, not merged
    states = [{k: v for k, v in m.state_dict().items() if k.split(".", 1)[0] not in kept} for m in models]
    weights = [1.0] * len(models) if weights is None else list(weights)
    merged = merge_states(states, weights, method, names)
    target.load_state_dict({**target.state_dict(), **merged})
    with atomic_path(out) as tmp:  # a temp folder beside ``out``, renamed into place when complete
        target.save(str(tmp), safe_serialization=True)
    return Path(out)


def _modules_to_keep(models: list, target) -> set[str]:
    """Indices (as state-dict prefixes) of the modules after the backbone whose config differs between the
    models: their tensors come from ``target`` as they are."""
    kept = set()
    for i, module in enumerate(target):
        if i and hasattr(module, "get_config_dict") and any(
                m[i].get_config_dict() != module.get_config_dict() for m in models):
            kept.add(str(i))
    return kept
