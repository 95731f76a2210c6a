"""CF metadata helpers: which variable is time / y / x, units, grid mappings, provenance.

Everything here works on plain attribute mappings (``{name: value}``) so it can be fed from
``netCDF4`` variables without opening the data through xarray.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyproj

# ------------------------------------------------------------------------- axes

_X_STANDARD = {"projection_x_coordinate", "longitude", "grid_longitude"}
_Y_STANDARD = {"projection_y_coordinate", "latitude", "grid_latitude"}
_T_STANDARD = {"time", "forecast_reference_time"}
_X_NAMES = {"x", "lon", "longitude", "xc", "rlon", "easting"}
_Y_NAMES = {"y", "lat", "latitude", "yc", "rlat", "northing"}
_T_NAMES = {"time", "valid_time", "t"}

#: Attribute keys that describe the packed on-disk encoding, not the decoded values.
ENCODING_ATTRS = frozenset(
    {
        "_FillValue",
        "missing_value",
        "scale_factor",
        "add_offset",
        "valid_min",
        "valid_max",
        "valid_range",
        "least_significant_digit",
        "coordinates",
        "_Unsigned",
        "chunksizes",
        "zlib",
        "complevel",
        "shuffle",
        "fletcher32",
        "contiguous",
        "bounds",
        "stored_direction",
    }
)


def is_time_units(units: Any) -> bool:
    """``True`` for CF time units such as ``"minutes since 2010-08-26"``."""
    return isinstance(units, str) and " since " in units


def axis_of(name: str, attrs: Mapping[str, Any]) -> str | None:
    """``"T"``, ``"Y"``, ``"X"`` or ``None`` for a coordinate variable called ``name``.

    Uses ``standard_name`` first, then ``axis``, then ``units`` (degrees_north/east, time
    units), then common names (``lat``, ``lon``, ``x``, ``y``, ``time``).
    """
    sn = str(attrs.get("standard_name", "")).lower()
    if sn in _X_STANDARD:
        return "X"
    if sn in _Y_STANDARD:
        return "Y"
    if sn in _T_STANDARD:
        return "T"
    axis = str(attrs.get("axis", "")).upper()
    if axis in ("X", "Y", "T"):
        return axis
    units = str(attrs.get("units", "")).lower()
    if units in ("degrees_east", "degree_east", "degrees_e"):
        return "X"
    if units in ("degrees_north", "degree_north", "degrees_n"):
        return "Y"
    if is_time_units(attrs.get("units")):
        return "T"
    lname = name.lower()
    if lname in _X_NAMES:
        return "X"
    if lname in _Y_NAMES:
        return "Y"
    if lname in _T_NAMES:
        return "T"
    return None


def is_lonlat_coordinate(attrs: Mapping[str, Any]) -> bool:
    """``True`` when a coordinate is latitude/longitude in degrees (not the grid mapping's
    :func:`nowcast.geo.is_geographic`)."""
    sn = str(attrs.get("standard_name", "")).lower()
    units = str(attrs.get("units", "")).lower()
    return sn in ("latitude", "longitude") or units.startswith("degree")


# ------------------------------------------------------------------------- units


def _norm_units(units: str) -> str:
    u = units.strip().lower()
    u = u.replace("**", "").replace("^", "")
    u = re.sub(r"\s+", " ", u)
    u = re.sub(r"/\s*(\w+)", r" \1-1", u)  # "mm/h" -> "mm h-1"
    u = u.replace("hour", "h").replace("hr", "h").replace("sec", "s").replace("min-1", "min-1")
    u = u.replace("kg.m-2", "kg m-2").replace("m-2.s-1", "m-2 s-1")
    return re.sub(r"\s+", " ", u).strip()


#: Rate units -> factor to mm h-1.
_RATE = {
    "mm h-1": 1.0,
    "kg m-2 h-1": 1.0,
    "mm s-1": 3600.0,
    "kg m-2 s-1": 3600.0,
    "m s-1": 3.6e6,
    "mm min-1": 60.0,
    "mm d-1": 1 / 24,
    "mm day-1": 1 / 24,
    "kg m-2 d-1": 1 / 24,
}
#: Amount (accumulation) units -> factor to mm.
_AMOUNT = {"mm": 1.0, "kg m-2": 1.0, "m": 1000.0, "kg/m2": 1.0}


def precipitation_units(units: Any, standard_name: Any = None) -> tuple[str, float]:
    """Classify precipitation units: ``("rate", factor to mm h-1)`` or ``("amount", factor to mm)``.

    Raises ``ValueError`` for units that are neither.
    """
    u = _norm_units(str(units or ""))
    if u in _RATE:
        return "rate", _RATE[u]
    if u in _AMOUNT:
        return "amount", _AMOUNT[u]
    sn = str(standard_name or "")
    if not u and "amount" in sn:
        return "amount", 1.0
    raise ValueError(f"units {units!r} are not precipitation rate or amount units")


def rate_standard_name(standard_name: Any) -> str:
    """Standard name for the rate that corresponds to ``standard_name``."""
    sn = str(standard_name or "")
    if "rainfall" in sn:
        return "rainfall_rate"
    return "precipitation_rate" if sn != "rainfall_rate" else sn


# ------------------------------------------------------------------------- grid mapping


def grid_mapping_name_of(attrs: Mapping[str, Any]) -> str | None:
    """The grid-mapping variable named by a data variable's ``grid_mapping`` attr.

    Handles the extended form ``"crs: x y"`` by taking the first name.
    """
    gm = attrs.get("grid_mapping")
    if not gm:
        return None
    return str(gm).split(":")[0].split()[0]


def latlon_grid_mapping() -> dict[str, Any]:
    """CF attrs of a WGS84 ``latitude_longitude`` grid mapping (with ``crs_wkt``)."""
    attrs: dict[str, Any] = {
        "grid_mapping_name": "latitude_longitude",
        "semi_major_axis": 6378137.0,
        "semi_minor_axis": 6356752.314245179,
        "inverse_flattening": 298.257223563,
        "longitude_of_prime_meridian": 0.0,
    }
    try:
        attrs["crs_wkt"] = pyproj.CRS.from_epsg(4326).to_wkt()
    except Exception:  # pragma: no cover - pyproj is a dependency; keep the CF attrs anyway
        pass
    return attrs


def attrs_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Attribute mappings equal, numbers compared with a relative tolerance."""
    if set(a) != set(b):
        return False
    for key in a:
        va, vb = a[key], b[key]
        if isinstance(va, str) or isinstance(vb, str):
            if str(va) != str(vb):
                return False
            continue
        try:
            xa = np.asarray(va, dtype=float)
            xb = np.asarray(vb, dtype=float)
        except (TypeError, ValueError):
            if va != vb:
                return False
            continue
        if xa.shape != xb.shape or not np.allclose(xa, xb, rtol=1e-9, atol=0, equal_nan=True):
            return False
    return True


