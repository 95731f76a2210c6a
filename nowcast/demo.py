"""The end-to-end demo: archive -> train -> predict -> baselines -> evaluate -> maps.

``run_demo()`` runs the whole pipeline on an embedded default (a synthetic archive of cells
that grow, decay and change speed, :func:`nowcast.archive.synthetic.evolving_rain`, and the
config in ``nowcast/resources/demo.yaml``: a tiny ConvLSTM in the Lagrangian frame) or on a
real archive, forecasts with that model, the shipped ``radar-5min`` (when the archive's step
and units suit it) and the baselines, verifies them and returns the paths of every product.
``nowcast demo`` is its CLI.
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
from nowcast.archive.synthetic import EVOLVING_CENTRE, write_configured_archive
from nowcast.config import Config, SamplerConfig, apply_overrides, config_from_dict, read_yaml
from nowcast.errors import NowcastError
from nowcast.methods import Forecaster, forecast_and_write, get_method
from nowcast.render import RenderOptions, render_forecast, render_gif
from nowcast.render.maps import map_layers, prepare
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
#: The demo's own model goes by its run directory's name (``workdir/tiny-convlstm``).
DEMO_MODEL = "tiny-convlstm"
#: The shipped model forecast beside it, when the archive's step and units suit it.
SHIPPED_MODEL = "radar-5min"
#: What the learned models are compared with in the closing verdict.
REFERENCE = "extrapolation"


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


def demo_config(
    events: Sequence[str], overrides: Sequence[str] = (), *, workdir: str | Path | None = None
) -> Config:
    """The embedded demo config with ``data.events`` set (and, with ``workdir``, its
    prepared training windows under ``workdir/cache`` unless an override says otherwise)."""
    with resources.as_file(resources.files("nowcast") / "resources" / "demo.yaml") as path:
        values = read_yaml(path)
    if workdir is not None:
        values.setdefault("data", {})["cache_dir"] = str(Path(workdir).resolve() / "cache")
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
        archive_paths = write_configured_archive(workdir / "data" / "synthetic.nc", syn)
        events = [str(archive_paths[0])]
    cfg = demo_config(events, overrides, workdir=workdir)
    archive = open_archive(events, kind=cfg.data.kind)
    echo(f"      {_describe_archive(archive, synthetic=not inputs)}")
    lap("data")

    frame = getattr(cfg.model.frame, "value", cfg.model.frame)
    echo(f"[2/6] train {DEMO_MODEL}, the demo's own ConvLSTM ({frame} frame)")
    run_dir = workdir / DEMO_MODEL
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
    methods: dict[str, Forecaster] = {DEMO_MODEL: get_method("convlstm", model=run_dir)}
    shipped, why_not = shipped_model(archive)
    if shipped is not None:
        methods[SHIPPED_MODEL] = shipped
    for name in ("persistence", "extrapolation", "sprog"):
        methods[name] = get_method(name)
    echo(f"[3/6] forecast {len(issue_times)} issue times x {n_leads} leads: " + ", ".join(methods))
    if why_not:
        echo(f"      {SHIPPED_MODEL} left out: {why_not}")
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
    leads = sorted({1, (n_leads + 1) // 2, n_leads})
    learned = [m for m in (DEMO_MODEL, SHIPPED_MODEL) if m in forecasts]
    layers = map_layers(prepare(forecasts[learned[0]]), map_data, warn=False)
    echo(f"      {layers.describe()}")
    maps = []
    for name in learned:
        maps += render_forecast(
            forecasts[name].isel(issue_time=[0]),
            outdir=workdir / "maps",
            truth=archive,
            options=RenderOptions(leads=leads, map_data=layers),
        )
    shown = learned[-1]
    gif = render_gif(
        forecasts[shown].isel(issue_time=[0]),
        path=workdir / "maps" / f"{shown}.gif",
        truth=archive,
        options=RenderOptions(map_data=layers, dpi=GIF_DPI),
    )
    lap("render")

    echo(
        "[6/6] scores on the test issue times (MAE in mm h-1, lower is better; CSI and FSS at 1 "
        "mm h-1, higher is better)\n"
    )
    echo(table)
    echo(_what_it_means(scores, learned, synthetic=not inputs, train_seconds=seconds["train"]))
    # one page to browse the run: maps, scores, provenance (demo-output/index.html)
    page = {"title": "nowcast demo", "inputs": events, "model": str(run_dir)}
    write_page(workdir, {**page, "methods": list(methods), "variable": archive.name})
    return DemoResult(workdir, archive_paths, run_dir, paths, report, maps, gif, table, seconds)


def shipped_model(archive) -> tuple[Forecaster | None, str]:
    """The shipped ``radar-5min`` if it can forecast ``archive`` (its step and units), else
    ``None`` and why not."""
    try:
        method = get_method("convlstm", model=SHIPPED_MODEL)
        method.check_compatible(archive)
    except NowcastError as exc:
        return None, str(exc)
    return method, ""


def _describe_archive(archive, *, synthetic: bool) -> str:
    step = pd.Timedelta(archive.time.values[1] - archive.time.values[0])
    size = (
        f"{archive.sizes['time']} frames of {archive.sizes['y']} x {archive.sizes['x']} "
        f"every {int(step.total_seconds() // 60)} min, units {archive.attrs.get('units')}"
    )
    if not synthetic:
        return f"{archive.name}: {size}"
    lat, lon = EVOLVING_CENTRE
    return (
        f"{archive.name}: synthetic cells that grow, decay and change speed, {size}, 1 km "
        f"pixels on ETRS89-LAEA around {lat:.2f}°N {lon:.2f}°E (the Belgian-Dutch coast)"
    )


def _beats(scores: pd.DataFrame, metric: str, name: str, threshold=None) -> tuple[int, int, int]:
    """At how many leads ``name`` beats :data:`REFERENCE` on ``metric`` by more than 1 %, at
    how many it is within 1 % (a tie), of how many leads."""
    rows = scores[(scores.metric == metric) & (scores.scale.isna() | (scores.scale == 1))]
    if threshold is not None:
        rows = rows[rows.threshold == threshold]
    table = rows.pivot_table(index="lead_time", columns="method", values="value")
    if name not in table or REFERENCE not in table:
        return 0, 0, 0
    gain = (table[name] - table[REFERENCE]) / table[REFERENCE].abs()
    gain = -gain if metric in ("MAE", "RMSE") else gain  # > 0: better
    return int((gain > 0.01).sum()), int((gain.abs() <= 0.01).sum()), len(table)


def _what_it_means(scores, learned, *, synthetic: bool, train_seconds: float) -> str:
    """The paragraph under the table: what these scores are, and where the real ones are."""
    lines = [""]
    for name in learned:
        said = []
        for metric, threshold, what in (("MAE", None, "MAE"), ("CSI", 1.0, "CSI at 1 mm h-1")):
            won, tied, n = _beats(scores, metric, name, threshold)
            said.append(f"on {what} at {won} of {n} leads (within 1 % at {tied})")
        lines.append(f"{name} beats {REFERENCE} " + "; ".join(said) + ".")
    what = (
        "synthetic cells that move with a wind that changes speed and grow and decay "
        "(extrapolation can follow the motion, not the growth and decay)"
        if synthetic
        else "the archive given"
    )
    lines += [
        f"What this shows: {len(scores.lead_time.unique())} leads on {what}, issue times from "
        "the archive's last part, which no model trained on.",
        f"{DEMO_MODEL} is this demo's own tiny model, trained above in {train_seconds:.0f} s on "
        "crops of the archive's first part; "
        + (
            f"{SHIPPED_MODEL} is the shipped model, trained on real radar (KNMI, MeteoSwiss, "
            "FMI, RMI), never on cells like these."
            if SHIPPED_MODEL in learned
            else f"{SHIPPED_MODEL} was left out (see above)."
        ),
        "These scores say how each method copes with this archive, not how it does on real "
        'radar: for that see docs/skill.md and the README\'s "Shipped models" (radar-5min '
        "against extrapolation, S-PROG and STEPS on a held-out MeteoSwiss event).",
    ]
    return "\n".join(lines)


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
