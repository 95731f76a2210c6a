"""The batch config (``nowcast batch``): a range of issue times, methods, outputs, maps.

:func:`load_batch_config` reads it like the experiment config (typed, every key checked).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from nowcast.config.experiment import KindChoice
from nowcast.config.loading import (
    apply_overrides,
    build_dataclass,
    expand_path,
    read_yaml,
    require,
    resolve_path,
    to_plain,
)
from nowcast.conventions import as_interval
from nowcast.distribution import ProductRequest
from nowcast.errors import ConfigError, NowcastError
from nowcast.region import parse_region
from nowcast.verify import DEFAULT_SCALES


@dataclass(frozen=True)
class BatchRenderConfig:
    """Maps per issue time in a batch: on/off, which leads (1-based; default: the renderer's
    choice), with the observations beside the forecast, the offline map-data folder, and
    whether Cartopy may download missing Natural Earth layers (network; off by default)."""

    enabled: bool = True
    leads: tuple[int, ...] | None = None
    truth: bool = True
    map_data: str | None = None
    download_map_data: bool = False


@dataclass(frozen=True)
class BatchConfig:
    """A batch of forecasts over a range of issue times (``nowcast batch``).

    ``mode``: ``operational`` forecasts (and renders) every issue time, one file per issue
    time and method; ``backfill`` forecasts every issue time with each method, then verifies
    them all together (``thresholds``: default by kind, see
    :func:`nowcast.verify.default_thresholds`; ``scales``; ``report_plots``: PNG plots in the
    report besides CSV/Markdown). ``kind``: ``auto`` (from the inputs' units), or
    ``precipitation``/``temperature``. ``inputs``: archive files, folders or globs.
    ``methods``: forecast method names (``convlstm`` needs ``model``). ``start``/``end``: ISO
    times (default: the first issue time with enough input frames / the last archive time);
    ``every``: the issue-time spacing (``10min``; default: the archive's step).

    Probabilistic products (as ``nowcast predict``'s options; written by the
    probabilistic methods of ``methods``, e.g. ``steps``, into their forecast files, while
    deterministic methods write their single forecast; at least one method must be
    probabilistic when any is set): ``members`` (ensemble members written), ``seed``,
    ``probabilities`` (exceedance thresholds, increasing, in the data's units),
    ``quantiles`` (levels in (0, 1), increasing), ``deterministic`` (``median``, the
    default, or ``sharp``: the main variable). See :meth:`products`.

    ``tile``: the trained model's inference in tiles (``auto``, ``none`` or a size in
    pixels; as ``nowcast predict --tile``); ``region``: forecast only this box
    (``W,S,E,N`` in degrees, or the grid's coordinates with their units, e.g.
    ``480,75,840,300km``; as ``nowcast predict --region``).
    """

    name: str = "batch"
    mode: Literal["operational", "backfill"] = "operational"
    inputs: tuple[str, ...] = ()
    variable: str | None = None
    kind: KindChoice = "auto"
    methods: tuple[str, ...] = ("extrapolation",)
    model: str | None = None
    n_leads: int = 12
    start: str | None = None
    end: str | None = None
    every: str | None = None
    output: str = "batch-output"
    workers: int = 2
    thresholds: tuple[float, ...] | None = None
    scales: tuple[int, ...] = DEFAULT_SCALES
    report_plots: bool = True
    render: BatchRenderConfig = field(default_factory=BatchRenderConfig)
    members: int | None = None
    seed: int | None = None
    probabilities: tuple[float, ...] = ()
    quantiles: tuple[float, ...] = ()
    deterministic: Literal["median", "sharp"] | None = None
    tile: int | str = "auto"
    region: str | None = None

    def products(self) -> ProductRequest | None:
        """The probabilistic products asked for (None when none is)."""
        try:
            request = ProductRequest(
                members=self.members,
                seed=self.seed,
                probabilities=self.probabilities,
                quantiles=self.quantiles,
                deterministic=self.deterministic,
            )
        except NowcastError as exc:
            raise ConfigError(str(exc)) from None
        return request if request.asked else None

    def validate(self) -> BatchConfig:
        """Check cross-field rules (times parse, leads fit); returns ``self``."""
        require(len(self.inputs) >= 1, "inputs: give at least one archive file, folder or glob")
        require(len(self.methods) >= 1, "methods: give at least one forecast method")
        require(len(set(self.methods)) == len(self.methods), "methods: each method at most once")
        require(
            "convlstm" not in self.methods or self.model is not None,
            "methods: convlstm needs model (a run directory or a shipped model name)",
        )
        require(
            self.model is None or "convlstm" in self.methods,
            "model is set but methods has no convlstm",
        )
        require(self.n_leads >= 1, "n_leads must be >= 1")
        require(self.workers >= 1, "workers must be >= 1")
        require(all(math.isfinite(t) for t in self.thresholds or ()), "thresholds must be numbers")
        require(all(s >= 1 for s in self.scales), "scales must be >= 1")
        self.products()  # members, seed, probabilities, quantiles, deterministic
        tile = self.tile
        require(
            tile in ("auto", "none") or (str(tile).isdigit() and int(tile) >= 1),
            f"tile: {tile!r} is not auto, none or a size in pixels (e.g. 512)",
        )
        require(
            tile == "auto" or "convlstm" in self.methods,
            "tile is set but methods has no convlstm (the trained model)",
        )
        if self.region is not None:
            try:
                parse_region(self.region, option="region:")
            except NowcastError as exc:
                raise ConfigError(str(exc)) from None
        leads = self.render.leads or ()
        require(
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
            require(
                times["start"] <= times["end"], f"start ({self.start}) is after end ({self.end})"
            )
        if self.every is not None:
            try:
                as_interval(self.every, "every:")  # with its unit: "5" is an error, not 5 ns
            except NowcastError as exc:
                raise ConfigError(str(exc)) from None
        return self

    def to_dict(self) -> dict[str, Any]:
        return to_plain(dataclasses.asdict(self))


def load_batch_config(
    path: str | Path | None = None, overrides: typing.Iterable[str] = ()
) -> BatchConfig:
    """Load a YAML batch config, apply ``key=value`` overrides (``render.leads=[1,6]``), validate.

    Relative ``inputs``, ``model`` and ``render.map_data`` are resolved against the config
    file's folder when they exist there, else against the working directory (``output``
    is always relative to the working directory). ``~`` and ``$VARIABLES`` are expanded in
    every path.
    """
    values = read_yaml(path) if path is not None else {}
    values = apply_overrides(values, overrides)
    if not isinstance(values, dict):  # pragma: no cover - read_yaml guarantees a mapping
        raise ConfigError("a batch config must be a YAML mapping")
    cfg = build_dataclass(BatchConfig, values).validate()
    cfg = dataclasses.replace(cfg, output=expand_path(cfg.output))  # ~ and $VARIABLES
    if path is None:
        resolve = expand_path
    else:
        base = Path(path).resolve().parent

        def resolve(entry: str) -> str:
            return resolve_path(entry, base)

    render = cfg.render
    if render.map_data is not None:
        render = dataclasses.replace(render, map_data=resolve(render.map_data))
    return dataclasses.replace(
        cfg,
        inputs=tuple(resolve(e) for e in cfg.inputs),
        model=resolve(cfg.model) if cfg.model is not None else None,
        render=render,
    )
