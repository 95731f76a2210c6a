"""One page per run: a self-contained ``index.html`` to browse an output folder.

:func:`write_page` scans a folder that ``render``, ``evaluate``, ``demo`` or ``batch``
filled, and writes (atomically) one HTML file with inline CSS and JavaScript (no server,
no network) that shows:

- **maps**: the files named as :mod:`nowcast.render` names them,
  ``{var}_{method}_{issue:%Y%m%dT%H%M}[_{tag}]_lead{minutes:03d}.png`` (``tag``:
  ``prob-ge5`` for a probability map, ``members`` for postage stamps, none for the
  deterministic map: observed | forecast | difference when drawn with the observations),
  stepped through by method, issue time, product and lead with buttons, selects and the
  keyboard, the methods optionally side by side; the GIF of the issue time is linked;
- **scores**: every folder with a report (``scores.md`` as HTML tables, ``scores.csv`` and
  ``diagrams.csv``, its plots);
- **time series at points** (``point_*.png`` and their CSV);
- a batch's status (``batch-summary.json``, ``manifests/``), the run's provenance (the
  ``meta`` the command passes: command line, inputs, model; the versions are added) and
  the list of files.

Every link and image is a relative path to a file in the folder, so the folder can be
moved or copied as a whole.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

import nowcast
from nowcast.fileio import write_atomic
from nowcast.render.page_assets import CSS, SCRIPT
from nowcast.render.page_tables import csv_html, files_html, markdown_html, provenance_html, url

PAGE_NAME = "index.html"

#: A map or a product map: ``{key}_{issue}[_{tag}]_lead{minutes}.png``; ``key`` = var_method.
MAP_NAME = re.compile(
    r"^(?P<key>.+?)_(?P<issue>\d{8}T\d{4})(?:_(?P<tag>prob-ge[^_]+|members))?"
    r"_lead(?P<lead>\d{3,})\.png$"
)
#: An animation of the same: without ``_lead...``.
GIF_NAME = re.compile(
    r"^(?P<key>.+?)_(?P<issue>\d{8}T\d{4})(?:_(?P<tag>prob-ge[^_]+|members))?\.gif$"
)
DETERMINISTIC = "forecast"
#: Files listed at most (the rest counted).
MAX_FILES = 400
_SKIP_DIRS = {"tensorboard", "__pycache__"}
_VERSIONS = ("numpy", "xarray", "dask", "keras", "torch", "jax", "pysteps", "cartopy",
             "matplotlib")  # fmt: skip


@dataclass
class Scan:
    """What a folder holds, by kind (paths relative to the folder, POSIX)."""

    maps: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    gifs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    reports: dict[str, list[str]] = field(default_factory=dict)  # folder -> its files
    points: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    files: list[tuple[str, int]] = field(default_factory=list)
    more_files: int = 0


def versions() -> dict[str, str]:
    """nowcast's, Python's and the main libraries' versions (those installed)."""
    out = {"nowcast": nowcast.__version__, "python": platform.python_version()}
    for name in _VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out["platform"] = platform.platform(terse=True)
    return out


def _walk(folder: Path, depth: int = 5):
    """Files under ``folder`` (relative POSIX paths, sorted), hidden names, the page, Zarr
    stores' chunks and TensorBoard logs left out."""
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not d.endswith(".zarr")
            and len(rel.parts) < depth
        )
        for name in sorted(files):
            if name.startswith(".") or (name == PAGE_NAME and rel == Path(".")):
                continue
            yield (rel / name).as_posix()


