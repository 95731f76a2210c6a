"""Training-loader throughput: nowcast's SequenceDataset vs xbatcher's BatchGenerator.

Both loaders produce batches of 16 windows of 18 frames (t_in 6 + t_out 12) x 128 x 128
pixels from the shared 5-minute radar events (KNMI, MCH x2, FMI x2, RMI). Each loader runs
in its own subprocess, so the peak RSS (``ru_maxrss``) is that loader's own. Throughput is
batches per second over a fixed time budget from a cold start (first batch included);
setup (opening the archives and, for nowcast, fitting the normaliser: one pass over the
data) is timed separately. "warm" is nowcast's rate after its first epoch, when the frame
cache holds the set (~0.7 GB normalised; default cache 1024 MiB).

Each loader runs over one of two readers of the same files, and its ratio is against
xbatcher on the same reader:

* ``archive``: ``nowcast.archive.open_archive(path, chunks="auto")`` (Dask, several frames per
  chunk, as ``build_datasets`` opens events; also xbatcher's faster choice here).
* ``xarray``: ``xr.open_dataset`` (kept-open file handles; Dask chunks of one frame for
  nowcast, no Dask for xbatcher: xbatcher's most favourable setting).

Loaders:

* ``nowcast[-xarray]``: ``build_datasets`` (random 128 x 128 crops, shuffled windows,
  encoded ``(x, y, mask)`` batches, frame cache ``sampler.cache_mb`` = 1024 MiB).
* ``nowcast-nocache``: xarray reader, ``cache_mb=0`` (each sample reads its 18 frames: the
  regime of an archive much larger than the cache), normaliser not fitted (no setup pass).
* ``xbatcher[-xarray]``: ``BatchGenerator(da, input_dims={time: 18, y: 128, x: 128},
  input_overlap={time: 17})``; 16 consecutive windows of one event (``.values`` each,
  stacked) make a batch, events in turn.

Run from the repository root::

    python benchmarks/bench_loader.py            # all loaders, about 4-5 minutes
    python benchmarks/bench_loader.py --seconds 20 --loaders nowcast-xarray xbatcher-xarray
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "radar"
EVENTS = [
    "knmi-2010-08-26.nc",
    "mch-2015-05-15.nc",
    "mch-2016-07-11.nc",
    "fmi-2016-09-28.nc",
    "fmi-2017-05-09.nc",
    "rmi-2021-07-04.nc",
]
VARIABLE = "precipitation_rate"
T_IN, T_OUT, PATCH, BATCH = 6, 12, 128, 16
#: loader -> (library, reader, options)
LOADERS = {
    "nowcast": ("nowcast", "archive", {}),
    "nowcast-xarray": ("nowcast", "xarray", {}),
    "nowcast-nocache": ("nowcast", "xarray", {"cache_mb": 0, "fit": False}),
    "xbatcher": ("xbatcher", "archive", {}),
    "xbatcher-xarray": ("xbatcher", "xarray", {}),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _open(reader: str, *, dask: bool):
    import xarray as xr

    if reader == "archive":
        from nowcast.archive.reader import open_archive

        return [
            open_archive(DATA / e, chunks="auto") for e in EVENTS
        ]  # as build_datasets opens them
    return [
        xr.open_dataset(DATA / e, chunks={"time": 1} if dask else None)[VARIABLE] for e in EVENTS
    ]


def _measure(next_batch, seconds: float) -> tuple[int, float]:
    """Call ``next_batch`` until ``seconds`` have passed; (batches, elapsed seconds)."""
    start = time.perf_counter()
    n = 0
    while True:
        next_batch()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n, elapsed


def run_nowcast(seconds: float, reader: str, cache_mb: int | None = None, fit: bool = True) -> dict:
    from nowcast.config import Config, DataConfig, PreprocessConfig, SamplerConfig, SplitConfig
    from nowcast.trainset.build import build_datasets
    from nowcast.trainset.preprocess import Preprocessor

    cfg = Config(
        data=DataConfig(events=tuple(str(DATA / e) for e in EVENTS)),
        sampler=SamplerConfig(
            t_in=T_IN,
            t_out=T_OUT,
            patch_size=PATCH,
            batch_size=BATCH,
            split=SplitConfig(validation=0.0, test=0.0),
        ),
    )
    t0 = time.perf_counter()
    pre = None if fit else Preprocessor.from_config(PreprocessConfig())
    ds = build_datasets(
        cfg, archives=_open(reader, dask=True), preprocessor=pre, cache_mb=cache_mb
    ).train
    setup = time.perf_counter() - t0
    state = {"i": 0, "n": 0, "cold": None}

    def next_batch():
        if state["i"] == len(ds):
            ds.on_epoch_end()
            state["i"] = 0
            if state["cold"] is None:  # first (cold) epoch done: the warm count starts here
                state["cold"] = (time.perf_counter(), state["n"])
        x, y, mask = ds[state["i"]]
        assert y.shape[1:] == mask.shape[1:] == (T_OUT, PATCH, PATCH, 1)
        state["i"] += 1
        state["n"] += 1

    n, elapsed = _measure(next_batch, seconds)
    warm = None
    if state["cold"] is not None:
        t_cold, n_cold = state["cold"]
        warm_s = time.perf_counter() - t_cold
        warm = (n - n_cold) / warm_s if warm_s > 1 and n > n_cold else None
    cache = ds.cache
    hit_rate = cache.hits / max(1, cache.hits + cache.misses)
    return {
        "setup_s": setup,
        "batches": n,
        "seconds": elapsed,
        "warm_batches_per_s": warm,
        "windows_per_epoch": len(ds.sampler.windows),
        "cache": f"{cache.max_bytes / 2**20:.0f} MiB, hit rate {hit_rate:.1%}",
    }


def xbatcher_batches(arrays, encode=None):
    """``(next_batch, windows)``: ``next_batch()`` stacks the next ``BATCH`` xbatcher windows
    (``T_IN + T_OUT`` frames of ``PATCH x PATCH``, stride one frame) of each array in turn
    and returns their number; ``windows``: the windows of one pass over all arrays.
    ``encode``: called on each batch's list of windows (e.g. to make training batches)."""
    import numpy as np
    import xbatcher

    gens = [
        xbatcher.BatchGenerator(
            da,
            input_dims={"time": T_IN + T_OUT, "y": PATCH, "x": PATCH},
            input_overlap={"time": T_IN + T_OUT - 1},
        )
        for da in arrays
    ]
    iters = [iter(g) for g in gens]
    state = {"k": 0}

    def window(e):
        try:
            return next(iters[e])
        except StopIteration:
            iters[e] = iter(gens[e])
            return next(iters[e])

    def next_batch() -> int:
        e = state["k"] % len(gens)
        state["k"] += 1
        windows = [np.asarray(window(e).values) for _ in range(BATCH)]
        if encode is not None:
            x, y, mask = encode(windows)
            assert x.shape == (BATCH, T_IN, PATCH, PATCH, 1) and mask.shape == y.shape
            return BATCH
        batch = np.stack(windows)
        assert batch.shape == (BATCH, T_IN + T_OUT, PATCH, PATCH)
        return BATCH

    return next_batch, sum(len(g) for g in gens)


