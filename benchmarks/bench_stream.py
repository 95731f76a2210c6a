"""Training data larger than memory: the prepared-store loader vs the archive loader vs xbatcher.

Batches of 16 windows of 18 frames (t_in 6 + t_out 12) x 128 x 128 pixels from the six
shared 5-minute radar events (KNMI, MCH x2, FMI x2, RMI), repeated ``--sizes`` times under
new times (copy k shifted by k x (its length + 1 step), so no window crosses copies) for
bulk: 1x is 0.72 GB of float32 frames, 16x 11.5 GB. Each loader runs in its own subprocess
(peak RSS is its own; for process workers also the largest worker's), with one
torch/OpenMP thread, and is timed over ``--seconds`` after its first batch; setup (planning,
building missing stores) is timed apart. Loaders:

* ``archive-c10``: the loader that reads the archives (``sampler.prepared: false``), its
  frame cache capped at a tenth of the data (each sample reads whole frames once the cache
  is full); ``archive-all``: the cache holds all the data (1x only).
* ``prepared-k1``: the prepared frames (``sampler.prepared: true``), one crop per read;
  ``prepared-kK``: ``K`` crops per read (``sampler.crops_per_read``) and a ``16 K``-sample
  shuffle buffer; ``-t2`` / ``-p2``: the same with 2 Keras ``PyDataset`` workers (threads /
  processes). No in-process cache.
* ``lagrangian-k1`` / ``-k8-t2``: the Lagrangian windows store (stride 3, 1x only; its
  build computes the flows, minutes).
* ``xbatcher-store``: xbatcher's ``BatchGenerator`` (18 x 128 x 128 windows, overlap 17 in
  time) over the same prepared frames opened by xarray (the same reader), its windows
  stacked; ``xbatcher-store-enc``: the same windows made into the training batches the
  prepared loader gives (normalised, NaN filled, mask); ``xbatcher-nc``: over the NetCDF
  files opened by xarray without Dask (xbatcher's best case, data in memory; 1x only).
  Ratios are against ``xbatcher-store`` of the same size.

``--codec`` chooses the prepared stores' compression (``sampler.store_codec``: zstd, Zarr's
default, or lz4); each codec's stores live in their own folder under ``--cache-dir``. With
``--cold`` the prepared stores' files are evicted from the page cache
(``posix_fadvise(DONTNEED)``) before each run, so their reads come from the disk. With
``--train-step`` the training step of the radar model (``configs/radar-5min.yaml``'s
network on 128 x 128 crops, torch, one thread) is timed in the same run
(``bench_train_step.py``'s worker) and the loader's samples/s are compared with it.

Run from the repository root::

    python benchmarks/bench_stream.py --sizes 1 4 16 --seconds 6 --codec lz4 --train-step
    python benchmarks/bench_stream.py --sizes 1 --loaders prepared-k8 xbatcher-store --seconds 10
    python benchmarks/bench_stream.py --sizes 16 --cold --codec lz4 \
        --loaders prepared-k8 prepared-k8-t2 xbatcher-store          # stores read from disk
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from harness import (
    ROOT,
    WorkerFailed,
    command,
    measure,
    median_range,
    parser,
    range_text,
    run_fresh,
    table,
)
from loader_windows import BATCH, DATA, EVENTS, PATCH, T_IN, T_OUT, xbatcher_batches

#: loader -> (kind, options, largest size it runs at or None)
LOADERS = {
    "archive-c10": ("archive", {"cache_fraction": 0.1}, None),
    "archive-all": ("archive", {"cache_fraction": 1.2}, 1),
    "prepared-k1": ("prepared", {}, None),
    "prepared-k4": ("prepared", {"crops": 4, "buffer": 64}, None),
    "prepared-k4-t2": ("prepared", {"crops": 4, "buffer": 64, "workers": 2}, None),
    "prepared-k4-p2": ("prepared", {"crops": 4, "buffer": 64, "workers": 2, "mp": True}, None),
    "prepared-k8": ("prepared", {"crops": 8, "buffer": 128}, None),
    "prepared-k8-t2": ("prepared", {"crops": 8, "buffer": 128, "workers": 2}, None),
    "prepared-k16-t2": ("prepared", {"crops": 16, "buffer": 256, "workers": 2}, None),
    "lagrangian-k1": ("lagrangian", {}, 1),
    "lagrangian-k4": ("lagrangian", {"crops": 4, "buffer": 64}, 1),
    "lagrangian-k8-t2": ("lagrangian", {"crops": 8, "buffer": 128, "workers": 2}, 1),
    "prepared-k8-p2": ("prepared", {"crops": 8, "buffer": 128, "workers": 2, "mp": True}, None),
    "xbatcher-store": ("xbatcher", {"reader": "store"}, None),
    "xbatcher-store-enc": ("xbatcher", {"reader": "store", "encode": True}, None),
    "xbatcher-nc": ("xbatcher", {"reader": "netcdf"}, 1),
}
#: the README table's loaders
DEFAULT = [
    "archive-c10",
    "archive-all",
    "prepared-k1",
    "prepared-k4",
    "prepared-k8",
    "prepared-k8-t2",
    "prepared-k8-p2",
    "prepared-k16-t2",
    "lagrangian-k1",
    "lagrangian-k8-t2",
    "xbatcher-store",
    "xbatcher-store-enc",
    "xbatcher-nc",
]


def _archives(size: int):
    """The shared events, each repeated ``size`` times under new times (lazy)."""
    import xarray as xr

    from nowcast.archive.reader import open_archive
    from nowcast.archive.timeaxis import time_step

    out = []
    for e in EVENTS:
        da = open_archive(DATA / e, chunks="auto")
        span = (da.sizes["time"] + 1) * time_step(da)
        parts = [da.assign_coords(time=da.time.values + k * span) for k in range(size)]
        rep = xr.concat(parts, dim="time") if size > 1 else da
        rep.attrs, rep.encoding = dict(da.attrs), dict(da.encoding)
        out.append(rep)
    return out


def _config(cache: Path, kind: str, opts: dict, codec: str = "zstd"):
    from nowcast.config import Config, DataConfig, ModelConfig, SamplerConfig, SplitConfig

    lagrangian = kind == "lagrangian"
    return Config(
        data=DataConfig(
            events=tuple(str(DATA / e) for e in EVENTS), cache_dir=str(cache), cache_workers=2
        ),
        sampler=SamplerConfig(
            t_in=T_IN,
            t_out=T_OUT,
            stride=3 if lagrangian else 1,
            patch_size=PATCH,
            batch_size=BATCH,
            split=SplitConfig(validation=0.0, test=0.0),
            prepared=kind == "prepared",
            crops_per_read=opts.get("crops", 1),
            shuffle_buffer=opts.get("buffer", 0),
            workers=opts.get("workers", 1),
            multiprocessing=opts.get("mp", False),
            store_codec=codec,
        ),
        model=ModelConfig(residual=True, frame="lagrangian" if lagrangian else "eulerian"),
    )


def _preprocessor():
    """The log transform, normalised (the statistics do not change the speed)."""
    from nowcast.config import PreprocessConfig
    from nowcast.trainset.preprocess import Preprocessor

    pre = Preprocessor.from_config(PreprocessConfig())
    pre.mean, pre.std = -2.0, 2.5
    pre.fill_value = pre._fill()
    return pre


def _evict(stores) -> None:
    """Drop the stores' files from the page cache (reads then come from the disk)."""
    for st in stores:
        if st is None:
            continue
        for f in Path(st.path).rglob("*"):
            if f.is_file():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def _measure(next_batch, seconds: float) -> tuple[float, float]:
    """Batches (in full batches of samples: a pass over the windows may end with a smaller
    one) and seconds; the first batch (buffer filling, worker start-up) is not timed."""
    samples, elapsed = measure(next_batch, seconds, warmup=1)
    return samples / BATCH, elapsed


