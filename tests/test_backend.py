"""Keras backend selection: the torch backend does not pay for importing JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
import nowcast.model
import keras
before = "jax" in sys.modules
import jax  # still importable afterwards
print(json.dumps({"backend": keras.backend.backend(), "jax_before": before,
                  "jax_after": jax.__name__}))
"""


def test_torch_backend_imports_keras_without_jax():
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
    assert out == {"backend": "torch", "jax_before": False, "jax_after": "jax"}


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
