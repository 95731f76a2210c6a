"""Data safety, round 3 (issue 22): real files (md5s before and after) and real processes.

``--overwrite`` replaces only a previous output of the same kind; two runs writing the same
new output: exactly one wins; ``train``/``prepare`` never write into an input folder; events
are told apart by their path, not their file name.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from safety_helpers import (
    ISSUE,
    child_env,
    cli,
    leftovers,
    listing,
    md5s,
    nowcast_cmd,
    one_line_error,
    predict,
)

from nowcast.errors import NowcastError
from nowcast.fileio import atomic_output, check_output


@pytest.fixture
def mch(tmp_path, shared_data) -> Path:
    """A copy of the real MeteoSwiss event in tmp_path/in/."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    target = folder / "mch-2016-07-11.nc"
    shutil.copyfile(shared_data / "radar" / "mch-2016-07-11.nc", target)
    return target


# ------------------------------------------------------------ --overwrite: only the same kind


def test_predict_overwrite_never_replaces_a_users_folder(tmp_path, mch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    before = md5s(tmp_path)
    res = predict(mch, folder, "--method", "persistence", "--issue-time", ISSUE, "--overwrite")
    one_line_error(res, str(folder), "not a Zarr store", "--overwrite replaces only")
    # a .zarr name does not make a plain folder a store
    zfolder = tmp_path / "notes.zarr"
    zfolder.mkdir()
    (zfolder / "notes.txt").write_text("mine")
    before = md5s(tmp_path)
    res = predict(mch, zfolder, "--method", "persistence", "--issue-time", ISSUE, "--overwrite")
    one_line_error(res, "not a Zarr store")
    # nor a file that is not NetCDF
    text = tmp_path / "fc.nc"
    text.write_text("not a forecast")
    before = md5s(tmp_path)
    res = predict(mch, text, "--method", "persistence", "--issue-time", ISSUE, "--overwrite")
    one_line_error(res, "not NetCDF")
    assert md5s(tmp_path) == before and not leftovers(tmp_path)


def test_predict_overwrite_replaces_a_previous_forecast(tmp_path, mch):
    fc = tmp_path / "fc.nc"
    base = ["--method", "persistence", "--leads", "1"]
    assert predict(mch, fc, *base, "--issue-time", ISSUE).exit_code == 0
    first = md5s(tmp_path)["fc.nc"]
    res = predict(mch, fc, *base, "--issue-time", "2016-07-11T21:40", "--overwrite")
    assert res.exit_code == 0, res.output
    assert md5s(tmp_path)["fc.nc"] != first and not leftovers(tmp_path)
    # a NetCDF file is not replaced by a Zarr store of the same name, nor the other way
    res = predict(mch, tmp_path / "fc.zarr", *base, "--issue-time", ISSUE)
    assert res.exit_code == 0, res.output
    before = md5s(tmp_path)
    (tmp_path / "store.nc").mkdir()
    shutil.copytree(tmp_path / "fc.zarr", tmp_path / "store.nc", dirs_exist_ok=True)
    before = md5s(tmp_path)
    res = predict(mch, tmp_path / "store.nc", *base, "--issue-time", ISSUE, "--overwrite")
    one_line_error(res, "is a Zarr store, not a NetCDF file")
    assert md5s(tmp_path) == before


def test_convert_overwrite_never_replaces_a_plain_folder(tmp_path, mch):
    out = tmp_path / "x.zarr"
    out.mkdir()
    (out / "data.csv").write_text("1,2,3\n")
    before = md5s(tmp_path)
    res = cli("convert", mch, "-o", out, "--overwrite")
    one_line_error(res, f"{out} is a folder (not a Zarr store)", "--overwrite replaces only")
    assert md5s(tmp_path) == before and listing(out) == ["data.csv"]


def test_check_output_overwrite_kinds(tmp_path):
    (tmp_path / "a.zarr").mkdir()
    (tmp_path / "a.zarr" / ".zgroup").write_text("{}")
    check_output(tmp_path / "a.zarr", [])  # a store for a store
    with pytest.raises(NowcastError, match="is a Zarr store, not a NetCDF file"):
        check_output(_link(tmp_path / "a.zarr", tmp_path / "b.nc"), [])
    (tmp_path / "c.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 8)
    check_output(tmp_path / "c.nc", [])
    check_output(tmp_path / "plain", [])  # nothing there: fine
    (tmp_path / "plain").mkdir()
    with pytest.raises(NowcastError, match="a folder"):
        check_output(tmp_path / "plain", [])
    check_output(tmp_path / "plain", [], replaces=False)  # folder outputs fill in their files


def _link(target: Path, name: Path) -> Path:
    name.symlink_to(target)
    return name


# ------------------------------------------------------------ two writers of one new output


def test_exclusive_atomic_output_loses_to_an_output_that_appeared(tmp_path):
    target = tmp_path / "fc.nc"
    with pytest.raises(NowcastError, match="exists: pass --overwrite"):
        with atomic_output(target, exclusive=True) as tmp:
            tmp.write_text("mine")
            target.write_text("theirs")  # another run finished first
    assert target.read_text() == "theirs" and listing(tmp_path) == ["fc.nc"]
    store = tmp_path / "fc.zarr"
    with pytest.raises(NowcastError, match="exists"):
        with atomic_output(store, exclusive=True) as tmp:
            tmp.mkdir()
            (tmp / ".zgroup").write_text("{}")
            store.mkdir()
            (store / "theirs").write_text("x")
    assert listing(store) == ["theirs"] and not leftovers(tmp_path)
    with atomic_output(tmp_path / "new.zarr", exclusive=True) as tmp:
        tmp.mkdir()
        (tmp / ".zgroup").write_text("{}")
    assert listing(tmp_path / "new.zarr") == [".zgroup"] and not leftovers(tmp_path)


def test_exclusive_placement_one_winner_among_threads(tmp_path):
    target = tmp_path / "out.nc"
    barrier = threading.Barrier(8)
    results: list[str] = []

    def write(i: int) -> None:
        try:
            with atomic_output(target, exclusive=True) as tmp:
                tmp.write_text(f"writer {i}")
                barrier.wait()
            results.append(f"won {i}")
        except NowcastError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("won")]
    assert len(winners) == 1, results
    assert target.read_text() == f"writer {winners[0].split()[1]}"
    assert sum("exists" in r for r in results) == 7 and listing(tmp_path) == ["out.nc"]


@pytest.mark.slow  # two real processes
@pytest.mark.slow  # two real processes
@pytest.mark.parametrize("name", ["fc.nc", "fc.zarr"])
def test_two_predicts_started_together_one_wins(tmp_path, mch, name):
    out = tmp_path / name
    args = ["-i", mch, "--method", "persistence", "--leads", "6", "-o", out]
    cmds = [
        nowcast_cmd("predict", *args, "--start", "2016-07-11T21:00", "--end", "2016-07-11T23:00"),
        nowcast_cmd("predict", *args, "--start", "2016-07-11T21:10", "--end", "2016-07-11T23:10"),
    ]
    before = md5s(mch.parent)
    procs = [
        subprocess.Popen(
            c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env()
        )
        for c in cmds
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs
    won = [o for p, o in zip(procs, outs) if p.returncode == 0][0]
    lost = [o for p, o in zip(procs, outs) if p.returncode == 1][0]
    assert won.strip() == f"wrote {out}"
    assert lost.strip() == f"Error: {out} exists: pass --overwrite to replace it", lost
    from nowcast.products import read_forecast

    first = str(read_forecast(out).issue_time.values[0])[:16]
    winner = procs.index([p for p in procs if p.returncode == 0][0])
    assert first == ["2016-07-11T21:00", "2016-07-11T21:10"][winner]
    assert md5s(mch.parent) == before and not leftovers(tmp_path)


@pytest.mark.slow  # two real processes
def test_two_converts_started_together_one_wins(tmp_path, shared_data):
    out = tmp_path / "bom.zarr"
    sources = [
        shared_data / "radar" / "bom-66-2020-10-31",
        shared_data / "radar" / "mch-2015-05-15.nc",
    ]
    procs = [
        subprocess.Popen(
            nowcast_cmd("convert", src, "-o", out),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(),
        )
        for src in sources
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 1], outs
    lost = [o for p, o in zip(procs, outs) if p.returncode == 1][0]
    assert lost.strip() == f"Error: {out} exists: pass --overwrite to replace it", lost
    import xarray as xr

    winner = [src for p, src in zip(procs, sources) if p.returncode == 0][0]
    with xr.open_zarr(out) as ds:
        assert ds.sizes["time"] == (144 if winner.name.startswith("bom") else 40)
    assert not leftovers(tmp_path) and listing(tmp_path)[0] == "bom.zarr"


# ------------------------------------------------------------ train and prepare: never an input


@pytest.fixture
def event_folder(tmp_path) -> Path:
    """A small real-format event: one NetCDF file per time in a folder (synthetic rain)."""
    from nowcast.archive.synthetic import write_synthetic_archive

    folder = tmp_path / "event"
    write_synthetic_archive(folder, one_file_per_time=True, n_times=12, ny=16, nx=16)
    return folder


def _config(tmp_path, events, **extra) -> Path:
    lines = ["name: tiny", "data:", "  events:"]
    lines += [f"    - {e}" for e in events]
    lines += [f"  cache_dir: {extra.pop('cache_dir', tmp_path / 'cache')}", "  cache_workers: 1"]
    lines += ["sampler:", "  t_in: 3", "  t_out: 3", "  patch_size: 8", "  batch_size: 2"]
    lines += ["train:", "  epochs: 1", "  steps_per_epoch: 1"]
    path = tmp_path / "tiny.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_never_writes_into_an_input_event_folder(tmp_path, event_folder):
    config = _config(tmp_path, [event_folder])
    before = md5s(tmp_path)
    for output in (event_folder, event_folder / "run", event_folder / "a" / "b"):
        res = cli("train", config, "--output", output)
        one_line_error(res, f"--output {output}", "input")
    (tmp_path / "runs").mkdir()
    glob_config = _config(tmp_path / "runs", [f"{tmp_path}/ev*"])  # a glob matching the folder
    res = cli("train", glob_config, "--output", event_folder / "run")
    one_line_error(res, "inside the input")
    assert md5s(event_folder) == before_event(before, tmp_path, event_folder)
    assert not (tmp_path / "cache").exists()


def before_event(before: dict, root: Path, folder: Path) -> dict:
    prefix = str(folder.relative_to(root)) + "/"
    return {k[len(prefix) :]: v for k, v in before.items() if k.startswith(prefix)}


def test_prepare_cache_dir_never_inside_an_input(tmp_path, event_folder):
    config = _config(tmp_path, [event_folder], cache_dir=event_folder / "cache")
    before = md5s(event_folder)
    res = cli("prepare", config, "--set", "sampler.prepared=true")
    one_line_error(res, "data.cache_dir", "inside the input")
    res = cli("train", _config(tmp_path, [event_folder], cache_dir=event_folder), "-o", tmp_path)
    one_line_error(res, "data.cache_dir", "is the input")
    assert md5s(event_folder) == before and not (event_folder / "cache").exists()


def test_train_never_replaces_its_config_file(tmp_path, event_folder):
    config = _config(tmp_path, [event_folder])
    mine = tmp_path / "config.yaml"
    mine.write_text(config.read_text() + "# my notes\n")
    before = md5s(tmp_path)
    res = cli("train", mine, "--output", tmp_path)
    one_line_error(res, "config.yaml would replace")
    assert md5s(tmp_path) == before


# ------------------------------------------------------------ ~ and $VARIABLES in config paths


def test_config_paths_expand_home_and_variables(tmp_path, monkeypatch, event_folder):
    from nowcast.config import load_batch_config, load_config
    from nowcast.errors import ConfigError

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NOWCAST_TEST_DATA", str(event_folder))
    config = tmp_path / "conf" / "c.yaml"
    config.parent.mkdir()
    config.write_text(
        "data:\n  events: [$NOWCAST_TEST_DATA]\n  cache_dir: ~/x\n"
        "sampler:\n  split:\n    holdout_events: ['${NOWCAST_TEST_DATA}']\n"
        "train:\n  init_from: ~/runs/a\n"
    )
    cfg = load_config(config)
    assert cfg.data.events == (str(event_folder),)
    assert cfg.data.cache_dir == str(tmp_path / "x")
    assert cfg.sampler.split.holdout_events == (str(event_folder),)
    assert cfg.train.init_from == str(tmp_path / "runs" / "a")
    cfg = load_config(None, ["data.cache_dir=~/y"])
    assert cfg.data.cache_dir == str(tmp_path / "y")
    with pytest.raises(ConfigError, match="NOWCAST_UNSET_VARIABLE is not set"):
        load_config(None, ["data.cache_dir=$NOWCAST_UNSET_VARIABLE/c"])
    batch = tmp_path / "b.yaml"
    batch.write_text("inputs: [~/event]\noutput: $NOWCAST_TEST_DATA/../out\n")
    bcfg = load_batch_config(batch)
    assert bcfg.inputs == (str(tmp_path / "event"),)
    assert bcfg.output == f"{event_folder}/../out"
    assert not (config.parent / "~").exists()


# ------------------------------------------------------------ forecasts with wrong axes


def _bad_forecast(good: Path, out: Path, change: str) -> Path:
    import numpy as np
    import xarray as xr

    with xr.open_dataset(good) as ds:
        ds = ds.load()
    lead = ds.lead_time.values
    if change == "negative":
        ds = ds.assign_coords(lead_time=lead - lead[1])
    elif change == "zero":
        ds = ds.assign_coords(lead_time=lead - lead[0])
    elif change == "repeated":
        ds = ds.assign_coords(lead_time=np.r_[lead[:1], lead[:-1]])
    elif change == "reversed":
        ds = ds.assign_coords(lead_time=lead[::-1])
    elif change == "issue_twice":
        ds = ds.assign_coords(
            issue_time=np.repeat(ds.issue_time.values[:1], ds.sizes["issue_time"])
        )
    elif change == "valid_time":
        ds = ds.assign_coords(valid_time=ds.valid_time + np.timedelta64(5, "m"))
    if change != "valid_time":  # valid_time kept consistent: only the axis is wrong
        ds = ds.assign_coords(valid_time=ds.issue_time + ds.lead_time)
    ds.to_netcdf(out)
    return out


@pytest.mark.parametrize(
    "change, message",
    [
        ("negative", "lead_time has leads that are not positive (-5 min, 0 s)"),
        ("zero", "lead_time has leads that are not positive (0 s)"),
        ("repeated", "lead_time repeats a lead (5 min, 5 min, 10 min)"),
        ("reversed", "lead_time is not increasing (15 min, 10 min, 5 min)"),
        ("issue_twice", "issue time 2016-07-11 21:30 is given more than once"),
        ("valid_time", "valid_time is not issue_time + lead_time"),
    ],
)
def test_evaluate_and_render_refuse_a_forecast_with_wrong_axes(tmp_path, mch, change, message):
    good = tmp_path / "good.nc"
    res = predict(
        mch,
        good,
        "--method",
        "persistence",
        "--leads",
        "3",
        "--issue-time",
        ISSUE,
        "--issue-time",
        "2016-07-11T21:40",
    )
    assert res.exit_code == 0, res.output
    bad = _bad_forecast(good, tmp_path / "bad.nc", change)
    before = md5s(tmp_path)
    res = cli("evaluate", "-f", bad, "--truth", mch, "-o", tmp_path / "report")
    one_line_error(res, str(bad), message, "not a forecast nowcast can use")
    res = cli("render", bad, "-o", tmp_path / "maps")
    one_line_error(res, message)
    assert md5s(tmp_path) == before and not (tmp_path / "report").exists()
    res = cli("info", bad)
    assert res.exit_code == 0, res.output
    problem = [line for line in res.output.splitlines() if line.startswith("PROBLEM")]
    assert problem and message in problem[0], res.output
    assert "step -" not in res.output
    res = cli("info", good)
    assert res.exit_code == 0 and "PROBLEM" not in res.output
    assert "leads:" in res.output and "3: 5 min .. 15 min, step 5 min" in res.output


# ------------------------------------------------------------ events are told apart by their path


@pytest.fixture
def twin_events(tmp_path) -> list[Path]:
    """Two different events with the same file name, a/ev.nc and b/ev.nc."""
    from nowcast.archive.synthetic import write_synthetic_archive

    return [
        write_synthetic_archive(tmp_path / d / "ev.nc", n_times=30, ny=40, nx=40, seed=s)[0]
        for d, s in (("a", 1), ("b", 2))
    ]


def _prepare_config(tmp_path, events, *extra) -> Path:
    config = tmp_path / f"exp{len(list(tmp_path.glob('exp*.yaml')))}.yaml"
    lines = ["data:", "  events:", *[f"    - {e}" for e in events], "  cache_dir: cache"]
    lines += ["  cache_workers: 1", "sampler:", "  t_in: 3", "  t_out: 3", "  patch_size: 16"]
    lines += ["  batch_size: 4", "  prepared: true", *extra]
    config.write_text("\n".join(lines) + "\n")
    return config


def test_events_with_the_same_file_name_keep_their_stores(tmp_path, twin_events):
    a, b = twin_events
    before = md5s(tmp_path)
    res = cli("prepare", _prepare_config(tmp_path, [a, b]))
    assert res.exit_code == 0, res.output
    stores = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache").glob("*.zarr"))
    assert stores == ["a-ev-frames", "b-ev-frames"], res.output
    assert "2 prepared stores" in res.output
    for line in res.output.splitlines()[:-1]:  # each store listed is there
        if line.endswith(".zarr"):
            assert Path(line.split()[-1]).is_dir(), line
    # each alone (the usual name "ev"), one after the other, into the same cache
    for event in (a, b, a):
        res = cli("prepare", _prepare_config(tmp_path, [event]))
        assert res.exit_code == 0, res.output
    singles = sorted((tmp_path / "cache").glob("ev-frames-*.zarr"))
    assert len(singles) == 2, singles  # neither deleted the other's
    res = cli("prepare", _prepare_config(tmp_path, [a]))
    assert "computing" not in res.output  # a's store was kept, not rebuilt
    assert {k: v for k, v in md5s(tmp_path).items() if not k.startswith("cache")} == {
        **before,
        **{p.name: md5s(tmp_path)[p.name] for p in tmp_path.glob("exp*.yaml")},
    }


def test_holding_out_one_of_two_same_named_events(tmp_path, twin_events):
    from nowcast.config import load_config
    from nowcast.errors import ConfigError
    from nowcast.trainset.plan import plan_windows

    a, b = twin_events
    split = ["  split:", "    validation: 0.25", "    holdout_events:"]
    cfg = load_config(_prepare_config(tmp_path, [a, b], *split, f"      - {a}"))
    plan = plan_windows(cfg)
    assert [ev.name for ev in plan.events] == ["a-ev", "b-ev"]
    held = [set(ev.labels.tolist()) for ev in plan.events]
    assert held[0] == {2} and held[1] != {2}, held  # a only (2: test)
    # through a link and a relative path with ..: the same event
    (tmp_path / "link").symlink_to(tmp_path / "a")
    cfg = load_config(_prepare_config(tmp_path, [a, b], *split, "      - link/../a/ev.nc"))
    assert [set(ev.labels.tolist()) == {2} for ev in plan_windows(cfg).events] == [True, False]
    cfg = load_config(_prepare_config(tmp_path, [a, b], *split, "      - ev"))
    with pytest.raises(ConfigError, match="'ev' names 2 events .*: give the event's path"):
        plan_windows(cfg)


# ------------------------------------------------------------ input quality control (clutter)


@pytest.fixture
def clutter(tmp_path, shared_data) -> Path:
    """The MeteoSwiss event with radar clutter (2 x 3 pixels of 1e6 mm/h in every frame) and
    one negative value."""
    import xarray as xr

    with xr.open_dataset(shared_data / "radar" / "mch-2016-07-11.nc") as ds:
        ds = ds.load()
    values = ds.precipitation_rate.values
    values[:, 300:302, 400:403] = 1e6
    values[-1, 10, 10] = -3.0
    ds.precipitation_rate.values[:] = values
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "in" / "clutter.nc"
    ds.to_netcdf(path)
    return path


QC_WARNING = (
    "input value(s) above the plausible maximum of 500 mm/h (radar clutter?) were masked as missing"
)


@pytest.mark.parametrize(
    "method, frames",
    [
        (["--method", "persistence"], 2),
        (["--method", "extrapolation"], 3),
        (["--method", "sprog"], 3),
        (["--model", "radar-5min-deterministic"], 4),
    ],
)
def test_clutter_is_masked_for_every_method_with_one_warning(tmp_path, clutter, method, frames):
    import xarray as xr

    out = tmp_path / "fc.nc"
    res = predict(clutter, out, *method, "--issue-time", ISSUE, "--leads", "2")
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == f"wrote {out}" and len(lines) == 2, res.output
    assert (
        lines[1]
        == f"Warning: {6 * frames} {QC_WARNING}; set it with nowcast --max-rain or NOWCAST_MAX_RAIN"
    )
    with xr.open_dataset(out) as ds:
        assert float(ds.precipitation_rate.max()) < 500


def test_the_plausible_maximum_is_configurable(tmp_path, clutter, monkeypatch):
    import xarray as xr

    out = tmp_path / "fc.nc"
    res = cli(
        "--max-rain",
        "2e6",
        "predict",
        "-i",
        clutter,
        "-o",
        out,
        "--method",
        "persistence",
        "--issue-time",
        ISSUE,
        "--leads",
        "1",
    )
    assert res.exit_code == 0 and res.output.strip() == f"wrote {out}", res.output
    with xr.open_dataset(out) as ds:
        assert float(ds.precipitation_rate.max()) == 1e6
    monkeypatch.setenv("NOWCAST_MAX_RAIN", "50")
    res = predict(clutter, tmp_path / "f50.nc", "--method", "persistence", "--issue-time", ISSUE)
    assert res.exit_code == 0 and "maximum of 50 mm/h" in res.output, res.output
    monkeypatch.setenv("NOWCAST_MAX_RAIN", "lots")
    res = predict(clutter, tmp_path / "bad.nc", "--method", "persistence", "--issue-time", ISSUE)
    one_line_error(res, "NOWCAST_MAX_RAIN='lots': the plausible maximum rain rate must be")
    res = cli("--max-rain", "-1", "info", clutter)
    assert res.exit_code == 2 and "--max-rain" in res.output


def test_info_reports_implausible_and_negative_values(clutter):
    res = cli("info", clutter)
    assert res.exit_code == 0, res.output
    assert (
        "implausible:  240 above 500 mm/h (masked as missing), 1 negative (set to 0)" in res.output
    )
    assert "Warning" not in res.output  # said once, in the description


def test_evaluate_masks_clutter_in_the_truth(tmp_path, clutter, mch):
    fc = tmp_path / "fc.nc"
    assert (
        predict(mch, fc, "--method", "persistence", "--issue-time", ISSUE, "--leads", "2").exit_code
        == 0
    )
    res = cli("evaluate", "-f", fc, "--truth", clutter, "-o", tmp_path / "report")
    assert res.exit_code == 0, res.output
    assert f"Warning: 12 {QC_WARNING}" in res.output  # the two truth frames


@pytest.mark.slow  # a LocalCluster batch
def test_batch_reports_clutter_once(tmp_path, clutter):
    config = tmp_path / "batch.yaml"
    config.write_text(
        f"inputs: [{clutter}]\noutput: {tmp_path / 'out'}\nmethods: [persistence]\n"
        "start: 2016-07-11T21:30\nend: 2016-07-11T21:40\nn_leads: 1\nrender:\n  enabled: false\n"
    )
    res = cli("batch", config, "--workers", "1", "--no-progress")
    assert res.exit_code == 0, res.output
    # issue times 21:30 and 21:40 read frames 21:25, 21:30, 21:35, 21:40: each counted once
    assert f"warning: 24 {QC_WARNING}" in res.output, res.output


# ------------------------------------------------------------ render --point: names and places


@pytest.fixture
def mch_forecast(tmp_path, mch) -> Path:
    fc = tmp_path / "fc.nc"
    res = predict(mch, fc, "--method", "persistence", "--issue-time", ISSUE, "--leads", "2")
    assert res.exit_code == 0, res.output
    return fc


def test_two_nearby_points_get_files_of_their_own(tmp_path, mch_forecast):
    out = tmp_path / "series"
    res = cli("render", mch_forecast, "--point", "47.001,7.3", "--point", "47.004,7.3",
              "--point", "46.5,8.0", "--point", "46.5,8.0", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "index.html",  # the folder's page
        "point_46.50-N-8.00-E.csv", "point_46.50-N-8.00-E.png",  # given twice: once
        "point_47.001-N-7.300-E.csv", "point_47.001-N-7.300-E.png",
        "point_47.004-N-7.300-E.csv", "point_47.004-N-7.300-E.png",
    ]  # fmt: skip
    import pandas as pd

    lats = {float(pd.read_csv(out / f"point_47.00{k}-N-7.300-E.csv").latitude[0]) for k in (1, 4)}
    assert lats == {47.001, 47.004}
    places = tmp_path / "places.csv"
    places.write_text("name,lat,lon\nSt Gallen,47.42,9.37\nSt-Gallen,47.43,9.38\n")
    before = listing(tmp_path)
    res = cli("render", mch_forecast, "--places", places, "--point", "St Gallen",
              "--point", "St-Gallen", "-o", tmp_path / "o")  # fmt: skip
    one_line_error(res, "would both be written to point_St-Gallen", "different names")
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"name,lat,lon\nZurich,47.37,8.54\nzurich,47.0,7.3\n",
            "line 3: place 'zurich' is already on line 2 (names are compared without case)",
        ),
        (b"name,lat,lon\nZurich,47.37,8.54,99\n", "line 2: 4 fields, the header has 3"),
        (b"name,lat,lon\nZurich,47.37\n", "line 2: 2 fields, the header has 3"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text CSV file"),
        (b"name,lat,lon\nZ\x00rich,47.37,8.54\n", "not a text CSV file (binary content)"),
        (b"name,lat,lon\nZurich,north,8.54\n", "line 2: latitude/longitude are not numbers"),
    ],
)
def test_places_file_errors_name_the_line(tmp_path, mch_forecast, content, message):
    places = tmp_path / "places.csv"
    places.write_bytes(content)
    res = cli("render", mch_forecast, "--places", places, "--point", "Zurich", "-o", tmp_path / "o")
    one_line_error(res, str(places), message)
    assert not (tmp_path / "o").exists()


