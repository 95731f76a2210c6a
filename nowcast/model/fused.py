"""A fused ConvLSTM layer: one convolution produces all four gates; optional peepholes.

Same maths, gate order (``i, f, c, o``), activations and initialisation as
:class:`keras.layers.ConvLSTM2D` (Shi et al. 2015 without peepholes)::

    z_t = conv([x_t, h_{t-1}], K) + b          # K = concat([kernel, recurrent_kernel], axis=2)
    i, f, g, o = split(z_t, 4)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)

With ``peephole=True`` it is the full formulation of Shi et al. (2015): the input and
forget gates also see the previous cell state and the output gate the new one,
``i += w_ci * c_{t-1}``, ``f += w_cf * c_{t-1}``, ``o += w_co * c_t`` (element-wise).
Shi et al. write the ``W_c`` as Hadamard products with state-sized tensors, i.e. a
weight per pixel and channel; here they are **per channel** (``(filters,)`` each,
broadcast over pixels). The model is fully convolutional and runs on any domain size,
so a weight per pixel cannot exist for a grid that is unknown when the model is built
(and would tie a model to one grid and break its translation equivariance); per-channel
peepholes are also what ConvLSTM implementations on variable-size inputs use. They
start at zero (``peephole_initializer``), so an untrained peephole cell is the plain one.

The stock layer runs eight convolutions per step (four input, four recurrent, one per
gate). Here the fused kernel is used in two parts with the same result: the input
half for all time steps at once (one convolution over ``batch * time`` frames, before
the loop) and the recurrent half once per step. ``strategy="concat"`` instead runs one
convolution per step over ``concat([x_t, h_{t-1}])``, the textbook fused form; both
give identical numbers up to float rounding. The time loop and layouts are
:class:`~nowcast.model.recurrent.ConvRecurrent2D`'s (``loop``, ``layout``).

The defaults (``loop="python"``, ``strategy="split"``, ``layout="channels_last"``) were
the fastest or within noise of it on CPU (torch's ``fori_loop`` copies the whole output
sequence at every step); the measurements are in ``docs/benchmarks.md`` ("Fused cell
internals"), made with ``benchmarks/bench_train_step.py --fused-loop/--fused-strategy/
--fused-layout``. Most of a step is convolution FLOPs, identical for both layers; the gain
over the stock layer comes from fewer, larger ops.
"""

from __future__ import annotations

import keras
from keras import ops

from nowcast.model.recurrent import ConvRecurrent2D, check_choice

_register = keras.saving.register_keras_serializable(package="nowcast")

#: The peephole weights, in the order they are created.
PEEPHOLES = ("peephole_input", "peephole_forget", "peephole_output")


@_register
class FusedConvLSTM2D(ConvRecurrent2D):
    """Drop-in ConvLSTM2D (``padding="same"``) with one fused gate convolution.

    Call as ``layer(sequences, initial_state=[h0, c0])`` like ConvLSTM2D. Weights:
    ``kernel`` ``(k, k, in + filters, 4 * filters)`` (input rows first, then recurrent
    rows), ``bias`` ``(4 * filters,)`` and, with ``peephole=True``, ``peephole_input``,
    ``peephole_forget``, ``peephole_output`` ``(filters,)`` each (``w_ci, w_cf, w_co``).
    ``layout="channels_first"`` runs the loop in ``(B, C, H, W)`` internally (inputs and
    outputs stay channels-last), which saves the per-call layout copies some backends make.
    """

    state_names = ("h", "c")

    def __init__(
        self,
        filters: int,
        kernel_size,
        unit_forget_bias: bool = True,
        strategy: str = "split",
        peephole: bool = False,
        peephole_initializer="zeros",
        **kwargs,
    ):
        super().__init__(filters, kernel_size, **kwargs)
        check_choice("strategy", strategy, ("split", "concat"))
        self.unit_forget_bias = bool(unit_forget_bias)
        self.strategy = strategy
        self.peephole = bool(peephole)
        self.peephole_initializer = keras.initializers.get(peephole_initializer)

    # ------------------------------------------------------------------ weights

    def build(self, sequences_shape, initial_state_shape=None):
        self.input_dim = self.input_channels(sequences_shape)
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
        self.peepholes = (
            tuple(
                self.add_weight(shape=(f,), initializer=self.peephole_initializer, name=name)
                for name in PEEPHOLES
            )
            if self.peephole
            else None
        )

    # ------------------------------------------------------------------ forward

    def _split_kernel(self):
        return self.kernel[:, :, : self.input_dim, :], self.kernel[:, :, self.input_dim :, :]

    def prepare(self, x):
        if self.strategy == "concat":
            return x
        # Input half for every frame at once, bias included.
        return self.add_bias(self.conv_frames(x, self._split_kernel()[0]), self.bias)

    def step(self, x_t, states):
        if self.strategy == "split":
            z = x_t if states is None else x_t + self.conv(states[0], self._split_kernel()[1])
        elif states is None:
            z = self.add_bias(self.conv(x_t, self._split_kernel()[0]), self.bias)
        else:
            xh = ops.concatenate([x_t, states[0]], axis=self.channel_axis)
            z = self.add_bias(self.conv(xh, self.kernel), self.bias)
        return self._gates(z, None if states is None else states[1])

    def _gates(self, z, c_prev):
        """LSTM update from the gate pre-activations ``z``; ``c_prev=None`` means a zero state."""
        zi, zf, zc, zo = ops.split(z, 4, axis=self.channel_axis)
        sigma, tanh = self.recurrent_activation, self.activation
        w_ci, w_cf, w_co = (
            (None,) * 3 if self.peepholes is None else map(self.per_channel, self.peepholes)
        )
        if c_prev is None:  # the forget gate and the peepholes on c_{t-1} see zeros
            c = sigma(zi) * tanh(zc)
        else:
            if w_ci is not None:
                zi, zf = zi + w_ci * c_prev, zf + w_cf * c_prev
            c = sigma(zf) * c_prev + sigma(zi) * tanh(zc)
        if w_co is not None:
            zo = zo + w_co * c
        return sigma(zo) * tanh(c), c

    def get_config(self):
        return {
            **super().get_config(),
            "unit_forget_bias": self.unit_forget_bias,
            "strategy": self.strategy,
            "peephole": self.peephole,
            "peephole_initializer": keras.saving.serialize_keras_object(self.peephole_initializer),
        }
