"""What the benchmark scripts share: a function run in a fresh process (its result and peak
RSS), timing loops, medians with their range, Markdown tables and the common command-line
bits. Nothing here measures anything by itself.

A script runs one measurement in a fresh Python process, so that the peak RSS
(``ru_maxrss``) and the imports are that measurement's own::

    from harness import run_fresh

    result = run_fresh(measure, "mch", 3)  # measure("mch", 3) in a child process

``measure`` is a module-level function of the script (or ``"bench_x.py:name"`` for one of
another script, which is then not imported here) returning a JSON-serialisable dict; the
child adds ``peak_rss_mb`` (its own) and ``children_rss_mb`` (its largest child process, for
loaders with worker processes). A failure or timeout raises :class:`WorkerFailed` with the
child's output.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The real data beside the checkout (read-only).
SHARED = ROOT.parent / "shared" / "data"

#: The radar grids the speed benchmarks use: name -> (archive, issue time or None for the
#: middle of the event). BOM 512 x 512 (10 min), MeteoSwiss 640 x 710, FMI 1226 x 760
#: (5 min), OPERA 2200 x 1900 (15 min, raw: clutter included).
RADAR_GRIDS = {
    "bom": (SHARED / "radar" / "bom-66-2020-10-31", "2020-10-31T06:00"),
    "mch": (SHARED / "radar" / "mch-2016-07-11.nc", "2016-07-11T21:30"),
    "fmi": (SHARED / "radar" / "fmi-2016-09-28.nc", None),
    "opera": (SHARED / "radar" / "opera-2018-08-24.nc", None),
}

_MARK = "RESULT "

__all__ = [
    "HERE",
    "ROOT",
    "SHARED",
    "RADAR_GRIDS",
    "WorkerFailed",
    "run_fresh",
    "peak_rss_mb",
    "measure",
    "time_calls",
    "median_range",
    "range_text",
    "table",
    "parser",
    "command",
    "machine",
]


# --------------------------------------------------------------------------- fresh process


class WorkerFailed(RuntimeError):
    """A measurement's process failed or timed out: ``stderr`` and ``stdout`` are its output."""

    def __init__(self, message: str, stderr: str = "", stdout: str = ""):
        super().__init__(message)
        self.stderr, self.stdout = stderr, stdout

    def last_line(self) -> str:
        """The last line the process wrote (stderr first), e.g. the exception."""
        lines = (self.stderr or self.stdout).strip().splitlines()
        return lines[-1] if lines else str(self)


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory in MB of this process (or of its largest child process)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0  # KiB on Linux


def _target(func: Callable | str) -> tuple[str, str]:
    """``(script file, function name)`` of a function or of ``"script.py:name"``."""
    if isinstance(func, str):
        file, name = func.split(":")
        path = Path(file) if Path(file).is_absolute() else HERE / file
        return str(path), name
    return str(Path(inspect.getfile(func)).resolve()), func.__name__


def run_fresh(
    func: Callable | str,
    *args,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
) -> dict:
    """``func(*args)`` in a fresh Python process; its result (a dict) with ``peak_rss_mb``
    and ``children_rss_mb`` added. ``args`` travel as JSON; ``env`` is added to this
    process's environment."""
    file, name = _target(func)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--call", file, name, json.dumps(args)]
    full_env = {**os.environ, **(env or {})}
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkerFailed(f"timed out after {timeout:g} s") from exc
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(_MARK)]
    if done.returncode or not lines:
        raise WorkerFailed(
            f"{name}{tuple(args)} exited with {done.returncode}", done.stderr, done.stdout
        )
    return json.loads(lines[-1][len(_MARK) :])


def _call(file: str, name: str, args_json: str) -> None:
    """The child's side of :func:`run_fresh`: import the script, call, print the result."""
    path = Path(file)
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    result = dict(getattr(module, name)(*json.loads(args_json)))
    result.update(peak_rss_mb=peak_rss_mb(), children_rss_mb=peak_rss_mb(children=True) or None)
    print(_MARK + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- timing


def measure(step: Callable[[], int | None], seconds: float, *, warmup: int = 0):
    """Call ``step`` until ``seconds`` have passed, after ``warmup`` untimed calls.

    Returns ``(count, elapsed seconds)``; ``count`` adds what each call returns (1 for
    ``None``), e.g. the samples of a batch.
    """
    for _ in range(warmup):
        step()
    start, n = time.perf_counter(), 0
    while True:
        value = step()
        n += 1 if value is None else value
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n, elapsed


def time_calls(func: Callable[[], object], repeat: int, *, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeat`` calls of ``func``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return times


def median_range(values: Sequence[float]) -> tuple[float, float, float]:
    """``(median, lowest, highest)``."""
    return statistics.median(values), min(values), max(values)


def range_text(values: Sequence[float], fmt: str) -> str:
    """`` (lowest-highest)`` in ``fmt`` for two values or more, else nothing."""
    if len(values) < 2:
        return ""
    return f" ({fmt.format(min(values))}-{fmt.format(max(values))})"


# --------------------------------------------------------------------------- output


def table(header: Sequence[str], rows: Iterable[Sequence], align: str) -> str:
    """A Markdown table; ``align``: one letter per column, ``l`` left, ``r`` right. A row
    shorter than the header is padded with empty cells."""
    if len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} columns, header {len(header)}")
    rule = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule[a] for a in align) + " |",
    ]
    for row in rows:
        cells = [str(c) for c in row] + [""] * (len(header) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parser(doc: str, *, full: bool = False) -> argparse.ArgumentParser:
    """The script's parser: its docstring's first line as the description (``full``: the
    whole docstring, as written)."""
    if full:
        return argparse.ArgumentParser(
            description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    return argparse.ArgumentParser(description=doc.splitlines()[0])


def command(script: str, argv: Sequence[str] | None = None) -> str:
    """``python benchmarks/<script> <args>``: the command line that made a table."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", f"benchmarks/{Path(script).name}", *args])


def machine() -> str:
    """Platform, processor, CPUs, Python and the load average now."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"CPUs, python {platform.python_version()}, load average at start {load}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--call":
        _call(*sys.argv[2:])
    else:
        sys.exit("harness.py is a module of the benchmark scripts (see its docstring)")
