"""Tables for a run's page (:mod:`nowcast.render.page`): the report's Markdown (headings,
paragraphs, lists and pipe tables, the subset :mod:`nowcast.verify.report` writes) and CSV
files as HTML, the provenance and the list of files; every text escaped, every link a
relative, percent-encoded path."""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: Rows of a CSV shown on the page (the whole file is linked).
MAX_CSV_ROWS = 300

_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^nan$|^[-+]?inf$")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def inline(text: str) -> str:
    """Escaped ``text`` with Markdown's ``code`` and **bold**."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<b>\1</b>", out)


def _cell(tag: str, text: str) -> str:
    text = text.strip()
    cls = ' class="num"' if tag == "td" and _NUMBER.match(text) else ""
    return f"<{tag}{cls}>{inline(text)}</{tag}>"


def html_table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table (numbers right-aligned) in a horizontally scrolling box."""
    head = "".join(_cell("th", h) for h in header)
    body = "".join("<tr>" + "".join(_cell("td", c) for c in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _split_row(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_html(text: str, *, level: int = 3, fold: int = 0) -> str:
    """The report's Markdown as HTML; ``#`` becomes ``<h{level}>``. With ``fold``, every
    ``fold``-level section (``## ...`` for 2) after the first is a folded ``<details>``."""
    out: list[str] = []
    lines = text.splitlines()
    i, sections, folded = 0, 0, False
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            depth = len(heading.group(1))
            if fold and depth <= fold and folded:
                out.append("</details>")
                folded = False
            if fold and depth == fold:
                sections += 1
                if sections > 1:
                    out.append(
                        f'<details class="fold"><summary>{inline(heading.group(2))}</summary>'
                    )
                    folded = True
                    i += 1
                    continue
            h = min(6, level + depth - 1)
            out.append(f"<h{h}>{inline(heading.group(2))}</h{h}>")
            i += 1
            continue
        if line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            rows = [_split_row(r) for r in block]
            rule = len(rows) > 1 and all(re.fullmatch(r":?-+:?", c) for c in rows[1] if c)
            header, body = (rows[0], rows[2:]) if rule else ([], rows)
            out.append(html_table(header, body) if header else html_table(body[0], body[1:]))
            continue
        if re.match(r"^\s*[-*]\s+", line):
            items = []
            while i < len(lines) and re.match(r"^\s*[-*]\s+", lines[i]):
                items.append(re.sub(r"^\s*[-*]\s+", "", lines[i]))
                i += 1
            out.append("<ul>" + "".join(f"<li>{inline(t)}</li>" for t in items) + "</ul>")
            continue
        para = []
        while (
            i < len(lines) and lines[i].strip() and not re.match(r"^(#|\s*\||\s*[-*]\s)", lines[i])
        ):
            para.append(lines[i].strip())
            i += 1
        out.append(f"<p>{inline(' '.join(para))}</p>")
    if folded:
        out.append("</details>")
    return "\n".join(out)


def csv_html(path: Path, *, max_rows: int = MAX_CSV_ROWS) -> str:
    """A CSV file as an HTML table of its first ``max_rows`` rows (a note says how many
    more); an unreadable file is a line saying so."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            rows, more = [], 0
            for row in reader:
                if len(rows) < max_rows:
                    rows.append(row)
                else:
                    more += 1
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"<p>cannot read {html.escape(path.name)}: {html.escape(str(exc))}</p>"
    note = f'<p class="hint">first {len(rows)} of {len(rows) + more} rows</p>' if more else ""
    return html_table(header, rows) + note


def url(rel: str) -> str:
    """A relative path as a link (percent-encoded)."""
    return quote(rel, safe="/")


def _e(text: Any) -> str:
    return html.escape(str(text))


#: The provenance's rows in this order, then the others as given.
_FIRST = ("command", "config", "inputs", "truth", "model", "methods")
#: What a page's meta holds for the page itself, not as provenance.
_NOT_PROVENANCE = {"title", "variable", "units", "status", "running"}


def provenance_html(meta: Mapping[str, Any]) -> str:
    """The meta's provenance (command line, inputs, ..., versions) as a section."""
    rows = []
    for key, value in sorted(
        meta.items(), key=lambda kv: _FIRST.index(kv[0]) if kv[0] in _FIRST else len(_FIRST)
    ):
        if key in _NOT_PROVENANCE or value is None or value == [] or value == {}:
            continue
        if isinstance(value, Mapping):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = "\n".join(str(v) for v in value)
        rows.append(f"<tr><th>{_e(key)}</th><td>{_e(value).replace(chr(10), '<br>')}</td></tr>")
    table = f'<table class="kv">{"".join(rows)}</table>'
    return f'<section id="provenance"><h2>Provenance</h2>{table}</section>'


def files_html(files: list[tuple[str, int]], more: int = 0) -> str:
    """Every file (relative path, size) as a folded list of links."""
    items = "".join(
        f'<li><a href="{url(rel)}">{_e(rel)}</a> <span class="hint">{_size(n)}</span></li>'
        for rel, n in files
    )
    rest = f'<p class="hint">and {more} more files</p>' if more else ""
    listing = f'<summary>{len(files) + more} files</summary><ul class="files">{items}</ul>{rest}'
    return f'<section id="files"><h2>Files</h2><details>{listing}</details></section>'


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
