"""What the shipped models are (``nowcast models``): read from their run directories.

Everything comes from each model's ``metadata.json`` (variable, units, step, frames in and
out, grid, training data) and the ``## Held-out scores`` section of its ``TRAINING.md``
(written with the scores measured by ``benchmarks/eval_models.py``); nothing is hard-coded
here, so a replaced model is described by its own files.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from nowcast.methods.lagrangian import STEP_RATIOS
from nowcast.training.rundir import RunDir

__all__ = ["describe_model", "heldout_scores"]

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
    frame = meta.get("frame")
    if frame == "lagrangian":
        lo, hi = STEP_RATIOS
        details.append(
            f"frame: lagrangian (archives with a step of {_duration(lo * step)} to "
            f"{_duration(hi * step)})"
        )
    elif frame:
        details.append(f"frame: {frame} (archives with its step only)")
    events = (meta.get("training") or {}).get("events") or []
    spacing = (events[0].get("grid_spacing") or [None])[0] if events else None
    if spacing:
        details.append(
            f"trained at {spacing / 1000:.3g} km" if spacing > 10 else f"grid {spacing:g}°"
        )
    if int(meta.get("coarsen") or 1) > 1:
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
