"""The notebooks' exercises: check a learner's answer, or fill every answer from the solutions.

Each notebook ends with exercises whose answers start as ``None``. Its last code cell calls
:func:`fill` (a no-op unless the notebook's ``solutions`` parameter is True) and then :func:`check` once
per answer::

    answer_1 = None  # TODO: ...
    exercises.fill(globals(), "02_three_losses", solutions)
    exercises.check("answer_1", answer_1, lambda a: a == reference, "count ...", "02_three_losses")

An unanswered exercise prints what to do and lets the notebook run on; a wrong answer stops it with the
name of the solutions page. The references a check compares with are computed independently of the
answer (a library call, mteb's number, a measurement), never by the expression that would produce it.

The solutions live beside the notebooks: ``notebooks/solutions/NN_name.md`` explains them and
``notebooks/solutions/NN_name.py`` is their code, executed in the notebook's namespace by :func:`fill`
(so it may use the notebook's variables). The tests run every notebook with ``solutions=True``, so every
check also runs on a real answer.
"""

from __future__ import annotations

import re
import runpy
import types
from pathlib import Path
from typing import Any, Callable

from ..paths import REPO_ROOT

SOLUTIONS = REPO_ROOT / "notebooks" / "solutions"


def solutions_file(notebook: str, suffix: str = ".md") -> Path:
    """``notebooks/solutions/<notebook><suffix>`` (``notebook`` is the notebook's stem, e.g. ``02_three_losses``)."""
    return SOLUTIONS / f"{notebook}{suffix}"


def check(name: str, answer: Any, ok: Callable[[Any], bool], hint: str, notebook: str) -> bool | None:
    """Check one exercise answer.

    Args:
        name: the answer's variable name, as printed (``answer_1``, ``symmetric_infonce``).
        answer: the learner's value (or function); None while it is not answered.
        ok: returns True when ``answer`` is right (it computes its reference independently).
        hint: what to do, printed while ``answer`` is None.
        notebook: the notebook's stem; a wrong answer names ``notebooks/solutions/<notebook>.md``.

    Returns:
        None when unanswered (after printing ``"<name>: not answered yet: <hint>"``), True when right
        (after printing ``"<name>: correct"``).

    Raises:
        AssertionError: a wrong answer, or one ``ok`` cannot even evaluate (a function that raises, a
            value of the wrong type), with a one-line message naming the solutions page.
    """
    if answer is None:
        print(f"{name}: not answered yet: {hint}")
        return None
    where = f"notebooks/solutions/{notebook}.md"
    try:
        right = ok(answer)
    except Exception as e:  # a broken function or a value of the wrong shape is a wrong answer too
        raise AssertionError(f"{name}: not quite ({type(e).__name__}: {e}); see {where}") from e
    assert right, f"{name}: not quite; see {where}"
    print(f"{name}: correct")
    return True


def fill(namespace: dict, notebook: str, enabled: bool) -> list[str]:
    """Fill in every answer from ``notebooks/solutions/<notebook>.py`` when ``enabled``.

    The file runs as a module whose globals start as a copy of ``namespace`` (the notebook's ``globals()``),
    so it may use the notebook's variables; every name it defines or changes is copied back, overwriting the
    answers in place.

    Returns:
        The names it set or changed (modules and dunder names left out), printed; ``[]`` when not
        enabled (nothing is read).

    Raises:
        FileNotFoundError: the solutions file does not exist (one line naming it).
    """
    if not enabled:
        return []
    if not re.fullmatch(r"\d\d_\w+", notebook):
        raise ValueError(f"not a notebook stem: {notebook!r} (expected e.g. '02_three_losses')")
    path = solutions_file(notebook, ".py")
    if not path.is_file():
        raise FileNotFoundError(f"no solutions file {path} for notebook {notebook!r}")
    # The repository's own solutions module, run like an import (no eval/exec of strings), seeded with the
    # notebook's variables; what it defines or changes is copied back into the notebook.
    result = runpy.run_path(str(path), init_globals=namespace)
    filled = [k for k, v in result.items()
              if not (k.startswith("__") or isinstance(v, types.ModuleType)) and (k not in namespace or namespace[k] is not v)]
    namespace.update({k: result[k] for k in filled})
    print(f"solutions: filled {', '.join(filled) or 'nothing'} from notebooks/solutions/{path.name}")
    return filled
