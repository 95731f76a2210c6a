"""Keras backend selection: the torch backend does not pay for importing JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
import nowcast.model
import keras
before = sorted(m for m in ("jax", "cv2", "matplotlib.pyplot") if m in sys.modules)
import jax, cv2, matplotlib.pyplot  # still importable afterwards
print(json.dumps({"backend": keras.backend.backend(), "before": before,
                  "after": [jax.__name__, cv2.__name__, matplotlib.pyplot.__name__]}))
"""


@pytest.mark.slow
def test_torch_backend_imports_keras_without_its_optional_probes():
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {
        "backend": "torch",
        "before": [],
        "after": ["jax", "cv2", "matplotlib.pyplot"],
    }


def _modules_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


def test_cli_help_imports_no_pandas():
    assert not {"pandas", "xarray", "keras"} & _modules_after("from nowcast.cli import main")


def test_few_threads_runs_small_inputs_on_one_torch_thread():
    import torch

    from nowcast.backend import SMALL_GRID_PIXELS, few_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with few_threads(33 * 49):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2  # restored
        with few_threads(SMALL_GRID_PIXELS + 1):
            assert torch.get_num_threads() == 2  # large grids keep every thread
    finally:
        torch.set_num_threads(before)
