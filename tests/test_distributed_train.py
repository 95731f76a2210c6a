"""Data-parallel training through Keras' distribution API on 2 virtual CPU devices (JAX)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

pytestmark = pytest.mark.slow  # subprocesses on two virtual devices

CONFIG = """
data:
  events: [{archive}]
sampler: {{t_in: 2, t_out: 2, patch_size: 16, batch_size: 4, split: {{validation: 0.4}}}}
model: {{filters: [4], downsample: 2}}
train: {{epochs: 1, steps_per_epoch: 2, validation_steps: 1, data_parallel: true,
         lr_schedule: constant}}
"""


def _run(args, cwd, **env):
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "XLA_FLAGS")
    } | env
    return subprocess.run(
        [sys.executable, "-m", "nowcast.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_data_parallel_training_on_two_virtual_devices(tmp_path):
    from nowcast.archive.synthetic import write_synthetic_archive

    archive = write_synthetic_archive(tmp_path / "a.nc", n_times=24, ny=24, nx=24, seed=1)[0]
    cfg = tmp_path / "dp.yaml"
    cfg.write_text(CONFIG.format(archive=archive))
    res = _run(
        ["train", str(cfg), "--output", "run"],
        tmp_path,
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "data-parallel training on 2 devices: cpu:0, cpu:1" in res.stdout
    assert (tmp_path / "run" / "model.keras").exists()

    # the data-parallel model loads and predicts on the torch backend
    check = (
        "import numpy as np; from nowcast.model import load_model; "
        f"m = load_model({str(tmp_path / 'run' / 'model.keras')!r}); "
        "y = m.predict(np.zeros((1, 2, 16, 16, 1), 'float32'), verbose=0); "
        "assert y.shape == (1, 2, 16, 16, 1) and np.isfinite(y).all(); print('ok')"
    )
    res = subprocess.run(
        [sys.executable, "-c", check],
        env=os.environ | {"KERAS_BACKEND": "torch"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_data_parallel_needs_jax(tmp_path):
    from nowcast.archive.synthetic import write_synthetic_archive

    archive = write_synthetic_archive(tmp_path / "a.nc", n_times=24, ny=24, nx=24, seed=1)[0]
    cfg = tmp_path / "dp.yaml"
    cfg.write_text(CONFIG.format(archive=archive))
    res = _run(["train", str(cfg), "--output", "run"], tmp_path, KERAS_BACKEND="torch")
    assert res.returncode == 1
    assert "needs the JAX backend" in res.stderr and "Traceback" not in res.stderr
    assert not Path(tmp_path / "run" / "checkpoint.keras").exists()
