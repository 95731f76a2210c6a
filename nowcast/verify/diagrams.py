"""PNG plots of the probabilistic diagrams: reliability, ROC curve and rank histogram.

One figure per threshold for the reliability diagram (``reliability_t{thr}.png``) and the
ROC curve (``roc_t{thr}.png``), one for the rank histograms (``rank_histogram.png``); each
has a panel per method with probabilities (deterministic methods are left out: theirs are
two points) and a line per lead time, drawn through Matplotlib's object API like
:mod:`nowcast.verify.report`. The points come from the diagrams table
(:mod:`nowcast.verify.probtables`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["PLOT_NAME", "write_diagram_plots"]

#: File names of the diagram plots (older ones are replaced).
PLOT_NAME = re.compile(r"^((reliability|roc)_t[-0-9.e+]+|rank_histogram)\.png$")


def _probabilistic_methods(diagrams: pd.DataFrame) -> list[str]:
    src = diagrams.attrs.get("probabilistic") or {}
    methods = list(dict.fromkeys(diagrams["method"]))
    return [m for m in methods if src.get(m, {}).get("probability", "") != "deterministic"]


def _figure(n_panels: int) -> tuple[Figure, list]:
    fig = Figure(figsize=(4.2 * n_panels + 0.8, 4.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def _lead_colours(leads) -> dict:
    cmap = colormaps["viridis"]
    leads = sorted(leads)
    span = max(len(leads) - 1, 1)
    return {lead: cmap(0.9 * k / span) for k, lead in enumerate(leads)}


def _lead_label(minutes) -> str:
    return f"{minutes:g} min" if minutes < 60 or minutes % 60 else f"{minutes / 60:g} h"


def _legend(fig: Figure, axes: list) -> None:
    handles, labels = axes[-1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize="small", title="lead")


def _curves(path: Path, sub: pd.DataFrame, methods: list[str], title: str, kind: str) -> None:
    fig, axes = _figure(len(methods))
    colours = _lead_colours(sub["lead_time"].unique())
    for ax, method in zip(axes, methods):
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1)
        for lead, group in sub[sub["method"] == method].groupby("lead_time"):
            group = group.sort_values("bin")
            if kind == "reliability":
                group = group[group["count"] > 0]
                x, y = group["x"], group["y"]
            else:  # the ROC curve from (1, 1) through the warning levels to (0, 0)
                x = np.r_[1.0, group["x"].to_numpy(), 0.0]
                y = np.r_[1.0, group["y"].to_numpy(), 0.0]
            ax.plot(x, y, marker="o", markersize=3, color=colours[lead], label=_lead_label(lead))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
        ax.set_title(method)
        if kind == "reliability":
            ax.set_xlabel("forecast probability")
            ax.set_ylabel("observed frequency")
        else:
            ax.set_xlabel("false alarm rate (POFD)")
            ax.set_ylabel("hit rate (POD)")
    _legend(fig, axes)
    fig.suptitle(title)
    fig.savefig(path, format="png")


def _ranks(path: Path, sub: pd.DataFrame) -> None:
    methods = list(dict.fromkeys(sub["method"]))
    fig, axes = _figure(len(methods))
    colours = _lead_colours(sub["lead_time"].unique())
    for ax, method in zip(axes, methods):
        mine = sub[sub["method"] == method]
        n_ranks = int(mine["bin"].max()) + 1
        for lead, group in mine.groupby("lead_time"):
            group = group.sort_values("bin")
            ax.step(
                group["bin"], group["y"], where="mid", color=colours[lead], label=_lead_label(lead)
            )
        ax.axhline(1.0 / n_ranks, color="0.4", linestyle="--", linewidth=1)
        # members that are a pixel's quantiles at levels (k - 0.5) / M (ECC-Q, as the quantile
        # models give them): calibrated, the outer ranks are half as frequent as the others
        m = n_ranks - 1
        ecc = np.full(n_ranks, 1.0 / max(m, 1))
        ecc[[0, -1]] = 0.5 / max(m, 1)
        ax.step(np.arange(n_ranks), ecc, where="mid", color="0.4", linestyle=":", linewidth=1)
        ax.set_xlabel(f"rank of the observation among {n_ranks - 1} members")
        ax.set_ylabel("relative frequency")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.set_title(method)
    _legend(fig, axes)
    fig.suptitle(
        "Rank histogram. Calibrated: flat (dashed) for independent draws,\n"
        "outer ranks halved (dotted) for equidistant quantiles (ECC-Q members)"
    )
    fig.savefig(path, format="png")


def write_diagram_plots(diagrams: pd.DataFrame, folder: Path, units: str = "") -> list[str]:
    """Write the diagram PNGs into ``folder``; their file names."""
    names: list[str] = []
    if diagrams is None or diagrams.empty:
        return names
    u = f" {units}" if units else ""
    methods = _probabilistic_methods(diagrams)
    for kind, label in (("reliability", "Reliability diagram"), ("roc", "ROC curve")):
        sub = diagrams[(diagrams["diagram"] == kind) & diagrams["method"].isin(methods)]
        for thr in sorted(sub["threshold"].dropna().unique()):
            at = sub[sub["threshold"] == thr]
            shown = [m for m in methods if (at["method"] == m).any()]
            if not shown or not np.isfinite(at["y"].to_numpy(dtype=float)).any():
                continue
            name = f"{kind}_t{thr:g}.png"
            _curves(folder / name, at, shown, f"{label}, value ≥ {thr:g}{u}", kind)
            names.append(name)
    ranks = diagrams[diagrams["diagram"] == "rank"]
    if not ranks.empty and np.isfinite(ranks["y"].to_numpy(dtype=float)).any():
        _ranks(folder / "rank_histogram.png", ranks)
        names.append("rank_histogram.png")
    return names
