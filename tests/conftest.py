"""Shared fixtures and helpers for rnnfast's tests."""
import numpy as np
import pytest

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
CELLS = tuple(GATES)


def make_weights(cell, I, H, dtype=np.float64, bias=True, seed=0, scale=0.5):
    """Random w_ih (G*H, I), w_hh (G*H, H) and biases (G*H,) (or None) for a cell."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    w_ih = (rng.uniform(-scale, scale, (G * H, I))).astype(dtype)
    w_hh = (rng.uniform(-scale, scale, (G * H, H))).astype(dtype)
    if not bias:
        return w_ih, w_hh, None, None
    b_ih = rng.uniform(-scale, scale, G * H).astype(dtype)
    b_hh = rng.uniform(-scale, scale, G * H).astype(dtype)
    return w_ih, w_hh, b_ih, b_hh


def run_forward(mod, cell, x, h0, c0, weights, lengths=None, training=True):
    """Call ``mod``'s forward kernel for ``cell``; returns (y, states tuple, saved)."""
    if cell == "lstm":
        y, h, c, saved = mod.lstm_forward(x, h0, c0, *weights, lengths=lengths, training=training)
        return y, (h, c), saved
    if cell == "gru":
        y, h, saved = mod.gru_forward(x, h0, *weights, lengths=lengths, training=training)
        return y, (h,), saved
    nl = cell.split("_")[1]
    y, h, saved = mod.rnn_forward(x, h0, *weights, nonlinearity=nl, lengths=lengths,
                                  training=training)
    return y, (h,), saved


def run_backward(mod, cell, dy, dstates, saved):
    """Call ``mod``'s backward kernel; returns dx, d(initial states) tuple, weight grads tuple."""
    if cell == "lstm":
        dx, dh0, dc0, *dw = mod.lstm_backward(dy, dstates[0], dstates[1], saved)
        return dx, (dh0, dc0), tuple(dw)
    fn = mod.gru_backward if cell == "gru" else mod.rnn_backward
    dx, dh0, *dw = fn(dy, dstates[0], saved)
    return dx, (dh0,), tuple(dw)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