def plain_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attrs with numpy scalars turned into Python numbers (arrays kept)."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


# ------------------------------------------------------------------------- provenance


#: Owners of the events in the pySTEPS example archive (pySTEPS/pysteps-data), by the
#: event-name prefix its files carry in their title ("... event mch-2016-07-11").
PYSTEPS_DATA_OWNERS = {
    "bom": "Australian Bureau of Meteorology",
    "fmi": "Finnish Meteorological Institute (FMI)",
    "knmi": "Royal Netherlands Meteorological Institute (KNMI)",
    "mch": "MeteoSwiss",
    "opera": "EUMETNET OPERA",
    "rmi": "Royal Meteorological Institute of Belgium (RMI), non-commercial use only",
}
_PYSTEPS_EVENT = re.compile(r"\bevent ([a-z]+)-\d{4}-\d{2}-\d{2}\b")
#: What ERA5 data must credit (its licence), whenever a file names ERA5.
C3S_CREDIT = "Copernicus Climate Change Service (C3S) ERA5"


def attribution(global_attrs: Mapping[str, Any]) -> str:
    """Who the data come from, for map footers and forecast files, from global attributes.

    In order: an ``attribution`` attribute (files nowcast wrote) as it is; else the
    ``institution`` (with the ``licence``), preceded by the Copernicus credit when the
    title or source names ERA5; else, for the pySTEPS example archive, the event's owner
    as that archive documents it; else ``source unknown`` (with the ``source`` it came
    through, when given).
    """

    def text(key):
        value = global_attrs.get(key)
        return "" if value in (None, "") else str(value).strip()

    if text("attribution"):
        return text("attribution")
    title, source = text("title"), text("source")
    licence = text("licence") or text("license")
    parts = []
    if "ERA5" in f"{title} {source}":
        parts.append(C3S_CREDIT)
    if text("institution"):
        parts.append(text("institution"))
    else:
        match = _PYSTEPS_EVENT.search(title)
        owner = PYSTEPS_DATA_OWNERS.get(match.group(1)) if match else None
        if owner and "pysteps" in source.lower():
            parts.append(f"{owner} (via the pySTEPS example archive)")
    if not parts:
        parts.append(f"source unknown (file says: {source})" if source else "source unknown")
    if licence:
        parts.append(f"licence: {licence}")
    return "; ".join(parts)
