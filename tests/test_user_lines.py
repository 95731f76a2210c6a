"""What a new user reads (issue 23): predict without issue times says what to give and the
range a bare --start/--end/--every would make; a 2.5-minute archive's leads on disk; batch
prints no stray progress label when piped and its workers' warnings as one line."""

from __future__ import annotations

import warnings

import netCDF4
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from nowcast.archive.synthetic import synthetic_rain, write_synthetic_archive
from nowcast.cli import main


def test_predict_without_issue_times_names_the_range(tmp_path):
    src = write_synthetic_archive(tmp_path / "a.nc", n_times=6, ny=16, nx=16, seed=1)[0]
    out = tmp_path / "fc.nc"
    res = CliRunner().invoke(
        main, ["predict", "--method", "persistence", "-i", str(src), "-o", str(out)]
    )
    assert res.exit_code == 1 and not out.exists()
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (
        "Error: give --issue-time TIME (repeatable) or a range --start/--end/--every; a "
        "range's defaults here: 2021-06-01T12:00 (the first time with 1 input frame) to "
        "2021-06-01T12:25 (the last) every 5min"
    )
    res = CliRunner().invoke(  # a bare --end: the range from the first time it allows
        main,
        ["predict", "--method", "persistence", "-i", str(src), "--end", "2021-06-01T12:25"]
        + ["--leads", "1", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    with netCDF4.Dataset(out) as nc:
        assert len(nc["issue_time"][:]) == 6


def test_leads_of_a_two_and_a_half_minute_archive(tmp_path):
    """Whole minutes are stored as minutes; leads that are not (150 s) as seconds, and
    either decodes to the same timedeltas."""
    from nowcast.methods import forecast_and_write, get_method
    from nowcast.products import read_forecast

    for step, units, values in (
        ("150s", "seconds", [150, 300, 450]),
        ("5min", "minutes", [5, 10, 15]),
    ):
        archive = synthetic_rain(n_times=4, ny=16, nx=16, step=step, seed=1)
        path = tmp_path / f"{step}.nc"
        issue = pd.Timestamp(archive.time.values[-1])
        forecast_and_write(get_method("persistence"), archive, [issue], 3, path)
        with netCDF4.Dataset(path) as nc:
            lead = nc["lead_time"]
            assert lead.units == units and list(lead[:]) == values and lead.dtype == np.int32
        leads = read_forecast(path).lead_time.values
        assert list(leads) == [k * pd.Timedelta(step) for k in (1, 2, 3)]


def test_batch_worker_warnings_are_one_line(capsys):
    from pipelines.tasks import _show_warning

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        warnings.warn("no coastline shapefiles found\nsecond line", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "Warning: no coastline shapefiles found\n"


def test_batch_progress_bar_only_on_a_terminal(monkeypatch):
    import contextlib
    import io

    from pipelines import runner

    monkeypatch.setattr(runner.sys, "stderr", io.StringIO())  # piped, as in CI or a log
    assert isinstance(runner._progress(3, True), contextlib.nullcontext)
    assert isinstance(runner._progress(3, False), contextlib.nullcontext)


@pytest.mark.parametrize("text", ["60,20"])
def test_point_outside_is_named_once(text):
    from nowcast.render.point import Point, parse_point

    point = parse_point(text, {})
    assert point.described == "60.00°N 20.00°E"
    assert Point("Zurich", 47.38, 8.54).described == "Zurich (47.38°N 8.54°E)"
