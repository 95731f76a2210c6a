"""A fused ConvLSTM layer: one convolution produces all four gates.

Same maths, gate order (``i, f, c, o``), activations and initialisation as
:class:`keras.layers.ConvLSTM2D` (Shi et al. 2015 without peepholes)::

    z_t = conv([x_t, h_{t-1}], K) + b          # K = concat([kernel, recurrent_kernel], axis=2)
    i, f, g, o = split(z_t, 4)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)

The stock layer runs eight convolutions per step (four input, four recurrent, one per
gate). Here the fused kernel is used in two parts with the same result: the input
half for all time steps at once (one convolution over ``batch * time`` frames, before
the loop) and the recurrent half once per step. ``strategy="concat"`` instead runs one
convolution per step over ``concat([x_t, h_{t-1}])``, the textbook fused form; both
give identical numbers up to float rounding. The time loop is a Python loop (``T`` is
static and small) or :func:`keras.ops.fori_loop` (``loop="fori"``). With a zero initial
state (none given) the Python loop skips the recurrent convolution of the first step.

Measured on a 2-CPU AMD EPYC (AVX2), radar model training step (filters (32, 64), batch
4, 128 x 128, t_in 6, t_out 12), torch 1 thread: Python loop 2.8 s vs ``fori_loop`` 3.9 s
(torch's fori_loop copies the whole output sequence at every step); ``split`` and
``concat`` within noise of each other on torch, ``channels_last`` faster than
``channels_first`` on jax (1.3 vs 2.0 s at 64 x 64). Hence the defaults. Most of a step
is convolution FLOPs, identical for both layers; the gain over the stock layer comes
from fewer, larger ops (see ``benchmarks/bench_train_step.py``).

Only ``padding="same"``, ``strides=1`` and ``dilation_rate=1`` are supported.
"""

from __future__ import annotations

import keras
from keras import ops

_register = keras.saving.register_keras_serializable(package="nowcast")


