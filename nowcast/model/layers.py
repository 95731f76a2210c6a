"""Shape layers for the encoder-forecaster, and a ConvLSTM2D that accepts any domain size.

All layers take and return model tensors ``(batch, time, y, x, channels)`` and read
sizes with :func:`keras.ops.shape` at run time, so one model runs on any domain.
Backend-agnostic Keras 3 only; every layer is registered for ``keras.saving``.
"""

from __future__ import annotations

import keras
from keras import ops

_register = keras.saving.register_keras_serializable(package="nowcast")


def _scaled(dim, factor: int, *, up: bool):
    if dim is None:
        return None
    return dim * factor if up else dim // factor


@_register
class PadToMultiple(keras.layers.Layer):
    """Pad ``y`` and ``x`` up to a multiple of ``factor`` (split evenly, extra row/column last).

    ``mode`` is ``"constant"`` (zeros: works for any size and matches the zero padding of
    the "same" convolutions downstream) or ``"reflect"`` (needs ``size > factor - 1``).
    """

    def __init__(self, factor: int, mode: str = "constant", **kwargs):
        super().__init__(**kwargs)
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        if mode not in ("constant", "reflect"):
            raise ValueError(f"mode must be 'constant' or 'reflect', got {mode!r}")
        self.factor = int(factor)
        self.mode = mode

    def call(self, inputs):
        if self.factor == 1:
            return inputs
        shape = ops.shape(inputs)
        pad_y = (-shape[2]) % self.factor
        pad_x = (-shape[3]) % self.factor
        widths = [
            [0, 0],
            [0, 0],
            [pad_y // 2, pad_y - pad_y // 2],
            [pad_x // 2, pad_x - pad_x // 2],
            [0, 0],
        ]
        return ops.pad(inputs, widths, mode=self.mode)

    def compute_output_shape(self, input_shape):
        b, t, h, w, c = input_shape
        f = self.factor

        def up(d):
            return None if d is None else -(-d // f) * f

        return (b, t, up(h), up(w), c)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "mode": self.mode}


@_register
class CropLike(keras.layers.Layer):
    """Crop ``inputs[0]`` to the ``y``/``x`` size of ``inputs[1]`` (undoes ``PadToMultiple``)."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs):
        padded, reference = inputs
        if self.factor == 1:
            return padded
        ref = ops.shape(reference)
        shape = ops.shape(padded)
        pad_y = (-ref[2]) % self.factor
        pad_x = (-ref[3]) % self.factor
        top, left = pad_y // 2, pad_x // 2
        return ops.slice(
            padded, [0, 0, top, left, 0], [shape[0], shape[1], ref[2], ref[3], shape[4]]
        )

    def compute_output_shape(self, input_shape):
        padded, reference = input_shape
        return (padded[0], padded[1], reference[2], reference[3], padded[4])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@_register
class SpaceToDepth(keras.layers.Layer):
    """``(B, T, H, W, C) -> (B, T, H/b, W/b, b*b*C)``: ``b x b`` patches to channels.

    Channel order within a patch is ``(row, column, channel)``; :class:`DepthToSpace`
    is the exact inverse. ``H`` and ``W`` must be multiples of ``b``.
    """

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        b = self.block_size
        if b == 1:
            return inputs
        _, t, h, w, c = ops.shape(inputs)
        x = ops.reshape(inputs, (-1, t, h // b, b, w // b, b, c))
        x = ops.transpose(x, (0, 1, 2, 4, 3, 5, 6))
        return ops.reshape(x, (-1, t, h // b, w // b, b * b * c))

    def compute_output_shape(self, input_shape):
        n, t, h, w, c = input_shape
        b = self.block_size
        return (
            n,
            t,
            _scaled(h, b, up=False),
            _scaled(w, b, up=False),
            None if c is None else c * b * b,
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@_register
class DepthToSpace(keras.layers.Layer):
    """``(B, T, h, w, b*b*C) -> (B, T, h*b, w*b, C)``, the inverse of :class:`SpaceToDepth`."""

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        b = self.block_size
        if b == 1:
            return inputs
        _, t, h, w, cc = ops.shape(inputs)
        c = cc // (b * b)
        x = ops.reshape(inputs, (-1, t, h, w, b, b, c))
        x = ops.transpose(x, (0, 1, 2, 4, 3, 5, 6))
        return ops.reshape(x, (-1, t, h * b, w * b, c))

    def compute_output_shape(self, input_shape):
        n, t, h, w, c = input_shape
        b = self.block_size
        if c is not None and c % (b * b):
            raise ValueError(f"DepthToSpace({b}) needs channels divisible by {b * b}, got {c}")
        return (
            n,
            t,
            _scaled(h, b, up=True),
            _scaled(w, b, up=True),
            None if c is None else c // (b * b),
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@_register
class ForecasterInput(keras.layers.Layer):
    """Zeros ``(B, steps, h, w, channels)`` shaped like a ``(B, h, w, F)`` state tensor.

    The forecaster's first ConvLSTM layer gets no observations (Shi et al. 2015): its
    input is all zeros, so its input convolution contributes only the gate biases and
    everything else comes from the encoder's state. One channel keeps that cheap.
    """

    def __init__(self, steps: int, channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.steps = int(steps)
        self.channels = int(channels)

    def call(self, state):
        shape = ops.shape(state)
        return ops.zeros(
            (shape[0], self.steps, shape[1], shape[2], self.channels), dtype=self.compute_dtype
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.steps, input_shape[1], input_shape[2], self.channels)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "channels": self.channels}


@_register
class AddLastFrame(keras.layers.Layer):
    """``[delta (B, T_out, H, W, C), past (B, T_in, H, W, C)]`` -> ``past[:, -1:] + delta``.

    The residual output of ``model.residual``: the network learns the change from the
    last observed frame, so an untrained model starts at persistence.
    """

    def call(self, inputs):
        delta, past = inputs
        return delta + ops.cast(past[:, -1:], delta.dtype)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@_register
class FramesAsChannels(keras.layers.Layer):
    """``past (B, T_in, H, W, C)`` -> ``(B, steps, H, W, T_in * C)``: every input frame as
    channels, repeated for each of ``steps`` output times (the skip input of ``head: skip``)."""

    def __init__(self, steps: int, **kwargs):
        super().__init__(**kwargs)
        self.steps = int(steps)

    def call(self, past):
        shape = ops.shape(past)
        frames = ops.transpose(past, (0, 2, 3, 1, 4))  # (B, H, W, T_in, C)
        frames = ops.reshape(frames, (shape[0], shape[2], shape[3], shape[1] * shape[4]))
        return ops.repeat(frames[:, None], self.steps, axis=1)

    def compute_output_shape(self, input_shape):
        b, t, h, w, c = input_shape
        return (b, self.steps, h, w, None if t is None or c is None else t * c)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


@_register
class DynamicConvLSTM2D(keras.layers.ConvLSTM2D):
    """:class:`keras.layers.ConvLSTM2D` (same weights and maths) that accepts unknown ``y``/``x``.

    Stock ConvLSTM2D refuses ``None`` spatial sizes at build time only because it sizes
    its default zero state from them; the weights depend on the channels alone. This
    builds the cell with placeholder sizes and makes the zero state from the actual
    input at call time. Only ``strides=1`` and ``channels_last`` are supported (the state has the
    input's size for ``padding="same"``, ``size - dilation * (kernel - 1)`` for ``"valid"``).
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if any(s != 1 for s in self.strides) or self.data_format != "channels_last":
            raise ValueError("DynamicConvLSTM2D supports strides=1 and channels_last only")

    def build(self, sequences_shape, initial_state_shape=None):
        shape = tuple(sequences_shape)
        placeholder = shape[:2] + tuple(8 if d is None else d for d in shape[2:-1]) + shape[-1:]
        super().build(placeholder, initial_state_shape)
        self.cell.input_spec = None  # the cell's spec would pin the placeholder sizes

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if initial_state is None:
            shape = ops.shape(sequences)
            h, w = shape[2], shape[3]
            if self.padding == "valid":
                h = h - self.dilation_rate[0] * (self.kernel_size[0] - 1)
                w = w - self.dilation_rate[1] * (self.kernel_size[1] - 1)
            zeros = ops.zeros((shape[0], h, w, self.filters), dtype=self.cell.compute_dtype)
            initial_state = [zeros, zeros]
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
