"""Speed levers on e5-small: what each one buys on the mixed workload, and where a step's time goes.

Setting: e5-small with its word-embedding matrix frozen (the quickstart's setting; 96M of its 118M
parameters get no gradient and no AdamW state), the mixed workload of benchmarks.workload (batch 32:
retrieval with 1 hard negative, STS, classification with 9 label negatives), the 7 MRL dims.

1. **Hardware**: CPU model, torch threads, bf16 support (``amx_bf16`` / ``avx512_bf16`` flags) and what
   ``precision: auto`` resolves to here (:func:`piccolo_lib.train.config.auto_precision`).
2. **Interleaved variants** on identical batches, rotating order (as benchmarks.train_step): piccolo_lib
   (packed encoding on, its default), piccolo_lib unpacked (one pass per column, the baseline before issue 20)
   and plain sentence-transformers, each in fp32 and in bf16 autocast (fp32 master weights, what the Trainer's
   ``bf16=True`` does on a CPU), plus piccolo_lib with eager attention instead of SDPA.
3. **One step, by phase** (piccolo_lib, medians per task type, ms): collate (tokenize + pad), forward
   (encode every column), loss (routed loss with MRL), backward, optimizer (clip + AdamW + zero_grad).
   **Peak step memory** per recipe (fp32, each in a fresh process, benchmarks/memory.py): piccolo_lib,
   unpacked, plain sentence-transformers, the reference strategy.
4. **Loss drift of bf16 autocast**: two copies of the model from the same weights trained 50 steps on the
   same batches (quickstart batch 16), fp32 vs bf16: per-step loss difference.
5. **Levers measured by counting, not timing**: how many passage texts repeat within a retrieval batch
   (what encoding each distinct text once saves), the padding share of the encoded tokens, and the tokens
   the encoder runs on per batch with and without packed encoding, on the training files at batch 32.
"""

from __future__ import annotations

import contextlib
import copy
import random
import statistics
import time

import torch

from .common import build, e5_small_missing, make_optimizer, repeats, stats
from .recipes import Piccolo, PlainST, Unpacked
from .workload import BATCH, TASKS, mixed_batches

DRIFT_STEPS, DRIFT_BATCH = 50, 16


def hardware() -> dict:
    from piccolo_lib.train.config import auto_precision, cpu_flags

    flags = cpu_flags()
    return {"bf16_flags": sorted(flags & {"amx_bf16", "amx_tile", "avx512_bf16"}), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "auto_precision": auto_precision("cpu")}


def _autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def phased_step(model, optimizer, recipe, batch, bf16: bool) -> dict:
    """One training step, timed by phase (seconds). Plain ST's losses encode inside: forward holds the loss."""
    t = [time.perf_counter()]
    features, labels = recipe.prepare(batch)
    t.append(time.perf_counter())
    with _autocast(bf16):
        if isinstance(recipe, PlainST):
            loss = recipe.loss(batch, (features, labels))
            t.append(time.perf_counter())
        else:
            module = recipe.losses[batch.task]
            emb = module.encode(features[0], labels)
            t.append(time.perf_counter())
            loss = module.loss_from_table(emb, labels)
    t.append(time.perf_counter())
    loss.backward()
    t.append(time.perf_counter())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t.append(time.perf_counter())
    phases = ("collate", "forward", "loss", "backward", "optimizer")
    return {**dict(zip(phases, (b - a for a, b in zip(t, t[1:])))), "total": t[-1] - t[0],
            "loss_value": float(loss.detach())}


VARIANTS = {  # name -> (recipe class, bf16 autocast, attention implementation)
    "piccolo_lib fp32": (Piccolo, False, "sdpa"),
    "piccolo_lib bf16": (Piccolo, True, "sdpa"),
    "piccolo_lib fp32, unpacked": (Unpacked, False, "sdpa"),
    "piccolo_lib bf16, unpacked": (Unpacked, True, "sdpa"),
    "sentence-transformers fp32": (PlainST, False, "sdpa"),
    "sentence-transformers bf16": (PlainST, True, "sdpa"),
    "piccolo_lib fp32, eager attention": (Piccolo, False, "eager"),
}
MEMORY_RECIPES = ("piccolo_lib", "piccolo_lib, unpacked", "sentence-transformers", "reference")


