"""The Lagrangian frame: cached training windows, the quantile loss, forecasting at any cadence,
and a tiny training run that learns more than extrapolation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from small_configs import small_config

from nowcast.archive import open_archive
from nowcast.config import ModelConfig, PreprocessConfig, load_config
from nowcast.errors import ConfigError, NowcastError
from nowcast.methods import ConvLSTMForecaster, forecast_many, get_method
from nowcast.motion import FlowOptions
from nowcast.trained.rundir import RunDir
from nowcast.trainset.lagrangian_windows import LagrangianStore, lagrangian_window
from nowcast.trainset.preprocess import Preprocessor


@pytest.fixture(scope="module")
def mch(shared_data):
    """A 128 x 128 crop of the real MeteoSwiss event with rain in it."""
    da = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    return da.isel(y=slice(200, 328), x=slice(250, 378)).load()


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A run directory holding an untrained Lagrangian model (t_in 4, t_out 3, 5 min)."""
    return _lagrangian_run(tmp_path_factory.mktemp("untrained"))


def _lagrangian_run(path, *, head_weights=None, **model):
    """A run directory holding a Lagrangian model (t_in 4, t_out 3, 5 min), untrained or with
    ``head_weights(shapes) -> weights`` for its output layer."""
    from nowcast.model import build_model

    run = RunDir(path)
    cfg = ModelConfig(filters=(4, 8), residual=True, head="skip", frame="lagrangian", **model)
    net = build_model(cfg, t_in=4, t_out=3)
    if head_weights is not None:
        head = net.get_layer("head")
        head.set_weights(head_weights([w.shape for w in head.get_weights()]))
    net.save(run.model)
    pre = Preprocessor.from_config(PreprocessConfig())
    pre.mean, pre.std = -2.0, 2.5
    run.write_metadata(
        {
            "t_in": 4,
            "t_out": 3,
            "time_step_seconds": 300.0,
            "units": "mm h-1",
            "variable": "precipitation_rate",
            "kind": "precipitation",
            "frame": "lagrangian",
            "flow": FlowOptions().to_dict(),
            "preprocessor": pre.to_dict(),
        }
    )
    return run.path


@pytest.mark.parametrize("every", [1, 2, 3])  # 5, 10 and 15 minutes
def test_untrained_lagrangian_model_is_extrapolation(mch, untrained, torch_single_thread, every):
    """Zero change in the Lagrangian frame = extrapolation, at the model's cadence and at
    others (inputs and leads interpolated in time in the Lagrangian frame), rolling past
    t_out (7 leads from a 3-lead model)."""
    archive = mch.isel(time=slice(0, None, every))
    issues = archive.time.values[4:6]
    ours = forecast_many(ConvLSTMForecaster(untrained), archive, issues, 7).values
    ref = forecast_many(get_method("extrapolation"), archive, issues, 7).values
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.isfinite(ref).mean() > 0.3 and np.nanmax(ref) > 5
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", [{"cell": "gru"}, {"cell": "fused", "peephole": True}])
def test_every_cell_forecasts_in_the_lagrangian_frame(mch, tmp_path, torch_single_thread, cell):
    """The ConvGRU and the peephole ConvLSTM behind the Lagrangian frame: with a non-zero
    head their change moves the forecast off extrapolation, on extrapolation's pixels."""
    rng = np.random.default_rng(0)
    run = _lagrangian_run(
        tmp_path,
        head_weights=lambda shapes: [0.5 * rng.normal(size=s).astype("float32") for s in shapes],
        **cell,
    )
    forecaster = ConvLSTMForecaster(run)
    encoder = forecaster.model.get_layer("encoder_1")
    assert type(encoder).__name__ == ("ConvGRU2D" if cell["cell"] == "gru" else "FusedConvLSTM2D")
    assert getattr(encoder, "peephole", False) == cell.get("peephole", False)
    issues = mch.time.values[4:5]
    ours = forecast_many(forecaster, mch, issues, 3).values
    ref = forecast_many(get_method("extrapolation"), mch, issues, 3).values
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours - ref)) > 0.1


