"""Colour scales for maps: precipitation, temperature and forecast-minus-observed.

* Precipitation: the discrete rain-rate classes forecasters read on radar products
  (0.1 to 100 mm h-1, colours after the Bureau of Meteorology's radar palette); below
  0.1 mm h-1 is transparent (dry), NaN (outside radar coverage) is light grey.
* Temperature: degrees Celsius (K converted), discrete classes of a blue-yellow-red map
  spanning the data's robust range (2nd to 98th percentile, over every panel and lead of
  one issue time, so the panels of a map and the maps of a run share it), in 0.5/1/2/5
  degree classes (at most about 14), out-of-range values in the end colours.
* Difference (forecast - observed): discrete, symmetric about 0 with a white class around
  0 and 1-2-5 classes outwards; brown/green for precipitation (drier/wetter forecast, fixed
  classes), blue/red for temperature (up to the 99th percentile of the differences).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize

from nowcast.kinds import kind_of, temperature_scale

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
    "robust_range",
    "nice_limit",
    "RAIN_DIFF_LEVELS",
    "PROBABILITY_LEVELS",
    "probability_style",
    "event_style",
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
    """``"precipitation"``, ``"temperature"`` (units known as such) or ``"other"``."""
    kind = kind_of(attrs)
    if kind == "temperature" and temperature_scale(attrs.get("units")) is None:
        std = str(attrs.get("standard_name") or "")
        return "temperature" if "temperature" in std else "other"
    return kind


def to_display(attrs: Mapping) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """``(convert, units)``: data values to the units shown on maps (K and degF to degC)."""
    unit = temperature_scale(attrs.get("units"))
    if unit == "K":
        return (lambda v: np.asarray(v, dtype=np.float32) - np.float32(273.15)), "°C"
    if unit == "F":
        return (lambda v: (np.asarray(v, dtype=np.float32) - 32) * np.float32(5 / 9)), "°C"
    if unit == "C":
        return (lambda v: np.asarray(v, dtype=np.float32)), "°C"
    if field_kind(attrs) == "precipitation":
        return (lambda v: np.asarray(v, dtype=np.float32)), "mm h$^{-1}$"
    return (lambda v: np.asarray(v, dtype=np.float32)), str(attrs.get("units", ""))


def robust_range(values: np.ndarray, low: float = 2.0, high: float = 98.0) -> tuple[float, float]:
    """The ``low``-``high`` percentile range of the finite values (NaN, NaN when none)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return (np.nan, np.nan)
    lo, hi = np.percentile(finite, [low, high])
    return float(lo), float(hi)


def _fmt(v: float) -> str:
    return f"{v:g}"


def precipitation_style(label: str = "rain rate (mm h$^{-1}$)") -> Style:
    """Discrete rain-rate classes; transparent below 0.1 mm h-1, grey where NaN."""
    cmap = ListedColormap(RAIN_COLOURS, name="nowcast_rain").with_extremes(
        under=(0, 0, 0, 0), over=RAIN_OVER, bad=NO_DATA
    )
    norm = BoundaryNorm(RAIN_LEVELS, cmap.N)
    return Style(cmap, norm, label, RAIN_LEVELS, tuple(_fmt(v) for v in RAIN_LEVELS), "max")


def _step_for(span: float, most: int = 14) -> float:
    """The smallest 0.5/1/2/5 x 10^k class width giving at most ``most`` classes over ``span``."""
    exp = math.floor(math.log10(max(span, 1e-6) / most))
    for e in (exp, exp + 1):
        for m in (1.0, 2.0, 5.0, 10.0):
            step = m * 10.0**e
            if span / step <= most:
                return max(step, 0.5) if span >= 3 else step
    return 10.0 ** (exp + 2)  # pragma: no cover