def run_nowcast(loader: str, size: int, seconds: float, cache: Path, cold: bool, codec: str):
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    from nowcast.trainset.build import build_datasets

    kind, opts, _ = LOADERS[loader]
    cfg = _config(cache, kind, opts, codec)
    archives = _archives(size)
    data_bytes = sum(da.size * 4 for da in archives)
    cache_mb = int(data_bytes * opts.get("cache_fraction", 0) / 2**20)
    pre = _preprocessor()
    t0 = time.perf_counter()
    ds = build_datasets(
        cfg, archives=archives, preprocessor=pre, cache_mb=cache_mb, steps_per_epoch=10**6
    )
    setup = time.perf_counter() - t0
    stores = [st for st in (ds.stores or []) if st is not None]
    if cold:
        _evict(stores)
    adapter = PyDatasetAdapter(ds.train)
    adapter.on_epoch_begin()
    iterator = iter(adapter.get_numpy_iterator())

    def next_batch():
        x, y, mask = next(iterator)
        assert x.shape[1:] == (T_IN, PATCH, PATCH, 1) and mask.shape == y.shape
        return len(x)

    n, elapsed = _measure(next_batch, seconds)
    adapter.on_epoch_end()
    out = {
        "setup_s": setup,
        "batches": n,
        "seconds": elapsed,
        "data_gb": data_bytes / 1e9,
        "store_mb": sum(st.nbytes() for st in stores) / 1e6 if stores else None,
        "cache": f"{cache_mb} MiB" if kind == "archive" else "none",
        "windows": len(ds.train.sampler.windows),
    }
    if kind == "archive":
        c = ds.train.cache
        out["cache"] += f", hits {c.hits / max(1, c.hits + c.misses):.0%}"
    return out


