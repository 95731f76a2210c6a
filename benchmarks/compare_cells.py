"""Skill of each recurrent cell after the same training budget, on the held-out MeteoSwiss event.

Run on demand (not a test)::

    python benchmarks/compare_cells.py                       # 400 steps per cell
    python benchmarks/compare_cells.py --cells fused,gru --epochs 2 --steps-per-epoch 10
    python benchmarks/compare_cells.py --config configs/radar-5min-eulerian.yaml

Each cell (``stock``, ``fused``, ``peephole`` = fused with ``model.peephole``, ``gru``) is
trained with ``nowcast train CONFIG`` (default ``configs/radar-5min.yaml``, the shipped
Lagrangian model) and the same overrides: the same seed, data, model size, loss and
``epochs * steps_per_epoch`` steps (early stopping off), one process at a time, one torch
thread, into ``--runs/<config name>/<cell>``. A run directory is reused (finished) or
resumed (unfinished) only when its recorded config and overrides are this run's
(``benchmark.json``); another one there is refused, never overwritten. The
model after the **last** step (``checkpoint.keras``) is then scored on every valid issue
time of ``mch-2016-07-11`` (never used for training or validation) beside persistence and
extrapolation, on the same pixels: MAE and CSI at 1 mm h-1 per lead. Prints Markdown
tables and writes the full report under ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from harness import ROOT, SHARED, command, parser
from heldout import forecast_all, issue_times

CONFIG = ROOT / "configs" / "radar-5min.yaml"
SPEC_FILE = "benchmark.json"

#: Benchmark cell name -> ``--set`` overrides.
CELLS = {
    "stock": ["model.cell=stock"],
    "fused": ["model.cell=fused"],
    "peephole": ["model.cell=fused", "model.peephole=true"],
    "gru": ["model.cell=gru"],
}


def _parse(argv=None) -> argparse.Namespace:
    p = parser(__doc__, full=True)
    p.add_argument("--config", type=Path, default=CONFIG, help="training config")
    p.add_argument("--cells", default=",".join(CELLS), help=f"of {', '.join(CELLS)}")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps-per-epoch", type=int, default=40)
    p.add_argument(
        "--runs", type=Path, default=ROOT / "runs" / "cells", help="under <config name>/<cell>"
    )
    p.add_argument("--every", type=int, default=1, help="issue-time stride in frames")
    p.add_argument("--output", type=Path, default=ROOT / "eval-output" / "cells")
    p.add_argument("--threads", type=int, default=1, help="OMP/torch threads for training")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], help="extra section.key=value"
    )
    args = p.parse_args(argv)
    unknown = [c for c in args.cells.split(",") if c not in CELLS]
    if unknown:
        p.error(f"unknown cell(s) {', '.join(unknown)}: choose from {', '.join(CELLS)}")
    args.config = args.config.resolve()
    args.runs = args.runs / args.config.stem
    return args


def _spec(cell: str, args: argparse.Namespace) -> dict:
    overrides = [
        *CELLS[cell],
        f"train.epochs={args.epochs}",
        f"train.steps_per_epoch={args.steps_per_epoch}",
        f"train.early_stopping_patience={args.epochs + 1}",
        *args.overrides,
    ]
    return {"config": str(args.config), "overrides": overrides}


def _check_spec(path: Path, spec: dict) -> bool:
    """True when ``path`` holds a run of ``spec``; False when it holds nothing; else exit."""
    file = path / SPEC_FILE
    if file.exists():
        if json.loads(file.read_text()) == spec:
            return True
    elif not path.exists() or not any(path.iterdir()):
        return False
    sys.exit(f"compare_cells: {path} holds another run; remove it or pass another --runs")


def _train(cell: str, args: argparse.Namespace) -> float | None:
    """Train ``cell`` into ``runs/<cell>`` unless a finished run is there; wall seconds or None."""
    from nowcast.trained.rundir import RunDir

    run = RunDir(args.runs / cell)
    spec = _spec(cell, args)
    ours = _check_spec(run.path, spec)
    if ours and run.read_state().get("epoch") == args.epochs:
        print(f"# {cell}: finished run reused ({run.path})", file=sys.stderr)
        return None
    nowcast = Path(sys.executable).with_name("nowcast")
    cmd = [str(nowcast), "train", str(args.config), "--output", str(run.path)]
    cmd += [a for o in spec["overrides"] for a in ("--set", o)]
    if ours and run.read_state():
        cmd.append("--resume")
    run.path.mkdir(parents=True, exist_ok=True)
    (run.path / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    print("# " + shlex.join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    args = _parse(argv)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    cells = args.cells.split(",")
    start = time.perf_counter()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    seconds = {cell: _train(cell, args) for cell in cells}

    from nowcast.archive import open_archive
    from nowcast.archive.timeaxis import time_step
    from nowcast.methods import ConvLSTMForecaster, get_method
    from nowcast.model import load_model
    from nowcast.trained.rundir import RunDir
    from nowcast.verify import evaluate
    from nowcast.verify.report import key_table, write_report

    event = SHARED / "radar" / "mch-2016-07-11.nc"
    archive = open_archive(event)
    methods = {}
    for cell in cells:
        run = RunDir(args.runs / cell)
        last = load_model(run.checkpoint)  # the weights after the last step
        methods[cell] = ConvLSTMForecaster(run.path, model_object=last)
    methods["persistence"] = get_method("persistence")
    methods["extrapolation"] = get_method("extrapolation")
    n_leads = 12
    step = time_step(archive)
    needs = max(m.input_frames(step) for m in methods.values())  # the first issue time all can
    issues = issue_times(archive, needs, n_leads, args.every)
    forecasts, fc_seconds = forecast_all(methods, archive, issues, n_leads)
    scores = evaluate(forecasts, archive, thresholds=(0.5, 1.0, 5.0, 10.0), scales=(1,))
    write_report(scores, args.output)

    steps = args.epochs * args.steps_per_epoch
    print(
        f"{steps} training steps per cell ({args.epochs} x {args.steps_per_epoch}, "
        f"{args.config.name}); held-out {event.name}: {len(issues)} issue times "
        f"({issues[0]} .. {issues[-1]}), {n_leads} leads"
    )
    for cell in cells:
        state = RunDir(args.runs / cell).read_state()
        last, best = state["last_logs"]["val_loss"], state["best_val_loss"]
        took = "reused" if seconds[cell] is None else f"{seconds[cell]:.0f} s"
        print(f"- {cell}: training {took}, val_loss last {last:.4f}, best {best:.4f}")
    print(
        "forecast seconds (all issue times): "
        + ", ".join(f"{k} {v:.0f}" for k, v in fc_seconds.items())
    )
    for metric in ("MAE", "CSI"):
        print("\n" + key_table(scores, metrics=(metric,)))
    print(f"\nLoad average at start {load}; total wall time {time.perf_counter() - start:.0f} s")
    print("Command: " + command("compare_cells.py", argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
