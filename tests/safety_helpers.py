"""Helpers of the CLI and data-safety tests: the CLI run in-process, md5s and listings of
folders, one-line CLI errors."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
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


def terminal_sigint() -> None:
    """Ctrl-C as in a terminal, also when the tests run as a background job (``cmd &``
    starts with SIGINT ignored, and children inherit that): a ``preexec_fn``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def nowcast_cmd(*args) -> list[str]:
    """The command line of a real ``nowcast`` process."""
    return [sys.executable, "-m", "nowcast.cli", *(str(a) for a in args)]


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "KERAS_BACKEND": "torch", **extra}


def interrupt_when(cmd, ready, *, env=None, timeout=240, delay=0.0):
    """Start ``cmd`` in its own process group (a terminal's signal handling) and SIGINT the
    group once ``ready()`` is true (then after ``delay`` s); returns ``(rc, output, sent)``."""
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        preexec_fn=terminal_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or child_env(),
    )
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready():
        assert time.monotonic() < deadline, "the command never got ready"
        time.sleep(0.005)
    if delay and proc.poll() is None:
        time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"the command hung after Ctrl-C:\n{out}") from None
    return proc.returncode, out, sent
