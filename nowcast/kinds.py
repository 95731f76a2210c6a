"""The kind of a field: ``"precipitation"`` or ``"temperature"``, decided in one place.

An archive is opened as one of :data:`KINDS` (``kind=`` of
:func:`nowcast.archive.open_archive`): ``precipitation`` converts amounts and rate units to
``mm h-1``; ``temperature`` keeps the units as read (any field that is not precipitation).
Commands take ``--kind auto`` (the default: the kind the data's own units and standard name
say, see :func:`kind_of`) or one of :data:`KINDS` to override it.
"""

from __future__ import annotations

from collections.abc import Mapping

from nowcast.conventions import RATE_UNITS
from nowcast.errors import DataError

KINDS = ("precipitation", "temperature")
#: ``--kind`` / config values: ``auto`` or one of :data:`KINDS`.
KIND_CHOICES = ("auto", *KINDS)

#: Temperature units (lower case) -> the scale they are on: K, C or F.
TEMPERATURE_UNITS = {
    "k": "K",
    "kelvin": "K",
    "degk": "K",
    "degc": "C",
    "deg_c": "C",
    "deg c": "C",
    "celsius": "C",
    "°c": "C",
    "degree_celsius": "C",
    "degrees_celsius": "C",
    "degf": "F",
    "deg_f": "F",
    "fahrenheit": "F",
    "°f": "F",
}
_PRECIPITATION_NAMES = ("precipitation", "rainfall", "rain_rate", "snowfall")


def temperature_scale(units) -> str | None:
    """``"K"``, ``"C"`` or ``"F"`` for temperature units, else None."""
    return TEMPERATURE_UNITS.get(str(units or "").strip().lower())


def kind_of(attrs: Mapping, *, is_precipitation_units=None) -> str:
    """The kind of the data ``attrs`` describe (a variable's, a forecast's or a model's).

    An explicit ``kind`` entry (model metadata) wins. Then the units: ``mm h-1`` (every
    precipitation archive and forecast once read; or any units
    ``is_precipitation_units(units, standard_name)`` accepts, for raw files) is
    precipitation, temperature units (K, degC, degF) are temperature; then the standard
    name (``...temperature...`` or ``...precipitation...``/``...rainfall...``). Any other
    field (other units, or none) is opened as temperature: its values kept as read.
    """
    if attrs.get("kind") is not None:
        return check_kind(attrs["kind"])
    units = attrs.get("units")
    std = str(attrs.get("standard_name") or "").lower()
    if units == RATE_UNITS or (
        is_precipitation_units is not None and is_precipitation_units(units, std)
    ):
        return "precipitation"
    if temperature_scale(units) is not None or "temperature" in std:
        return "temperature"
    if any(name in std for name in _PRECIPITATION_NAMES):
        return "precipitation"
    return "temperature"


def check_kind(kind: str) -> str:
    """``kind`` when it is one of :data:`KINDS`, else a :class:`DataError`."""
    if kind not in KINDS:
        raise DataError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind
