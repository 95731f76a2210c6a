"""``nowcast evaluate``: score forecast files against observations, write a report."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.cli.common import issue_time_options, kind_option, write_run_page
from nowcast.verify import DEFAULT_SCALES, DEFAULT_THRESHOLDS


def _numbers(kind):
    def parse(ctx, param, value: str | None):
        if value is None:
            return None
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
@kind_option
@issue_time_options(required_hint="every issue time in the files")
@click.option(
    "--thresholds",
    default=None,
    callback=_numbers(float),
    help=(
        "Event thresholds (value >= threshold) in the data's units, e.g. 273.15 (K) "
        f"[precipitation: {','.join(f'{t:g}' for t in DEFAULT_THRESHOLDS)}; temperature: "
        "none, continuous scores only]."
    ),
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
def command(
    forecasts,
    truth,
    variable,
    kind,
    issue_times,
    start,
    end,
    every,
    thresholds,
    scales,
    common_mask,
    plots,
    output,
) -> None:
    """Verify forecasts against observations: MAE, RMSE, bias, correlation, CSI/POD/FAR/ETS
    and FSS per lead time, pooled over issue times (all in the files, or those chosen by
    --issue-time / --start --end --every). Methods are named by the files'
    'nowcast_method' attribute (the file name tells apart two of one method).

    Series forecasts (nowcast predict --point: CF timeSeries files) are scored at their
    stations against the truth there (a gridded archive's nearest pixel, or a station file:
    CSV or timeSeries NetCDF); gridded forecasts given with them are read at the same
    stations: MAE, RMSE, bias and correlation per lead, pooled over stations and issue times.

    When a file holds ensemble members, exceedance probabilities or quantiles, every method
    also gets the CRPS (a deterministic forecast's is its MAE) and, at each threshold, the
    Brier score, its skill against the sample climatology and the ROC area; the report
    adds diagrams.csv and reliability, ROC and rank-histogram plots.

    \b
    Examples:
      nowcast evaluate -f persistence.nc -f extrapolation.nc \\
          --truth ../shared/data/radar/mch-2016-07-11.nc --output report/
      nowcast evaluate -f t2m.nc --truth ../shared/data/era5/era5-t2m-2019-03-uk.nc \\
          --thresholds 273.15 --start 2019-03-25 --every 6h --output report-t2m/
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.cli.series import split_series_files

    if split_series_files(forecasts)[0]:  # series forecasts (nowcast.series): at their points
        _evaluate_series(
            forecasts,
            truth,
            variable,
            kind,
            issue_times,
            start,
            end,
            every,
            common_mask,
            plots,
            output,
        )
        return
    from nowcast.archive import open_archive, source_files
    from nowcast.fileio import check_output
    from nowcast.verify import load_forecast_files, verification
    from nowcast.verify.report import write_report
    from nowcast.verify.tables import lead_tables

    fcs, prob = load_forecast_files(forecasts)
    fcs, prob = _chosen_issue_times(fcs, prob, issue_times, start=start, end=end, every=every)
    first = next(iter(fcs.values()))
    archive = open_archive(list(truth), variable=variable or first.name, kind=kind)
    # the report never goes into (or over) an input's folder
    check_output(output, [*forecasts, *truth, *source_files(archive)], replaces=False)
    result = verification(
        fcs,
        archive,
        thresholds=thresholds,
        scales=scales,
        common_mask=common_mask,
        probabilistic=prob,
    )
    scores = result.scores
    paths = write_report(scores, output, plots=plots, diagrams=result.diagrams)
    paths.append(_page(output, forecasts, truth, fcs))
    click.echo(lead_tables(scores, truth_end=archive["time"].values[-1]))
    click.echo(f"wrote {len(paths)} files to {output}")


def _evaluate_series(
    forecasts, truth, variable, kind, issue_times, start, end, every, common_mask, plots, output
) -> None:
    """Series forecasts (and gridded ones, read at their stations) against the truth at the
    stations: MAE, RMSE, bias and correlation per lead."""
    from nowcast.fileio import check_output
    from nowcast.series.run import evaluate_files
    from nowcast.verify.report import write_report
    from nowcast.verify.tables import lead_tables

    scores, truth_end, read = evaluate_files(
        forecasts,
        truth,
        variable=variable,
        kind=kind,
        issue_times=issue_times,
        start=start,
        end=end,
        every=every,
        common_mask=common_mask,
    )
    check_output(output, [*forecasts, *read], replaces=False)
    paths = write_report(scores, output, plots=plots)
    paths.append(_page(output, forecasts, truth, {}))
    click.echo(f"{scores.attrs.get('stations')} stations")
    click.echo(lead_tables(scores, truth_end=truth_end))
    click.echo(f"wrote {len(paths)} files to {output}")


def _page(output: Path, forecasts, truth, fcs: dict) -> Path:
    """The report's page (index.html): its tables and plots, and where they came from."""
    models = sorted(
        {str(fc.attrs["nowcast_model"]) for fc in fcs.values() if fc.attrs.get("nowcast_model")}
    )
    issues = sorted({str(t)[:16] for fc in fcs.values() for t in fc["issue_time"].values})
    return write_run_page(
        output,
        title="nowcast evaluate: verification report",
        inputs=[str(p) for p in forecasts],
        truth=list(truth),
        methods=list(fcs),
        model=", ".join(models) or None,
        **{"issue times": f"{len(issues)}: {issues[0]} .. {issues[-1]}" if issues else None},
    )


def _chosen_issue_times(fcs: dict, prob: dict, explicit, *, start, end, every):
    """The forecasts (and their probabilistic parts) at the chosen issue times (all when none
    are chosen)."""
    if not explicit and start is None and end is None and every is None:
        return fcs, prob
    import pandas as pd

    from nowcast.archive.timeaxis import select_issue_times
    from nowcast.conventions import as_time
    from nowcast.errors import NowcastError

    available = pd.DatetimeIndex(
        sorted(set().union(*(set(fc["issue_time"].values) for fc in fcs.values())))
    )
    wanted = select_issue_times(available, explicit, start=start, end=end, every=every)
    for t in (as_time(t) for t in explicit):
        if t not in available:
            raise NowcastError(f"issue time {t} is in none of the forecast files")
    out, out_prob = {}, {}
    for name, fc in fcs.items():
        keep = pd.DatetimeIndex(fc["issue_time"].values).isin(wanted)
        if keep.any():
            out[name] = fc.isel(issue_time=keep)
            if name in prob:
                out_prob[name] = prob[name].sel_issues(out[name]["issue_time"].values)
    if not out:
        raise NowcastError("none of the chosen issue times is in the forecast files")
    return out, out_prob
