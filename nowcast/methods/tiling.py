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
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nowcast.errors import NowcastError

#: ``tile=`` spellings: ``auto`` (from the grid size and memory), ``none`` (one pass).
TILE_CHOICES = ("auto", "none")
#: Memory one network pass may take under ``tile="auto"`` (bytes), unless
#: ``NOWCAST_TILE_MEMORY`` (MiB) says otherwise; never more than a quarter of the memory
#: available when the forecast starts (:func:`memory_budget`).
DEFAULT_PASS_MEMORY = 2048 * 2**20
#: Multiplier on the sum of a pass's tensors for the memory it takes: the shipped radar
#: model's tensors sum to 3.6 KB per pixel, and a pass raised the peak RSS by 2.9-3.0 KB
#: per pixel on torch's CPU backend (384 x 384 and 768 x 768; docs/benchmarks.md, "Tiled
#: inference"), so the sum itself is the estimate, with 20 % to spare.
WORKSPACE_FACTOR = 1.0


class TilingUnsupported(NowcastError):
    """The model has a layer whose receptive field this module cannot derive."""


@dataclass(frozen=True)
class ReceptiveField:
    """What tiling needs to know of a model.

    ``radius``: an output pixel depends on inputs at most this many pixels away (in ``y``
    and in ``x``); ``block``: the model's downsampling (its ``b x b`` blocks);
    ``bytes_per_pixel``: an estimate of one pass's memory per input pixel.
    """

    radius: int
    block: int
    bytes_per_pixel: float

    @property
    def halo(self) -> int:
        """The halo a tile needs: the radius, rounded up to whole blocks."""
        return -(-self.radius // self.block) * self.block


# --------------------------------------------------------------------- receptive field


def receptive_field(model) -> ReceptiveField:
    """The receptive field of a Keras functional model, walked layer by layer.

    Every tensor carries its reach per time step (in its own pixels; None: it depends on
    no input pixel, e.g. the forecaster's zero input) and its scale (1 at full
    resolution, ``b`` after a ``b``-fold downsampling). A layer this module does not know
    is a :class:`TilingUnsupported` error (``tile="auto"`` then runs untiled).
    """
    reach: dict[int, tuple[int, list[int | None]]] = {}
    elements = 0.0  # values per full-resolution pixel, over all tensors of a pass
    block = 1
    for tensor in model.inputs:
        reach[id(tensor)] = (1, [0] * _steps(tensor))
    for op in model.operations:
        kind = type(op).__name__
        for node in op._inbound_nodes:
            inputs = [reach[id(t)] for t in node.arguments.keras_tensors if id(t) in reach]
            if kind == "InputLayer":
                continue
            if len(inputs) != len(node.arguments.keras_tensors):
                raise TilingUnsupported(f"layer {op.name}: an input of unknown reach")
            outputs = _layer_reach(op, kind, node, inputs)
            for tensor, value in zip(node.outputs, outputs):
                reach[id(tensor)] = value
                scale = value[0]
                elements += _steps(tensor) * _channels(tensor, op.name) / scale**2
                block = max(block, scale)
            elements += _internal(op, kind, node, inputs)
    scale, radii = reach[id(model.outputs[0])]
    if scale != 1:
        raise TilingUnsupported("the model's output is not at the input's resolution")
    known = [r for r in radii if r is not None]
    radius = max(known) if known else 0
    return ReceptiveField(int(radius), int(block), 4.0 * WORKSPACE_FACTOR * elements)


def _steps(tensor) -> int:
    shape = tuple(tensor.shape)
    return int(shape[1]) if len(shape) == 5 and shape[1] is not None else 1


def _channels(tensor, name: str) -> int:
    c = tuple(tensor.shape)[-1]
    if c is None:
        raise TilingUnsupported(f"layer {name}: unknown number of channels")
    return int(c)


def _max(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _plus(value: int | None, k: int) -> int | None:
    return None if value is None else value + k


def _pointwise(inputs, steps: int) -> tuple[int, list[int | None]]:
    """Inputs combined pixel by pixel (at the coarsest scale's reach, in its pixels)."""
    scales = {s for s, _ in inputs}
    if len(scales) != 1:
        raise TilingUnsupported("a layer mixes tensors of different resolutions")
    scale = scales.pop()
    lengths = {len(r) for _, r in inputs}
    if lengths == {steps}:
        return scale, [_max([r[t] for _, r in inputs]) for t in range(steps)]
    return scale, [_max([_max(r) for _, r in inputs])] * steps


def _half_width(kernel, name: str) -> int:
    sizes = tuple(int(k) for k in np.atleast_1d(kernel))
    if any(k % 2 == 0 for k in sizes):
        raise TilingUnsupported(f"layer {name}: even kernel {sizes}")
    return max((k - 1) // 2 for k in sizes[-2:])


def _layer_reach(op, kind: str, node, inputs) -> list[tuple[int, list[int | None]]]:
    """The reach of each of a layer's outputs (see :func:`receptive_field`)."""
    outputs = node.outputs
    steps = [_steps(t) for t in outputs]
    if kind in _RECURRENT:
        return _recurrent_reach(op, kind, node, inputs)
    if kind in ("SpaceToDepth", "Conv3D") and _downsamples(op):
        b = int(op.block_size if kind == "SpaceToDepth" else op.strides[-1])
        scale, radii = inputs[0]
        return [(scale * b, [None if r is None else -(-r // b) for r in radii])]
    if kind in ("DepthToSpace", "Conv3DTranspose"):
        b = int(op.block_size if kind == "DepthToSpace" else op.strides[-1])
        if kind == "Conv3DTranspose" and tuple(op.kernel_size[-2:]) != (b, b):
            raise TilingUnsupported(f"layer {op.name}: a transposed convolution that overlaps")
        scale, radii = inputs[0]
        if scale % b:
            raise TilingUnsupported(f"layer {op.name}: upsamples below the input's resolution")
        return [(scale // b, [None if r is None else (r + 1) * b - 1 for r in radii])]
    if kind in ("Conv3D", "Conv2D"):
        if op.padding != "same" or any(s != 1 for s in op.strides):
            raise TilingUnsupported(f"layer {op.name}: only 'same', stride-1 convolutions")
        if any(d != 1 for d in np.atleast_1d(op.dilation_rate)):
            raise TilingUnsupported(f"layer {op.name}: dilated convolution")
        scale, radii = _pointwise(inputs, steps[0])
        k = _half_width(op.kernel_size, op.name)
        if kind == "Conv3D" and int(op.kernel_size[0]) > 1:  # mixes time steps
            radii = [_max(radii)] * steps[0]
        return [(scale, [_plus(r, k) for r in radii])]
    if kind == "PadToMultiple":
        return [inputs[0]]
    if kind == "CropLike":
        return [inputs[0]]
    if kind == "ForecasterInput":
        return [(inputs[0][0], [None] * steps[0])]
    if kind == "FramesAsChannels":
        scale, radii = inputs[0]
        return [(scale, [_max(radii)] * steps[0])]
    if kind == "AddLastFrame":
        (scale, delta), (pscale, past) = inputs
        if scale != pscale:
            raise TilingUnsupported(f"layer {op.name}: mixes resolutions")
        return [(scale, [_max([d, past[-1]]) for d in delta])]
    if kind in _POINTWISE:
        return [_pointwise(inputs, n) for n in steps]
    raise TilingUnsupported(f"layer {op.name} ({kind}): receptive field unknown")


#: Layers that combine their inputs pixel by pixel.
_POINTWISE = {
    "Dense",
    "EinsumDense",
    "Activation",
    "LeakyReLU",
    "ReLU",
    "Add",
    "Subtract",
    "Multiply",
    "Concatenate",
    "QuantileStack",
    "Rescaling",
    "Identity",
    "Dropout",
}

#: Recurrent layers -> convolutions in series per time step, from the input and from the
#: state: a ConvLSTM's gates convolve the input and ``h`` once; a ConvGRU's candidate
#: convolves ``r * h``, whose reset gate ``r`` is itself a convolution of the input and ``h``.
_RECURRENT = {"FusedConvLSTM2D": 1, "DynamicConvLSTM2D": 1, "ConvLSTM2D": 1, "ConvGRU2D": 2}


def _recurrent_reach(op, kind: str, node, inputs):
    if str(getattr(op, "padding", "same")).lower() != "same":
        raise TilingUnsupported(f"layer {op.name}: only padding='same'")
    if any(d != 1 for d in np.atleast_1d(getattr(op, "dilation_rate", 1))):
        raise TilingUnsupported(f"layer {op.name}: dilated convolution")
    if any(s != 1 for s in np.atleast_1d(getattr(op, "strides", 1))):
        raise TilingUnsupported(f"layer {op.name}: strided convolution")
    step = _RECURRENT[kind] * _half_width(op.kernel_size, op.name)
    (scale, sequence), *states = inputs
    if any(s != scale for s, _ in states):
        raise TilingUnsupported(f"layer {op.name}: state and input at different resolutions")
    state = _max([_max(r) for _, r in states]) if states else None
    radii = []
    for x in sequence:  # the state after each step
        state = _max([_plus(x, step), _plus(state, step)])
        radii.append(state)
    out = [(scale, radii if op.return_sequences else [radii[-1]])]
    if op.return_state:
        out += [(scale, [radii[-1]])] * (len(node.outputs) - 1)
    return out


def _downsamples(op) -> bool:
    if type(op).__name__ == "SpaceToDepth":
        return True
    strides = tuple(int(s) for s in op.strides)
    return strides[-1] > 1 and tuple(op.kernel_size[-2:]) == strides[-2:]


def _internal(op, kind: str, node, inputs) -> float:
    """Values per full-resolution pixel a layer holds besides its outputs: a recurrent
    layer's gate pre-activations of every step (prepared at once) and of one step."""
    if kind not in _RECURRENT:
        return 0.0
    scale = inputs[0][0]
    gates = (4 if _RECURRENT[kind] == 1 else 3) * int(op.filters)
    steps = len(inputs[0][1])
    return (steps + 2) * gates / scale**2


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


def tile_plan(shape: tuple[int, int], core: int, field: ReceptiveField) -> list[Tile]:
    """The tiles of a ``(y, x)`` grid with cores of at most about ``core`` pixels (rounded to
    the model's blocks) and ``field``'s halo; one tile when the grid fits one core."""
    core = max(field.block, core // field.block * field.block)
    ys = _axis(shape[0], core, field.halo, field.block)
    xs = _axis(shape[1], core, field.halo, field.block)
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


def choose_core(
    shape: tuple[int, int], field: ReceptiveField, budget: int | None = None
) -> int | None:
    """The core size for ``tile="auto"``: None (untiled) when one pass over the grid fits
    ``budget`` bytes (:func:`memory_budget`), else the largest whose tiles, halo included,
    fit it (at least the halo)."""
    budget = memory_budget() if budget is None else budget
    if shape[0] * shape[1] * field.bytes_per_pixel <= budget:
        return None
    side = math.isqrt(int(budget / field.bytes_per_pixel))
    core = (side - 2 * field.halo) // field.block * field.block
    return max(core, field.halo, field.block)


def check_tile_size(size: int, field: ReceptiveField, model: str) -> None:
    """A tile smaller than the model's halo is refused (one line)."""
    if size < field.halo:
        raise NowcastError(
            f"tile: {size} pixels is smaller than model {model}'s halo ({field.halo} pixels, "
            f"its receptive field): give at least {field.halo}, auto or none"
        )
