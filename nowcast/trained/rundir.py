"""A training run directory: the one place its file names are spelled and its JSON is read.

::

    model.keras       the best model by validation loss (what forecasting loads)
    checkpoint.keras  the last completed epoch with its optimizer state (``--resume``)
    state.json        that epoch's number, the best validation loss and the last logs
    config.yaml       the resolved config
    metadata.json     what forecasting needs (``t_in``, ``t_out``, step, preprocessor, ...)
    history.csv       losses per epoch
    tensorboard/      TensorBoard event files
    TRAINING.md       (shipped models) how it was made; its "## Held-out scores" section is
                      what ``nowcast models`` prints

``model.keras``, ``checkpoint.keras`` and the JSON files are written atomically. The models
shipped in ``nowcast/pretrained/<name>/`` are run directories too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nowcast.errors import NowcastError
from nowcast.fileio import write_atomic

MODEL_FILE = "model.keras"
CHECKPOINT_FILE = "checkpoint.keras"
STATE_FILE = "state.json"
METADATA_FILE = "metadata.json"
CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
TENSORBOARD_DIR = "tensorboard"
NOTES_FILE = "TRAINING.md"


@dataclass(frozen=True)
class RunDir:
    """The files of the run directory at ``path``."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def state(self) -> Path:
        return self.path / STATE_FILE

    @property
    def metadata(self) -> Path:
        return self.path / METADATA_FILE

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def history(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def notes(self) -> Path:
        return self.path / NOTES_FILE

    def read_metadata(self) -> dict[str, Any]:
        """``metadata.json``; a :class:`NowcastError` when the directory has none or it is bad."""
        if not self.metadata.is_file():
            raise NowcastError(f"no {METADATA_FILE} in {self.path}: not a nowcast run directory")
        return _read_json(self.metadata, f"the {METADATA_FILE} that nowcast train writes")

    def write_metadata(self, metadata: dict[str, Any]) -> Path:
        return write_atomic(self.metadata, json.dumps(metadata, indent=2, default=str))

    def read_state(self) -> dict[str, Any]:
        """``state.json`` (the last completed epoch), or ``{}`` when no epoch finished."""
        if not self.state.is_file():
            return {}
        return _read_json(self.state, f"the {STATE_FILE} that nowcast train writes")

    def write_state(self, state: dict[str, Any]) -> Path:
        return write_atomic(self.state, json.dumps(state, indent=2))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; anything else is a one-line error saying what it should be."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise NowcastError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); it "
            f"should be {what}"
        ) from None
    except (UnicodeDecodeError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise NowcastError(f"cannot read {path} ({reason}); it should be {what}") from None
    if not isinstance(data, dict):
        raise NowcastError(
            f"{path} holds a JSON {type(data).__name__}, not an object; it should be {what}"
        )
    return data
