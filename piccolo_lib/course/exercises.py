"""The notebooks' exercises: check a learner's answer, or fill every answer from the solutions.

Each notebook ends with exercises whose answers start as ``None``. Its last code cell calls
:func:`fill` (a no-op unless the notebook's ``solutions`` parameter is True) and then :func:`check` once
per answer::

    answer_1 = None  # TODO: ...
    exercises.fill(globals(), "02_three_losses", solutions)
    exercises.check("answer_1", answer_1, lambda a: a == reference, "count ...", "02_three_losses")

An unanswered exercise prints what to do; a wrong answer says what is off (too high or too low, for a number
checked with :func:`close_to`) and names the solutions page; every check runs, and the cell's last line,
``exercises.done(notebook)``, stops the notebook if any answer was wrong. The references a check compares with are
computed independently of the answer (a library call, mteb's number, a measurement), never by the expression that
would produce it, and a number is accepted as the course prints it: rounded to the decimals the learner gives.

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


class close_to:
    """A check for a number: right when it is ``reference`` rounded to the decimals the answer itself gives.

    The course prints numbers rounded, so ``1.171`` and ``1.17`` are right for 1.17053, ``1.18`` is not. An answer
    must be at least as fine as ``rel`` of the reference (the half unit of its last decimal at most 0.5 % by
    default: about three significant digits), so ``1.2`` asks for more digits. ``describe`` says what is off
    without giving the reference away.

    Example:
        >>> ok = close_to(1.17053)
        >>> ok(1.171), ok(1.17), ok(1.2), ok(1.18)
        (True, True, False, False)
        >>> ok.describe(1.18), ok.describe(1.2)
        ('too high', 'give more digits')
    """

    def __init__(self, reference: float, rel: float = 0.005) -> None:
        self.reference, self.rel = float(reference), rel

    @staticmethod
    def _half_unit(answer: float) -> float:
        """Half a unit of the answer's last decimal (0.0005 for 1.171; 0.5 for 12)."""
        text = repr(float(answer)).lower()
        mantissa, _, exp = text.partition("e")
        decimals = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
        return 0.5 * 10.0 ** (-(decimals - int(exp or 0)))

    def _number(self, answer: Any) -> float:
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            raise TypeError(f"expected a number, got {type(answer).__name__}")
        return float(answer)

    def __call__(self, answer: Any) -> bool:
        value, half = self._number(answer), self._half_unit(answer)
        fine_enough = half <= self.rel * abs(self.reference) or self.reference == round(self.reference)
        return fine_enough and abs(value - self.reference) <= half * (1 + 1e-9)

    def describe(self, answer: Any) -> str:
        value, half = self._number(answer), self._half_unit(answer)
        if abs(value - self.reference) <= half * (1 + 1e-9):
            return "give more digits"
        return "too high" if value > self.reference else "too low"


_WRONG: dict[str, list[str]] = {}  # notebook -> names answered wrong since its last done()


def check(name: str, answer: Any, ok: Callable[[Any], bool], hint: str, notebook: str) -> bool | None:
    """Check one exercise answer; never raises, so every check of the cell runs (``done`` sums them up).

    Args:
        name: the answer's variable name, as printed (``answer_1``, ``symmetric_infonce``).
        answer: the learner's value (or function); None while it is not answered.
        ok: returns True when ``answer`` is right (it computes its reference independently); a :class:`close_to`
            also says what is off.
        hint: what to do, printed while ``answer`` is None and with a wrong answer.
        notebook: the notebook's stem; a wrong answer names ``notebooks/solutions/<notebook>.md``.

    Returns:
        None when unanswered (after printing ``"<name>: not answered yet: <hint>"``), True when right
        (``"<name>: correct"``), False when wrong (``"<name>: not quite (<what is off>); hint: <hint>; see ..."``;
        an ``ok`` that raises on the answer, e.g. a broken function, counts as wrong and names the error).
    """
    if answer is None:
        print(f"{name}: not answered yet: {hint}")
        return None
    where = f"notebooks/solutions/{notebook}.md"
    try:
        right = bool(ok(answer))
        off = None if right else (ok.describe(answer) if hasattr(ok, "describe") else "the check fails")
    except Exception as e:  # a broken function or a value of the wrong shape is a wrong answer too
        right, off = False, f"{type(e).__name__}: {e}"
    if right:
        print(f"{name}: correct")
        return True
    _WRONG.setdefault(notebook, []).append(name)
    print(f"{name}: not quite ({off}); hint: {hint}; see {where}")
    return False


def done(notebook: str) -> None:
    """The last line of an exercise cell: raises AssertionError naming every answer that was wrong."""
    wrong = _WRONG.pop(notebook, [])
    if wrong:
        raise AssertionError(f"not quite yet: {', '.join(wrong)}; each line above says what is off "
                             f"(notebooks/solutions/{notebook}.md explains them)")


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
