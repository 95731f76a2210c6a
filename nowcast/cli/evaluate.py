"""``nowcast evaluate``: score forecast files against observations, write a report."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.verify import DEFAULT_SCALES, DEFAULT_THRESHOLDS


def _numbers(kind):
    def parse(ctx, param, value: str):
        try:
            items = [kind(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: expected comma-separated numbers, e.g. 0.5,1,5"
            ) from None
        if not items:
            raise click.BadParameter("give at least one value")
        return tuple(items)

    return parse


@click.command("evaluate")
@click.option(
    "--forecast",
    "-f",
    "forecasts",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Forecast file (NetCDF or .zarr, from nowcast predict); repeatable.",
)
@click.option(
    "--truth",
    "-t",
    "truth",
    multiple=True,
    required=True,
    help="Observation archive: files, folders or globs (repeatable).",
)
@click.option(
    "--variable", default=None, help="Variable in the truth files [the forecast's variable name]."
)
@click.option(
    "--thresholds",
    default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS),
    show_default=True,
    callback=_numbers(float),
    help="Event thresholds (value >= threshold), in the data's units.",
)
@click.option(
    "--scales",
    default=",".join(str(s) for s in DEFAULT_SCALES),
    show_default=True,
    callback=_numbers(int),
    help="FSS neighbourhood sizes in pixels (odd).",
)
@click.option(
    "--common-mask/--no-common-mask",
    default=True,
    show_default=True,
    help="Score every method on the pixels valid in all of them.",
)
@click.option(
    "--plots/--no-plots", default=True, show_default=True, help="Write one PNG per score."
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder (scores.csv, scores.md, PNGs).",
)
def command(forecasts, truth, variable, thresholds, scales, common_mask, plots, output) -> None:
    """Verify forecasts against observations: MAE, RMSE, bias, correlation, CSI/POD/FAR/ETS
    and FSS per lead time, pooled over issue times. Methods are named by the files'
    'nowcast_method' attribute (the file name tells apart two of one method).

    \b
    Example:
      nowcast evaluate -f persistence.nc -f extrapolation.nc \\
          --truth ../shared/data/radar/mch-2016-07-11.nc --output report/
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.data import open_archive
    from nowcast.kinds import kind_of
    from nowcast.verify import evaluate, load_forecasts
    from nowcast.verify.report import key_table, write_report

    fcs = load_forecasts(forecasts)
    first = next(iter(fcs.values()))
    archive = open_archive(list(truth), variable=variable or first.name, kind=kind_of(first.attrs))
    scores = evaluate(fcs, archive, thresholds=thresholds, scales=scales, common_mask=common_mask)
    paths = write_report(scores, output, plots=plots)
    click.echo(key_table(scores))
    click.echo(f"wrote {len(paths)} files to {output}")
