"""Shared test fixtures: where the real data is, and a Keras backend that is set before import."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Prepared training stores default to ``$XDG_CACHE_HOME/nowcast``: in tests a temporary
    folder, never the user's cache (where other trainings keep theirs)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data).

    Missing, tests that need it skip on a developer's machine and fail in CI (``CI`` set),
    where the data must be there.
    """
    if not SHARED_DATA.is_dir():
        message = f"real data not found at {SHARED_DATA}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: the data must be beside the checkout)")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="module")
def torch_single_thread():
    """Tiny models run faster on one torch thread (and far faster on a busy shared CPU)."""
    if os.environ.get("KERAS_BACKEND") != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
