"""``nowcast predict``."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.cli.common import issue_time_options, kind_option, variable_option


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
@variable_option
@kind_option
@issue_time_options(required_hint="the first with enough input frames")
@click.option(
    "--leads",
    type=click.IntRange(min=1),
    default=None,
    help="Number of lead times [the model's t_out, or 12].",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Output NetCDF (or .zarr store); never one of the inputs.",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def command(
    model, method, inputs, variable, kind, issue_times, start, end, every, leads, output, overwrite
) -> None:
    """Forecast from the last frames up to each issue time and write CF NetCDF on the input grid.

    Times without an offset are UTC. A time given twice is forecast once; issue times come
    out sorted. An existing OUTPUT is refused unless --overwrite.

    \b
    Examples:
      nowcast predict --model radar-5min -i ../shared/data/radar/mch-2016-07-11.nc \\
          --issue-time 2016-07-11T21:30 --output fc.nc
      nowcast predict --method extrapolation -i ../shared/data/radar/mch-2016-07-11.nc \\
          --start 2016-07-11T21:30 --end 2016-07-11T22:30 --every 15min --output ex.nc
      nowcast predict --method persistence -i ../shared/data/era5/era5-t2m-2019-03-uk.nc \\
          --issue-time 2019-03-25T12:00 --leads 6 --output t2m.nc
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.methods.run import predict_to_file

    path = predict_to_file(
        inputs,
        issue_times,
        output,
        model=model,
        method=method,
        variable=variable,
        n_leads=leads,
        kind=kind,
        start=start,
        end=end,
        every=every,
        overwrite=overwrite,
    )
    click.echo(f"wrote {path}")
