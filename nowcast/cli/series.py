"""The options and steps that ``predict``, ``evaluate`` and ``render`` share for series
(:mod:`nowcast.series`): forecasts at points, station files, series forecast files."""

from __future__ import annotations

from pathlib import Path

import click


def point_options(command):
    """``--point`` (repeatable), ``--places``, ``--column`` and ``--units`` for ``predict``."""
    for option in reversed(
        [
            click.option(
                "--point",
                "points",
                multiple=True,
                metavar="LAT,LON|NAME|all",
                help=(
                    "Forecast the series at this point (nearest pixel; repeatable; all: every "
                    "grid point) and write a CF timeSeries NetCDF and a CSV beside it; with a "
                    "station file as --input, the station of this name."
                ),
            ),
            click.option(
                "--places",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="CSV of name,latitude,longitude for --point NAME [the shipped places].",
            ),
            click.option(
                "--column",
                default=None,
                help="Station files: the value column (CSV) or variable (NetCDF) to read.",
            ),
            click.option(
                "--units",
                default=None,
                help="Station CSV files: the values' units when the header does not name them.",
            ),
        ]
    ):
        command = option(command)
    return command


def parse_points(points, places) -> list[tuple[str, float, float]] | None:
    """``--point`` values as ``(name, lat, lon)``; None for ``all`` (every grid point)."""
    from nowcast.errors import NowcastError
    from nowcast.render.point import load_places, parse_point

    if [p.strip().lower() for p in points] == ["all"]:
        return None
    if any(p.strip().lower() == "all" for p in points):
        raise NowcastError("--point all takes every grid point: give it alone")
    known = load_places(places) if places is not None else None
    out = []
    for text in points:
        p = parse_point(text, known)
        if (p.name, p.lat, p.lon) not in out:
            out.append((p.name, p.lat, p.lon))
    return out


def predict_series(inputs, points, places, output, **options) -> None:
    """``nowcast predict`` for series: forecast, write the NetCDF and the CSV, print them."""
    from nowcast.series.run import predict_series_to_file

    chosen = parse_points(points, places) if points else []
    for path in predict_series_to_file(inputs, chosen, output=output, **options):
        click.echo(f"wrote {path}")


def split_series_files(paths) -> tuple[list[Path], list[Path]]:
    """``(series forecast files, the other forecast files)``."""
    from nowcast.series.products import is_series_forecast

    series = [Path(p) for p in paths if is_series_forecast(p)]
    return series, [Path(p) for p in paths if Path(p) not in series]
