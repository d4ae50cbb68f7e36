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

Introduced in notebooks/07_ablation.ipynb.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

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


def merge_models(paths: list[str | Path], out: str | Path, weights: list[float] | None = None,
                 method: str = "linear") -> Path:
    """Merge sentence-transformers folders into ``out`` (safetensors; tokenizer, config, prompts of the first).

    Args:
        paths: two or more SentenceTransformer folders of the same architecture (modules, heads, shapes).
        out: output folder; loads with plain ``SentenceTransformer(out)``.
        weights: one per model (default: equal); normalised to sum 1.
        method: ``linear`` (weighted average) or ``slerp`` (two models).

    Returns:
        The output folder.
    """
    from sentence_transformers import SentenceTransformer

    names = [str(p) for p in paths]
    for p in names:
        if not (Path(p) / "modules.json").is_file():
            raise MergeError(f"cannot merge: {p} is not a sentence-transformers folder (no modules.json)")
    arch = [_architecture(p) for p in names]
    for a, p in zip(arch[1:], names[1:]):
        if a != arch[0]:
            raise MergeError(f"cannot merge: modules {arch[0]} in {names[0]} but {a} in {p}")
    models = [SentenceTransformer(p, device="cpu") for p in names]
    weights = [1.0] * len(models) if weights is None else list(weights)
    merged = merge_states([m.state_dict() for m in models], weights, method, names)
    target = models[0]
    target.load_state_dict(merged)
    target.save(str(out), safe_serialization=True)
    return Path(out)
