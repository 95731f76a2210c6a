"""The receptive field of a network, read off its layers (for :mod:`nowcast.methods.tiling`).

Every tensor of the Keras functional graph carries its reach per time step (how far, in its
own pixels, its values depend on the input; None: on no input pixel, e.g. the forecaster's
zero input) and its scale (1 at full resolution, ``b`` after a ``b``-fold downsampling).
Each convolution adds its kernel's half-width; a recurrent layer adds it at every time step
from the input and from its state (:data:`_RECURRENT`: convolutions in series per step);
downsampling by ``b`` works in blocks, upsampling turns ``r`` blocks into ``(r + 1) b - 1``
pixels; pixel-wise layers take the largest reach of their inputs. A layer not known here is
a :class:`TilingUnsupported` error. The same walk sums the values a pass holds per input
pixel, the memory estimate of :attr:`ReceptiveField.bytes_per_pixel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nowcast.errors import NowcastError

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
