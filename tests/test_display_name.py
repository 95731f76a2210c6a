"""A forecast made with a trained model goes by the model's name (issue 23): titles, map and
GIF file names, point-series legends and score tables say ``radar-5min``, not ``convlstm``."""

from __future__ import annotations

import pandas as pd
import pytest

from nowcast.archive.synthetic import synthetic_rain
from nowcast.conventions import display_name, method_name
from nowcast.methods import forecast_and_write, get_method
from nowcast.products import read_forecast


def test_display_name_is_the_model_else_the_method():
    model = {"nowcast_method": "convlstm", "nowcast_model": "radar-5min"}
    assert display_name(model) == "radar-5min"
    assert display_name(model, with_method=True) == "radar-5min (convlstm)"
    assert display_name({"nowcast_method": "sprog"}, with_method=True) == "sprog"
    assert display_name({}) == "forecast"


class _Model:
    """Persistence dressed as a trained model: its files say ``nowcast_model``."""

    def __init__(self):
        self._inner = get_method("persistence")
        self.name, self.t_in = "convlstm", 1

    def __getattr__(self, key):
        return getattr(self._inner, key)

    def describe(self):
        return {"model": "radar-5min"}


@pytest.fixture(scope="module")
def model_forecast(tmp_path_factory):
    archive = synthetic_rain(n_times=4, ny=24, nx=24, seed=1)
    path = tmp_path_factory.mktemp("named") / "fc.nc"
    fc, _ = forecast_and_write(_Model(), archive, [pd.Timestamp(archive.time.values[-2])], 1, path)
    return archive, fc, path


def test_forecast_files_and_tables_name_the_model(model_forecast):
    from nowcast.verify import evaluate
    from nowcast.verify.scores import load_forecasts

    archive, fc, path = model_forecast
    assert display_name(fc.attrs) == "radar-5min"  # the forecast as returned ...
    assert method_name(read_forecast(path)) == "radar-5min"  # ... and read back
    forecasts = load_forecasts([path])
    assert list(forecasts) == ["radar-5min"]
    scores = evaluate(forecasts, archive, thresholds=(1.0,), scales=(1,))
    assert set(scores["method"]) == {"radar-5min"}


def test_maps_name_the_model_in_file_and_title(model_forecast, tmp_path, monkeypatch):
    from nowcast.render import RenderOptions, render_forecast
    from nowcast.render import maps as maps_module

    _, _, path = model_forecast
    titles = []
    real = maps_module.title_name
    monkeypatch.setattr(
        maps_module, "title_name", lambda prep: titles.append(real(prep)) or real(prep)
    )
    made = render_forecast(read_forecast(path), outdir=tmp_path, options=RenderOptions(dpi=40))
    assert [p.name for p in made] == ["precipitation_rate_radar-5min_20210601T1210_lead005.png"]
    assert titles and set(titles) == {"radar-5min, convlstm"}  # "nowcast (radar-5min, convlstm)"
