"""The ``nowcast`` command line: a thin Click layer over the library.

Each command lives in its own module and imports heavy libraries (Keras, Dask,
Cartopy) inside the command function, so ``nowcast --help`` stays fast. A
:class:`~nowcast.errors.NowcastError` becomes a one-line ``Error: ...`` and exit 1.
"""

from __future__ import annotations

import logging
import sys
import warnings

import click

from nowcast.cli import (
    batch,
    convert,
    demo,
    evaluate,
    info,
    models,
    predict,
    prepare,
    render,
    train,
)
from nowcast.errors import NowcastError, one_line


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
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
def main(verbose: bool) -> None:
    """Spatio-temporal weather nowcasting: NetCDF in, forecasts, scores and maps out."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one ``Warning: ...`` line on stderr (no source line)."""
    click.echo(
        f"Warning: {str(message).splitlines()[0] if str(message) else category.__name__}", err=True
    )


for _module in (batch, convert, demo, evaluate, info, models, predict, prepare, render, train):
    main.add_command(_module.command)
