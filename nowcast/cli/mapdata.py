"""``nowcast mapdata``: the coastlines, lakes and borders for maps, fetched once."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("mapdata")
@click.option(
    "--from",
    "source",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copy from this offline map-data folder (e.g. ../shared/data/maps) instead of "
    "downloading.",
)
@click.option(
    "--to",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to put them [~/.cache/nowcast/maps, where maps look for them].",
)
@click.option(
    "--resolution",
    "resolutions",
    default="10m,50m,110m",
    show_default=True,
    help="Natural Earth resolutions, comma-separated.",
)
def command(source: Path | None, target: Path | None, resolutions: str) -> None:
    """Get the Natural Earth coastlines, lakes and borders once, for every later map.

    Downloads them from naturalearthdata.com (about 30 MB, once), or with --from copies
    them from an offline folder; layers already there are kept. Maps then find them with
    no network and no --map-data.

    \b
    Examples:
      nowcast mapdata
      nowcast mapdata --from ../shared/data/maps
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.render.mapfetch import get_map_data

    wanted = [r.strip() for r in resolutions.split(",") if r.strip()]
    click.echo(get_map_data(target, source=source, resolutions=wanted).describe())