def test_lagrangian_model_refuses_far_cadence(mch, untrained):
    hourly = mch.isel(time=slice(0, None, 12))  # 60 min: 12 times the training step
    with pytest.raises(NowcastError, match="takes inputs every 2.5 min to 15 min"):
        ConvLSTMForecaster(untrained).check_compatible(hourly)


def test_lagrangian_window_of_pure_translation():
    rng = np.random.default_rng(1)
    base = ndimage.gaussian_filter(rng.gamma(0.4, 5.0, (48, 64)), 2) * 4
    frames = np.stack([np.roll(base, 2 * k, axis=1) for k in range(7)])  # 2 px/step east
    window = lagrangian_window(frames, t_in=4, flow=FlowOptions(), units="mm h-1")
    inner = (slice(8, -8), slice(20, -20))
    for k in range(7):  # every frame brought to the issue time (frame 3)
        np.testing.assert_allclose(window[k][inner], frames[3][inner], atol=0.05 * base.max())


def test_members_moved_in_place_equal_members_moved_into_a_copy():
    """``advect_members(in_place=True)`` (what forecasting uses: one ensemble's memory
    less) gives the copy's values and NaN exactly, and as ``advect`` moves one field."""
    from nowcast.methods.lagrangian import LagrangianFrame

    rng = np.random.default_rng(2)
    base = ndimage.gaussian_filter(rng.gamma(0.4, 5.0, (40, 56)), 2) * 4
    frames = np.stack([np.roll(base, 2 * k, axis=1) for k in range(3)])
    frame = LagrangianFrame(frames, flow=FlowOptions(), units="mm h-1", n_steps=4)
    members = rng.gamma(0.5, 2.0, (3, 4, 40, 56)).astype(np.float32)
    copied = frame.advect_members(members)
    work = members.copy()
    moved = frame.advect_members(work, in_place=True)
    assert moved is work
    np.testing.assert_array_equal(moved, copied)
    np.testing.assert_array_equal(np.isnan(moved[0]), np.isnan(frame.advect(members[0])))


def _store(tmp_path, data, starts, **kw):
    return LagrangianStore(
        tmp_path / "cache", "mch", data, starts, t_in=3, t_out=2, flow=kw.pop("flow", FlowOptions())
    )


def test_store_builds_resumes_and_detects_stale(mch, tmp_path):
    data = mch.isel(time=slice(0, 12))
    store = _store(tmp_path, data, [0, 3, 6])
    assert store.build(workers=1) == 3
    assert store.missing() == [] and store.build() == 0  # second run: nothing recomputed
    w = store.read(3, 10, 20, 32, 40)
    ref = lagrangian_window(data.values[3:8], t_in=3, flow=FlowOptions(), units="mm h-1")
    np.testing.assert_array_equal(w, ref[:, 10:42, 20:60])
    # an interrupted build: window 6 not marked done is recomputed, the others are kept
    import zarr

    zarr.open_group(str(store.path), mode="r+")["done"][2] = False
    assert _store(tmp_path, data, [0, 3, 6]).build() == 1
    # another flow option is another store; the stale one is removed when it is built
    other = _store(tmp_path, data, [0, 3, 6], flow=FlowOptions(interp_order=3))
    assert other.path != store.path and other.missing() == [0, 1, 2]
    other.build()
    assert not store.path.exists() and other.path.exists()
    prov = dict(zarr.open_group(str(other.path), mode="r").attrs)["provenance"]
    assert prov["flow"]["interp_order"] == 3 and prov["starts"] == [0, 3, 6]


