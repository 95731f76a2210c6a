"""Time series at a point: observed and every method's forecast against valid time.

What people ask a nowcast first ("rain here in the next hour"). A point is ``LAT,LON`` or
a place name from a small CSV (``name,latitude,longitude``; :data:`PLACES` ships with the
package). Values are the nearest pixel's, or the NaN-aware mean of an ``n x n``
neighbourhood around it (``neighbourhood=n``, odd); the plot says which. A point outside a
grid, or where every forecast is NaN (outside the radar's coverage), is a
:class:`~nowcast.errors.NowcastError`.

:func:`point_series` gives the numbers as a tidy table, :func:`render_points` writes one
PNG and one CSV per point.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, TIME, VALID_TIME, X, Y
from nowcast.errors import NowcastError
from nowcast.fileio import write_atomic
from nowcast.geo import is_geographic, metres_per_unit, to_grid_xy
from nowcast.render import colours
from nowcast.render.fan import Fan, draw_fan, fan_part, point_fan
from nowcast.render.projection import grid_mapping_attrs

__all__ = ["Point", "PLACES", "parse_point", "point_series", "render_points", "load_places"]

#: The places ``--point NAME`` knows without ``--places`` (cities in the shared data's domains).
PLACES = "places.csv"
COLUMNS = ("point", "latitude", "longitude", "method", "issue_time", "lead_minutes",
           "valid_time", "value")  # fmt: skip


@dataclass(frozen=True)
class Point:
    name: str
    lat: float
    lon: float

    @property
    def label(self) -> str:
        ns, ew = ("N" if self.lat >= 0 else "S"), ("E" if self.lon >= 0 else "W")
        return f"{abs(self.lat):.2f}°{ns} {abs(self.lon):.2f}°{ew}"

    @property
    def described(self) -> str:
        """The name with its coordinates (``Zurich (47.38°N 8.54°E)``), or the coordinates
        alone for a point given by them, so messages never repeat them."""
        return self.name if self.name == self.label else f"{self.name} ({self.label})"


def load_places(path: str | os.PathLike | None = None) -> dict[str, tuple[float, float]]:
    """``{name (lower case): (lat, lon)}`` from a CSV with ``name,latitude,longitude``.

    One line, naming the file and line, for a file that is not UTF-8 text, a row with more
    or fewer fields than the header, coordinates that are not numbers, and a name given
    twice (names are compared without case: ``--point zurich`` finds ``Zurich``).
    """
    if path is None:
        text = (resources.files("nowcast") / "resources" / PLACES).read_text(encoding="utf-8")
        source = "the shipped places"
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise NowcastError(f"cannot read places file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise NowcastError(
                f"{source}: not a text CSV file (not UTF-8); expected name,latitude,longitude"
            ) from None
    if "\0" in text:
        raise NowcastError(f"{source}: not a text CSV file (binary content)")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise NowcastError(f"{source}: not a CSV file ({exc})") from None
    rows = [(i, row) for i, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    header = [c.strip().lower() for c in rows[0][1]] if rows else []
    column = {name: k for k, name in reversed(list(enumerate(header)))}
    lat_col = column.get("latitude", column.get("lat"))
    lon_col = column.get("longitude", column.get("lon"))
    if len(rows) < 2 or "name" not in column or lat_col is None or lon_col is None:
        raise NowcastError(f"{source}: expected a CSV with columns name,latitude,longitude")
    out: dict[str, tuple[float, float]] = {}
    first_line: dict[str, int] = {}
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise NowcastError(
                f"{source}, line {line}: {len(row)} fields, the header has {len(header)} "
                f"({','.join(rows[0][1])})"
            )
        name = row[column["name"]].strip()
        try:
            lat, lon = float(row[lat_col]), float(row[lon_col])
        except ValueError:
            raise NowcastError(
                f"{source}, line {line}: latitude/longitude are not numbers"
            ) from None
        key = name.lower()
        if key in first_line:
            raise NowcastError(
                f"{source}, line {line}: place {name!r} is already on line {first_line[key]} "
                "(names are compared without case)"
            )
        first_line[key] = line
        out[key] = (lat, lon)
    return out


def parse_point(text: str, places: Mapping[str, tuple[float, float]] | None = None) -> Point:
    """``"47.37,8.54"`` or a place name (case-insensitive) -> :class:`Point`."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) == 2:
        try:
            lat, lon = float(parts[0]), float(parts[1])
        except ValueError:
            lat = lon = None
        if lat is not None:
            if not (-90 <= lat <= 90 and -180 <= lon <= 360):
                raise NowcastError(
                    f"point {text!r}: latitude must be in -90..90, longitude -180..360"
                )
            lon = _longitude(lon)
            return Point(Point("", lat, lon).label, lat, lon)
    places = load_places() if places is None else places
    found = places.get(str(text).strip().lower())
    if found is None:
        known = ", ".join(sorted(places)) or "none"
        raise NowcastError(
            f"point {text!r} is neither LAT,LON nor a known place (known: {known}; or --places)"
        )
    return Point(str(text).strip(), found[0], _longitude(found[1]))


