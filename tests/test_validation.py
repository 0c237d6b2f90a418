"""Bad input to the kernels: a TypeError or ValueError naming the argument and what it got, the
same from both backends."""
import numpy as np
import pytest

import rnnfast
from rnnfast import kernels

T, B, I, H = 3, 2, 4, 5
BACKENDS = ["reference"] + (["compiled"] if rnnfast.compiled_available() else [])


def good(cell="lstm", dtype=np.float64):
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    return dict(x=np.zeros((T, B, I), dtype), h0=np.zeros((B, H), dtype),
                w_ih=np.zeros((G * H, I), dtype), w_hh=np.zeros((G * H, H), dtype),
                b_ih=np.zeros(G * H, dtype), b_hh=np.zeros(G * H, dtype))


def call(cell, **kw):
    a = good(cell)
    lengths = kw.pop("lengths", None)
    a.update(kw)
    if cell == "lstm":
        return kernels.lstm_forward(a["x"], a["h0"], a.get("c0"), a["w_ih"], a["w_hh"], a["b_ih"],
                                    a["b_hh"], lengths=lengths)
    fn = kernels.gru_forward if cell == "gru" else kernels.rnn_forward
    return fn(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], lengths=lengths)


CASES = [
    (dict(x=np.zeros((T, B))), ValueError, r"x must be 3-D \(T, B, I\), got shape \(3, 2\)"),
    (dict(x=np.zeros((T, B, I), np.int64)), TypeError, "x must be float32 or float64, got dtype int64"),
    (dict(x=np.array([["a"]])), TypeError, "x must be float32 or float64"),
    (dict(x=np.zeros((0, B, I))), ValueError, "T, B, I >= 1"),
    (dict(w_ih=np.zeros((4 * H, I + 1))), ValueError, r"w_ih must have shape \(20, 4\), got \(20, 5\)"),
    (dict(w_hh=np.zeros((3 * H, H))), ValueError, r"w_hh must be 2-D \(4\*H, H\)"),
    (dict(w_hh=np.zeros((4 * H, H), np.float32)), TypeError, "w_hh has dtype float32 but x has dtype float64"),
    (dict(b_ih=np.zeros(H)), ValueError, r"b_ih must have shape \(20,\), got \(5,\)"),
    (dict(h0=np.zeros((B + 1, H))), ValueError, r"h0 must have shape \(2, 5\), got \(3, 5\)"),
    (dict(c0=np.zeros((B, H, 1))), ValueError, r"c0 must be 2-D"),
    (dict(lengths=[1]), ValueError, r"lengths must be 1-D with one entry per sequence \(B=2\)"),
    (dict(lengths=[1, T + 1]), ValueError, r"lengths must lie in \[0, T=3\]"),
    (dict(lengths=[-1, 2]), ValueError, r"lengths must lie in \[0, T=3\]"),
    (dict(lengths=[1.5, 2.0]), TypeError, "lengths must hold integers"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw,exc,msg", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_forward_input(backend, kw, exc, msg):
    with rnnfast.use_backend(backend):
        with pytest.raises(exc, match=msg):
            call("lstm", **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_cell_specific_input(backend):
    with rnnfast.use_backend(backend):
        with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
            a = good("rnn")
            kernels.rnn_forward(a["x"], None, a["w_ih"], a["w_hh"], nonlinearity="gelu")
        a = good("gru")
        with pytest.raises(ValueError, match=r"x must be 2-D \(B, I\)"):
            kernels.gru_step_forward(a["x"], None, a["w_ih"], a["w_hh"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_backward_input(backend):
    with rnnfast.use_backend(backend):
        a = good("gru")
        y, h, saved = kernels.gru_forward(a["x"], None, a["w_ih"], a["w_hh"])
        with pytest.raises(ValueError, match=r"dy must have shape \(3, 2, 5\), got \(3, 2, 4\)"):
            kernels.gru_backward(np.zeros((T, B, H - 1)), None, saved)
        with pytest.raises(ValueError, match=r"dh_n must have shape \(2, 5\)"):
            kernels.gru_backward(None, np.zeros((B, H + 1)), saved)
        with pytest.raises(TypeError, match="dy has dtype float32 but x has dtype float64"):
            kernels.gru_backward(np.zeros((T, B, H), np.float32), None, saved)
        with pytest.raises(ValueError, match="training=False"):
            kernels.gru_backward(None, None, None)
        with pytest.raises(ValueError, match="what lstm_forward.*got the saved dict of a 'gru' cell"):
            kernels.lstm_backward(None, None, None, saved)
        with pytest.raises(ValueError, match="got a dict without its 'cell' entry"):
            kernels.gru_backward(None, None, {"x": a["x"]})
        with pytest.raises(ValueError, match="got a value of type tuple"):
            kernels.gru_backward(None, None, (y, h))


def test_cell_state_is_lstm_only():
    from rnnfast import _validate
    a = good("gru")
    with pytest.raises(ValueError, match="c0 is only used by the LSTM"):
        _validate.forward("gru", a["x"], None, np.zeros((B, H)), a["w_ih"], a["w_hh"], None, None)


def test_saved_from_another_backend_is_refused():
    if not rnnfast.compiled_available():
        pytest.skip("needs both backends")
    a = good("rnn")
    with rnnfast.use_backend("reference"):
        _, _, saved = kernels.rnn_forward(a["x"], None, a["w_ih"], a["w_hh"])
    with rnnfast.use_backend("compiled"):
        with pytest.raises(ValueError, match="'reference' backend"):
            kernels.rnn_backward(None, None, saved)


@pytest.mark.parametrize("backend", BACKENDS)
def test_views_and_fortran_order_give_the_same_answer(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, 2 * I))[:, :, ::2]  # strided view
    w_ih = np.asfortranarray(rng.standard_normal((3 * H, I)))
    w_hh = rng.standard_normal((H, 3 * H)).T  # transposed view
    with rnnfast.use_backend(backend):
        y1, h1, _ = kernels.gru_forward(x, None, w_ih, w_hh)
        y2, h2, _ = kernels.gru_forward(np.ascontiguousarray(x), None, np.ascontiguousarray(w_ih),
                                        np.ascontiguousarray(w_hh))
        y3, h3, _ = kernels.gru_forward(x.tolist(), None, w_ih.tolist(), w_hh.tolist())
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, y3)
