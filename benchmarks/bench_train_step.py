"""Training-step and inference time of the nowcaster per recurrent cell, torch vs jax.

Run on demand (not a test)::

    python benchmarks/bench_train_step.py                      # the defaults below
    python benchmarks/bench_train_step.py --steps 3 --backends torch --infer-size 256
    python benchmarks/bench_train_step.py --config configs/radar-5min.yaml --backends torch

Cells (``--cells``): ``stock`` (``keras.layers.ConvLSTM2D``), ``fused``, ``peephole`` (the
fused cell with ``model.peephole``) and ``gru`` (``model.cell: gru``). Each (backend,
cell) combination runs in its own subprocess with ``KERAS_BACKEND`` set:
it builds the model (defaults: filters (32, 64), kernel 3, downsample 4 space_to_depth,
t_in 6, t_out 12), times ``train_on_batch`` (Adam, masked MSE, random normalised data,
batch 4, 128 x 128 crop; warm-up steps excluded, median of ``--steps``), then one
full-domain nowcast (batch 1, 512 x 512, 12 leads; median of ``--infer-repeats`` after
one warm-up), and reports its parameters and peak RSS. ``--config`` takes the model
section (the cell replaced), ``t_in``, ``t_out``, the batch and the crop size from a
training config instead (the loss stays masked MSE: its cost is negligible beside the
network's). The parent prints a Markdown table with ratios to the stock cell on the same
backend, the machine, and this exact command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from harness import ROOT, WorkerFailed, command, machine, parser, peak_rss_mb, run_fresh, table

#: Benchmark cell name -> ModelConfig fields.
CELLS = {
    "stock": {"cell": "stock"},
    "fused": {"cell": "fused"},
    "peephole": {"cell": "fused", "peephole": True},
    "gru": {"cell": "gru"},
}


def _parse(argv=None) -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument(
        "--config", type=Path, help="model, t_in, t_out, batch and crop from this training config"
    )
    p.add_argument(
        "--filters", default="32,64", help="comma-separated ConvLSTM filters (default 32,64)"
    )
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--downsample", type=int, default=4)
    p.add_argument("--mode", default="space_to_depth", choices=["space_to_depth", "conv"])
    p.add_argument("--t-in", type=int, default=6)
    p.add_argument("--t-out", type=int, default=12)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=128, help="training crop size (square)")
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    p.add_argument(
        "--infer-size", type=int, default=512, help="full-domain size for inference; 0 skips"
    )
    p.add_argument("--infer-repeats", type=int, default=2)
    p.add_argument("--backends", default="torch,jax")
    p.add_argument("--cells", default=",".join(CELLS), help=f"of {', '.join(CELLS)}")
    p.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: library default)"
    )
    p.add_argument(
        "--fused-strategy",
        default=None,
        choices=["split", "concat"],
        help="override the fused ConvLSTM's default",
    )
    p.add_argument(
        "--fused-layout",
        default=None,
        choices=["channels_last", "channels_first"],
        help="override the fused ConvLSTM's and the ConvGRU's default",
    )
    p.add_argument(
        "--fused-loop", default=None, choices=["python", "fori"], help="as --fused-layout"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=0,
        help=(
            "seconds per combination for timed steps (>= 1 step); inference is skipped once "
            "spent; 0: no limit"
        ),
    )
    p.add_argument(
        "--timeout", type=int, default=1200, help="seconds per combination before it is killed"
    )
    args = p.parse_args(argv)
    unknown = [c for c in args.cells.split(",") if c not in CELLS]
    if unknown:
        p.error(f"unknown cell(s) {', '.join(unknown)}: choose from {', '.join(CELLS)}")
    if args.config is not None:
        cfg = _load(args.config)
        m, s = cfg.model, cfg.sampler
        args.filters = ",".join(str(f) for f in m.filters)
        args.kernel, args.downsample, args.mode = m.kernel_size, m.downsample, m.downsample_mode
        args.t_in, args.t_out, args.batch = s.t_in, s.t_out, s.batch_size
        args.size = s.patch_size or args.size
    return args


def _load(path: Path):
    sys.path.insert(0, str(ROOT))
    from nowcast.config import load_config

    return load_config(path)


def _model_config(args: argparse.Namespace, cell: str):
    """The ModelConfig of ``cell``: the config's model section, or one from the flags."""
    import dataclasses

    from nowcast.config import ModelConfig

    if args.config is not None:
        fields = {"peephole": False, **CELLS[cell]}
        return dataclasses.replace(_load(args.config).model, **fields)
    return ModelConfig(
        filters=tuple(int(f) for f in args.filters.split(",")),
        kernel_size=args.kernel,
        downsample=args.downsample,
        downsample_mode=args.mode,
        **CELLS[cell],
    )


# --------------------------------------------------------------------------- worker


def _threads(backend: str) -> str:
    if backend == "torch":
        import torch

        return f"torch {torch.get_num_threads()} threads"
    return f"{backend} default threads"


