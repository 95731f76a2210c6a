"""NumPy (float64) references of the recurrent cells' equations, for tests/test_cells.py.

Written from the equations in the issue and the layers' docstrings, not from the layers:
``*`` is a zero-padded 'same' cross-correlation (what Keras calls a convolution), ``o``
the element-wise product. ``mistake`` names one deliberate wiring error, so a test can
show that comparing against the reference would catch it.
"""

from __future__ import annotations

import numpy as np

LSTM_MISTAKES = (
    "swap_input_forget",  # i and f gate blocks exchanged
    "output_gate_tanh",  # the output gate through tanh instead of sigmoid
    "peephole_output_on_c_prev",  # w_co o c_{t-1} instead of w_co o c_t
    "peephole_forget_on_input",  # w_cf on the input gate and w_ci on the forget gate
)
GRU_MISTAKES = (
    "swap_update_reset",  # z and r gate blocks exchanged
    "keep_with_z",  # h_t = z o h_{t-1} + (1 - z) o g_t (Keras' convention)
    "reset_after",  # g = tanh(W * x + r o (U * h)) instead of U * (r o h)
)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def conv_same(x, kernel):
    """``x`` ``(B, H, W, C)``, ``kernel`` ``(kh, kw, C, F)`` -> ``(B, H, W, F)``."""
    kh, kw = kernel.shape[:2]
    _, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for a in range(kh):
        for b in range(kw):
            out += xp[:, a : a + h, b : b + w, :] @ kernel[a, b]
    return out


def convlstm(x, w_x, w_h, bias, h, c, peepholes=None, mistake=None):
    """ConvLSTM (gate order i, f, c, o), optional peepholes ``(w_ci, w_cf, w_co)`` per channel.

    ``x`` ``(B, T, H, W, C)``; returns the ``h`` sequence ``(B, T, H, W, F)`` and the final
    ``h``, ``c``.
    """
    f = w_h.shape[2]
    w_ci, w_cf, w_co = (np.zeros(f),) * 3 if peepholes is None else peepholes
    if mistake == "peephole_forget_on_input":
        w_ci, w_cf = w_cf, w_ci
    out = []
    for t in range(x.shape[1]):
        z = conv_same(x[:, t], w_x) + conv_same(h, w_h) + bias
        zi, zf, zg, zo = (z[..., k * f : (k + 1) * f] for k in range(4))
        if mistake == "swap_input_forget":
            zi, zf = zf, zi
        i = sigmoid(zi + w_ci * c)
        fg = sigmoid(zf + w_cf * c)
        c_new = fg * c + i * np.tanh(zg)
        seen = c if mistake == "peephole_output_on_c_prev" else c_new
        o = (np.tanh if mistake == "output_gate_tanh" else sigmoid)(zo + w_co * seen)
        c = c_new
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1), h, c


def convgru(x, w_x, w_h, bias, h, mistake=None):
    """ConvGRU (gate order z, r, candidate); returns the ``h`` sequence and the final ``h``."""
    f = w_h.shape[2]

    def blocks(a):
        return [a[..., k * f : (k + 1) * f] for k in range(3)]

    wz, wr, wg = blocks(w_x)
    uz, ur, ug = blocks(w_h)
    bz, br, bg = blocks(bias)
    if mistake == "swap_update_reset":
        wz, wr, uz, ur, bz, br = wr, wz, ur, uz, br, bz
    out = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = sigmoid(conv_same(xt, wz) + conv_same(h, uz) + bz)
        r = sigmoid(conv_same(xt, wr) + conv_same(h, ur) + br)
        recurrent = r * conv_same(h, ug) if mistake == "reset_after" else conv_same(r * h, ug)
        g = np.tanh(conv_same(xt, wg) + recurrent + bg)
        h = z * h + (1 - z) * g if mistake == "keep_with_z" else (1 - z) * h + z * g
        out.append(h)
    return np.stack(out, axis=1), h
