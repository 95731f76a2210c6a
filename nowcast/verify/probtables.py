"""Tables of the probabilistic verification: diagram points and the report's Markdown section.

The diagrams table (:data:`DIAGRAM_COLUMNS`) has one row per point:

* ``diagram == "reliability"``: per threshold and probability class ``bin`` (lower edge
  ``edge``), ``x`` the mean forecast probability, ``y`` the observed frequency, ``count``
  the pixels in the class (NaN x and y when empty);
* ``diagram == "roc"``: per threshold and warning level ``p >= edge``, ``x`` the
  false-alarm rate (POFD), ``y`` the hit rate (POD), ``count`` the pixels warned;
* ``diagram == "rank"``: ensembles only, per rank ``bin`` (0 ... members), ``y`` its
  relative frequency, ``count`` its count (threshold and edge NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nowcast.verify.probabilistic import (
    PROBABILISTIC,
    PROBABILISTIC_CONTINUOUS,
    reliability,
    roc_curve,
)

DIAGRAM_COLUMNS = (
    "method",
    "lead_time",
    "diagram",
    "threshold",
    "bin",
    "edge",
    "x",
    "y",
    "count",
    "n_issues",
)

__all__ = [
    "DIAGRAM_COLUMNS",
    "diagram_rows",
    "probabilistic_markdown",
    "reliability_gaps",
    "sources",
]


def sources(fcs, prob) -> dict[str, dict[str, str]]:
    """``{method: {"crps": source, "probability": source}}`` (members, quantiles,
    probability or deterministic)."""
    out = {}
    for m in fcs:
        p = prob.get(m)
        out[m] = {
            "crps": p.crps_source if p else "deterministic",
            "probability": p.probability_source if p else "deterministic",
        }
    return out


def diagram_rows(method, minutes, sums, thresholds, pooled) -> list[tuple]:
    """The diagram points of one method's :class:`~nowcast.verify.probinputs.ProbabilisticSums`."""
    rows = []
    c = sums.probs
    mean_p, freq, counts = reliability(c)
    pofd, pod = roc_curve(c)
    warned = np.cumsum(c.counts[:, ::-1], axis=1)[:, ::-1]
    edges = np.arange(c.n_bins + 1) / c.n_bins
    for k, thr in enumerate(thresholds):
        if not np.isfinite(c.sum_sq[k]).all():
            continue  # no probabilities at this threshold
        for j, lead in enumerate(minutes):
            n = int(pooled[j])
            for b, edge in enumerate(edges):
                rows.append(
                    (
                        method,
                        lead,
                        "reliability",
                        float(thr),
                        b,
                        edge,
                        mean_p[k, b, j],
                        freq[k, b, j],
                        int(counts[k, b, j]),
                        n,
                    )
                )
            for b, edge in enumerate(edges):
                rows.append(
                    (
                        method,
                        lead,
                        "roc",
                        float(thr),
                        b,
                        edge,
                        pofd[k, b, j],
                        pod[k, b, j],
                        int(warned[k, b, j]),
                        n,
                    )
                )
    if sums.ranks is not None:
        counts = sums.ranks.counts
        total = counts.sum(axis=0)
        for j, lead in enumerate(minutes):
            for r in range(counts.shape[0]):
                share = counts[r, j] / total[j] if total[j] else np.nan
                rows.append(
                    (
                        method,
                        lead,
                        "rank",
                        np.nan,
                        r,
                        np.nan,
                        float(r),
                        share,
                        int(counts[r, j]),
                        int(pooled[j]),
                    )
                )
    return rows


def reliability_gaps(diagrams: pd.DataFrame, min_share: float = 0.01) -> pd.DataFrame:
    """The largest ``|observed frequency - mean forecast probability|`` per method, threshold
    and lead over the reliability classes holding at least ``min_share`` of the pixels
    (columns ``method, threshold, lead_time, gap, classes``; gap NaN when no class does)."""
    rel = diagrams[diagrams["diagram"] == "reliability"]
    rows = []
    for (method, thr, lead), group in rel.groupby(["method", "threshold", "lead_time"], sort=False):
        big = group[group["count"] >= min_share * group["count"].sum()]
        gap = float(np.max(np.abs(big["y"] - big["x"]))) if len(big) else np.nan
        rows.append((method, float(thr), lead, gap, len(big)))
    return pd.DataFrame(rows, columns=["method", "threshold", "lead_time", "gap", "classes"])


def _fmt(value) -> str:
    if value is None or pd.isna(value):
        return "nan"
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def _lead_table(sub: pd.DataFrame, methods: list[str], suffix: str = "") -> list[str]:
    wide = sub.pivot_table(
        index="lead_time", columns="method", values="value", aggfunc="first", dropna=False
    )
    present = [m for m in methods if m in wide.columns]
    lines = [
        "| lead (min) | " + " | ".join(f"{m}{suffix}" for m in present) + " |",
        "|---:|" + "---:|" * len(present),
    ]
    for lead, row in wide.iterrows():
        lines.append(f"| {lead:g} | " + " | ".join(_fmt(row.get(m)) for m in present) + " |")
    return lines


def probabilistic_markdown(scores: pd.DataFrame, units: str = "") -> list[str]:
    """The report's probabilistic section (empty without probabilistic scores)."""
    if not scores["metric"].isin(PROBABILISTIC_CONTINUOUS + PROBABILISTIC).any():
        return []
    u = f" {units}" if units else ""
    methods = list(dict.fromkeys(scores["method"]))
    out = ["## Probabilistic scores", ""]
    src = scores.attrs.get("probabilistic") or {}
    if src:
        out += [
            "Sources (CRPS / probabilities): "
            + "; ".join(f"{m}: {s['crps']} / {s['probability']}" for m, s in src.items())
            + ".",
            "",
        ]
    out += [
        "CRPS: of the members (standard form), else 2 x the mean pinball loss of the "
        "quantiles, else (deterministic) the MAE. Probabilities are P(value ≥ threshold); "
        "BSS is against the sample climatology; ROC area from warnings at p ≥ k/bins.",
        "",
    ]
    for metric in PROBABILISTIC_CONTINUOUS:
        sub = scores[scores["metric"] == metric]
        out += [f"### {metric}{f' ({units})' if units else ''}", "", *_lead_table(sub, methods), ""]
    for thr in sorted(scores.loc[scores["metric"].isin(PROBABILISTIC), "threshold"].unique()):
        for metric in PROBABILISTIC:
            sub = scores[(scores["metric"] == metric) & (scores["threshold"] == thr)]
            out += [f"### {metric}, threshold {thr:g}{u}", "", *_lead_table(sub, methods), ""]
    return out
