"""Batch faults on a LocalCluster of 2 worker processes: a worker killed mid-run, a rerun
after an interrupted batch, a corrupt input file inside the range.

Persistence keeps the tasks cheap; its expected output is known exactly (the issue-time
frame at every lead), so every output file is checked against the archive itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from nowcast.config import BatchConfig, BatchRenderConfig

pytestmark = pytest.mark.slow  # a LocalCluster of worker processes

STEP = pd.Timedelta("5min")
START = pd.Timestamp("2021-06-01T12:00")
N_LEADS = 3


def _write_archive(folder: Path, n_times: int) -> list[Path]:
    from nowcast.archive.synthetic import write_synthetic_archive

    return write_synthetic_archive(
        folder,
        one_file_per_time=True,
        n_times=n_times,
        ny=24,
        nx=24,
        seed=5,
        start=str(START),
        step="5min",
    )


def _cfg(inputs, output, **kw) -> BatchConfig:
    return BatchConfig(
        inputs=(str(inputs),),
        output=str(output),
        methods=("persistence",),
        n_leads=N_LEADS,
        render=BatchRenderConfig(enabled=False),
        **kw,
    ).validate()


def _check_outputs(output, archive, times) -> None:
    """Each issue time's forecast is complete and equals persistence of the archive."""
    from nowcast.products import read_forecast
    from pipelines.outputs import forecast_path, manifest_path

    for t in times:
        assert manifest_path(output, t).is_file(), t
        fc = read_forecast(forecast_path(output, "persistence", t)).isel(issue_time=0)
        assert fc.sizes["lead_time"] == N_LEADS
        frame = archive.sel(time=t).values
        for k in range(N_LEADS):
            np.testing.assert_array_equal(fc.isel(lead_time=k).values, frame)


@pytest.fixture(scope="module")
def client():
    from pipelines.runner import batch_client

    with batch_client(workers=2) as c:
        yield c


def test_worker_killed_mid_run_batch_still_completes(tmp_path, client):
    from nowcast.archive import open_archive
    from pipelines.runner import run_batch

    n = 20
    _write_archive(tmp_path / "arch", n)
    cfg = _cfg(tmp_path / "arch", tmp_path / "out")
    pids = client.run(os.getpid)  # {worker address: pid}
    manifests = tmp_path / "out" / "manifests"
    box: dict = {}

    def batch():
        try:
            box["summary"] = run_batch(cfg, client=client, progress=False)
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            box["error"] = exc

    runner = threading.Thread(target=batch)
    runner.start()
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline and runner.is_alive():
        if manifests.is_dir() and any(manifests.glob("*.json")):
            busy = [w for w, keys in client.processing().items() if keys and w in pids]
            if busy:
                victim = busy[0]
                done_at_kill = len(list(manifests.glob("*.json")))
                os.kill(pids[victim], signal.SIGKILL)
                break
        time.sleep(0.005)
    runner.join(timeout=180)
    assert victim is not None, "the batch ended before a worker could be killed"
    assert "error" not in box, box.get("error")
    summary = box["summary"]
    assert done_at_kill < n  # killed mid-run
    assert victim not in client.scheduler_info()["workers"]  # that worker is gone
    assert not summary.failed and len(summary.done) == n and summary.exit_code == 0
    _check_outputs(cfg.output, open_archive(tmp_path / "arch"), summary.done)


def test_rerun_after_interruption_redoes_only_missing_issue_times(tmp_path, client):
    from nowcast.archive import open_archive
    from pipelines.outputs import forecast_path, manifest_path
    from pipelines.runner import run_batch

    n = 10
    _write_archive(tmp_path / "arch", n)
    cfg = _cfg(tmp_path / "arch", tmp_path / "out")
    first = run_batch(cfg, client=client, progress=False)
    times = first.done
    assert len(times) == n and not first.skipped
    # an interrupted batch: manifests not yet written, a forecast not yet written, a torn forecast
    manifest_path(cfg.output, times[1]).unlink()
    manifest_path(cfg.output, times[4]).unlink()
    forecast_path(cfg.output, "persistence", times[6]).unlink()
    torn = forecast_path(cfg.output, "persistence", times[8])
    os.truncate(torn, torn.stat().st_size // 2)
    redo = {times[i] for i in (1, 4, 6, 8)}
    before = {
        t: forecast_path(cfg.output, "persistence", t).stat().st_mtime_ns
        for t in times
        if t not in redo
    }

    second = run_batch(cfg, client=client, progress=False)
    assert (
        set(second.done) == redo and set(second.skipped) == set(times) - redo and not second.failed
    )
    after = {t: forecast_path(cfg.output, "persistence", t).stat().st_mtime_ns for t in before}
    assert after == before  # complete issue times were not rewritten
    _check_outputs(cfg.output, open_archive(tmp_path / "arch"), times)


def test_corrupt_input_file_fails_only_its_issue_time(tmp_path, client):
    from nowcast.archive import open_archive
    from nowcast.cli import main

    n = 10
    files = _write_archive(tmp_path / "arch", n)
    bad = files[4]
    os.truncate(bad, bad.stat().st_size // 2)
    config = tmp_path / "b.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "inputs": [str(tmp_path / "arch")],
                "methods": ["persistence"],
                "n_leads": N_LEADS,
                "output": str(tmp_path / "out"),
                "render": {"enabled": False},
            }
        )
    )
    result = CliRunner().invoke(
        main, ["batch", str(config), "--scheduler", client.scheduler.address, "--no-progress"]
    )
    assert result.exit_code == 1, result.output
    assert f"{n} issue times: {n - 1} done, 0 skipped (already complete), 1 failed" in result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith(f"FAILED {START + 4 * STEP:%Y-%m-%d %H:%M}:")
    assert bad.name in failed[0] and "not a readable NetCDF file" in failed[0]
    good = [START + k * STEP for k in range(n) if k != 4]
    _check_outputs(tmp_path / "out", open_archive([p for p in files if p != bad]), good)