def test_longitude_358_is_2_west(tmp_path, shared_data):
    import pandas as pd

    src = shared_data / "era5" / "era5-t2m-2019-03-uk.nc"
    fc = tmp_path / "t2m.nc"
    res = cli("predict", "--method", "persistence", "-i", src, "--issue-time", "2019-03-20T12:00",
              "--leads", "2", "-o", fc)  # fmt: skip
    assert res.exit_code == 0, res.output
    for lon in ("358", "-2"):
        res = cli("render", fc, "--point", f"52.5,{lon}", "-o", tmp_path / lon)
        assert res.exit_code == 0, res.output
    west = pd.read_csv(tmp_path / "-2" / "point_52.50-N-2.00-W.csv")
    east = pd.read_csv(tmp_path / "358" / "point_52.50-N-2.00-W.csv")
    pd.testing.assert_frame_equal(west, east)


# ------------------------------------------------------------ grids too small for a method


def _crop(shared_data, out: Path, size: int, centre=(422, 467)) -> Path:
    import xarray as xr

    cy, cx = centre
    half = size // 2
    with xr.open_dataset(shared_data / "radar" / "mch-2016-07-11.nc") as ds:
        ds.isel(
            y=slice(cy - half, cy - half + size), x=slice(cx - half, cx - half + size)
        ).to_netcdf(out)
    return out


