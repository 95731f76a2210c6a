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

import os
import sys
import time

from harness import ROOT, WorkerFailed, command, measure, parser, run_fresh, table
from loader_windows import BATCH, DATA, EVENTS, PATCH, T_IN, T_OUT, VARIABLE, xbatcher_batches

#: loader -> (library, reader, options)
LOADERS = {
    "nowcast": ("nowcast", "archive", {}),
    "nowcast-xarray": ("nowcast", "xarray", {}),
    "nowcast-nocache": ("nowcast", "xarray", {"cache_mb": 0, "fit": False}),
    "xbatcher": ("xbatcher", "archive", {}),
    "xbatcher-xarray": ("xbatcher", "xarray", {}),
}


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

    n, elapsed = measure(next_batch, seconds)
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


def run_xbatcher(seconds: float, reader: str) -> dict:
    t0 = time.perf_counter()
    arrays = _open(reader, dask=False)
    next_batch, windows = xbatcher_batches(arrays)
    setup = time.perf_counter() - t0

    n, elapsed = measure(lambda: next_batch() and 1, seconds)  # batches
    return {
        "setup_s": setup,
        "batches": n,
        "seconds": elapsed,
        "warm_batches_per_s": None,
        "windows_per_epoch": windows,
        "cache": "-",
    }


def worker(loader: str, seconds: float) -> dict:
    """One loader's measurement (run in its own process by :func:`harness.run_fresh`)."""
    library, reader, options = LOADERS[loader]
    out = (
        run_nowcast(seconds, reader, **options)
        if library == "nowcast"
        else run_xbatcher(seconds, reader)
    )
    out.update(loader=loader, reader=reader, batches_per_s=out["batches"] / out["seconds"])
    return out


def results_table(results: list[dict]) -> str:
    base = {r["reader"]: r["batches_per_s"] for r in results if r["loader"].startswith("xbatcher")}

    def ratio(value, reader):
        return f"{value / base[reader]:.1f}x" if value and reader in base else "-"

    header = [
        "loader", "reader", "setup s", "batches", "batches/s", "ratio", "warm batches/s",
        "warm ratio", "peak RSS MB", "windows/epoch", "frame cache",
    ]  # fmt: skip
    rows = []
    for r in results:
        warm = r["warm_batches_per_s"]
        rows.append(
            [
                r["loader"],
                r["reader"],
                f"{r['setup_s']:.1f}",
                r["batches"],
                f"{r['batches_per_s']:.2f}",
                ratio(r["batches_per_s"], r["reader"]),
                f"{warm:.2f}" if warm else "-",
                ratio(warm, r["reader"]),
                f"{r['peak_rss_mb']:.0f}",
                r["windows_per_epoch"],
                r["cache"],
            ]
        )
    return table(header, rows, "llrrrrrrrrl")


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument(
        "--seconds", type=float, default=30.0, help="time budget per loader (default 30)"
    )
    ap.add_argument(
        "--nocache-seconds",
        type=float,
        default=20.0,
        help="budget for nowcast-nocache (default 20)",
    )
    ap.add_argument("--loaders", nargs="+", choices=list(LOADERS), default=list(LOADERS))
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    results = []
    env = {"KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    for loader in args.loaders:
        seconds = args.nocache_seconds if loader == "nowcast-nocache" else args.seconds
        try:
            results.append(run_fresh(worker, loader, seconds, env=env, cwd=ROOT))
        except WorkerFailed as exc:
            sys.exit(f"{loader} failed:\n{exc.stderr[-3000:]}")
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
    print(results_table(results))
    print(f"\nCommand: `{command('bench_loader.py', argv)}`")


if __name__ == "__main__":
    main()
