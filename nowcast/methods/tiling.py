"""Tiled inference: the network run on overlapping tiles, stitched, equal to one pass.

The encoder-forecaster is fully convolutional, so an output pixel depends only on the
inputs within a finite distance, its **receptive field** (:func:`receptive_field`, read off
the model's layers: each convolution adds its kernel's half-width, and a recurrent layer
adds it at every time step it runs, the encoder's ``t_in`` steps and the forecaster's
``t_out`` steps in series; downsampling by ``b`` works in blocks of ``b`` pixels, and the
skip head's 3 x 3 convolution adds one more pixel). A tile read with a **halo** at least
that wide around the part it keeps (its core) gives, in its core, exactly what the whole
grid gives: the zero padding at the tile's cut edges reaches no further in than the halo.

Tiles are laid on the model's block grid (the ``b x b`` blocks of its space-to-depth, whose
phase :class:`~nowcast.model.layers.PadToMultiple` sets from the grid's size), so every
tile sees the same blocks as the whole grid; a tile at the domain edge is cut so that the
model pads it exactly as it pads the whole grid. The result therefore equals untiled
inference everywhere, the domain edges included, to float rounding
(``tests/test_tiling.py``).

:func:`tile_plan` lays the tiles, :func:`run_tiled` runs a network on them (a tile whose
inputs equal an earlier tile's, e.g. no-data or dry areas, is computed once), and
:func:`choose_core` picks the tile size for ``tile="auto"`` from the grid size and the
memory: untiled when the pass fits :func:`memory_budget`, else the largest square tiles
that do (:attr:`ReceptiveField.bytes_per_pixel`, an estimate of a pass's memory per pixel
from the model's tensors).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nowcast.errors import NowcastError
from nowcast.methods.receptive import (  # noqa: F401  (tiling's names, one import)
    ReceptiveField,
    TilingUnsupported,
    receptive_field,
)

#: ``tile=`` spellings: ``auto`` (from the grid size and memory), ``none`` (one pass).
TILE_CHOICES = ("auto", "none")
#: Memory one network pass may take under ``tile="auto"`` (bytes), unless
#: ``NOWCAST_TILE_MEMORY`` (MiB) says otherwise; never more than a quarter of the memory
#: available when the forecast starts (:func:`memory_budget`).
DEFAULT_PASS_MEMORY = 2048 * 2**20


# --------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Tile:
    """One tile: ``read`` the pixels a pass sees, ``keep`` the pixels it gives (both in the
    grid's ``(y, x)`` index), ``inner`` the kept pixels within the tile."""

    read: tuple[slice, slice]
    keep: tuple[slice, slice]

    @property
    def inner(self) -> tuple[slice, slice]:
        return tuple(
            slice(k.start - r.start, k.stop - r.start) for k, r in zip(self.keep, self.read)
        )


def _axis(size: int, core: int, halo: int, block: int) -> list[tuple[slice, slice]]:
    """``(read, keep)`` spans along one axis of ``size`` pixels: cores of about ``core``
    pixels on the block grid, each read with ``halo`` pixels beyond it (see module doc)."""
    pad = (-size) % block
    phase = pad // 2  # PadToMultiple: blocks start at -phase (pad // 2 zeros before pixel 0)
    blocks = (size + pad) // block
    n = max(1, -(-blocks * block // core))
    n = min(n, blocks)
    bounds = [round(i * blocks / n) for i in range(n + 1)]  # in blocks
    spans = []
    for i in range(n):
        k0 = 0 if i == 0 else bounds[i] * block - phase
        k1 = size if i == n - 1 else bounds[i + 1] * block - phase
        r0, r1 = max(0, k0 - halo), min(size, k1 + halo)
        for _ in range(3):  # snapping may reach an edge, which changes the rule
            before = (r0, r1)
            r0, r1 = _snap(r0, r1, size, block, phase, pad - phase)
            if (r0, r1) == before:
                break
        spans.append((slice(r0, r1), slice(k0, k1)))
    return spans


def _snap(r0: int, r1: int, size: int, block: int, phase: int, end: int) -> tuple[int, int]:
    """A read span ``[r0, r1)`` widened so that the model's own padding of the tile puts
    its blocks where the whole grid's are (``phase`` zeros before pixel 0 and ``end``
    after the last, :class:`~nowcast.model.layers.PadToMultiple` padding ``pad // 2``
    before a tile and the rest after)."""
    if 0 < r0 and r1 < size:  # both ends cut: whole blocks, no padding
        r0 = (r0 + phase) // block * block - phase
        r1 = -(-(r1 + phase) // block) * block - phase
    elif r0 == 0 and r1 < size:  # the model must pad 2 * phase: phase before pixel 0
        r1 = _round_to(r1, -2 * phase, block, up=True)
    elif r0 > 0 and r1 == size:  # the model must pad `end` after: 2 * end - 1 in all
        r0 = _round_to(r0, size + max(0, 2 * end - 1), block, up=False)
    return max(0, r0), min(size, r1)


def _round_to(value: int, residue: int, block: int, *, up: bool) -> int:
    """The nearest integer to ``value`` (at or above with ``up``) congruent to ``residue``."""
    shift = (residue - value) % block
    return value + shift if up else value - ((value - residue) % block)


def tile_plan(
    shape: tuple[int, int], core: int | tuple[int, int], field: ReceptiveField
) -> list[Tile]:
    """The tiles of a ``(y, x)`` grid with cores of at most about ``core`` pixels (one size,
    or ``(y, x)``; rounded to the model's blocks) and ``field``'s halo; one tile when the
    grid fits one core."""
    cy, cx = (core, core) if isinstance(core, int | np.integer) else core
    cy, cx = (max(field.block, int(c) // field.block * field.block) for c in (cy, cx))
    ys = _axis(shape[0], cy, field.halo, field.block)
    xs = _axis(shape[1], cx, field.halo, field.block)
    return [Tile((ry, rx), (ky, kx)) for ry, ky in ys for rx, kx in xs]


def check_plan(plan: Sequence[Tile], shape: tuple[int, int], field: ReceptiveField) -> None:
    """Assert that the cores cover the grid once and each is ``field.radius`` from a cut."""
    covered = np.zeros(shape, dtype=np.int8)
    for tile in plan:
        covered[tile.keep] += 1
        for axis, (r, k) in enumerate(zip(tile.read, tile.keep)):
            if r.start > 0:
                assert k.start - r.start >= field.radius, tile
            if r.stop < shape[axis]:
                assert r.stop - k.stop >= field.radius, tile
    assert (covered == 1).all(), "tile cores must cover the grid exactly once"


# --------------------------------------------------------------------- running


def run_tiled(
    network: Callable[[np.ndarray], np.ndarray], x: np.ndarray, plan: Sequence[Tile]
) -> np.ndarray:
    """``network`` (``(1, t, y, x, c)`` -> ``(1, t_out, y, x, K)``) over the tiles of
    ``plan``, stitched. Tiles whose inputs are byte for byte the same (no-data, dry areas)
    are computed once."""
    groups: dict[tuple, list[Tile]] = {}
    for tile in plan:
        part = np.ascontiguousarray(x[:, :, tile.read[0], tile.read[1]])
        key = (part.shape, hashlib.blake2b(part.tobytes(), digest_size=16).digest())
        groups.setdefault(key, []).append(tile)
    out = None
    for tiles in groups.values():
        first = tiles[0]
        y = np.asarray(network(np.ascontiguousarray(x[:, :, first.read[0], first.read[1]])))
        if out is None:
            out = np.empty(y.shape[:2] + x.shape[2:4] + y.shape[4:], dtype=y.dtype)
        for tile in tiles:
            out[:, :, tile.keep[0], tile.keep[1]] = y[:, :, tile.inner[0], tile.inner[1]]
    assert out is not None
    return out


# --------------------------------------------------------------------- choosing


def parse_tile(value) -> str | int:
    """``auto``, ``none`` or a tile size in pixels (an int >= 1); one-line errors."""
    if isinstance(value, bool):
        raise NowcastError(f"tile: {value!r} is not auto, none or a size in pixels")
    if value is None:
        return "none"
    if isinstance(value, int | np.integer):
        size = int(value)
    else:
        text = str(value).strip().lower()
        if text in TILE_CHOICES:
            return text
        try:
            size = int(text)
        except ValueError:
            raise NowcastError(
                f"tile: {value!r} is not auto, none or a size in pixels (e.g. 512)"
            ) from None
    if size < 1:
        raise NowcastError(f"tile: {size} is not a size in pixels (give at least 1)")
    return size


def memory_budget() -> int:
    """Bytes one network pass may take under ``tile="auto"``: ``NOWCAST_TILE_MEMORY`` (MiB)
    or :data:`DEFAULT_PASS_MEMORY`, and at most a quarter of the memory available now."""
    text = os.environ.get("NOWCAST_TILE_MEMORY")
    try:
        budget = int(float(text) * 2**20) if text else DEFAULT_PASS_MEMORY
    except ValueError:
        raise NowcastError(
            f"NOWCAST_TILE_MEMORY={text!r} is not a number of MiB (e.g. 1024)"
        ) from None
    if budget <= 0:
        raise NowcastError(f"NOWCAST_TILE_MEMORY={text!r} must be a positive number of MiB")
    from nowcast.methods.run import available_memory

    available = available_memory()
    return min(budget, available // 4) if available else budget


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


#: What one more network pass costs beyond its pixels (Keras' predict set-up, kernels planned
#: for a new shape), in pixels' worth: it keeps :func:`choose_core` from many small tiles.
PASS_OVERHEAD_PIXELS = 20_000


def choose_core(
    shape: tuple[int, int], field: ReceptiveField, budget: int | None = None
) -> tuple[int, int] | None:
    """The tile cores ``(y, x)`` for ``tile="auto"``: None (untiled) when one pass over the
    grid fits ``budget`` bytes (:func:`memory_budget`), else the layout of ``ny x nx`` tiles
    whose largest pass (halo included) fits it and which computes the fewest pixels, halos
    included (strips when the grid is narrow); tiles of the halo's size when none fits."""
    budget = memory_budget() if budget is None else budget
    ny, nx = shape
    if ny * nx * field.bytes_per_pixel <= budget:
        return None
    area, h, b = budget / field.bytes_per_pixel, field.halo, field.block
    best = None
    for ty in range(1, min(64, -(-ny // b)) + 1):
        cy = _ceil(_ceil(ny, ty), b) * b  # the core, whole blocks
        for tx in range(1, min(64, -(-nx // b)) + 1):
            cx = _ceil(_ceil(nx, tx), b) * b
            if (cy + h * min(2, ty - 1)) * (cx + h * min(2, tx - 1)) > area:
                continue
            cost = (ny + 2 * h * (ty - 1)) * (nx + 2 * h * (tx - 1))
            cost += ty * tx * PASS_OVERHEAD_PIXELS
            if best is None or cost < best[0]:
                best = (cost, (cy, cx))
            break  # more tiles across only add halos
    if best is None:
        return (max(h, b), max(h, b))
    return best[1]


def check_tile_size(size: int, field: ReceptiveField, model: str) -> None:
    """A tile smaller than the model's halo is refused (one line)."""
    if size < field.halo:
        raise NowcastError(
            f"tile: {size} pixels is smaller than model {model}'s halo ({field.halo} pixels, "
            f"its receptive field): give at least {field.halo}, auto or none"
        )