def _longitude(lon: float) -> float:
    """A longitude in -180..180 (358 is 2 degrees west); grids in 0..360 are handled where
    the point is located."""
    return lon - 360.0 if lon > 180 else lon


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class _Where:
    iy: int
    ix: int
    half: int
    spacing: str  # one pixel, e.g. "1 km" or "0.25°"

    def describe(self) -> str:
        n = 2 * self.half + 1
        if n == 1:
            return f"nearest pixel ({self.spacing})"
        return f"mean of {n} x {n} pixels around the nearest (pixel {self.spacing})"


def _locate(da: xr.DataArray, point: Point, neighbourhood: int, what: str) -> _Where:
    gm = grid_mapping_attrs(da)
    units = da[X].attrs.get("units")
    x, y = to_grid_xy(gm, point.lon, point.lat, units=units)
    xs, ys = np.asarray(da[X].values, float), np.asarray(da[Y].values, float)
    if is_geographic(gm) and xs.max() > 180 and x < 0:
        x += 360.0
    idx = []
    for value, coord in ((y, ys), (x, xs)):
        step = abs(coord[1] - coord[0]) if len(coord) > 1 else 1.0
        if not (min(coord) - step / 2 <= value <= max(coord) + step / 2):
            raise NowcastError(f"point {point.described} is outside the {what} grid")
        idx.append(int(np.argmin(np.abs(coord - value))))
    dx = abs(xs[1] - xs[0]) if len(xs) > 1 else 0.0
    if is_geographic(gm):
        spacing = f"{dx:g}°"
    else:
        km = dx * (metres_per_unit(units) or 1.0) / 1000.0
        spacing = f"{km:.3g} km"
    return _Where(idx[0], idx[1], neighbourhood // 2, spacing)


def _box(da: xr.DataArray, where: _Where) -> xr.DataArray:
    """``da`` cut to the point's pixels (its neighbourhood)."""
    h = where.half
    return da.isel(
        {
            Y: slice(max(where.iy - h, 0), where.iy + h + 1),
            X: slice(max(where.ix - h, 0), where.ix + h + 1),
        }
    )


def _values(da: xr.DataArray, where: _Where) -> np.ndarray:
    """The point's values over the leading dims (NaN-aware neighbourhood mean)."""
    data = np.asarray(_box(da, where).values, dtype=np.float64)
    with warnings.catch_warnings():  # an all-NaN neighbourhood is NaN, as wanted
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(data.reshape(data.shape[:-2] + (-1,)), axis=-1)


def point_series(
    forecasts: Mapping[str, xr.DataArray],
    point: Point,
    *,
    truth: xr.DataArray | None = None,
    neighbourhood: int = 1,
    series: Sequence = (),
) -> tuple[pd.DataFrame, str]:
    """``(table, how)``: the point's forecast (and observed) values, and how they were taken.

    ``table`` has :data:`COLUMNS`; observed rows have method ``observed`` and no issue time,
    from one forecast horizon before the first issue time to the last valid time.
    ``series``: series forecasts drawn beside the gridded ones, each with
    ``rows_at(name, lat, lon)`` giving ``(method, issue_time, lead_minutes, valid_time,
    value)`` rows at the point (:class:`nowcast.series.run.SeriesAtPoints`).
    """
    if isinstance(neighbourhood, bool) or neighbourhood < 1 or neighbourhood % 2 == 0:
        raise NowcastError(
            f"the neighbourhood must be an odd number of pixels, not {neighbourhood}"
        )
    rows, how = [], None
    any_finite = False
    for method, fc in forecasts.items():
        where = _locate(fc, point, neighbourhood, f"{method} forecast's")
        how = how or where.describe()
        values = _values(fc.transpose(ISSUE_TIME, LEAD_TIME, Y, X), where)
        any_finite |= bool(np.isfinite(values).any())
        minutes = fc[LEAD_TIME].values / np.timedelta64(1, "m")
        for i, issue in enumerate(fc[ISSUE_TIME].values):
            for j, lead in enumerate(minutes):
                valid = fc[VALID_TIME].values[i, j]
                rows.append((method, issue, float(lead), valid, float(values[i, j])))
    for one in series:  # series forecasts at the point's station
        found = one.rows_at(point.name, point.lat, point.lon)
        any_finite |= bool(np.isfinite([r[4] for r in found]).any())
        rows += found
        how = how or "the series forecast at the point's station"
    if not any_finite:
        raise NowcastError(
            f"point {point.described} is outside the data coverage (NaN in every forecast)"
        )
    if truth is not None:
        valid = pd.DatetimeIndex([r[3] for r in rows])
        issues = pd.DatetimeIndex([r[1] for r in rows])
        start = issues.min() - (valid.max() - issues.max())
        obs = truth.sel({TIME: slice(start, valid.max())})
        where = _locate(obs, point, neighbourhood, "truth")
        for t, v in zip(obs[TIME].values, _values(obs.transpose(TIME, Y, X), where)):
            rows.append(("observed", np.datetime64("NaT"), np.nan, t, float(v)))
    table = pd.DataFrame(
        [(point.name, point.lat, point.lon, *r) for r in rows], columns=list(COLUMNS)
    )
    for col in ("issue_time", "valid_time"):
        table[col] = pd.to_datetime(table[col])
    return table, how


# --------------------------------------------------------------------------- plot


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "point"


def _coordinates(point: Point, digits: int) -> str:
    ns, ew = ("N" if point.lat >= 0 else "S"), ("E" if point.lon >= 0 else "W")
    return f"{abs(point.lat):.{digits}f}-{ns}-{abs(point.lon):.{digits}f}-{ew}"


def _stems(points: Sequence[Point]) -> list[str | None]:
    """The file stem of each point (``point_<name>``; None for a repeat of an earlier point).

    A point given as LAT,LON is named by its coordinates to 2 decimals, or to as many more
    (up to 6) as tell it from the other points; two places whose names give the same file
    name are an error.
    """
    stems: list[str | None] = []
    by_stem: dict[str, Point] = {}
    for point in points:
        if point in points[: len(stems)]:
            stems.append(None)
            continue
        if point.name == point.label:  # coordinates
            others = [q for q in points if q.name == q.label and q != point]
            digits = 2
            while digits < 6 and any(
                _coordinates(q, digits) == _coordinates(point, digits) for q in others
            ):
                digits += 1
            stem = f"point_{_coordinates(point, digits)}"
        else:
            stem = f"point_{_safe(point.name)}"
        if stem in by_stem:
            raise NowcastError(
                f"points {by_stem[stem].name!r} and {point.name!r} would both be written to "
                f"{stem}.png/.csv: give them different names or positions"
            )
        by_stem[stem] = point
        stems.append(stem)
    return stems


def plot_point(
    table: pd.DataFrame,
    point: Point,
    *,
    how: str,
    attrs: Mapping,
    dpi: float = 100,
    fans: Mapping[str, Fan] | None = None,
) -> bytes:
    """PNG of observed (black) and each method's forecast per issue time against valid time;
    a method in ``fans`` gets its quantile bands and median at the fan's issue time."""
    convert, units = colours.to_display(attrs)
    kind = colours.field_kind(attrs)
    name = str(attrs.get("long_name") or "value")
    fig = Figure(figsize=(8.0, 4.2), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    obs = table[table["method"] == "observed"].sort_values("valid_time")
    if len(obs):
        ax.plot(obs["valid_time"], convert(obs["value"].to_numpy()), color="black", marker="o",
                markersize=3, linewidth=1.6, label="observed", zorder=5)  # fmt: skip
    methods = [m for m in dict.fromkeys(table["method"]) if m != "observed"]
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    issues = sorted(table["issue_time"].dropna().unique())
    for k, method in enumerate(methods):
        sub, fan = table[table["method"] == method], (fans or {}).get(method)
        lines = []
        for i, issue in enumerate(sorted(sub["issue_time"].unique())):
            one = sub[sub["issue_time"] == issue].sort_values("valid_time")
            if fan is None or not fan.replaces(issue, one["value"].to_numpy()):
                lines.append((i, one))  # else the fan's median line stands for it
        n = sub["issue_time"].nunique()
        for i, one in lines:
            ax.plot(one["valid_time"], convert(one["value"].to_numpy()),
                    color=palette[k % len(palette)], alpha=0.35 + 0.65 * (i + 1) / n,
                    marker=".", linewidth=1.2,
                    label=method if one is lines[-1][1] else None)  # fmt: skip
        if fan is not None:
            draw_fan(ax, fan, colour=palette[k % len(palette)], method=method, convert=convert,
                     several=len(issues) > 1)  # fmt: skip
    for issue in issues if len(issues) <= 6 else issues[-1:]:
        ax.axvline(issue, color="0.5", linewidth=0.8, linestyle=":", zorder=1)
    if kind == "precipitation":
        ax.set_ylim(bottom=0)
    ax.set_ylabel(f"{name} ({units})" if units else name)
    days = pd.DatetimeIndex(table["valid_time"]).normalize().unique()
    span = " to ".join(f"{d:%Y-%m-%d}" for d in (days.min(), days.max())[: min(len(days), 2)])
    ax.set_xlabel(f"valid time (UTC), {span}")
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M" if len(days) == 1 else "%d %H:%M"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    first, last = pd.Timestamp(issues[0]), pd.Timestamp(issues[-1])
    when = (
        f"issue {first:%Y-%m-%d %H:%M} UTC"
        if len(issues) == 1
        else f"{len(issues)} issue times {first:%Y-%m-%d %H:%M} to {last:%H:%M} UTC (dotted)"
    )
    where = point.described
    title = f"{name} at {where}\n{how}; {when}"
    longest = max(len(line) for line in title.splitlines())
    ax.set_title(title, fontsize=10 if longest <= 90 else 9)  # 9 pt: fits 8 inches
    credit = attrs.get("attribution") or "source unknown"
    fig.text(0.01, 0.005, f"Data: {credit}", fontsize=6, color="0.3", ha="left", va="bottom")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": "nowcast"})
    return buf.getvalue()


def render_points(
    forecasts: Mapping[str, xr.DataArray],
    points: Sequence[Point],
    *,
    outdir: str | os.PathLike,
    truth: xr.DataArray | None = None,
    neighbourhood: int = 1,
    dpi: float = 100,
    probabilistic: Mapping[str, Mapping[str, xr.DataArray]] | None = None,
    series: Sequence = (),
) -> list[Path]:
    """Write ``point_<name>.png`` and ``point_<name>.csv`` per point; returns the paths.

    ``probabilistic``: the methods' products (:func:`nowcast.probabilistic.read_probabilistic`)
    under the keys of ``forecasts``: a method with quantiles or members gets a fan chart
    (:mod:`nowcast.render.fan`; the CSV keeps the deterministic values).

    Every point is checked (inside the grids, in coverage, a file name of its own: see
    :func:`_stems`) before the first file is written; a point given twice is drawn once.
    """
    if not forecasts and not series:
        raise NowcastError("no forecasts to draw")
    stems = _stems(points)  # two points never share a file
    tables = [(p, *point_series(forecasts, p, truth=truth, neighbourhood=neighbourhood,
                                series=series)) for p in points]  # fmt: skip
    fans = [_fans(forecasts, probabilistic or {}, p, neighbourhood) for p, _, _ in tables]
    attrs = next(iter(forecasts.values())).attrs if forecasts else series[0].attrs
    outdir = Path(outdir)
    written = []
    for (point, table, how), stem, fan in zip(tables, stems, fans):
        if stem is None:  # the same point given twice: drawn once
            continue
        png = plot_point(table, point, how=how, attrs=attrs, dpi=dpi, fans=fan)
        written.append(write_atomic(outdir / f"{stem}.png", png))
        text = table.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.6g")
        written.append(write_atomic(outdir / f"{stem}.csv", text))
    return written


def _fans(forecasts, probabilistic, point: Point, neighbourhood: int) -> dict[str, Fan]:
    """The fan of each method with quantiles or members, at ``point``."""
    out = {}
    for method, parts in probabilistic.items():
        part = fan_part(parts)
        if part is None or method not in forecasts:
            continue
        where = _locate(forecasts[method], point, neighbourhood, f"{method} forecast's")
        out[method] = point_fan(part, lambda da, where=where: _box(da, where))
    return out
