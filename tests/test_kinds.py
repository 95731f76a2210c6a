"""kinds.kind_of: the one "rain or temperature" decision (evaluate, render, predict)."""

from __future__ import annotations

import typing

import pytest

from nowcast.config import Kind
from nowcast.errors import DataError
from nowcast.kinds import KINDS, check_kind, kind_of


def test_kind_of_units_and_metadata():
    assert kind_of({"units": "mm h-1"}) == "precipitation"
    assert kind_of({"units": "K"}) == "temperature"
    assert kind_of({"units": "m s-1"}) == "temperature"  # any other field keeps its units
    assert kind_of({}) == "precipitation"  # nothing known: the default kind
    assert kind_of({"kind": "temperature", "units": "mm h-1"}) == "temperature"  # metadata wins
    with pytest.raises(DataError, match="kind must be one of precipitation, temperature"):
        kind_of({"kind": "wind"})


def test_kinds_match_the_config_and_the_cli():
    from nowcast.cli.common import kind_option

    assert typing.get_args(Kind) == KINDS
    command = kind_option(lambda kind: None)
    assert tuple(command.__click_params__[0].type.choices) == ("auto", *KINDS)
    assert check_kind("precipitation") == "precipitation"