def run_xbatcher(loader: str, size: int, seconds: float, cache: Path, cold: bool, codec: str):
    import xarray as xr

    from nowcast.trainset.build import build_datasets

    t0 = time.perf_counter()
    if LOADERS[loader][1]["reader"] == "netcdf":
        arrays = [xr.open_dataset(DATA / e)["precipitation_rate"] for e in EVENTS]
        store_mb = None
    else:  # the prepared frames the prepared loader reads, opened by xarray (no Dask)
        cfg = _config(cache, "prepared", {}, codec)
        from nowcast.config import PreprocessConfig
        from nowcast.trainset.preprocess import Preprocessor

        pre = Preprocessor.from_config(PreprocessConfig())
        stores = build_datasets(cfg, archives=_archives(size), preprocessor=pre).stores
        if cold:
            _evict(stores)
        arrays = [
            xr.open_zarr(str(st.path), consolidated=False, chunks=None).frames for st in stores
        ]
        store_mb = sum(st.nbytes() for st in stores) / 1e6
    encode = None
    if LOADERS[loader][1].get("encode"):  # training batches, as the prepared loader makes
        from nowcast.trainset.batches import gather_batch, mark_window

        pre = _preprocessor()

        def encode(windows):
            records = [pre.normalise_values(w) for w in windows]
            valids = [mark_window(r, pre.fill_value) for r in records]
            return gather_batch(records, valids, T_IN)

    next_batch, windows = xbatcher_batches(arrays, encode)
    setup = time.perf_counter() - t0

    n, elapsed = _measure(next_batch, seconds)
    return {
        "setup_s": setup,
        "batches": n,
        "seconds": elapsed,
        "data_gb": sum(a.size * 4 for a in arrays) / 1e9,
        "store_mb": store_mb,
        "cache": "none",
        "windows": windows,
    }


def worker(loader: str, size: int, seconds: float, cache: str, cold: bool, codec: str) -> dict:
    """One loader at one size (run in its own process by :func:`harness.run_fresh`)."""
    cache = Path(cache)
    run = run_xbatcher if LOADERS[loader][0] == "xbatcher" else run_nowcast
    folder = cache / (f"x{size}" if codec == "zstd" else f"x{size}-{codec}")
    out = run(loader, size, seconds, folder, cold, codec)
    out.update(loader=loader, size=size, batches_per_s=out["batches"] / out["seconds"])
    return out


def train_step(threads: int) -> dict:
    """samples/s of a training step of the radar model (configs/radar-5min.yaml's network),
    measured by ``bench_train_step.py``'s worker in its own process."""
    import yaml

    model = yaml.safe_load((ROOT / "configs" / "radar-5min.yaml").read_text())["model"]
    argv = [
        f"--filters={','.join(str(f) for f in model['filters'])}",
        f"--kernel={model['kernel_size']}",
        f"--downsample={model['downsample']}",
        f"--t-in={T_IN}",
        f"--t-out={T_OUT}",
        f"--size={PATCH}",
        "--batch=4",
        "--steps=3",
        "--warmup=1",
        "--infer-size=0",
        f"--threads={threads}",
    ]
    env = {"KERAS_BACKEND": "torch", "PYTHONWARNINGS": "ignore"}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    try:
        result = run_fresh(
            "bench_train_step.py:worker", argv, "torch", model["cell"], env=env, timeout=1200
        )
    except WorkerFailed as exc:
        sys.exit(f"training step failed: {exc.last_line()[:200]}")
    result["samples_per_s"] = 4 / (result["step_ms_median"] / 1000)
    result["filters"] = model["filters"]
    return result


def _paired(results: list[dict]) -> list[dict]:
    """One row per size and loader: the median over repetitions of batches/s and of the
    ratio to ``xbatcher-store`` of the same size and repetition (their ranges too), the
    largest peak RSS, the first run's setup (it builds what is missing)."""
    ref = {}
    for r in results:
        if r["loader"] == "xbatcher-store":
            ref[(r["size"], r["rep"])] = r["batches_per_s"]
    rows: dict[tuple[int, str], dict] = {}
    for r in results:
        row = rows.setdefault((r["size"], r["loader"]), dict(r, bps=[], vs=[]))
        row["bps"].append(r["batches_per_s"])
        if (r["size"], r["rep"]) in ref:
            row["vs"].append(r["batches_per_s"] / ref[(r["size"], r["rep"])])
        for key in ("peak_rss_mb", "children_rss_mb"):
            row[key] = max(row.get(key) or 0, r.get(key) or 0) or None
    for row in rows.values():
        row["batches_per_s"] = median_range(row["bps"])[0]
        row["ratio"] = median_range(row["vs"])[0] if row["vs"] else None
    return list(rows.values())


