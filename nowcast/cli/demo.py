"""``nowcast demo``: the whole pipeline on an embedded default."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.cli.common import set_option


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Where every product is written.",
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    help="Use a real archive instead of the synthetic one (files, folders or globs).",
)
@click.option(
    "--map-data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Offline Cartopy map data folder (or set NOWCAST_MAP_DATA).",
)
@set_option
def command(
    workdir: Path, inputs: tuple[str, ...], map_data: Path | None, overrides: tuple[str, ...]
) -> None:
    """Synthetic archive -> train a tiny ConvLSTM -> predict -> baselines -> evaluate -> maps.

    \b
    Examples:
      nowcast demo
      nowcast demo --input ../shared/data/radar/bom-66-2020-10-31 --workdir demo-bom
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.demo import demo_summary, run_demo

    result = run_demo(
        workdir=workdir,
        inputs=list(inputs) or None,
        overrides=overrides,
        map_data=map_data,
        echo=click.echo,
    )
    click.echo(demo_summary(result))
    click.echo(f"Page: {result.workdir / 'index.html'} (open it in a browser)")
