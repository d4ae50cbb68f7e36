"""Errors that are the user's to fix: a bad config value, bad data, a missing file or package.

The ``piccolo`` command answers any :class:`UserError` with one line, ``piccolo <command>: <message>``,
and exit status 1, or 2 for a :class:`ConfigError` (a bad config key or value is a usage error, as argparse
answers a bad option) (``--debug`` shows the traceback); any other exception is a bug and keeps its
traceback. Each class also derives from the built-in error it refines, so ``except ValueError``
(and tests written that way) still catch them.

Introduced in notebooks/00_overview.ipynb (the ``piccolo`` command).
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message says what and where (file, row, field, expected)."""


class ConfigError(UserError, ValueError):
    """A config key or value that is not valid (unknown key, wrong type, not one of the choices)."""


class InputNotFound(UserError, FileNotFoundError):
    """A named file, folder or model that does not exist (config file, backbone, deepspeed config)."""


class MissingPackage(UserError, ImportError):
    """An optional package a chosen feature needs (peft for LoRA, tensorboard, ...)."""


class DamagedFile(UserError, ValueError):
    """A file piccolo_lib wrote itself that is damaged where a kill cannot explain it (a bad line in the middle
    of an append-only log): the message names file and line, and nothing is trained or written past it."""
