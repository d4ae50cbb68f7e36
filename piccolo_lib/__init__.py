"""piccolo_lib: a small, readable library that rebuilds the Piccolo2 recipe (arXiv 2405.06932).

The code is grouped by concept (docs/architecture.md): ``losses`` (the math), ``tasks`` (one module per task
family), ``data``, ``model``, ``train``, ``evaluate``, ``synth`` and ``course`` (notebook tooling, the
``[course]`` extra), with a few ground modules (``paths``, ``errors``, ``compat``, ``scores``, ``text``, ``io``)
and the jobs on top (``runtime``, ``pipeline``, ``cli``).

Until December 2026 the library was one flat folder. Every old module path still imports, as the module that
now holds its code (``MOVED``): ``from piccolo_lib.training import train`` is ``piccolo_lib.train.loop.train``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.2.0"

MOVED = {  # old module path (under piccolo_lib) -> where its code lives now
    "validation": "data.validation", "sampling": "data.sampling",
    "backbones": "model.backbones", "e5_small": "model.e5_small", "model_card": "model.card",
    "merging": "model.merging", "packing": "model.packing", "gradcache": "train.adapter",
    "losses.adapter": "train.adapter", "course.runcache": "train.runcache", "losses.routing": "tasks",
    "config": "train.config", "training": "train.loop", "checkpoints": "train.checkpoints",
    "refresh": "train.refresh", "mining": "train.mining",
    "local_benchmark": "evaluate.local", "evaluation": "evaluate.run", "cmteb": "evaluate.cmteb",
    "mirror": "evaluate.mirror", "reporting": "evaluate.reporting", "benchmarking": "evaluate.benchmarks",
    "synth_prompts": "synth.prompts", "synth_backends": "synth.backends", "synth_filters": "synth.filters",
    "synth_cli": "synth.cli",
    "pages": "course.pages", "exercises": "course.exercises", "plots": "course.plots", "widgets": "course.widgets",
    "synth_standin": "course.standin",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module that now holds its code (the same module object)."""

    def find_spec(self, fullname, path=None, target=None):
        old = fullname.partition(f"{__name__}.")[2]
        return importlib.util.spec_from_loader(fullname, self) if old in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{MOVED[spec.name.partition('.')[2]]}")

    def exec_module(self, module) -> None:
        pass  # already executed under its new name


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
