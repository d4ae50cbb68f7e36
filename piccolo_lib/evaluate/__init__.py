"""Evaluation: the local held-out benchmark, C-MTEB (task lists, conventions, an offline mirror), the
mteb runner, named benchmarks and reports."""
