"""`nowcast demo` end to end (shortened training), as the README's main command runs it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
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
    for method in ("convlstm", "persistence", "extrapolation", "sprog"):
        assert (workdir / "forecasts" / f"{method}.nc").exists()
    scores = pd.read_csv(workdir / "report" / "scores.csv")
    assert set(scores["method"]) == {"convlstm", "persistence", "extrapolation", "sprog"}
    gif = Image.open(workdir / "maps" / "convlstm.gif")
    assert gif.n_frames == 6  # one frame per lead (t_out = 6)
    assert "Done in" in output and "MAE (mm h-1)\n    lead     n  convlstm" in output


@pytest.mark.slow
def test_demo_forecasts_share_the_grid_and_issue_times(demo_run):
    from nowcast.products import read_forecast

    workdir, _ = demo_run
    fcs = [
        read_forecast(workdir / "forecasts" / f"{m}.nc")
        for m in ("convlstm", "persistence", "extrapolation", "sprog")
    ]
    for fc in fcs[1:]:
        assert fc.shape == fcs[0].shape
        assert (fc.issue_time.values == fcs[0].issue_time.values).all()
    assert fcs[0].sizes["lead_time"] == 6


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
