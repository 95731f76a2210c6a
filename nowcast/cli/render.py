"""``nowcast render``: maps (PNG, optionally GIF) of a forecast file."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.cli.common import kind_option


def parse_leads(value: str | None) -> list[int] | None:
    """``"1,6,12"`` -> ``[1, 6, 12]`` (1-based); ``None`` -> all leads."""
    if value is None or not value.strip():
        return None
    out = []
    for part in value.split(","):
        part = part.strip()
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            if not (lo.strip().isdigit() and hi.strip().isdigit()):
                raise click.BadParameter(
                    f"{part!r} is not a lead range like 1-6", param_hint="--leads"
                )
            out.extend(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise click.BadParameter(
                f"{part!r} is not a lead number (1-based, e.g. 1,6,12)", param_hint="--leads"
            )
    return out


@click.command("render")
@click.argument("forecast", type=click.Path(path_type=Path))
@click.option(
    "--truth",
    "truth",
    multiple=True,
    help=(
        "Observed archive (files, folders or globs; repeatable): adds observed and difference "
        "panels."
    ),
)
@kind_option
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("maps"),
    show_default=True,
    help="Folder for the maps.",
)
@click.option("--leads", default=None, help="1-based leads to draw, e.g. 1,6,12 or 1-6 [all].")
@click.option(
    "--gif", is_flag=True, help="Also write an animated GIF through the leads per issue time."
)
@click.option(
    "--map-data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=(
        "Map-data folder (Natural Earth and/or GSHHS shapefiles) [$NOWCAST_MAP_DATA, Cartopy's "
        "data dirs]."
    ),
)
@click.option(
    "--download-map-data",
    is_flag=True,
    help="Let Cartopy download missing Natural Earth layers (uses the network).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
)
@click.option("--dpi", type=click.IntRange(min=20, max=600), default=100, show_default=True)
def command(
    forecast, truth, kind, output, leads, gif, map_data, download_map_data, workers, dpi
) -> None:
    """Draw FORECAST (a nowcast NetCDF/Zarr) as maps in its own projection; prints the paths.

    \b
    Examples:
      nowcast render fc.nc --leads 1,6,12 --map-data ../shared/data/maps
      nowcast render fc.nc --truth ../shared/data/radar/mch-2016-07-11.nc --gif --workers 2
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.products import read_forecast
    from nowcast.render.animate import render_gif
    from nowcast.render.maps import align_truth, map_layers, prepare, select_leads
    from nowcast.render.parallel import render_many

    lead_list = parse_leads(leads)
    fc = read_forecast(forecast)  # DataError for a missing/bad file
    prep = prepare(fc)  # checks dims, grid and grid mapping before anything is written
    select_leads(prep.da.sizes["lead_time"], lead_list)
    obs = None
    if truth:
        from nowcast.data.archive import open_archive

        obs = open_archive(list(truth), variable=str(fc.name), kind=kind)
        align_truth(obs, prep)
    layers = map_layers(prep, map_data, download=download_map_data)
    click.echo(layers.describe())
    paths = render_many(
        [forecast],
        outdir=output,
        workers=workers,
        truth=obs,
        leads=lead_list,
        map_data=layers,
        dpi=dpi,
    )
    if gif:
        for i in range(fc.sizes["issue_time"]):
            paths.append(
                render_gif(
                    fc,
                    outdir=output,
                    truth=obs,
                    issue_index=i,
                    leads=lead_list,
                    map_data=layers,
                    dpi=min(dpi, 80),
                )
            )
    for p in paths:
        click.echo(str(p))
