"""Options and helpers shared by several commands."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import click

# nowcast.kinds.KIND_CHOICES, spelled here so that `nowcast --help` imports no pandas
# (tests/test_kinds.py checks they agree)
KIND_CHOICES = ("auto", "precipitation", "temperature")

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a config value (repeatable), e.g. --set model.filters=[16,32].",
)

variable_option = click.option(
    "--variable", default=None, help="Data variable to read (default: the only (time, y, x) one)."
)

kind_option = click.option(
    "--kind",
    type=click.Choice(KIND_CHOICES),
    default="auto",
    show_default=True,
    help=(
        "How to read the data: precipitation (amounts/rates -> mm h-1) or temperature (units "
        "kept); auto: from the units and standard name (K, degC -> temperature)."
    ),
)


def issue_time_options(*, required_hint: str):
    """``--issue-time`` (repeatable) and ``--start/--end/--every`` (a range, as in batch)."""

    def decorate(command):
        for option in reversed(
            [
                click.option(
                    "--issue-time",
                    "issue_times",
                    multiple=True,
                    help=(
                        "Issue time (time of the last input frame), e.g. 2016-07-11T21:30 "
                        "(UTC) or 2016-07-11T23:30+02:00 (converted to UTC); repeatable."
                    ),
                ),
                click.option(
                    "--start",
                    default=None,
                    help=f"First issue time of a range [{required_hint}].",
                ),
                click.option(
                    "--end", default=None, help="Last issue time of a range, inclusive [the last]."
                ),
                click.option(
                    "--every",
                    default=None,
                    help="Issue-time spacing of a range, e.g. 10min [the data's step].",
                ),
            ]
        ):
            command = option(command)
        return command

    return decorate


def check_training_outputs(cfg, run_dir=None, *, config=None, resume: bool = False) -> None:
    """The input/output rule (:func:`nowcast.fileio.check_output`) for ``train`` and
    ``prepare``: the run directory (``--output``) and the prepared stores' folder
    (``data.cache_dir``) are never an input (an event, ``train.init_from``) nor inside an
    input event's folder or store; a new run never writes its ``config.yaml`` over the
    CONFIG file it was given (``--resume`` of a run may be given the run's own config)."""
    import glob
    import os

    from nowcast.errors import NowcastError
    from nowcast.fileio import check_output
    from nowcast.trainset.roots import default_store_dir

    inputs: list[str] = []
    for event in cfg.data.events:
        inputs.extend(sorted(glob.glob(event)) if glob.has_magic(event) else [event])
    if cfg.train.init_from:
        inputs.append(cfg.train.init_from)
    if run_dir is not None:
        check_output(run_dir, inputs, replaces=False, option="--output")
        written = os.path.join(run_dir, "config.yaml")
        if config is not None and not resume and os.path.exists(written):
            if os.path.samefile(written, config):
                raise NowcastError(
                    f"--output {run_dir} holds the config {config}, which the run's "
                    "config.yaml would replace: choose another output"
                )
    cache = cfg.data.cache_dir or default_store_dir()
    check_output(cache, inputs, replaces=False, option="data.cache_dir")


#: Errors that say a disk is full or read-only, whichever write raised them.
_FULL_OR_READ_ONLY = ("ENOSPC", "EDQUOT", "EROFS")


@contextlib.contextmanager
def disk_errors_named(*places) -> Iterator[None]:
    """A full or read-only disk met by a library write (a prepared store's chunk, often in
    a worker process, without a file name) becomes one line naming where the command
    writes: ``cannot write PLACES: No space left on device``."""
    import errno

    try:
        yield
    except OSError as exc:
        codes = {getattr(errno, name, None) for name in _FULL_OR_READ_ONLY}
        if exc.errno not in codes:
            raise
        from nowcast.errors import NowcastError

        where = exc.filename or " or ".join(str(p) for p in places if p)
        raise NowcastError(f"cannot write {where}: {exc.strerror or exc}") from None


def command_line() -> str:
    """The command as the user typed it (``nowcast render fc.nc ...``), for a run's page."""
    ctx = click.get_current_context(silent=True)
    args = ctx.meta.get("nowcast.args") if ctx is not None else None
    return shlex.join(["nowcast", *(sys.argv[1:] if args is None else args)])


def write_run_page(where: Path, /, **meta) -> Path:
    """Write the run's page ``where/index.html`` (:mod:`nowcast.render.page`) with the
    command line and ``meta`` (title, inputs, model, the final folder, ...); its path."""
    from nowcast.render.page import write_page  # imported on use: --help stays fast

    return write_page(where, {"command": command_line(), **meta})
