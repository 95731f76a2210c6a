"""The kind of a field: ``"precipitation"`` or ``"temperature"``, decided in one place.

An archive is opened as one of :data:`KINDS` (``kind=`` of
:func:`nowcast.data.open_archive`): ``precipitation`` converts amounts and rate units to
``mm h-1``; ``temperature`` keeps the units as read (any field that is not precipitation).
"""

from __future__ import annotations

from collections.abc import Mapping

from nowcast.conventions import RATE_UNITS
from nowcast.errors import DataError

KINDS = ("precipitation", "temperature")


def kind_of(attrs: Mapping) -> str:
    """The kind to open observations of the data ``attrs`` describe with.

    ``attrs``: a forecast's or an archive's attributes, or a trained model's metadata. An
    explicit ``kind`` entry (model metadata) wins. Otherwise data in ``mm h-1`` (the units of
    every precipitation archive and forecast once read) are precipitation and data in any
    other units temperature; with no units at all (nothing known) the default is
    precipitation.
    """
    if attrs.get("kind") is not None:
        return check_kind(attrs["kind"])
    units = attrs.get("units")
    if units is None:
        return "precipitation"
    return "precipitation" if units == RATE_UNITS else "temperature"


def check_kind(kind: str) -> str:
    """``kind`` when it is one of :data:`KINDS`, else a :class:`DataError`."""
    if kind not in KINDS:
        raise DataError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind
