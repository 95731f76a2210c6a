"""`nowcast demo` end to end (shortened training), as the README's main command runs it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from PIL import Image

from nowcast.cli import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, shared_data):
    workdir = tmp_path_factory.mktemp("demo")
    args = [
        "demo",
        "--workdir",
        str(workdir),
        "--map-data",
        str(shared_data / "maps"),
        "--set",
        "train.epochs=2",
        "--set",
        "train.steps_per_epoch=4",
        "--set",
        "train.validation_steps=2",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return workdir, result.output


PRODUCTS = ("archive", "model", "history", "forecast", "report", "map", "animation")


METHODS = ("tiny-convlstm", "radar-5min", "persistence", "extrapolation", "sprog")


@pytest.mark.slow
def test_demo_writes_every_product(demo_run):
    workdir, output = demo_run
    seen = set()
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in PRODUCTS:
            assert Path(parts[1]).exists(), line
            seen.add(parts[0])
    assert seen == set(PRODUCTS), f"products listed: {sorted(seen)}"
    for method in METHODS:
        assert (workdir / "forecasts" / f"{method}.nc").exists()
    scores = pd.read_csv(workdir / "report" / "scores.csv")
    assert set(scores["method"]) == set(METHODS)  # the shipped model beside the demo's own
    gif = Image.open(workdir / "maps" / "radar-5min.gif")  # named by the model, not convlstm
    assert gif.n_frames == 6  # one frame per lead (t_out = 6)
    maps = sorted(p.name for p in (workdir / "maps").glob("*.png"))
    assert maps[0].startswith("precipitation_rate_radar-5min_") and len(maps) == 6
    assert "Done in" in output
    assert "MAE (mm h-1)\n    lead     n  tiny-convlstm  radar-5min  persistence" in output


@pytest.mark.slow
def test_demo_explains_its_scores_and_draws_coastlines(demo_run):
    """The table is followed by what it means (per learned model, against extrapolation, and
    where the real-radar scores are), and the maps have coastlines to draw."""
    _, output = demo_run
    assert "map data: coastlines, lakes, borders from Natural Earth 10m" in output
    for name in ("tiny-convlstm", "radar-5min"):
        assert f"{name} beats extrapolation on MAE at " in output
    assert "not how it does on real radar: for that see docs/skill.md" in output
    assert "left out" not in output


@pytest.mark.slow
def test_demo_forecasts_share_the_grid_and_issue_times(demo_run):
    from nowcast.products import read_forecast
    from nowcast.trained.rundir import RunDir

    workdir, _ = demo_run
    fcs = [read_forecast(workdir / "forecasts" / f"{m}.nc") for m in METHODS]
    for fc in fcs[1:]:
        assert fc.shape == fcs[0].shape
        assert (fc.issue_time.values == fcs[0].issue_time.values).all()
    assert fcs[0].sizes["lead_time"] == 6
    assert fcs[0].attrs["nowcast_model"] == "tiny-convlstm"
    assert RunDir(workdir / "tiny-convlstm").read_metadata()["frame"] == "lagrangian"
    with xr.open_dataset(workdir / "forecasts" / "tiny-convlstm.nc") as ds:
        lat, lon = float(ds.latitude.mean()), float(ds.longitude.mean())
    assert abs(lat - 51.35) < 0.05 and abs(lon - 3.6) < 0.05  # the Belgian-Dutch coast


def test_demo_config_is_lagrangian_on_evolving_cells(tmp_path):
    from nowcast.demo import demo_config

    cfg = demo_config([], workdir=tmp_path)
    assert cfg.model.frame == "lagrangian" and cfg.model.residual
    assert cfg.data.synthetic.cells == "evolving"
    assert cfg.data.cache_dir == str(tmp_path.resolve() / "cache")  # not the user's cache
    assert demo_config([], ["data.cache_dir=/elsewhere"], workdir=tmp_path).data.cache_dir == (
        "/elsewhere"
    )


def test_demo_bad_input_is_one_line(tmp_path):
    result = CliRunner().invoke(
        main, ["demo", "--workdir", str(tmp_path / "w"), "--input", str(tmp_path / "missing.nc")]
    )
    assert result.exit_code == 1
    assert (
        result.output.startswith("[1/6]")
        and "Error:" in result.output
        and "Traceback" not in result.output
    )