@pytest.mark.parametrize(
    "method", [["--method", "extrapolation"], ["--method", "sprog"], ["--model", "radar-5min"]]
)
def test_a_grid_too_small_for_the_flow_is_refused(tmp_path, shared_data, method):
    small = _crop(shared_data, tmp_path / "c8.nc", 8)
    res = predict(small, tmp_path / "fc.nc", *method, "--issue-time", ISSUE)
    one_line_error(res, "the grid is 8 x 8 pixels, too small", "at least 16 x 16")
    assert not (tmp_path / "fc.nc").exists() and not leftovers(tmp_path)
    res = predict(small, tmp_path / "p.nc", "--method", "persistence", "--issue-time", ISSUE)
    assert res.exit_code == 0, res.output  # persistence needs no flow


def test_sprog_that_cannot_build_its_cascade_says_so(tmp_path, shared_data):
    small = _crop(shared_data, tmp_path / "c20.nc", 20)  # the flow moves one level out
    res = predict(small, tmp_path / "fc.nc", "--method", "sprog", "--issue-time", ISSUE)
    one_line_error(res, "sprog: the 6-level cascade cannot be computed on this 20 x 20 grid",
                   "--method extrapolation")  # fmt: skip
    assert "ValueError" not in res.output


# ------------------------------------------------------------ interrupts (real SIGINT)