def interleaved(quick: bool) -> dict:
    model, dims = build("e5-small")
    model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    encoder = model[0].auto_model
    recipes = {name: cls(model, dims) for name, (cls, _, _) in VARIANTS.items()}
    optimizer = make_optimizer(model)
    model.train()
    batch_size = 4 if quick else BATCH  # quick: a smoke run of the harness (tests), no speed claims
    cycles = mixed_batches(2 if quick else 6, batch_size=batch_size, seed=3)
    names = list(VARIANTS)
    rec = {n: {"cycle": [], "task": {t: [] for t in TASKS}, "phases": {t: [] for t in TASKS}} for n in names}
    for c in repeats(len(cycles), budget_s=420, n_min=1 if quick else 4):
        order = names[c % len(names):] + names[:c % len(names)]
        spent = dict.fromkeys(names, 0.0)
        for batch in cycles[c]:
            for name in order:
                _, bf16, attention = VARIANTS[name]
                encoder.set_attn_implementation(attention)
                step = phased_step(model, optimizer, recipes[name], batch, bf16)
                spent[name] += step["total"]
                if c > 0:
                    rec[name]["task"][batch.task].append(step["total"])
                    rec[name]["phases"][batch.task].append(step)
        if c > 0:
            for n in names:
                rec[n]["cycle"].append(spent[n])
    encoder.set_attn_implementation("sdpa")
    out = {}
    for n, r in rec.items():
        out[n] = {"cycle_s": stats(r["cycle"]), "samples_per_s": stats([batch_size * len(TASKS) / s for s in r["cycle"]]),
                  "task_s": {t: stats(v) for t, v in r["task"].items()},
                  "phases_ms": {t: {p: 1000 * statistics.median(s[p] for s in steps)
                                    for p in ("collate", "forward", "loss", "backward", "optimizer")}
                                for t, steps in r["phases"].items()},
                  "cycles": r["cycle"]}
    return out


