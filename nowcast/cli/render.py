"""``nowcast render``: maps (PNG, optionally GIF) of a forecast file; of a probabilistic
one also probability maps and postage stamps of its members, and fan charts at points."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.cli.common import kind_option, write_run_page


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
@click.argument("forecasts", nargs=-1, required=True, type=click.Path(path_type=Path))
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
@click.option(
    "--point",
    "points",
    multiple=True,
    metavar="LAT,LON|NAME",
    help=(
        "Instead of maps: observed vs forecast against valid time at this point (PNG + CSV); "
        "repeatable. NAME from --places."
    ),
)
@click.option(
    "--places",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV of name,latitude,longitude for --point NAME [a few cities shipped with nowcast].",
)
@click.option(
    "--products",
    default=None,
    metavar="LIST",
    help=(
        "Maps to draw: deterministic, probability (P(value >= threshold)), members (postage "
        "stamps), comma-separated [every product the files hold]. With --point, "
        "'deterministic' alone leaves out the fan chart."
    ),
)
@click.option(
    "--thresholds",
    default=None,
    metavar="T1,T2,...",
    help="Probability maps at these thresholds only, in the data's units; each must be in the "
    "files [all they hold].",
)
@click.option(
    "--neighbourhood",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="--point: mean of N x N pixels around the nearest (odd N; 1 = the nearest pixel).",
)
def command(
    forecasts,
    truth,
    kind,
    output,
    leads,
    gif,
    map_data,
    download_map_data,
    workers,
    dpi,
    points,
    places,
    products,
    thresholds,
    neighbourhood,
) -> None:
    """Draw FORECASTS (nowcast NetCDF/Zarr files) as maps in their own projection, or with
    --point as time series at points; prints the paths. A probabilistic forecast (nowcast
    predict --members/--probabilities/--quantiles) also gets probability maps and postage
    stamps of its members, and at points a fan chart of its quantiles.

    \b
    Examples:
      nowcast render fc.nc --leads 1,6,12 --map-data ../shared/data/maps
      nowcast render fc.nc --truth ../shared/data/radar/mch-2016-07-11.nc --gif --workers 2
      nowcast render fc.nc ex.nc --truth ../shared/data/radar/mch-2016-07-11.nc \\
          --point Zurich --point 46.0,8.95 --neighbourhood 3 -o series/
      nowcast render ens.nc --products probability,members --thresholds 5 --gif
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.archive.reader import open_archive, source_files
    from nowcast.cli.predict import number_list
    from nowcast.errors import NowcastError
    from nowcast.fileio import check_output, folder_output
    from nowcast.render.ensemble import DETERMINISTIC, PRODUCTS, plan_products
    from nowcast.render.ensemble_jobs import render_products
    from nowcast.render.options import RenderOptions
    from nowcast.render.parallel import plan_maps, render_maps
    from nowcast.verify.scores import load_forecast_files

    wanted = _products(products, PRODUCTS)
    levels = number_list(thresholds, "--thresholds") or None
    if points and levels is not None:
        raise NowcastError("--thresholds chooses probability maps; --point draws no maps")
    series, forecasts = _series_files(forecasts, points)  # series forecasts: drawn at points
    fcs, prob = load_forecast_files(forecasts) if forecasts else ({}, {})  # DataError: bad file
    parts = {key: p.parts() for key, p in prob.items()}
    first = next(iter(fcs.values())) if fcs else series[0].forecast
    obs = None
    if truth:
        obs = open_archive(list(truth), variable=str(first.name), kind=kind)
    sources = [
        *forecasts,
        *(s.path for s in series),
        *truth,
        *(source_files(obs) if obs is not None else []),
    ]
    check_output(output, sources, replaces=False)  # never into (or over) an input's folder
    if points:
        from nowcast.render.point import load_places, parse_point, render_points

        known = load_places(places) if places is not None else None
        chosen = [parse_point(p, known) for p in points]
        fans = {} if wanted == (DETERMINISTIC,) else parts
        with folder_output(output) as folder:  # a new folder appears in one step
            written = render_points(
                fcs,
                chosen,
                outdir=folder,
                truth=obs,
                neighbourhood=neighbourhood,
                dpi=dpi,
                probabilistic=fans,
                series=series,
            )
            written.append(_page(folder, output, fcs, forecasts, truth, points=True))
        _echo_paths(written, folder, output)
        return
    options = RenderOptions(
        leads=parse_leads(leads),
        map_data=map_data,
        download_map_data=download_map_data,
        dpi=dpi,
    )
    # every forecast checked before the first write; the line below says when no map data
    # is found: no warning besides
    jobs = plan_maps(list(zip(forecasts, fcs.values())), truth=obs, options=options, warn=False)
    pjobs = plan_products(jobs, [parts.get(key) for key in fcs], products=wanted, thresholds=levels)
    click.echo(jobs[0].options.map_data.describe())
    with folder_output(output) as folder:  # a new folder appears in one step
        written = []
        if wanted is None or DETERMINISTIC in wanted:
            written += render_maps(jobs, outdir=folder, workers=workers, gif=gif)
        written += render_products(pjobs, outdir=folder, workers=workers, gif=gif)
        written.append(_page(folder, output, fcs, forecasts, truth))
    _echo_paths(written, folder, output)


def _page(folder: Path, output: Path, fcs: dict, forecasts, truth, *, points=False) -> Path:
    """The folder's page (index.html): its maps or series, and where they came from
    (``folder`` is where it is written, ``output`` where it will be)."""
    first = next(iter(fcs.values()), None)
    models = sorted(
        {str(fc.attrs["nowcast_model"]) for fc in fcs.values() if fc.attrs.get("nowcast_model")}
    )
    return write_run_page(
        folder,
        title="nowcast render: time series at points" if points else "nowcast render: maps",
        inputs=[str(p) for p in forecasts],
        truth=list(truth),
        model=", ".join(models) or None,
        methods=list(fcs),
        folder=str(Path(output).resolve()),
        variable=None if first is None else str(first.name),
        units=None if first is None else first.attrs.get("units"),
    )


def _series_files(forecasts, points):
    """``(series forecast files as SeriesAtPoints, the gridded forecast files)``; series files
    without --point are a one-line error."""
    from nowcast.cli.series import split_series_files

    series, gridded = split_series_files(forecasts)
    if not series:
        return [], list(forecasts)
    if not points:
        from nowcast.errors import NowcastError

        raise NowcastError(
            f"{series[0]} is a series forecast (at points): draw it with --point LAT,LON|NAME"
        )
    from nowcast.series.run import SeriesAtPoints

    return [SeriesAtPoints(p) for p in series], gridded


def _echo_paths(paths, folder: Path, output: Path) -> None:
    """Print the paths written under ``folder`` as where they are now, under ``output``."""
    for p in paths:
        click.echo(str(Path(output) / Path(p).relative_to(folder)))


def _products(text: str | None, known) -> tuple[str, ...] | None:
    """``--products``: the names asked (``None``: all the files hold); a one-line error for
    an unknown one."""
    from nowcast.errors import NowcastError

    if text is None:
        return None
    names = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise NowcastError(
            f"--products: unknown {', '.join(map(repr, bad)) or 'empty list'}; choose from "
            f"{', '.join(known)}"
        )
    return names
