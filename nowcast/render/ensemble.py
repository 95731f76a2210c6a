"""Maps of probabilistic forecasts: probability of exceedance, and postage stamps of members.

A probabilistic forecast file (:mod:`nowcast.probabilistic`) holds beside its deterministic
variable ``{name}_probability`` ``(issue_time, threshold, lead_time, y, x)`` and/or
``{name}_members`` ``(issue_time, realization, lead_time, y, x)``. Per issue time and lead:

* **probability** maps: ``P(value >= threshold)`` for each threshold, on a sequential 0-1
  scale (:func:`~nowcast.render.colours.probability_style`; below 5 % transparent), in the
  data's own projection with the coastlines of the deterministic maps; with ``truth`` an
  "observed >= threshold" panel beside it. Files
  ``{var}_{method}_{issue}_prob-ge{threshold}_lead{minutes:03d}.png``;
* **members** (postage stamps): the first :data:`MAX_STAMPS` members as a grid of small
  maps with the deterministic maps' colour scale and one colour bar (with ``truth`` the
  observed field first). Files ``{var}_{method}_{issue}_members_lead{minutes:03d}.png``.

The animations over leads (:mod:`nowcast.render.ensemble_jobs`) drop the ``_lead...`` part
and end in ``.gif``. :func:`plan_products` checks everything (the products asked, the
thresholds, the grids) before a file is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME, X, Y
from nowcast.distribution import REALIZATION, THRESHOLD
from nowcast.errors import NowcastError
from nowcast.probabilistic import MEMBERS, PROBABILITY
from nowcast.render import colours
from nowcast.render.figure import Panel, draw_figure
from nowcast.render.mapdata import LAND
from nowcast.render.maps import (
    Prepared,
    _footer,
    _format_lead,
    _legend,
    _observed,
    _safe,
    _styles,
    _to_metres_ascending,
    map_layers,
    title_name,
)
from nowcast.render.options import RenderOptions
from nowcast.render.parallel import MapJob
from nowcast.render.stamps import draw_stamps

__all__ = [
    "DETERMINISTIC",
    "MAX_STAMPS",
    "PRODUCTS",
    "ProductJob",
    "member_frames",
    "orient_part",
    "plan_products",
    "probability_frames",
    "product_name",
]

DETERMINISTIC = "deterministic"
#: What ``nowcast render`` draws as maps: the main variable, probabilities, members.
PRODUCTS = (DETERMINISTIC, PROBABILITY, MEMBERS)
#: The most members a postage-stamp panel shows (the first ones).
MAX_STAMPS = 20
_DIMS = {PROBABILITY: THRESHOLD, MEMBERS: REALIZATION}


@dataclass(frozen=True)
class ProductJob:
    """One forecast's probabilistic product, checked and ready to draw.

    ``job``: the forecast's :class:`~nowcast.render.parallel.MapJob` (grid, leads, truth,
    map layers); ``part``: the product ``(issue_time, D, lead_time, y, x)`` on its grid;
    ``keys``: the thresholds to draw (the file's values), or for members the positions
    along ``realization`` drawn (the first :data:`MAX_STAMPS`).
    """

    job: MapJob
    product: str
    part: xr.DataArray
    keys: tuple


def product_name(prep: Prepared, issue, tag: str, lead=None, suffix: str = ".png") -> str:
    """``{var}_{method}_{issue:%Y%m%dT%H%M}_{tag}[_lead{minutes:03d}]{suffix}``."""
    base = f"{_safe(prep.name)}_{_safe(prep.method)}_{pd.Timestamp(issue):%Y%m%dT%H%M}_{tag}"
    if lead is not None:
        base += f"_lead{int(pd.Timedelta(lead).total_seconds() // 60):03d}"
    return base + suffix


def threshold_tag(threshold: float) -> str:
    """The file-name tag of a probability map: ``prob-ge5``, ``prob-ge0.5``."""
    return _safe(f"prob-ge{float(threshold):g}")


def orient_part(part: xr.DataArray, prep: Prepared, product: str, source: str) -> xr.DataArray:
    """``part`` as ``(issue_time, D, lead_time, y, x)`` in metres, y/x ascending like ``prep``;
    a :class:`NowcastError` when it is not on the forecast's issue times, leads and grid."""
    dim = _DIMS[product]
    want = {ISSUE_TIME, dim, LEAD_TIME, Y, X}
    if not isinstance(part, xr.DataArray) or set(part.dims) != want:
        raise NowcastError(f"{source}: {product} must have dims {sorted(want)}")
    out = _to_metres_ascending(part.transpose(ISSUE_TIME, dim, LEAD_TIME, Y, X))
    for coord in (ISSUE_TIME, LEAD_TIME, X, Y):
        mine, theirs = out[coord].values, prep.da[coord].values
        same = mine.shape == theirs.shape and (
            np.array_equal(mine, theirs)
            if coord in (ISSUE_TIME, LEAD_TIME)
            else np.allclose(mine, theirs, atol=1e-3 * abs(float(theirs[1] - theirs[0])))
        )
        if not same:
            raise NowcastError(f"{source}: its {product} are not on the forecast's {coord}")
    return out.assign_coords({X: prep.da[X], Y: prep.da[Y]})


def _thresholds(part: xr.DataArray, wanted, source: str, units: str) -> tuple[float, ...]:
    have = np.asarray(part[THRESHOLD].values, dtype=float)
    if wanted is None:
        return tuple(float(t) for t in have)
    out = []
    for t in wanted:
        hit = np.flatnonzero(np.isclose(have, float(t), rtol=1e-6, atol=1e-9))
        if not hit.size:
            held = ", ".join(f"{v:g}" for v in have)
            raise NowcastError(
                f"{source}: no probability at threshold {float(t):g} {units}; it holds "
                f"{held} (--thresholds)"
            )
        out.append(float(have[hit[0]]))
    return tuple(dict.fromkeys(out))


def plan_products(
    jobs: Sequence[MapJob],
    parts: Sequence[Mapping[str, xr.DataArray] | None],
    *,
    products: Sequence[str] | None = None,
    thresholds: Sequence[float] | None = None,
) -> list[ProductJob]:
    """The probabilistic maps of ``jobs`` (``parts[i]``: the products of ``jobs[i]``'s file,
    as :func:`nowcast.probabilistic.read_probabilistic` gives them, or ``None``).

    ``products``: of :data:`PRODUCTS` (``None``: every product a file holds; deterministic
    maps are :func:`~nowcast.render.parallel.render_maps`' work); one that no file holds is
    an error. ``thresholds``: the probability maps' thresholds (``None``: all); every file
    with probabilities must hold each. Nothing is read but coordinates.
    """
    asked = None if products is None else tuple(dict.fromkeys(products))
    for p in asked or ():
        if p not in PRODUCTS:
            raise NowcastError(f"unknown product {p!r}: choose from {', '.join(PRODUCTS)}")
    if thresholds is not None and asked is not None and PROBABILITY not in asked:
        raise NowcastError("--thresholds chooses probability maps, but they are not asked")
    out: list[ProductJob] = []
    for job, held in zip(jobs, parts):
        held = held or {}
        source = job.source or str(job.prep.name)
        for product in (PROBABILITY, MEMBERS):
            if product not in held or (asked is not None and product not in asked):
                continue
            part = orient_part(held[product], job.prep, product, source)
            if product == PROBABILITY:
                keys = _thresholds(part, thresholds, source, job.prep.da.attrs.get("units", ""))
            else:
                keys = tuple(range(min(part.sizes[REALIZATION], MAX_STAMPS)))
            out.append(ProductJob(job, product, part, keys))
    for product in (PROBABILITY, MEMBERS):
        wanted = (asked is not None and product in asked) or (
            product == PROBABILITY and thresholds is not None
        )
        if wanted and not any(p.product == product for p in out):
            variable = f"{{name}}_{product}"
            raise NowcastError(
                f"no forecast file holds {product} (a {variable} variable): write them with "
                f"nowcast predict --{'members' if product == MEMBERS else 'probabilities'}"
            )
    return out


def _subtitle(issue, lead, valid) -> str:
    return (
        f"issue {pd.Timestamp(issue):%Y-%m-%d %H:%M} UTC   lead {_format_lead(lead)}   valid "
        f"{pd.Timestamp(valid):%Y-%m-%d %H:%M} UTC"
    )


def _quantity(prep: Prepared) -> str:
    return "rain rate" if prep.kind == "precipitation" else prep.long_name


def _probability_key(found, panels, observed: bool) -> list[tuple]:
    items = []
    if any(p.data is not None and np.isnan(p.data).any() for p in panels):
        items.append((colours.NO_DATA, "no data (outside coverage)"))
    low = "P < 5 %, not observed" if observed else "P < 5 %"
    if found.land is not None:
        return items + [(LAND, f"{low}, land"), ("white", f"{low}, sea or lake")]
    return items + [("white", low)]


def probability_frames(
    prep: Prepared,
    part: xr.DataArray,
    issue_index: int,
    threshold: float,
    lead_indices: Sequence[int],
    *,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
    keep_figure: bool = False,
) -> Iterator[tuple]:
    """``(file name, PNG bytes, Figure or None)`` per lead: P(value >= ``threshold``) at one
    issue time (``part`` oriented by :func:`orient_part`, ``truth`` aligned)."""
    options = options or RenderOptions()
    found = map_layers(prep, options.map_data, download=options.download_map_data)
    convert, units = colours.to_display(prep.da.attrs)
    one = prep.da.isel({ISSUE_TIME: issue_index})
    issue, leads, valid = one[ISSUE_TIME].values, one[LEAD_TIME].values, one[VALID_TIME].values
    probs = part.isel({ISSUE_TIME: issue_index}).sel({THRESHOLD: threshold})
    shown = f"{float(convert(np.float32(threshold))):g} {units}".strip()
    what = f"{_quantity(prep)} ≥ {shown}"
    style = colours.probability_style(f"P({what})")
    event = colours.event_style(f"observed {what}")
    title = f"Probability of {what}: nowcast ({title_name(prep)})"
    footer = _footer(prep, found, f"nowcast {title_name(prep)}")
    observed = _observed(truth, valid[list(lead_indices)]) if truth is not None else None
    for k, j in enumerate(lead_indices):
        p = np.asarray(probs.isel({LEAD_TIME: j}).values, dtype=np.float32)
        panels = [Panel(p, style, f"Forecast probability ({_format_lead(leads[j])})")]
        if observed is not None:
            o = observed[k]
            yes = None if o is None else np.where(np.isnan(o), np.nan, o >= threshold)
            note = "" if o is not None else "no observation"
            panels.insert(0, Panel(yes, event, f"Observed {what}", note))
        out = draw_figure(panels, crs=prep.crs, extent=prep.extent, title=title,
                          subtitle=_subtitle(issue, leads[j], valid[j]), footer=footer,
                          legend=_probability_key(found, panels, truth is not None), layers=found,
                          options=options, return_axes=keep_figure)  # fmt: skip
        png, fig = out if keep_figure else (out, None)
        yield product_name(prep, issue, threshold_tag(threshold), leads[j]), png, fig


def member_frames(
    prep: Prepared,
    part: xr.DataArray,
    issue_index: int,
    members: Sequence[int],
    lead_indices: Sequence[int],
    *,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
    keep_figure: bool = False,
) -> Iterator[tuple]:
    """``(file name, PNG bytes, Figure or None)`` per lead: postage stamps of the members at
    positions ``members`` (with ``truth``, the observed field first) at one issue time."""
    options = options or RenderOptions()
    found = map_layers(prep, options.map_data, download=options.download_map_data)
    convert, _ = colours.to_display(prep.da.attrs)
    one = prep.da.isel({ISSUE_TIME: issue_index})
    issue, leads, valid = one[ISSUE_TIME].values, one[LEAD_TIME].values, one[VALID_TIME].values
    chosen = part.isel({ISSUE_TIME: issue_index, REALIZATION: list(members)})
    # one colour scale over every lead of the issue time (rain: fixed classes, no data read)
    need_all = prep.kind != "precipitation"
    idx = list(range(one.sizes[LEAD_TIME])) if need_all else list(lead_indices)
    obs = _observed(truth, valid[idx]) if truth is not None else [None] * len(idx)
    obs = [None if o is None else convert(o) for o in obs]
    values = convert(chosen.isel({LEAD_TIME: idx}).values) if need_all else None
    stack = [values.ravel()] if values is not None else [np.zeros(1, np.float32)]
    field, _ = _styles(prep, np.concatenate(stack + [o.ravel() for o in obs if o is not None]), [])
    total = part.sizes[REALIZATION]
    names = chosen[REALIZATION].values
    count = f"{len(members)} members" if len(members) == total else (
        f"members {names[0]}-{names[-1]} of {total}")  # fmt: skip
    title = f"{prep.long_name}: ensemble ({title_name(prep)}), {count}"
    footer = _footer(prep, found, f"nowcast {title_name(prep)}")
    where = {j: k for k, j in enumerate(idx)}
    for j in lead_indices:
        k = where[j]
        frames = values[:, k] if values is not None else convert(
            chosen.isel({LEAD_TIME: j}).values)  # fmt: skip
        panels = [Panel(f, field, f"member {n}") for f, n in zip(frames, names)]
        if truth is not None:
            note = "" if obs[k] is not None else "no observation"
            panels.insert(0, Panel(obs[k], field, "Observed", note))
        out = draw_stamps(panels, style=field, crs=prep.crs, extent=prep.extent, title=title,
                          subtitle=_subtitle(issue, leads[j], valid[j]), footer=footer,
                          legend=_legend(prep, found, panels), layers=found, options=options,
                          return_figure=keep_figure)  # fmt: skip
        png, fig = out if keep_figure else (out, None)
        yield product_name(prep, issue, "members", leads[j]), png, fig
