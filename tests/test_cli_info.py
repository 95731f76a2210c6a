"""``nowcast info`` through Click's test runner: real archives, a gap, and a bad path."""

from __future__ import annotations

from click.testing import CliRunner

from nowcast.archive.synthetic import synthetic_rain, write_synthetic_archive
from nowcast.cli import main


def _run(*args):
    result = CliRunner().invoke(main, ["info", *map(str, args)])
    return result, result.output


def test_info_bom(shared_data):
    result, out = _run(shared_data / "radar" / "bom-66-2020-10-31")
    assert result.exit_code == 0, out
    assert "files:        144" in out
    assert "kg m-2 as read -> mm h-1" in out
    assert "512 x 512" in out and "spacing 500 x 500 m" in out
    assert "albers_conical_equal_area" in out
    assert "2020-10-31T00:00:00 .. 2020-10-31T23:50:00" in out
    assert (
        "step:         10 min" in out and "frames:       144" in out and "gaps:         none" in out
    )
    assert "Bureau of Meteorology" in out


def test_info_era5_multi_time(shared_data):
    result, out = _run(shared_data / "era5" / "era5-t2m-2019-03-uk.nc")
    assert result.exit_code == 0, out
    assert "t2m (2 metre temperature)" in out and "K (as read)" in out
    assert "33 x 49" in out and "0.25 x 0.25 degrees" in out and "latitude_longitude" in out
    assert "step:         1 h" in out and "frames:       744" in out
    assert "NaN fraction: 0.0 %" in out


def test_info_lists_gaps_and_nan_fraction(tmp_path):
    da = synthetic_rain(n_times=6, ny=10, nx=10, nan_fraction=0.25)
    write_synthetic_archive(tmp_path, one_file_per_time=True, data=da.isel(time=[0, 1, 3, 4, 5]))
    result, out = _run(tmp_path)
    assert result.exit_code == 0, out
    assert "gaps:         1: 2021-06-01 12:05 .. 2021-06-01 12:15 (10 min)" in out
    assert "NaN fraction: 25.0 %" in out
    assert "frames:       5" in out and "files:        5" in out


def test_info_bad_path_is_one_line_error(tmp_path):
    result, out = _run(tmp_path / "missing.nc")
    assert result.exit_code != 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "missing.nc" in lines[0]
    assert "Traceback" not in out


def test_info_missing_variable(shared_data):
    result, out = _run(shared_data / "radar" / "knmi-2010-08-26.nc", "--variable", "rain")
    assert result.exit_code == 1
    assert (
        out.strip().startswith("Error:") and "precipitation_rate" in out and "Traceback" not in out
    )


def test_info_describes_forecast_files(shared_data, tmp_path):
    src = shared_data / "radar" / "mch-2016-07-11.nc"
    out = tmp_path / "ex.zarr"
    res = CliRunner().invoke(
        main,
        ["predict", "--method", "persistence", "-i", str(src), "--start", "2016-07-11T21:30",
         "--end", "2016-07-11T22:00", "--every", "15min", "--leads", "4", "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["info", str(out)])
    assert res.exit_code == 0, res.output
    lines = dict(line.split(":", 1) for line in res.output.splitlines())
    assert lines["method"].strip() == "persistence"
    assert lines["issue times"].strip() == (
        "3: 2016-07-11 21:30 .. 2016-07-11 22:00 UTC, every 15 min"
    )
    assert lines["leads"].strip() == "4: 5 min .. 20 min, step 5 min"
    assert lines["valid times"].strip().startswith("10: 2016-07-11 21:35 .. 2016-07-11 22:20")
    assert "640 x 710 (y, x)" in lines["grid"] and "oblique_mercator" in lines["grid"]
    assert "latitude 43.62 .. 49.46" in lines["grid"]
    assert "MeteoSwiss" in lines["attribution"]
