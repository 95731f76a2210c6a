"""Colour scales for maps: precipitation, temperature and forecast-minus-observed.

* Precipitation: the discrete rain-rate classes forecasters read on radar products
  (0.1 to 100 mm h-1, colours after the Bureau of Meteorology's radar palette); below
  0.1 mm h-1 is transparent (dry), NaN (outside radar coverage) is light grey.
* Temperature: degrees Celsius (K converted), discrete 1/2/5 degree classes of a
  diverging blue-red map **centred on 0 degC** with symmetric limits, so the freezing line
  is the white/blue boundary and one colour means one temperature on every map of a run.
* Difference (forecast - observed): discrete, symmetric about 0 with a white class around
  0 and 1-2-5 classes outwards; brown/green for precipitation (drier/wetter forecast),
  blue/red for temperature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize

__all__ = [
    "Style",
    "RAIN_LEVELS",
    "RAIN_COLOURS",
    "field_kind",
    "precipitation_style",
    "temperature_style",
    "difference_style",
    "generic_style",
    "to_display",
    "nice_limit",
    "RAIN_DIFF_LEVELS",
]

#: Rain-rate class boundaries (mm h-1).
RAIN_LEVELS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0)
#: One colour per class (BOM radar palette: blues, teals, yellow-orange, reds).
RAIN_COLOURS = (
    "#b4b4ff", "#7878ff", "#1414ff", "#00d8c3", "#009690",
    "#ffff00", "#ffc800", "#ff6400", "#ff0000", "#c80000",
)  # fmt: skip
RAIN_OVER = "#780000"
NO_DATA = (0.78, 0.78, 0.78, 0.55)  # NaN: outside coverage

_RATE_UNITS = {"mm h-1", "mm/h", "mm h**-1", "mm hr-1", "mm/hr", "kg m-2 h-1", "mm h^-1"}
_TEMP_UNITS = {
    "k": "K",
    "kelvin": "K",
    "degc": "C",
    "deg_c": "C",
    "celsius": "C",
    "°c": "C",
    "degree_celsius": "C",
    "degf": "F",
    "fahrenheit": "F",
}


@dataclass(frozen=True)
class Style:
    """How to colour one panel: colormap, norm and colour-bar layout."""

    cmap: Any
    norm: Any
    label: str
    ticks: tuple[float, ...] | None = None
    ticklabels: tuple[str, ...] | None = None
    extend: str = "neither"
    meta: Mapping[str, Any] = field(default_factory=dict)


def field_kind(attrs: Mapping) -> str:
    """``"precipitation"``, ``"temperature"`` or ``"other"`` from a variable's units/names."""
    units = str(attrs.get("units", "")).strip().lower()
    std = str(attrs.get("standard_name", "")).lower()
    if units in _RATE_UNITS or "precipitation" in std or "rainfall" in std:
        return "precipitation"
    if units in _TEMP_UNITS or "temperature" in std:
        return "temperature"
    return "other"


def to_display(attrs: Mapping) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """``(convert, units)``: data values to the units shown on maps (K and degF to degC)."""
    unit = _TEMP_UNITS.get(str(attrs.get("units", "")).strip().lower())
    if unit == "K":
        return (lambda v: np.asarray(v, dtype=np.float32) - np.float32(273.15)), "°C"
    if unit == "F":
        return (lambda v: (np.asarray(v, dtype=np.float32) - 32) * np.float32(5 / 9)), "°C"
    if unit == "C":
        return (lambda v: np.asarray(v, dtype=np.float32)), "°C"
    if field_kind(attrs) == "precipitation":
        return (lambda v: np.asarray(v, dtype=np.float32)), "mm h$^{-1}$"
    return (lambda v: np.asarray(v, dtype=np.float32)), str(attrs.get("units", ""))


def _fmt(v: float) -> str:
    return f"{v:g}"


def precipitation_style(label: str = "rain rate (mm h$^{-1}$)") -> Style:
    """Discrete rain-rate classes; transparent below 0.1 mm h-1, grey where NaN."""
    cmap = ListedColormap(RAIN_COLOURS, name="nowcast_rain").with_extremes(
        under=(0, 0, 0, 0), over=RAIN_OVER, bad=NO_DATA
    )
    norm = BoundaryNorm(RAIN_LEVELS, cmap.N)
    return Style(cmap, norm, label, RAIN_LEVELS, tuple(_fmt(v) for v in RAIN_LEVELS), "max")


def _step_for(limit: float) -> float:
    for step in (1.0, 2.0, 5.0, 10.0):
        if limit / step <= 12:
            return step
    return 10.0 ** math.ceil(math.log10(limit / 10))


