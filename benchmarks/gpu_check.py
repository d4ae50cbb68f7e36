"""GPU check (issues 6 and 15): training on CUDA in bf16 with gradient checkpointing, the toy and the real model.

    python -m benchmarks.gpu_check [--steps 60] [--models toy,e5-small] [--output benchmarks/GPU_CHECK.md]

Runs, each ``piccolo train configs/quickstart.yaml`` with overrides, in bf16 with gradient checkpointing:

1. ``toy``: the quickstart's offline-bert (1M parameters), one GPU;
2. ``e5-small``: the real multilingual-e5-small (118M parameters, hidden 384, a new 672-dim head, the report's
   7 MRL dims), one GPU, batch 32, queries cut at 48 tokens and passages at 128;
3. the same e5-small run as 2 processes (``torchrun --nproc_per_node 2``) when there are 2 GPUs;
4. the toy under DeepSpeed ZeRO-1 (configs/ds_zero1.json, one process) when DeepSpeed is installed.

Each run's samples/s (median over the steps after the first 5), peak GPU memory (``gpu_mem_peak_mb``,
written by piccolo_lib.train.loop on CUDA) and loss curve come from its metrics.jsonl, and go to
benchmarks/GPU_CHECK.md. Without a GPU it says so and exits 0; ``--device cpu --precision fp32`` exercises
the same path on a CPU (tests/test_gpu_check.py; no speed or memory claims then).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "quickstart.yaml"
E5_OVERRIDES = ["backbone=e5-small", "lr=2e-5", "max_seq_length=128", "query_max_len=48", "passage_max_len=128"]


def _summary(out: Path) -> dict:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [x["samples_per_second"] for x in lines[5:] or lines if x.get("samples_per_second")]
    return {"steps": len(lines), "samples_per_s": round(statistics.median(rates), 1),
            "gpu_mem_peak_mb": max((x.get("gpu_mem_peak_mb") or 0 for x in lines), default=None) or None,
            "final_loss": round(lines[-1]["loss"], 4), "loss_curve": [round(x["loss"], 4) for x in lines]}


def _overrides(out: Path, steps: int, device: str, precision: str, batch_size: int | None = None) -> list[str]:
    extra = [f"batch_size={batch_size}"] if batch_size else []
    return [f"output_dir={out}", f"max_steps={steps}", f"device={device}", f"precision={precision}",
            "gradient_checkpointing=true", "logging_steps=1000", "save_steps=0", *extra]


def _train(cmd: list[str], out: Path) -> tuple[dict | None, str]:
    """Run one training command; (summary, "") or (None, why it failed)."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        return _summary(out), ""
    return None, (proc.stderr or proc.stdout)[-600:].replace("\n", " ")


def run(steps: int = 60, device: str = "cuda", precision: str = "bf16", tmp: Path | None = None,
        models: tuple[str, ...] = ("toy", "e5-small"), e5_batch_size: int = 32, gpus: int = 1) -> dict:
    """Every run; ``{"runs": {label: summary}, "notes": [str]}`` (a run that fails or is skipped gets a note)."""
    tmp = Path(tmp or tempfile.mkdtemp(prefix="gpu_check_"))
    bin_dir = Path(sys.executable).parent
    piccolo = [str(bin_dir / "piccolo"), "train", str(CONFIG), "--mode", "quick"]
    torchrun = [str(bin_dir / "torchrun"), "--nproc_per_node"]
    runs, notes = {}, []

    def attempt(label: str, cmd: list[str], out: Path) -> None:
        summary, why = _train(cmd, out)
        if summary:
            runs[label] = summary
        else:
            notes.append(f"{label}: failed: {why}")

    if "toy" in models:
        attempt("toy (offline-bert), one device", piccolo + _overrides(tmp / "toy", steps, device, precision), tmp / "toy")
    if "e5-small" in models:
        e5 = E5_OVERRIDES + _overrides(tmp / "e5", steps, device, precision, e5_batch_size)
        attempt(f"e5-small, one device, batch {e5_batch_size}", piccolo + e5, tmp / "e5")
        if device == "cuda" and gpus >= 2:
            e5_2 = E5_OVERRIDES + _overrides(tmp / "e5_2", steps, device, precision, e5_batch_size)
            attempt(f"e5-small, 2 processes, batch {e5_batch_size} each",
                    torchrun + ["2", "-m", "piccolo_lib.cli", "train", str(CONFIG), "--mode", "quick", *e5_2], tmp / "e5_2")
        else:
            notes.append("e5-small on 2 processes: skipped (needs 2 GPUs)")
    if importlib.util.find_spec("deepspeed") is None:
        notes.append("ZeRO-1 run skipped: DeepSpeed is not installed here (pip install deepspeed on a CUDA machine)")
    elif device != "cuda":
        notes.append("ZeRO-1 needs CUDA")
    else:
        cmd = torchrun + ["1", "-m", "piccolo_lib.cli", "train", str(CONFIG), "--mode", "quick",
                          *_overrides(tmp / "zero1", steps, device, precision), f"deepspeed={ROOT / 'configs' / 'ds_zero1.json'}"]
        attempt("toy + DeepSpeed ZeRO-1", cmd, tmp / "zero1")
    return {"runs": runs, "notes": notes}


def markdown(r: dict, gpu: str, precision: str) -> str:
    """The table, each run's loss curve, and the notes."""
    rows = [f"| {name} | {v['steps']} | {v['samples_per_s']} | {v['gpu_mem_peak_mb']} | {v['final_loss']} |"
            for name, v in r["runs"].items()]
    text = (f"## GPU check ({gpu}, {precision} autocast, gradient checkpointing, configs/quickstart.yaml)\n\n"
            "| run | steps | samples/s (median) | peak GPU memory (MiB) | final loss |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n\nLoss per step:\n\n")
    text += "".join(f"- {name}: {', '.join(str(x) for x in v['loss_curve'])}\n" for name, v in r["runs"].items())
    return text + "".join(f"\n{note}\n" for note in r["notes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--models", default="toy,e5-small", help="comma-separated: toy, e5-small")
    parser.add_argument("--e5-batch-size", type=int, default=32, help="rows per device per step of the e5-small runs")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "GPU_CHECK.md"))
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: GPU check skipped")
        return 0
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    gpu = f"{gpus} x {torch.cuda.get_device_name(0)}" if gpus else "CPU (path check only)"
    result = run(args.steps, args.device, args.precision, models=tuple(m.strip() for m in args.models.split(",")),
                 e5_batch_size=args.e5_batch_size, gpus=gpus)
    text = markdown(result, gpu, args.precision)
    Path(args.output).write_text(text, encoding="utf-8")
    print(text)
    return 0 if result["runs"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
