"""``nowcast convert INPUT... --output OUT.zarr|OUT.nc``: rewrite an archive as one store/file."""

from __future__ import annotations

import click

from nowcast.cli.common import kind_option, variable_option


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Output: a .zarr store or a NetCDF file (.nc); a local path or an fsspec URL.",
)
@variable_option
@kind_option
@click.option(
    "--frames-per-chunk",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Frames per stored chunk (each chunk holds whole frames).",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def command(
    inputs: tuple[str, ...],
    output: str,
    variable: str | None,
    kind: str,
    frames_per_chunk: int,
    overwrite: bool,
) -> None:
    """Convert the archive in INPUTS (folders, globs, NetCDF files, Zarr stores, URLs) to OUTPUT.

    The output holds the archive as nowcast reads it (y ascending, metres, precipitation in
    mm h-1, NaN fill, grid mapping and attribution kept), so reading OUTPUT gives the same
    archive. Written to a temporary name and moved into place. OUTPUT may not be (or be
    inside, or hold) an input; an existing OUTPUT is refused unless --overwrite.
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.archive.reader import open_archive, source_files
    from nowcast.archive.writer import write_archive
    from nowcast.fileio import check_output

    da = open_archive(list(inputs), variable=variable, kind=kind, chunks=frames_per_chunk)
    check_output(output, [*inputs, *source_files(da)], overwrite=overwrite)
    written = write_archive(da, output, chunks=frames_per_chunk, overwrite=overwrite)
    n_sources = len(source_files(da))
    click.echo(
        f"wrote {written}: {da.name} ({da.attrs.get('units', '')}), {da.sizes['time']} frames of "
        f"{da.sizes['y']} x {da.sizes['x']} from {n_sources} source(s)"
    )