def results_table(results: list[dict], train: dict | None) -> str:
    header = ["data", "loader", "batches/s", "samples/s", "vs xbatcher-store"]
    header += ["vs training step"] if train else []
    header += ["peak RSS MB (main / worker)", "store MB", "setup s", "cache"]
    rows = []
    for r in _paired(results):
        bps = r["batches_per_s"]
        vs = "-" if r["ratio"] is None else f"{r['ratio']:.1f}x" + range_text(r["vs"], "{:.1f}")
        rss = f"{r['peak_rss_mb']:.0f}"
        if r.get("children_rss_mb"):
            rss += f" / {r['children_rss_mb']:.0f}"
        store = f"{r['store_mb']:.0f}" if r.get("store_mb") else "-"
        row = [
            f"{r['size']}x ({r['data_gb']:.1f} GB)",
            r["loader"],
            f"{bps:.2f}{range_text(r['bps'], '{:.0f}')}",
            f"{bps * BATCH:.0f}",
            vs,
        ]
        if train:
            times = bps * BATCH / train["samples_per_s"]
            row.append(f"{times:.1f}x" if times < 10 else f"{times:.0f}x")
        row += [rss, store, f"{r['setup_s']:.0f}", r["cache"]]
        rows.append(row)
    return table(header, rows, "rlrrr" + ("r" if train else "") + "rrrl")


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--seconds", type=float, default=20.0, help="time per loader")
    ap.add_argument("--loaders", nargs="+", choices=list(LOADERS), default=DEFAULT)
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/tmp/nowcast-bench-stream"),
        help="where the prepared stores are built and kept between runs",
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each loader, interleaved (medians)"
    )
    ap.add_argument("--cold", action="store_true", help="evict the stores before each run")
    ap.add_argument(
        "--codec", choices=["zstd", "lz4"], default="zstd", help="prepared stores' compression"
    )
    ap.add_argument("--train-step", action="store_true", help="time the radar model's step")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads (default 1)")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    threads = str(args.threads)
    env = {
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch"),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "PYTHONWARNINGS": "ignore",
    }
    load = [f"{v:.1f}" for v in os.getloadavg()]
    results = []
    for size, rep, loader in (
        (size, rep, loader)
        for size in args.sizes
        for rep in range(args.repeat)
        for loader in args.loaders
    ):
        limit = LOADERS[loader][2]
        if limit is not None and size > limit:
            continue
        opts = (args.seconds, str(args.cache_dir), args.cold, args.codec)
        try:
            result = run_fresh(worker, loader, size, *opts, env=env, cwd=ROOT)
        except WorkerFailed as exc:
            sys.exit(f"{loader} at {size}x failed:\n{exc.stderr[-3000:]}")
        results.append(dict(result, rep=rep))
        r = results[-1]
        print(f"{size}x {loader} #{rep + 1}: {r['batches_per_s']:.2f} batches/s", file=sys.stderr)
    train = None
    if args.train_step:
        train = train_step(args.threads)
        print(f"training step: {train['samples_per_s']:.2f} samples/s", file=sys.stderr)
    load_end = [f"{v:.1f}" for v in os.getloadavg()]
    pages = "evicted from the page cache before each run" if args.cold else "page cache as it is"
    pages += f", {args.codec} chunks"
    print(
        f"\nBatches of {BATCH} windows ({T_IN}+{T_OUT} frames, {PATCH}x{PATCH}) from the six "
        f"shared 5-minute events repeated 1x-16x; {os.cpu_count()} CPUs, load average "
        f"{' '.join(load)} at start, {' '.join(load_end)} at end; {args.threads} torch/OpenMP "
        f"thread(s); stores: {pages}.\n"
    )
    if train:
        print(
            f"Training step of the radar model (filters {train['filters']}, fused cell, torch, "
            f"{train['threads']}, batch 4, {PATCH}x{PATCH}): {train['step_ms_median']:.0f} ms "
            f"= {train['samples_per_s']:.2f} samples/s.\n"
        )
    print(results_table(results, train))
    print(f"\nCommand: `{command('bench_stream.py', argv)}`")


if __name__ == "__main__":
    main()
