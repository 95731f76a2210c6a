"""``nowcast calibrate RUN_DIR --event ARCHIVE ...``."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("calibrate")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="an archive of the model's step, not one held out for testing (repeatable)",
)
@click.option(
    "--issue-times",
    "per_event",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="issue times per event (wet ones, evenly spread)",
)
@click.option(
    "--anchor",
    type=click.Choice(["median", "none"]),
    default="median",
    show_default=True,
    help="median: recalibrate the spread only, each lead's median stays the network's",
)
def command(run_dir: Path, events: tuple[Path, ...], per_event: int, anchor: str) -> None:
    """Calibrate a quantile model's levels per lead on EVENTs; writes RUN_DIR/calibration.json.

    Forecasts the picked issue times with the model as trained and measures, per lead and
    level, how often the observations fall at or below the level's value (the randomised
    PIT coverage, nowcast.verify.calibration). Forecasts made with the model afterwards take
    these as the levels' probabilities (quantiles, exceedance probabilities and members
    change; with --anchor none the median too). Use events the model was trained or
    validated on, never the events you test it on.

    \b
    Example:
      nowcast calibrate runs/radar-5min-q --event ../shared/data/radar/knmi-2010-08-26.nc \\
          --event ../shared/data/radar/fmi-2016-09-28.nc --issue-times 3
    """
    # imported on use, so that `nowcast --help` stays fast
    import numpy as np

    from nowcast.archive import open_archive
    from nowcast.errors import NowcastError
    from nowcast.methods.convlstm import ConvLSTMForecaster
    from nowcast.trained.calibration import Calibration, write_calibration
    from nowcast.trained.rundir import RunDir
    from nowcast.verify.calibration import calibrate

    if not RunDir(run_dir).metadata.is_file():
        raise NowcastError(f"{run_dir} is not a model's run directory (no metadata.json)")
    forecaster = ConvLSTMForecaster(run_dir, calibrated=False)
    if not forecaster.levels:
        raise NowcastError(f"{run_dir}: a deterministic model has no quantile levels to calibrate")
    archives = {Path(e).name: open_archive(e) for e in events}
    start = time.perf_counter()
    coverage, used = calibrate(
        forecaster, archives, per_archive=per_event, n_leads=forecaster.t_out, echo=click.echo
    )
    cal = Calibration(
        levels=tuple(forecaster.levels),
        step_seconds=forecaster.step.total_seconds(),
        coverage=coverage,
        source={"events": [str(e) for e in events], "issue_times": used},
        anchor=anchor,
    )
    path = write_calibration(run_dir, cal)
    levels = np.asarray(cal.levels)
    show = [k for k, q in enumerate(levels) if q in (0.05, 0.5, 0.95) or k in (0, len(levels) - 1)]
    click.echo("coverage (the fraction of observations at or below each level's value):")
    click.echo("lead  " + "  ".join(f"{levels[k]:>5.2f}" for k in show))
    for j, row in enumerate(cal.coverage):
        click.echo(f"{j + 1:>4}  " + "  ".join(f"{row[k]:>5.3f}" for k in show))
    click.echo(f"{path}: {used} issue times, {time.perf_counter() - start:.0f} s")
