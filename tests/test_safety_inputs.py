"""Bad input (issue 11): right times, no empty forecasts, errors a user can act on.

Real files from ../shared/data, copied (or rewritten) into tmp_path; every error is one
``Error: ...`` line, exit 1, no traceback, no output file, inputs unchanged.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from safety_helpers import ISSUE, ROOT, cli, listing, md5s, one_line_error, predict

from nowcast.errors import NowcastError

SHIPPED = ROOT / "nowcast" / "pretrained" / "radar-5min"


@pytest.fixture
def mch(tmp_path, shared_data) -> Path:
    target = tmp_path / "mch.nc"
    shutil.copyfile(shared_data / "radar" / "mch-2016-07-11.nc", target)
    return target


# --------------------------------------------------------------------------- 2. time zones


def test_issue_time_offsets_are_converted_to_utc(tmp_path, mch):
    from nowcast.products import read_forecast

    out = tmp_path / "fc.nc"
    res = predict(mch, out, "--method", "persistence", "--issue-time", "2016-07-11T23:30+02:00")
    assert res.exit_code == 0, res.output
    assert read_forecast(out).issue_time.values[0] == np.datetime64("2016-07-11T21:30")
    assert "(UTC)" in cli("predict", "--help").output


# --------------------------------------------------------------------------- 3. outages


@pytest.fixture
def outage(tmp_path, mch) -> Path:
    """The MeteoSwiss event with the 21:30 frame all NaN (a radar outage)."""
    ds = xr.open_dataset(mch).load()
    ds["precipitation_rate"].loc[{"time": "2016-07-11T21:30"}] = np.nan
    ds.close()
    ds.to_netcdf(tmp_path / "outage.nc")
    return tmp_path / "outage.nc"


@pytest.mark.parametrize("method", ["persistence", "extrapolation", "sprog", "steps", "convlstm"])
def test_all_missing_input_frames_are_an_error_naming_the_issue_time(tmp_path, outage, method):
    from nowcast.methods import available_methods

    assert method in available_methods()
    args = ["--model", "radar-5min"] if method == "convlstm" else ["--method", method]
    before = md5s(tmp_path)
    res = predict(outage, tmp_path / "fc.nc", *args, "--issue-time", ISSUE)
    one_line_error(res, "issue time 2016-07-11 21:30", "hold no data")
    assert md5s(tmp_path) == before


def test_every_registered_method_is_covered_above():
    from nowcast.methods import available_methods

    covered = {"persistence", "extrapolation", "sprog", "steps", "convlstm"}
    assert set(available_methods()) <= covered


def test_batch_reports_an_outage_as_a_failed_issue_time(tmp_path, outage):
    from nowcast.config import BatchConfig, BatchRenderConfig
    from pipelines.catalog import build_catalog
    from pipelines.runner import signature
    from pipelines.tasks import IssueTask, run_issue_time

    cfg = BatchConfig(
        inputs=(str(outage),),
        output=str(tmp_path / "out"),
        methods=("persistence",),
        n_leads=2,
        render=BatchRenderConfig(enabled=False),
    ).validate()
    cat = build_catalog(cfg.inputs, variable=None, kind="precipitation")
    task = IssueTask(
        issue_time=pd.Timestamp(ISSUE),
        sources=cat.sources,
        stamps=cat.stamps,
        variable=None,
        kind="precipitation",
        methods=cfg.methods,
        model=None,
        n_leads=2,
        output=cfg.output,
        signature=signature(cfg),
        render=None,
    )
    res = run_issue_time(task)
    assert res.status == "failed" and "issue time 2016-07-11 21:30" in res.error
    assert "hold no data" in res.error and not (tmp_path / "out" / "manifests").exists()


def test_a_forecast_with_leads_of_no_value_says_so_in_one_warning(tmp_path, shared_data):
    """A 41 x 37-pixel crop of BOM's radar at 06:30 (fast motion): every pixel's rain at +20
    min comes from beyond the crop, so extrapolation holds no value there; the file is
    written (NaN is "unknown") with one warning naming the issue time and the leads. The
    whole grid gets no such warning."""
    from nowcast.archive import open_archive

    files = sorted((shared_data / "radar" / "bom-66-2020-10-31").glob("66_20201031_0[56]*.nc"))
    archive = open_archive(files)
    crop = archive.sel(x=slice(-2750.0, 15250.0), y=slice(-27750.0, -7750.0))
    assert crop.sizes["x"] == 37 and crop.sizes["y"] == 41
    crop.to_dataset(name="precipitation").to_netcdf(tmp_path / "crop.nc")
    args = ("--method", "extrapolation", "--issue-time", "2020-10-31T06:30", "--leads", "3")
    res = predict(tmp_path / "crop.nc", tmp_path / "fc.nc", *args)
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("Warning:")]
    assert warning == [
        "Warning: issue time 2020-10-31 06:30: no value at lead(s) 20, 30 min, every pixel "
        "NaN: the rain there would come from beyond the grid; forecast a larger domain (or a "
        "--region with more context)"
    ]
    with xr.open_dataset(tmp_path / "fc.nc") as ds:
        fc = ds["precipitation"].values
    assert np.isfinite(fc[0, 0]).any() and not np.isfinite(fc[0, 1:]).any()

    res = predict(files[-1].parent, tmp_path / "whole.nc", *args)
    assert res.exit_code == 0 and "Warning" not in res.output, res.output


# --------------------------------------------------------------------------- 5. model files


def _model_dir(tmp_path, name, *, model=None, metadata=None, keep_metadata=True) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copyfile(SHIPPED / "model.keras", folder / "model.keras")
    if keep_metadata:
        shutil.copyfile(SHIPPED / "metadata.json", folder / "metadata.json")
    if model is not None:
        (folder / "model.keras").write_bytes(model)
    if metadata is not None:
        (folder / "metadata.json").write_text(metadata)
    return folder


def _zip_without_config(tmp_path) -> bytes:
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("readme.txt", "not a model")
    return (tmp_path / "z.zip").read_bytes()


@pytest.mark.parametrize(
    "case, message",
    [
        ("no-metadata", "has no metadata.json beside it"),
        ("empty", "model.keras is empty; it should be a Keras model"),
        ("junk", "model.keras is not a zip archive (5 bytes)"),
        ("foreign-zip", "cannot load model file"),
        ("bad-json", "metadata.json is not valid JSON (line 1, column 2"),
        ("incomplete-json", "metadata.json has no valid 't_out'"),
    ],
)
def test_bad_model_files_say_which_file_is_wrong(tmp_path, mch, case, message):
    kwargs = {
        "no-metadata": {"keep_metadata": False},
        "empty": {"model": b""},
        "junk": {"model": b"junk\n"},
        "foreign-zip": {"model": _zip_without_config(tmp_path)},
        "bad-json": {"metadata": "{bad"},
        "incomplete-json": {"metadata": json.dumps({"t_in": 6})},
    }[case]
    folder = _model_dir(tmp_path, case, **kwargs)
    before = md5s(tmp_path)
    res = predict(mch, tmp_path / "fc.nc", "--model", folder / "model.keras", "--issue-time", ISSUE)
    line = one_line_error(res, message, str(folder))
    assert "Traceback" not in line and md5s(tmp_path) == before


def test_a_model_file_of_another_name_is_the_one_loaded(tmp_path, mch):
    folder = _model_dir(tmp_path, "run")
    (folder / "model.keras").rename(folder / "best.keras")
    res = predict(mch, tmp_path / "fc.nc", "--model", folder / "best.keras", "--issue-time", ISSUE)
    assert res.exit_code == 0, res.output


# --------------------------------------------------------------------------- 6. configs


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nmodel:\n  filters: [4\n", "line 4, column 1: expected ',' or ']'"),
        ("name: x\nname: y\n", "line 2: key 'name' is given twice (first on line 1)"),
        ("model: {filters: [4], filters: [8]}\n", "line 1: key 'filters' is given twice"),
        (
            'name: !!python/object/apply:os.system ["true"]\n',
            "line 1, column 7: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system' (only plain YAML is read: no "
            "!!python or other tags)",
        ),
    ],
)
def test_config_errors_keep_line_and_column(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    for command in ("train", "batch"):
        one_line_error(cli(command, path), f"{path}: not valid YAML: {message}")


def test_a_netcdf_file_given_as_config(tmp_path, mch):
    for command in ("train", "batch"):
        one_line_error(cli(command, mch), f"{mch} is not a text file: a config is YAML text")


def test_set_values_are_strict_yaml_too(tmp_path):
    res = cli("train", SHIPPED / "config.yaml", "--set", "model.filters={a: 1, a: 2}")
    one_line_error(res, "--set", "key 'a' is given twice")


# --------------------------------------------------------------------------- 7. sizes, times


def test_an_oversized_forecast_is_refused_before_computing(tmp_path, mch):
    res = predict(
        mch,
        tmp_path / "fc.nc",
        "--method",
        "persistence",
        "--leads",
        "100000",
        "--issue-time",
        ISSUE,
    )
    line = one_line_error(res, "100000 leads x 640 x 710", "169.3 GiB")
    assert "memory available" in line and listing(tmp_path) == ["mch.nc"]


def test_issue_times_are_sorted_and_a_repeat_is_forecast_once(tmp_path, mch):
    from nowcast.archive import open_archive
    from nowcast.methods import get_method
    from nowcast.methods.run import forecast_many
    from nowcast.products import read_forecast

    out = tmp_path / "fc.nc"
    times = ["2016-07-11T21:45", ISSUE, "2016-07-11T23:30+02:00"]  # the last one is ISSUE too
    args = [a for t in times for a in ("--issue-time", t)]
    res = predict(mch, out, "--method", "persistence", "--leads", "1", *args)
    assert res.exit_code == 0, res.output
    got = pd.DatetimeIndex(read_forecast(out).issue_time.values)
    assert list(got) == [pd.Timestamp(ISSUE), pd.Timestamp("2016-07-11T21:45")]
    with pytest.raises(NowcastError, match="given more than once"):  # the library refuses
        forecast_many(get_method("persistence"), open_archive(mch), [ISSUE, times[2]], 1)


# --------------------------------------------------------------------------- 9. truncated files


def test_truncated_netcdf3_says_truncated(tmp_path, shared_data):
    ds = xr.open_dataset(shared_data / "era5" / "era5-t2m-2019-03-uk.nc")
    ds.to_netcdf(tmp_path / "full.nc", format="NETCDF3_64BIT")
    data = (tmp_path / "full.nc").read_bytes()
    for name, size in (("header.nc", 2000), ("half.nc", len(data) // 2)):
        (tmp_path / name).write_bytes(data[:size])
        for command in (
            ["info", tmp_path / name],
            ["convert", tmp_path / name, "-o", tmp_path / "x.zarr"],
        ):
            one_line_error(cli(*command), f"{tmp_path / name}: truncated or unreadable NetCDF-3")
    res = cli("info", tmp_path / "full.nc")  # the whole file still reads
    assert res.exit_code == 0, res.output


# --------------------------------------------------------------------------- 10. map data


@pytest.fixture
def small_forecast(tmp_path, mch) -> Path:
    out = tmp_path / "fc.nc"
    res = predict(mch, out, "--method", "persistence", "--leads", "1", "--issue-time", ISSUE)
    assert res.exit_code == 0, res.output
    return out


def test_explicit_map_data_must_hold_map_data(tmp_path, small_forecast):
    (tmp_path / "empty").mkdir()
    for folder, state in (
        (tmp_path / "nonexistent", "is not a folder"),
        (tmp_path / "empty", "holds no coastline shapefiles"),
    ):
        res = cli("render", small_forecast, "--map-data", folder, "-o", tmp_path / "maps")
        one_line_error(res, f"map data {folder} {state}")
        assert not (tmp_path / "maps").exists()


def test_without_map_data_the_fallback_says_so_once(tmp_path, small_forecast, monkeypatch):
    import cartopy

    monkeypatch.setenv("NOWCAST_MAP_DATA", str(tmp_path / "no-maps-here"))
    monkeypatch.setattr("nowcast.render.mapdata.SYSTEM_DIRS", ())
    for key in ("pre_existing_data_dir", "data_dir"):
        monkeypatch.setitem(cartopy.config, key, "")
    res = cli("render", small_forecast, "-o", tmp_path / "maps", "--gif")
    assert res.exit_code == 0, res.output
    said = [line for line in res.output.splitlines() if "coastline" in line]
    assert len(said) == 1 and said[0].startswith("map data: none found (searched: "), said
    assert len(list((tmp_path / "maps").iterdir())) == 3  # the map, the GIF and the page
