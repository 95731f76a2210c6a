"""Keras backend selection, done once before Keras is imported.

``KERAS_BACKEND`` set by the user always wins. Otherwise the default is chosen per
device from the measurements in ``docs/benchmarks.md`` ("Training step"): ``torch`` on CPU
(its training steps are the faster ones there, with both cells). No GPU has been measured
yet, so the GPU default stays ``torch`` until one is.

Keras imports optional packages whenever they are installed, whatever it is used for: JAX
(its Orbax checkpoint callback probes it, on every backend), OpenCV and
``matplotlib.pyplot`` (its image-visualisation helpers). They cost seconds of every model
command's start-up (``docs/benchmarks.md``, "Start-up") and nowcast needs none of them through
Keras, so :func:`select_backend` imports Keras with them hidden (JAX only on the other
backends); each stays importable afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys

DEFAULT_CPU_BACKEND = "torch"
DEFAULT_GPU_BACKEND = "torch"
#: Model inputs of at most this many pixels per frame run on one torch thread (see
#: :func:`few_threads`).
SMALL_GRID_PIXELS = 256 * 256


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
    if "keras" not in sys.modules:
        _import_keras_hiding(KERAS_PROBES + (() if backend == "jax" else ("jax",)))
    return backend


#: Optional packages Keras imports when installed that nowcast never uses through Keras.
KERAS_PROBES = ("cv2", "matplotlib.pyplot")


def _import_keras_hiding(names: tuple[str, ...]) -> None:
    """Import Keras with ``import <name>`` failing meanwhile (Keras guards each with
    try/except); not a setting: the modules stay importable afterwards, and one that
    something imported already is left alone."""
    hidden = [n for n in names if n not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        # Keras costs seconds to import: only for the commands that run a model
        import keras  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


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


@contextlib.contextmanager
def few_threads(pixels: int = 0):
    """On torch, one intra-op thread meanwhile for work on at most :data:`SMALL_GRID_PIXELS`.

    Small convolutions (and model loading) only lose to thread hand-offs (measured in
    ``docs/benchmarks.md``, "Start-up"). The thread count is restored afterwards.
    """
    if pixels > SMALL_GRID_PIXELS or select_backend() != "torch":
        yield
        return
    # imported by the backend already (select_backend); named here for its thread count
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
