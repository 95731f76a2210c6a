"""Options and helpers shared by several commands."""

from __future__ import annotations

import click

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
    type=click.Choice(["auto", "precipitation", "temperature"]),
    default="auto",
    show_default=True,
    help="Physical handling; auto: precipitation if the units are precipitation units.",
)
