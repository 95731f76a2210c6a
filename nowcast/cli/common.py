"""Options and helpers shared by several commands."""

from __future__ import annotations

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
