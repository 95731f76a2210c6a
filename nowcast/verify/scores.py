"""Scores of forecasts against observations: :func:`evaluate`, pooled per method and lead time.

It takes 4-D forecasts ``(issue_time, lead_time, y, x)`` (one per method) and the
observation archive ``(time, y, x)`` and returns a tidy table of scores (continuous,
categorical at each threshold, FSS at each threshold and scale), pooled over issue times
(see :mod:`nowcast.verify.metrics` for the definitions and the NaN rules).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import (
    ISSUE_TIME,
    LEAD_TIME,
    TIME,
    VALID_TIME,
    X,
    Y,
    distinct_names,
    method_name,
)
from nowcast.errors import NowcastError
from nowcast.geo import coord_spacing, grid_spacing_m
from nowcast.kinds import kind_of
from nowcast.products import nearest_indices, truth_for
from nowcast.verify import DEFAULT_SCALES, default_thresholds
from nowcast.verify.metrics import (
    CATEGORICAL_METRICS,
    CONTINUOUS_METRICS,
    SPATIAL_METRICS,
    ContingencyTable,
    ContinuousSums,
    FSSSums,
)
from nowcast.verify.probabilistic import (
    CRPS_METRICS,
    DEFAULT_PROBABILITY_BINS,
    PROBABILITY_METRICS,
)
from nowcast.verify.probinputs import (
    ProbabilisticForecast,
    ProbabilisticSums,
    read_forecast_file,
    valid_mask,
)
from nowcast.verify.probtables import DIAGRAM_COLUMNS, diagram_rows, sources

#: pySTEPS' ``X_min`` of the rank histogram for precipitation (mm h-1): pixels where the
#: observation and every member are drier are not ranked (dry ties would fill every rank).
RANK_MIN = 0.1

COLUMNS = ("method", "lead_time", "metric", "threshold", "scale", "value", "n_issues")

__all__ = [
    "COLUMNS",
    "Verification",
    "evaluate",
    "load_forecast_files",
    "load_forecasts",
    "verification",
]


@dataclass
class Verification:
    """What :func:`verification` returns: the ``scores`` table (:data:`COLUMNS`) and the
    ``diagrams`` table (:data:`nowcast.verify.probtables.DIAGRAM_COLUMNS`: reliability,
    ROC and rank-histogram points; empty without probabilistic forecasts)."""

    scores: pd.DataFrame
    diagrams: pd.DataFrame


def evaluate(
    forecasts: Mapping[str, xr.DataArray],
    truth: xr.DataArray,
    *,
    thresholds: Sequence[float] | None = None,
    scales: Sequence[int] = DEFAULT_SCALES,
    common_mask: bool = True,
    probabilistic: Mapping[str, ProbabilisticForecast] | None = None,
    probability_bins: int = DEFAULT_PROBABILITY_BINS,
    seed: int = 0,
) -> pd.DataFrame:
    """Scores of each forecast against ``truth``, per lead time, pooled over issue times.

    ``forecasts`` maps method names to ``(issue_time, lead_time, y, x)`` DataArrays on
    ``truth``'s grid (or on a sub-grid of it). A pixel counts where forecast and
    observation are both finite; with ``common_mask`` (default) it must also be finite in
    every other forecast for the same issue and lead time, so all methods are scored on
    the same pixels. ``thresholds`` default to the truth's kind's
    (:func:`nowcast.verify.default_thresholds`: rain classes for precipitation, none - only
    continuous scores - for temperature). Returns a tidy DataFrame with :data:`COLUMNS`:
    ``lead_time`` in minutes, ``threshold`` NaN for continuous scores, ``scale`` (pixels,
    FSS only) <NA> elsewhere, ``n_issues`` the issue times pooled into the score (those
    with an observation at that lead's valid time). ``attrs``: ``units``, ``grid_spacing`` and
    ``grid_units`` (one pixel's size in km or degrees, for FSS scales; absent when unknown).
    Only issue times are read one at a time, so memory stays bounded.

    ``probabilistic`` maps some of the methods to their members, exceedance probabilities
    and quantiles (:class:`~nowcast.verify.probinputs.ProbabilisticForecast`); with any,
    every method also gets ``CRPS`` (a deterministic one's is its MAE) and ``BS``, ``BSS``,
    ``ROC_area`` per threshold (:mod:`nowcast.verify.probabilistic`; ``probability_bins``
    classes; ``seed`` breaks rank-histogram ties), and ``attrs["probabilistic"]`` says
    where each method's CRPS and probabilities come from. :func:`verification` returns the
    reliability, ROC and rank-histogram points too.
    """
    return verification(
        forecasts,
        truth,
        thresholds=thresholds,
        scales=scales,
        common_mask=common_mask,
        probabilistic=probabilistic,
        probability_bins=probability_bins,
        seed=seed,
    ).scores


def verification(
    forecasts: Mapping[str, xr.DataArray],
    truth: xr.DataArray,
    *,
    thresholds: Sequence[float] | None = None,
    scales: Sequence[int] = DEFAULT_SCALES,
    common_mask: bool = True,
    probabilistic: Mapping[str, ProbabilisticForecast] | None = None,
    probability_bins: int = DEFAULT_PROBABILITY_BINS,
    seed: int = 0,
    rank_min: float | None | str = "auto",
) -> Verification:
    """:func:`evaluate`'s scores and the diagrams table (:class:`Verification`).

    ``rank_min``: pySTEPS' ``X_min`` of the rank histogram; ``"auto"`` is
    :data:`RANK_MIN` for precipitation, none otherwise.
    """
    if not forecasts:
        raise NowcastError("no forecasts to evaluate")
    truth = _check_truth(truth)
    kind = kind_of(truth.attrs)
    if thresholds is None:
        thresholds = default_thresholds(kind)
    thresholds = _check_thresholds(thresholds)
    scales = _check_scales(scales)
    fcs = {name: _check_forecast(name, fc, truth) for name, fc in forecasts.items()}
    grids = {name: _truth_on_grid(name, fc, truth) for name, fc in fcs.items()}
    for name, fc in fcs.items():
        _check_overlap(name, fc, truth)
    prob = _check_probabilistic(probabilistic, fcs, probability_bins)
    if rank_min == "auto":
        rank_min = RANK_MIN if kind == "precipitation" else None

    cont = {m: ContinuousSums.zeros(fc.sizes[LEAD_TIME]) for m, fc in fcs.items()}
    pooled = {m: np.zeros(fc.sizes[LEAD_TIME], dtype=int) for m, fc in fcs.items()}
    cat = {m: ContingencyTable.zeros(len(thresholds), fc.sizes[LEAD_TIME]) for m, fc in fcs.items()}
    fss = {
        m: FSSSums.zeros(len(thresholds), len(scales), fc.sizes[LEAD_TIME]) for m, fc in fcs.items()
    }
    psums = {
        m: ProbabilisticSums.zeros(
            prob.get(m), len(thresholds), fc.sizes[LEAD_TIME], probability_bins
        )
        for m, fc in fcs.items()
        if prob
    }
    rng = np.random.default_rng(seed)
    index = {
        m: {pd.Timestamp(t): i for i, t in enumerate(fc[ISSUE_TIME].values)}
        for m, fc in fcs.items()
    }
    all_issues = sorted(set().union(*(set(ix) for ix in index.values())))

    for issue in all_issues:
        fields: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        truth_cache: dict[tuple, np.ndarray] = {}
        for m, fc in fcs.items():
            if issue not in index[m]:
                continue
            one = fc.isel({ISSUE_TIME: [index[m][issue]]})
            key = (tuple(one[VALID_TIME].values.ravel()), m if grids[m] is not truth else None)
            if key not in truth_cache:
                truth_cache[key] = _truth_values(one, grids[m])
            f = np.asarray(one.values[0], dtype=np.float32)
            o = truth_cache[key]
            fields[m] = (f, o, np.isfinite(f) & np.isfinite(o))
        # lead by lead (bounded memory); masks and observed fractions shared by the methods
        leads = {m: fcs[m][LEAD_TIME].values for m in fields}
        for lead in sorted(set().union(*(set(v) for v in leads.values()))):
            at = [(m, j) for m in fields for j in np.flatnonzero(leads[m] == lead)]
            parts = {m: prob[m].at(issue, lead) if m in prob else {} for m, _ in at}
            masks = {}
            for m, j in at:
                masks[m, j] = fields[m][2][j]
                extra = valid_mask(parts[m])
                if extra is not None:
                    masks[m, j] = masks[m, j] & extra
            if common_mask and len(fields) > 1:
                common = np.logical_and.reduce(list(masks.values()))
                masks = dict.fromkeys(masks, common)
            fractions_cache: dict = {}
            for m, j in at:
                f, o, valid = fields[m][0][j], fields[m][1][j], masks[m, j]
                pooled[m][j] += bool(valid.any())
                cont[m].add(f, o, valid, lead=j)
                cat[m].add(f, o, valid, thresholds, lead=j)
                fss[m].add(f, o, valid, thresholds, scales, lead=j, cache=fractions_cache)
                if prob:
                    psums[m].add(
                        f, parts[m], o, valid, thresholds, lead=j, rng=rng, rank_min=rank_min
                    )

    rows, diagrams = [], []
    for m, fc in fcs.items():
        minutes = _minutes(fc[LEAD_TIME].values)
        n = pooled[m]
        for metric in CONTINUOUS_METRICS:
            rows += _rows(m, minutes, metric.name, np.nan, pd.NA, metric.compute(cont[m]), n)
        for metric in CATEGORICAL_METRICS:
            values = metric.compute(cat[m])
            for k, thr in enumerate(thresholds):
                rows += _rows(m, minutes, metric.name, thr, pd.NA, values[k], n)
        for metric in SPATIAL_METRICS:
            values = metric.compute(fss[m])
            for k, thr in enumerate(thresholds):
                for j, scale in enumerate(scales):
                    rows += _rows(m, minutes, metric.name, thr, scale, values[k, j], n)
        if not prob:
            continue
        for metric in CRPS_METRICS:
            rows += _rows(m, minutes, metric.name, np.nan, pd.NA, metric.compute(psums[m].crps), n)
        for metric in PROBABILITY_METRICS:
            values = metric.compute(psums[m].probs)
            for k, thr in enumerate(thresholds):
                rows += _rows(m, minutes, metric.name, thr, pd.NA, values[k], n)
        diagrams += diagram_rows(m, minutes, psums[m], thresholds, n)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["threshold"] = df["threshold"].astype("float64")
    df["scale"] = df["scale"].astype("Int64")
    df["value"] = df["value"].astype("float64")
    df["n_issues"] = df["n_issues"].astype("int64")
    df.attrs.update(_grid_spacing(truth))
    units = next(
        (fc.attrs.get("units") for fc in fcs.values() if fc.attrs.get("units")), None
    ) or truth.attrs.get("units")
    if units:
        df.attrs["units"] = str(units)
    if prob:
        df.attrs["probabilistic"] = sources(fcs, prob)
    table = pd.DataFrame(diagrams, columns=list(DIAGRAM_COLUMNS))
    table.attrs = dict(df.attrs)
    return Verification(df, table)


def _rows(method, minutes, metric, threshold, scale, values, pooled) -> list[tuple]:
    return [
        (method, lead, metric, threshold, scale, float(v), int(n))
        for lead, v, n in zip(minutes, np.atleast_1d(values), pooled)
    ]


def _grid_spacing(truth: xr.DataArray) -> dict:
    """``{"grid_spacing": size, "grid_units": "km" | "°"}`` of one pixel; {} when unknown."""
    metres = grid_spacing_m(truth)  # a projected grid's pixel (x/y in a length unit)
    if metres is not None:
        return {"grid_spacing": round(metres / 1000.0, 6), "grid_units": "km"}
    sizes = []
    for dim in (X, Y):  # a longitude/latitude grid's, in degrees
        if not str(truth[dim].attrs.get("units", "m")).strip().lower().startswith("degree"):
            return {}
        spacing = coord_spacing(truth[dim].values)
        if spacing is None:
            return {}
        sizes.append(spacing)
    return {"grid_spacing": round(float(np.mean(sizes)), 6), "grid_units": "°"}


def _minutes(leads) -> list:
    minutes = np.asarray(leads, dtype="timedelta64[ns]") / np.timedelta64(1, "m")
    return [int(v) if float(v).is_integer() else float(v) for v in minutes]


# --------------------------------------------------------------------------- checks


def _check_probabilistic(probabilistic, fcs, n_bins) -> dict[str, ProbabilisticForecast]:
    """The methods' probabilistic parts that hold something, checked against their forecasts."""
    out = {}
    for name, source in (probabilistic or {}).items():
        if name not in fcs:
            raise NowcastError(f"probabilistic parts given for {name!r}, which has no forecast")
        if source:
            source.check_covers(name, fcs[name])
            out[name] = source
    if out and (isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1):
        raise NowcastError(f"probability_bins must be a positive integer, got {n_bins!r}")
    return out


def _check_thresholds(thresholds) -> tuple[float, ...]:
    try:
        out = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise NowcastError(f"thresholds must be numbers, got {thresholds!r}") from None
    if not all(np.isfinite(out)):
        raise NowcastError("thresholds must be finite numbers")
    return out


def _check_scales(scales) -> tuple[int, ...]:
    out = []
    for s in scales:
        if isinstance(s, bool) or not float(s).is_integer() or s < 1 or int(s) % 2 == 0:
            raise NowcastError(f"FSS scales must be odd positive integers (pixels), got {s!r}")
        out.append(int(s))
    return tuple(out)


def _check_truth(truth: xr.DataArray) -> xr.DataArray:
    if not isinstance(truth, xr.DataArray) or set(truth.dims) != {TIME, Y, X}:
        raise NowcastError(
            f"the truth must be a (time, y, x) DataArray, got dims {getattr(truth, 'dims', None)}"
        )
    return truth.transpose(TIME, Y, X)


def _check_forecast(name: str, fc: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    if not isinstance(fc, xr.DataArray) or set(fc.dims) != {ISSUE_TIME, LEAD_TIME, Y, X}:
        raise NowcastError(
            f"forecast {name!r} must have dims (issue_time, lead_time, y, x), got "
            f"{getattr(fc, 'dims', None)}"
        )
    if VALID_TIME not in fc.coords:
        raise NowcastError(f"forecast {name!r} has no valid_time coordinate")
    fu, tu = fc.attrs.get("units"), truth.attrs.get("units")
    if fu and tu and fu != tu:
        raise NowcastError(f"forecast {name!r} is in {fu} but the truth is in {tu}")
    return fc.transpose(ISSUE_TIME, LEAD_TIME, Y, X)


def _truth_on_grid(name: str, fc: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """``truth`` itself when the grids match, its matching sub-grid, else an error."""
    picks = []
    for dim in (Y, X):
        fv, tv = (
            np.asarray(fc[dim].values, dtype=np.float64),
            np.asarray(truth[dim].values, dtype=np.float64),
        )
        if fv.shape == tv.shape and np.allclose(fv, tv, rtol=0, atol=_tolerance(tv)):
            picks.append(None)
            continue
        near = nearest_indices(tv, fv, _tolerance(tv))
        if near is not None:
            picks.append(near)
            continue
        raise NowcastError(
            f"forecast {name!r} grid ({fc.sizes[Y]} x {fc.sizes[X]}) differs from the truth's grid "
            f"({truth.sizes[Y]} x {truth.sizes[X]}) along {dim}"
        )
    if all(p is None for p in picks):
        return truth
    sel = {dim: p for dim, p in zip((Y, X), picks) if p is not None}
    return truth.isel(sel)


def _tolerance(coord: np.ndarray) -> float:
    step = np.abs(np.diff(coord)).min() if len(coord) > 1 else 1.0
    return 1e-3 * float(step)


def _check_overlap(name: str, fc: xr.DataArray, truth: xr.DataArray) -> None:
    valid = pd.DatetimeIndex(fc[VALID_TIME].values.ravel())
    times = pd.DatetimeIndex(truth[TIME].values)
    if not valid.isin(times).any():
        raise NowcastError(
            f"forecast {name!r} valid times ({valid.min()} to {valid.max()}) do not overlap the "
            "truth "
            f"({times.min()} to {times.max()})"
            if len(times)
            else f"the truth holds no times to verify {name!r}"
        )


def _truth_values(one: xr.DataArray, truth: xr.DataArray) -> np.ndarray:
    obs = truth_for(one, truth)
    return np.asarray(obs.values[0], dtype=np.float32)


# --------------------------------------------------------------------------- files


def load_forecasts(paths: Iterable[str | os.PathLike]) -> dict[str, xr.DataArray]:
    """Read forecast files, keyed by method name (from the ``nowcast_method`` attribute).

    Two files of the same method are told apart by their file name: ``method (stem)``.
    """
    return load_forecast_files(paths)[0]


def load_forecast_files(
    paths: Iterable[str | os.PathLike],
) -> tuple[dict[str, xr.DataArray], dict[str, ProbabilisticForecast]]:
    """:func:`load_forecasts` and, under the same keys, the files' probabilistic variables
    (members, probabilities, quantiles; only for files that hold some)."""
    paths = [Path(p) for p in paths]
    loaded = [(p, *read_forecast_file(p)) for p in paths]
    keys = distinct_names([method_name(fc) for _, fc, _ in loaded], paths)
    out: dict[str, xr.DataArray] = {}
    prob: dict[str, ProbabilisticForecast] = {}
    for (path, fc, parts), key in zip(loaded, keys):
        if key in out:
            raise NowcastError(f"forecast file {path} is given twice")
        out[key] = fc
        if parts:
            prob[key] = parts
    return out, prob
