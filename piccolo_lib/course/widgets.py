"""Interactive controls in a live notebook, a static picture everywhere else: the one way a notebook makes a widget.

A cell that creates an ipywidget can block forever when nbclient executes it (papermill, ``piccolo course``,
CI: jupyter/nbclient issue 312): the kernel sits idle waiting for a front end that never answers. So no
course cell builds a widget itself. It calls :func:`interactive` with plain descriptions of its controls
(:class:`Slider`, :class:`Choice`); the widgets are created only when a person drives the kernel, and
otherwise the function is called once with its default values, drawing the static fallback.

Used by notebooks/02_three_losses.ipynb, 05_matryoshka.ipynb and 09_piccolo_gpt.ipynb.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Set to 0 by `piccolo course` (and therefore by the tests) in the environment of every kernel it starts.
ENV = "PICCOLO_INTERACTIVE"


@dataclass(frozen=True)
class Slider:
    """A numeric slider from ``min`` to ``max``; ``log``: log-scale (base 10); ``integer``: whole numbers."""

    min: float
    max: float
    step: float | None = None
    log: bool = False
    integer: bool = False
    description: str | None = None


@dataclass(frozen=True)
class Choice:
    """A pick among ``options`` (a dropdown, or a slider over them with ``slider=True``)."""

    options: Sequence[Any]
    slider: bool = False
    description: str | None = None


def is_interactive() -> bool:
    """True only in a notebook kernel a person drives (JupyterLab, Colab) with ipywidgets installed.

    False under ``piccolo course`` and the tests (they set ``PICCOLO_INTERACTIVE=0`` for the kernel), on CI
    (``CI`` set), in a plain Python or IPython terminal, or without ipywidgets.
    """
    if os.environ.get(ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    if os.environ.get("CI", "").strip().lower() not in {"", "0", "false"}:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _widget(name: str, spec: Slider | Choice, value: Any):
    import ipywidgets as w

    label = spec.description or name
    if isinstance(spec, Choice):
        cls = w.SelectionSlider if spec.slider else w.Dropdown
        return cls(options=list(spec.options), value=value, description=label)
    if spec.log:
        step = spec.step or 0.05
        return w.FloatLogSlider(value=value, base=10, min=math.log10(spec.min), max=math.log10(spec.max),
                                step=step, description=label, readout_format=".3f")
    if spec.integer:
        return w.IntSlider(value=int(value), min=int(spec.min), max=int(spec.max), step=int(spec.step or 1),
                           description=label)
    return w.FloatSlider(value=value, min=spec.min, max=spec.max, step=spec.step or (spec.max - spec.min) / 100,
                         description=label)


def interactive(fn: Callable[..., Any], **controls: Slider | Choice) -> dict[str, Any]:
    """Show ``fn`` under one control per keyword in a live notebook; elsewhere call it once with its defaults.

    Every controlled parameter of ``fn`` must have a default: it is the control's starting value, and the value
    of the static call. Returns the values ``fn`` was (first) called with.

    Example:
        >>> def show(tau=0.01): print(f"tau = {tau}")
        >>> interactive(show, tau=Slider(0.005, 1.0, log=True))  # outside a notebook: one static call
        tau = 0.01
        {'tau': 0.01}
    """
    params = inspect.signature(fn).parameters
    missing = [k for k in controls if k not in params or params[k].default is inspect.Parameter.empty]
    if missing:
        raise TypeError(f"interactive: {fn.__name__} needs a default value for {missing}")
    values = {k: params[k].default for k in controls}
    if is_interactive():
        from ipywidgets import interact

        interact(fn, **{k: _widget(k, spec, values[k]) for k, spec in controls.items()})
    else:
        fn(**values)
    return values
