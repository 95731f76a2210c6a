"""``nowcast predict``."""

from __future__ import annotations

from pathlib import Path

import click


def parse_time(value: str):
    # imported on use, so that `nowcast --help` stays fast
    import pandas as pd

    try:
        return (
            pd.Timestamp(value).tz_localize(None)
            if pd.Timestamp(value).tzinfo
            else pd.Timestamp(value)
        )
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time (use e.g. 2016-07-11T12:00)") from None


@click.command("predict")
@click.option(
    "--model",
    "model",
    help="Run directory, model.keras file, or a shipped model name (e.g. radar-5min).",
)
@click.option(
    "--method",
    default=None,
    help="Forecast method: convlstm (with --model), persistence, extrapolation, sprog.",
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    help="Archive: files, folders or globs (repeatable).",
)
@click.option(
    "--variable", default=None, help="Variable to read (default: the only data variable)."
)
@click.option(
    "--issue-time",
    "issue_times",
    multiple=True,
    required=True,
    help="Issue time (time of the last input frame); repeatable.",
)
@click.option(
    "--leads",
    type=click.IntRange(min=1),
    default=None,
    help="Number of lead times [the model's t_out, or 12].",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output NetCDF (or .zarr).",
)
def command(model, method, inputs, variable, issue_times, leads, output) -> None:
    """Forecast from the last frames up to each issue time and write CF NetCDF on the input grid.

    \b
    Examples:
      nowcast predict --model radar-5min -i ../shared/data/radar/mch-2016-07-11.nc \\
          --issue-time 2016-07-11T21:30 --output fc.nc
      nowcast predict --method extrapolation -i ../shared/data/radar/mch-2016-07-11.nc \\
          --issue-time 2016-07-11T21:30 --leads 12 --output ex.nc
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.methods.run import predict_to_file

    times = [parse_time(t) for t in issue_times]
    path = predict_to_file(
        inputs, times, output, model=model, method=method, variable=variable, n_leads=leads
    )
    click.echo(f"wrote {path}")
