"""User-facing errors.

Anything raised as :class:`NowcastError` is bad input or a bad configuration: the CLI
prints its message on one line and exits non-zero, without a traceback. :func:`one_line`
is the one way an exception becomes such a line.
"""

from __future__ import annotations


class NowcastError(Exception):
    """Bad input, bad configuration or an impossible request; the message is for the user."""


class ConfigError(NowcastError):
    """A configuration file or ``--set`` override is invalid."""


class DataError(NowcastError):
    """An archive cannot be read or does not fit what was asked."""


def one_line(exc: BaseException, *, typed: bool | None = None) -> str:
    """``exc`` as one line: the first line of its message, or its type name when it has none.

    ``typed`` puts the type name first (``"KeyError: 'x'"``); by default only for exceptions
    that are not a :class:`NowcastError` (whose messages are written for users).
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if typed is None:
        typed = not isinstance(exc, NowcastError)
    if not first:
        return type(exc).__name__
    return f"{type(exc).__name__}: {first}" if typed else first
