"""Running forecast methods: many issue times from an archive, then one forecast file.

:func:`forecast_many` runs a method at each issue time of an archive and returns the 4-D
forecast; :func:`forecast_and_write` also writes it (with the method's name and
:meth:`~nowcast.methods.base.Forecaster.describe` as file metadata), the one step that
``nowcast predict`` (:func:`predict_to_file`), the demo and the batch tasks share.
:func:`make_forecaster` turns ``--model``/``--method`` into a forecaster.

Probabilistic products (a :class:`~nowcast.distribution.ProductRequest`: members,
exceedance probabilities, quantiles, the median or the sharp field) come from
:func:`forecast_products`: per issue time :func:`predict_one` calls the method's
``predict_distribution`` once and reads them off it (:func:`nowcast.probabilistic.read_off`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.reader import open_archive, source_files
from nowcast.archive.timeaxis import issue_range, select_issue_times, time_step
from nowcast.conventions import LEAD_TIME, TIME, X, Y, as_time
from nowcast.distribution import ProductRequest, issue_seed
from nowcast.errors import NowcastError
from nowcast.fileio import check_output
from nowcast.methods.base import (
    Forecaster,
    check_n_leads,
    deterministic_error,
    get_method,
    infer_step,
)
from nowcast.methods.missing import check_frames_have_data, warn_empty_leads
from nowcast.methods.regions import locate_region
from nowcast.probabilistic import IssueStack, read_off
from nowcast.products import forecast_array, write_forecast
from nowcast.region import Region, Window, parse_region
from nowcast.trained.catalogue import resolve_model_file
from nowcast.trained.rundir import RunDir

#: Leads forecast when neither the caller nor the method (``t_out``) says how many.
DEFAULT_N_LEADS = 12


def forecast_many(
    method: Forecaster,
    archive: xr.DataArray,
    issue_times: Sequence,
    n_leads: int,
    *,
    step=None,
    request: ProductRequest | None = None,
) -> xr.DataArray:
    """Run ``method`` at each issue time of ``archive``; returns ``(issue_time, lead_time, y, x)``.

    The deterministic forecast of :func:`forecast_products` (``request``: e.g. the sharp
    field of a probabilistic method); see there.
    """
    return forecast_products(method, archive, issue_times, n_leads, step=step, request=request)[0]


def forecast_products(
    method: Forecaster,
    archive: xr.DataArray,
    issue_times: Sequence,
    n_leads: int,
    *,
    step=None,
    request: ProductRequest | None = None,
    warn_empty: bool = True,
) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    """Run ``method`` at each issue time of ``archive``: ``(forecast, extra)``.

    ``forecast`` is ``(issue_time, lead_time, y, x)``; ``extra`` maps variable names to the
    probabilistic products ``request`` asks for (:mod:`nowcast.probabilistic`; ``{}``
    without one), which only a probabilistic method gives (else
    :func:`~nowcast.methods.base.deterministic_error`, before any work).

    For each issue time the last ``method.input_frames(step)`` (usually ``t_in``) frames
    up to it, spaced by ``step`` (default: the archive's most common spacing), are passed
    to ``method.predict``; at least two frames, so that a one-frame method can read the
    step (an earlier frame the archive lacks comes as NaN, and such a method does not use
    it). An issue time outside the archive, a required input frame the archive lacks or
    one that is all missing (NaN, e.g. a radar outage), a repeated issue time and a
    forecast too large for this machine's memory are each a :class:`NowcastError` naming
    the time (or the size). Issue times come out sorted. The result is assembled with
    :func:`nowcast.products.forecast_array` (archive name, attrs, grid mapping).
    A lead that holds no value at some issue time is said in one warning line
    (:func:`~nowcast.methods.missing.warn_empty_leads`; ``warn_empty=False``: the caller
    checks, e.g. on the part of the grid it keeps).
    """
    request = check_request(method, request, archive.attrs.get("units"))
    n_leads = check_n_leads(n_leads)
    if set(archive.dims) != {TIME, Y, X}:
        raise NowcastError(f"the archive must have dims (time, y, x), got {archive.dims}")
    archive = archive.transpose(TIME, Y, X)
    times = pd.DatetimeIndex(archive[TIME].values)
    if len(times) == 0:
        raise NowcastError("the archive holds no frames")
    if step is None and len(times) >= 2:
        step = time_step(archive)  # the archive's most common spacing
    if step is None:
        step = method.step
    if step is None:
        raise NowcastError("cannot infer the archive's time step from one frame; pass step=...")
    step = infer_step(None, step)
    issues = sorted_issue_times(issue_times)
    check_forecast_size(
        len(issues),
        n_leads,
        archive.sizes[Y],
        archive.sizes[X],
        fields=1 + (request.extra_fields if request else 0),
        ensemble=ensemble_size(method, request),
    )
    # a method that is only the bare protocol (no Forecaster base) needs its t_in frames
    needs = getattr(method, "input_frames", None)
    t_in = int(needs(step) if needs is not None else method.t_in)
    n_frames = max(t_in, 2)
    out: np.ndarray | None = None
    stack = IssueStack(len(issues))
    result_step = step
    for i, issue in enumerate(issues):
        if issue < times[0] or issue > times[-1]:
            raise NowcastError(
                f"issue time {issue} is outside the archive ({times[0]} to {times[-1]})"
            )
        frame_times = pd.DatetimeIndex([issue - k * step for k in range(n_frames - 1, -1, -1)])
        for t in frame_times[-t_in:]:
            if t not in times:
                raise NowcastError(
                    f"input frame {t} (for issue time {issue}) is missing from the archive"
                )
        past = archive.reindex({TIME: frame_times}).load()
        check_frames_have_data(past.isel({TIME: slice(-t_in, None)}), issue)
        pred, extras = predict_one(method, past, n_leads, request, issue)
        expected = (n_leads, archive.sizes[Y], archive.sizes[X])
        if tuple(pred.shape) != expected or (LEAD_TIME in pred.dims and pred.dims[0] != LEAD_TIME):
            raise NowcastError(
                f"method {method.name!r} returned shape {tuple(pred.shape)}, expected {expected}"
            )
        if out is None:
            out = np.empty((len(issues),) + expected, dtype=np.float32)
            if LEAD_TIME in pred.coords:
                result_step = pd.Timedelta(pred[LEAD_TIME].values[0])
        out[i] = np.asarray(pred.values, dtype=np.float32)
        stack.add(i, extras)
    forecast = forecast_array(
        out, issue_times=pd.DatetimeIndex(issues), step=result_step, template=archive
    )
    if warn_empty:
        warn_empty_leads(forecast)
    return forecast, stack.arrays(forecast)


def check_request(
    method: Forecaster, request: ProductRequest | None, units: str | None
) -> ProductRequest | None:
    """``request`` when ``method`` can honour it for data in ``units`` (None when nothing is
    asked); a one-line error for a deterministic method or implausible thresholds."""
    if request is None or not request.asked:
        return None
    if not getattr(method, "probabilistic", False):
        raise deterministic_error(method.name)
    request.check_units(units)
    return request


def ensemble_size(method: Forecaster, request: ProductRequest | None) -> int:
    """Members drawn per issue time (``request.members``, else the method's own)."""
    if request is None or not request.asked:
        return 0
    return int(request.members or getattr(method, "members", 0) or 0)


def predict_one(
    method: Forecaster, past: xr.DataArray, n_leads: int, request: ProductRequest | None, issue
) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    """One issue time: ``(deterministic (lead_time, y, x), {product: (D, lead_time, y, x)})``.

    Without a request, ``method.predict``; with one, ``method.predict_distribution`` (one
    call: the members are drawn once, seeded by :func:`~nowcast.distribution.issue_seed`)
    and the products read off it.
    """
    if request is None or not request.asked:
        return method.predict(past, n_leads), {}
    dist = method.predict_distribution(
        past, n_leads, members=request.members or 0, seed=issue_seed(request.seed, issue)
    )
    return read_off(dist, request)


def sorted_issue_times(issue_times: Sequence) -> list[pd.Timestamp]:
    """Issue times as sorted naive UTC; a time given twice is an error (not silently merged)."""
    issues = sorted(as_time(t) for t in issue_times)
    if not issues:
        raise NowcastError("no issue times given")
    for a, b in zip(issues, issues[1:]):
        if a == b:
            raise NowcastError(f"issue time {a} is given more than once")
    return issues


def available_memory() -> int:
    """Bytes of memory available to this process now (psutil; 0 when it cannot tell)."""
    try:
        import psutil  # a dependency of dask.distributed; only needed for this check
    except ImportError:  # pragma: no cover - installed with distributed
        return 0
    return int(psutil.virtual_memory().available)


def check_forecast_size(
    n_issues: int, n_leads: int, ny: int, nx: int, *, fields: int = 1, ensemble: int = 0
) -> int:
    """The forecast's size in bytes; an error when it exceeds half the available memory.

    ``fields``: fields per issue time and lead (1 + members + thresholds + quantile levels);
    ``ensemble``: members drawn for one issue time (held as float64 while they are made).
    """
    nbytes = n_issues * fields * n_leads * ny * nx * 4  # float32
    nbytes += ensemble * n_leads * ny * nx * 8
    available = available_memory()
    if available and nbytes > available // 2:
        if fields == 1 and not ensemble:
            what, fewer = f"{n_issues} issue time(s) x {n_leads} leads", "leads or issue times"
        else:
            what = f"{n_issues} issue time(s) x {fields} fields x {n_leads} leads"
            fewer = "members, thresholds, quantiles, leads or issue times"
        drawn = f" (and {ensemble} members being drawn)" if ensemble else ""
        raise NowcastError(
            f"the forecast would hold {what} x {ny} x {nx} values{drawn} = {_gib(nbytes)} "
            f"(float32), more than half of the {_gib(available)} of memory available: ask for "
            f"fewer {fewer}"
        )
    return nbytes


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB"


def forecast_and_write(
    method: Forecaster,
    archive: xr.DataArray,
    issue_times: Sequence,
    n_leads: int,
    path: str | os.PathLike,
    *,
    overwrite: bool = True,
    request: ProductRequest | None = None,
    region: Region | None = None,
) -> tuple[xr.DataArray, Path]:
    """:func:`forecast_products`, then write the forecast atomically to ``path`` (NetCDF or Zarr).

    Returns ``(forecast, path)``; the file names the method and holds its ``describe()``
    (and the ``request``'s products, :mod:`nowcast.probabilistic`).
    ``overwrite=False``: written only if nothing is at ``path`` when it is placed (of two
    runs started together, one wins and the other gets ``PATH exists``). ``region``: the
    forecast of that part of the grid only (:func:`forecast_region`).
    """
    metadata = dict(method.describe() or {})
    factor = getattr(method, "network_factor", None)
    block = factor(archive) if factor is not None else 1
    if block > 1:  # the network ran on blocks of the input grid (methods.network_grid)
        metadata["network_block"] = f"{block} x {block} input pixels"
    if region is None:
        forecast, extra = forecast_products(method, archive, issue_times, n_leads, request=request)
    else:
        forecast, extra, window = forecast_region(
            method, archive, issue_times, n_leads, region, request=request
        )
        metadata["region"] = region.text
        metadata["region_context"] = [int(v) for s in window.context for v in (s.start, s.stop)]
    if request is not None and request.asked:
        metadata["products"] = request.to_dict()
    written = write_forecast(
        forecast,
        path,
        method=method.name,
        metadata=metadata,
        overwrite=overwrite,
        extra=extra,
    )
    # as read back from the file: what products.display_name names it by
    named = {"nowcast_method": method.name}
    if metadata.get("model"):
        named["nowcast_model"] = str(metadata["model"])
    return forecast.assign_attrs(named), written


def forecast_region(
    method: Forecaster,
    archive: xr.DataArray,
    issue_times: Sequence,
    n_leads: int,
    region: Region,
    *,
    request: ProductRequest | None = None,
) -> tuple[xr.DataArray, dict[str, xr.DataArray], Window]:
    """:func:`forecast_products` of ``region`` only: the forecast is made on the region's
    context (:func:`locate_region`: the flow estimated there too), then cut to the region;
    empty leads are warned about in the region, not its context.
    Returns ``(forecast, extra, window)``."""
    window = locate_region(method, archive, region, n_leads)
    context = archive.isel({Y: window.context[0], X: window.context[1]})
    forecast, extra = forecast_products(
        method, context, issue_times, n_leads, request=request, warn_empty=False
    )
    inner = {Y: window.inner[0], X: window.inner[1]}
    forecast = forecast.isel(inner)
    warn_empty_leads(forecast)
    return forecast, {k: v.isel(inner) for k, v in extra.items()}, window


def make_forecaster(
    *, model: str | Path | None = None, method: str | None = None, tile=None
) -> Forecaster:
    """The forecaster for ``--model``/``--method`` (``convlstm`` when a model is given);
    ``tile`` (``auto``, ``none`` or pixels; None: auto) is the network's tiling
    (:mod:`nowcast.methods.tiling`), an error for another method."""
    method = method or ("convlstm" if model is not None else None)
    if method is None:
        raise NowcastError(
            "give --model MODEL (the trained ConvLSTM) or --method NAME (e.g. persistence, "
            "extrapolation)"
        )
    if method == "convlstm":
        if model is None:
            raise NowcastError(
                "--method convlstm needs --model (a run directory or a shipped model name)"
            )
        return get_method("convlstm", model=model, tile="auto" if tile is None else tile)
    if model is not None:
        raise NowcastError(f"--model is for the convlstm method, not {method!r}")
    if tile is not None:
        raise NowcastError(f"--tile is for the trained model (convlstm), not {method!r}")
    return get_method(method)


def no_issue_times(archive: xr.DataArray, t_in: int) -> str:
    """The error for a forecast asked with no issue time: what to give, and the range a
    bare ``--start``, ``--end`` or ``--every`` would give on this archive."""
    text = "give --issue-time TIME (repeatable) or a range --start/--end/--every"
    try:
        every = issue_range(archive[TIME].values, t_in=t_in)
    except NowcastError:
        return text
    step = pd.Timedelta(time_step(archive)) if archive.sizes[TIME] >= 2 else None
    return (
        f"{text}; a range's defaults here: {every[0]:%Y-%m-%dT%H:%M} (the first time with "
        f"{t_in} input frame{'s' if t_in != 1 else ''}) to {every[-1]:%Y-%m-%dT%H:%M} (the "
        f"last) every {_minutes(step)}"
    )


def _minutes(step) -> str:
    seconds = step.total_seconds()
    return f"{seconds / 60:g}min" if seconds % 60 == 0 or seconds > 60 else f"{seconds:g}s"


def predict_to_file(
    inputs,
    issue_times,
    output: str | os.PathLike,
    *,
    model: str | Path | None = None,
    method: str | None = None,
    variable: str | None = None,
    n_leads: int | None = None,
    kind: str = "auto",
    start=None,
    end=None,
    every=None,
    overwrite: bool = False,
    request: ProductRequest | None = None,
    tile=None,
    region: Region | str | None = None,
) -> Path:
    """Open the archive, forecast every issue time, write one forecast file atomically.

    The archive is opened as ``kind`` (``auto``: the kind its units say, see
    :func:`nowcast.kinds.kind_of`). Issue times: ``issue_times`` and, when any of
    ``start``/``end``/``every`` is given, that range over the archive
    (:func:`nowcast.archive.timeaxis.select_issue_times`: sorted, each once). ``n_leads``
    defaults to the method's ``t_out``, else :data:`DEFAULT_N_LEADS`; the method checks
    the archive first (``check_compatible``). Before any work,
    :func:`nowcast.fileio.check_output` refuses an ``output`` that is (or is inside, or
    holds) an input file, folder or the model's files, and an existing ``output`` unless
    ``overwrite``. ``request``: probabilistic products (members, probabilities, quantiles,
    the deterministic product), for a probabilistic method only; checked before any work.
    ``tile``: the network's tiling (:func:`make_forecaster`); ``region``: forecast that part
    of the grid (:mod:`nowcast.region`; placed on the grid before any work).
    """
    if region is not None and not isinstance(region, Region):
        region = parse_region(region)
    forecaster = make_forecaster(model=model, method=method, tile=tile)
    check_request(forecaster, request, None)
    archive = open_archive(list(inputs), variable=variable, kind=kind)
    model_files = []
    if model is not None:
        model_file = resolve_model_file(model)
        model_files = [model_file, RunDir(model_file.parent).metadata]
    check_output(output, [*inputs, *source_files(archive), *model_files], overwrite=overwrite)
    n_leads = n_leads or forecaster.t_out or DEFAULT_N_LEADS
    forecaster.check_compatible(archive)
    check_request(forecaster, request, archive.attrs.get("units"))
    times = select_issue_times(
        archive, issue_times, start=start, end=end, every=every, t_in=int(forecaster.t_in)
    )
    if len(times) == 0:
        raise NowcastError(no_issue_times(archive, int(forecaster.t_in)))
    _, path = forecast_and_write(
        forecaster,
        archive,
        list(times),
        n_leads,
        output,
        overwrite=overwrite,
        request=request,
        region=region,
    )
    return path
