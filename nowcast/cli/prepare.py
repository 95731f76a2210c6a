"""``nowcast prepare CONFIG``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from nowcast.cli.common import check_training_outputs, disk_errors_named, set_option


@click.command("prepare")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@set_option
def command(config: Path, overrides: tuple[str, ...]) -> None:
    """Write the prepared training stores CONFIG's training reads (under data.cache_dir).

    One Zarr store per event with train or validation windows: the Lagrangian windows
    (model.frame: lagrangian) or the prepared frames (sampler.prepared: true), chunked for
    the loader. Resumable: a rerun computes only what is missing; a store whose inputs or
    options changed is rebuilt. `nowcast train` builds them too when missing.

    \b
    Example:
      nowcast prepare configs/radar-5min-eulerian.yaml --set sampler.prepared=true
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.config import load_config
    from nowcast.trainset.stores import prepare_stores, store_root

    cfg = load_config(config, overrides)
    check_training_outputs(cfg)  # data.cache_dir never inside an input event's folder
    start = time.perf_counter()
    with disk_errors_named(f"the prepared stores in {store_root(cfg.data).text}"):
        stores = [st for st in prepare_stores(cfg, echo=click.echo) if st is not None]
    total = 0
    for st in stores:
        size = st.nbytes()
        total += size
        click.echo(f"{st.name}: {st.units()} units, {size / 2**20:.1f} MiB  {st.path}")
    click.echo(
        f"{len(stores)} prepared stores, {total / 2**20:.1f} MiB, "
        f"{time.perf_counter() - start:.1f} s"
    )
