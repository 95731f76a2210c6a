"""Typed experiment configuration, loaded from YAML and validated.

A config is a tree of frozen dataclasses. :func:`load_config` reads YAML, applies
``--set section.key=value`` overrides and checks every key and type
(:mod:`nowcast.config.loading`): an unknown or mistyped key is a
:class:`~nowcast.errors.ConfigError` that names it (``model.filterz``), before any data is
read or any training starts.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from nowcast.config.loading import (
    apply_overrides,
    build_dataclass,
    expand_path,
    read_yaml,
    require,
    resolve_path,
    to_plain,
)
from nowcast.config.series import SeriesConfig
from nowcast.conventions import Frame
from nowcast.errors import ConfigError
from nowcast.fileio import write_atomic

Kind = Literal["precipitation", "temperature"]
#: A kind or ``auto`` (the data's own, from its units): what commands and batch configs take.
KindChoice = Literal["auto", "precipitation", "temperature"]
Transform = Literal["log", "dbr", "zscore", "none"]


@dataclass(frozen=True)
class SyntheticConfig:
    """A synthetic archive written to the one ``data.events`` path when that is missing (the
    demo config): ``cells: advected`` (:func:`nowcast.archive.synthetic_rain`: cells that
    mostly move) or ``evolving`` (:func:`nowcast.archive.synthetic.evolving_rain`: cells
    that grow, decay and change speed, on a real projection)."""

    n_times: int = 96
    ny: int = 64
    nx: int = 64
    seed: int = 0
    cells: Literal["advected", "evolving"] = "advected"


@dataclass(frozen=True)
class DataConfig:
    """Where the archive is and which variable to read.

    ``events``: each entry is one archive (a directory, a glob, or one file); events may
    have different grids. ``kind`` picks the physical handling (accumulation to rate for
    precipitation) and the default transform. ``synthetic``: generate the (one) event as a
    synthetic archive with these settings when its file does not exist yet.
    """

    events: tuple[str, ...] = ()
    variable: str | None = None
    kind: Kind = "precipitation"
    # where the prepared training stores go (nowcast.trainset.stores; the key keeps its name);
    # None: $XDG_CACHE_HOME/nowcast or ~/.cache/nowcast. Relative paths are resolved against
    # the config file's folder.
    cache_dir: str | None = None
    cache_workers: int | None = None  # processes building the prepared stores (None: all cores)
    synthetic: SyntheticConfig | None = None


@dataclass(frozen=True)
class PreprocessConfig:
    """Crop (in the archive's own coordinates, metres after km conversion, or degrees),
    coarsen by an integer factor (NaN-aware mean), transform and normalise."""

    crop_x: tuple[float, float] | None = None
    crop_y: tuple[float, float] | None = None
    coarsen: int = 1
    transform: Transform = "log"
    log_offset: float = 0.01  # mm h-1, for transform "log": log(R + offset)
    dbr_floor: float = 0.1  # mm h-1, for transform "dbr": 10 log10(max(R, floor))
    normalise: bool = True


@dataclass(frozen=True)
class SplitConfig:
    """Contiguous time blocks per event: [train | validation | test].

    ``test_period`` (ISO start, end) replaces the ``test`` fraction where given;
    ``holdout_events`` are never used for training or validation (test only);
    ``validation_events`` are used whole for validation (for short events whose
    validation block could not hold one window).
    """

    validation: float = 0.15
    test: float = 0.0
    test_period: tuple[str, str] | None = None
    holdout_events: tuple[str, ...] = ()
    validation_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamplerConfig:
    """Sliding windows of ``t_in + t_out`` frames, random spatial crops, batches."""

    t_in: int = 6
    t_out: int = 12
    stride: int = 1
    patch_size: int | None = 128
    batch_size: int = 16
    augment: bool = False
    min_wet_fraction: float = 0.0
    wet_threshold: float = 0.1  # mm h-1
    seed: int = 0
    cache_mb: int = 1024  # bound of the loader's in-memory frame cache (0: no cache)
    # stream train/validation windows from prepared stores under data.cache_dir (the
    # Lagrangian frame always does): for data larger than memory
    prepared: bool = False
    crops_per_read: int = 1  # prepared stores: samples cut from one window read
    shuffle_buffer: int = 0  # prepared stores: samples mixed across train batches (0: none)
    store_dtype: Literal["float32", "float16"] = "float32"  # values in prepared stores
    store_codec: Literal["zstd", "lz4"] = "zstd"  # their compression (lz4: ~3x faster reads)
    workers: int = 1  # loader workers (Keras PyDataset): threads, or processes with
    multiprocessing: bool = False  # multiprocessing: true
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass(frozen=True)
class FlowConfig:
    """Optical flow and advection of the Lagrangian frame (:class:`nowcast.motion.FlowOptions`).

    ``frames``: the last input frames the flow is computed on; ``transform``: ``auto``
    (dBR for rain rates, z-score otherwise), ``dbr`` or ``zscore``; ``rain_threshold``:
    mm h-1, for dBR; ``interp_order``: 0, 1 or 3 for the advection. The defaults are the
    ``extrapolation`` baseline's, so an untrained Lagrangian model reproduces it.
    """

    frames: int = 3
    transform: Literal["auto", "dbr", "zscore"] = "auto"
    rain_threshold: float = 0.1
    interp_order: int = 1


@dataclass(frozen=True)
class ModelConfig:
    """ConvLSTM encoder-forecaster (Shi et al. 2015).

    ``frame``: ``eulerian`` (the network sees the frames as observed) or ``lagrangian``
    (advection-free, as L-CNN, Ritvanen et al. 2023: the inputs are moved along the optical
    flow to the issue time, the network predicts the change in that frame, and its output
    is moved forward lead by lead with the same flow; needs ``residual``). ``head``:
    ``dense`` (a per-pixel layer on the upsampled features) or ``skip`` (a 3 x 3
    convolution on the upsampled features and all input frames at full resolution, so the
    network can shape fine scales). With ``residual`` the output layer starts at zero: an
    untrained model is persistence (Eulerian) or extrapolation (Lagrangian).
    """

    # convlstm: the gridded encoder-forecaster; series: a recurrent network on 1-D series
    # (the ``series:`` section; the other model keys do not apply)
    kind: Literal["convlstm", "series"] = "convlstm"
    filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    downsample: int = 4
    downsample_mode: Literal["space_to_depth", "conv"] = "space_to_depth"
    # fused: same maths as ConvLSTM2D, faster (README benchmarks); gru: a ConvGRU
    cell: Literal["stock", "fused", "gru"] = "fused"
    peephole: bool = False  # fused cell only: Shi et al.'s peephole terms (per channel)
    channels: int = 1
    residual: bool = False  # predict the change from the last input frame (starts at persistence)
    frame: Literal["eulerian", "lagrangian"] = "eulerian"  # a conventions.Frame value
    head: Literal["dense", "skip"] = "dense"
    flow: FlowConfig = field(default_factory=FlowConfig)
    # quantile levels the network predicts per pixel and lead (a predictive distribution,
    # trained with train.loss: pinball); empty: one value (a deterministic model)
    quantiles: tuple[float, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    learning_rate: float = 1e-3
    lr_schedule: Literal["constant", "cosine", "plateau"] = "plateau"
    early_stopping_patience: int = 5
    loss: Literal["mse", "mae", "balanced_mse", "balanced_mae", "quantile", "pinball"] = "mse"
    # loss "quantile": pinball loss on the decoded (physical) values, quantile rising linearly
    # from quantile[0] at the first lead to quantile[1] at the last (0.5: median = MAE)
    quantile: tuple[float, float] = (0.5, 0.5)
    # lead weights proportional to lead ** -lead_discount, mean 1 (0: equal; L-CNN's discount)
    lead_discount: float = 0.0
    # loss "pinball": plus this weight times the pinball loss on the network's own (encoded)
    # values, where light rain weighs as much as heavy rain (0: off; model.losses.PinballLoss)
    pinball_encoded_weight: float = 0.0
    mixed_precision: Literal["none", "bfloat16", "float16"] = "none"
    seed: int = 0
    # Data-parallel training over several devices with Keras' distribution API
    # (JAX backend only in Keras 3); devices: how many (None = all visible).
    data_parallel: bool = False
    devices: int | None = None
    # warm start: copy the weights of every layer whose name and shapes match from this
    # trained model (a run directory or a .keras file) before training
    init_from: str | None = None


@dataclass(frozen=True)
class Config:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    series: SeriesConfig = field(default_factory=SeriesConfig)

    def validate(self) -> Config:
        """Check cross-field rules; returns ``self`` so calls chain."""
        s, p = self.sampler, self.preprocess
        require(
            self.data.synthetic is None or len(self.data.events) <= 1,
            "data.synthetic writes one archive: give at most one data.events path",
        )
        require(s.t_in >= 1, "sampler.t_in must be >= 1")
        require(s.t_out >= 1, "sampler.t_out must be >= 1")
        require(s.stride >= 1, "sampler.stride must be >= 1")
        require(s.batch_size >= 1, "sampler.batch_size must be >= 1")
        require(s.patch_size is None or s.patch_size >= 1, "sampler.patch_size must be >= 1")
        require(0 <= s.min_wet_fraction < 1, "sampler.min_wet_fraction must be in [0, 1)")
        require(
            s.crops_per_read >= 1 and s.batch_size % s.crops_per_read == 0,
            f"sampler.crops_per_read={s.crops_per_read} must divide sampler.batch_size="
            f"{s.batch_size}",
        )
        require(s.shuffle_buffer >= 0, "sampler.shuffle_buffer must be >= 0")
        require(s.workers >= 1, "sampler.workers must be >= 1")
        sp = s.split
        require(
            0 <= sp.validation < 1 and 0 <= sp.test < 1, "sampler.split fractions must be in [0, 1)"
        )
        require(sp.validation + sp.test < 1, "sampler.split.validation + test must be < 1")
        both = set(sp.holdout_events) & set(sp.validation_events)
        require(
            not both, f"sampler.split: {sorted(both)} cannot be both holdout and validation events"
        )
        require(p.coarsen >= 1, "preprocess.coarsen must be >= 1")
        for name in ("crop_x", "crop_y"):
            rng = getattr(p, name)
            require(
                rng is None or rng[0] < rng[1],
                f"preprocess.{name} must be (min, max) with min < max",
            )
        m = self.model
        require(
            len(m.filters) >= 1 and all(f >= 1 for f in m.filters), "model.filters must be positive"
        )
        require(
            m.kernel_size >= 1 and m.kernel_size % 2 == 1, "model.kernel_size must be odd and >= 1"
        )
        require(m.downsample >= 1, "model.downsample must be >= 1")
        require(m.channels >= 1, "model.channels must be >= 1")
        check_cell(m.cell, peephole=m.peephole)
        require(m.flow.frames >= 2, "model.flow.frames must be >= 2")
        require(m.flow.rain_threshold > 0, "model.flow.rain_threshold must be > 0")
        require(m.flow.interp_order in (0, 1, 3), "model.flow.interp_order must be 0, 1 or 3")
        if m.frame == Frame.LAGRANGIAN:
            require(m.residual, "model.frame=lagrangian needs model.residual: true")
            require(
                s.t_in >= m.flow.frames,
                f"model.frame=lagrangian: sampler.t_in={s.t_in} must be >= model.flow.frames="
                f"{m.flow.frames} (the flow is computed on the last input frames)",
            )
        t = self.train
        require(t.epochs >= 1, "train.epochs must be >= 1")
        require(t.learning_rate > 0, "train.learning_rate must be > 0")
        require(t.devices is None or t.devices >= 1, "train.devices must be >= 1")
        require(all(0 < q < 1 for q in t.quantile), "train.quantile values must be in (0, 1)")
        require(t.lead_discount >= 0, "train.lead_discount must be >= 0")
        require(t.pinball_encoded_weight >= 0, "train.pinball_encoded_weight must be >= 0")
        require(
            t.loss == "pinball" or not t.pinball_encoded_weight,
            "train.pinball_encoded_weight goes with train.loss: pinball",
        )
        require(
            (t.loss == "pinball") == bool(m.quantiles),
            "train.loss: pinball goes with model.quantiles (a quantile model), and only with it",
        )
        if t.data_parallel and t.devices and s.batch_size % t.devices:
            raise ConfigError(
                f"sampler.batch_size={s.batch_size} must be a multiple of "
                f"train.devices={t.devices} for data-parallel training"
            )
        if m.kind == "series":  # z-scored series: the gridded transforms do not apply
            self.series.validate()
        else:
            check_transform(p.transform, kind=self.data.kind)
        return self

    def to_dict(self) -> dict[str, Any]:
        return to_plain(dataclasses.asdict(self))


def check_transform(transform: str, *, kind: str) -> None:
    """The log and dBR transforms are for precipitation: a :class:`ConfigError` otherwise."""
    if kind == "temperature" and transform in ("log", "dbr"):
        raise ConfigError(
            f"preprocess.transform={transform!r} is for precipitation; use 'zscore' for temperature"
        )


def check_cell(cell: str, *, peephole: bool) -> None:
    """Peepholes exist for the fused ConvLSTM only: a :class:`ConfigError` otherwise."""
    if peephole and cell != "fused":
        raise ConfigError(f"model.peephole needs model.cell: fused, got model.cell: {cell!r}")


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a plain mapping."""
    if not isinstance(values, dict):
        raise ConfigError("a config must be a YAML mapping of sections")
    return build_dataclass(Config, values).validate()


def load_config(path: str | Path | None = None, overrides: typing.Iterable[str] = ()) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None), apply overrides, validate.

    Relative ``data.events`` entries are resolved against the config file's folder
    when they exist there (always, with ``data.synthetic``: where the archive is written),
    else against the working directory. ``~`` and ``$VARIABLES`` are expanded in every path
    (events, holdout and validation events, ``data.cache_dir``, ``train.init_from``).
    """
    values = read_yaml(path) if path is not None else {}
    values = apply_overrides(values, overrides)
    cfg = config_from_dict(values)
    cfg = _expand_paths(cfg)
    if path is not None:
        base = Path(path).resolve().parent
        split = cfg.sampler.split
        split = dataclasses.replace(
            split,
            holdout_events=tuple(resolve_path(e, base) for e in split.holdout_events),
            validation_events=tuple(resolve_path(e, base) for e in split.validation_events),
        )
        cache_dir = cfg.data.cache_dir
        if cache_dir is not None and "://" not in cache_dir and not Path(cache_dir).is_absolute():
            cache_dir = str(base / cache_dir)
        cfg = dataclasses.replace(
            cfg,
            data=dataclasses.replace(
                cfg.data,
                events=tuple(
                    _local(e, base) if cfg.data.synthetic else resolve_path(e, base)
                    for e in cfg.data.events
                ),
                cache_dir=cache_dir,
            ),
            sampler=dataclasses.replace(cfg.sampler, split=split),
            train=dataclasses.replace(
                cfg.train,
                init_from=resolve_path(cfg.train.init_from, base) if cfg.train.init_from else None,
            ),
        )
    return cfg


def _expand_paths(cfg: Config) -> Config:
    """Every path in ``cfg`` with ``~`` and environment variables expanded."""
    split = cfg.sampler.split
    split = dataclasses.replace(
        split,
        holdout_events=tuple(expand_path(e) for e in split.holdout_events),
        validation_events=tuple(expand_path(e) for e in split.validation_events),
    )
    data = dataclasses.replace(
        cfg.data,
        events=tuple(expand_path(e) for e in cfg.data.events),
        cache_dir=expand_path(cfg.data.cache_dir) if cfg.data.cache_dir is not None else None,
    )
    init_from = expand_path(cfg.train.init_from) if cfg.train.init_from else None
    return dataclasses.replace(
        cfg,
        data=data,
        sampler=dataclasses.replace(cfg.sampler, split=split),
        train=dataclasses.replace(cfg.train, init_from=init_from),
    )


def _local(entry: str, base: Path) -> str:
    return entry if Path(entry).is_absolute() else str((base / entry).resolve())


def dump_config(cfg: Config, path: str | Path) -> None:
    write_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
