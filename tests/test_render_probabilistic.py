"""Maps and series of probabilistic forecasts (``nowcast render``): probability-of-exceedance
maps, postage stamps of members, fan charts at a point, on a real STEPS ensemble of the
MeteoSwiss event; and the bad inputs refused with one line and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from safety_helpers import cli, one_line_error

from nowcast.archive.reader import open_archive
from nowcast.probabilistic import read_probabilistic
from nowcast.products import read_forecast
from nowcast.render.ensemble import (
    PRODUCTS,
    member_frames,
    orient_part,
    plan_products,
    probability_frames,
)
from nowcast.render.ensemble_jobs import render_probabilistic
from nowcast.render.fan import FAN_LEVELS, fan_part
from nowcast.render.options import RenderOptions
from nowcast.render.parallel import plan_maps
from nowcast.render.point import Point, _box, _fans, _locate
from nowcast.render.stamps import grid_shape

ISSUES = ("2016-07-11T22:10", "2016-07-11T22:15")
STEM = "precipitation_rate_steps_20160711T22{}"
POINT = "45.85,6.35"  # in the crop, in rain


@pytest.fixture(scope="module")
def crop(tmp_path_factory, shared_data) -> Path:
    """A 128 x 128 crop with rain of the MeteoSwiss event, 21:55 .. 22:30 (8 frames)."""
    path = tmp_path_factory.mktemp("crop") / "mch-crop.nc"
    with xr.open_dataset(shared_data / "radar" / "mch-2016-07-11.nc") as ds:
        ds.isel(time=slice(14, 22), y=slice(184, 312), x=slice(234, 362)).load().to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def ens(tmp_path_factory, crop) -> Path:
    """STEPS, 4 members, P(>= 1, 5 mm h-1), quantiles 0.1/0.5/0.9, 2 issue times x 3 leads."""
    path = tmp_path_factory.mktemp("ens") / "ens.nc"
    issues = [a for t in ISSUES for a in ("--issue-time", t)]
    res = cli("predict", "--method", "steps", "-i", crop, *issues, "--leads", "3",
              "--members", "4", "--seed", "1", "--probabilities", "1,5",
              "--quantiles", "0.1,0.5,0.9", "-o", path)  # fmt: skip
    assert res.exit_code == 0, res.output
    return path


@pytest.fixture(scope="module")
def maps(shared_data) -> Path:
    return shared_data / "maps"


def _image(path: Path, *, frames: int = 1) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert getattr(im, "n_frames", 1) == frames, path
        w, h = im.size
        assert 250 <= w <= 2000 and 250 <= h <= 2000, (path, im.size)
        rgb = np.asarray(im.convert("RGB"))
    assert rgb.std() > 10, f"{path} looks blank"
    return w, h


# --------------------------------------------------------------------------- the CLI


def test_render_draws_every_product_the_file_holds(ens, maps, tmp_path):
    out = tmp_path / "maps"
    res = cli("render", ens, "--leads", "1", "--map-data", maps, "--dpi", "50", "-o", out)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("map data:")
    names = [Path(line).name for line in lines[1:]]
    want = [f"{STEM.format(m)}_lead005.png" for m in ("10", "15")]
    want += [f"{STEM.format(m)}_prob-ge{t}_lead005.png" for m in ("10", "15") for t in (1, 5)]
    want += [f"{STEM.format(m)}_members_lead005.png" for m in ("10", "15")]
    assert names == [*want, "index.html"]  # the folder's page last
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in want:
        _image(out / name)


@pytest.mark.slow
def test_probability_maps_and_gif_for_chosen_threshold(ens, crop, maps, tmp_path):
    out = tmp_path / "prob"
    res = cli("render", ens, "--products", "probability", "--thresholds", "5", "--leads", "1,3",
              "--gif", "--truth", crop, "--map-data", maps, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    want = [f"{STEM.format(m)}_prob-ge5{s}" for m in ("10", "15")
            for s in ("_lead005.png", "_lead015.png", ".gif")]  # fmt: skip
    assert names == sorted([*want, "index.html"])
    for name in want:
        _image(out / name, frames=2 if name.endswith(".gif") else 1)
    w, _ = _image(out / f"{STEM.format('15')}_prob-ge5_lead005.png")
    assert w > 800  # observed | forecast: two panels


# --------------------------------------------------------------------------- the figures


@pytest.fixture(scope="module")
def planned(ens, crop, maps):
    truth = open_archive(crop)
    (job,) = plan_maps((ens, read_forecast(ens)), truth=truth,
                       options=RenderOptions(map_data=maps, dpi=60))  # fmt: skip
    return job, read_probabilistic(ens)


def test_probability_map_scale_title_and_data(planned):
    job, parts = planned
    part = orient_part(parts["probability"], job.prep, "probability", "ens")
    ((name, png, fig),) = probability_frames(job.prep, part, 1, 5.0, [0], truth=job.truth,
                                             options=job.options, keep_figure=True)  # fmt: skip
    assert name == f"{STEM.format('15')}_prob-ge5_lead005.png"
    bars = {ax.get_xlabel(): ax for ax in fig.axes if ax.get_xlabel()}
    label = "P(rain rate ≥ 5 mm h$^{-1}$)"
    assert set(bars) == {label, "observed rain rate ≥ 5 mm h$^{-1}$"}
    assert bars[label].get_xlim() == (0.0, 1.0)
    ticks = [t.get_text() for t in bars[label].get_xticklabels()]
    assert ticks[0] == "0" and ticks[-1] == "1"
    texts = " ".join(t.get_text() for t in fig.texts)
    for needle in ("Probability of rain rate ≥ 5", "steps", "issue 2016-07-11 22:15 UTC",
                   "lead +5 min", "MeteoSwiss"):  # fmt: skip
        assert needle in texts
    maps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in maps] == [
        "Observed rain rate ≥ 5 mm h$^{-1}$",
        "Forecast probability (+5 min)",
    ]
    shown = np.ma.filled(maps[1].images[0].get_array(), np.nan)
    want = part.isel(issue_time=1, lead_time=0).sel(threshold=5.0).values
    np.testing.assert_array_equal(shown, want)
    assert np.nanmax(shown) <= 1 and np.nanmin(shown) >= 0 and np.nanmax(shown) > 0.5
    event = np.ma.filled(maps[0].images[0].get_array(), np.nan)
    assert set(np.unique(event[np.isfinite(event)])) == {0.0, 1.0}


def test_postage_stamps_panels_and_one_colour_bar(planned):
    job, parts = planned
    part = orient_part(parts["members"], job.prep, "members", "ens")
    ((name, png, fig),) = member_frames(job.prep, part, 0, range(4), [2], truth=job.truth,
                                        options=job.options, keep_figure=True)  # fmt: skip
    assert name == f"{STEM.format('10')}_members_lead015.png"
    stamps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in stamps] == ["Observed"] + [f"member {i}" for i in range(4)]
    for k, ax in enumerate(stamps):
        data = np.ma.filled(ax.images[0].get_array(), np.nan)
        assert np.nanmax(data) > 1, f"stamp {k} is empty"
        if k:
            np.testing.assert_array_equal(data, part.isel(issue_time=0, realization=k - 1,
                                                          lead_time=2).values)  # fmt: skip
    # one colour bar: the deterministic maps' rain classes
    bars = [ax for ax in fig.axes if ax.get_xlabel()]
    assert [ax.get_xlabel() for ax in bars] == ["rain rate (mm h$^{-1}$)"]
    assert stamps[1].images[0].norm.boundaries[0] == pytest.approx(0.1)
    title = " ".join(t.get_text() for t in fig.texts)
    assert "ensemble (steps), 4 members" in title and "lead +15 min" in title


def test_grid_shape():
    assert [grid_shape(n) for n in (1, 4, 5, 20, 21)] == [(1, 1), (2, 2), (2, 3), (4, 5), (4, 6)]


def test_render_probabilistic_in_memory_and_stamp_limit(ens, maps, tmp_path):
    """The Python API on DataArrays: only the first 20 members are stamped."""
    fc = read_forecast(ens).isel(issue_time=[1]).load()
    members = read_probabilistic(ens)["members"].isel(issue_time=[1]).load()
    many = xr.concat([members] * 6, dim="realization").assign_coords(realization=np.arange(24))
    options = RenderOptions(leads=(1,), map_data=maps, dpi=50)
    paths = render_probabilistic(fc, {"members": many}, outdir=tmp_path, options=options)
    assert [p.name for p in paths] == [f"{STEM.format('15')}_members_lead005.png"]
    _image(paths[0])
    (job,) = plan_maps(fc, options=options)
    (pjob,) = plan_products([job], [{"members": many}])
    assert pjob.keys == tuple(range(20))


# --------------------------------------------------------------------------- fan chart


def test_fan_chart_at_a_point(ens, crop, tmp_path):
    res = cli("render", ens, "--truth", crop, "--point", POINT, "--neighbourhood", "3",
              "-o", tmp_path)  # fmt: skip
    assert res.exit_code == 0, res.output
    png = tmp_path / "point_45.85-N-6.35-E.png"
    _image(png)
    fc = read_forecast(ens)
    point = Point(POINT, 45.85, 6.35)
    fans = _fans({"steps": fc}, {"steps": read_probabilistic(ens)}, point, 3)
    fan = fans["steps"]
    assert fan.members == 0 and list(fan.levels) == [0.1, 0.5, 0.9] and fan.bands() == [(0, 2)]
    where = _locate(fc, point, 3, "x")
    det = np.nanmean(_box(fc.isel(issue_time=-1), where).values.reshape(3, -1), axis=1)
    np.testing.assert_allclose(fan.median, det, rtol=1e-5)
    assert fan.replaces(fc.issue_time.values[-1], det)  # the median line stands for it
    assert np.all(fan.values[0] <= fan.median + 1e-6) and np.all(fan.median <= fan.values[2] + 1e-6)
    assert np.any(fan.values[2] > fan.values[0])


def test_fan_from_members_when_no_quantiles(ens, tmp_path):
    path = tmp_path / "members.nc"
    with xr.open_dataset(ens) as ds:
        ds.drop_vars(["precipitation_rate_quantiles", "precipitation_rate_probability"]).load(
        ).to_netcdf(path)  # fmt: skip
    parts = read_probabilistic(path)
    assert fan_part(parts) is parts["members"]
    fc = read_forecast(path)
    point = Point(POINT, 45.85, 6.35)
    fan = _fans({"steps": fc}, {"steps": parts}, point, 1)["steps"]
    assert fan.members == 4 and tuple(fan.levels) == FAN_LEVELS and len(fan.bands()) == 2
    where = _locate(fc, point, 1, "x")
    values = _box(parts["members"].isel(issue_time=-1), where).values[:, :, 0, 0]
    np.testing.assert_allclose(fan.values, np.quantile(values, FAN_LEVELS, axis=0), rtol=1e-5)
    res = cli("render", path, "--point", POINT, "-o", tmp_path / "s")
    assert res.exit_code == 0, res.output
    _image(tmp_path / "s" / "point_45.85-N-6.35-E.png")


# --------------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def deterministic(tmp_path_factory, crop) -> Path:
    path = tmp_path_factory.mktemp("det") / "pers.nc"
    res = cli("predict", "--method", "persistence", "-i", crop, "--issue-time", ISSUES[1],
              "--leads", "2", "-o", path)  # fmt: skip
    assert res.exit_code == 0, res.output
    return path


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--thresholds", "7"), ("no probability at threshold 7 mm h-1", "it holds 1, 5")),
        (("--thresholds", "five"), ("--thresholds takes numbers",)),
        (("--products", "probability,stamps"), ("--products: unknown 'stamps'",)),
        (("--products", "deterministic", "--thresholds", "5"), ("--thresholds",)),
        (("--point", POINT, "--thresholds", "5"), ("--point draws no maps",)),
    ],
)
def test_bad_options_one_line_nothing_written(ens, tmp_path, args, needles):
    out = tmp_path / "out"
    one_line_error(cli("render", ens, *args, "-o", out), *needles)
    assert not out.exists() or not any(out.iterdir())


def test_products_a_deterministic_file_lacks(deterministic, tmp_path):
    out = tmp_path / "out"
    for product in ("members", "probability"):
        res = cli("render", deterministic, "--products", product, "-o", out)
        one_line_error(res, f"no forecast file holds {product}")
    assert not out.exists() or not any(out.iterdir())
    res = cli("render", deterministic, "--point", POINT, "-o", out)  # no fan: plain lines
    assert res.exit_code == 0, res.output
    assert set(PRODUCTS) == {"deterministic", "probability", "members"}
