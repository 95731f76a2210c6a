"""Probabilistic products on disk: members, exceedance probabilities and quantiles beside the
deterministic forecast (library, ``nowcast predict``, ``nowcast info``, batch), and the bad
inputs that are refused with one line and nothing written."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast.distribution import (
    REALIZATION,
    EnsembleDistribution,
    ProductRequest,
    issue_seed,
    realization_coord,
    stacked,
)
from nowcast.errors import ConfigError, NowcastError
from nowcast.methods import Forecaster, lead_array
from nowcast.methods.run import forecast_products
from nowcast.probabilistic import read_probabilistic
from nowcast.products import read_forecast, write_forecast
from tests.safety_helpers import cli, md5s, one_line_error, predict

ISSUES = ("2016-07-11T22:10", "2016-07-11T22:15")


@pytest.fixture(scope="module")
def crop(tmp_path_factory, shared_data) -> Path:
    """A 96 x 96 crop with rain of the MeteoSwiss event, 21:55 .. 22:30 (8 frames)."""
    path = tmp_path_factory.mktemp("crop") / "mch-crop.nc"
    with xr.open_dataset(shared_data / "radar" / "mch-2016-07-11.nc") as ds:
        ds.isel(time=slice(14, 22), y=slice(200, 296), x=slice(250, 346)).load().to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def archive(crop):
    from nowcast.archive import open_archive

    return open_archive(crop)


class Toy(Forecaster):
    """A cheap probabilistic method: the last frame times a random factor per member/lead."""

    name = "toy"
    t_in = 2
    probabilistic = True

    def predict(self, past, n_leads):
        return self.predict_distribution(past, n_leads).median()

    def predict_distribution(self, past, n_leads, *, members=0, seed=None):
        n = members or 5
        rng = np.random.default_rng(seed)
        last = past.isel(time=-1).values
        values = last[None, None] * rng.uniform(0.2, 3.0, size=(n, n_leads, 1, 1))
        template = lead_array(values[0], past, pd.Timedelta("5min"))
        return EnsembleDistribution(stacked(values, template, REALIZATION, *realization_coord(n)))


REQUEST = ProductRequest(members=4, seed=3, probabilities=(1, 5), quantiles=(0.1, 0.5, 0.9))


def _products(archive, issues=ISSUES, request=REQUEST):
    return forecast_products(Toy(), archive, list(issues), 3, request=request)


# --------------------------------------------------------------------------- the library


def test_products_are_read_off_one_distribution_per_issue_time(archive):
    fc, extra = _products(archive)
    name = fc.name
    assert set(extra) == {f"{name}_members", f"{name}_probability", f"{name}_quantiles"}
    members = extra[f"{name}_members"]
    assert members.dims == ("issue_time", REALIZATION, "lead_time", "y", "x")
    assert members.shape == (2, 4, 3, 96, 96)
    m = members.values
    np.testing.assert_array_equal(fc.values, np.median(m, axis=1))  # the median by default
    p = extra[f"{name}_probability"]
    assert list(p.threshold.values) == [1.0, 5.0] and p.attrs["units"] == "1"
    np.testing.assert_allclose(p.values[:, 1], (m >= 5).mean(axis=1))
    q = extra[f"{name}_quantiles"]
    expected = np.quantile(m[:, :, 0], [0.1, 0.5, 0.9], axis=1)
    np.testing.assert_allclose(q.values[:, :, 0], np.moveaxis(expected, 0, 1), rtol=1e-6)
    # each issue time's members are seeded from the seed and the issue time only
    alone, extra1 = _products(archive, issues=ISSUES[1:])
    np.testing.assert_array_equal(extra1[f"{name}_members"].values[0], m[1])
    expected = Toy().predict_distribution(
        archive.sel(time=slice(None, ISSUES[0])).isel(time=slice(-2, None)),
        3,
        members=4,
        seed=issue_seed(3, ISSUES[0]),
    )
    np.testing.assert_array_equal(expected.members().values, m[0])
    sharp, _ = _products(archive, request=ProductRequest(members=4, seed=3, deterministic="sharp"))
    assert not np.array_equal(sharp.values, fc.values)


def test_a_deterministic_method_or_implausible_thresholds_are_refused(archive):
    from nowcast.methods import get_method

    with pytest.raises(NowcastError, match="method persistence is deterministic"):
        forecast_products(get_method("persistence"), archive, [ISSUES[0]], 2, request=REQUEST)
    with pytest.raises(NowcastError, match="above 0"):
        _products(archive, request=ProductRequest(probabilities=(0.0, 1.0)))
    # nothing asked: a plain forecast, whatever the method
    fc, extra = forecast_products(get_method("persistence"), archive, [ISSUES[0]], 2)
    assert extra == {} and fc.shape == (1, 2, 96, 96)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"members": 0}, "members"),
        ({"members": -1}, "members"),
        ({"members": 2.5}, "members"),
        ({"seed": -1}, "seed"),
        ({"probabilities": (5, 1)}, "sorted"),
        ({"probabilities": (1, 1)}, "sorted"),
        ({"quantiles": (0.0, 0.5)}, "between 0 and 1"),
        ({"quantiles": (0.5, 1.0)}, "between 0 and 1"),
        ({"quantiles": (0.9, 0.1)}, "sorted"),
        ({"deterministic": "mean"}, "median or sharp"),
    ],
)
def test_bad_requests(kwargs, match):
    with pytest.raises(NowcastError, match=match):
        ProductRequest(**kwargs)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_written_cf_layout_and_read_back(tmp_path, archive, suffix):
    fc, extra = _products(archive)
    path = write_forecast(fc, tmp_path / f"fc{suffix}", method="toy", extra=extra)
    back = read_forecast(path)  # existing readers: the deterministic forecast, unchanged
    assert back.dims == ("issue_time", "lead_time", "y", "x")
    np.testing.assert_array_equal(back.values, fc.values)
    engine = "zarr" if suffix == ".zarr" else None
    with xr.open_dataset(path, engine=engine) as ds:
        name = fc.name
        assert ds[name].attrs["ancillary_variables"].split() == sorted(extra)
        assert ds[REALIZATION].attrs["standard_name"] == "realization"
        assert ds["threshold"].attrs["units"] == "mm h-1"
        assert ds["quantile"].attrs["units"] == "1"
        assert ds[f"{name}_probability"].attrs["units"] == "1"
        assert ds[f"{name}_quantiles"].attrs["units"] == "mm h-1"
        for var in extra:
            assert ds[var].attrs["grid_mapping"] == "crs" and ds[var].dtype == np.float32
    got = read_probabilistic(path)
    assert set(got) == {"members", "probability", "quantiles"}
    for key, da in got.items():
        var = f"{fc.name}_{key}"
        np.testing.assert_array_equal(da.values, extra[var].values)
        assert da.dims[0] == "issue_time" and da.dims[2:] == ("lead_time", "y", "x")
        assert "valid_time" in da.coords and "crs" in da.coords
        assert da.attrs["nowcast_method"] == "toy"
    # a deterministic file holds none
    write_forecast(fc, tmp_path / f"det{suffix}", method="toy")
    assert read_probabilistic(tmp_path / f"det{suffix}") == {}


def test_files_of_single_issue_times_combine(tmp_path, archive):
    paths = []
    for issue in ISSUES:
        fc, extra = _products(archive, issues=[issue])
        paths.append(
            write_forecast(
                fc, tmp_path / f"p_{issue[-5:-3]}{issue[-2:]}.nc", method="toy", extra=extra
            )
        )
    whole, whole_extra = _products(archive)
    with xr.open_mfdataset(sorted(str(p) for p in paths)) as ds:
        assert ds.sizes["issue_time"] == 2
        np.testing.assert_array_equal(
            ds[f"{whole.name}_members"].values, whole_extra[f"{whole.name}_members"].values
        )
    got = read_probabilistic(paths[::-1])  # any order: sorted by issue time
    assert list(got["members"].issue_time.values) == list(whole.issue_time.values)
    np.testing.assert_array_equal(
        got["quantiles"].values, whole_extra[f"{whole.name}_quantiles"].values
    )
    plain = write_forecast(whole, tmp_path / "plain.nc", method="toy")
    with pytest.raises(NowcastError, match="holds products"):
        read_probabilistic([paths[0], plain])


# --------------------------------------------------------------------------- nowcast predict


def test_predict_steps_writes_members_probabilities_quantiles(tmp_path, crop):
    out = tmp_path / "ens.nc"
    args = ["--method", "steps", "--leads", "2", "--members", "3", "--seed", "11"]
    args += ["--probabilities", "0.5,5", "--quantiles", "0.1,0.5,0.9"]
    args += [a for t in ISSUES for a in ("--issue-time", t)]
    res = predict(crop, out, *args)
    assert res.exit_code == 0, res.output
    got = read_probabilistic(out)
    members = got["members"].values
    assert members.shape == (2, 3, 2, 96, 96)
    np.testing.assert_array_equal(read_forecast(out).values, np.median(members, axis=1))
    expected = np.where(np.isnan(members[:, 0]), np.nan, (members >= 0.5).mean(axis=1))
    np.testing.assert_allclose(got["probability"].values[:, 0], expected)
    assert np.nanmax(got["probability"].values) <= 1 and np.nanmin(members) >= 0
    # the same seed: the same members, also for an issue time forecast alone
    again = tmp_path / "again.nc"
    res = predict(crop, again, *args[:-2])  # without the second issue time
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(read_probabilistic(again)["members"].values[0], members[0])
    info = cli("info", out)
    assert info.exit_code == 0, info.output
    assert "median of the predictive distribution, seed 11" in info.output
    assert "members:       3 (realization 0 .. 2)" in info.output
    assert "P(value >= 0.5, 5 mm h-1)" in info.output
    assert "levels 0.1, 0.5, 0.9" in info.output


def test_info_says_how_members_were_made_when_the_file_does():
    from nowcast.methods.quantile import MEMBERS_ATTRS
    from nowcast.probabilistic import describe_products

    members = xr.DataArray(
        np.zeros((1, 2, 1, 2, 2), "float32"),
        dims=("issue_time", "realization", "lead_time", "y", "x"),
        coords={"realization": [0, 1]},
        attrs={"comment": "radar composite: QC v2"},  # the input's own comment: not read
    )
    ds = xr.Dataset({"rain_members": members})
    assert dict(describe_products(ds))["members"] == "2 (realization 0 .. 1); variable rain_members"
    ds["rain_members"].attrs.update(MEMBERS_ATTRS)
    assert dict(describe_products(ds))["members"] == (
        "2 (realization 0 .. 1), equidistant quantiles; variable rain_members"
    )


def test_predict_steps_sharp_and_plain(tmp_path, crop):
    sharp = tmp_path / "sharp.nc"
    res = predict(
        crop,
        sharp,
        "--method",
        "steps",
        "--leads",
        "2",
        "--members",
        "3",
        "--seed",
        "2",
        "--deterministic",
        "sharp",
        "--issue-time",
        ISSUES[0],
    )
    assert res.exit_code == 0, res.output
    members = read_probabilistic(sharp)["members"]
    expected = EnsembleDistribution(members.isel(issue_time=0, drop=True)).sharp()
    np.testing.assert_array_equal(read_forecast(sharp).values[0], expected.values)
    plain = tmp_path / "plain.nc"  # no option: the median of the default 20 members, no extras
    res = predict(crop, plain, "--method", "steps", "--leads", "1", "--issue-time", ISSUES[0])
    assert res.exit_code == 0, res.output
    assert read_probabilistic(plain) == {}
    assert "members" not in cli("info", plain).output


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--method", "steps", "--members", "0"], ["members", "got 0"]),
        (["--method", "steps", "--members", "-3"], ["members", "got -3"]),
        (["--method", "steps", "--members", "100000000"], ["100000001 fields", "memory"]),
        (["--method", "steps", "--probabilities", "5,1"], ["probabilities", "sorted"]),
        (["--method", "steps", "--probabilities", "-1,5"], ["probabilities", "above 0"]),
        (["--method", "steps", "--probabilities", "1,2000"], ["at most 1000"]),
        (["--method", "steps", "--probabilities", "1,a"], ["--probabilities", "numbers"]),
        (["--method", "steps", "--quantiles", "0,0.5"], ["quantiles", "between 0 and 1"]),
        (["--method", "steps", "--quantiles", "0.5,1.5"], ["quantiles", "between 0 and 1"]),
        (["--method", "steps", "--quantiles", "0.9,0.1"], ["quantiles", "sorted"]),
        (["--method", "persistence", "--members", "5"], ["persistence is deterministic"]),
        (["--method", "sprog", "--probabilities", "1"], ["sprog is deterministic", "steps"]),
        (["--method", "extrapolation", "--quantiles", "0.5"], ["extrapolation is deterministic"]),
        (["--method", "persistence", "--seed", "1"], ["deterministic"]),
        (["--method", "persistence", "--deterministic", "sharp"], ["deterministic"]),
    ],
)
def test_bad_probabilistic_options_are_one_line_errors_and_write_nothing(
    tmp_path, crop, args, needles
):
    before = md5s(tmp_path)
    res = predict(crop, tmp_path / "fc.nc", *args, "--leads", "2", "--issue-time", ISSUES[0])
    one_line_error(res, *needles)
    assert md5s(tmp_path) == before


# --------------------------------------------------------------------------- batch


def _cfg(crop, output, **kw):
    from nowcast.config import BatchConfig, BatchRenderConfig

    return BatchConfig(
        inputs=(str(crop),),
        output=str(output),
        n_leads=2,
        render=BatchRenderConfig(enabled=False),
        **kw,
    ).validate()


def test_batch_config_takes_the_options(tmp_path):
    from nowcast.config import load_batch_config

    cfg = load_batch_config(
        None,
        [
            "inputs=[a.nc]",
            "methods=[steps]",
            "members=4",
            "seed=1",
            "probabilities=[1, 5]",
            "quantiles=[0.25, 0.75]",
            "deterministic=sharp",
        ],
    )
    assert cfg.products() == ProductRequest(4, 1, (1.0, 5.0), (0.25, 0.75), "sharp")
    assert load_batch_config(None, ["inputs=[a.nc]"]).products() is None
    for bad in ("members=0", "quantiles=[0.5, 0.2]", "probabilities=[2, 1]", "deterministic=x"):
        with pytest.raises(ConfigError):
            load_batch_config(None, ["inputs=[a.nc]", bad])


def test_batch_task_writes_products_for_the_probabilistic_methods(tmp_path, crop):
    from pipelines.catalog import build_catalog
    from pipelines.outputs import forecast_path, is_complete
    from pipelines.runner import plan, signature
    from pipelines.tasks import run_issue_time

    cfg = _cfg(
        crop,
        tmp_path / "out",
        methods=("persistence", "steps"),
        members=2,
        seed=4,
        probabilities=(1.0,),
    )
    assert signature(cfg)["products"] == {
        "deterministic": "median",
        "members": 2,
        "seed": 4,
        "probability_thresholds": [1.0],
    }
    cat = build_catalog(cfg.inputs, variable=None, kind="auto")
    _, tasks, _, _ = plan(cfg, cat, 3)
    task = next(t for t in tasks if t.issue_time == pd.Timestamp(ISSUES[0]))
    assert task.products == cfg.products() and pickle.loads(pickle.dumps(task)) == task
    res = run_issue_time(task)
    assert res.status == "done", res.error
    issue = pd.Timestamp(ISSUES[0])
    steps = read_probabilistic(forecast_path(cfg.output, "steps", issue))
    assert set(steps) == {"members", "probability"} and steps["members"].sizes[REALIZATION] == 2
    assert read_probabilistic(forecast_path(cfg.output, "persistence", issue)) == {}
    assert is_complete(cfg.output, issue, signature(cfg))
    other = _cfg(crop, tmp_path / "out", methods=("persistence", "steps"), members=3)
    assert not is_complete(cfg.output, issue, signature(other))  # other products: redone


def test_batch_refuses_products_without_a_probabilistic_method(tmp_path, crop):
    from pipelines.runner import run_batch

    cfg = _cfg(crop, tmp_path / "out", methods=("persistence",), members=2)
    with pytest.raises(ConfigError, match="need a probabilistic method"):
        run_batch(cfg, progress=False)
    cfg = _cfg(crop, tmp_path / "out", methods=("steps",), probabilities=(-1.0, 1.0))
    with pytest.raises(NowcastError, match="above 0"):
        run_batch(cfg, progress=False)
    assert not (tmp_path / "out").exists()