def temperature_style(vmin: float, vmax: float, *, label: str = "temperature (°C)") -> Style:
    """Discrete classes in degC over ``[vmin, vmax]`` (a robust range of the data).

    The limits are widened to whole classes of 0.5, 1, 2, 5 ... degC (at most about 14
    classes, at least 1 degC overall); values beyond them take the end colours.
    """
    if not np.isfinite([vmin, vmax]).all():
        vmin, vmax = -5.0, 5.0
    vmin, vmax = float(min(vmin, vmax)), float(max(vmin, vmax))
    if vmax - vmin < 1.0:
        mid = (vmin + vmax) / 2
        vmin, vmax = mid - 0.5, mid + 0.5
    step = _step_for(vmax - vmin)
    lo = step * math.floor(vmin / step + 1e-9)
    hi = step * math.ceil(vmax / step - 1e-9)
    levels = np.round(np.arange(lo, hi + step / 2, step), 10)
    n = len(levels) - 1
    base = matplotlib.colormaps["RdYlBu_r"]
    colours = base(np.linspace(0.03, 0.97, n))
    cmap = ListedColormap(colours, name="nowcast_temperature").with_extremes(
        under=base(0.0), over=base(1.0), bad=NO_DATA
    )
    norm = BoundaryNorm(levels, n)
    every = 1 if n <= 10 else 2
    ticks = tuple(float(v) for v in levels[::every])
    return Style(
        cmap,
        norm,
        label,
        ticks,
        tuple(_fmt(v) for v in ticks),
        "both",
        {"range": (float(lo), float(hi)), "step": step},
    )


def nice_limit(value: float, *, minimum: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= ``value`` (and >= ``minimum``)."""
    value = max(float(value) if np.isfinite(value) else 0.0, minimum)
    exp = math.floor(math.log10(value))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10**exp >= value * (1 - 1e-9):
            return m * 10**exp
    return 10.0 ** (exp + 1)  # pragma: no cover


#: Forecast-minus-observed rain-rate classes (mm h-1), mirrored about 0.
RAIN_DIFF_LEVELS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


def difference_style(limit: float | None, *, kind: str, units: str) -> Style:
    """Forecast - observed: discrete, symmetric, 1-2-5 classes mirrored about 0.

    The middle class (+-smallest level) is transparent (the map shows through); precipitation uses
    the fixed classes :data:`RAIN_DIFF_LEVELS` (brown = forecast drier, green = wetter), other
    fields five equal classes each side up to ``limit`` rounded up to 1, 2 or 5 x 10^k
    (blue = forecast colder/lower, red = warmer/higher).
    """
    if kind == "precipitation":
        pos = RAIN_DIFF_LEVELS
    else:  # five equal classes each side up to a 1-2-5 limit: 0.2 ... 1 K, 1 ... 5 K
        top = nice_limit(limit or 1.0, minimum=1e-9)
        pos = tuple(round(top * k / 5, 12) for k in range(1, 6))
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


#: Probability classes (0-1): below the first class is transparent (the map shows through).
PROBABILITY_LEVELS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def probability_style(label: str) -> Style:
    """A sequential 0-1 scale in classes of :data:`PROBABILITY_LEVELS` for exceedance
    probabilities: below 5 % transparent, then pale yellow to dark blue (1 in the top class),
    NaN grey."""
    n = len(PROBABILITY_LEVELS) - 1
    base = matplotlib.colormaps["YlGnBu"]
    shades = base(np.linspace(0.12, 1.0, n - 1))
    cmap = ListedColormap(
        np.vstack([[[1.0, 1.0, 1.0, 0.0]], shades]), name="nowcast_probability"
    ).with_extremes(under=(0, 0, 0, 0), over=shades[-1], bad=NO_DATA)
    norm = BoundaryNorm(PROBABILITY_LEVELS, n)
    labels = tuple(_fmt(v) for v in PROBABILITY_LEVELS)
    return Style(cmap, norm, label, PROBABILITY_LEVELS, labels, "neither")


def event_style(label: str) -> Style:
    """Observed event maps (0 = no, 1 = yes): two classes, "no" transparent, "yes" the top
    probability colour, so an observed event reads like a forecast of certainty."""
    top = matplotlib.colormaps["YlGnBu"](1.0)
    cmap = ListedColormap([(1.0, 1.0, 1.0, 0.0), top], name="nowcast_event").with_extremes(
        over=top, bad=NO_DATA
    )
    return Style(cmap, BoundaryNorm((0.0, 0.5, 1.0), 2), label, (0.25, 0.75), ("no", "yes"))
