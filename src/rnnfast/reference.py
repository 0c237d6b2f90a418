"""NumPy twin of every rnnfast kernel: the specification the compiled kernels are tested against.

Plain, vectorised NumPy; it is deliberately not fast. The input projection of all steps is one
matmul before the time loop, backward's weight and input gradients are matmuls over all steps after
it, there is no Python loop over the batch, and the time loop keeps only the per-step temporaries
the math needs. Each ``<cell>_forward`` sits beside its ``<cell>_backward``.

Math (DESIGN.md, PyTorch's conventions; gates stacked in the first weight dimension):

    RNN:  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu
    LSTM: (i, f, g, o) = split(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); i, f, o = sigmoid;
          g = tanh; c_t = f*c_{t-1} + i*g; h_t = o*tanh(c_t)
    GRU:  r = sigmoid(W_ir x + b_ir + W_hr h + b_hr); z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h_t = (1-z)*n + z*h_{t-1}

Shapes: x (T, B, I); states h0, c0, h_n, c_n (B, H); y (T, B, H); w_ih (G*H, I); w_hh (G*H, H);
b_ih, b_hh (G*H,) or None (no bias); G = 1 (RNN), 4 (LSTM), 3 (GRU). float32 or float64, every
array of a call in x's dtype.

``lengths`` (B ints in [0, T], any order) follows torch's pack_padded_sequence: past a sequence's
length its output is zero and its state stops changing, so h_n is the state at its last valid step
(h0 for length 0).

Forward with ``training=True`` returns a ``saved`` dict for the backward of the same backend;
with ``training=False`` it returns ``saved=None`` and keeps nothing. Backward returns
(dx, dh0[, dc0], dw_ih, dw_hh, db_ih, db_hh); db_* are None when the forward had no bias.
Step kernels are the same computation for one time step, x (B, I), for streaming use.
"""
import numpy as np

from . import _validate

__all__ = [
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
    "rnn_step_forward", "rnn_step_backward", "lstm_step_forward", "lstm_step_backward",
    "gru_step_forward", "gru_step_backward",
]


# ----------------------------------------------------------------------------------------------
# shared pieces

def _sigmoid(a):
    # exp of a non-positive number only: finite for any input, NaN passes through
    z = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(a.dtype, copy=False)


def _input_projection(x, w, b):
    """x (T, B, I) @ w.T (+ b) as one matmul over all steps: (T, B, G*H)."""
    T, B, I = x.shape
    xp = (x.reshape(T * B, I) @ w.T).reshape(T, B, w.shape[0])
    if b is not None:
        xp += b
    return xp


def _bias_sum(b_ih, b_hh):
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else b_ih + b_hh


def _masks(lengths, T):
    """(T, B, 1) boolean masks of valid steps, or None when every step is valid."""
    if lengths is None:
        return None
    return (np.arange(T)[:, None] < lengths[None, :])[:, :, None]


def _h_prev(y, h0):
    """h_{t-1} for every t: h0 then y[:-1], (T, B, H). Past a sequence's length y is zero, but
    those steps carry zero gate gradients, so only valid entries are ever used."""
    return np.concatenate([h0[None], y[:-1]], axis=0)


def _weight_grads(dg_in, dg_hh, x, h_prev, w_ih, w_hh, has_b_ih, has_b_hh):
    """dx, dw_ih, dw_hh, db_ih, db_hh from the gate gradients of all steps (single matmuls).

    dg_in (T, B, G*H) is the gradient of the input-side pre-activations, dg_hh that of the
    hidden-side ones (the same array except for the GRU's n gate).
    """
    T, B, I = x.shape
    GH = w_ih.shape[0]
    g_in = dg_in.reshape(T * B, GH)
    g_hh = dg_hh.reshape(T * B, GH)
    dx = (g_in @ w_ih).reshape(T, B, I)
    dw_ih = g_in.T @ x.reshape(T * B, I)
    dw_hh = g_hh.T @ h_prev.reshape(T * B, -1)
    db_ih = g_in.sum(axis=0) if has_b_ih else None
    db_hh = g_hh.sum(axis=0) if has_b_hh else None
    return dx, dw_ih, dw_hh, db_ih, db_hh


def _saved(cell, a, y, **extra):
    return dict(cell=cell, backend="reference", x=a.x, h0=a.h0, w_ih=a.w_ih, w_hh=a.w_hh, has_b_ih=a.b_ih is not None,
                has_b_hh=a.b_hh is not None, lengths=a.lengths, y=y, **extra)


# ----------------------------------------------------------------------------------------------
# Elman RNN

