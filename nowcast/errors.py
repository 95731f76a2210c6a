"""User-facing errors.

Anything raised as :class:`NowcastError` is bad input or a bad configuration: the CLI
prints its message on one line and exits non-zero, without a traceback.
"""


class NowcastError(Exception):
    """Bad input, bad configuration or an impossible request; the message is for the user."""


class ConfigError(NowcastError):
    """A configuration file or ``--set`` override is invalid."""


class DataError(NowcastError):
    """An archive cannot be read or does not fit what was asked."""
