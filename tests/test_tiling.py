"""Tiled inference (nowcast.methods.tiling): the receptive field read off the model, tile
plans on the model's block grid, and tiled forecasts equal to untiled ones, edges included,
for tiny models of every cell and head and for the shipped radar model on a crop of FMI."""

from __future__ import annotations

import numpy as np
import pytest

from nowcast.archive.synthetic import synthetic_rain
from nowcast.config import ModelConfig
from nowcast.errors import NowcastError
from nowcast.methods import ConvLSTMForecaster
from nowcast.methods.tiling import (
    ReceptiveField,
    check_plan,
    choose_core,
    parse_tile,
    receptive_field,
    run_tiled,
    tile_plan,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")

#: (cell, head, downsample, downsample_mode, quantile levels)
TINY = [
    ("fused", "skip", 4, "space_to_depth", ()),
    ("stock", "dense", 2, "conv", ()),
    ("gru", "skip", 1, "space_to_depth", ()),
    ("fused", "skip", 3, "space_to_depth", (0.1, 0.5, 0.9)),
]


def tiny_model(cell="fused", head="skip", b=4, mode="space_to_depth", levels=(), t_in=3, t_out=2):
    import keras

    from nowcast.model import build_model

    keras.utils.set_random_seed(0)
    cfg = ModelConfig(
        filters=(4, 6),
        kernel_size=3,
        downsample=b,
        downsample_mode=mode,
        cell=cell,
        head=head,
        residual=True,
        quantiles=levels,
    )
    model = build_model(cfg, t_in=t_in, t_out=t_out)
    rng = np.random.default_rng(0)  # every weight random: the residual heads start at zero
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.3, size=tuple(weight.shape)).astype("float32"))
    return model


def model_block_start(start: int, stop: int, size: int, block: int) -> int:
    """Where the model puts its first block when it gets pixels ``start:stop`` (PadToMultiple
    pads ``pad // 2`` zeros before them)."""
    pad = (-(stop - start)) % block
    return start - pad // 2