def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh", lengths=None,
                training=True):
    """Elman RNN over a sequence: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    x (T, B, I), h0 (B, H) or None, w_ih (H, I), w_hh (H, H), b_ih, b_hh (H,) or None.
    Returns y (T, B, H), h_n (B, H), saved (dict, or None when training=False).

    >>> import numpy as np
    >>> x = np.ones((5, 2, 3)); w_ih = np.full((4, 3), 0.1); w_hh = np.eye(4) * 0.5
    >>> y, h_n, saved = rnn_forward(x, None, w_ih, w_hh)
    >>> y.shape, h_n.shape
    ((5, 2, 4), (2, 4))
    """
    nonlinearity = _validate.nonlinearity(nonlinearity)
    a = _validate.forward("rnn", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    act = np.tanh if nonlinearity == "tanh" else (lambda v: np.maximum(v, 0))
    xp = _input_projection(a.x, a.w_ih, _bias_sum(a.b_ih, a.b_hh))
    masks = _masks(a.lengths, a.T)
    y = np.empty((a.T, a.B, a.H), a.x.dtype)
    h = a.h0
    for t in range(a.T):
        h_new = act(xp[t] + h @ a.w_hh.T)
        if masks is not None:
            y[t] = np.where(masks[t], h_new, 0)
            h = np.where(masks[t], h_new, h)
        else:
            y[t] = h = h_new
    saved = _saved("rnn", a, y, nonlinearity=nonlinearity) if training else None
    return y, np.array(h), saved


def rnn_backward(dy, dh_n, saved):
    """Backward of :func:`rnn_forward`. dy (T, B, H) or None, dh_n (B, H) or None.

    Returns dx (T, B, I), dh0 (B, H), dw_ih, dw_hh, db_ih, db_hh.
    """
    s = _validate.saved_dict(saved, "rnn", "reference")
    g = _validate.backward("rnn", dy, dh_n, None, s)
    y, w_hh = s["y"], s["w_hh"]
    T = y.shape[0]
    masks = _masks(s["lengths"], T)
    da = np.empty_like(y)  # gradient of the pre-activation, all steps
    dh = g.dh_n.copy()
    for t in reversed(range(T)):
        # forward: y[t] = act(a_t), so da_t = (dy_t + dh_t) * act'(a_t), written with y[t]
        d_out = g.dy[t] + dh
        if s["nonlinearity"] == "tanh":
            da[t] = d_out * (1 - y[t] * y[t])
        else:
            da[t] = d_out * (y[t] > 0)
        if masks is not None:
            da[t] = np.where(masks[t], da[t], 0)
            # a frozen step passes dh straight through to h_{t-1}
            dh = np.where(masks[t], da[t] @ w_hh, dh)
        else:
            dh = da[t] @ w_hh
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(
        da, da, s["x"], _h_prev(y, s["h0"]), s["w_ih"], w_hh, s["has_b_ih"], s["has_b_hh"])
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


# ----------------------------------------------------------------------------------------------
# LSTM

def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, lengths=None, training=True):
    """LSTM over a sequence (gates i, f, g, o stacked in the weights' first dimension).

    x (T, B, I), h0, c0 (B, H) or None, w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H,) or None.
    Returns y (T, B, H), h_n, c_n (B, H), saved (dict, or None when training=False).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((5, 2, 3)); w_ih = rng.standard_normal((16, 3)) * 0.3
    >>> y, h_n, c_n, _ = lstm_forward(x, None, None, w_ih, np.zeros((16, 4)), training=False)
    >>> y.shape, c_n.shape
    ((5, 2, 4), (2, 4))
    """
    a = _validate.forward("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths)
    H = a.H
    xp = _input_projection(a.x, a.w_ih, _bias_sum(a.b_ih, a.b_hh))
    masks = _masks(a.lengths, a.T)
    y = np.empty((a.T, a.B, H), a.x.dtype)
    if training:  # what backward needs: the activated gates and the cell state of every step
        gates = np.empty((a.T, a.B, 4 * H), a.x.dtype)
        cs = np.empty((a.T, a.B, H), a.x.dtype)
    h, c = a.h0, a.c0
    for t in range(a.T):
        pre = xp[t] + h @ a.w_hh.T
        i, f, o = _sigmoid(pre[:, :H]), _sigmoid(pre[:, H:2 * H]), _sigmoid(pre[:, 3 * H:])
        gg = np.tanh(pre[:, 2 * H:3 * H])
        c_new = f * c + i * gg
        h_new = o * np.tanh(c_new)
        if masks is not None:
            y[t] = np.where(masks[t], h_new, 0)
            h = np.where(masks[t], h_new, h)
            c = np.where(masks[t], c_new, c)
        else:
            y[t], h, c = h_new, h_new, c_new
        if training:
            gates[t, :, :H], gates[t, :, H:2 * H] = i, f
            gates[t, :, 2 * H:3 * H], gates[t, :, 3 * H:] = gg, o
            cs[t] = c
    saved = _saved("lstm", a, y, c0=a.c0, gates=gates, c=cs) if training else None
    return y, np.array(h), np.array(c), saved


def lstm_backward(dy, dh_n, dc_n, saved):
    """Backward of :func:`lstm_forward`. dy (T, B, H), dh_n, dc_n (B, H); any may be None.

    Returns dx (T, B, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh.
    """
    s = _validate.saved_dict(saved, "lstm", "reference")
    g = _validate.backward("lstm", dy, dh_n, dc_n, s)
    y, gates, cs, w_hh = s["y"], s["gates"], s["c"], s["w_hh"]
    T, B, H = y.shape
    masks = _masks(s["lengths"], T)
    da = np.empty_like(gates)
    dh, dc = g.dh_n.copy(), g.dc_n.copy()
    for t in reversed(range(T)):
        i, f = gates[t, :, :H], gates[t, :, H:2 * H]
        gg, o = gates[t, :, 2 * H:3 * H], gates[t, :, 3 * H:]
        c_prev = cs[t - 1] if t > 0 else s["c0"]
        tc = np.tanh(cs[t])
        d_h = g.dy[t] + dh
        # forward: h_t = o*tanh(c_t); c_t = f*c_{t-1} + i*g
        d_c = dc + d_h * o * (1 - tc * tc)
        da[t, :, :H] = d_c * gg * i * (1 - i)
        da[t, :, H:2 * H] = d_c * c_prev * f * (1 - f)
        da[t, :, 2 * H:3 * H] = d_c * i * (1 - gg * gg)
        da[t, :, 3 * H:] = d_h * tc * o * (1 - o)
        if masks is not None:
            da[t] = np.where(masks[t], da[t], 0)
            dh = np.where(masks[t], da[t] @ w_hh, dh)
            dc = np.where(masks[t], d_c * f, dc)
        else:
            dh, dc = da[t] @ w_hh, d_c * f
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(
        da, da, s["x"], _h_prev(y, s["h0"]), s["w_ih"], w_hh, s["has_b_ih"], s["has_b_hh"])
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh


# ----------------------------------------------------------------------------------------------
# GRU

def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, lengths=None, training=True):
    """GRU over a sequence (gates r, z, n; reset applied after the hidden product, as torch).

    x (T, B, I), h0 (B, H) or None, w_ih (3H, I), w_hh (3H, H), b_ih, b_hh (3H,) or None.
    Returns y (T, B, H), h_n (B, H), saved (dict, or None when training=False).

    >>> import numpy as np
    >>> y, h_n, _ = gru_forward(np.ones((4, 1, 2)), None, np.full((9, 2), 0.1), np.zeros((9, 3)))
    >>> y.shape
    (4, 1, 3)
    """
    a = _validate.forward("gru", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    H = a.H
    xp = _input_projection(a.x, a.w_ih, a.b_ih)
    masks = _masks(a.lengths, a.T)
    y = np.empty((a.T, a.B, H), a.x.dtype)
    if training:  # backward needs the activated gates and W_hn h + b_hn of every step
        gates = np.empty((a.T, a.B, 3 * H), a.x.dtype)
        hns = np.empty((a.T, a.B, H), a.x.dtype)
    h = a.h0
    for t in range(a.T):
        hh = h @ a.w_hh.T
        if a.b_hh is not None:
            hh += a.b_hh
        r = _sigmoid(xp[t, :, :H] + hh[:, :H])
        z = _sigmoid(xp[t, :, H:2 * H] + hh[:, H:2 * H])
        n = np.tanh(xp[t, :, 2 * H:] + r * hh[:, 2 * H:])
        h_new = (1 - z) * n + z * h
        if masks is not None:
            y[t] = np.where(masks[t], h_new, 0)
            h = np.where(masks[t], h_new, h)
        else:
            y[t] = h = h_new
        if training:
            gates[t, :, :H], gates[t, :, H:2 * H], gates[t, :, 2 * H:] = r, z, n
            hns[t] = hh[:, 2 * H:]
    saved = _saved("gru", a, y, gates=gates, hn=hns) if training else None
    return y, np.array(h), saved


def gru_backward(dy, dh_n, saved):
    """Backward of :func:`gru_forward`. dy (T, B, H) or None, dh_n (B, H) or None.

    Returns dx (T, B, I), dh0 (B, H), dw_ih, dw_hh, db_ih, db_hh.
    """
    s = _validate.saved_dict(saved, "gru", "reference")
    g = _validate.backward("gru", dy, dh_n, None, s)
    y, gates, hns, w_hh = s["y"], s["gates"], s["hn"], s["w_hh"]
    T, B, H = y.shape
    h_prev_all = _h_prev(y, s["h0"])
    masks = _masks(s["lengths"], T)
    da_in = np.empty_like(gates)  # input-side pre-activation gradients [r, z, n]
    da_hh = np.empty_like(gates)  # hidden-side ones: the n part is r * (that of the input side)
    dh = g.dh_n.copy()
    for t in reversed(range(T)):
        r, z, n = gates[t, :, :H], gates[t, :, H:2 * H], gates[t, :, 2 * H:]
        d_h = g.dy[t] + dh
        # forward: h_t = (1-z)*n + z*h_{t-1}; n = tanh(a_n + r*hn); r, z = sigmoid(.)
        d_an = d_h * (1 - z) * (1 - n * n)
        da_in[t, :, :H] = d_an * hns[t] * r * (1 - r)
        da_in[t, :, H:2 * H] = d_h * (h_prev_all[t] - n) * z * (1 - z)
        da_in[t, :, 2 * H:] = d_an
        da_hh[t, :, :2 * H] = da_in[t, :, :2 * H]
        da_hh[t, :, 2 * H:] = d_an * r
        if masks is not None:
            da_in[t] = np.where(masks[t], da_in[t], 0)
            da_hh[t] = np.where(masks[t], da_hh[t], 0)
            dh = np.where(masks[t], da_hh[t] @ w_hh + d_h * z, dh)
        else:
            dh = da_hh[t] @ w_hh + d_h * z
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(
        da_in, da_hh, s["x"], h_prev_all, s["w_ih"], w_hh, s["has_b_ih"], s["has_b_hh"])
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


# ----------------------------------------------------------------------------------------------
# single steps: the sequence kernels with T = 1, for streaming use

def rnn_step_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh",
                     training=True):
    """One RNN step. x (B, I), h (B, H) or None. Returns h_new (B, H), saved (or None).

    >>> import numpy as np
    >>> h, _ = rnn_step_forward(np.ones((2, 3)), None, np.zeros((4, 3)), np.eye(4))
    >>> h.shape
    (2, 4)
    """
    _validate.forward("rnn", x, h, None, w_ih, w_hh, b_ih, b_hh, step=True)
    _, h_new, saved = rnn_forward(np.asarray(x)[None], h, w_ih, w_hh, b_ih, b_hh,
                                  nonlinearity=nonlinearity, training=training)
    return h_new, saved