def test_quantile_loss_on_physical_values():
    import keras

    from nowcast.model import make_loss

    pre = Preprocessor.from_config(PreprocessConfig())
    pre.mean, pre.std = 0.0, 1.0
    enc = pre.to_dict()
    truth = np.full((1, 2, 3, 3, 1), 4.0, np.float32)
    fc = np.full((1, 2, 3, 3, 1), 2.0, np.float32)
    z = lambda r: pre.normalise_values(r)  # noqa: E731
    median = make_loss("quantile", encoding=enc)
    value = float(keras.ops.convert_to_numpy(median(z(truth), z(fc))))
    assert value == pytest.approx(0.5 * 2.0, rel=1e-4)  # half the absolute error, in mm/h
    high = make_loss("quantile", encoding=enc, quantile=(0.9, 0.9))
    under = float(keras.ops.convert_to_numpy(high(z(truth), z(fc))))
    over = float(keras.ops.convert_to_numpy(high(z(fc), z(truth))))
    assert under == pytest.approx(0.9 * 2.0, rel=1e-4) and over == pytest.approx(0.1 * 2.0, 1e-4)
    # lead_discount 1 on 2 leads: weights 1 and 1/2, scaled to mean 1 -> 4/3 and 2/3
    fc2 = fc.copy()
    fc2[:, 1] = 4.0  # only lead 1 is wrong
    disc = make_loss("quantile", encoding=enc, lead_discount=1.0)
    v = float(keras.ops.convert_to_numpy(disc(z(truth), z(fc2))))
    assert v == pytest.approx(0.5 * 2.0 * (4 / 3) / 2, rel=1e-4)


def test_lagrangian_config_rules():
    with pytest.raises(ConfigError, match="needs model.residual"):
        load_config(None, ["model.frame=lagrangian"])
    with pytest.raises(ConfigError, match="must be >= model.flow.frames"):
        load_config(None, ["model.frame=lagrangian", "model.residual=true", "sampler.t_in=2"])


def _lagrangian_cfg(archive, cache, *extra):
    return small_config(
        archive,
        cache,
        "sampler.patch_size=32",
        "sampler.batch_size=8",
        "model.filters=[8]",
        "model.downsample=2",
        "model.residual=true",
        "model.head=skip",
        "model.frame=lagrangian",
        "train.loss=quantile",
        "train.lr_schedule=constant",
        "train.learning_rate=0.005",
        "train.validation_steps=3",
        *extra,
    )


def test_lagrangian_training_learns_decay_beyond_extrapolation(tmp_path, torch_single_thread):
    """Cells that move and decay: extrapolation (zero change in the Lagrangian frame) keeps
    them; after a short training the model's validation loss is clearly below it, the
    cache is written once and reused by a second run, and the metadata describes the frame."""
    from nowcast.archive.synthetic import write_synthetic_archive
    from nowcast.training import train
    from nowcast.trainset.build import build_datasets

    archive = write_synthetic_archive(
        tmp_path / "decay.nc",
        n_times=60,
        ny=40,
        nx=40,
        seed=5,
        n_cells=6,
        velocity=(1.5, -1.0),
        cell_size=(2.5, 4.0),
        max_rate=20.0,
        lifetime=4.0,
    )[0]
    cache = tmp_path / "cache"
    cfg = _lagrangian_cfg(
        archive,
        cache,
        "train.epochs=4",
        "train.steps_per_epoch=15",
        "train.early_stopping_patience=9",
    )
    messages = []
    result = train(cfg, run_dir=tmp_path / "run", verbose=0, echo=messages.append)
    assert any("Lagrangian windows of decay: computing" in m for m in messages), messages
    datasets = build_datasets(cfg)  # second use: nothing recomputed
    assert all(store.missing() == [] for store in datasets.stores if store is not None)
    num = den = 0.0
    from nowcast.model import make_loss

    loss = make_loss("quantile", encoding=datasets.preprocessor.to_dict())
    for i in range(len(datasets.validation)):
        x, y, w = datasets.validation[i]
        zero = np.repeat(x[:, -1:], y.shape[1], axis=1)
        per_pixel = np.asarray(loss.call(y, zero))
        num += float((per_pixel * w).sum())
        den += float(w.sum())
    extrapolation_loss = num / den
    assert result.best_val_loss < 0.85 * extrapolation_loss, (
        result.best_val_loss,
        extrapolation_loss,
    )
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["frame"] == "lagrangian" and meta["flow"]["frames"] == 3
    fc = ConvLSTMForecaster(tmp_path / "run")
    da = open_archive(archive)
    out = forecast_many(fc, da, da.time.values[[10]], 4)
    assert out.shape == (1, 4, 40, 40) and np.isfinite(out.values).mean() > 0.5


