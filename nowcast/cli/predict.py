"""``nowcast predict``."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.cli.common import issue_time_options, kind_option, variable_option
from nowcast.cli.series import point_options


@click.command("predict")
@click.option(
    "--model",
    "model",
    help="Run directory, model.keras file, or a shipped model name (e.g. radar-5min).",
)
@click.option(
    "--method",
    default=None,
    help=(
        "Forecast method: convlstm (with --model), persistence, extrapolation, sprog, steps "
        "(pySTEPS' STEPS ensemble: probabilistic)."
    ),
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
@point_options
@click.option(
    "--members",
    type=int,
    default=None,
    help=(
        "Probabilistic methods: write N ensemble members (variable NAME_members, dimension "
        "realization) [none written; steps draws 20]."
    ),
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Probabilistic methods: random seed, for reproducible members [fresh noise].",
)
@click.option(
    "--probabilities",
    default=None,
    metavar="T1,T2,...",
    help=(
        "Probabilistic methods: write P(value >= T) for these increasing thresholds in the "
        "data's units, e.g. 1,5,10 (mm h-1) (variable NAME_probability)."
    ),
)
@click.option(
    "--quantiles",
    default=None,
    metavar="Q1,Q2,...",
    help=(
        "Probabilistic methods: write these quantiles, increasing levels in (0, 1), e.g. "
        "0.1,0.5,0.9 (variable NAME_quantiles)."
    ),
)
@click.option(
    "--deterministic",
    type=click.Choice(["median", "sharp"]),
    default=None,
    help=(
        "Probabilistic methods: the main variable. median (default): it minimises the "
        "expected absolute error, but smooths heavy rain away with lead time; sharp: the "
        "mean pattern with the values of the last observation (probability matching, as "
        "S-PROG; steps: its members' values, which pySTEPS matches to it), which keeps the "
        "rain area and heavy rain."
    ),
)
@click.option(
    "--tile",
    default=None,
    metavar="auto|N|none",
    help=(
        "The trained model's inference in tiles of N x N pixels (plus the network's halo), "
        "stitched to the same result in bounded memory; auto: tiles only when one pass over "
        "the grid would take more than NOWCAST_TILE_MEMORY MiB (default 2048) or a quarter "
        "of the free memory; none: one pass [auto]."
    ),
)
@click.option(
    "--region",
    default=None,
    metavar="W,S,E,N",
    help=(
        "Forecast only this box: longitude/latitude in degrees (e.g. 5.9,45.8,10.5,47.8), or "
        "the grid's own coordinates with their units (e.g. 480,75,840,300km). The forecast "
        "reads the box grown by what moves at 100 km/h over the inputs and leads (at least "
        "32 pixels, plus the network's receptive field) and writes the box."
    ),
)
def command(
    model,
    method,
    inputs,
    variable,
    kind,
    issue_times,
    start,
    end,
    every,
    leads,
    output,
    overwrite,
    points,
    places,
    column,
    units,
    members,
    seed,
    probabilities,
    quantiles,
    deterministic,
    tile,
    region,
) -> None:
    """Forecast from the last frames up to each issue time and write CF NetCDF on the input grid.

    Times without an offset are UTC. A time given twice is forecast once; issue times come
    out sorted. An existing OUTPUT is refused unless --overwrite.

    A probabilistic method (steps) also writes, into the same file, ensemble members
    (--members), exceedance probabilities (--probabilities) and quantiles (--quantiles);
    its main variable stays the deterministic forecast (--deterministic).

    \b
    Examples:
      nowcast predict --model radar-5min -i ../shared/data/radar/mch-2016-07-11.nc \\
          --issue-time 2016-07-11T21:30 --output fc.nc
      nowcast predict --model radar-5min -i ../shared/data/radar/opera-2018-08-24.nc \\
          --issue-time 2018-08-24T21:00 --region 5.9,45.8,10.5,47.8 --tile auto --output ch.nc
      nowcast predict --method extrapolation -i ../shared/data/radar/mch-2016-07-11.nc \\
          --start 2016-07-11T21:30 --end 2016-07-11T22:30 --every 15min --output ex.nc
      nowcast predict --method persistence -i ../shared/data/era5/era5-t2m-2019-03-uk.nc \\
          --issue-time 2019-03-25T12:00 --leads 6 --output t2m.nc
      nowcast predict --method steps -i ../shared/data/radar/mch-2016-07-11.nc \\
          --issue-time 2016-07-11T21:30 --members 20 --seed 1 --probabilities 1,5,10 \\
          --quantiles 0.1,0.5,0.9 --output ens.nc
      nowcast predict --model t2m-series -i ../shared/data/era5/era5-t2m-2019-03-uk.nc \\
          --point London --point 55.95,-3.19 --issue-time 2019-03-25T12:00 --output ldn.nc

    With --point (or a series model, or a station file as --input: CSV time,value or CF
    timeSeries NetCDF) the forecast is a series per point: a CF timeSeries NetCDF file
    (station, issue_time, lead_time) and a CSV beside it; methods persistence, diurnal,
    diurnal-tendency, ets, or a series model (--model).
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.series.run import wants_series

    if wants_series(inputs, points, model):  # a series at points (nowcast.series)
        from nowcast.cli.series import predict_series

        predict_series(
            inputs,
            points,
            places,
            output,
            issue_times=issue_times,
            model=model,
            method=method,
            variable=variable,
            column=column,
            units=units,
            kind=kind,
            n_leads=leads,
            start=start,
            end=end,
            every=every,
            overwrite=overwrite,
        )
        return
    from nowcast.distribution import ProductRequest
    from nowcast.methods.run import predict_to_file

    request = ProductRequest(
        members=members,
        seed=seed,
        probabilities=number_list(probabilities, "--probabilities"),
        quantiles=number_list(quantiles, "--quantiles"),
        deterministic=deterministic,
    )

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
        request=request,
        tile=tile,
        region=region,
    )
    click.echo(f"wrote {path}")


def number_list(text: str | None, option: str) -> tuple[float, ...]:
    """``"1,5,10"`` as numbers (empty for None); a one-line error naming ``option``."""
    from nowcast.errors import NowcastError

    if text is None:
        return ()
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise NowcastError(
            f"{option} takes numbers separated by commas (e.g. 1,5,10), got {text!r}"
        ) from None
    if not values or any(v != v for v in values):  # NaN
        raise NowcastError(f"{option}: {text!r} holds no numbers")
    return values