def run_xbatcher(seconds: float, reader: str) -> dict:
    t0 = time.perf_counter()
    arrays = _open(reader, dask=False)
    next_batch, windows = xbatcher_batches(arrays)
    setup = time.perf_counter() - t0

    n, elapsed = _measure(next_batch, seconds)
    return {
        "setup_s": setup,
        "batches": n,
        "seconds": elapsed,
        "warm_batches_per_s": None,
        "windows_per_epoch": windows,
        "cache": "-",
    }


def worker(loader: str, seconds: float) -> None:
    library, reader, options = LOADERS[loader]
    out = (
        run_nowcast(seconds, reader, **options)
        if library == "nowcast"
        else run_xbatcher(seconds, reader)
    )
    out.update(
        loader=loader,
        reader=reader,
        batches_per_s=out["batches"] / out["seconds"],
        peak_rss_mb=_peak_rss_mb(),
    )
    print("RESULT " + json.dumps(out), flush=True)


def table(results: list[dict]) -> str:
    base = {r["reader"]: r["batches_per_s"] for r in results if r["loader"].startswith("xbatcher")}

    def ratio(value, reader):
        return f"{value / base[reader]:.1f}x" if value and reader in base else "-"

    lines = [
        "| loader | reader | setup s | batches | batches/s | ratio | warm batches/s | warm ratio "
        "| peak RSS MB | windows/epoch | frame cache |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        warm = r["warm_batches_per_s"]
        lines.append(
            f"| {r['loader']} | {r['reader']} | {r['setup_s']:.1f} | {r['batches']} | "
            f"{r['batches_per_s']:.2f} | "
            f"{ratio(r['batches_per_s'], r['reader'])} | {f'{warm:.2f}' if warm else '-'} | "
            f"{ratio(warm, r['reader'])} | "
            f"{r['peak_rss_mb']:.0f} | {r['windows_per_epoch']} | {r['cache']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="time budget per loader (default 30)"
    )
    parser.add_argument(
        "--nocache-seconds",
        type=float,
        default=20.0,
        help="budget for nowcast-nocache (default 20)",
    )
    parser.add_argument("--loaders", nargs="+", choices=list(LOADERS), default=list(LOADERS))
    parser.add_argument("--worker", choices=list(LOADERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.seconds)
        return
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    results = []
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "torch"))
    for loader in args.loaders:
        seconds = args.nocache_seconds if loader == "nowcast-nocache" else args.seconds
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", loader, "--seconds", str(seconds)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"{loader} failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(lines[-1][len("RESULT ") :]))
        print(
            f"{loader}: {results[-1]['batches_per_s']:.2f} batches/s", file=sys.stderr, flush=True
        )

    print(
        f"\nBatches of {BATCH} windows ({T_IN}+{T_OUT} frames, {PATCH}x{PATCH}) from "
        f"{', '.join(e[:-3] for e in EVENTS)}; {os.cpu_count()} CPUs; ratio = batches/s / "
        "xbatcher's "
        "on the same reader; batches/s from a cold start over the time budget, warm = after "
        "nowcast's first epoch.\n"
    )
    print(table(results))
    cmd = " ".join(
        ["python", "benchmarks/bench_loader.py", *(argv if argv is not None else sys.argv[1:])]
    )
    print(f"\nCommand: `{cmd}`")


if __name__ == "__main__":
    main()
