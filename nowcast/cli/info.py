"""``nowcast info PATHS...``: what an archive holds (files, variable, units, grid, time, gaps)."""

from __future__ import annotations

import sys

import click

from nowcast.cli.common import kind_option, variable_option


@click.command("info")
@click.argument("paths", nargs=-1, required=True)
@variable_option
@kind_option
def command(paths: tuple[str, ...], variable: str | None, kind: str) -> None:
    """Describe the archive in PATHS (directories, globs or NetCDF files), or forecast files.

    Prints the file count, variable, units as read and as converted, grid size, spacing and
    projection, time range, step, frame count, gaps, NaN fraction and value range. For
    forecast files (from predict or batch): method, issue times, leads, valid times, grid,
    and the probabilistic products (deterministic product, members, exceedance thresholds,
    quantile levels).
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.archive.describe import describe_archive, format_description
    from nowcast.archive.reader import open_archive
    from nowcast.forecast_info import describe_forecast, is_forecast_file

    if all(is_forecast_file(p) for p in paths):
        click.echo("\n\n".join(describe_forecast(p) for p in paths))
        return

    da = open_archive(list(paths), variable=variable, kind=kind, chunks="auto")
    text = format_description(describe_archive(da))
    if "nowcast.archive.qc" in sys.modules and da.attrs.get("units") == "mm h-1":
        from nowcast.archive import qc

        text += f"\nimplausible:  {qc.describe_counts(*qc.take_counts())}"
    click.echo(text)
