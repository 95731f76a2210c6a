"""Where a batch writes, and when an issue time counts as done.

Layout under the batch's output folder::

    forecasts/{method}/{method}_{issue:%Y%m%dT%H%M}.nc   one forecast per issue time and method
    maps/{method}/{issue:%Y%m%dT%H%M}/*.png              its maps (when rendering)
    manifests/{issue:%Y%m%dT%H%M}.json                   written LAST, atomically
    report/                                              backfill verification
    batch-summary.json                                   the last run's summary

An issue time is **complete** when its manifest exists, was made with the same settings
(its ``signature``: methods, model, leads, variable, kind, render options), every output
it lists exists, and every forecast it lists reads back with the expected issue time and
number of leads. Everything is written atomically (temporary sibling, then
``os.replace``) and the manifest last, so an interrupted issue time is never complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from nowcast.errors import NowcastError
from nowcast.fileio import remove_temporaries, write_atomic
from nowcast.products import read_forecast

#: Issue-time format in file names.
STAMP = "%Y%m%dT%H%M"


def forecast_path(output: str | Path, method: str, issue: pd.Timestamp) -> Path:
    return Path(output) / "forecasts" / method / f"{method}_{issue:{STAMP}}.nc"


def maps_dir(output: str | Path, method: str, issue: pd.Timestamp) -> Path:
    return Path(output) / "maps" / method / f"{issue:{STAMP}}"


def manifest_path(output: str | Path, issue: pd.Timestamp) -> Path:
    return Path(output) / "manifests" / f"{issue:{STAMP}}.json"


def remove_temporaries_of(output: str | Path, issue: pd.Timestamp, methods) -> list[Path]:
    """Remove the temporary files an interrupted issue time left beside its outputs."""
    paths = [manifest_path(output, issue)]
    for method in methods:
        paths += [forecast_path(output, method, issue), maps_dir(output, method, issue)]
    return [leftover for path in paths for leftover in remove_temporaries(path)]


def write_json(data: Mapping[str, Any], path: str | Path) -> Path:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    return write_atomic(path, json.dumps(data, indent=1, default=str))


def write_manifest(
    output: str | Path,
    issue: pd.Timestamp,
    *,
    signature: Mapping[str, Any],
    forecasts: Mapping[str, Path],
    maps: Mapping[str, list[Path]],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Record a finished issue time (paths stored relative to ``output``)."""
    root = Path(output)
    data = {
        "issue_time": issue.isoformat(),
        "signature": dict(signature),
        "forecasts": {m: os.path.relpath(p, root) for m, p in forecasts.items()},
        "maps": {m: [os.path.relpath(p, root) for p in ps] for m, ps in maps.items()},
        "created": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    data.update(extra or {})
    return write_json(data, manifest_path(root, issue))


def read_manifest(output: str | Path, issue: pd.Timestamp) -> dict[str, Any] | None:
    path = manifest_path(output, issue)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _plain(value: Any) -> Any:
    """JSON round trip, so tuples and lists compare equal."""
    return json.loads(json.dumps(value, default=str))


def is_complete(output: str | Path, issue: pd.Timestamp, signature: Mapping[str, Any]) -> bool:
    """Whether ``issue``'s outputs exist, match ``signature`` and read back (see module doc)."""
    data = read_manifest(output, issue)
    if data is None or data.get("issue_time") != issue.isoformat():
        return False
    if _plain(data.get("signature")) != _plain(dict(signature)):
        return False
    root = Path(output)
    forecasts = data.get("forecasts") or {}
    if set(forecasts) != set(signature["methods"]):
        return False
    for rel_list in (data.get("maps") or {}).values():
        for rel in rel_list:
            p = root / rel
            if not p.is_file() or p.stat().st_size == 0:
                return False
    for rel in forecasts.values():
        try:
            fc = read_forecast(root / rel)
        except (NowcastError, OSError, ValueError, KeyError):
            return False
        try:
            ok = fc.sizes.get("lead_time") == signature["n_leads"] and list(
                pd.DatetimeIndex(fc["issue_time"].values)
            ) == [issue]
        finally:
            fc.close()
        if not ok:
            return False
    return True
