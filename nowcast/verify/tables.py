"""Score tables for the terminal: one compact per-lead table per score, at most 100 columns.

Rows are lead times, columns the methods, and ``n`` the issue times pooled into each lead's
scores (leads whose valid times the truth lacks, e.g. past its end, pool fewer; a note
says so). Methods that do not fit the width continue in a second table.
"""

from __future__ import annotations

import pandas as pd

from nowcast.verify.metrics import CONTINUOUS, IN_DATA_UNITS
from nowcast.verify.probabilistic import PROBABILISTIC_CONTINUOUS
from nowcast.verify.report import key_scale, key_threshold, scale_label

__all__ = ["lead_tables"]

WIDTH = 100


def _score_parts(scores: pd.DataFrame) -> list[tuple[str, float | None, int | None]]:
    """(metric, threshold, scale): the continuous scores (and CRPS), CSI and FSS at the key
    threshold (and BS and ROC area when scored)."""
    present = set(scores["metric"])
    parts = [(m, None, None) for m in CONTINUOUS + PROBABILISTIC_CONTINUOUS if m in present]
    thr, scale = key_threshold(scores), key_scale(scores)
    if thr is not None and "CSI" in present:
        parts.append(("CSI", thr, None))
    if thr is not None and scale is not None and "FSS" in present:
        parts.append(("FSS", thr, scale))
    parts += [(m, thr, None) for m in ("BS", "ROC_area") if thr is not None and m in present]
    return parts


def _title(metric: str, thr, scale, units: str, scores) -> str:
    u = f" {units}" if units else ""
    if thr is None:
        in_units = metric in IN_DATA_UNITS + PROBABILISTIC_CONTINUOUS
        return f"{metric}{f' ({units})' if units and in_units else ''}"
    text = f"{metric} for events >= {thr:g}{u}"
    return text + (f", neighbourhood {scale_label(scale, scores)}" if scale is not None else "")


def _lead(minutes: float) -> str:
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


def _select(scores, metric, thr, scale):
    sel = scores["metric"] == metric
    sel &= scores["threshold"].isna() if thr is None else scores["threshold"] == thr
    sel &= scores["scale"].isna() if scale is None else scores["scale"] == scale
    return scores[sel]


def _block(sub: pd.DataFrame, methods: list[str]) -> list[str]:
    values = sub.pivot_table(
        index="lead_time", columns="method", values="value", aggfunc="first", dropna=False
    )
    pooled = sub.pivot_table(
        index="lead_time", columns="method", values="n_issues", aggfunc="first"
    )
    widths = [max(len(m), 6) for m in methods]
    head = f"{'lead':>8} {'n':>5}  " + "  ".join(f"{m:>{w}}" for m, w in zip(methods, widths))
    lines = [head]
    for lead in values.index:
        counts = {int(pooled.loc[lead, m]) for m in methods if pd.notna(pooled.loc[lead, m])}
        n = "/".join(str(c) for c in sorted(counts)) or "0"
        cells = []
        for m, w in zip(methods, widths):
            v = values.loc[lead, m] if m in values.columns else float("nan")
            cells.append(f"{'nan' if pd.isna(v) else f'{v:.3f}':>{w}}")
        lines.append(f"{_lead(lead):>8} {n:>5}  " + "  ".join(cells))
    return lines


def _groups(methods: list[str], width: int) -> list[list[str]]:
    groups, current, used = [], [], 16
    for m in methods:
        w = max(len(m), 6) + 2
        if current and used + w > width:
            groups.append(current)
            current, used = [], 16
        current.append(m)
        used += w
    return groups + [current] if current else groups


def lead_tables(scores: pd.DataFrame, *, truth_end=None, width: int = WIDTH, metrics=None) -> str:
    """The terminal tables for ``scores`` (from :func:`nowcast.verify.evaluate`).

    ``metrics``: a subset of the key scores to print (e.g. ``("MAE", "CSI")``).
    """
    units = str(scores.attrs.get("units") or "")
    methods = list(dict.fromkeys(scores["method"]))
    out = []
    for metric, thr, scale in _score_parts(scores):
        if metrics is not None and metric not in metrics:
            continue
        sub = _select(scores, metric, thr, scale)
        out.append(_title(metric, thr, scale, units, scores))
        for group in _groups(methods, width):
            out += _block(sub[sub["method"].isin(group)], group)
        out.append("")
    per_lead = scores.groupby("lead_time")["n_issues"].max()
    if len(per_lead) and per_lead.min() < per_lead.max():
        fewer = per_lead[per_lead < per_lead.max()].index
        which = (
            f"lead {_lead(fewer[0])}"
            if len(fewer) == 1
            else f"leads {_lead(fewer.min())} to {_lead(fewer.max())}"
        )
        end = (
            f", e.g. past the truth's end, {pd.Timestamp(truth_end):%Y-%m-%d %H:%M}"
            if truth_end is not None
            else ""
        )
        out += [
            f"n: issue times pooled per lead; {which} pooled fewer than {per_lead.max()}",
            f"   (no observation at some of their valid times{end}).",
        ]
    else:
        out.append(f"n: issue times pooled per lead ({per_lead.max() if len(per_lead) else 0}).")
    return "\n".join(out)
