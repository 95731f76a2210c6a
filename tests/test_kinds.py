"""kinds.kind_of: the one "rain or temperature" decision (evaluate, render, predict)."""

from __future__ import annotations

import typing

import pytest

from nowcast.config import Kind, KindChoice
from nowcast.errors import DataError
from nowcast.kinds import KIND_CHOICES, KINDS, check_kind, kind_of


def test_kind_of_units_and_metadata():
    assert kind_of({"units": "mm h-1"}) == "precipitation"
    assert kind_of({"units": "K"}) == "temperature"
    assert kind_of({"units": "m s-1"}) == "temperature"  # any other field keeps its units
    assert kind_of({"units": "degC"}) == kind_of({"units": "Kelvin"}) == "temperature"
    assert kind_of({"standard_name": "air_temperature"}) == "temperature"
    assert kind_of({"standard_name": "precipitation_amount"}) == "precipitation"
    assert kind_of({}) == "temperature"  # nothing known: values kept as read
    assert kind_of({"kind": "temperature", "units": "mm h-1"}) == "temperature"  # metadata wins
    with pytest.raises(DataError, match="kind must be one of precipitation, temperature"):
        kind_of({"kind": "wind"})


def test_kinds_match_the_config_and_the_cli():
    from nowcast.cli.common import kind_option

    assert typing.get_args(Kind) == KINDS and typing.get_args(KindChoice) == KIND_CHOICES
    command = kind_option(lambda kind: None)
    assert tuple(command.__click_params__[0].type.choices) == ("auto", *KINDS)
    assert check_kind("precipitation") == "precipitation"


def test_open_archive_reads_the_kind_from_the_units(shared_data):
    """Raw BOM accumulations (kg m-2) become mm h-1; ERA5 kelvin stays kelvin; no --kind."""
    from nowcast.archive import open_archive

    bom = sorted((shared_data / "radar" / "bom-66-2020-10-31").glob("*.nc"))[:2]
    assert open_archive(bom).attrs["units"] == "mm h-1"
    t2m = open_archive(shared_data / "era5" / "era5-t2m-2019-03-uk.nc")
    assert t2m.attrs["units"] == "K" and 260 < float(t2m.isel(time=0).mean()) < 290
    with pytest.raises(DataError, match="--kind temperature"):
        open_archive(shared_data / "era5" / "era5-t2m-2019-03-uk.nc", kind="precipitation")
