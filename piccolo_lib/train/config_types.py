"""The value types of config keys: pydantic types with their range, and the words a mistake is reported in.

Each type is an ``Annotated`` pydantic type whose ``Field(description=...)`` says in words what it accepts ("an
integer >= 1"); :func:`one_line` turns pydantic's first error into ``SOURCE: key 'K': expected <those words>,
got <value>``. pydantic does the typing and range checks (issue 25, defect 7): before it, ``batch_size=3.5``
or ``lr=-1`` ended in a traceback deep inside torch, and ``packed_encoding=maybe`` trained without a word.

Lax pydantic typing on purpose: YAML 1.1 reads ``1e-4`` as a string, which becomes the number 0.0001, and
``8.0`` is the integer 8; but ``true`` is not a number (pydantic would read it as 1), and NaN and infinities
are refused (``allow_inf_nan=False`` on the config class).

Introduced in notebooks/06_multi_device.ipynb (the config of a run).
"""

from __future__ import annotations

import difflib
import os
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo


class WrongType(ValueError):
    """Raised by a validator for a value of the wrong kind: reported with the key's expected words."""


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # a bool is an int to Python and pydantic: true would be batch_size 1
        raise WrongType("a boolean is not a number")
    return value


def _path_text(value: Any) -> Any:
    """A ``pathlib.Path`` (notebooks pass them) is its string; anything else is checked as a string."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


NOT_BOOL = BeforeValidator(_not_bool)
Int0 = Annotated[int, NOT_BOOL, Field(ge=0, description="an integer >= 0")]
Int1 = Annotated[int, NOT_BOOL, Field(ge=1, description="an integer >= 1")]
Number = Annotated[float, NOT_BOOL, Field(description="a finite number")]
Positive = Annotated[float, NOT_BOOL, Field(gt=0, description="a number > 0")]
NonNegative = Annotated[float, NOT_BOOL, Field(ge=0, description="a number >= 0")]
Fraction = Annotated[float, NOT_BOOL, Field(ge=0, lt=1, description="a number >= 0 and < 1")]
Flag = Annotated[bool, Field(description="true or false")]
Text = Annotated[str, Field(description="a string")]
PathText = Annotated[str, BeforeValidator(_path_text), Field(min_length=1, description="a non-empty path or name")]


def _max_steps(value: int) -> int:
    if value == 0 or value < -1:
        raise WrongType("0 or below -1")
    return value


MaxSteps = Annotated[int, NOT_BOOL, AfterValidator(_max_steps),
                     Field(description="-1 (train for `epochs`) or an integer >= 1")]


def one_of(allowed: tuple[str, ...]) -> Any:
    """A string that must be one of ``allowed``; a typo is answered with the list and the closest word."""

    def check(value: str) -> str:
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}{hint}")
        return value

    return Annotated[str, AfterValidator(check), Field(description=f"one of {', '.join(allowed)}")]


def known_keys(allowed: tuple[str, ...]) -> AfterValidator:
    """A mapping of name -> {setting: value} whose settings must be among ``allowed`` (a typo is not ignored)."""

    def check(value: dict[str, dict]) -> dict[str, dict]:
        for name, settings in value.items():
            for key in settings:
                if key not in allowed:
                    close = difflib.get_close_matches(key, allowed, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"{name!r}: unknown setting {key!r}{hint} (expected {', '.join(allowed)})")
        return value

    return AfterValidator(check)


def expected(annotation: Any) -> str:
    """What a key's type accepts, in words: the description its ``Annotated`` type carries (``X | None``: "..., or
    null"), e.g. ``expected(Int1 | None) == "an integer >= 1, or null"``."""
    if typing.get_origin(annotation) is Annotated:
        words = [m.description for m in annotation.__metadata__ if isinstance(m, FieldInfo) and m.description]
        return words[0] if words else expected(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if type(None) in args:
        return " or ".join(expected(a) for a in args if a is not type(None)) + ", or null"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(annotation,
                                                                                          str(annotation))


def one_line(err: ValidationError, hints: dict[str, Any], raw: dict[str, Any], source: str,
             origin: dict[str, str]) -> str:
    """pydantic's first error as one line: ``SOURCE: key 'K': expected WORDS, got VALUE (override K=V)``.

    Args:
        err: what ``TrainConfig(**raw)`` raised.
        hints: the config class's type hints with their ``Annotated`` extras (the words come from there).
        raw: the values as read (the value shown is the key's whole value, not a part deep inside it).
        source: the config file, or ``config`` when there is none.
        origin: key -> ``override K=V`` for the keys an override set (the file set the others).
    """
    first = err.errors()[0]
    if not first["loc"]:  # a rule across keys (a model validator)
        return f"{source}: {_message(first)}"
    key = str(first["loc"][0])
    cause = first.get("ctx", {}).get("error")
    if first["type"] == "value_error" and not isinstance(cause, WrongType):
        what = _message(first)  # our validator's own words: a choice, an unknown setting, a task type
    else:
        what = f"expected {expected(hints[key])}, got {raw.get(key)!r}"
    return f"{source}: key {key!r}: {what}" + (f" ({origin[key]})" if key in origin else "")


def _message(error: dict) -> str:
    cause = error.get("ctx", {}).get("error")
    return str(cause) if cause is not None else error["msg"]
