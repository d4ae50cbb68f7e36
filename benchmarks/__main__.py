"""`python -m benchmarks [--quick]`: run the benchmarks and rewrite benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
            f"{torch.get_num_threads()}, torch {torch.__version__}, python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="reduced runs (for tests); no speed claims")
    parser.add_argument("--output", default=str(Path(__file__).parent / "RESULTS.md"))
    args = parser.parse_args(argv)
    from benchmarks import label_dedup

    d = label_dedup.run(quick=args.quick)
    text = f"""# Benchmark results

Machine: {machine()}. {'QUICK run (reduced repeats): not for speed claims.' if args.quick else ''}
Medians after 2 warm-up steps; min-max in brackets. Ratios are measured in the same run.

## Classification batches: distinct label texts vs every label string (offline-bert, B=32, K=9)

| strategy | rows encoded per step | step time (s) |
|---|---|---|
| every label string (reference) | {d['rows_encoded_every_label']} | {d['every_label']['median_s']:.3f} [{d['every_label']['min_s']:.3f}-{d['every_label']['max_s']:.3f}] |
| distinct labels, gathered (piccolo_lib) | {d['rows_encoded_dedup_mean']:.1f} (mean) | {d['dedup']['median_s']:.3f} [{d['dedup']['min_s']:.3f}-{d['dedup']['max_s']:.3f}] |

Speed-up: **{d['speedup']:.2f}x**; largest loss difference over the same batches: {d['max_loss_diff']:.2e}.
"""
    Path(args.output).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
