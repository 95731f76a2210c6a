"""The ``nowcast`` command line: a thin Click layer over the library.

Each command lives in its own module and imports heavy libraries (Keras, Dask,
Cartopy) inside the command function, so ``nowcast --help`` stays fast. A
:class:`~nowcast.errors.NowcastError` becomes a one-line ``Error: ...`` and exit 1.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import warnings

import click

from nowcast.errors import NowcastError, one_line
from nowcast.interrupts import catch_interrupts, check_interrupted


@contextlib.contextmanager
def _environment_kept(name: str):
    before = os.environ.get(name)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def _sigint_kept():
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main else None
    hook = sys.unraisablehook
    try:
        yield
    finally:
        if main and before is not None:
            signal.signal(signal.SIGINT, before)
        sys.unraisablehook = hook


def home_expanded(arg: str) -> str:
    """``arg`` with a leading ``~`` or ``~user`` expanded, as the shell does for an unquoted
    word (also after ``--option=``): ``--output "~/fc.nc"`` writes under the home folder,
    not into a folder named ``~``. Other arguments are returned as they are."""
    if arg.startswith("~"):
        return os.path.expanduser(arg)
    if arg.startswith("--") and "=~" in arg:
        option, value = arg.split("=", 1)
        return f"{option}={os.path.expanduser(value)}"
    return arg


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # the arguments as given: the provenance of a run's page (cli.common.command_line)
        ctx.meta["nowcast.args"] = list(args)
        return super().parse_args(ctx, [home_expanded(a) for a in args])

    def invoke(self, ctx: click.Context):
        # --max-rain sets the variable, catch_interrupts the SIGINT handler, for this command
        with _environment_kept("NOWCAST_MAX_RAIN"), _sigint_kept():
            return self._invoke(ctx)

    def _invoke(self, ctx: click.Context):
        if "nowcast.archive.qc" in sys.modules:  # an earlier in-process command's counts
            sys.modules["nowcast.archive.qc"].take_counts()
        try:
            result = super().invoke(ctx)
            check_interrupted()  # a Ctrl-C a library printed and swallowed still ends it
            _report_quality_control()
            return result
        except NowcastError as exc:
            raise click.ClickException(one_line(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug, or an error a library raised unchecked: one line, no dump
            if ctx.params.get("verbose"):
                raise
            raise click.ClickException(
                f"{one_line(exc)} (run with nowcast -v for the traceback)"
            ) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nowcast")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option(
    "--max-rain",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="MM_PER_H",
    help=(
        "Plausible maximum rain rate of the inputs: larger values (radar clutter) are masked "
        "as missing, with one warning [500, or $NOWCAST_MAX_RAIN; inf: no maximum]."
    ),
)
def main(verbose: bool, max_rain: float | None) -> None:
    """Spatio-temporal weather nowcasting: NetCDF in, forecasts, scores and maps out."""
    if max_rain is not None:  # the environment: batch workers and other processes inherit it
        os.environ["NOWCAST_MAX_RAIN"] = repr(max_rain)
    catch_interrupts()  # every Ctrl-C remembered, also one a library swallows
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _show_warning


def _report_quality_control() -> None:
    """One ``Warning:`` line when the inputs held implausible values (:mod:`nowcast.archive.qc`)."""
    qc = sys.modules.get("nowcast.archive.qc")
    line = qc.take_report() if qc is not None else None
    if line:
        click.echo(f"Warning: {line}", err=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one ``Warning: ...`` line on stderr (no source line)."""
    click.echo(
        f"Warning: {str(message).splitlines()[0] if str(message) else category.__name__}", err=True
    )


#: The commands, one module each under ``nowcast.cli`` (its ``command``).
COMMANDS = ("batch", "calibrate", "convert", "demo", "evaluate", "info", "mapdata", "models")
COMMANDS += ("predict", "prepare", "render", "train")
for _name in COMMANDS:
    main.add_command(importlib.import_module(f"nowcast.cli.{_name}").command)
