"""Benchmarks: run with `python -m benchmarks [--quick]`; results go to benchmarks/RESULTS.md."""
