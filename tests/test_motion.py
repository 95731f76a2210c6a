"""The shared motion module (flow options, displacements, warps, Lagrangian alignment) and sprog."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nowcast.archive import open_archive
from nowcast.errors import NowcastError
from nowcast.methods import get_method
from nowcast.motion import (
    FlowOptions,
    advect,
    advect_each,
    align_future,
    align_past,
    displacements,
    import_pysteps,
    warp,
)


@pytest.fixture(scope="module")
def mch(shared_data):
    """Four real MeteoSwiss frames (a 256 x 256 crop with rain) and their LK motion."""
    archive = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    past = archive.isel(time=slice(16, 20), y=slice(200, 456), x=slice(250, 506)).load()
    velocity = FlowOptions().velocity(past.values, past.attrs["units"])
    return past, velocity


@pytest.mark.parametrize("order", [0, 1, 3])
def test_advect_is_pysteps_semilagrangian_bit_for_bit(mch, order):
    past, velocity = mch
    last = past.values[-1].astype(float)
    assert np.abs(velocity).max() > 0.5  # a real motion, not the zero shortcut
    _, extrapolation = import_pysteps()
    ref = extrapolation.semilagrangian.extrapolate(
        last, velocity, 6, outval=np.nan, allow_nonfinite_values=True, interp_order=order
    )
    ours = advect(last, velocity, 6, interp_order=order)
    np.testing.assert_array_equal(ours, ref)  # NaN in the same places, equal values


def test_advect_each_moves_field_j_by_j_plus_one_steps(mch):
    past, velocity = mch
    fields = past.values[-3:].astype(float)
    out = advect_each(fields, velocity)
    for j in range(3):
        np.testing.assert_array_equal(out[j], advect(fields[j], velocity, j + 1)[-1])


def test_given_displacements_are_the_computed_ones(mch):
    """The Lagrangian forecast computes the trajectories once for the past and the leads."""
    past, velocity = mch
    frames = past.values[-3:].astype(float)
    moved = displacements(velocity, 5)  # more than either needs
    np.testing.assert_array_equal(
        advect_each(frames, velocity, moved=moved), advect_each(frames, velocity)
    )
    np.testing.assert_array_equal(
        align_past(frames, velocity, moved=moved), align_past(frames, velocity)
    )
    with pytest.raises(ValueError, match="3 steps need 3 displacements, got 2"):
        advect_each(frames, velocity, moved=moved[:2])


def test_uniform_motion_alignment_is_the_exact_shift():
    """A field moving 1 px/step in x: aligning the past recovers the last frame, and moving
    the aligned future back forward recovers the future (away from the edges)."""
    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.gamma(0.5, 4.0, (40, 60)), 2)
    frames = np.stack([np.roll(base, k, axis=1) for k in range(5)])  # moves +x, 1 px per step
    velocity = np.zeros((2, 40, 60))
    velocity[0] = 1.0
    d = displacements(velocity, 3)
    np.testing.assert_allclose(d[2][0], -3.0)  # backward trajectories: read 3 px upstream
    np.testing.assert_allclose(d[2][1], 0.0)
    aligned = align_past(frames[:4], velocity)
    inner = slice(4, -4)
    for k in range(4):
        np.testing.assert_allclose(aligned[k][:, inner], frames[3][:, inner], atol=1e-12)
    back = align_future(frames[4:], velocity)  # frame 4 moved one step back = frame 3
    np.testing.assert_allclose(back[0][:, inner], frames[3][:, inner], atol=1e-12)
    assert np.isnan(aligned[0][:, :3]).all()  # read from 3 px upstream: outside, unknown


def test_warp_zero_displacement_is_identity():
    field = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(warp(field, np.zeros((2, 3, 4))), field)


def test_flow_options_validate_and_round_trip():
    with pytest.raises(NowcastError, match="t_in >= 2"):
        FlowOptions(frames=1)
    with pytest.raises(NowcastError, match="interp_order"):
        FlowOptions(interp_order=2)
    with pytest.raises(NowcastError, match="transform"):
        FlowOptions(transform="log")
    opts = FlowOptions(frames=4, lk_options={"fd_kernel_size": 5})
    assert FlowOptions.from_dict(opts.to_dict()) == opts
    assert opts.to_dict()["outval"] is None  # NaN is written as null (JSON)


def test_extrapolation_and_sprog_share_flow_options():
    ex = get_method("extrapolation", t_in=4, interp_order=3)
    sp = get_method("sprog", t_in=4, interp_order=3)
    assert ex.flow == sp.flow
    with pytest.raises(NowcastError, match="ar_order"):
        get_method("sprog", t_in=2)  # AR(2) needs 3 frames
    with pytest.raises(NowcastError, match="probmatching"):
        get_method("sprog", probmatching="histogram")


def test_sprog_on_real_radar(mch):
    """S-PROG: NaN exactly where extrapolation is NaN, rain below 0.1 mm/h forecast as 0, and
    smoother than extrapolation at the last lead (its small scales have faded)."""
    past, _ = mch
    ex = get_method("extrapolation").predict(past, 8).values
    sp = get_method("sprog").predict(past, 8).values
    np.testing.assert_array_equal(np.isnan(sp), np.isnan(ex))
    finite = np.isfinite(sp)
    assert ((sp[finite] == 0) | (sp[finite] >= 0.1)).all()
    assert (sp[finite] > 0).mean() > 0.05  # it rains in this crop

    def roughness(a):
        a = np.nan_to_num(a)
        return np.abs(np.diff(a, axis=-1)).mean()

    assert roughness(sp[-1]) < 0.8 * roughness(ex[-1])


def test_sprog_refuses_temperature():
    import pandas as pd
    import xarray as xr

    times = pd.date_range("2019-03-01", periods=3, freq="1h")
    da = xr.DataArray(
        np.full((3, 8, 8), 280.0, dtype=np.float32),
        dims=("time", "y", "x"),
        coords={"time": times, "y": np.arange(8.0), "x": np.arange(8.0)},
        attrs={"units": "K"},
    )
    with pytest.raises(NowcastError, match="precipitation method"):
        get_method("sprog").predict(da, 3)


def test_warp_fields_is_warp_for_a_stack():
    """The ensemble warp (OpenCV, weights in 1/32 pixel) equals the exact bilinear warp at
    interior points to within 1/32 of the neighbours' difference, for every field."""
    from nowcast.motion import warp, warp_fields

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:50]
    fields = np.stack([np.sin(xx / 5.0 + k) * np.cos(yy / 7.0) for k in range(3)])
    displacement = rng.uniform(-2.5, 2.5, size=(2, 40, 50))
    fast = warp_fields(fields, displacement)
    inner = (slice(4, -4), slice(4, -4))
    for k in range(3):
        exact = warp(fields[k], displacement, interp_order=1)
        np.testing.assert_allclose(fast[k][inner], exact[inner], atol=0.3 / 32 + 1e-6)
    np.testing.assert_array_equal(
        warp_fields(fields, np.zeros((2, 40, 50))), fields.astype("float32")
    )
