"""Training: config -> datasets -> model -> run directory (:mod:`nowcast.trained.rundir`).

After every epoch the checkpoint and its state are written atomically (``--resume``
continues from them; Ctrl-C leaves them usable), and the model whenever the validation
loss improved. This module imports Keras (the backend is selected first).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nowcast.backend import device_description, select_backend
from nowcast.config import Config, dump_config
from nowcast.errors import NowcastError
from nowcast.model import HKO7_THRESHOLDS_MMH, build_model, load_model, make_loss
from nowcast.trained.metadata import build_metadata
from nowcast.trained.rundir import RunDir
from nowcast.training.callbacks import EpochCheckpoint, TensorBoardScalars
from nowcast.trainset.build import build_datasets

select_backend()
import keras  # noqa: E402


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    epochs_run: int
    best_val_loss: float | None
    seconds: float
    interrupted: bool


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under a mixed-precision policy, restoring the global policy after."""
    if name == "none":
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(f"mixed_{name}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def distribution_scope(cfg: Config, echo=print) -> Iterator[Any]:
    """Data-parallel training over several devices (Keras distribution API, JAX only)."""
    if not cfg.train.data_parallel:
        yield None
        return
    if keras.backend.backend() != "jax":
        raise NowcastError(
            "train.data_parallel needs the JAX backend (Keras' distribution API supports only "
            "JAX): "
            "run with KERAS_BACKEND=jax"
        )
    devices = keras.distribution.list_devices()
    n = cfg.train.devices or len(devices)
    if n > len(devices):
        raise NowcastError(
            f"train.devices={n} but only {len(devices)} device(s) are visible: {', '.join(devices)}"
        )
    if cfg.sampler.batch_size % n:
        raise NowcastError(
            f"sampler.batch_size={cfg.sampler.batch_size} must be a multiple of the {n} devices"
        )
    distribution = keras.distribution.DataParallel(devices=devices[:n])
    echo(f"data-parallel training on {n} devices: {', '.join(devices[:n])}")
    with distribution.scope():
        yield distribution


def _has_gpu() -> bool:
    backend = keras.backend.backend()
    # each backend's own library, imported only for the backend in use
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def warm_start(model, source: str | Path, *, echo=print) -> int:
    """Copy into ``model`` the weights of every layer of the trained model ``source`` (a run
    directory or a ``.keras`` file) with the same name and weight shapes; returns how many
    layers were copied. The others (e.g. a new output head) keep their initial weights."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = RunDir(path).model
    donor = load_model(path)
    copied, kept = 0, []
    for layer in model.layers:
        try:
            other = donor.get_layer(layer.name)
        except ValueError:
            other = None
        theirs = other.get_weights() if other is not None else None
        mine = layer.get_weights()
        if not mine:
            continue
        if theirs is not None and [w.shape for w in theirs] == [w.shape for w in mine]:
            layer.set_weights(theirs)
            copied += 1
        else:
            kept.append(layer.name)
    echo(
        f"warm start from {path}: {copied} layers copied"
        + (f", {len(kept)} initialised ({', '.join(kept)})" if kept else "")
    )
    return copied


def _compile(model, cfg: Config, preprocessor) -> None:
    thresholds = None
    if cfg.train.loss.startswith("balanced"):
        encoded, _ = preprocessor.encode(np.asarray(HKO7_THRESHOLDS_MMH, dtype=np.float32))
        thresholds = [float(v) for v in encoded]
    loss = make_loss(
        cfg.train.loss,
        thresholds_normalised=thresholds,
        encoding=preprocessor.to_dict(),
        quantile=cfg.train.quantile,
        levels=cfg.model.quantiles,
        lead_discount=cfg.train.lead_discount,
        encoded_weight=cfg.train.pinball_encoded_weight,
    )
    lr: Any = cfg.train.learning_rate
    if cfg.train.lr_schedule == "cosine" and cfg.train.steps_per_epoch:
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=cfg.train.epochs * cfg.train.steps_per_epoch, alpha=0.05
        )
    optimizer = keras.optimizers.Adam(learning_rate=lr, clipnorm=1.0)
    if cfg.train.mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=loss)


def training_callbacks(run: RunDir, cfg: Config, *, resume: bool, state: dict[str, Any]) -> list:
    """The callbacks of every training (gridded and series models): checkpoints, history,
    early stopping, NaN stop, TensorBoard scalars and the learning-rate plateau."""
    cbs: list = [
        EpochCheckpoint(run, best=state.get("best_val_loss")),
        keras.callbacks.CSVLogger(str(run.history), append=resume),
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=cfg.train.early_stopping_patience,
            restore_best_weights=False,
        ),
        keras.callbacks.TerminateOnNaN(),
        TensorBoardScalars(run.tensorboard),
    ]
    if cfg.train.lr_schedule == "plateau":
        cbs.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=0.5,
                patience=max(1, cfg.train.early_stopping_patience // 2),
                min_lr=1e-5,
            )
        )
    return cbs


def start_run(run_dir: Path, *, resume: bool, seed: int, echo=print) -> RunDir:
    """The :class:`RunDir` a training writes, checked (a checkpoint there with ``resume``,
    none without it); says the device and sets Keras' random ``seed``. The backend must
    be selected first (:func:`nowcast.backend.select_backend`)."""
    run = RunDir(run_dir)
    if resume and not run.checkpoint.exists():
        raise NowcastError(f"--resume: no checkpoint in {run_dir}")
    if not resume and run.checkpoint.exists():
        raise NowcastError(
            f"{run_dir} already holds a training run; use --resume to continue it or choose "
            "another --output"
        )
    echo(f"nowcast train: {device_description()}")
    keras.utils.set_random_seed(seed)
    return run


def train(
    cfg: Config,
    *,
    run_dir: str | Path,
    resume: bool = False,
    archives: Sequence[Any] | None = None,
    verbose: int | str = "auto",
    echo=print,
) -> TrainResult:
    """Train the ConvLSTM encoder-forecaster described by ``cfg`` into ``run_dir``."""
    backend = select_backend()
    run_dir = Path(run_dir)
    run = start_run(run_dir, resume=resume, seed=cfg.train.seed, echo=echo)
    datasets = build_datasets(
        cfg,
        archives=list(archives) if archives is not None else None,
        steps_per_epoch=cfg.train.steps_per_epoch,
        drop_remainder=cfg.train.data_parallel,
        echo=echo,
    )
    full = (
        f" (data-parallel training needs full batches of {cfg.sampler.batch_size})"
        if cfg.train.data_parallel
        else ""
    )
    if datasets.train is None:
        raise NowcastError(
            f"not enough training windows{full}: lower sampler.batch_size or add data"
        )
    if datasets.validation is None:
        raise NowcastError(
            f"not enough validation windows{full}: increase sampler.split.validation or add data"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    metadata = build_metadata(cfg, datasets.summary, datasets.preprocessor, backend=backend)
    run.write_metadata(metadata)
    dump_config(cfg, run.config)

    precision = cfg.train.mixed_precision
    if precision != "none" and not _has_gpu():
        echo(f"mixed precision {precision!r} is for GPUs; training in float32 on this CPU")
        precision = "none"

    with distribution_scope(cfg, echo):
        state: dict[str, Any] = {}
        if resume:
            state = run.read_state()
            if not state:
                raise NowcastError(f"--resume: the checkpoint in {run_dir} has no {run.state.name}")
            model = keras.saving.load_model(run.checkpoint, compile=True)
            step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            echo(f"resuming at epoch {state['epoch'] + 1} (optimizer step {step})")
        else:
            with dtype_policy(precision):
                model = build_model(
                    cfg.model,
                    t_in=cfg.sampler.t_in,
                    t_out=cfg.sampler.t_out,
                    channels=cfg.model.channels,
                )
            if cfg.train.init_from:
                warm_start(model, cfg.train.init_from, echo=echo)
            _compile(model, cfg, datasets.preprocessor)
        initial_epoch = int(state.get("epoch", 0))
        if initial_epoch >= cfg.train.epochs:
            echo(
                f"already trained for {initial_epoch} epochs (train.epochs = {cfg.train.epochs}); "
                "nothing to do"
            )
            return TrainResult(run_dir, 0, state.get("best_val_loss"), 0.0, False)
        echo(
            f"{model.count_params():,} parameters; {len(datasets.train)} train batches/epoch, "
            f"{len(datasets.validation)} validation batches; run dir {run_dir}"
        )
        start = time.perf_counter()
        interrupted = False
        history = None
        try:
            history = model.fit(
                datasets.train,
                validation_data=datasets.validation,
                epochs=cfg.train.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=cfg.train.steps_per_epoch,
                validation_steps=min(cfg.train.validation_steps, len(datasets.validation))
                if cfg.train.validation_steps
                else None,
                callbacks=training_callbacks(run, cfg, resume=resume, state=state),
                verbose=verbose,
            )
        except KeyboardInterrupt:
            interrupted = True
            echo(
                "\ninterrupted: the last completed epoch is saved in "
                f"{run.checkpoint}; continue with --resume"
            )
    seconds = time.perf_counter() - start
    final_state = run.read_state()
    epochs_run = int(final_state.get("epoch", initial_epoch)) - initial_epoch
    if history is not None and not run.model.exists():
        raise NowcastError(f"training produced no finite validation loss (see {run.history.name})")
    return TrainResult(run_dir, epochs_run, final_state.get("best_val_loss"), seconds, interrupted)
