"""Keras backend selection, done once before Keras is imported.

``KERAS_BACKEND`` set by the user always wins. Otherwise the default is chosen per
device from the measurements in the README's training-step table: ``torch`` on CPU (a
training step is about 10x faster than on JAX with the stock ConvLSTM2D, 1.4x with the
fused cell). No GPU has been measured yet, so the GPU default stays ``torch`` until one is.

Keras imports JAX whenever it is installed, whatever the backend (its Orbax checkpoint
callback probes it), which costs 0.6-0.9 s of every command's start-up on this project's
2-core machine; on the other backends :func:`select_backend` imports Keras with JAX hidden.
"""

from __future__ import annotations

import os
import sys

DEFAULT_CPU_BACKEND = "torch"
DEFAULT_GPU_BACKEND = "torch"


def _has_cuda() -> bool:
    try:  # torch takes seconds to import: only when KERAS_BACKEND does not say the backend
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def select_backend() -> str:
    """Set ``KERAS_BACKEND`` if the user did not, and return the backend name.

    Must run before the first ``import keras``; :mod:`nowcast.model` calls it.
    """
    if "KERAS_BACKEND" not in os.environ:
        os.environ["KERAS_BACKEND"] = DEFAULT_GPU_BACKEND if _has_cuda() else DEFAULT_CPU_BACKEND
    backend = os.environ["KERAS_BACKEND"]
    if backend != "jax" and "keras" not in sys.modules:
        _import_keras_without_jax()
    return backend


def _import_keras_without_jax() -> None:
    """Import Keras with ``import jax`` failing meanwhile (Keras guards it with try/except).

    Not a setting: JAX stays importable afterwards; when something imported it already,
    Keras is imported as usual.
    """
    if "jax" in sys.modules:
        # the backend's own import, here so that callers find Keras imported either way
        import keras  # noqa: F401

        return
    sys.modules["jax"] = None  # type: ignore[assignment]  # makes `import jax` an ImportError
    try:
        # Keras costs seconds to import: only for the commands that run a model
        import keras  # noqa: F401
    finally:
        if "jax" in sys.modules and sys.modules["jax"] is None:
            del sys.modules["jax"]


def device_description() -> str:
    """A one-line description of the backend and the device it will run on."""
    backend = select_backend()
    # Keras reads KERAS_BACKEND when first imported, so after select_backend(); torch or
    # jax only for the backend in use
    import keras

    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            dev = f"cuda ({torch.cuda.get_device_name(0)})"
        else:
            dev = f"cpu ({torch.get_num_threads()} threads)"
    elif backend == "jax":
        import jax

        dev = ", ".join(str(d) for d in jax.devices())
    else:
        dev = "default device"
    return f"Keras {keras.__version__}, backend {backend}, device {dev}"
