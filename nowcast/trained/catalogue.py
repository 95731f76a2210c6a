"""The trained models there are: finding one (``--model``), the shipped ones (``nowcast models``).

:func:`resolve_model_file` turns a model spec (a run directory, a ``.keras`` file or the
name of a model shipped in ``nowcast/pretrained/<name>/``, :data:`PRETRAINED_DIR`) into its
model file; :func:`packaged_models` lists the shipped ones. :func:`describe_model` says what
one is: everything comes from the model's ``metadata.json`` (variable, units, step, frames
in and out, grid, training data) and the ``## Held-out scores`` section of its
``TRAINING.md`` (written with the scores measured by ``benchmarks/eval_models.py``);
nothing is hard-coded here, so a replaced model is described by its own files.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from nowcast.conventions import Frame
from nowcast.errors import NowcastError
from nowcast.trained.cadence import STEP_RATIOS
from nowcast.trained.metadata import network_spacing_m
from nowcast.trained.rundir import METADATA_FILE, MODEL_FILE, RunDir

__all__ = [
    "PRETRAINED_DIR",
    "describe_model",
    "heldout_scores",
    "packaged_models",
    "resolve_model",
    "resolve_model_file",
]

#: The models shipped with the package (package data: one run directory each).
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


def packaged_models() -> list[str]:
    """Names of the trained models shipped with the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if RunDir(p).model.is_file())


def resolve_model_file(spec: str | Path) -> Path:
    """The ``.keras`` file for ``spec``: a run directory, a ``.keras`` file or a shipped name.

    A ``.keras`` file must have its run directory's ``metadata.json`` beside it.
    """
    path = Path(spec)
    if path.suffix == ".keras" and path.is_file():
        if not RunDir(path.parent).metadata.is_file():
            raise NowcastError(
                f"model file {path} has no {METADATA_FILE} beside it: give the model in its run "
                f"directory (nowcast train writes {MODEL_FILE} and {METADATA_FILE} together)"
            )
        return path
    if RunDir(path).model.is_file():
        return RunDir(path).model
    if path.is_dir():
        raise NowcastError(
            f"{path} holds no {MODEL_FILE} (training may not have finished an epoch)"
        )
    packaged = PRETRAINED_DIR / str(spec)
    if RunDir(packaged).model.is_file():
        return RunDir(packaged).model
    names = ", ".join(packaged_models()) or "none"
    raise NowcastError(
        f"model {str(spec)!r} not found: give a run directory, a {MODEL_FILE} file or a shipped "
        f"model ({names})"
    )


def resolve_model(spec: str | Path) -> Path:
    """The directory holding the model file and ``metadata.json`` for ``spec``."""
    return resolve_model_file(spec).parent


HELDOUT_HEADING = "## held-out scores"


def heldout_scores(notes: str) -> list[str]:
    """The lines of the ``## Held-out scores`` section (up to the next heading), unwrapped."""
    lines, inside = [], False
    for line in notes.splitlines():
        if line.strip().lower().startswith("## "):
            if inside:
                break
            inside = line.strip().lower().startswith(HELDOUT_HEADING)
            continue
        if inside:
            lines.append(line.rstrip())
    paragraphs, current = [], []
    for line in lines + [""]:
        if line.strip():
            text = line.strip()
            if text.startswith(("- ", "* ", "|")) and current:
                paragraphs.append(" ".join(current))
                current = []
            current.append(text[2:] if text.startswith(("- ", "* ")) else text)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes / 60:g} h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes:g} min"


def _when(text) -> str:
    return str(text).replace("T", " ")[:16]


def _events(training: dict[str, Any]) -> list[str]:
    """``train: a, b; validation: c; held out: d`` style lines from the training summary."""
    roles: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for event in training.get("events") or []:
        periods = event.get("periods") or {}
        used = [r for r in roles if periods.get(r)]
        name = str(event.get("name", "?"))
        if used == ["test"]:
            roles["test"].append(f"{name} (held out)")
            continue
        for role in used:
            span = periods[role]
            roles[role].append(
                f"{name} {_when(span[0])} to {_when(span[1])}" if len(used) > 1 else name
            )
    labels = {"train": "trained on", "validation": "validated on", "test": "tested on"}
    return [f"{labels[r]}: {', '.join(names)}" for r, names in roles.items() if names]


def describe_model(path: str | Path) -> list[str]:
    """Lines describing one model directory (name first)."""
    run = RunDir(Path(path))
    meta = run.read_metadata()
    step = float(meta.get("time_step_seconds") or 0)
    t_in, t_out = int(meta.get("t_in", 0)), int(meta.get("t_out", 0))
    head = (
        f"{run.path.name}: {meta.get('variable')} ({meta.get('units')}), {meta.get('kind')}, "
        f"step {_duration(step)}, {t_in} frames in ({_duration(t_in * step)}) / {t_out} out "
        f"({_duration(t_out * step)})"
    )
    details = []
    if meta.get("model_kind") == "series":  # a recurrent network on 1-D series
        hidden = "/".join(str(h) for h in meta.get("hidden") or [])
        points = ", ".join((meta.get("training") or {}).get("points") or []) or "?"
        details.append(
            f"series model ({str(meta.get('cell', '?')).upper()} {hidden}, "
            f"{meta.get('strategy', 'direct')}): predict --point LAT,LON|NAME; trained at "
            f"points: {points}"
        )
    frame = meta.get("frame")
    if frame == Frame.LAGRANGIAN:
        lo, hi = STEP_RATIOS
        details.append(
            f"frame: lagrangian (archives with a step of {_duration(lo * step)} to "
            f"{_duration(hi * step)})"
        )
    elif frame:
        details.append(f"frame: {frame} (archives with its step only)")
    events = (meta.get("training") or {}).get("events") or []
    metres = network_spacing_m(meta)
    spacing = (events[0].get("grid_spacing") or [None])[0] if events else None
    if metres:
        details.append(f"network pixels {metres / 1000:.3g} km (finer grids averaged to them)")
    elif spacing:
        details.append(f"grid {spacing:g}°")
    if not metres and int(meta.get("coarsen") or 1) > 1:
        details.append(f"inputs coarsened x{meta['coarsen']} (forecasts on the input grid)")
    lines = [head] + ([f"  {', '.join(details)}"] if details else [])
    lines += [f"  {line}" for line in _events(meta.get("training") or {})]
    notes = run.notes.read_text(encoding="utf-8") if run.notes.is_file() else ""
    scores = heldout_scores(notes)
    if scores:
        lines.append("  held-out scores:")
        for p in scores:
            lines += textwrap.wrap(p, 98, initial_indent="    ", subsequent_indent="      ")
    else:
        lines.append(f"  held-out scores: none recorded (no '## Held-out scores' in {run.notes})")
    lines.append(f"  files: {run.path}")
    return lines