def worker(argv: list[str], backend: str, cell: str) -> dict:
    """One (backend, cell) combination (run in its own process by :func:`harness.run_fresh`,
    with ``KERAS_BACKEND`` set)."""
    args = _parse(argv)
    os.environ["KERAS_BACKEND"] = backend
    sys.path.insert(0, str(ROOT))
    import numpy as np

    if args.threads and backend == "torch":
        import torch

        torch.set_num_threads(args.threads)

    import keras

    from nowcast.model import FusedConvLSTM2D, build_model, make_loss
    from nowcast.model.recurrent import ConvRecurrent2D

    keras.utils.set_random_seed(0)
    cfg = _model_config(args, cell)
    model = build_model(cfg, t_in=args.t_in, t_out=args.t_out)
    for layer in model.layers:
        for name, kind in (
            ("strategy", FusedConvLSTM2D),
            ("layout", ConvRecurrent2D),
            ("loop", ConvRecurrent2D),
        ):
            value = getattr(args, f"fused_{name}")
            if value is not None and isinstance(layer, kind):
                setattr(layer, name, value)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("mse"))

    rng = np.random.default_rng(0)
    s, b = args.size, args.batch
    x = rng.normal(size=(b, args.t_in, s, s, 1)).astype("float32")
    y = rng.normal(size=(b, args.t_out, s, s, 1)).astype("float32")
    mask = (rng.random(y.shape) > 0.1).astype("float32")

    t0 = time.perf_counter()
    losses = []
    for _ in range(args.warmup):
        losses.append(float(model.train_on_batch(x, y, sample_weight=mask)))
    warmup_s = time.perf_counter() - t0
    start = time.perf_counter()
    times, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(float(model.train_on_batch(x, y, sample_weight=mask)))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if args.budget and time.perf_counter() - start > args.budget:
            break
    result = {
        "backend": backend,
        "threads": _threads(backend),
        "cell": cell,
        "params": int(model.count_params()),
        "warmup_s": warmup_s,
        "step_ms": [t * 1000 for t in times],
        "step_ms_median": statistics.median(times) * 1000,
        "step_ms_min": min(times) * 1000,
        "step_cpu_ms_median": statistics.median(cpu) * 1000,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "train_peak_rss_mb": peak_rss_mb(),
    }
    over_budget = args.budget and time.perf_counter() - start > args.budget
    if args.infer_size and not over_budget:
        n = args.infer_size
        past = rng.normal(size=(1, args.t_in, n, n, 1)).astype("float32")
        model.predict_on_batch(past)  # warm-up (jax: compile for this shape)
        times = []
        for _ in range(args.infer_repeats):
            t0 = time.perf_counter()
            out = model.predict_on_batch(past)
            times.append(time.perf_counter() - t0)
        assert out.shape == (1, args.t_out, n, n, 1)
        result["infer_ms_median"] = statistics.median(times) * 1000
    return result  # run_fresh adds peak_rss_mb


# --------------------------------------------------------------------------- parent


def _run_combination(backend: str, cell: str, argv: list[str], timeout: int) -> dict:
    env = {"KERAS_BACKEND": backend, "PYTHONWARNINGS": "ignore"}
    try:
        return run_fresh(worker, argv, backend, cell, env=env, timeout=timeout)
    except WorkerFailed as exc:
        error = str(exc) if exc.__cause__ is not None else exc.last_line()[:200]
        return {"backend": backend, "cell": cell, "error": error}


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2f}"


def _ratio(ref: dict | None, r: dict, key: str) -> str:
    if not ref or not ref.get(key) or not r.get(key):
        return "-"
    return f"{ref[key] / r[key]:.2f}x"


def _table(results: list[dict], args: argparse.Namespace) -> str:
    stock = {r["backend"]: r for r in results if r["cell"] == "stock" and "error" not in r}
    n = args.infer_size
    header = [
        "backend", "cell", "parameters", "steps", "train step median (ms)", "min (ms)",
        "CPU time/step (ms)", "samples/s", "step vs stock", "CPU vs stock",
        f"nowcast {n}x{n} (ms)", "nowcast vs stock", "training peak RSS (MB)", "peak RSS (MB)",
    ]  # fmt: skip
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["backend"], r["cell"], f"error: {r['error']}"])
            continue
        ref = stock.get(r["backend"])
        step = r["step_ms_median"]
        inf = r.get("infer_ms_median")
        rows.append(
            [
                r["backend"],
                r["cell"],
                f"{r['params']:,}",
                len(r["step_ms"]),
                _ms(step),
                _ms(r["step_ms_min"]),
                _ms(r["step_cpu_ms_median"]),
                f"{args.batch / step * 1000:.2f}",
                _ratio(ref, r, "step_ms_median"),
                _ratio(ref, r, "step_cpu_ms_median"),
                "skipped" if inf is None else _ms(inf),
                _ratio(ref, r, "infer_ms_median"),
                f"{r['train_peak_rss_mb']:.0f}",
                f"{r['peak_rss_mb']:.0f}",
            ]
        )
    return table(header, rows, "l" * 14)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    t0 = time.perf_counter()
    where = machine()
    results = []
    for backend in args.backends.split(","):
        for cell in args.cells.split(","):
            r = _run_combination(backend, cell, argv, args.timeout)
            results.append(r)
            detail = (
                r.get("error")
                or f"median {r['step_ms_median']:.0f} ms, steps {[round(t) for t in r['step_ms']]}"
            )
            print(f"# {backend}/{cell}: {detail}", file=sys.stderr, flush=True)
    if args.config is not None:
        m = _load(args.config).model
        print(f"Config {args.config}: model.head {m.head}, residual {m.residual}, frame {m.frame}")
    print(
        f"Model: filters ({args.filters}), kernel {args.kernel}, downsample {args.downsample} "
        f"{args.mode}, "
        f"t_in {args.t_in}, t_out {args.t_out}; training batch {args.batch} x "
        f"{args.size}x{args.size}, "
        f"{args.warmup} warm-up + {args.steps} timed steps; nowcast batch 1, {args.infer_repeats} "
        "timed after 1 warm-up.\n"
    )
    print(_table(results, args))
    threads = sorted({r["threads"] for r in results if "threads" in r})
    print(f"\nMachine: {where}; {', '.join(threads)}")
    print("Command: " + command("bench_train_step.py", argv))
    print(f"Total wall time: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
