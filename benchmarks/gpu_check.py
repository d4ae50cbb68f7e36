"""GPU check (issue 6): quick-mode training on CUDA with bf16 + gradient checkpointing, then ZeRO-1.

    python -m benchmarks.gpu_check [--steps 60] [--output benchmarks/GPU_CHECK.md]

Run 1 trains configs/quickstart.yaml on one GPU in this process (bf16, gradient checkpointing). Run 2 is
the same under DeepSpeed ZeRO-1 (configs/ds_zero1.json) through ``torchrun --nproc_per_node 1``, when
DeepSpeed is installed. Each run's samples/s (median over steps after the first 5) and peak GPU memory
come from its metrics.jsonl (``gpu_mem_peak_mb``, written by piccolo_lib.training on CUDA). Without a GPU
it says so and exits 0; ``--device cpu --precision fp32`` exercises the same path on a CPU (for tests).
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


def _summary(out: Path) -> dict:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [x["samples_per_second"] for x in lines[5:] or lines if x.get("samples_per_second")]
    return {"steps": len(lines), "samples_per_s": round(statistics.median(rates), 1),
            "gpu_mem_peak_mb": max((x.get("gpu_mem_peak_mb") or 0 for x in lines), default=None) or None,
            "final_loss": round(lines[-1]["loss"], 4)}


def _overrides(out: Path, steps: int, device: str, precision: str, checkpointing: bool) -> list[str]:
    return [f"output_dir={out}", f"max_steps={steps}", f"device={device}", f"precision={precision}",
            f"gradient_checkpointing={str(checkpointing).lower()}", "logging_steps=1000", "save_steps=0"]


def run(steps: int = 60, device: str = "cuda", precision: str = "bf16", tmp: Path | None = None) -> dict:
    """Both runs; ``{"plain": {...}, "zero1": {...} | None, "zero1_note": str}``."""
    tmp = Path(tmp or tempfile.mkdtemp(prefix="gpu_check_"))
    config = str(ROOT / "configs" / "quickstart.yaml")
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "piccolo"), "train", config, "--mode", "quick",
           *_overrides(tmp / "plain", steps, device, precision, True)]
    subprocess.run(cmd, check=True)
    result = {"plain": _summary(tmp / "plain"), "zero1": None, "zero1_note": ""}
    if importlib.util.find_spec("deepspeed") is None:
        result["zero1_note"] = "ZeRO-1 run skipped: DeepSpeed is not installed here (pip install deepspeed on a CUDA machine)"
    elif device != "cuda":
        result["zero1_note"] = "ZeRO-1 needs CUDA"
    else:
        cmd = [str(bin_dir / "torchrun"), "--nproc_per_node", "1", "-m", "piccolo_lib.cli", "train", config,
               "--mode", "quick", *_overrides(tmp / "zero1", steps, device, precision, True),
               f"deepspeed={ROOT / 'configs' / 'ds_zero1.json'}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            result["zero1"] = _summary(tmp / "zero1")
        else:
            result["zero1_note"] = "ZeRO-1 run failed: " + (proc.stderr or proc.stdout)[-500:].replace("\n", " ")
    return result


def markdown(r: dict, gpu: str, precision: str) -> str:
    rows = [f"| {name} | {v['steps']} | {v['samples_per_s']} | {v['gpu_mem_peak_mb']} | {v['final_loss']} |"
            for name, v in (("one GPU, gradient checkpointing", r["plain"]), ("+ DeepSpeed ZeRO-1", r["zero1"])) if v]
    text = (f"## GPU check ({gpu}, {precision}, configs/quickstart.yaml)\n\n"
            "| run | steps | samples/s (median) | peak GPU memory (MiB) | final loss |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    return text + (f"\n{r['zero1_note']}\n" if r["zero1_note"] else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "GPU_CHECK.md"))
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: GPU check skipped")
        return 0
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (path check only)"
    text = markdown(run(args.steps, args.device, args.precision), gpu, args.precision)
    Path(args.output).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