@_register
class FusedConvLSTM2D(keras.layers.Layer):
    """Drop-in ConvLSTM2D (``padding="same"``) with one fused gate convolution.

    Call as ``layer(sequences, initial_state=[h0, c0])`` like ConvLSTM2D. Weights:
    ``kernel`` ``(k, k, in + filters, 4 * filters)`` (input rows first, then recurrent
    rows) and ``bias`` ``(4 * filters,)``. ``layout="channels_first"`` runs the loop in
    ``(B, C, H, W)`` internally (inputs and outputs stay channels-last), which saves the
    per-call layout copies some backends make.
    """

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
        unit_forget_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        strategy: str = "split",
        layout: str = "channels_last",
        loop: str = "python",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        if len(self.kernel_size) != 2 or any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be two odd integers, got {kernel_size}")
        if str(padding).lower() != "same":
            raise ValueError("FusedConvLSTM2D supports padding='same' only")
        for name, value, allowed in (
            ("strategy", strategy, ("split", "concat")),
            ("layout", layout, ("channels_last", "channels_first")),
            ("loop", loop, ("python", "fori")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.filters = int(filters)
        self.padding = "same"
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.strategy = strategy
        self.layout = layout
        self.loop = loop
        self.input_spec = keras.InputSpec(ndim=5)

    # ------------------------------------------------------------------ weights

    def build(self, sequences_shape, initial_state_shape=None):
        in_ch = sequences_shape[-1]
        if in_ch is None:
            raise ValueError("FusedConvLSTM2D needs a known number of input channels")
        self.input_dim = int(in_ch)
        f, kh, kw = self.filters, *self.kernel_size

        def kernel_init(shape, dtype=None):
            # Same distributions as ConvLSTM2D: input rows and recurrent rows separately.
            x_part = self.kernel_initializer((kh, kw, self.input_dim, 4 * f), dtype=dtype)
            h_part = self.recurrent_initializer((kh, kw, f, 4 * f), dtype=dtype)
            return ops.concatenate([x_part, h_part], axis=2)

        self.kernel = self.add_weight(
            shape=(kh, kw, self.input_dim + f, 4 * f), initializer=kernel_init, name="kernel"
        )
        if self.use_bias:

            def bias_init(shape, dtype=None):
                if not self.unit_forget_bias:
                    return self.bias_initializer(shape, dtype=dtype)
                return ops.concatenate(
                    [
                        self.bias_initializer((f,), dtype=dtype),
                        ops.ones((f,), dtype=dtype),
                        self.bias_initializer((2 * f,), dtype=dtype),
                    ]
                )

            self.bias = self.add_weight(shape=(4 * f,), initializer=bias_init, name="bias")
        else:
            self.bias = None

    # ------------------------------------------------------------------ forward

    def _conv(self, x, kernel):
        fmt = self.layout
        return ops.conv(x, kernel, strides=1, padding="same", data_format=fmt)

    def _add_bias(self, z):
        if self.bias is None:
            return z
        shape = (
            (1, 4 * self.filters, 1, 1)
            if self.layout == "channels_first"
            else (1, 1, 1, 4 * self.filters)
        )
        return z + ops.reshape(self.bias, shape)

    def _gates(self, z, c_prev):
        """LSTM update from the gate pre-activations ``z``; ``c_prev=None`` means a zero state."""
        axis = 1 if self.layout == "channels_first" else -1
        zi, zf, zc, zo = ops.split(z, 4, axis=axis)
        c = self.recurrent_activation(zi) * self.activation(zc)
        if c_prev is not None:
            c = self.recurrent_activation(zf) * c_prev + c
        return self.recurrent_activation(zo) * self.activation(c), c

    def call(self, sequences, initial_state=None, mask=None, training=False):
        steps = sequences.shape[1]
        if steps is None or steps < 1:
            raise ValueError(
                f"FusedConvLSTM2D needs a static number (>= 1) of time steps, got {steps}"
            )
        cf = self.layout == "channels_first"
        python_loop = self.loop == "python"
        x = ops.transpose(sequences, (0, 1, 4, 2, 3)) if cf else sequences  # (B, T, C, H, W)
        shape = ops.shape(sequences)
        batch = shape[0]
        if initial_state is not None:
            h, c = (ops.cast(s, self.compute_dtype) for s in initial_state)
            if cf:
                h, c = ops.transpose(h, (0, 3, 1, 2)), ops.transpose(c, (0, 3, 1, 2))
        elif python_loop:
            h = c = None  # zero state: the first step skips the recurrent half
        else:
            state_shape = (
                (self.filters, shape[2], shape[3]) if cf else (shape[2], shape[3], self.filters)
            )
            h = c = ops.zeros((batch,) + state_shape, dtype=self.compute_dtype)
        kernel = self.kernel
        k_x, k_h = kernel[:, :, : self.input_dim, :], kernel[:, :, self.input_dim :, :]
        axis = 1 if cf else -1

        if self.strategy == "split":
            # Input half for every frame at once: (B*T, ...) -> (B, T, ...).
            frames = ops.reshape(x, (-1,) + tuple(ops.shape(x)[2:]))
            xz = self._add_bias(self._conv(frames, k_x))
            xz = ops.reshape(xz, (batch, steps) + tuple(ops.shape(xz)[1:]))
            # Python loop: unstack once (one backward op) instead of indexing per step,
            # whose backward writes into a full-size zero tensor at every step.
            xz_t = ops.unstack(xz, axis=1) if python_loop else None

            def step(t, h, c):
                z = xz_t[t] if python_loop else xz[:, t]
                return self._gates(z if h is None else z + self._conv(h, k_h), c)
        else:
            x_t = ops.unstack(x, axis=1) if python_loop else None

            def step(t, h, c):
                xt = x_t[t] if python_loop else x[:, t]
                z = (
                    self._conv(xt, k_x)
                    if h is None
                    else self._conv(ops.concatenate([xt, h], axis=axis), kernel)
                )
                return self._gates(self._add_bias(z), c)

        if python_loop:
            outputs = []
            for t in range(steps):
                h, c = step(t, h, c)
                outputs.append(h)
            seq = ops.stack(outputs, axis=1) if self.return_sequences else None
        else:
            seq0 = ops.zeros((batch, steps) + tuple(ops.shape(h)[1:]), dtype=h.dtype)

            def body(t, carry):
                h, c, seq = carry
                h, c = step(t, h, c)
                if self.return_sequences:
                    seq = ops.slice_update(seq, (0, t, 0, 0, 0), ops.expand_dims(h, 1))
                return h, c, seq

            h, c, seq = ops.fori_loop(0, steps, body, (h, c, seq0))
            if not self.return_sequences:
                seq = None

        if cf:
            h, c = ops.transpose(h, (0, 2, 3, 1)), ops.transpose(c, (0, 2, 3, 1))
            if seq is not None:
                seq = ops.transpose(seq, (0, 1, 3, 4, 2))
        output = seq if self.return_sequences else h
        if self.return_state:
            return output, h, c
        return output

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        b, t, hh, ww, _ = sequences_shape
        state = (b, hh, ww, self.filters)
        out = (b, t, hh, ww, self.filters) if self.return_sequences else state
        if self.return_state:
            return out, state, state
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
            "unit_forget_bias": self.unit_forget_bias,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "strategy": self.strategy,
            "layout": self.layout,
            "loop": self.loop,
        }