@pytest.mark.parametrize("block", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("size", [5, 37, 64, 101, 250])
@pytest.mark.parametrize("core", [4, 16, 40])
def test_plans_cover_the_grid_on_its_block_grid(block, size, core):
    """Cores cover the grid once, each at least the radius from a cut edge, and every tile
    puts the model's blocks where the whole grid has them (padding as the whole grid at the
    domain edges)."""
    field = ReceptiveField(radius=7, block=block, bytes_per_pixel=1.0)
    plan = tile_plan((size, size + 3), core, field)
    check_plan(plan, (size, size + 3), field)
    for axis, n in enumerate((size, size + 3)):
        whole = model_block_start(0, n, n, block)
        pad = (-n) % block
        for tile in plan:
            r = tile.read[axis]
            assert (model_block_start(r.start, r.stop, n, block) - whole) % block == 0
            if r.stop == n:  # the last block holds as many zeros as the whole grid's
                tile_pad = (-(r.stop - r.start)) % block
                assert tile_pad - tile_pad // 2 == pad - pad // 2


def test_receptive_field_of_the_shipped_model():
    """Derived, not hard-coded: 2 ConvLSTM layers (kernel 3) over 4 input and 12 output
    steps reach 18 blocks of 4 pixels, 75 pixels upsampled, the skip head's 3 x 3 one more."""
    fc = ConvLSTMForecaster("radar-5min-deterministic")
    field = fc.receptive_field
    assert (field.radius, field.block, field.halo) == (76, 4, 76)
    assert 500 < field.bytes_per_pixel < 20_000
    assert fc.context_pixels(synthetic_rain(n_times=2, ny=8, nx=8)) == 76  # 1 km, as trained
    fine = synthetic_rain(n_times=2, ny=40, nx=40, spacing=500.0)  # 2 x 2 blocks of 20 x 20
    assert fc.context_pixels(fine) == 152
    # a longer forecaster reaches further: one pixel per step at the coarse grid, x 4
    longer = receptive_field(tiny_model(t_in=4, t_out=13, b=4))
    shorter = receptive_field(tiny_model(t_in=4, t_out=12, b=4))
    assert longer.radius - shorter.radius == 4


@pytest.mark.parametrize("spec", TINY, ids=lambda s: f"{s[0]}-{s[1]}-b{s[2]}-{s[3]}-q{len(s[4])}")
def test_tiled_equals_untiled_and_reach_within_the_radius(spec):
    """Tiny models of each cell and head: tiled = untiled everywhere (odd sizes: the blocks'
    phase), and an impulse changes the output no further away than the derived radius."""
    model = tiny_model(*spec)
    field = receptive_field(model)

    def net(x):
        return model.predict(x, verbose=0)

    n = 2 * field.radius + 9
    zero = np.zeros((1, 3, n, n, 1), np.float32)
    impulse = zero.copy()
    impulse[0, :, n // 2, n // 2] = 1.0
    changed = np.abs(net(impulse) - net(zero)).max(axis=(0, 1, 4)) > 0
    yy, xx = np.nonzero(changed)
    reach = max(np.abs(yy - n // 2).max(), np.abs(xx - n // 2).max())
    assert 0 < reach <= field.radius

    rng = np.random.default_rng(1)
    for shape in [(37, 45), (50, 61)]:
        x = rng.normal(size=(1, 3, *shape, 1)).astype(np.float32)
        whole = net(x)
        for core in (8, 24):
            plan = tile_plan(shape, core, field)
            assert len(plan) > 1
            np.testing.assert_allclose(run_tiled(net, x, plan), whole, rtol=1e-5, atol=2e-5)


def test_identical_tiles_are_computed_once():
    """A uniform field's interior tiles have the same inputs: one pass each, same result."""
    model = tiny_model("fused", "skip", 2)
    field = receptive_field(model)
    calls = []

    def net(x):
        calls.append(x.shape)
        return model.predict(x, verbose=0)

    x = np.full((1, 3, 160, 160, 1), 0.3, np.float32)
    plan = tile_plan((160, 160), 16, field)
    out = run_tiled(net, x, plan)
    assert len(calls) < len(plan)
    np.testing.assert_allclose(out, net(x), rtol=1e-5, atol=2e-5)


@pytest.fixture(scope="module")
def fmi(shared_data):
    """A 200 x 264 crop of the FMI composite (rain in it; the domain's edge on two sides)."""
    from nowcast.archive import open_archive

    da = open_archive(shared_data / "radar" / "fmi-2016-09-28.nc")
    return da.isel(time=slice(18, 24), y=slice(520, 720), x=slice(0, 264)).load()


def test_tiny_lagrangian_model_tiled_on_fmi(fmi):
    """The whole forecast route (flow, Lagrangian frame, rolling past t_out) with a tiny
    network, in 12 tiles of its halo's size (76 pixels), equals the untiled forecast."""
    model = tiny_model("fused", "skip", 4, t_in=4, t_out=12)
    tiled = ConvLSTMForecaster("radar-5min-deterministic", model_object=model, tile=76)
    whole = ConvLSTMForecaster("radar-5min-deterministic", model_object=model, tile="none")
    a = tiled.predict(fmi, 14).values  # two network passes (rolled)
    assert tiled.tiles_used == 12
    b = whole.predict(fmi, 14).values
    assert whole.tiles_used == 1
    assert np.isfinite(a).any()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, equal_nan=True)


@pytest.mark.slow
def test_shipped_model_tiled_on_fmi(fmi):
    """The shipped radar model on the FMI crop in tiles of its halo: the same forecast."""
    tiled = ConvLSTMForecaster("radar-5min-deterministic", tile=76)
    a = tiled.predict(fmi, 12).values
    assert tiled.tiles_used == 12
    b = ConvLSTMForecaster("radar-5min-deterministic", tile="none").predict(fmi, 12).values
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3, equal_nan=True)
    assert np.nanmax(a) > 1.0  # rain in the crop


def test_auto_tiles_large_grids_only():
    """Untiled when a pass fits the budget; else the layout whose largest pass fits and
    which computes the fewest pixels (strips on a narrow grid); never below the halo."""
    field = ReceptiveField(radius=76, block=4, bytes_per_pixel=3587.0)
    assert choose_core((640, 710), field, budget=2 * 2**30) is None
    for shape, budget in [((2200, 1900), 2**30), ((1226, 760), 2 * 2**30)]:
        core = choose_core(shape, field, budget=budget)
        assert core is not None and all(c % 4 == 0 for c in core)
        plan = tile_plan(shape, core, field)
        check_plan(plan, shape, field)
        largest = max((t.read[0].stop - t.read[0].start) * (t.read[1].stop - t.read[1].start)
                      for t in plan)  # fmt: skip
        assert largest * field.bytes_per_pixel <= budget
    assert choose_core((1226, 760), field, budget=2 * 2**30) == (616, 760)  # 2 strips
    assert choose_core((2200, 1900), field, budget=10) == (76, 76)  # never below the halo
    assert parse_tile("auto") == "auto" and parse_tile("None") == "none"
    assert parse_tile(" 512 ") == 512 and parse_tile(256) == 256


@pytest.mark.parametrize("bad", ["big", "0", "-5", "1.5", True])
def test_bad_tile_values(bad):
    with pytest.raises(NowcastError, match="tile: .* (is not auto, none|not a size)"):
        parse_tile(bad)


def test_tile_smaller_than_the_halo_is_refused():
    fc = ConvLSTMForecaster("radar-5min-deterministic", tile=32)
    with pytest.raises(NowcastError, match=r"32 pixels is smaller than .* halo \(76 pixels"):
        fc.check_tile()


@pytest.mark.parametrize("cell", ["fused", "gru"])
def test_a_trained_network_switched_to_the_other_layout_gives_the_same_output(cell):
    """A forecaster may run the recurrent layers in either layout whatever the model was
    saved with (``ConvLSTMForecaster(layout=...)``): same weights, same outputs to rounding."""
    from nowcast.model.recurrent import ConvRecurrent2D, set_layout

    model = tiny_model(cell=cell)
    x = np.random.default_rng(1).normal(size=(1, 3, 24, 20, 1)).astype("float32")
    before = np.asarray(model.predict(x, verbose=0))
    assert set_layout(model, "channels_first") == 4  # 2 encoder + 2 forecaster layers
    assert all(
        layer.layout == "channels_first"
        for layer in model.layers
        if isinstance(layer, ConvRecurrent2D)
    )
    after = np.asarray(model.predict(x, verbose=0))
    assert np.allclose(after, before, atol=1e-5)
    with pytest.raises(ValueError, match="layout"):
        set_layout(model, "channels_middle")
