"""Batch pipelines: config, issue times, one task in-process, and `nowcast batch` on a cluster.

The cluster tests share one LocalCluster of 2 worker processes (made by the pipeline's own
``batch_client``) and a tiny synthetic archive.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from nowcast.config import BatchConfig, BatchRenderConfig, load_batch_config
from nowcast.errors import ConfigError

STEP = pd.Timedelta("5min")
START = pd.Timestamp("2021-06-01T12:00")
N_TIMES = 12


def _write_archive(folder: Path, *, one_file_per_time: bool = True) -> list[Path]:
    from nowcast.archive.synthetic import write_synthetic_archive

    return write_synthetic_archive(
        folder,
        one_file_per_time=one_file_per_time,
        n_times=N_TIMES,
        ny=24,
        nx=28,
        seed=3,
        start=str(START),
        step="5min",
    )


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    _write_archive(folder)
    return folder


@pytest.fixture(scope="module")
def archive(archive_dir):
    from nowcast.archive import open_archive

    return open_archive(archive_dir)


def _cfg(inputs, output, **kw) -> BatchConfig:
    kw.setdefault("render", BatchRenderConfig(enabled=False))
    return BatchConfig(inputs=(str(inputs),), output=str(output), **kw).validate()


# --------------------------------------------------------------------------- config


def test_load_batch_config_resolves_and_overrides(tmp_path, archive_dir):
    (tmp_path / "data").symlink_to(archive_dir)
    path = tmp_path / "b.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "mode": "backfill",
                "inputs": ["data"],
                "methods": ["persistence"],
                "start": "2021-06-01T12:10",
                "render": {"leads": [1]},
            }
        )
    )
    cfg = load_batch_config(path, ["n_leads=3", "render.leads=[1,3]", "every=10min"])
    assert cfg.inputs == (str(tmp_path / "data"),)  # relative to the config's folder
    assert (cfg.mode, cfg.n_leads, cfg.render.leads, cfg.every, cfg.start) == (
        "backfill",
        3,
        (1, 3),
        "10min",
        "2021-06-01T12:10",
    )
    assert cfg.workers == 2 and cfg.output == "batch-output"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"render": {"colour": 1}}, "render.colour"),
        ({"methods": ["convlstm"]}, "convlstm needs model"),
        ({"every": "soon"}, "every"),
        ({"start": "2021-06-02", "end": "2021-06-01"}, "after end"),
        ({"n_leads": 3, "render": {"leads": [4]}}, "render.leads"),
        ({"inputs": []}, "inputs"),
        ({"mode": "nightly"}, "mode"),
    ],
)
def test_load_batch_config_errors(tmp_path, values, message):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"inputs": ["x.nc"], **values}))
    with pytest.raises(ConfigError, match=message):
        load_batch_config(path)


# --------------------------------------------------------------------------- catalog and plan


def test_issue_times_defaults_and_every(archive_dir):
    from pipelines.catalog import build_catalog, issue_times

    cat = build_catalog([str(archive_dir)], variable=None, kind="precipitation")
    assert cat.step == STEP and len(cat.times) == N_TIMES and not cat.bad_files
    times = issue_times(cat, start=None, end=None, every=None, t_in=3)
    assert (
        times[0] == START + 2 * STEP
        and times[-1] == START + (N_TIMES - 1) * STEP
        and len(times) == N_TIMES - 2
    )
    times = issue_times(
        cat, start="2021-06-01T12:10", end="2021-06-01T12:40", every="10min", t_in=1
    )
    assert list(times.strftime("%H:%M")) == ["12:10", "12:20", "12:30", "12:40"]


def test_truncated_input_fails_only_the_issue_times_needing_it(tmp_path):
    """open_archive rejects a truncated file on open, so the catalog drops it and plans the
    issue times whose t_in input frames include its time as failed, naming the file."""
    from pipelines.catalog import build_catalog
    from pipelines.runner import plan

    files = _write_archive(tmp_path / "arch")
    bad = files[5]
    os.truncate(bad, bad.stat().st_size // 2)
    cat = build_catalog([str(tmp_path / "arch")], variable=None, kind="precipitation")
    assert len(cat.sources) == N_TIMES - 1 and str(bad) not in cat.sources
    assert (
        cat.bad_files[0].after == START + 4 * STEP and cat.bad_files[0].before == START + 6 * STEP
    )
    cfg = _cfg(tmp_path / "arch", tmp_path / "out", methods=("extrapolation",))
    times, tasks, skipped, failed = plan(cfg, cat, t_in=3)
    t5 = START + 5 * STEP
    assert set(failed) == {t5, t5 + STEP, t5 + 2 * STEP}
    assert all(bad.name in msg and "not a readable NetCDF file" in msg for msg in failed.values())
    assert len(tasks) == len(times) - 3 and not skipped


# --------------------------------------------------------------------------- one task, in-process


def _task(cfg, issue, catalog):
    from nowcast.render import RenderOptions
    from pipelines.runner import signature
    from pipelines.tasks import IssueTask, RenderSpec

    r = cfg.render
    return IssueTask(
        issue_time=issue,
        sources=catalog.sources,
        stamps=catalog.stamps,
        variable=None,
        kind="precipitation",
        methods=cfg.methods,
        model=None,
        n_leads=cfg.n_leads,
        output=cfg.output,
        signature=signature(cfg),
        render=RenderSpec(RenderOptions(leads=r.leads, map_data=r.map_data), truth=r.truth)
        if r.enabled
        else None,
    )


def test_run_issue_time_writes_forecast_maps_and_manifest(
    tmp_path, archive_dir, archive, shared_data
):
    from nowcast.products import read_forecast
    from pipelines.catalog import build_catalog
    from pipelines.outputs import forecast_path, is_complete, manifest_path
    from pipelines.runner import signature
    from pipelines.tasks import run_issue_time

    render = BatchRenderConfig(leads=(1, 3), truth=True, map_data=str(shared_data / "maps"))
    cfg = _cfg(archive_dir, tmp_path / "out", methods=("persistence",), n_leads=3, render=render)
    cat = build_catalog(cfg.inputs, variable=None, kind="precipitation")
    issue = START + 4 * STEP
    res = run_issue_time(_task(cfg, issue, cat))
    assert res.status == "done", res.error
    fc = read_forecast(forecast_path(cfg.output, "persistence", issue))
    assert fc.sizes["lead_time"] == 3 and list(fc.issue_time.values) == [issue.to_datetime64()]
    frame = archive.sel(time=issue).values
    for k in range(3):  # persistence: the issue-time frame at every lead
        np.testing.assert_array_equal(fc.isel(issue_time=0, lead_time=k).values, frame)
    manifest = json.loads(manifest_path(cfg.output, issue).read_text())
    pngs = [Path(cfg.output) / p for p in manifest["maps"]["persistence"]]
    assert len(pngs) == 2 and all(p.suffix == ".png" and p.stat().st_size > 0 for p in pngs)
    assert manifest["forecasts"] == {
        "persistence": "forecasts/persistence/persistence_20210601T1220.nc"
    }

    sig = signature(cfg)
    assert is_complete(cfg.output, issue, sig)
    assert not is_complete(cfg.output, issue + STEP, sig)  # never run
    assert not is_complete(cfg.output, issue, {**sig, "n_leads": 4})  # other settings
    pngs[0].unlink()
    assert not is_complete(cfg.output, issue, sig)  # an output is gone


def test_is_complete_rejects_a_broken_forecast(tmp_path, archive_dir):
    from pipelines.catalog import build_catalog
    from pipelines.outputs import forecast_path, is_complete
    from pipelines.runner import signature
    from pipelines.tasks import run_issue_time

    cfg = _cfg(archive_dir, tmp_path / "out", methods=("persistence",), n_leads=2)
    cat = build_catalog(cfg.inputs, variable=None, kind="precipitation")
    issue = START + 2 * STEP
    assert run_issue_time(_task(cfg, issue, cat)).status == "done"
    assert is_complete(cfg.output, issue, signature(cfg))
    path = forecast_path(cfg.output, "persistence", issue)
    os.truncate(path, path.stat().st_size // 3)
    assert not is_complete(cfg.output, issue, signature(cfg))


def test_run_issue_time_reports_failure_without_raising(tmp_path, archive_dir):
    from pipelines.catalog import build_catalog
    from pipelines.outputs import manifest_path
    from pipelines.tasks import run_issue_time

    cfg = _cfg(archive_dir, tmp_path / "out", methods=("persistence",), n_leads=2)
    cat = build_catalog(cfg.inputs, variable=None, kind="precipitation")
    late = START + (N_TIMES + 3) * STEP
    res = run_issue_time(_task(cfg, late, cat))
    assert res.status == "failed" and "outside the archive" in res.error and "\n" not in res.error
    assert not manifest_path(cfg.output, late).exists()


def test_file_broken_after_the_scan_fails_only_its_issue_times(tmp_path):
    """The worker falls back to the readable files when a file breaks after the client scanned."""
    from pipelines.catalog import build_catalog
    from pipelines.tasks import run_issue_time

    files = _write_archive(tmp_path / "arch")
    cfg = _cfg(tmp_path / "arch", tmp_path / "out", methods=("persistence",), n_leads=2)
    cat = build_catalog(cfg.inputs, variable=None, kind="precipitation")
    assert not cat.bad_files
    os.truncate(files[7], 100)
    broken = run_issue_time(_task(cfg, START + 7 * STEP, cat))
    assert broken.status == "failed" and files[7].name in broken.error
    ok = run_issue_time(_task(cfg, START + 8 * STEP, cat))  # persistence needs only its own frame
    assert ok.status == "done", ok.error


# --------------------------------------------------------------------------- on a cluster


@pytest.fixture(scope="module")
def client():
    from pipelines.runner import batch_client

    with batch_client(workers=2) as c:
        yield c


def _expected(method, archive, issue, n_leads):
    from nowcast.methods import forecast_many, get_method

    return forecast_many(get_method(method), archive, [issue], n_leads).isel(issue_time=0).values


@pytest.mark.slow
def test_cli_batch_operational_on_cluster(tmp_path, archive_dir, archive, client):
    """Persistence on 2 workers: outputs right, failures reported, exit 1; a rerun redoes none."""
    from nowcast.cli import main
    from nowcast.products import read_forecast
    from pipelines.outputs import forecast_path, manifest_path

    out = tmp_path / "out"
    end = START + (N_TIMES + 1) * STEP  # two issue times past the archive's end: they fail
    config = tmp_path / "op.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mode": "operational",
                "inputs": [str(archive_dir)],
                "methods": ["persistence"],
                "n_leads": 4,
                "output": str(out),
                "render": {"enabled": False},
            }
        )
    )
    args = [
        "batch",
        str(config),
        "--scheduler",
        client.scheduler.address,
        "--no-progress",
        "--end",
        end.isoformat(),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    issues = pd.date_range(START, end, freq=STEP)  # persistence needs 1 frame
    good = [t for t in issues if t <= START + (N_TIMES - 1) * STEP]
    assert (
        f"{len(issues)} issue times: {len(good)} done, 0 skipped (already complete), 2 failed"
        in result.output
    )
    assert result.output.count("FAILED") == 2 and "outside the archive" in result.output
    for t in good:
        assert manifest_path(out, t).is_file()
        fc = read_forecast(forecast_path(out, "persistence", t)).isel(issue_time=0)
        assert fc.sizes["lead_time"] == 4
        for k in range(4):  # persistence: the issue-time frame at every lead
            np.testing.assert_array_equal(fc.isel(lead_time=k).values, archive.sel(time=t).values)
    summary = json.loads((out / "batch-summary.json").read_text())
    assert len(summary["done"]) == len(good) and len(summary["failed"]) == 2
    page = (out / "index.html").read_text()  # the batch's page: its last state
    assert f"{len(issues)} issue times: {len(good)} done, 0 already complete, 2 failed" in page
    assert "refresh" not in page and "outside the archive" in page
    assert result.output.splitlines()[-1] == f"page: {out / 'index.html'}"

    mtimes = {t: forecast_path(out, "persistence", t).stat().st_mtime_ns for t in good}
    again = CliRunner().invoke(
        main,
        [
            *args[:2],
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--no-progress",
            "--end",
            good[-1].isoformat(),
        ],
    )
    assert again.exit_code == 0, again.output  # all complete: no cluster needed, nothing redone
    assert f"0 done, {len(good)} skipped" in again.output
    assert mtimes == {t: forecast_path(out, "persistence", t).stat().st_mtime_ns for t in good}


@pytest.mark.slow
def test_backfill_on_cluster_verifies_all_methods(tmp_path, archive_dir, archive, client):
    from pipelines import run_backfill

    cfg = _cfg(
        archive_dir,
        tmp_path / "out",
        mode="backfill",
        methods=("persistence", "extrapolation", "sprog"),
        n_leads=3,
        end=str(START + (N_TIMES - 4) * STEP),
        thresholds=(0.5, 2.0),
        scales=(1, 3),
        report_plots=False,
    )
    summary = run_backfill(cfg, client=client, progress=False)
    assert (
        summary.exit_code == 0
        and len(summary.done) == N_TIMES - 5
        and summary.report_issue_times == N_TIMES - 5
    )
    csv = [p for p in summary.report if p.suffix == ".csv"]
    assert csv and all(p.parent == Path(cfg.output) / "report" for p in summary.report)
    scores = pd.read_csv(csv[0])
    assert set(scores["method"]) == {"persistence", "extrapolation", "sprog"}
    assert sorted(scores["lead_time"].unique()) == [5, 10, 15]
    from nowcast.products import read_forecast
    from pipelines.outputs import forecast_path

    for t in summary.done[::3]:  # the workers' forecasts equal the same method run in-process
        fc = read_forecast(forecast_path(cfg.output, "extrapolation", t)).isel(issue_time=0).values
        np.testing.assert_array_equal(fc, _expected("extrapolation", archive, t, 3))


# --------------------------------------------------------------------------- real data


@pytest.mark.parametrize("name", ["batch-mch.yaml", "backfill-mch.yaml", "batch-bom.yaml"])
def test_example_configs_load_and_find_their_inputs(name, shared_data):
    cfg = load_batch_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert all(Path(p).exists() for p in cfg.inputs)
    assert cfg.render.map_data is None or Path(cfg.render.map_data).is_dir()


@pytest.mark.parametrize(
    "archive_path, issue",
    [
        ("radar/mch-2016-07-11.nc", "2016-07-11T21:30"),
        ("radar/bom-66-2020-10-31", "2020-10-31T05:00"),
    ],
)
def test_one_issue_time_on_real_archives(tmp_path, shared_data, archive_path, issue):
    """A single-file archive and a folder of one file per time (scalar times, accumulations)."""
    from nowcast.archive import open_archive
    from nowcast.products import read_forecast
    from pipelines.catalog import build_catalog
    from pipelines.outputs import forecast_path
    from pipelines.tasks import run_issue_time

    cfg = _cfg(shared_data / archive_path, tmp_path / "out", methods=("persistence",), n_leads=2)
    cat = build_catalog(cfg.inputs, variable=None, kind="precipitation")
    issue = pd.Timestamp(issue)
    res = run_issue_time(_task(cfg, issue, cat))
    assert res.status == "done", res.error
    fc = read_forecast(forecast_path(cfg.output, "persistence", issue))
    truth = open_archive(shared_data / archive_path).sel(time=issue).values
    np.testing.assert_array_equal(fc.isel(issue_time=0, lead_time=1).values, truth)
    assert fc.attrs["units"] == "mm h-1" and fc.attrs["grid_mapping"] in fc.coords


def test_task_reads_only_the_frames_its_issue_time_needs(tmp_path, archive_dir, monkeypatch):
    import nowcast.archive.reader as archive_module
    from pipelines.catalog import build_catalog
    from pipelines.tasks import run_issue_time

    reads = []
    original = archive_module.read_block

    def counting(info, variable, start, count, ysl, xsl):
        reads.append((Path(info.path).name, start, count))
        return original(info, variable, start, count, ysl, xsl)

    monkeypatch.setattr(archive_module, "read_block", counting)
    cfg = _cfg(archive_dir, tmp_path / "out", methods=("persistence",), n_leads=3)
    cat = build_catalog(cfg.inputs, variable=None, kind="precipitation")
    issue = START + 6 * STEP
    assert run_issue_time(_task(cfg, issue, cat)).status == "done"
    # forecast_many passes the last two frames (the step is read from them): 12:25 and 12:30
    assert sorted(reads) == [
        ("synthetic_20210601T122500.nc", 0, 1),
        ("synthetic_20210601T123000.nc", 0, 1),
    ]


def test_summary_lists_failures_then_counts():
    from pipelines.runner import MAX_FAILED_LINES, BatchSummary

    times = list(pd.date_range(START, periods=MAX_FAILED_LINES + 7, freq=STEP))
    s = BatchSummary(
        "operational",
        Path("out"),
        times,
        done=times[:2],
        failed={t: f"boom {i}" for i, t in enumerate(times[2:])},
    )
    lines = s.lines()
    assert lines[0] == "FAILED 2021-06-01 12:10: boom 0"
    assert sum(line.startswith("FAILED") for line in lines) == MAX_FAILED_LINES
    assert (
        lines[MAX_FAILED_LINES]
        == f"... and 5 more failed issue times (all in {Path('out') / 'batch-summary.json'})"
    )
    assert (
        f"{MAX_FAILED_LINES + 7} issue times: 2 done, 0 skipped (already complete), "
        f"{MAX_FAILED_LINES + 5} failed" in lines[-2]
    )
    assert (
        s.exit_code == 1 and BatchSummary("backfill", Path("out"), times, done=times).exit_code == 0
    )
