"""The time loop shared by the convolutional recurrent cells (ConvLSTM, ConvGRU).

A cell subclasses :class:`ConvRecurrent2D` and says three things: how many state
tensors it carries (``state_names``: ``("h", "c")`` for an LSTM, ``("h",)`` for a GRU;
``h`` first, it is the output), what can be computed for all frames before the loop
(:meth:`ConvRecurrent2D.prepare`, e.g. the input convolution over ``batch * time``
frames at once) and one step (:meth:`ConvRecurrent2D.step`). The base class owns the
rest: the Python or :func:`keras.ops.fori_loop` time loop (``loop``), the
``channels_last`` / ``channels_first`` working layout (``layout``; inputs and outputs
stay channels-last), ``return_sequences`` / ``return_state``, the zero initial state,
output shapes and config.

With a zero initial state (none given) the Python loop passes ``states=None`` to the
first step, so a cell can skip its recurrent convolutions there; ``fori`` needs real
zeros. Only ``padding="same"``, ``strides=1`` and ``dilation_rate=1`` are supported.
Backend-agnostic Keras 3 (``keras.ops``) only.
"""

from __future__ import annotations

import keras
from keras import ops

LAYOUTS = ("channels_last", "channels_first")
LOOPS = ("python", "fori")


def check_choice(name: str, value, allowed) -> None:
    """A ``ValueError`` naming the option and its valid values unless ``value`` is allowed."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def set_layout(model, layout: str) -> int:
    """Run every :class:`ConvRecurrent2D` layer of ``model`` (nested models included) in the
    working ``layout``; returns how many. The weights are the same in both layouts (Keras
    convolution kernels are ``(kh, kw, in, out)`` whatever the data format), so a trained
    model may be switched after loading: the outputs agree to float rounding."""
    check_choice("layout", layout, LAYOUTS)
    count, todo = 0, list(getattr(model, "layers", []))
    while todo:
        layer = todo.pop()
        if isinstance(layer, ConvRecurrent2D):
            layer.layout = layout
            count += 1
        todo.extend(getattr(layer, "layers", []))
    return count


class ConvRecurrent2D(keras.layers.Layer):
    """Base of the fused convolutional recurrent layers (not registered: abstract).

    Call as ``layer(sequences, initial_state=[...])`` with one tensor per state
    (``(B, H, W, filters)`` each), like :class:`keras.layers.ConvLSTM2D`. Returns the
    last ``h`` (or the sequence of ``h`` with ``return_sequences``), followed by the
    final states with ``return_state``.
    """

    #: The state tensors, ``h`` first (subclasses override).
    state_names: tuple[str, ...] = ("h",)

    def __init__(
        self,
        filters: int,
        kernel_size,
        padding: str = "same",
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        return_sequences: bool = False,
        return_state: bool = False,
        layout: str = "channels_last",
        loop: str = "python",
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        if len(self.kernel_size) != 2 or any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be two odd integers, got {kernel_size}")
        if str(padding).lower() != "same":
            raise ValueError(f"{name} supports padding='same' only")
        check_choice("layout", layout, LAYOUTS)
        check_choice("loop", loop, LOOPS)
        self.filters = int(filters)
        self.padding = "same"
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.layout = layout
        self.loop = loop
        self.input_spec = keras.InputSpec(ndim=5)

    # ------------------------------------------------------------------ helpers

    def input_channels(self, sequences_shape) -> int:
        """The input's channels (from ``build``'s shape); they must be known."""
        in_ch = sequences_shape[-1]
        if in_ch is None:
            raise ValueError(f"{type(self).__name__} needs a known number of input channels")
        return int(in_ch)

    @property
    def channel_axis(self) -> int:
        return 1 if self.layout == "channels_first" else -1

    def conv(self, x, kernel):
        """'same' convolution of one frame batch ``(B, ...)`` in the working layout."""
        return ops.conv(x, kernel, strides=1, padding="same", data_format=self.layout)

    def conv_frames(self, x, kernel):
        """The convolution of every frame of ``x`` ``(B, T, ...)`` at once (as ``B * T`` frames)."""
        shape = ops.shape(x)
        frames = ops.reshape(x, (-1,) + tuple(shape[2:]))
        z = self.conv(frames, kernel)
        return ops.reshape(z, (shape[0], shape[1]) + tuple(ops.shape(z)[1:]))

    def per_channel(self, weight):
        """A ``(n,)`` weight shaped to broadcast over a working-layout frame batch."""
        n = weight.shape[0]
        shape = (1, n, 1, 1) if self.layout == "channels_first" else (1, 1, 1, n)
        return ops.reshape(weight, shape)

    def add_bias(self, z, bias):
        """``z + bias`` over the channel axis (``bias=None``: no bias)."""
        return z if bias is None else z + self.per_channel(bias)

    # ------------------------------------------------------------------ the cell

    def prepare(self, x):
        """What the steps need of the inputs ``x`` ``(B, T, ...)``, for all frames at once.

        Returns a ``(B, T, ...)`` tensor whose frame ``t`` goes to :meth:`step`; the
        default passes the inputs through.
        """
        return x

    def step(self, x_t, states):
        """One time step: the prepared frame ``x_t`` and the states (a tuple, or None for a
        zero state) -> the new states tuple, ``h`` first."""
        raise NotImplementedError

    # ------------------------------------------------------------------ forward

    def call(self, sequences, initial_state=None, mask=None, training=False):
        name = type(self).__name__
        steps = sequences.shape[1]
        if steps is None or steps < 1:
            raise ValueError(f"{name} needs a static number (>= 1) of time steps, got {steps}")
        cf = self.layout == "channels_first"
        python_loop = self.loop == "python"
        x = ops.transpose(sequences, (0, 1, 4, 2, 3)) if cf else sequences  # (B, T, C, H, W)
        shape = ops.shape(sequences)
        n_states = len(self.state_names)
        if initial_state is not None:
            if len(initial_state) != n_states:
                raise ValueError(
                    f"{name} takes {n_states} initial state tensor(s) "
                    f"({', '.join(self.state_names)}), got {len(initial_state)}"
                )
            states = tuple(ops.cast(s, self.compute_dtype) for s in initial_state)
            if cf:
                states = tuple(ops.transpose(s, (0, 3, 1, 2)) for s in states)
        elif python_loop:
            states = None  # zero state: the first step may skip its recurrent half
        else:
            size = (self.filters, shape[2], shape[3]) if cf else (shape[2], shape[3], self.filters)
            zeros = ops.zeros((shape[0],) + size, dtype=self.compute_dtype)
            states = (zeros,) * n_states
        prepared = self.prepare(x)

        if python_loop:
            # Unstack once (one backward op) instead of indexing per step, whose backward
            # writes into a full-size zero tensor at every step.
            frames = ops.unstack(prepared, axis=1)
            outputs = []
            for t in range(steps):
                states = self.step(frames[t], states)
                outputs.append(states[0])
            seq = ops.stack(outputs, axis=1) if self.return_sequences else None
        else:
            h = states[0]
            seq0 = ops.zeros((shape[0], steps) + tuple(ops.shape(h)[1:]), dtype=h.dtype)

            def body(t, carry):
                states, seq = carry
                states = tuple(self.step(prepared[:, t], states))
                if self.return_sequences:
                    seq = ops.slice_update(seq, (0, t, 0, 0, 0), ops.expand_dims(states[0], 1))
                return states, seq

            states, seq = ops.fori_loop(0, steps, body, (tuple(states), seq0))
            if not self.return_sequences:
                seq = None

        if cf:
            states = tuple(ops.transpose(s, (0, 2, 3, 1)) for s in states)
            if seq is not None:
                seq = ops.transpose(seq, (0, 1, 3, 4, 2))
        output = seq if self.return_sequences else states[0]
        if self.return_state:
            return (output, *states)
        return output

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        b, t, hh, ww, _ = sequences_shape
        state = (b, hh, ww, self.filters)
        out = (b, t, hh, ww, self.filters) if self.return_sequences else state
        if self.return_state:
            return (out,) + (state,) * len(self.state_names)
        return out

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "padding": self.padding,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "layout": self.layout,
            "loop": self.loop,
        }
