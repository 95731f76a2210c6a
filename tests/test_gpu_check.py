"""The GPU check's dry run on the CPU (benchmarks/gpu_check.sh --dry-run): every measurement
of the real check at toy sizes, so the script cannot rot while no GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path, shared_data):
    env = {**os.environ, "NOWCAST_GPU_TIMEOUT": "2400", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            "bash",
            "benchmarks/gpu_check.sh",
            "--dry-run",
            "--budget",
            "2300",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=2500,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["dry_run"] and not report["errors"]
    found = {(r["what"], r["backend"], r["precision"]) for r in report["results"]}
    for backend in ("torch", "jax"):
        for precision in ("float32", "mixed"):
            assert ("train", backend, precision) in found
    assert ("data_parallel", "jax", "float32") in found
    parallel = next(r for r in report["results"] if r["what"] == "data_parallel")
    assert parallel["device"].startswith("2 x") and parallel["batch"] == 4
    predicts = [r for r in report["results"] if r["what"] == "predict"]
    assert [r["grid"].split()[0] for r in predicts] == ["mch", "opera"]
    assert all(r["seconds"] > 0 and r["finite"] > 0 for r in predicts)
    assert all(r["step_ms"] > 0 and r["samples_per_s"] > 0 for r in report["results"]
               if r["what"] != "predict")  # fmt: skip
    text = (tmp_path / "gpu-check.md").read_text()
    assert "| training step, data-parallel | jax | float32 |" in text
    assert "predict, 12 leads" in text and text in done.stdout