def scan(folder: str | os.PathLike) -> Scan:
    """Classify the files under ``folder`` (see the module doc)."""
    folder = Path(folder)
    out = Scan()
    paths = list(_walk(folder))
    report_dirs = {
        str(Path(p).parent) for p in paths if Path(p).name in ("scores.md", "scores.csv")
    }
    for rel in paths:
        path, parent = Path(rel), str(Path(rel).parent)
        name = path.name
        if len(out.files) < MAX_FILES:
            try:
                out.files.append((rel, (folder / rel).stat().st_size))
            except OSError:
                continue
        else:
            out.more_files += 1
        found = MAP_NAME.match(name)
        gif = GIF_NAME.match(name)
        if found:
            tag = found.group("tag") or DETERMINISTIC
            issue = found.group("issue")
            out.maps.append((found.group("key"), issue, tag, int(found.group("lead")), rel))
        elif gif:
            out.gifs[(gif.group("key"), gif.group("issue"), gif.group("tag") or DETERMINISTIC)] = (
                rel
            )
        elif parent in report_dirs:
            out.reports.setdefault(parent, []).append(rel)
        elif name.startswith("point_") and name.endswith(".png"):
            out.points.append(rel)
        elif name.lower().endswith((".png", ".gif", ".jpg", ".jpeg", ".svg")):
            out.images.append(rel)
    return out


def _e(text: Any) -> str:
    return html.escape(str(text))


def _issue_label(stamp: str) -> str:
    t = pd.Timestamp(stamp)
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _lead_label(minutes: int) -> str:
    return f"+{minutes // 60} h" if minutes and minutes % 60 == 0 else f"+{minutes} min"


def _product_label(tag: str, units: str | None) -> str:
    if tag.startswith("prob-ge"):
        return f"P(≥ {tag[len('prob-ge') :]}{' ' + units if units else ''})"
    return {"members": "members (stamps)", DETERMINISTIC: "forecast"}.get(tag, tag)


def _method_labels(keys: list[str], variable: str | None, methods=()) -> dict[str, str]:
    """``key`` (``{var}_{method}``) -> the method: one of ``methods`` it ends with, else the
    key without the variable's prefix (the given one, else the words every key starts with)."""
    named = {k: m for k in keys for m in methods if k.endswith(f"_{m}")}
    if len(named) == len(keys) and len(set(named.values())) == len(keys):
        return named
    if variable:
        prefix = re.sub(r"[^A-Za-z0-9_.+-]+", "-", variable) + "_"
    elif len(keys) > 1:
        words = [k.split("_") for k in keys]
        common = []
        for column in zip(*words):
            if len(set(column)) > 1:
                break
            common.append(column[0])
        prefix = "_".join(common) + "_" if common else ""
    else:
        prefix = ""
    return {
        k: k[len(prefix) :] if prefix and k.startswith(prefix) and k != prefix else k for k in keys
    }


