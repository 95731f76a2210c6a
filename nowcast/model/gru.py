"""A convolutional GRU layer (ConvGRU; as compared in the HKO-7 benchmark, Shi et al. 2017).

For each step, with ``*`` a 'same' convolution and ``o`` the element-wise product::

    z_t = sigmoid(W_z * x_t + U_z * h_{t-1} + b_z)            # update gate
    r_t = sigmoid(W_r * x_t + U_r * h_{t-1} + b_r)            # reset gate
    g_t = tanh(W * x_t + U * (r_t o h_{t-1}) + b)             # candidate
    h_t = (1 - z_t) o h_{t-1} + z_t o g_t

The reset gate acts before the recurrent convolution of the candidate (Cho et al.'s
original form; Keras' ``GRU(reset_after=True)`` default applies it after). One state
``h`` instead of the ConvLSTM's two, three gate blocks instead of four, so about 3/4 of
the ConvLSTM's weights and convolution FLOPs for the same filters.

Weights (gate order ``z, r, candidate``): ``kernel`` ``(k, k, in, 3 * filters)`` (``W_z,
W_r, W``), ``recurrent_kernel`` ``(k, k, filters, 3 * filters)`` (``U_z, U_r, U``) and
``bias`` ``(3 * filters,)``; initialised like ConvLSTM2D (Glorot uniform, orthogonal,
zeros). The input convolution runs over all frames at once before the loop; per step
there are two recurrent convolutions, ``[U_z, U_r] * h_{t-1}`` and ``U * (r_t o h_{t-1})``
(the second needs ``r_t`` first). A zero initial state skips both on the first step
(``h_1 = z_1 o g_1``). Time loop and layouts: :class:`~nowcast.model.recurrent.ConvRecurrent2D`.
"""

from __future__ import annotations

import keras
from keras import ops

from nowcast.model.recurrent import ConvRecurrent2D

_register = keras.saving.register_keras_serializable(package="nowcast")


@_register
class ConvGRU2D(ConvRecurrent2D):
    """Convolutional GRU (``padding="same"``), one state: call as ``layer(x, initial_state=[h0])``.

    With ``return_state=True`` it returns ``(output, h)``.
    """

    state_names = ("h",)

    def build(self, sequences_shape, initial_state_shape=None):
        self.input_dim = self.input_channels(sequences_shape)
        f, kh, kw = self.filters, *self.kernel_size
        self.kernel = self.add_weight(
            shape=(kh, kw, self.input_dim, 3 * f),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(kh, kw, f, 3 * f),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = (
            self.add_weight(shape=(3 * f,), initializer=self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )

    def prepare(self, x):
        return self.add_bias(self.conv_frames(x, self.kernel), self.bias)

    def step(self, x_t, states):
        f, axis = self.filters, self.channel_axis
        sigma, tanh = self.recurrent_activation, self.activation
        xz, xr, xg = ops.split(x_t, 3, axis=axis)
        if states is None:  # h_{t-1} = 0: no recurrent terms
            return (sigma(xz) * tanh(xg),)
        (h,) = states
        u = self.recurrent_kernel
        hz, hr = ops.split(self.conv(h, u[..., : 2 * f]), 2, axis=axis)
        z = sigma(xz + hz)
        r = sigma(xr + hr)
        g = tanh(xg + self.conv(r * h, u[..., 2 * f :]))
        return (h + z * (g - h),)
