"""Crop, coarsen, transforms and the Preprocessor (fit, encode/decode, serialisation)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast.config import PreprocessConfig
from nowcast.errors import ConfigError, DataError
from nowcast.trainset.preprocess import Preprocessor, coarsen, crop, forward, inverse


def make_archive(values: np.ndarray, *, spacing: float = 1000.0) -> xr.DataArray:
    """A tiny archive in the project convention (time, y, x; y ascending; crs coord; dask)."""
    nt, ny, nx = values.shape
    da = xr.DataArray(
        values.astype("float32"),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2021-07-04", periods=nt, freq="5min"),
            "y": np.arange(ny) * spacing,
            "x": np.arange(nx) * spacing,
            "crs": xr.DataArray(0, attrs={"grid_mapping_name": "transverse_mercator"}),
        },
        name="precipitation_rate",
        attrs={"units": "mm h-1", "grid_mapping": "crs"},
    )
    return da.chunk({"time": 1})


# --------------------------------------------------------------------------- crop / coarsen


def test_crop_selects_cells_inside_native_range_lazily():
    da = make_archive(np.arange(2 * 6 * 10, dtype="float32").reshape(2, 6, 10))
    out = crop(da, x=(2000, 4500), y=(1000, 2000))
    assert out.chunks is not None  # still lazy
    assert out["x"].values.tolist() == [2000, 3000, 4000]
    assert out["y"].values.tolist() == [1000, 2000]
    np.testing.assert_array_equal(out.values, da.values[:, 1:3, 2:5])
    assert "crs" in out.coords and out.attrs["units"] == "mm h-1"


@pytest.mark.parametrize(
    "kwargs", [{"x": (20_000, 30_000)}, {"y": (-5000, -1000)}, {"x": (2100, 2900)}]
)
def test_crop_outside_or_empty_is_a_data_error(kwargs):
    da = make_archive(np.zeros((1, 6, 10)))
    with pytest.raises(DataError, match="selects nothing"):
        crop(da, **kwargs)


def test_coarsen_nan_aware_hand_worked_4x4():
    nan = np.nan
    frame = np.array(
        [
            [1, nan, 3, 3],
            [nan, nan, 3, 5],
            [nan, nan, 0, nan],
            [nan, nan, 2, nan],
        ],
        dtype="float32",
    )
    da = make_archive(np.stack([frame, frame * 2]))
    out = coarsen(da, 2)
    assert out.chunks is not None
    # blocks: top-left {1} -> 1; top-right {3,3,3,5} -> 3.5; bottom-left all NaN -> NaN;
    # bottom-right {0,2} -> 1
    expected = np.array([[1.0, 3.5], [nan, 1.0]], dtype="float32")
    np.testing.assert_array_equal(out.values[0], expected)
    np.testing.assert_array_equal(out.values[1], expected * 2)
    assert out.dtype == np.float32
    assert out["x"].values.tolist() == [500.0, 2500.0]  # block centres
    assert out.attrs["units"] == "mm h-1" and "crs" in out.coords


def test_coarsen_trims_the_partial_block():
    da = make_archive(np.ones((1, 5, 7)))
    assert coarsen(da, 2).shape == (1, 2, 3)
    assert coarsen(da, 1) is da


# --------------------------------------------------------------------------- transforms


def test_log_and_dbr_round_trip_and_clamp():
    rates = np.array([0.0, 0.05, 0.1, 1.0, 10.0, 150.0, np.nan], dtype="float32")
    z = forward(rates, transform="log", log_offset=0.01)
    assert z[0] == pytest.approx(math.log(0.01))
    back = inverse(z, transform="log", log_offset=0.01)
    np.testing.assert_allclose(back[:-1], rates[:-1], rtol=1e-5, atol=1e-6)
    assert np.isnan(back[-1])
    assert (
        inverse(np.array([math.log(0.01) - 1.0]), transform="log", log_offset=0.01)[0] == 0.0
    )  # clamp

    db = forward(rates, transform="dbr", dbr_floor=0.1)
    np.testing.assert_allclose(db[:6], [-10, -10, -10, 0, 10, 10 * math.log10(150)], rtol=1e-6)
    assert np.isnan(db[-1])
    back = inverse(db, transform="dbr", dbr_floor=0.1)
    np.testing.assert_allclose(
        back[:6], [0, 0, 0, 1, 10, 150], rtol=1e-5
    )  # at/below floor -> no rain

    temps = np.array([270.5, 280.0], dtype="float32")
    for name in ("zscore", "none"):
        np.testing.assert_array_equal(
            inverse(forward(temps, transform=name), transform=name), temps
        )


def test_transforms_work_lazily_on_dataarrays():
    da = make_archive(np.full((2, 3, 3), 9.99))
    out = forward(da, transform="log", log_offset=0.01)
    assert out.chunks is not None
    np.testing.assert_allclose(out.values, math.log(10.0), rtol=1e-6)


# --------------------------------------------------------------------------- Preprocessor


def test_fit_statistics_hand_computed_one_compute(monkeypatch):
    import dask

    frame = np.array([[1.0, 3.0], [np.nan, 3.0]], dtype="float32")  # NaN ignored
    arrays = [make_archive(np.stack([frame, frame])), make_archive(np.full((1, 2, 2), 1.0))]
    calls = []
    real = dask.compute
    monkeypatch.setattr(dask, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    pre = Preprocessor.fit(
        arrays, PreprocessConfig(transform="log", log_offset=0.01), kind="precipitation"
    )
    assert len(calls) == 1
    values = np.log(np.array([1.01] * 2 + [3.01] * 4 + [1.01] * 4))  # 6 valid + 4 valid
    assert pre.mean == pytest.approx(values.mean(), rel=1e-6)
    assert pre.std == pytest.approx(values.std(), rel=1e-6)
    # fill value: normalised log(0 + offset)
    assert pre.fill_value == pytest.approx((math.log(0.01) - pre.mean) / pre.std, rel=1e-6)


def test_encode_decode_mask_and_fill():
    pre = Preprocessor.from_config(PreprocessConfig(transform="log"), kind="precipitation")
    pre.mean, pre.std = -2.0, 2.0
    pre.fill_value = pre._fill()
    rates = np.array([[0.0, np.nan], [5.0, 0.5]], dtype="float32")
    z, mask = pre.encode(rates)
    assert z.dtype == np.float32 and mask.dtype == np.float32
    np.testing.assert_array_equal(mask, [[1, 0], [1, 1]])
    assert z[0, 1] == pytest.approx(pre.fill_value)
    assert z[1, 0] == pytest.approx((math.log(5.01) + 2.0) / 2.0, rel=1e-6)
    back = pre.decode(z)
    np.testing.assert_allclose(back[mask == 1], rates[mask == 1], rtol=1e-5, atol=1e-6)
    assert back[0, 1] == pytest.approx(0.0, abs=1e-6)  # the fill decodes to 0 mm/h


def test_temperature_zscore_fill_is_mean():
    arrays = [make_archive(np.array([[[270.0, 280.0]]]))]
    pre = Preprocessor.fit(
        arrays, PreprocessConfig(transform="zscore", normalise=False), kind="temperature"
    )
    assert pre.normalise  # zscore always normalises
    assert (pre.mean, pre.std) == pytest.approx((275.0, 5.0))
    assert pre.fill_value == 0.0
    z, mask = pre.encode(np.array([285.0, np.nan], dtype="float32"))
    np.testing.assert_allclose(z, [2.0, 0.0])
    np.testing.assert_array_equal(mask, [1, 0])
    with pytest.raises(ConfigError, match="zscore"):
        Preprocessor.from_config(PreprocessConfig(transform="log"), kind="temperature")


def test_prepare_crops_then_coarsens():
    da = make_archive(np.arange(1 * 8 * 8, dtype="float32").reshape(1, 8, 8))
    pre = Preprocessor.from_config(
        PreprocessConfig(crop_x=(2000, 5000), crop_y=(0, 3000), coarsen=2)
    )
    out = pre.prepare(da)
    assert out.shape == (1, 2, 2)
    np.testing.assert_allclose(
        out.values[0], da.values[0, 0:4, 2:6].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    )


def test_serialisation_round_trip(tmp_path):
    pre = Preprocessor.from_config(PreprocessConfig(transform="dbr", crop_x=(1.0, 5.0), coarsen=2))
    pre.mean, pre.std = 1.5, 3.25
    data = pre.to_dict()
    assert Preprocessor.from_dict(json.loads(json.dumps(data))) == pre
    path = tmp_path / "pre.json"
    pre.save(path)
    assert Preprocessor.load(path) == pre
    assert [p.name for p in tmp_path.iterdir()] == ["pre.json"]  # no temp file left
    with pytest.raises(ConfigError, match="unknown keys"):
        Preprocessor.from_dict({**data, "bogus": 1})
    with pytest.raises(DataError, match="not found"):
        Preprocessor.load(tmp_path / "missing.json")


def test_encode_never_modifies_its_input():
    pre = Preprocessor.from_config(PreprocessConfig(transform="none", normalise=False))
    values = np.array([1.0, np.nan], dtype="float32")
    z, mask = pre.encode(values)
    assert np.isnan(values[1]) and z[1] == pre.fill_value == 0.0
    np.testing.assert_array_equal(mask, [1, 0])


@pytest.mark.parametrize("transform", ["log", "dbr", "zscore", "none"])
def test_normalise_into_a_batch_slot_equals_forward_then_normalise(transform):
    """``normalise_values(out=...)`` gives forward()'s values, normalised, bit for bit."""
    kind = "temperature" if transform == "zscore" else "precipitation"
    pre = Preprocessor.from_config(PreprocessConfig(transform=transform), kind=kind)
    pre.mean, pre.std = -1.5, 2.5
    rates = np.random.default_rng(0).gamma(0.3, 2.0, (3, 8, 8)).astype("float32")
    rates[0, :2] = np.nan
    expected = np.asarray(pre.forward(rates), dtype="float32").copy()
    if pre.normalise:
        expected = (expected - np.float32(pre.mean)) * np.float32(1.0 / pre.std)
    slot = np.full((2, 3, 8, 8), 7.0, dtype="float32")
    got = pre.normalise_values(rates[:, ::-1], out=slot[1, :, ::-1])  # strided views too
    assert np.shares_memory(got, slot)
    np.testing.assert_array_equal(slot[1], expected)
    np.testing.assert_array_equal(slot[0], 7.0)  # nothing outside the slot
    np.testing.assert_array_equal(pre.normalise_values(rates), expected)
    assert np.isnan(rates[0, 0]).all()  # the input is untouched
