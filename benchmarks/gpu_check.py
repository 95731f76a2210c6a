"""The GPU check: the radar network's training step and the shipped model's forecast on a
lent accelerator, in one run that fits the device tool's time (under 8 minutes).

    benchmarks/gpu_check.sh [--out DIR]                  # on the GPU machine (installs wheels)
    python benchmarks/gpu_check.py --dry-run --out DIR   # small sizes on the CPU (CI)

What it measures, each backend in its own process (``KERAS_BACKEND`` set before Keras):

* **training step** of the radar network (``configs/radar-5min.yaml``: its model, t_in,
  t_out, batch and crop, loss and optimiser as ``nowcast train`` compiles them) on random
  data: torch and JAX, float32 and mixed precision (``mixed_bfloat16``): median step time
  after warm-up steps (JAX compiles in them) and samples/s;
* **data-parallel** training step (JAX: Keras' ``DataParallel`` over every device it finds,
  the global batch = the config's batch per device), the path ``train.data_parallel`` takes;
* **predict**: one issue time, 12 leads, of the shipped ``radar-5min`` on the MeteoSwiss
  (640 x 710) and OPERA (2200 x 1900) grids (torch; ``tile=auto``): seconds, the tiles,
  the accelerator's peak memory.

Writes ``gpu-check.json`` (every result, the machine, errors) and ``gpu-check.md`` (the
table) into ``--out`` and prints the table. Results are written as they come, so a run cut
short by its time budget (``--budget``) keeps what it measured. ``--dry-run``: the same
code paths at toy sizes on the CPU (2 training steps of 2 x 32 x 32, 48 x 48 crops of the
grids, data-parallel over 2 emulated CPU devices), a few minutes on a busy 2-core machine.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

from harness import ROOT, SHARED, WorkerFailed, machine, parser, run_fresh, table

CONFIG = ROOT / "configs" / "radar-5min.yaml"
#: name -> (file, issue time, a corner of the dry run's 48 x 48 crop, inside the coverage)
GRIDS = {
    "mch": ("mch-2016-07-11.nc", "2016-07-11T21:30", (200, 250)),
    "opera": ("opera-2018-08-24.nc", "2018-08-24T21:00", (1100, 950)),
}


def _data_dir(given: str | None) -> Path | None:
    """The radar files: ``--data``, ``$NOWCAST_GPU_DATA``, the bundle (``.gpu/data``) or
    ../shared/data/radar; None when none holds them."""
    for candidate in (given, os.environ.get("NOWCAST_GPU_DATA"), ROOT / ".gpu" / "data",
                      SHARED / "radar"):  # fmt: skip
        if candidate and all((Path(candidate) / g[0]).is_file() for g in GRIDS.values()):
            return Path(candidate)
    return None


def _record(path: str, result: dict) -> None:
    """Append one result to the worker's partial file (kept if the worker is cut short)."""
    with open(path, "a") as f:
        f.write(json.dumps(result) + "\n")


def _gpu_memory_reset(backend: str) -> None:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()


def _gpu_peak_mb(backend: str) -> float | None:
    """Peak accelerator memory (MB) since the last reset (torch) or in the process (JAX)."""
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20
        return None
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return peak / 2**20 if peak else None


def _train_setup(dry: bool):
    """The radar config, the training batch ``(x, y, mask)`` and the compile arguments."""
    import numpy as np

    from nowcast.config import load_config

    cfg = load_config(CONFIG)
    s = cfg.sampler
    batch, size = (2, 32) if dry else (s.batch_size, s.patch_size)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, s.t_in, size, size, 1)).astype("float32")
    y = rng.normal(size=(batch, s.t_out, size, size, 1)).astype("float32")
    mask = (rng.random(y.shape) > 0.1).astype("float32")
    return cfg, x, y, mask


def _compiled_model(cfg, precision: str):
    import keras

    from nowcast.model import build_model, make_loss
    from nowcast.trained.catalogue import resolve_model
    from nowcast.trained.rundir import RunDir

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "mixed" else "float32")
    keras.utils.set_random_seed(0)
    model = build_model(cfg.model, t_in=cfg.sampler.t_in, t_out=cfg.sampler.t_out)
    encoding = RunDir(resolve_model("radar-5min")).read_metadata()["preprocessor"]
    loss = make_loss(
        cfg.train.loss,
        encoding=encoding,
        quantile=cfg.train.quantile,
        levels=cfg.model.quantiles,
        lead_discount=cfg.train.lead_discount,
    )
    model.compile(optimizer=keras.optimizers.Adam(cfg.train.learning_rate, clipnorm=1.0), loss=loss)
    return model