@pytest.mark.slow  # a real Ctrl-C during a real 200 MB NetCDF write
def test_ctrl_c_during_predicts_netcdf_write_ends_cleanly(tmp_path, mch):
    """Ctrl-C while xarray writes: it used to be raised inside xarray's lock release, leaving
    the NetCDF lock held, and the writer's cleanup then waited for it forever."""
    from safety_helpers import interrupt_when

    out = tmp_path / "out"
    out.mkdir()
    cmd = nowcast_cmd("predict", "--method", "persistence", "-i", mch, "--start",
                      "2016-07-11T21:00", "--end", "2016-07-11T21:45", "--leads", "12",
                      "-o", out / "fc.nc")  # fmt: skip
    for _ in range(3):
        rc, text, sent = interrupt_when(
            cmd, lambda: bool(list(out.glob(".fc.nc.*/fc.nc"))), delay=0.3, timeout=600
        )
        if sent and rc == 0:  # the write finished just before the signal: try again
            (out / "fc.nc").unlink()
            continue
        break
    assert sent and rc == 130 and text.strip() == "Interrupted.", text
    assert listing(out) == []


def test_a_ctrl_c_swallowed_by_a_finaliser_still_stops_the_next_output(tmp_path):
    import gc
    import os
    import signal
    import sys

    from nowcast.interrupts import catch_interrupts, interrupted

    class SwallowsCtrlC:  # a library object whose __del__ runs when Ctrl-C arrives
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        unraisable = []
        hook = sys.unraisablehook
        sys.unraisablehook = unraisable.append  # what Python would print
        try:
            catch_interrupts()  # wraps the hook: a Ctrl-C it was told of is not printed
            obj = SwallowsCtrlC()
            del obj  # KeyboardInterrupt raised in __del__: "Exception ignored", and lost
            gc.collect()
        finally:
            sys.unraisablehook = hook
        assert interrupted() and unraisable == []
        with pytest.raises(KeyboardInterrupt), atomic_output(tmp_path / "map.png") as tmp:
            tmp.write_bytes(b"png")
        assert listing(tmp_path) == []
    finally:
        signal.signal(signal.SIGINT, before)
        catch_interrupts()  # clears the flag (the handler is the test's again)
        signal.signal(signal.SIGINT, before)


