"""Training a series model (``model.kind: series``) into a run directory.

The same run directory as the gridded models (:class:`nowcast.trained.rundir.RunDir`:
``model.keras`` best by validation loss, ``checkpoint.keras`` + ``state.json`` after every
epoch for ``--resume``, ``config.yaml``, ``metadata.json``, ``history.csv``,
``tensorboard/``), written by the same callbacks. Series come from ``data.events``
(:func:`load_training_series`); each event's times are split ``[train | validation |
test]`` as the gridded sampler splits frames (``sampler.split``), and windows of
``t_in`` + ``t_out`` (``direct``) or ``t_in + 1`` (``recursive``) steps are slid inside
runs without a gap and inside one split, with every value present. The mean and standard
deviation are the train windows' values'.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nowcast import __version__
from nowcast.archive.reader import open_archive
from nowcast.backend import select_backend
from nowcast.config import Config, dump_config
from nowcast.conventions import SPLITS
from nowcast.errors import NowcastError
from nowcast.series.data import Series, all_points, series_at_points, valid_windows, window_starts
from nowcast.series.forecast import MODEL_KIND
from nowcast.series.network import build_series_model, encode_windows, feature_names
from nowcast.series.network import time_features as make_time_features
from nowcast.series.readers import is_station_file, read_series
from nowcast.training.loop import TrainResult, start_run, training_callbacks
from nowcast.trainset.sampler import label_frames

select_backend()
import keras  # noqa: E402

__all__ = ["SeriesEvent", "load_training_series", "train_series"]


@dataclass
class SeriesEvent:
    name: str
    source: str
    series: Series
    labels: np.ndarray  # split code per time
    features: np.ndarray  # (time, 4) time features


def load_training_series(cfg: Config) -> list[Series]:
    """One :class:`Series` per ``data.events`` entry: a station file as it is, a gridded
    archive at ``series.points`` (``all``: every grid point)."""
    from nowcast.render.point import parse_point  # places and LAT,LON, as render --point

    out = []
    for event in cfg.data.events:
        if is_station_file(event):
            out.append(read_series(event, column=cfg.data.variable, units=cfg.series.units))
            continue
        archive = open_archive(event, variable=cfg.data.variable, kind=cfg.data.kind, chunks="auto")
        if [p.lower() for p in cfg.series.points] == ["all"]:
            out.append(all_points(archive, source=event))
        else:
            points = [parse_point(p) for p in cfg.series.points]
            out.append(
                series_at_points(archive, [(p.name, p.lat, p.lon) for p in points], source=event)
            )
    return out


def _window_length(cfg: Config) -> int:
    return cfg.sampler.t_in + (cfg.sampler.t_out if cfg.series.strategy == "direct" else 1)


class WindowBatches(keras.utils.PyDataset):
    """Batches ``(x, y)`` of windows ``rows (event, station, start)``: ``x (B, t_in, C)``
    network inputs, ``y (B, n_out)`` the changes from the last input in standard deviations.
    Train: a seeded shuffle, ``steps`` batches per epoch from a running permutation."""

    def __init__(
        self,
        events,
        rows,
        *,
        t_in,
        n_out,
        batch_size,
        mean,
        std,
        time_features,
        shuffle,
        seed,
        steps=None,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.events, self.rows = events, rows
        self.t_in, self.n_out, self.batch_size = t_in, n_out, batch_size
        self.mean, self.std, self.time_features = mean, std, time_features
        self.shuffle, self.seed = shuffle, seed
        self.steps = steps or math.ceil(len(rows) / batch_size)
        self._epoch, self._cursor = 0, 0
        self._order = self._permutation()
        self._batches = self._take()

    def _permutation(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.rows))
        return np.random.default_rng([self.seed, self._epoch]).permutation(len(self.rows))

    def _take(self) -> list[np.ndarray]:
        out = []
        for _ in range(self.steps):
            if self._cursor >= len(self._order):
                self._epoch += 1
                self._order, self._cursor = self._permutation(), 0
            out.append(self._order[self._cursor : self._cursor + self.batch_size])
            self._cursor += self.batch_size
        return out

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._batches = self._take()

    def __getitem__(self, i):
        rows = self.rows[self._batches[i]]
        xs, ys = [], []
        span = np.arange(self.t_in + self.n_out)
        for e in np.unique(rows[:, 0]):
            sub = rows[rows[:, 0] == e]
            ev = self.events[e]
            at = sub[:, 2:3] + span
            vals = ev.series.values[sub[:, 1:2], at].astype(np.float64)
            feats = ev.features[at[:, : self.t_in]] if self.time_features else None
            xs.append(encode_windows(vals[:, : self.t_in], feats, self.mean, self.std))
            ys.append((vals[:, self.t_in :] - vals[:, self.t_in - 1 : self.t_in]) / self.std)
        return np.concatenate(xs), np.concatenate(ys).astype(np.float32)


def _events(cfg: Config) -> list[SeriesEvent]:
    sp = cfg.sampler.split
    out = []
    for path, series in zip(cfg.data.events, load_training_series(cfg)):
        holdout = path in sp.holdout_events
        labels = label_frames(
            series.times,
            validation=sp.validation,
            test=sp.test,
            test_period=sp.test_period,
            holdout=holdout,
            validation_event=path in sp.validation_events,
        )
        out.append(
            SeriesEvent(
                Path(path).stem, str(path), series, labels, make_time_features(series.times)
            )
        )
    return out


def _windows(events: list[SeriesEvent], length: int, stride: int = 1) -> dict[str, np.ndarray]:
    out = {}
    for code, split in enumerate(SPLITS):
        parts = []
        for e, ev in enumerate(events):
            starts = window_starts(ev.series.times, length, labels=ev.labels, stride=stride)
            starts = starts[ev.labels[starts] == code]
            rows = valid_windows(ev.series.values, starts, length)
            parts.append(np.concatenate([np.full((len(rows), 1), e), rows], axis=1))
        out[split] = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)
    return out


def _summary(cfg, events, windows, step, mean, std) -> dict[str, Any]:
    per_event = []
    for e, ev in enumerate(events):
        t = ev.series.times
        periods = {}
        for code, split in enumerate(SPLITS):
            idx = np.flatnonzero(ev.labels == code)
            periods[split] = [t[idx[0]].isoformat(), t[idx[-1]].isoformat()] if idx.size else None
        per_event.append(
            {
                "name": ev.name,
                "source": ev.source,
                "stations": ev.series.n_stations,
                "frames": len(t),
                "periods": periods,
                "train_period": periods["train"],
                "windows": {s: int((windows[s][:, 0] == e).sum()) for s in SPLITS},
            }
        )
    first = events[0].series
    return {
        "variable": first.variable,
        "units": first.units,
        "time_step_seconds": float(step.total_seconds()),
        "points": list(cfg.series.points),
        "windows": {s: int(len(windows[s])) for s in SPLITS},
        "events": per_event,
        "normalisation": {"mean": mean, "std": std},
    }


def train_series(cfg: Config, *, run_dir, resume: bool = False, verbose="auto", echo=print):
    """Train the series model of ``cfg`` (``model.kind: series``) into ``run_dir``."""
    backend = select_backend()
    run = start_run(Path(run_dir), resume=resume, seed=cfg.train.seed, echo=echo)
    events = _events(cfg)
    steps = {ev.series.step for ev in events}
    units = {ev.series.units for ev in events}
    if len(steps) > 1 or len(units) > 1:
        raise NowcastError(f"the series have different steps or units ({steps}, {units})")
    s, sc = cfg.sampler, cfg.series
    length = _window_length(cfg)
    windows = _windows(events, length, s.stride)
    for split in ("train", "validation"):
        if len(windows[split]) == 0:
            raise NowcastError(
                f"no {split} windows of {length} steps without a gap: the series "
                "are shorter than the model's window, or add data"
            )
    train_vals = np.concatenate([ev.series.values[:, ev.labels == 0].ravel() for ev in events])
    mean = float(np.nanmean(train_vals))
    std = float(np.nanstd(train_vals)) or 1.0
    n_out = length - s.t_in
    common = dict(
        t_in=s.t_in,
        n_out=n_out,
        batch_size=s.batch_size,
        mean=mean,
        std=std,
        time_features=sc.time_features,
        seed=s.seed,
    )
    train = WindowBatches(
        events, windows["train"], shuffle=True, steps=cfg.train.steps_per_epoch, **common
    )
    val_rows = windows["validation"]
    if cfg.train.validation_steps:
        keep = np.random.default_rng(s.seed).permutation(len(val_rows))
        val_rows = val_rows[np.sort(keep[: cfg.train.validation_steps * s.batch_size])]
    validation = WindowBatches(events, val_rows, shuffle=False, **common)
    run.path.mkdir(parents=True, exist_ok=True)
    summary = _summary(cfg, events, windows, next(iter(steps)), mean, std)
    run.write_metadata(
        {
            "nowcast_version": __version__,
            "model_kind": MODEL_KIND,
            "name": cfg.name,
            "kind": cfg.data.kind,
            "variable": summary["variable"],
            "units": summary["units"],
            "time_step_seconds": summary["time_step_seconds"],
            "t_in": s.t_in,
            "t_out": s.t_out,
            "strategy": sc.strategy,
            "cell": sc.cell,
            "hidden": list(sc.hidden),
            "time_features": sc.time_features,
            "features": list(feature_names(sc.time_features)),
            "normalisation": {"mean": mean, "std": std},
            "training": summary,
            "backend": backend,
        }
    )
    dump_config(cfg, run.config)
    state: dict[str, Any] = {}
    if resume:
        state = run.read_state()
        if not state:
            raise NowcastError(f"--resume: the checkpoint in {run_dir} has no {run.state.name}")
        model = keras.saving.load_model(run.checkpoint, compile=True)
        echo(f"resuming at epoch {state['epoch'] + 1}")
    else:
        n_features = len(feature_names(sc.time_features))
        model = build_series_model(sc, t_in=s.t_in, t_out=s.t_out, n_features=n_features)
        lr: Any = cfg.train.learning_rate
        if cfg.train.lr_schedule == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(
                lr, decay_steps=cfg.train.epochs * len(train), alpha=0.05
            )
        loss = "mae" if cfg.train.loss == "mae" else "mse"
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, clipnorm=1.0), loss=loss)
    initial_epoch = int(state.get("epoch", 0))
    if initial_epoch >= cfg.train.epochs:
        echo(f"already trained for {initial_epoch} epochs; nothing to do")
        return TrainResult(run.path, 0, state.get("best_val_loss"), 0.0, False)
    echo(
        f"{model.count_params():,} parameters; {sum(ev.series.n_stations for ev in events)} "
        f"series, {len(windows['train']):,} train / {len(windows['validation']):,} validation "
        f"windows; {len(train)} batches/epoch; run dir {run.path}"
    )
    start, interrupted, history = time.perf_counter(), False, None
    try:
        history = model.fit(
            train,
            validation_data=validation,
            epochs=cfg.train.epochs,
            initial_epoch=initial_epoch,
            verbose=verbose,
            callbacks=training_callbacks(run, cfg, resume=resume, state=state),
        )
    except KeyboardInterrupt:
        interrupted = True
        echo(
            f"\ninterrupted: the last completed epoch is saved in {run.checkpoint}; continue "
            "with --resume"
        )
    seconds = time.perf_counter() - start
    final = run.read_state()
    if history is not None and not run.model.exists():
        raise NowcastError(f"training produced no finite validation loss (see {run.history.name})")
    epochs_run = int(final.get("epoch", initial_epoch)) - initial_epoch
    return TrainResult(run.path, epochs_run, final.get("best_val_loss"), seconds, interrupted)
