"""Helpers of the CLI and data-safety tests: the CLI run in-process, md5s and listings of
folders, one-line CLI errors."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from click.testing import CliRunner

from nowcast.cli import main

ISSUE = "2016-07-11T21:30"
ROOT = Path(__file__).resolve().parents[1]


def md5s(folder: Path) -> dict[str, str]:
    """md5 of every file under ``folder`` (relative names)."""
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


#: A temporary name: ``.{name}.`` + mkdtemp's 8 characters, or an older ``*.tmp``.
_TEMPORARY = re.compile(r"^\..+\.([a-z0-9_]{8}|[a-z0-9_]*\.?tmp)$")


def leftovers(folder: Path) -> list[str]:
    """Temporary files and folders anywhere under ``folder`` (Zarr's ``.zattrs`` are not)."""
    return [name for name in listing(folder) if _TEMPORARY.match(Path(name).name)]


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def predict(archive, output, *options):
    """``nowcast predict -i archive -o output`` with ``options``."""
    return cli("predict", "-i", archive, "-o", output, *options)


def one_line_error(res, *needles: str) -> str:
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
