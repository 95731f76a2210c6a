"""Typed experiment configuration, loaded from YAML and validated.

A config is a tree of frozen dataclasses. :func:`load_config` reads YAML, applies
``--set section.key=value`` overrides and checks every key and type: an unknown or
mistyped key is a :class:`~nowcast.errors.ConfigError` that names it
(``model.filterz``), before any data is read or any training starts.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from nowcast.errors import ConfigError

Kind = Literal["precipitation", "temperature"]
Transform = Literal["log", "dbr", "zscore", "none"]


@dataclass(frozen=True)
class DataConfig:
    """Where the archive is and which variable to read.

    ``events``: each entry is one archive (a directory, a glob, or one file); events may
    have different grids. ``kind`` picks the physical handling (accumulation to rate for
    precipitation) and the default transform.
    """

    events: tuple[str, ...] = ()
    variable: str | None = None
    kind: Kind = "precipitation"


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
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass(frozen=True)
class ModelConfig:
    """ConvLSTM encoder-forecaster (Shi et al. 2015)."""

    filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    downsample: int = 4
    downsample_mode: Literal["space_to_depth", "conv"] = "space_to_depth"
    cell: Literal["stock", "fused"] = (
        "fused"  # same maths as ConvLSTM2D, faster (README benchmarks)
    )
    channels: int = 1
    residual: bool = False  # predict the change from the last input frame (starts at persistence)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    learning_rate: float = 1e-3
    lr_schedule: Literal["constant", "cosine", "plateau"] = "plateau"
    early_stopping_patience: int = 5
    loss: Literal["mse", "mae", "balanced_mse", "balanced_mae"] = "mse"
    mixed_precision: Literal["none", "bfloat16", "float16"] = "none"
    seed: int = 0
    # Data-parallel training over several devices with Keras' distribution API
    # (JAX backend only in Keras 3); devices: how many (None = all visible).
    data_parallel: bool = False
    devices: int | None = None


@dataclass(frozen=True)
class Config:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> Config:
        """Check cross-field rules; returns ``self`` so calls chain."""
        s, p = self.sampler, self.preprocess
        _require(s.t_in >= 1, "sampler.t_in must be >= 1")
        _require(s.t_out >= 1, "sampler.t_out must be >= 1")
        _require(s.stride >= 1, "sampler.stride must be >= 1")
        _require(s.batch_size >= 1, "sampler.batch_size must be >= 1")
        _require(s.patch_size is None or s.patch_size >= 1, "sampler.patch_size must be >= 1")
        _require(0 <= s.min_wet_fraction < 1, "sampler.min_wet_fraction must be in [0, 1)")
        sp = s.split
        _require(
            0 <= sp.validation < 1 and 0 <= sp.test < 1, "sampler.split fractions must be in [0, 1)"
        )
        _require(sp.validation + sp.test < 1, "sampler.split.validation + test must be < 1")
        both = set(sp.holdout_events) & set(sp.validation_events)
        _require(
            not both, f"sampler.split: {sorted(both)} cannot be both holdout and validation events"
        )
        _require(p.coarsen >= 1, "preprocess.coarsen must be >= 1")
        for name in ("crop_x", "crop_y"):
            rng = getattr(p, name)
            _require(
                rng is None or rng[0] < rng[1],
                f"preprocess.{name} must be (min, max) with min < max",
            )
        m = self.model
        _require(
            len(m.filters) >= 1 and all(f >= 1 for f in m.filters), "model.filters must be positive"
        )
        _require(
            m.kernel_size >= 1 and m.kernel_size % 2 == 1, "model.kernel_size must be odd and >= 1"
        )
        _require(m.downsample >= 1, "model.downsample must be >= 1")
        _require(m.channels >= 1, "model.channels must be >= 1")
        t = self.train
        _require(t.epochs >= 1, "train.epochs must be >= 1")
        _require(t.learning_rate > 0, "train.learning_rate must be > 0")
        _require(t.devices is None or t.devices >= 1, "train.devices must be >= 1")
        if t.data_parallel and t.devices and s.batch_size % t.devices:
            raise ConfigError(
                f"sampler.batch_size={s.batch_size} must be a multiple of "
                f"train.devices={t.devices} for data-parallel training"
            )
        if self.data.kind == "temperature" and p.transform in ("log", "dbr"):
            raise ConfigError(
                f"preprocess.transform={p.transform!r} is for precipitation; use 'zscore' for "
                "temperature"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the dataclass's form."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: {value!r} does not fit {_type_name(tp)}"
        )
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{key}: {value!r} is not one of {allowed}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, (datetime.date, datetime.datetime)):  # YAML reads bare dates as dates
            return value.isoformat()
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown config key {full!r} (known here: {known})")
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a plain mapping."""
    if not isinstance(values, dict):
        raise ConfigError("a config must be a YAML mapping of sections")
    return _build(Config, values).validate()


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"model.filters=[16,32]"`` -> ``(["model", "filters"], [16, 32])`` (value read as YAML)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: cannot parse value ({exc.problem})") from None
    return path, value


