"""Probabilistic products in forecast files: read off a distribution, laid out, read back.

A probabilistic forecast file (``nowcast predict --members/--probabilities/--quantiles``
or a batch config's keys of the same names, with a probabilistic method such as
``steps``) is a forecast file of :mod:`nowcast.products` whose main variable ``{name}``
``(issue_time, lead_time, y, x)`` is the deterministic product (the median by default,
or the sharp field: :class:`nowcast.distribution.ProductRequest`), so every reader of
forecasts keeps working; the other products are extra variables of the same file, on the
same issue times, leads and grid (CF, float32, NaN where the forecast is NaN):

* ``{name}_members`` ``(issue_time, realization, lead_time, y, x)``: the ensemble members;
  coordinate ``realization`` (int from 0, CF standard name ``realization``);
* ``{name}_probability`` ``(issue_time, threshold, lead_time, y, x)``: ``P(value >=
  threshold)``, units ``1``; coordinate ``threshold`` in the variable's units;
* ``{name}_quantiles`` ``(issue_time, quantile, lead_time, y, x)``: quantile fields in the
  variable's units; coordinate ``quantile`` (units ``1``).

The main variable lists them in its ``ancillary_variables`` attribute, and the global
attribute ``nowcast_products`` (JSON) holds the request. Files of several issue times
(a batch's) combine with ``xr.open_mfdataset`` along ``issue_time``.
:func:`read_probabilistic` reads the extra variables back (one file or several) as
DataArrays keyed ``"members"``, ``"probability"``, ``"quantiles"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME, X, Y
from nowcast.distribution import (
    MEMBERS_KIND,
    QUANTILE,
    REALIZATION,
    THRESHOLD,
    Distribution,
    ProductRequest,
)
from nowcast.errors import DataError, NowcastError
from nowcast.products import (
    LATITUDE,
    LONGITUDE,
    forecast_from_dataset,
    open_forecast_dataset,
)

MEMBERS, PROBABILITY, QUANTILES = "members", "probability", "quantiles"
#: Each product's extra dimension (its key is also the variable name's suffix).
PRODUCT_DIMS = {MEMBERS: REALIZATION, PROBABILITY: THRESHOLD, QUANTILES: QUANTILE}
_LONG_NAMES = {MEMBERS: "ensemble members", QUANTILES: "quantiles of the predictive distribution"}

__all__ = [
    "MEMBERS",
    "PROBABILITY",
    "PRODUCT_DIMS",
    "QUANTILES",
    "IssueStack",
    "describe_products",
    "read_off",
    "read_probabilistic",
    "variable_name",
]


def variable_name(name: str | None, key: str) -> str:
    """The name of product ``key``'s variable beside the main variable ``name``."""
    return f"{name or 'forecast'}_{key}"


def read_off(
    dist: Distribution, request: ProductRequest
) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    """One issue time's products: ``(deterministic (lead_time, y, x), {key: (D, lead_time, y,
    x)})`` for the keys ``request`` asks for."""
    main = dist.median() if request.product == "median" else dist.sharp()
    extras: dict[str, xr.DataArray] = {}
    if request.members:
        members = dist.members()
        if members.sizes[REALIZATION] != request.members:
            raise NowcastError(
                f"the method drew {members.sizes[REALIZATION]} members, {request.members} asked"
            )
        extras[MEMBERS] = members
    if request.probabilities:
        extras[PROBABILITY] = dist.exceedance(request.probabilities)
    if request.quantiles:
        extras[QUANTILES] = dist.quantiles(request.quantiles)
    return main, extras


class IssueStack:
    """One issue time's extra products after another, gathered into ``(issue_time, D,
    lead_time, y, x)`` float32 arrays (allocated once, at the first issue time)."""

    def __init__(self, n_issues: int) -> None:
        self.n_issues = n_issues
        self._values: dict[str, np.ndarray] = {}
        self._templates: dict[str, xr.DataArray] = {}

    def add(self, i: int, extras: Mapping[str, xr.DataArray]) -> None:
        for key, da in extras.items():
            if key not in self._values:
                self._values[key] = np.empty((self.n_issues,) + da.shape, dtype=np.float32)
                self._templates[key] = da
            self._values[key][i] = np.asarray(da.values, dtype=np.float32)

    def arrays(self, forecast: xr.DataArray) -> dict[str, xr.DataArray]:
        """``{variable name: DataArray}`` on ``forecast``'s issue times, leads and grid."""
        out = {}
        for key, values in self._values.items():
            template = self._templates[key]
            dim = PRODUCT_DIMS[key]
            coords = {k: v for k, v in forecast.coords.items() if k not in (LATITUDE, LONGITUDE)}
            coords[dim] = template[dim]
            attrs = dict(template.attrs)
            if key in _LONG_NAMES:
                label = forecast.attrs.get("long_name") or forecast.name or "forecast"
                attrs["long_name"] = f"{label}: {_LONG_NAMES[key]}"
            name = variable_name(forecast.name, key)
            out[name] = xr.DataArray(
                values,
                dims=(ISSUE_TIME, dim, LEAD_TIME, Y, X),
                coords=coords,
                name=name,
                attrs=attrs,
            )
        return out