def _steps(model, x, y, mask, *, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        model.train_on_batch(x, y, sample_weight=mask)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = float(model.train_on_batch(x, y, sample_weight=mask))
        times.append(time.perf_counter() - t0)
    if loss != loss:  # NaN
        raise RuntimeError("the training loss is NaN")
    return times


def backend_worker(backend: str, dry: bool, partial: str, data: str | None) -> dict:
    """Every measurement of one backend (a fresh process, ``KERAS_BACKEND`` set)."""
    sys.path.insert(0, str(ROOT))
    from nowcast.backend import device_description

    device = device_description()
    cfg, x, y, mask = _train_setup(dry)
    warmup, steps = (1, 2) if dry else (3, 10)
    for precision in ("float32", "mixed"):
        _gpu_memory_reset(backend)
        model = _compiled_model(cfg, precision)
        times = _steps(model, x, y, mask, warmup=warmup, steps=steps)
        step = statistics.median(times)
        _record(partial, {
            "what": "train", "backend": backend, "precision": precision, "device": device,
            "batch": int(x.shape[0]), "size": int(x.shape[2]), "steps": len(times),
            "step_ms": step * 1000, "samples_per_s": x.shape[0] / step,
            "gpu_peak_mb": _gpu_peak_mb(backend),
        })  # fmt: skip
    if backend == "jax":
        import keras

        keras.mixed_precision.set_global_policy("float32")
        devices = keras.distribution.list_devices()
        per_device = int(x.shape[0])
        with keras.distribution.DataParallel(devices=devices).scope():
            model = _compiled_model(cfg, "float32")
            import numpy as np

            reps = (len(devices), 1, 1, 1, 1)
            xs, ys, ms = (np.tile(a, reps) for a in (x, y, mask))
            times = _steps(model, xs, ys, ms, warmup=warmup, steps=steps)
        step = statistics.median(times)
        _record(partial, {
            "what": "data_parallel", "backend": backend, "precision": "float32",
            "device": f"{len(devices)} x {devices[0]}", "batch": len(devices) * per_device,
            "size": int(x.shape[2]), "steps": len(times), "step_ms": step * 1000,
            "samples_per_s": len(devices) * per_device / step,
            "gpu_peak_mb": _gpu_peak_mb(backend),
        })  # fmt: skip
    if backend == "torch":
        _predict(backend, dry, partial, data, device)
    return {"backend": backend}


def _predict(backend: str, dry: bool, partial: str, data: str | None, device: str) -> None:
    import numpy as np

    from nowcast.archive import open_archive
    from nowcast.archive.synthetic import synthetic_rain
    from nowcast.methods import ConvLSTMForecaster, forecast_many

    for name, (file, issue, (y0, x0)) in GRIDS.items():
        if data is not None:
            archive = open_archive(Path(data) / file)
        else:  # no data carried: synthetic rain on the grid's size
            ny, nx = {"mch": (640, 710), "opera": (2200, 1900)}[name]
            archive = synthetic_rain(n_times=8, ny=ny, nx=nx, seed=1)
            issue = str(archive.time.values[-1])
        if dry:
            archive = archive.isel(y=slice(y0, y0 + 48), x=slice(x0, x0 + 48))
        method = ConvLSTMForecaster("radar-5min", tile="auto")
        times = []
        for _ in range(2 if dry else 3):  # the first: model load, warm-up
            _gpu_memory_reset(backend)
            t0 = time.perf_counter()
            fc = forecast_many(method, archive, [issue], 12)
            times.append(time.perf_counter() - t0)
        _record(partial, {
            "what": "predict", "backend": backend, "precision": "float32", "device": device,
            "grid": f"{name} {archive.sizes['y']} x {archive.sizes['x']}",
            "data": "real" if data is not None else "synthetic",
            "seconds": statistics.median(times[1:]), "first_seconds": times[0],
            "tiles": method.tiles_used, "finite": float(np.isfinite(fc.values).mean()),
            "gpu_peak_mb": _gpu_peak_mb(backend),
        })  # fmt: skip


def _rows(results: list[dict]) -> list[list]:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    rows = []
    for r in results:
        peak = num(r.get("gpu_peak_mb"), ".0f")
        if r["what"] in ("train", "data_parallel"):
            what = "training step" if r["what"] == "train" else "training step, data-parallel"
            size = f"batch {r['batch']} x {r['size']}^2"
            speed = [num(r["step_ms"], ".1f"), num(r["samples_per_s"], ".1f")]
        else:
            what = "predict, 12 leads"
            size = f"{r['grid']} ({r['data']}, tiles: {r['tiles']})"
            speed = [num(r["seconds"] * 1000, ".0f"), "-"]
        rows.append([what, r["backend"], r["precision"], r["device"], size, *speed, peak])
    return rows


HEADER = ["what", "backend", "precision", "device", "size", "ms (median)", "samples/s",
          "accelerator peak MB"]  # fmt: skip


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--out", default="gpu-check", help="folder for gpu-check.json and .md")
    ap.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU (CI)")
    ap.add_argument("--budget", type=float, default=450, help="seconds for everything")
    ap.add_argument("--backends", default="torch,jax")
    ap.add_argument("--data", default=None, help="folder with the MeteoSwiss and OPERA files")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = _data_dir(args.data)
    start = time.perf_counter()
    report = {"machine": machine(), "dry_run": args.dry_run, "results": [], "errors": []}
    env = {"PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if args.dry_run:  # the CPU: 2 emulated JAX devices for the data-parallel path
        env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
                   XLA_FLAGS="--xla_force_host_platform_device_count=2")  # fmt: skip
    for backend in args.backends.split(","):
        partial = out / f"partial-{backend}.jsonl"
        partial.unlink(missing_ok=True)
        left = args.budget - (time.perf_counter() - start)
        try:
            if left < 20:
                raise WorkerFailed(f"no time left of the {args.budget:g} s budget")
            run_fresh(
                backend_worker,
                backend,
                args.dry_run,
                str(partial),
                None if data is None else str(data),
                env={**env, "KERAS_BACKEND": backend},
                timeout=left,
            )
        except WorkerFailed as exc:
            report["errors"].append(f"{backend}: {exc.last_line()[:300]}")
        if partial.exists():
            report["results"] += [json.loads(line) for line in partial.read_text().splitlines()]
            partial.unlink()
        report["seconds"] = time.perf_counter() - start
        (out / "gpu-check.json").write_text(json.dumps(report, indent=1))
    text = table(HEADER, _rows(report["results"]), "llllrrrr")
    lines = [text, "", f"Machine: {report['machine']}", f"Total: {report['seconds']:.0f} s"]
    lines += [f"Error: {e}" for e in report["errors"]]
    (out / "gpu-check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
