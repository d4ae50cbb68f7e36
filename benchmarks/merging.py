"""Merging a narrow fine-tune with its base (LM-Cocktail style), per category of the local benchmark, e5-small.

The fine-tune is benchmarks/refresh.py's static-negative run of seed 1: e5-small trained on retrieval
data only (a narrow mix). It is merged with the base e5-small (same modules: no projection head) by
weighted average at fine-tune weights 0.25 / 0.5 / 0.75 and by slerp at 0.5 (piccolo_lib.merging),
and every model is scored on all six local categories.
"""

from __future__ import annotations

from pathlib import Path

from .refresh import OUT, config, evaluate

WEIGHTS = (0.25, 0.5, 0.75)


def _base() -> Path:
    """The base e5-small as a sentence-transformers folder (no head), as training starts from it."""
    from piccolo_lib.model import build_model

    path = OUT / "base"
    if not (path / "modules.json").exists():
        build_model("e5-small", projection_dim=0, device="cpu").save(str(path), safe_serialization=True)
    return path


def run(quick: bool = False, weights: tuple[float, ...] = WEIGHTS) -> dict:
    """Scores of base, fine-tune and the merges (the fine-tune must exist: run benchmarks.refresh first)."""
    from piccolo_lib.merging import merge_models

    finetuned = Path(config(1, False)["output_dir"]) / "final"
    if not finetuned.exists():
        raise FileNotFoundError(f"{finetuned} missing: run `python -m benchmarks --only refresh` first")
    base = _base()
    models = {"base": base, "fine-tuned": finetuned}
    for w in weights[1:2] if quick else weights:
        models[f"linear {w}"] = merge_models([base, finetuned], OUT / f"merge-linear-{w}", [1 - w, w], "linear")
    models["slerp 0.5"] = merge_models([base, finetuned], OUT / "merge-slerp-0.5", [0.5, 0.5], "slerp")
    rows = {}
    for name, path in models.items():
        rows[name] = evaluate(path, "merge-" + name.replace(" ", "-"), None)
        print(name, rows[name], flush=True)
    return {"finetuned": str(finetuned.relative_to(OUT.parent.parent)), "rows": rows}


def render(data: dict) -> str:
    """The RESULTS.md section: one row per model, one column per category, and the average."""
    cats = list(next(iter(data["rows"].values()))["categories"])
    lines = ["## 11. Model merging on e5-small (benchmarks/merging.py)\n",
             "Base e5-small, a 24-step retrieval-only fine-tune (benchmarks/refresh.py, static negatives, seed 1), "
             "and merges of the two (weight = the fine-tune's). Local benchmark, six categories.\n",
             "| model | " + " | ".join(cats) + " | average |", "|---|" + "---|" * (len(cats) + 1)]
    for name, r in data["rows"].items():
        lines.append(f"| {name} | " + " | ".join(f"{r['categories'][c]:.2f}" for c in cats) + f" | {r['average']:.2f} |")
    if data.get("note"):
        lines.append("\n" + data["note"])
    return "\n".join(lines) + "\n"