def apply_overrides(values: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``values`` with each ``section.key=value`` applied."""
    import copy

    out = copy.deepcopy(values)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return values


def load_config(path: str | Path | None = None, overrides: typing.Iterable[str] = ()) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None), apply overrides, validate.

    Relative ``data.events`` entries are resolved against the config file's folder
    when they exist there, else against the working directory.
    """
    values = read_yaml(path) if path is not None else {}
    values = apply_overrides(values, overrides)
    cfg = config_from_dict(values)
    if path is not None:
        base = Path(path).resolve().parent
        split = cfg.sampler.split
        split = dataclasses.replace(
            split,
            holdout_events=tuple(_resolve(e, base) for e in split.holdout_events),
            validation_events=tuple(_resolve(e, base) for e in split.validation_events),
        )
        cfg = dataclasses.replace(
            cfg,
            data=dataclasses.replace(
                cfg.data, events=tuple(_resolve(e, base) for e in cfg.data.events)
            ),
            sampler=dataclasses.replace(cfg.sampler, split=split),
        )
    return cfg


def _resolve(entry: str, base: Path) -> str:
    if "://" in entry or Path(entry).is_absolute():
        return entry
    candidate = base / entry
    if candidate.exists() or (any(ch in entry for ch in "*?[") and list(base.glob(entry))):
        return os.path.normpath(candidate)
    return entry


def dump_config(cfg: Config, path: str | Path) -> None:
    from nowcast.fileio import write_atomic

    write_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# --------------------------------------------------------------------------- batch configs


@dataclass(frozen=True)
class BatchRenderConfig:
    """Maps per issue time in a batch: on/off, which leads (1-based; default: the renderer's
    choice), with the observations beside the forecast, and the offline map-data folder."""

    enabled: bool = True
    leads: tuple[int, ...] | None = None
    truth: bool = True
    map_data: str | None = None


@dataclass(frozen=True)
class BatchConfig:
    """A batch of forecasts over a range of issue times (``nowcast batch``).

    ``mode``: ``operational`` forecasts (and renders) every issue time, one file per issue
    time and method; ``backfill`` forecasts every issue time with each method, then verifies
    them all together (``thresholds``, ``scales``; ``report_plots``: PNG plots in the report
    besides CSV/Markdown). ``inputs``: archive files, folders or globs.
    ``methods``: forecast method names (``convlstm`` needs ``model``). ``start``/``end``: ISO
    times (default: the first issue time with enough input frames / the last archive time);
    ``every``: the issue-time spacing (``10min``; default: the archive's step).
    """

    name: str = "batch"
    mode: Literal["operational", "backfill"] = "operational"
    inputs: tuple[str, ...] = ()
    variable: str | None = None
    kind: Kind = "precipitation"
    methods: tuple[str, ...] = ("extrapolation",)
    model: str | None = None
    n_leads: int = 12
    start: str | None = None
    end: str | None = None
    every: str | None = None
    output: str = "batch-output"
    workers: int = 2
    thresholds: tuple[float, ...] = (0.5, 1.0, 5.0, 10.0)
    scales: tuple[int, ...] = (1, 5, 21)
    report_plots: bool = True
    render: BatchRenderConfig = field(default_factory=BatchRenderConfig)

    def validate(self) -> BatchConfig:
        """Check cross-field rules (times parse, leads fit); returns ``self``."""
        import pandas as pd

        _require(len(self.inputs) >= 1, "inputs: give at least one archive file, folder or glob")
        _require(len(self.methods) >= 1, "methods: give at least one forecast method")
        _require(len(set(self.methods)) == len(self.methods), "methods: each method at most once")
        _require(
            "convlstm" not in self.methods or self.model is not None,
            "methods: convlstm needs model (a run directory or a shipped model name)",
        )
        _require(
            self.model is None or "convlstm" in self.methods,
            "model is set but methods has no convlstm",
        )
        _require(self.n_leads >= 1, "n_leads must be >= 1")
        _require(self.workers >= 1, "workers must be >= 1")
        _require(all(t > 0 for t in self.thresholds), "thresholds must be > 0")
        _require(all(s >= 1 for s in self.scales), "scales must be >= 1")
        leads = self.render.leads or ()
        _require(
            all(1 <= k <= self.n_leads for k in leads),
            f"render.leads must be in 1..n_leads ({self.n_leads})",
        )
        times = {}
        for key in ("start", "end"):
            value = getattr(self, key)
            if value is not None:
                try:
                    times[key] = pd.Timestamp(value)
                except (ValueError, TypeError):
                    raise ConfigError(
                        f"{key}: {value!r} is not a time (use e.g. 2016-07-11T12:00)"
                    ) from None
        if len(times) == 2:
            _require(
                times["start"] <= times["end"], f"start ({self.start}) is after end ({self.end})"
            )
        if self.every is not None:
            try:
                every = pd.Timedelta(self.every)
            except (ValueError, TypeError):
                every = None
            _require(
                every is not None and every > pd.Timedelta(0),
                f"every: {self.every!r} is not a positive time interval (e.g. 10min)",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))


def load_batch_config(
    path: str | Path | None = None, overrides: typing.Iterable[str] = ()
) -> BatchConfig:
    """Load a YAML batch config, apply ``key=value`` overrides (``render.leads=[1,6]``), validate.

    Relative ``inputs``, ``model`` and ``render.map_data`` are resolved against the config
    file's folder when they exist there, else against the working directory (``output``
    is always relative to the working directory).
    """
    values = read_yaml(path) if path is not None else {}
    values = apply_overrides(values, overrides)
    if not isinstance(values, dict):  # pragma: no cover - read_yaml guarantees a mapping
        raise ConfigError("a batch config must be a YAML mapping")
    cfg = _build(BatchConfig, values).validate()
    if path is not None:
        base = Path(path).resolve().parent
        render = cfg.render
        if render.map_data is not None:
            render = dataclasses.replace(render, map_data=_resolve(render.map_data, base))
        cfg = dataclasses.replace(
            cfg,
            inputs=tuple(_resolve(e, base) for e in cfg.inputs),
            model=_resolve(cfg.model, base) if cfg.model is not None else None,
            render=render,
        )
    return cfg
