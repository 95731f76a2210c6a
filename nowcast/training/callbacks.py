"""Keras callbacks for training runs: atomic per-epoch checkpoints and TensorBoard scalars.

Keras' own TensorBoard callback needs TensorFlow; :class:`TensorBoardScalars` writes the
same event files with tensorboardX, on any backend.
"""

from __future__ import annotations

import math
from pathlib import Path

from tensorboardX import SummaryWriter

from nowcast.backend import select_backend
from nowcast.model import save_model
from nowcast.trained.rundir import RunDir

select_backend()
import keras  # noqa: E402


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: save the run's checkpoint (with optimizer) and state atomically,
    and its model when the validation loss improved (see :mod:`nowcast.trained.rundir`)."""

    def __init__(self, run: RunDir, *, best: float | None = None, monitor: str = "val_loss"):
        super().__init__()
        self.run = run
        self.monitor = monitor
        self.best = math.inf if best is None else float(best)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        improved = current is not None and math.isfinite(current) and current < self.best
        if improved:
            self.best = float(current)
            save_model(self.model, self.run.model)
        save_model(self.model, self.run.checkpoint)
        state = {
            "epoch": epoch + 1,
            "best_val_loss": None if math.isinf(self.best) else self.best,
            "last_logs": {k: float(v) for k, v in logs.items()},
        }
        self.run.write_state(state)


class TensorBoardScalars(keras.callbacks.Callback):
    """Epoch-level scalars (losses, learning rate) as TensorBoard event files."""

    def __init__(self, logdir: Path):
        super().__init__()
        self.logdir = Path(logdir)
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = SummaryWriter(str(self.logdir))

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            return
        for key, value in (logs or {}).items():
            self._writer.add_scalar(f"epoch/{key}", float(value), epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