def rnn_step_backward(dh_new, saved):
    """Backward of :func:`rnn_step_forward`: dx (B, I), dh (B, H), dw_ih, dw_hh, db_ih, db_hh."""
    _validate.backward("rnn", None, dh_new, None, _validate.saved_dict(saved, "rnn", "reference"), step=True)
    dx, dh, *dw = rnn_backward(None, dh_new, saved)
    return (dx[0], dh, *dw)


def lstm_step_forward(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, training=True):
    """One LSTM step. x (B, I), h, c (B, H) or None. Returns h_new, c_new (B, H), saved."""
    _validate.forward("lstm", x, h, c, w_ih, w_hh, b_ih, b_hh, step=True)
    _, h_new, c_new, saved = lstm_forward(np.asarray(x)[None], h, c, w_ih, w_hh, b_ih, b_hh,
                                          training=training)
    return h_new, c_new, saved


def lstm_step_backward(dh_new, dc_new, saved):
    """Backward of :func:`lstm_step_forward`: dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh."""
    _validate.backward("lstm", None, dh_new, dc_new, _validate.saved_dict(saved, "lstm", "reference"),
                       step=True)
    dx, dh, dc, *dw = lstm_backward(None, dh_new, dc_new, saved)
    return (dx[0], dh, dc, *dw)


def gru_step_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, training=True):
    """One GRU step. x (B, I), h (B, H) or None. Returns h_new (B, H), saved (or None)."""
    _validate.forward("gru", x, h, None, w_ih, w_hh, b_ih, b_hh, step=True)
    _, h_new, saved = gru_forward(np.asarray(x)[None], h, w_ih, w_hh, b_ih, b_hh,
                                  training=training)
    return h_new, saved


def gru_step_backward(dh_new, saved):
    """Backward of :func:`gru_step_forward`: dx (B, I), dh (B, H), dw_ih, dw_hh, db_ih, db_hh."""
    _validate.backward("gru", None, dh_new, None, _validate.saved_dict(saved, "gru", "reference"), step=True)
    dx, dh, *dw = gru_backward(None, dh_new, saved)
    return (dx[0], dh, *dw)