def _viewer(found: Scan, meta: Mapping[str, Any]) -> tuple[str, str]:
    """(the maps section's HTML, its JSON) — empty when there are no maps."""
    if not found.maps:
        return "", ""
    keys = sorted({m[0] for m in found.maps})
    method_labels = _method_labels(keys, meta.get("variable"), meta.get("methods") or ())
    order = meta.get("methods") or []
    keys.sort(
        key=lambda k: (
            order.index(method_labels[k]) if method_labels[k] in order else len(order),
            method_labels[k],
        )
    )
    issues = sorted({m[1] for m in found.maps})
    tags = sorted(
        {m[2] for m in found.maps},
        key=lambda t: (t != DETERMINISTIC, t == "members", _tag_value(t)),
    )
    leads = sorted({m[3] for m in found.maps})
    units = meta.get("units")
    rank = {d: {v: j for j, v in enumerate(vs)} for d, vs in (("m", keys), ("p", tags))}
    # the first map shown: the first method (as the command gave them), product, issue, lead
    maps = sorted(found.maps, key=lambda m: (rank["m"][m[0]], m[1], rank["p"][m[2]], m[3]))
    labels = {
        "m": method_labels,
        "i": {i: _issue_label(i) for i in issues},
        "p": {t: _product_label(t, units) for t in tags},
        "l": {str(v): _lead_label(v) for v in leads},
    }
    data = {
        "items": [[k, i, t, str(v), url(rel)] for k, i, t, v, rel in maps],
        "values": {"m": keys, "i": issues, "p": tags, "l": [str(v) for v in leads]},
        "labels": labels,
        "gifs": {"|".join(k): url(v) for k, v in found.gifs.items()},
    }
    rows = []
    for d, name in (("m", "method"), ("i", "issue"), ("p", "product"), ("l", "lead")):
        opts = "".join(
            f'<option value="{_e(v)}">{_e(labels[d][v])}</option>' for v in data["values"][d]
        )
        rows.append(
            f'<span class="dim"><span class="name">{name}</span>'
            f'<button id="{d}-prev" type="button" title="previous {name}">&#9664;</button>'
            f'<select id="sel-{d}" aria-label="{name}">{opts}</select>'
            f'<button id="{d}-next" type="button" title="next {name}">&#9654;</button></span>'
        )
    n, first = len(maps), maps[0][4]
    body = f"""
<section id="maps"><h2>Maps</h2>
<div class="controls">{"".join(rows)}
<button id="play" type="button">play</button>
<label><input id="side-toggle" type="checkbox"{" disabled" if len(keys) < 2 else ""}>
 methods side by side</label>
<a id="gif-link" href="#" style="display:none">animation (GIF)</a>
</div>
<p class="hint">Keys: &larr; &rarr; lead, &uarr; &darr; issue time, m / M method,
p / P product, space play. {n} maps: {len(keys)} method(s), {len(issues)} issue time(s),
{len(tags)} product(s), {len(leads)} lead(s). With observations the maps show
observed | forecast | forecast &minus; observed.</p>
<div class="viewer"><p class="caption" id="map-caption"></p>
<div id="viewer-single"><img id="map-image" alt="map" src="{url(first)}">
<div id="map-missing" class="missing" style="display:none">no map for this combination</div>
<p class="hint">file: <a id="map-link" href="{url(first)}">{_e(first)}</a></p></div>
<div id="side" class="side" style="display:none"></div></div>
</section>"""
    return body, json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def _tag_value(tag: str) -> float:
    try:
        return float(tag[len("prob-ge") :]) if tag.startswith("prob-ge") else 0.0
    except ValueError:
        return 0.0


def _figure(rel: str, caption: str | None = None) -> str:
    cap = _e(caption if caption is not None else Path(rel).stem)
    img = f'<img src="{url(rel)}" alt="{cap}">'
    return f'<figure><a href="{url(rel)}">{img}</a><figcaption>{cap}</figcaption></figure>'


#: Report plots in this order (by the score in their name), then by threshold and scale.
_PLOTS = ("mae", "rmse", "bias", "corr", "crps", "csi", "pod", "far", "ets", "fss", "bs", "bss",
          "roc_area", "reliability", "roc", "rank_histogram")  # fmt: skip


def _plot_order(rel: str) -> tuple:
    stem = Path(rel).stem
    score = re.sub(r"_t[-0-9.e+]+(_s\d+)?$", "", stem)
    numbers = [float(n) for n in re.findall(r"_[ts]([-0-9.e+]+)", stem[len(score) :])]
    rank = _PLOTS.index(score) if score in _PLOTS else len(_PLOTS)
    return (rank, score, numbers)


def _reports(folder: Path, found: Scan) -> str:
    parts = []
    for where, files in sorted(found.reports.items()):
        title = "Scores" if where == "." else f"Scores ({where}/)"
        parts.append(f'<section id="scores-{_e(where)}"><h2>{_e(title)}</h2>')
        links = [
            f'<a href="{url(f)}">{_e(Path(f).name)}</a>' for f in files if not f.endswith(".png")
        ]
        if links:
            parts.append(f"<p>Files: {', '.join(links)}</p>")
        md = folder / where / "scores.md"
        if md.is_file():
            text = md.read_text(encoding="utf-8", errors="replace")
            text = re.sub(r"\A# [^\n]*\n", "", text)  # its title: the section's
            parts.append(markdown_html(text, level=2, fold=2))  # "## Key scores": h3
        for name in ("scores.csv", "diagrams.csv"):
            rel = (Path(where) / name).as_posix()
            if rel in files:
                parts.append(
                    f"<details><summary>{_e(name)} as a table</summary>"
                    f"{csv_html(folder / rel)}</details>"
                )
        plots = sorted((f for f in files if f.endswith(".png")), key=_plot_order)
        if plots:
            parts.append(
                '<h3>Plots</h3><div class="gallery">'
                + "".join(_figure(p) for p in plots)
                + "</div>"
            )
        parts.append("</section>")
    return "\n".join(parts)


