"""``nowcast batch CONFIG``: many issue times on dask.distributed (see :mod:`pipelines`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nowcast.cli.common import set_option


@click.command("batch")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--start",
    default=None,
    help=(
        "First issue time, e.g. 2016-07-11T21:00 [config start, or the first with enough input "
        "frames]."
    ),
)
@click.option(
    "--end",
    default=None,
    help="Last issue time (inclusive) [config end, or the archive's last time].",
)
@click.option(
    "--every",
    default=None,
    help="Issue-time spacing, e.g. 10min [config every, or the archive's step].",
)
@click.option("--output", "-o", default=None, help="Output folder [config output].")
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Use a running dask scheduler (tcp://host:8786) instead of a local cluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of the local cluster [config workers].",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@set_option
def command(config, start, end, every, output, scheduler, workers, no_progress, overrides) -> None:
    """Forecast every issue time of a range from a YAML batch CONFIG, one task per issue time.

    \b
    mode operational: one forecast file per issue time and method, and its maps;
    mode backfill:    every issue time with each method, then one verification report.
    Issue times whose outputs are complete are skipped (rerun to resume); a failing issue
    time is reported and the others go on; the exit status is 1 if any failed.

    \b
    Examples:
      nowcast batch configs/batch-mch.yaml
      nowcast batch configs/batch-mch.yaml --start 2016-07-11T20:00 --every 10min --workers 2
      nowcast batch configs/backfill-mch.yaml --scheduler tcp://10.0.0.5:8786
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.cli.common import command_line
    from nowcast.config import load_batch_config
    from pipelines import run_config

    extra = [
        f"{key}={json.dumps(value)}"
        for key, value in (("start", start), ("end", end), ("every", every), ("output", output))
        if value is not None
    ]
    cfg = load_batch_config(config, [*overrides, *extra])
    summary = run_config(
        cfg,
        scheduler=scheduler,
        workers=workers,
        progress=not no_progress,
        echo=click.echo,
        page={"command": command_line(), "config": str(config)},
    )
    for line in summary.lines():
        click.echo(line)
    click.echo(f"page: {summary.output / 'index.html'}")
    if summary.exit_code:
        raise SystemExit(summary.exit_code)