@pytest.mark.slow  # a real Ctrl-C to a real render with worker processes
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_during_render_leaves_no_maps_folder(tmp_path, mch, workers):
    from safety_helpers import interrupt_when

    fc = tmp_path / "fc.nc"
    res = predict(mch, fc, "--method", "persistence", "--issue-time", ISSUE, "--leads", "12")
    assert res.exit_code == 0, res.output
    maps = tmp_path / "maps"
    cmd = nowcast_cmd("render", fc, "--truth", mch, "-o", maps, "--workers", workers)
    for _ in range(3):
        rc, text, sent = interrupt_when(
            cmd, lambda: bool(list(tmp_path.glob(".maps.*/maps/*.png"))), timeout=600
        )
        if sent and rc == 0:  # all maps were written before the signal: try again
            shutil.rmtree(maps)
            continue
        break
    assert sent and rc == 130, text
    assert text.strip().splitlines()[-1] == "Interrupted.", text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert not maps.exists() and not leftovers(tmp_path)
    # a rerun writes the folder whole
    res = cli("render", fc, "--truth", mch, "-o", maps)
    assert res.exit_code == 0 and len(list(maps.glob("*.png"))) == 12, res.output


@pytest.mark.slow  # a real Ctrl-C to a real prepare with worker processes
def test_ctrl_c_during_prepare_prints_no_worker_traceback(tmp_path, mch):
    from safety_helpers import interrupt_when

    config = tmp_path / "prep.yaml"
    config.write_text(
        f"data:\n  events: [{mch}]\n  cache_dir: {tmp_path / 'cache'}\n  cache_workers: 2\n"
        "sampler:\n  t_in: 3\n  t_out: 3\n  patch_size: 64\n  batch_size: 4\n  prepared: true\n"
        "  split:\n    validation: 0.25\n"
    )
    cmd = nowcast_cmd("prepare", config)
    rc, text, sent = interrupt_when(
        cmd, lambda: bool(list((tmp_path / "cache").glob("*.zarr"))), delay=3.0, timeout=600
    )
    assert sent and rc == 130, text
    assert text.strip().splitlines()[-1] == "Interrupted.", text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    res = cli("prepare", config)  # resumes: the store is complete afterwards
    assert res.exit_code == 0 and "1 prepared stores" in res.output, res.output


