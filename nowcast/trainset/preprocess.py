"""Crop, coarsen, transform and normalise archives; a serialisable :class:`Preprocessor`.

``crop`` and ``coarsen`` work lazily on archives in the convention of
:mod:`nowcast.conventions` (dims ``time, y, x``). The transforms map physical values
(precipitation in mm h-1, temperature in K) to the model's space and back:

* ``log``:  ``z = log(R + offset)``;       inverse ``R = max(exp(z) - offset, 0)``
* ``dbr``:  ``z = 10 log10(max(R, floor))``; inverse ``R = 10**(z / 10)``, and 0 where
  ``z`` is at or below the floor's dBR (rates at or below the floor are "no rain")
* ``zscore`` and ``none``: identity (``zscore`` always normalises; see below)

A :class:`Preprocessor` adds normalisation statistics (mean and standard deviation of the
transformed field, fitted on the training period only) and the ``fill_value`` written
where data are missing: the normalised transform of 0 mm h-1 for precipitation, 0 (the
mean) for temperature.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from nowcast.config import PreprocessConfig
from nowcast.config.experiment import check_transform
from nowcast.conventions import TIME, X, Y
from nowcast.errors import ConfigError, DataError
from nowcast.fileio import write_atomic

TRANSFORMS = ("log", "dbr", "zscore", "none")


# --------------------------------------------------------------------------- grid ops


def crop(
    da: xr.DataArray, *, x: tuple[float, float] | None = None, y: tuple[float, float] | None = None
) -> xr.DataArray:
    """Keep cells whose centre lies in ``[min, max]`` of ``x`` and/or ``y`` (native coordinates).

    Lazy (an index slice). Raises :class:`DataError` when the crop selects no cell.
    """
    index = {}
    for dim, rng in ((X, x), (Y, y)):
        if rng is None:
            continue
        lo, hi = float(rng[0]), float(rng[1])
        coord = np.asarray(da[dim].values, dtype="float64")
        inside = np.nonzero((coord >= lo) & (coord <= hi))[0]
        if inside.size == 0:
            raise DataError(
                f"crop {dim}=({lo:g}, {hi:g}) selects nothing: the grid's {dim} spans "
                f"{coord.min():g} .. {coord.max():g}"
            )
        index[dim] = slice(int(inside[0]), int(inside[-1]) + 1)
    return da.isel(index) if index else da


def coarsen(da: xr.DataArray, factor: int) -> xr.DataArray:
    """Block mean over ``factor x factor`` cells, ignoring NaN (an all-NaN block stays NaN).

    Lazy; a trailing partial block is dropped (``boundary="trim"``). Coordinates become
    the block centres; attrs and scalar coords are kept.
    """
    factor = int(factor)
    if factor < 1:
        raise ConfigError(f"coarsen factor must be >= 1, got {factor}")
    if factor == 1:
        return da
    if da.sizes[Y] < factor or da.sizes[X] < factor:
        raise DataError(f"cannot coarsen a {da.sizes[Y]} x {da.sizes[X]} grid by {factor}")
    out = da.coarsen({Y: factor, X: factor}, boundary="trim").mean(keep_attrs=True)
    return out.astype(da.dtype, copy=False)


# --------------------------------------------------------------------------- transforms


def forward(values, *, transform: str, log_offset: float = 0.01, dbr_floor: float = 0.1):
    """Physical values -> transformed values (NumPy arrays or xarray objects; NaN stays NaN)."""
    if transform == "log":
        return np.log(values + log_offset)
    if transform == "dbr":
        return 10.0 * np.log10(np.maximum(values, dbr_floor))
    if transform in ("zscore", "none"):
        return values
    raise ConfigError(f"unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})")


def inverse(values, *, transform: str, log_offset: float = 0.01, dbr_floor: float = 0.1):
    """Transformed values -> physical values (inverse of :func:`forward`, see module doc)."""
    if transform == "log":
        return np.maximum(np.exp(values) - log_offset, 0.0)
    if transform == "dbr":
        floor_db = 10.0 * math.log10(dbr_floor)
        rate = 10.0 ** (values / 10.0)
        return (
            rate.where(~(values <= floor_db), 0.0)
            if isinstance(rate, xr.DataArray)
            else np.where(values <= floor_db, 0.0, rate)
        )
    if transform in ("zscore", "none"):
        return values
    raise ConfigError(f"unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})")


# --------------------------------------------------------------------------- preprocessor


@dataclass
class Preprocessor:
    """Settings from :class:`PreprocessConfig` plus fitted normalisation statistics.

    ``encode`` maps physical frames to the model's normalised float32 values with NaN
    replaced by ``fill_value`` and a valid mask; ``decode`` maps model output back.
    """

    kind: str = "precipitation"
    transform: str = "log"
    log_offset: float = 0.01
    dbr_floor: float = 0.1
    crop_x: tuple[float, float] | None = None
    crop_y: tuple[float, float] | None = None
    coarsen: int = 1
    normalise: bool = True
    mean: float = 0.0
    std: float = 1.0
    fill_value: float = 0.0

    # ---- construction

    @classmethod
    def from_config(cls, cfg: PreprocessConfig, *, kind: str = "precipitation") -> Preprocessor:
        """Settings only (identity statistics); see :meth:`fit`."""
        if cfg.transform not in TRANSFORMS:
            raise ConfigError(f"preprocess.transform: unknown {cfg.transform!r}")
        check_transform(cfg.transform, kind=kind)
        pre = cls(
            kind=kind,
            transform=cfg.transform,
            log_offset=float(cfg.log_offset),
            dbr_floor=float(cfg.dbr_floor),
            crop_x=tuple(cfg.crop_x) if cfg.crop_x is not None else None,
            crop_y=tuple(cfg.crop_y) if cfg.crop_y is not None else None,
            coarsen=int(cfg.coarsen),
            normalise=bool(cfg.normalise) or cfg.transform == "zscore",
        )
        pre.fill_value = pre._fill()
        return pre

    @classmethod
    def fit(
        cls, arrays: list[xr.DataArray], cfg: PreprocessConfig, *, kind: str = "precipitation"
    ) -> Preprocessor:
        """Fit mean/std of the transformed field over ``arrays`` (training period only).

        ``arrays`` are raw archives (or time slices of them); they are prepared (crop,
        coarsen) here. The statistics are built lazily and evaluated in one
        ``dask.compute`` call, streaming chunk by chunk; NaN cells are ignored.
        """
        pre = cls.from_config(cfg, kind=kind)
        if not arrays:
            raise DataError("no training data to fit the normalisation statistics on")
        tasks = []
        for da in arrays:
            data = pre.prepare(da if da.chunks is not None else da.chunk({TIME: 1})).data
            tasks += [dask.delayed(pre._moments)(block) for block in data.to_delayed().ravel()]
        # one task per chunk, each reduced at once to three numbers: memory stays a few chunks
        (computed,) = dask.compute(tasks)
        count = sum(float(c) for c, _, _ in computed)
        if count == 0:
            raise DataError(
                "the training period has no valid (non-NaN) value to fit the normalisation on"
            )
        mean = sum(float(s) for _, s, _ in computed) / count
        var = max(sum(float(q) for _, _, q in computed) / count - mean * mean, 0.0)
        # Kept even when normalise=False (then not applied; temperature fills with the mean).
        pre.mean = mean
        pre.std = math.sqrt(var) if var > 1e-12 else 1.0
        pre.fill_value = pre._fill()
        return pre

    def _moments(self, block: np.ndarray) -> tuple[float, float, float]:
        """(count, sum, sum of squares) of the valid transformed values of ``block``."""
        z = np.asarray(self.forward(np.asarray(block, dtype="float32")), dtype="float64")
        z = z[np.isfinite(z)]
        return float(z.size), float(z.sum()), float(np.dot(z, z))

    def _fill(self) -> float:
        if self.kind == "precipitation":
            return float(self.normalise_values(np.zeros(1, dtype="float32"))[0])
        return float(self.normalise_values(np.full(1, self.mean, dtype="float64"))[0])

    # ---- physical-space operations

    def prepare(self, da: xr.DataArray) -> xr.DataArray:
        """Crop and coarsen (lazy, physical units)."""
        da = crop(da, x=self.crop_x, y=self.crop_y)
        return coarsen(da, self.coarsen)

    def forward(self, values):
        return forward(
            values, transform=self.transform, log_offset=self.log_offset, dbr_floor=self.dbr_floor
        )

    def inverse(self, values):
        return inverse(
            values, transform=self.transform, log_offset=self.log_offset, dbr_floor=self.dbr_floor
        )

    # ---- model-space operations

    def normalise_values(self, values: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """Physical -> normalised float32, NaN kept where the input is NaN.

        ``out``: a float32 array of ``values``' shape to write into (returned), e.g. a slot of
        a batch; the same values as without it, one pass per operation and no temporaries.
        """
        values = np.asarray(values, dtype="float32")
        if out is None:
            out = np.empty(values.shape, dtype="float32")
        if self.transform == "log":  # the operations of forward(), in place
            np.add(values, np.float32(self.log_offset), out=out)
            np.log(out, out=out)
        elif self.transform == "dbr":
            np.maximum(values, np.float32(self.dbr_floor), out=out)
            np.log10(out, out=out)
            out *= np.float32(10.0)
        else:
            np.copyto(out, self.forward(values), casting="same_kind")
        if self.normalise:
            out -= np.float32(self.mean)
            out *= np.float32(1.0 / self.std)
        return out

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Physical values -> (normalised float32, NaN set to ``fill_value``; valid mask 1/0)."""
        z = self.normalise_values(values)
        valid = np.isfinite(z)
        z[~valid] = self.fill_value
        return z, valid.astype("float32")

    def decode(self, values: np.ndarray) -> np.ndarray:
        """Normalised model values -> physical values (float32)."""
        z = np.asarray(values, dtype="float64")
        if self.normalise:
            z = z * self.std + self.mean
        return np.asarray(self.inverse(z), dtype="float32")

    # ---- serialisation

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("crop_x", "crop_y"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Preprocessor:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"preprocessor: unknown keys {sorted(unknown)}")
        values = dict(values)
        for key in ("crop_x", "crop_y"):
            if values.get(key) is not None:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    def save(self, path: str | Path) -> None:
        """Write as JSON, atomically."""
        write_atomic(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"preprocessor file not found: {path}")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg})") from None
        return cls.from_dict(values)