def _products_of(ds: xr.Dataset, source: str) -> dict[str, xr.DataArray]:
    main = forecast_from_dataset(ds, source=source)
    dims = {d: k for k, d in PRODUCT_DIMS.items()}
    out = {}
    for var in ds.data_vars:
        extra = [d for d in ds[var].dims if d in dims]
        if LEAD_TIME not in ds[var].dims or len(extra) != 1:
            continue
        da = ds[var].drop_vars(
            [c for c in (LATITUDE, LONGITUDE, VALID_TIME) if c in ds[var].coords]
        )
        gm = main.attrs.get("grid_mapping")
        da = da.assign_coords(
            {
                ISSUE_TIME: main[ISSUE_TIME],
                LEAD_TIME: main[LEAD_TIME],
                VALID_TIME: main[VALID_TIME],
                **({gm: main.coords[gm]} if gm in main.coords else {}),
            }
        )
        da.attrs.setdefault("nowcast_method", main.attrs.get("nowcast_method", "unknown"))
        out[dims[extra[0]]] = da.transpose(ISSUE_TIME, extra[0], LEAD_TIME, Y, X)
    return out


def read_probabilistic(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
) -> dict[str, xr.DataArray]:
    """The probabilistic products of one forecast file, or of several (combined along
    ``issue_time``, sorted), read lazily.

    Returns ``{"members"|"probability"|"quantiles": DataArray}`` for the products the
    file holds (``{}`` for a deterministic forecast), each ``(issue_time, D, lead_time, y,
    x)`` with ``D`` = ``realization``, ``threshold`` or ``quantile``, coordinates
    ``issue_time``, ``lead_time``, ``valid_time``, ``y``, ``x`` and the grid mapping, as
    :func:`nowcast.products.read_forecast` gives them for the main variable, and attribute
    ``nowcast_method``. Several files must hold the same products (a :class:`DataError`
    otherwise).
    """
    many = isinstance(paths, Sequence) and not isinstance(paths, str)
    files = list(paths) if many else [paths]
    if not files:
        raise DataError("no forecast files given")
    parts = [_products_of(open_forecast_dataset(p), str(p)) for p in files]
    keys = set(parts[0])
    for p, part in zip(files, parts):
        if set(part) != keys:
            raise DataError(
                f"{p}: holds products {sorted(part) or 'none'}, {files[0]} {sorted(keys) or 'none'}"
            )
    if len(parts) == 1:
        return parts[0]
    out = {}
    for key in sorted(keys):
        da = xr.concat(
            [part[key] for part in parts],
            dim=ISSUE_TIME,
            coords="minimal",
            compat="override",
            join="exact",
        )
        out[key] = da.sortby(ISSUE_TIME)
    return out


def describe_products(ds: xr.Dataset) -> list[tuple[str, str]]:
    """``nowcast info``'s lines on a forecast file's probabilistic products (none for a
    deterministic forecast)."""
    try:
        request = json.loads(str(ds.attrs.get("nowcast_products", "null"))) or {}
    except ValueError:
        request = {}
    lines: list[tuple[str, str]] = []
    dims = {d: k for k, d in PRODUCT_DIMS.items()}
    found = {}
    for var in ds.data_vars:
        extra = [d for d in ds[var].dims if d in dims]
        if LEAD_TIME in ds[var].dims and len(extra) == 1:
            found[dims[extra[0]]] = (var, extra[0])
    if not found and not request:
        return lines
    product = request.get("deterministic", "median")
    how = {
        "median": "median of the predictive distribution",
        "sharp": "sharp (the mean pattern, probability-matched to the observed values)",
    }.get(product, str(product))
    seed = f", seed {request['seed']}" if "seed" in request else ""
    lines.append(("deterministic", f"{how}{seed}"))
    for key, label in (
        (MEMBERS, "members"),
        (PROBABILITY, "probabilities"),
        (QUANTILES, "quantiles"),
    ):
        if key not in found:
            continue
        var, dim = found[key]
        coord = np.asarray(ds[dim].values)
        if key == MEMBERS:
            text = f"{coord.size} (realization {coord.min()} .. {coord.max()})"
            how = ds[var].attrs.get(MEMBERS_KIND)
            text += f", {how}" if how else ""
        elif key == PROBABILITY:
            units = ds[dim].attrs.get("units", "")
            values = ", ".join(f"{v:g}" for v in coord)
            text = f"P(value >= {values} {units})".replace(" )", ")")
        else:
            text = "levels " + ", ".join(f"{v:g}" for v in coord)
        lines.append((label, f"{text}; variable {var}"))
    return lines