def drift(quick: bool) -> dict:
    """fp32 vs bf16-autocast training from the same weights on the same batches: per-step losses."""
    base, dims = build("e5-small")
    base[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    steps, batch_size = (3, 4) if quick else (DRIFT_STEPS, DRIFT_BATCH)
    batches = [b for cycle in mixed_batches(-(-steps // len(TASKS)), batch_size=batch_size, seed=5) for b in cycle][:steps]
    losses = {}
    for bf16 in (False, True):
        model = copy.deepcopy(base)
        model.eval()  # dropout off: the two runs differ by precision only
        recipe, optimizer = Piccolo(model, dims), make_optimizer(model)
        losses["bf16" if bf16 else "fp32"] = [phased_step(model, optimizer, recipe, b, bf16)["loss_value"]
                                              for b in batches]
    diffs = [abs(a - b) for a, b in zip(losses["fp32"], losses["bf16"])]
    rel = [d / max(abs(a), 1e-8) for d, a in zip(diffs, losses["fp32"])]
    return {"steps": steps, "batch": batch_size, "losses": losses, "max_abs_diff": max(diffs),
            "median_rel_diff": statistics.median(rel), "max_rel_diff": max(rel),
            "last10_mean": {k: statistics.mean(v[-10:]) for k, v in losses.items()}}


def counts(quick: bool) -> dict:
    """Repeated passages within retrieval batches; padding share and packed / unpacked tokens, at batch 32."""
    from piccolo_lib.data import read_jsonl
    from piccolo_lib.model import build_model
    from piccolo_lib.paths import REPO_ROOT

    from .recipes import rows_and_tokens

    model = build_model("e5-small", device="cpu")
    rng = random.Random(0)
    out = {}
    for name in ("retrieval", "reranking"):
        rows = read_jsonl(REPO_ROOT / "data_samples" / "train" / f"{name}.jsonl")
        n_batches = 2 if quick else 50
        texts = total = 0
        for _ in range(n_batches):
            batch = rng.sample(rows, BATCH)
            passages = [r["text_pos"] for r in batch] + [r["text_neg"][0] for r in batch]
            texts += len(passages)
            total += len(passages) - len(set(passages))
        out[f"{name}: repeated passages per batch (1 negative)"] = total / texts
    recipe = Piccolo(model, None)
    pad = model.tokenizer.pad_token_id
    for task in TASKS:
        real = unpacked = packed = 0
        for cycle in mixed_batches(1 if quick else 20, seed=7):
            features, _ = recipe.prepare(next(x for x in cycle if x.task == task))
            real += sum(int(f["attention_mask"].sum()) for f in features)
            unpacked += sum(f["input_ids"].numel() for f in features)  # the distinct texts padded to the longest
            packed += rows_and_tokens(features, packed=True, pad_token_id=pad)[1]
        out[f"{task}: padding share of encoded tokens, unpacked"] = 1 - real / unpacked
        out[f"{task}: tokens encoded, packed / unpacked"] = packed / unpacked
    return out


def memory(quick: bool) -> dict | None:
    """Peak step memory (MB above the process at rest) per recipe and task, fp32, frozen word embeddings."""
    from .memory import measure

    if quick:  # one process for all recipes: a smoke run of the harness
        return measure("e5-small", list(MEMORY_RECIPES), frozen_words=True, batch_size=4)
    out = {}
    for name in MEMORY_RECIPES:
        got = measure("e5-small", [name], frozen_words=True)
        if got is None:
            return None
        out.update(got)
    return out


def run(quick: bool = False) -> dict:
    missing = e5_small_missing()
    if missing:
        return {"skipped": missing}
    torch.manual_seed(0)
    return {"batch": 4 if quick else BATCH, "hardware": hardware(), "variants": interleaved(quick), "drift": drift(quick),
            "memory": memory(quick), "counts": counts(quick)}


def _ratio(a: dict, b: dict) -> str:
    """How many times faster ``a`` runs a cycle than ``b`` (medians)."""
    return f"{b['cycle_s']['median'] / a['cycle_s']['median']:.2f}x"


def render(data: dict) -> str:
    hw, v = data["hardware"], data["variants"]
    lines = ["## 12. Speed levers on e5-small (benchmarks/levers.py)\n",
             f"Word embeddings frozen, mixed workload at batch {data['batch']}, 7 MRL dims. This CPU's bf16 flags: "
             f"{', '.join(hw['bf16_flags']) or 'none'}; torch {hw['cpu_capability']}, {hw['torch_threads']} threads; "
             f"`precision: auto` resolves to **{hw['auto_precision']}** here. piccolo_lib packs by default "
             "(`packed_encoding`: each distinct row once, length-sorted chunks); *unpacked* is one pass per column.\n",
             "| variant | samples/s | retrieval s | STS s | classification s | mixed vs ST at the same precision |",
             "|---|---|---|---|---|---|"]
    for name, r in v.items():
        same = v["sentence-transformers bf16" if "bf16" in name else "sentence-transformers fp32"]
        ratio = _ratio(r, same) if name.startswith("piccolo") else "-"
        t = r["task_s"]
        lines.append(f"| {name} | {r['samples_per_s']['median']:.1f} | {t['retri_contrast']['median']:.2f} | "
                     f"{t['cosent']['median']:.2f} | {t['cls_contrast']['median']:.2f} | {ratio} |")
    base = v["piccolo_lib fp32, unpacked"]
    per_task = lambda a, b: ", ".join(  # noqa: E731
        f"{t} {b['task_s'][t]['median'] / a['task_s'][t]['median']:.2f}x" for t in TASKS)
    lines += ["", "Each lever against piccolo_lib fp32 unpacked (the step before issue 20): "
              f"packed encoding {_ratio(v['piccolo_lib fp32'], base)} ({per_task(v['piccolo_lib fp32'], base)}), "
              f"bf16 autocast {_ratio(v['piccolo_lib bf16, unpacked'], base)}, "
              f"both {_ratio(v['piccolo_lib bf16'], base)}, "
              f"eager attention with packing {_ratio(v['piccolo_lib fp32, eager attention'], v['piccolo_lib fp32'])} "
              "of SDPA with packing; piccolo_lib bf16 vs plain sentence-transformers fp32: "
              f"{_ratio(v['piccolo_lib bf16'], v['sentence-transformers fp32'])}. Per task vs plain sentence-transformers "
              f"at the same precision: fp32 {per_task(v['piccolo_lib fp32'], v['sentence-transformers fp32'])}; "
              f"bf16 {per_task(v['piccolo_lib bf16'], v['sentence-transformers bf16'])}.\n",
              "One step by phase (median ms):\n",
              "| variant | task | collate | forward | loss | backward | optimizer |", "|---|---|---|---|---|---|---|"]
    for name in ("piccolo_lib fp32", "piccolo_lib fp32, unpacked", "piccolo_lib bf16"):
        for task, ph in v[name]["phases_ms"].items():
            lines.append(f"| {name} | {task} | " + " | ".join(f"{ph[p]:.0f}" for p in
                                                              ("collate", "forward", "loss", "backward", "optimizer")) + " |")
    mem = data.get("memory")
    if mem:
        lines += ["", "Peak step memory, MB above the process at rest (fp32, one step per task, each recipe in a fresh "
                  "process: benchmarks/memory.py):\n", "| recipe | " + " | ".join(TASKS) + " |",
                  "|---|" + "---|" * len(TASKS)]
        lines += [f"| {name} | " + " | ".join(f"{m['step_peak_mb'][t]:.0f}" for t in TASKS) + " |"
                  for name, m in mem.items()]
    d = data["drift"]
    lines += ["", f"bf16 autocast loss drift over {d['steps']} steps (batch {d['batch']}, dropout off, same start): "
              f"median relative difference {d['median_rel_diff']:.2%}, max {d['max_rel_diff']:.2%} "
              f"(max absolute {d['max_abs_diff']:.4f}); mean of the last 10 losses fp32 {d['last10_mean']['fp32']:.4f}, "
              f"bf16 {d['last10_mean']['bf16']:.4f}.\n", "Counted, not timed:\n"]
    lines += [f"- {k}: {val:.1%}" for k, val in data["counts"].items()]
    return "\n".join(lines) + "\n"
