"""Write a verification report: ``scores.csv``, ``scores.md`` and one PNG per score.

The Markdown has the key table (rows: lead time; columns: method x MAE, RMSE, bias,
corr, CRPS when scored, and CSI/FSS at the key threshold), then per threshold a table of
the categorical scores and one of FSS per scale, then the probabilistic scores (CRPS, and
BS, BSS, ROC area per threshold) when there are some. With a diagrams table, also
``diagrams.csv`` and the reliability, ROC and rank-histogram plots
(:mod:`nowcast.verify.diagrams`). Each plot shows one score (at one threshold and scale)
against lead time, every method on it, drawn through Matplotlib's object API (no pyplot
state). Files are written atomically; a new report folder appears
all at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nowcast.errors import NowcastError
from nowcast.fileio import atomic_output
from nowcast.verify.diagrams import PLOT_NAME as _DIAGRAM_NAME
from nowcast.verify.diagrams import write_diagram_plots
from nowcast.verify.metrics import CATEGORICAL, CONTINUOUS, IN_DATA_UNITS, SPATIAL
from nowcast.verify.probabilistic import PROBABILISTIC, PROBABILISTIC_CONTINUOUS
from nowcast.verify.probtables import probabilistic_markdown

#: Per-lead scores: no threshold, and one per threshold (with their plots' file names).
_NO_THRESHOLD = CONTINUOUS + PROBABILISTIC_CONTINUOUS
_PER_THRESHOLD = CATEGORICAL + PROBABILISTIC
_UNITS = IN_DATA_UNITS + PROBABILISTIC_CONTINUOUS

__all__ = ["key_table", "scale_label", "scores_markdown", "write_report"]

#: File names of the plots :func:`write_report` makes (older ones are replaced).
_PLOT_NAME = re.compile(
    rf"^({'|'.join(m.lower() for m in _NO_THRESHOLD)}"
    rf"|({'|'.join(m.lower() for m in _PER_THRESHOLD)})_t[-0-9.e+]+"
    rf"|({'|'.join(m.lower() for m in SPATIAL)})_t[-0-9.e+]+_s\d+)\.png$"
)


def _fmt(value) -> str:
    if value is None or pd.isna(value):
        return "nan"
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def _thr(value: float) -> str:
    return f"{value:g}"


def scale_label(scale: int, scores: pd.DataFrame) -> str:
    """An FSS neighbourhood: ``5 px (5 km)``, ``5 px (1.25°)``, or ``5 px`` (size unknown)."""
    size, unit = scores.attrs.get("grid_spacing"), scores.attrs.get("grid_units")
    if not size or not unit:
        return f"{int(scale)} px"
    return f"{int(scale)} px ({int(scale) * size:.3g}{' ' if unit == 'km' else ''}{unit})"


def _table(frame: pd.DataFrame, columns: list[tuple[str, str]], labels: list[str]) -> str:
    """Markdown table of ``frame`` (index lead_time, columns = ``columns``)."""
    head = "| lead (min) | " + " | ".join(labels) + " |"
    rule = "|---:|" + "---:|" * len(labels)
    lines = [head, rule]
    for lead, row in frame.iterrows():
        lines.append(f"| {lead:g} | " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _wide(scores: pd.DataFrame, selection: pd.Series, column_keys: list[str]) -> pd.DataFrame:
    sub = scores[selection]
    return sub.pivot_table(
        index="lead_time",
        columns=column_keys,
        values="value",
        aggfunc="first",
        dropna=False,
        sort=False,
    )


def key_threshold(scores: pd.DataFrame) -> float | None:
    """1 (mm h-1) when scored, else the smallest threshold."""
    thresholds = sorted(scores["threshold"].dropna().unique())
    if not thresholds:
        return None
    return 1.0 if 1.0 in thresholds else float(thresholds[0])


def key_scale(scores: pd.DataFrame) -> int | None:
    """The middle FSS scale."""
    scales = sorted(scores["scale"].dropna().unique())
    return int(scales[len(scales) // 2]) if scales else None


def key_table(scores: pd.DataFrame, metrics: Sequence[str] | None = None) -> str:
    """Markdown table of the key scores: rows lead time, columns method x metric.

    ``metrics`` picks a subset (e.g. ``("MAE", "CSI")``) of the continuous scores, CSI at
    the key threshold and FSS at the key threshold and scale.
    """
    methods = list(dict.fromkeys(scores["method"]))
    thr, scale = key_threshold(scores), key_scale(scores)
    parts = [(m, None, None) for m in CONTINUOUS]
    parts += [(m, None, None) for m in PROBABILISTIC_CONTINUOUS if (scores["metric"] == m).any()]
    if thr is not None:
        parts.append(("CSI", thr, None))
    if thr is not None and scale is not None:
        parts.append(("FSS", thr, scale))
    if metrics is not None:
        parts = [p for p in parts if p[0] in metrics]
    data = {}
    labels, columns = [], []
    for method in methods:
        for metric, t, s in parts:
            sel = (scores["method"] == method) & (scores["metric"] == metric)
            sel &= scores["threshold"].isna() if t is None else scores["threshold"] == t
            sel &= scores["scale"].isna() if s is None else scores["scale"] == s
            series = scores[sel].set_index("lead_time")["value"]
            label = (
                f"{method} {metric}"
                + (f" ≥{_thr(t)}" if t is not None else "")
                + (f" s{s}" if s is not None else "")
            )
            data[label] = series
            labels.append(label)
            columns.append(label)
    frame = pd.DataFrame(data).sort_index()
    return _table(frame, columns, labels)


def scores_markdown(scores: pd.DataFrame, *, units: str | None = None) -> str:
    """The whole report as Markdown: key table, then categorical and FSS tables per threshold."""
    units = units or scores.attrs.get("units") or ""
    u = f" {units}" if units else ""
    methods = list(dict.fromkeys(scores["method"]))
    out = [
        "# Verification scores",
        "",
        "Pooled over all issue times; events are value ≥ threshold.",
        "",
    ]
    out += ["## Key scores", "", key_table(scores), ""]
    for thr in sorted(scores["threshold"].dropna().unique()):
        cat = _wide(
            scores,
            (scores["threshold"] == thr) & scores["metric"].isin(CATEGORICAL),
            ["method", "metric"],
        )
        cols = [(m, k) for m in methods for k in CATEGORICAL if (m, k) in cat.columns]
        if cols:
            out += [
                f"## Categorical scores, threshold {_thr(thr)}{u}",
                "",
                _table(cat, cols, [f"{m} {k}" for m, k in cols]),
                "",
            ]
        fss = _wide(
            scores,
            (scores["threshold"] == thr) & scores["metric"].isin(SPATIAL),
            ["method", "scale"],
        )
        cols = [
            (m, s)
            for m in methods
            for s in sorted({c[1] for c in fss.columns})
            if (m, s) in fss.columns
        ]
        if cols:
            out += [
                f"## FSS, threshold {_thr(thr)}{u}, neighbourhood scale",
                "",
                _table(fss, cols, [f"{m} FSS {scale_label(s, scores)}" for m, s in cols]),
                "",
            ]
    out += probabilistic_markdown(scores, units)
    return "\n".join(out)


def _plot_groups(scores: pd.DataFrame, units: str = ""):
    """(file stem, title, subset) for each score x threshold x scale."""
    u = f" {units}" if units else ""
    for metric in _NO_THRESHOLD + _PER_THRESHOLD + SPATIAL:
        sub = scores[scores["metric"] == metric]
        if sub.empty:
            continue
        if metric in _NO_THRESHOLD:
            yield metric.lower(), metric, sub
            continue
        for thr in sorted(sub["threshold"].dropna().unique()):
            at = sub[sub["threshold"] == thr]
            if metric in _PER_THRESHOLD:
                yield f"{metric.lower()}_t{_thr(thr)}", f"{metric}, threshold {_thr(thr)}{u}", at
                continue
            for scale in sorted(at["scale"].dropna().unique()):
                yield (
                    f"{metric.lower()}_t{_thr(thr)}_s{int(scale)}",
                    f"{metric}, threshold {_thr(thr)}{u}, scale {scale_label(scale, scores)}",
                    at[at["scale"] == scale],
                )


def _plot(path: Path, title: str, sub: pd.DataFrame, units: str) -> None:
    fig = Figure(figsize=(6, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for method, group in sub.groupby("method", sort=False):
        group = group.sort_values("lead_time")
        ax.plot(group["lead_time"], group["value"], marker="o", label=str(method))
    ax.set_xlabel("lead time (min)")
    metric = str(sub["metric"].iloc[0])
    ax.set_ylabel(f"{metric} ({units})" if metric in _UNITS and units else metric)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.savefig(path, format="png")


def write_report(
    scores: pd.DataFrame,
    outdir: str | os.PathLike,
    *,
    units: str | None = None,
    plots: bool = True,
    diagrams: pd.DataFrame | None = None,
) -> list[Path]:
    """Write ``scores.csv``, ``scores.md`` and (with ``plots``) PNGs to ``outdir``.

    ``diagrams`` (:attr:`nowcast.verify.scores.Verification.diagrams`, when not empty) adds
    ``diagrams.csv`` and (with ``plots``) the reliability, ROC and rank-histogram PNGs.

    Everything is written into a temporary sibling folder first
    (:func:`nowcast.fileio.atomic_output`); a new ``outdir`` is then renamed into place in
    one step, an existing one gets each file replaced atomically (and loses the plots of an
    earlier report that this one does not make). Returns the
    written paths (in ``outdir``).
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise NowcastError(f"report folder {outdir} exists and is not a folder")
    units = units or scores.attrs.get("units") or ""
    existed = outdir.is_dir()
    with atomic_output(outdir, merge=True) as tmp:
        tmp.mkdir()
        names = ["scores.csv", "scores.md"]
        scores.to_csv(tmp / "scores.csv", index=False)
        (tmp / "scores.md").write_text(
            scores_markdown(scores, units=units) + "\n", encoding="utf-8"
        )
        if diagrams is not None and not diagrams.empty:
            diagrams.to_csv(tmp / "diagrams.csv", index=False)
            names.append("diagrams.csv")
        if plots:
            for stem, title, sub in _plot_groups(scores, units):
                if np.isfinite(sub["value"].to_numpy(dtype=float)).any():
                    _plot(tmp / f"{stem}.png", title, sub, units)
                    names.append(f"{stem}.png")
            names += write_diagram_plots(diagrams, tmp, units)
    if existed:
        for stale in outdir.glob("*.png"):  # plots of a previous report that this one lacks
            if (_PLOT_NAME.match(stale.name) or _DIAGRAM_NAME.match(stale.name)) and (
                stale.name not in names
            ):
                stale.unlink()
        stale = outdir / "diagrams.csv"
        if stale.exists() and "diagrams.csv" not in names:
            stale.unlink()
    return [outdir / name for name in names]