def test_raw_opera_clutter_gives_finite_forecasts(
    shared_data, untrained, torch_single_thread, monkeypatch
):
    """The raw 15-minute OPERA composite (clutter up to ~8600 mm/h at 04:15, read with the
    input quality control off, as a user with NOWCAST_MAX_RAIN=inf gets it): every method,
    the Lagrangian model at 3x its training step included, gives finite values wherever
    extrapolation does, no inf, nothing above the largest input."""
    monkeypatch.setenv("NOWCAST_MAX_RAIN", "inf")
    da = open_archive(shared_data / "radar" / "opera-2018-08-24.nc")
    crop = da.isel(time=slice(13, 18), y=slice(440, 700), x=slice(650, 910)).load()
    assert float(crop.max()) > 5000  # the clutter is in the crop
    issue = crop.time.values[[-1]]
    ref = forecast_many(get_method("extrapolation"), crop, issue, 4).values
    for method in (get_method("sprog"), get_method("persistence"), ConvLSTMForecaster(untrained)):
        out = forecast_many(method, crop, issue, 4).values
        assert not np.isinf(out).any(), method.name
        assert np.isfinite(out[np.isfinite(ref)]).all(), method.name
        assert np.nanmax(out) <= float(crop.max()) * (1 + 1e-5), method.name


def test_fill_from_later_takes_each_gap_from_the_next_later_frame():
    from nowcast.methods.lagrangian import fill_from_later

    nan = np.nan
    inputs = np.array([[[nan, 1.0, nan]], [[nan, 2.0, 5.0]], [[3.0, 4.0, nan]]])
    out = fill_from_later(inputs)
    np.testing.assert_array_equal(out[:, 0, 0], [3.0, 3.0, 3.0])  # from the last frame
    np.testing.assert_array_equal(out[:, 0, 1], [1.0, 2.0, 4.0])  # values kept
    assert out[1, 0, 2] == 5.0 and out[0, 0, 2] == 5.0 and np.isnan(out[2, 0, 2])
    assert np.isnan(inputs[0, 0, 0])  # a copy


def test_the_past_at_an_upstream_edge_is_filled_with_the_later_rain(mch):
    """On the real crop the flow moves rain in over the edge: the past frames moved to the
    issue time have no value there; the network must see the later frames' rain there,
    not dry (which it reads as rain appearing from nothing: fast growth)."""
    from nowcast.methods.lagrangian import lagrangian_inputs

    pre = Preprocessor.from_config(PreprocessConfig())
    pre.mean, pre.std = -2.0, 2.5
    frames = mch.isel(time=slice(20, 24)).values
    x, aligned, _ = lagrangian_inputs(
        frames,
        encode=pre.normalise_values,
        fill_value=pre.fill_value,
        flow=FlowOptions(),
        units="mm h-1",
        t_in=4,
        ratio=1.0,
        n_leads=3,
    )
    last_wet = np.isfinite(aligned[-1]) & (aligned[-1] > pre.fill_value)
    gap = ~np.isfinite(aligned[0]) & last_wet  # past moved in from beyond the crop
    assert gap.sum() > 10  # the crop has such pixels
    later = aligned[1:][:, gap]  # (frames, pixels): the first finite one is the fill
    first = np.argmax(np.isfinite(later), axis=0)
    expected = later[first, np.arange(later.shape[1])]
    np.testing.assert_allclose(x[0, 0, ..., 0][gap], expected, rtol=1e-5)
    assert np.all(x[0, 0, ..., 0][gap] > pre.fill_value)  # not read as dry