# ------------------------------------------------------------ errors a user can act on


def test_every_without_a_unit_is_an_error(tmp_path, mch):
    from nowcast.config import load_batch_config
    from nowcast.errors import ConfigError

    res = predict(mch, tmp_path / "fc.nc", "--method", "persistence", "--start",
                  "2016-07-11T21:00", "--every", "5")  # fmt: skip
    one_line_error(res, "--every '5' has no unit: write e.g. 5min, 5h or 5s")
    res = predict(mch, tmp_path / "fc.nc", "--method", "persistence", "--start",
                  "2016-07-11T21:00", "--every", "0min")  # fmt: skip
    one_line_error(res, "--every '0min' is not a positive time interval")
    config = tmp_path / "b.yaml"
    config.write_text(f"inputs: [{mch}]\nevery: '5'\n")
    with pytest.raises(ConfigError, match="every: '5' has no unit"):
        load_batch_config(config)
    res = predict(mch, tmp_path / "ok.nc", "--method", "persistence", "--start",
                  "2016-07-11T23:00", "--every", "PT30M", "--leads", "1")  # fmt: skip
    assert res.exit_code == 0, res.output


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs (root only; skipped where it cannot be mounted)."""
    import subprocess as sp

    folder = tmp_path / "small-disk"
    folder.mkdir()
    res = sp.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                 capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.strip() or res.returncode}")
    try:
        yield folder
    finally:
        sp.run(["umount", "-l", str(folder)], capture_output=True)  # lazy: a handle may linger


@pytest.mark.parametrize("name", ["fc.nc", "fc.zarr"])
def test_a_full_disk_during_predict_names_the_output(full_disk, mch, name):
    out = full_disk / name
    res = predict(mch, out, "--method", "persistence", "--start", "2016-07-11T21:00",
                  "--end", "2016-07-11T21:30", "--leads", "12")  # fmt: skip
    one_line_error(res, f"cannot write {out}: No space left on device")
    assert listing(full_disk) == []  # nothing partial, no temporary


def test_a_full_disk_during_prepare_names_the_store_folder(full_disk, mch, tmp_path):
    config = tmp_path / "prep.yaml"
    config.write_text(
        f"data:\n  events: [{mch}]\n  cache_dir: {full_disk / 'cache'}\n  cache_workers: 2\n"
        "sampler:\n  t_in: 3\n  t_out: 3\n  patch_size: 64\n  batch_size: 4\n  prepared: true\n"
        "  split:\n    validation: 0.25\n"
    )
    res = cli("prepare", config)
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines()[-1] == (
        f"Error: cannot write the prepared stores in {full_disk / 'cache'}: No space left on device"
    ), res.output
    assert "Traceback" not in res.output


def test_a_symbolic_link_loop_in_an_input_folder_is_skipped_with_a_warning(tmp_path, shared_data):
    folder = tmp_path / "bom"
    folder.mkdir()
    for name in sorted((shared_data / "radar" / "bom-66-2020-10-31").iterdir())[:3]:
        shutil.copyfile(name, folder / name.name)
    (folder / "loop.nc").symlink_to("loop.nc")
    (folder / "gone.nc").symlink_to("nowhere.nc")
    (folder / "a.nc").symlink_to("b.nc")
    (folder / "b.nc").symlink_to("a.nc")
    before = md5s(folder)
    res = predict(folder, tmp_path / "fc.nc", "--method", "persistence", "--issue-time",
                  "2020-10-31T00:20", "--leads", "1")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        f"Warning: skipped 4 entries of {folder} that cannot be read: a.nc (a symbolic-link "
        "loop), b.nc (a symbolic-link loop), gone.nc (a broken symbolic link), loop.nc (a "
        "symbolic-link loop)",
        f"wrote {tmp_path / 'fc.nc'}",
    ]
    assert md5s(folder) == before


def test_an_extra_dimension_is_named(tmp_path, shared_data):
    import xarray as xr

    with xr.open_dataset(shared_data / "radar" / "mch-2016-07-11.nc") as ds:
        ds = ds.isel(time=slice(0, 6)).load()
    rate = ds.precipitation_rate
    ds["precipitation_rate"] = xr.concat([rate, rate], dim="member").transpose(
        "time", "member", "y", "x"
    )
    path = tmp_path / "ensemble.nc"
    ds.to_netcdf(path)
    expected = (
        f"{path}: variable 'precipitation_rate' has an extra dimension 'member' of size 2 "
        "besides (time, y, x): select one member first (e.g. with xarray: ds.isel(member=0))"
    )
    for args in (
        ["info", path],
        [
            "predict",
            "--method",
            "persistence",
            "-i",
            path,
            "--issue-time",
            "2016-07-11T20:45",
            "-o",
            tmp_path / "f.nc",
        ],
    ):
        assert one_line_error(cli(*args)) == f"Error: {expected}"  # fmt: skip
