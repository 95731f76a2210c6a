"""Splits, windows, crops, augmentation and min_wet_fraction (synthetic archives)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast.config import Config, DataConfig, PreprocessConfig, SamplerConfig, SplitConfig
from nowcast.errors import ConfigError, DataError
from nowcast.trainset.build import build_datasets
from nowcast.trainset.sampler import SPLITS, label_frames, window_starts


def make_archive(
    values: np.ndarray, *, start="2021-07-04", freq="5min", times=None, name="precipitation_rate"
):
    nt, ny, nx = values.shape
    times = (
        pd.date_range(start, periods=nt, freq=freq) if times is None else pd.DatetimeIndex(times)
    )
    da = xr.DataArray(
        values.astype("float32"),
        dims=("time", "y", "x"),
        coords={"time": times, "y": np.arange(ny) * 1000.0, "x": np.arange(nx) * 1000.0, "crs": 0},
        name=name,
        attrs={"units": "mm h-1", "grid_mapping": "crs"},
    )
    return da.chunk({"time": 1})


def random_archive(nt, ny=24, nx=24, *, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return make_archive(rng.gamma(0.5, 2.0, size=(nt, ny, nx)), **kw)


def config(events=("a", "b"), **sampler) -> Config:
    split = sampler.pop("split", SplitConfig(validation=0.0, test=0.0))
    base = dict(t_in=2, t_out=2, patch_size=8, batch_size=4, split=split)
    base.update(sampler)
    return Config(
        data=DataConfig(events=tuple(events)),
        sampler=SamplerConfig(**base),
        preprocess=PreprocessConfig(),
    )


def all_windows(ds):
    """(split, event, start) for every window of every split."""
    out = []
    for name in SPLITS:
        d = getattr(ds, name)
        if d is not None:
            out += [(name, int(e), int(t)) for e, t in d.sampler.windows]
    return out


# --------------------------------------------------------------------------- labels and windows


def test_label_frames_fractions_hand_worked():
    times = pd.date_range("2020", periods=20, freq="5min")
    labels = label_frames(times, validation=0.2, test=0.1)
    # test starts at int(20 * 0.9) = 18, validation at int(20 * 0.7) = 14
    assert labels.tolist() == [0] * 14 + [1] * 4 + [2] * 2


def test_label_frames_test_period_and_holdout():
    times = pd.date_range("2020-01-01", periods=20, freq="5min")
    labels = label_frames(
        times, validation=0.2, test=0.5, test_period=("2020-01-01T00:50", "2020-01-01T01:00")
    )
    assert np.flatnonzero(labels == 2).tolist() == [10, 11, 12]
    # 17 other frames, int(17 * 0.2) = 3 validation frames: the last three
    assert np.flatnonzero(labels == 1).tolist() == [17, 18, 19]
    assert (label_frames(times, validation=0.2, test=0.1, holdout=True) == 2).all()


def test_window_starts_never_cross_gaps_or_labels():
    times = pd.date_range("2020", periods=20, freq="5min").delete(
        10
    )  # gap between 9 and 10 (index)
    labels = np.array([0] * 15 + [1] * 4, dtype=np.int8)
    starts = window_starts(times, labels, length=4, stride=1)
    assert starts["train"].tolist() == list(range(0, 7)) + [10, 11]  # runs [0,10) and [10,15)
    assert starts["validation"].tolist() == [15]  # run [15,19)
    assert starts["test"].size == 0
    assert window_starts(times, labels, length=4, stride=3)["train"].tolist() == [0, 3, 6, 10]


# --------------------------------------------------------------------------- build_datasets


def test_no_window_straddles_splits_and_test_period_respected():
    a = random_archive(40, seed=1)
    b = random_archive(30, seed=2, start="2021-07-04T01:00")
    cfg = config(
        split=SplitConfig(validation=0.25, test_period=("2021-07-04T02:00", "2021-07-04T02:40"))
    )
    ds = build_datasets(cfg, archives=[a, b])
    test_start = pd.Timestamp("2021-07-04T02:00")
    test_end = pd.Timestamp("2021-07-04T02:40")
    windows = all_windows(ds)
    assert len({(e, t) for _, e, t in windows}) == len(windows)  # each window in one split only
    seen = set()
    for split, e, t in windows:
        labels = ds.train.sampler.events[e].labels[t : t + 4]
        assert (labels == SPLITS.index(split)).all()  # every frame of the window in its split
        times = pd.DatetimeIndex([a, b][e].time.values[t : t + 4])
        in_test = (times >= test_start) & (times <= test_end)
        assert in_test.all() if split == "test" else not in_test.any()
        seen.add(split)
    assert seen == set(SPLITS)
    # validation comes after train inside each event (time order), outside the test period
    per = {ev["name"]: ev["periods"] for ev in ds.summary["events"]}
    for periods in per.values():
        if periods["validation"] and periods["train"]:
            assert periods["train"][1] < periods["validation"][0]


def test_holdout_events_only_in_test():
    a, b = random_archive(20, seed=1), random_archive(20, seed=2)
    cfg = config(
        events=("data/a.nc", "data/b.nc"), split=SplitConfig(validation=0.2, holdout_events=("b",))
    )
    ds = build_datasets(cfg, archives=[a, b])
    windows = all_windows(ds)
    assert {s for s, e, _ in windows if e == 1} == {"test"}
    assert len([w for w in windows if w[1] == 1]) == 20 - 4 + 1
    assert {s for s, e, _ in windows if e == 0} == {"train", "validation"}
    assert ds.summary["events"][1]["train_period"] is None


def test_validation_events_are_validation_only():
    """A whole event as the validation set: its windows are validation, the others train."""
    a, b, c = random_archive(20, seed=1), random_archive(20, seed=2), random_archive(20, seed=3)
    split = SplitConfig(validation=0.0, validation_events=("data/b.nc",), holdout_events=("c",))
    cfg = config(events=("data/a.nc", "data/b.nc", "data/c.nc"), split=split)
    ds = build_datasets(cfg, archives=[a, b, c])
    windows = all_windows(ds)
    assert {s for s, e, _ in windows if e == 0} == {"train"}
    assert {s for s, e, _ in windows if e == 1} == {"validation"}
    assert {s for s, e, _ in windows if e == 2} == {"test"}
    assert len(ds.validation.sampler.windows) == 20 - 4 + 1
    assert (label_frames(a.time.values, validation=0.3, test=0.0, validation_event=True) == 1).all()


def test_an_event_cannot_be_holdout_and_validation():
    with pytest.raises(ConfigError, match="both holdout and validation"):
        config(split=SplitConfig(holdout_events=("b",), validation_events=("b",))).validate()


def test_statistics_use_the_train_period_only():
    values = np.full((20, 8, 8), 100.0)
    values[:10, :, :4] = 1.0
    values[:10, :, 4:] = 3.0  # train frames 0..9 (validation from int(20*0.5)=10, test from 15)
    cfg = config(events=("a",), split=SplitConfig(validation=0.25, test=0.25))
    ds = build_datasets(cfg, archives=[make_archive(values)])
    lo, hi = math.log(1.01), math.log(3.01)
    assert ds.preprocessor.mean == pytest.approx((lo + hi) / 2, rel=1e-5)
    assert ds.preprocessor.std == pytest.approx((hi - lo) / 2, rel=1e-4)
    assert ds.summary["events"][0]["train_period"] == ["2021-07-04T00:00:00", "2021-07-04T00:45:00"]
    assert ds.summary["windows"] == {"train": 7, "validation": 2, "test": 2}
    assert json.loads(json.dumps(ds.summary)) == ds.summary  # JSON-safe as it is
    assert ds.summary["time_step_seconds"] == 300.0 and ds.summary["grid_spacing"] == [
        1000.0,
        1000.0,
    ]


def test_same_seed_same_batches_different_seed_differs_and_epochs_change():
    archives = [random_archive(30, seed=1), random_archive(25, 20, 28, seed=2)]
    one = build_datasets(config(seed=3, augment=True), archives=archives)
    two = build_datasets(config(seed=3, augment=True), archives=archives)
    other = build_datasets(config(seed=4, augment=True), archives=archives)
    for i in range(len(one.train)):
        assert one.train.samples(i) == two.train.samples(i)
        for u, v in zip(one.train[i], two.train[i]):
            np.testing.assert_array_equal(u, v)
    assert [one.train.samples(i) for i in range(3)] != [other.train.samples(i) for i in range(3)]
    assert {s.event for i in range(len(one.train)) for s in one.train.samples(i)} == {
        0,
        1,
    }  # two grids, one set
    first = one.train.samples(0)
    one.train.on_epoch_end()
    assert one.train.samples(0) != first  # new order and crops in the next epoch


def test_validation_crops_are_fixed_and_unaugmented():
    cfg = config(augment=True, split=SplitConfig(validation=0.5))
    ds = build_datasets(cfg, archives=[random_archive(40, seed=5)])
    before = [ds.validation.samples(i) for i in range(len(ds.validation))]
    ds.validation.on_epoch_end()
    assert [ds.validation.samples(i) for i in range(len(ds.validation))] == before
    assert all(s.rot == 0 and not s.flip for batch in before for s in batch)
    rows = ds.validation.sampler.windows[:, 1].tolist()
    assert [s.start for batch in before for s in batch] == rows  # no shuffle


def test_augmentation_preserves_values():
    ds = build_datasets(config(augment=True, seed=1), archives=[random_archive(30, seed=7)])
    samples = [s for i in range(len(ds.train)) for s in ds.train.samples(i)]
    turned = [s for s in samples if s.rot % 2 == 1 or s.flip]
    assert turned
    for s in turned[:4]:
        x, y, m = ds.train.assemble([s])
        x0, y0, m0 = ds.train.assemble([dataclasses.replace(s, rot=0, flip=False)])
        assert not np.array_equal(x, x0)
        np.testing.assert_array_equal(np.sort(x, axis=None), np.sort(x0, axis=None))
        np.testing.assert_array_equal(np.sort(y, axis=None), np.sort(y0, axis=None))
        # the same transform is applied to every frame: undo it on x
        back = x[0, ..., 0]
        if s.flip:
            back = back[..., ::-1]
        np.testing.assert_array_equal(np.rot90(back, k=-s.rot, axes=(-2, -1)), x0[0, ..., 0])


def test_min_wet_fraction_on_known_wet_area():
    values = np.zeros((20, 64, 64))
    values[5:, 40:56, 8:24] = 5.0  # a 16x16 wet square from frame 5 on; frames 0..4 dry
    cfg = config(events=("a",), patch_size=16, min_wet_fraction=0.5, batch_size=32)
    ds = build_datasets(cfg, archives=[make_archive(values)])
    # starts 0..16 (17 windows); 0..3 have only dry inputs -> dropped
    assert ds.summary["dropped_dry_windows"]["train"] == 4
    starts = sorted(int(t) for _, t in ds.train.sampler.windows)
    assert starts == list(range(4, 17))
    allowed = {(40, 8), (32, 8), (48, 8), (40, 0), (40, 16)}  # overlap >= half the crop (lattice 8)
    for epoch in range(3):
        ds.train.epoch = epoch
        for s in ds.train.samples(0):
            assert (s.oy, s.ox) in allowed
            if s.start == 4:  # one wet input frame of two: only the full overlap reaches 0.5
                assert (s.oy, s.ox) == (40, 8)
            crop = values[s.start : s.start + 2, s.oy : s.oy + 16, s.ox : s.ox + 16]
            assert (crop >= 0.1).mean() >= 0.5


def test_patch_errors_name_the_event_and_sizes():
    archives = [random_archive(10, 24, 24), random_archive(10, 20, 30)]
    with pytest.raises(ConfigError, match=r"patch_size=22 is larger than event 'b' grid 20 x 30"):
        build_datasets(config(patch_size=22), archives=archives)
    with pytest.raises(ConfigError, match="needs all events on one grid"):
        build_datasets(config(patch_size=None), archives=archives)
    full = build_datasets(config(events=("a",), patch_size=None), archives=archives[:1])
    assert full.train[0][0].shape == (4, 2, 24, 24, 1)


def test_crop_larger_than_grid_is_an_error():
    cfg = dataclasses.replace(config(events=("a",)), preprocess=PreprocessConfig(crop_x=(1e6, 2e6)))
    with pytest.raises(DataError, match="event 'a': crop x=.* selects nothing"):
        build_datasets(cfg, archives=[random_archive(10)])


def test_too_few_frames_is_a_clear_error():
    cfg = config(events=("short",), t_in=6, t_out=12)
    with pytest.raises(DataError, match=r"needs t_in \+ t_out = 18 .*short: 10 frames"):
        build_datasets(cfg, archives=[random_archive(10)])


def test_different_time_steps_are_refused():
    archives = [random_archive(10), random_archive(10, freq="10min")]
    with pytest.raises(ConfigError, match="different time steps"):
        build_datasets(config(), archives=archives)