def temperature_style(vmin: float, vmax: float, *, label: str = "temperature (°C)") -> Style:
    """Discrete diverging classes in degC, centred on 0 with symmetric limits.

    The limit is ``max(|vmin|, |vmax|)`` rounded up to a whole class (at least 5 degC);
    classes are 1, 2, 5 or 10 degC wide so there are at most about 24 of them.
    """
    lim = max(abs(float(vmin)), abs(float(vmax)), 5.0) if np.isfinite([vmin, vmax]).all() else 5.0
    step = _step_for(lim)
    lim = step * math.ceil(lim / step - 1e-9)
    levels = np.arange(-lim, lim + step / 2, step)
    n = len(levels) - 1
    base = matplotlib.colormaps["RdBu_r"]
    colours = base(np.linspace(0.04, 0.96, n))
    cmap = ListedColormap(colours, name="nowcast_temperature").with_extremes(
        under=base(0.0), over=base(1.0), bad=NO_DATA
    )
    norm = BoundaryNorm(levels, n)
    every = 1 if n <= 12 else 2
    ticks = tuple(float(v) for v in levels[::every])
    return Style(
        cmap,
        norm,
        label,
        ticks,
        tuple(_fmt(v) for v in ticks),
        "both",
        {"limit": lim, "step": step},
    )


def nice_limit(value: float, *, minimum: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= ``value`` (and >= ``minimum``)."""
    value = max(float(value) if np.isfinite(value) else 0.0, minimum)
    exp = math.floor(math.log10(value))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10**exp >= value * (1 - 1e-9):
            return m * 10**exp
    return 10.0 ** (exp + 1)  # pragma: no cover


def _ladder(limit: float, n: int = 6) -> tuple[float, ...]:
    """The ``n`` values of the 1-2-5 sequence ending at ``limit`` (itself 1, 2 or 5 x 10^k)."""
    exp = math.floor(math.log10(limit) + 1e-9)
    mant = round(limit / 10**exp)
    seq = []
    for e in range(exp - 4, exp + 1):
        seq.extend(m * 10.0**e for m in (1, 2, 5))
    seq = [round(v, 12) for v in seq if v <= mant * 10**exp * (1 + 1e-9)]
    return tuple(seq[-n:])


#: Forecast-minus-observed rain-rate classes (mm h-1), mirrored about 0.
RAIN_DIFF_LEVELS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


def difference_style(limit: float | None, *, kind: str, units: str) -> Style:
    """Forecast - observed: discrete, symmetric, 1-2-5 classes mirrored about 0.

    The middle class (+-smallest level) is transparent (the map shows through); precipitation uses
    the fixed classes :data:`RAIN_DIFF_LEVELS` (brown = forecast drier, green = wetter), other
    fields a 1-2-5 ladder ending at ``limit`` (blue = forecast colder/lower, red = warmer/higher).
    """
    pos = (
        RAIN_DIFF_LEVELS
        if kind == "precipitation"
        else _ladder(nice_limit(limit or 1.0, minimum=1e-9))
    )
    levels = np.array([-v for v in pos[::-1]] + list(pos))
    n = len(levels) - 1  # odd: one white class around 0
    name = "BrBG" if kind == "precipitation" else "RdBu_r"
    base = matplotlib.colormaps[name]
    half = (n - 1) // 2
    side = np.linspace(0.04, 0.42, half)
    colours = np.vstack([base(side), [[1.0, 1.0, 1.0, 0.0]], base(1 - side[::-1])])  # ~0: map shows
    cmap = ListedColormap(colours, name=f"nowcast_diff_{name}").with_extremes(
        under=base(0.0), over=base(1.0), bad=NO_DATA
    )
    norm = BoundaryNorm(levels, n)
    ticks = tuple(float(v) for v in levels)
    return Style(
        cmap,
        norm,
        f"forecast − observed ({units})",
        ticks,
        tuple(_fmt(v) for v in ticks),
        "both",
        {"limit": float(pos[-1])},
    )


def generic_style(vmin: float, vmax: float, *, label: str) -> Style:
    """Continuous viridis over ``[vmin, vmax]`` for variables with no dedicated scale."""
    if not np.isfinite([vmin, vmax]).all() or vmin == vmax:
        vmin, vmax = (0.0, 1.0) if not np.isfinite([vmin, vmax]).all() else (vmin - 0.5, vmax + 0.5)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=NO_DATA)
    return Style(cmap, Normalize(vmin, vmax), label, None, None, "neither")
