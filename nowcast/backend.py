"""Keras backend selection, done once before Keras is imported.

``KERAS_BACKEND`` set by the user always wins. Otherwise the default is chosen per
device from the measurements in the README's training-step table: ``torch`` on CPU (a
training step is about 10x faster than on JAX with the stock ConvLSTM2D, 1.4x with the
fused cell). No GPU has been measured yet, so the GPU default stays ``torch`` until one is.
"""

from __future__ import annotations

import os

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
    return os.environ["KERAS_BACKEND"]


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
