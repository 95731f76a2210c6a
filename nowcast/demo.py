"""The end-to-end demo: archive -> train -> predict -> baselines -> evaluate -> maps.

``run_demo()`` runs the whole pipeline on an embedded default (a synthetic archive and
the config in ``nowcast/resources/demo.yaml``) or on a real archive, and returns the
paths of every product. ``nowcast demo`` is its CLI.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from nowcast.archive import contiguous_segments, open_archive
from nowcast.archive.synthetic import write_synthetic_archive
from nowcast.config import Config, SamplerConfig, apply_overrides, config_from_dict, read_yaml
from nowcast.errors import NowcastError
from nowcast.methods import forecast_and_write, get_method
from nowcast.render import RenderOptions, render_forecast, render_gif
from nowcast.render.options import GIF_DPI
from nowcast.render.page import write_page
from nowcast.trained.rundir import RunDir
from nowcast.training import train
from nowcast.trainset.sampler import label_frames
from nowcast.verify import evaluate
from nowcast.verify.report import write_report
from nowcast.verify.tables import lead_tables

#: Issue times forecast and verified by the demo.
N_ISSUE_TIMES = 6


@dataclass
class DemoResult:
    workdir: Path
    archive: list[Path]
    run_dir: Path
    forecasts: dict[str, Path]
    report: list[Path]
    maps: list[Path]
    gif: Path | None
    scores_markdown: str
    seconds: dict[str, float] = field(default_factory=dict)


def demo_config(events: Sequence[str], overrides: Sequence[str] = ()) -> Config:
    """The embedded demo config with ``data.events`` set."""
    with resources.as_file(resources.files("nowcast") / "resources" / "demo.yaml") as path:
        values = read_yaml(path)
    values = apply_overrides(values, overrides)
    values.setdefault("data", {})["events"] = [str(e) for e in events]
    return config_from_dict(values)


def pick_issue_times(archive, sampler: SamplerConfig, n: int = N_ISSUE_TIMES) -> list[pd.Timestamp]:
    """Issue times inside the test block (the archive's last part) with all inputs and truths."""
    t_in, t_out = sampler.t_in, sampler.t_out
    times = pd.DatetimeIndex(archive.time.values)
    split = sampler.split
    labels = label_frames(
        times, validation=split.validation, test=split.test, test_period=split.test_period
    )
    first_test = int(np.argmax(labels == 2)) if (labels == 2).any() else int(len(times) * 0.7)
    candidates = []
    for seg in contiguous_segments(archive):
        idx = np.arange(seg.start, seg.stop)
        ok = idx[
            (idx - seg.start >= t_in - 1)
            & (idx + t_out < seg.stop)
            & (idx - (t_in - 1) >= first_test)
        ]
        candidates.extend(ok.tolist())
    if not candidates:
        raise NowcastError(
            f"the archive is too short for a test issue time ({len(times)} frames; t_in={t_in}, "
            f"t_out={t_out})"
        )
    chosen = np.unique(
        np.linspace(0, len(candidates) - 1, min(n, len(candidates))).round().astype(int)
    )
    return [times[candidates[i]] for i in chosen]


def run_demo(
    *,
    workdir: str | Path = "demo-output",
    inputs: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    map_data: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole pipeline; every product lands under ``workdir``."""
    workdir = Path(workdir)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = now - clock
        clock = now

    echo(f"[1/6] data -> {workdir / 'data'}")
    if inputs:
        archive_paths = [Path(p) for p in inputs]
        events = [str(p) for p in inputs]
    else:
        syn = demo_config([], overrides).data.synthetic
        archive_paths = write_synthetic_archive(
            workdir / "data" / "synthetic.nc",
            n_times=syn.n_times,
            ny=syn.ny,
            nx=syn.nx,
            seed=syn.seed,
        )
        events = [str(archive_paths[0])]
    cfg = demo_config(events, overrides)
    archive = open_archive(events, kind=cfg.data.kind)
    echo(
        f"      {archive.name}: {archive.sizes['time']} frames of {archive.sizes['y']} x "
        f"{archive.sizes['x']}, units {archive.attrs.get('units')}"
    )
    lap("data")

    echo("[2/6] train the demo ConvLSTM")
    run_dir = workdir / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    result = train(
        cfg, run_dir=run_dir, archives=[archive], verbose=2, echo=lambda m: echo(f"      {m}")
    )
    if result.interrupted:
        raise KeyboardInterrupt
    lap("train")

    issue_times = pick_issue_times(archive, cfg.sampler)
    n_leads = cfg.sampler.t_out
    echo(
        f"[3/6] forecast {len(issue_times)} issue times x {n_leads} leads: convlstm, persistence, "
        "extrapolation, sprog"
    )
    methods = {
        "convlstm": get_method("convlstm", model=run_dir),
        "persistence": get_method("persistence"),
        "extrapolation": get_method("extrapolation"),
        "sprog": get_method("sprog"),
    }
    forecasts, paths = {}, {}
    for name, method in methods.items():
        forecasts[name], paths[name] = forecast_and_write(
            method, archive, issue_times, n_leads, workdir / "forecasts" / f"{name}.nc"
        )
    lap("forecast")

    echo("[4/6] verify against the observations")
    scores = evaluate(forecasts, archive, thresholds=(0.5, 1.0, 5.0), scales=(1, 5, 11))
    report = write_report(scores, workdir / "report")
    table = lead_tables(scores, metrics=("MAE", "CSI", "FSS"))
    lap("verify")

    echo("[5/6] render maps and an animation")
    best = forecasts["convlstm"].isel(issue_time=[0])
    leads = sorted({1, (n_leads + 1) // 2, n_leads})
    maps = render_forecast(
        best,
        outdir=workdir / "maps",
        truth=archive,
        options=RenderOptions(leads=leads, map_data=map_data),
        method="convlstm",
    )
    gif = render_gif(
        best,
        path=workdir / "maps" / "convlstm.gif",
        truth=archive,
        options=RenderOptions(map_data=map_data, dpi=GIF_DPI),
        method="convlstm",
    )
    lap("render")

    echo(
        "[6/6] scores on the test issue times (MAE in mm h-1, lower is better; CSI and FSS at 1 "
        "mm h-1, higher is better)\n"
    )
    echo(table)
    # one page to browse the run: maps, scores, provenance (demo-output/index.html)
    page = {"title": "nowcast demo", "inputs": events, "model": str(run_dir)}
    write_page(workdir, {**page, "methods": list(methods), "variable": archive.name})
    return DemoResult(workdir, archive_paths, run_dir, paths, report, maps, gif, table, seconds)


def demo_summary(result: DemoResult) -> str:
    """The closing list of products printed by ``nowcast demo``."""
    lines = ["", "Products:"]
    lines += [f"  archive     {p}" for p in result.archive[:3]]
    run = RunDir(result.run_dir)
    lines.append(f"  model       {run.model}")
    lines.append(f"  history     {run.history}")
    lines += [f"  forecast    {p}" for p in result.forecasts.values()]
    lines += [f"  report      {p}" for p in result.report if p.suffix in (".csv", ".md")]
    lines.append(
        f"  plots       {len([p for p in result.report if p.suffix == '.png'])} PNGs in "
        f"{result.workdir / 'report'}"
    )
    lines += [f"  map         {p}" for p in result.maps]
    if result.gif:
        lines.append(f"  animation   {result.gif}")
    total = sum(result.seconds.values())
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    lines.append(f"Done in {total:.0f} s ({steps}).")
    return "\n".join(lines)