def _points(folder: Path, found: Scan) -> str:
    if not found.points:
        return ""
    parts = ['<section id="points"><h2>Time series at points</h2>']
    for rel in found.points:
        csv_rel = rel[: -len(".png")] + ".csv"
        parts.append(f"<h3>{_e(Path(rel).stem[len('point_') :])}</h3>")
        parts.append(
            f'<div class="viewer"><a href="{url(rel)}">'
            f'<img src="{url(rel)}" alt="{_e(Path(rel).stem)}"></a></div>'
        )
        if (folder / csv_rel).is_file():
            parts.append(
                f"<details><summary>{_e(Path(csv_rel).name)} as a table</summary>"
                f'<p><a href="{url(csv_rel)}">{_e(Path(csv_rel).name)}</a></p>'
                f"{csv_html(folder / csv_rel)}</details>"
            )
    return "\n".join(parts) + "</section>"


def _status(folder: Path, meta: Mapping[str, Any]) -> str:
    """A batch's state: the summary the runner passes (while it runs) or batch-summary.json."""
    status = meta.get("status")
    if status is None:
        try:
            status = json.loads((folder / "batch-summary.json").read_text())
        except (OSError, ValueError):
            return ""
    if not isinstance(status, Mapping):
        return ""
    total = len(status.get("issue_times") or [])
    done, skipped = len(status.get("done") or []), len(status.get("skipped") or [])
    failed = status.get("failed") or {}
    running = (
        " (running: this page is rewritten as issue times complete)" if meta.get("running") else ""
    )
    rows = [
        f"<p>{total} issue times: {done} done, {skipped} already complete, "
        f"{len(failed)} failed{running}.</p>"
    ]
    if failed:
        rows.append(
            "<ul>"
            + "".join(
                f'<li class="failed">{_e(t)}: {_e(m)}</li>' for t, m in sorted(failed.items())
            )
            + "</ul>"
        )
    if (folder / "batch-summary.json").is_file():
        rows.append('<p><a href="batch-summary.json">batch-summary.json</a></p>')
    return '<section id="status"><h2>Batch status</h2>' + "".join(rows) + "</section>"


def build_page(folder: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> str:
    """The page of ``folder`` as HTML text (see the module doc)."""
    folder = Path(folder)
    meta = dict(meta or {})
    meta.setdefault("command", shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))
    meta.setdefault("created", pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC"))
    meta.setdefault("folder", str(folder.resolve()))
    meta.setdefault("versions", versions())
    found = scan(folder)
    viewer, data = _viewer(found, meta)
    sections = [viewer, _reports(folder, found), _points(folder, found)]
    if found.images:
        sections.append(
            '<section id="images"><h2>Other images</h2><div class="gallery">'
            + "".join(_figure(p, p) for p in found.images)
            + "</div></section>"
        )
    sections += [
        _status(folder, meta),
        provenance_html(meta),
        files_html(found.files, found.more_files),
    ]
    sections = [s for s in sections if s]
    toc = " ".join(
        f'<a href="#{_e(m)}">{_e(t)}</a>'
        for m, t in re.findall(r'<section id="([^"]+)"><h2>([^<]+)</h2>', "\n".join(sections))
    )
    title = meta.get("title") or f"nowcast: {folder.resolve().name}"
    refresh = '<meta http-equiv="refresh" content="30">' if meta.get("running") else ""
    script = (
        f'<script id="page-data" type="application/json">{data}</script><script>{SCRIPT}</script>'
        if data
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body><header><h1>{_e(title)}</h1><p><code>{_e(meta.get("command") or "")}</code></p>
<nav class="toc">{toc}</nav></header>
<main>
{chr(10).join(sections)}
</main>{script}</body></html>
"""


def write_page(folder: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``folder/index.html`` atomically (a complete page each time); its path."""
    return write_atomic(Path(folder) / PAGE_NAME, build_page(folder, meta))
