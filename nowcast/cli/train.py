"""``nowcast train CONFIG``."""

from __future__ import annotations

from pathlib import Path

import click

from nowcast.cli.common import check_training_outputs, disk_errors_named, set_option


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option(
    "--output",
    "-o",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory [runs/<config name>].",
)
@click.option("--resume", is_flag=True, help="Continue from the run directory's last checkpoint.")
def command(config: Path, overrides: tuple[str, ...], run_dir: Path | None, resume: bool) -> None:
    """Train the ConvLSTM encoder-forecaster described by CONFIG (YAML), or with
    model.kind: series a recurrent series model (LSTM or GRU; the series: section).

    \b
    Example:
      nowcast train configs/radar-5min.yaml --set train.epochs=5 --output runs/radar
    """
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.archive.synthetic import ensure_synthetic_event
    from nowcast.config import load_config
    from nowcast.trained.rundir import RunDir
    from nowcast.training import train
    from nowcast.trainset.stores import store_root

    cfg = load_config(config, overrides)
    ensure_synthetic_event(cfg.data, echo=click.echo)
    run_dir = run_dir or Path("runs") / cfg.name
    check_training_outputs(cfg, run_dir, config=config, resume=resume)  # never over an input
    if cfg.model.kind == "series":  # a recurrent network on 1-D series (nowcast.series)
        from nowcast.series.train import train_series

        result = train_series(cfg, run_dir=run_dir, resume=resume, echo=click.echo)
    else:
        stores = f"the prepared stores in {store_root(cfg.data).text}"
        with disk_errors_named(f"the run directory {run_dir}", stores):  # a full disk: where
            result = train(cfg, run_dir=run_dir, resume=resume, echo=click.echo)
    best = "n/a" if result.best_val_loss is None else f"{result.best_val_loss:.4f}"
    click.echo(
        f"{result.epochs_run} epochs in {result.seconds:.0f} s; best validation loss {best}; "
        f"model: {RunDir(result.run_dir).model}"
    )
    if result.interrupted:
        raise SystemExit(130)
