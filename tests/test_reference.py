"""The NumPy reference kernels: gradients against central finite differences (float64), float32
against float64, lengths semantics, step kernels against the sequence kernels, and outputs and
gradients against torch.nn with the same weights when torch is installed."""
import itertools

import numpy as np
import pytest

from rnnfast import reference as R
from conftest import CELLS, GATES, make_weights, run_backward, run_forward

T, B, I, H = 4, 3, 3, 5
LENGTHS = np.array([4, 0, 2])  # unsorted, with an empty sequence and a full one


def _problem(cell, dtype=np.float64, bias=True, with_h0=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) * 0.5 if with_h0 else None
    c0 = rng.standard_normal((B, H)).astype(dtype) * 0.5 if (with_h0 and cell == "lstm") else None
    return x, h0, c0, make_weights(cell, I, H, dtype, bias=bias, seed=seed + 1)


def _loss_weights(cell, seed=7):
    """Fixed random cotangents: loss = sum(dy*y) + sum(dh*h_n) [+ sum(dc*c_n)]."""
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((T, B, H))
    dstates = tuple(rng.standard_normal((B, H)) for _ in range(2 if cell == "lstm" else 1))
    return dy, dstates


def _loss(cell, x, h0, c0, weights, lengths, dy, dstates):
    y, states, _ = run_forward(R, cell, x, h0, c0, weights, lengths, training=False)
    return float(np.sum(dy * y) + sum(np.sum(d * s) for d, s in zip(dstates, states)))


def _numeric_grad(f, arr, eps=1e-6):
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = arr[idx]
        arr[idx] = old + eps
        up = f()
        arr[idx] = old - eps
        down = f()
        arr[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def _rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "no_h0"])
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_gradients_match_finite_differences(cell, with_h0, use_lengths, bias):
    x, h0, c0, weights = _problem(cell, bias=bias, with_h0=with_h0)
    if h0 is None:  # differentiate with respect to explicit zero states too
        h0 = np.zeros((B, H))
        c0 = np.zeros((B, H)) if cell == "lstm" else None
    lengths = LENGTHS if use_lengths else None
    dy, dstates = _loss_weights(cell)
    _, _, saved = run_forward(R, cell, x, h0, c0, weights, lengths)
    dx, dinit, dw = run_backward(R, cell, dy, dstates, saved)

    def f():
        return _loss(cell, x, h0, c0, weights, lengths, dy, dstates)

    pairs = [("dx", dx, x), ("dh0", dinit[0], h0)]
    if cell == "lstm":
        pairs.append(("dc0", dinit[1], c0))
    for name, grad, arr in zip(("dw_ih", "dw_hh", "db_ih", "db_hh"), dw, weights):
        if arr is None:
            assert grad is None, f"{name} must be None without a bias"
        else:
            pairs.append((name, grad, arr))
    for name, analytic, arr in pairs:
        numeric = _numeric_grad(f, arr)
        err = _rel_err(analytic, numeric)
        assert err < 1e-6, f"{cell} {name}: relative error {err:.2e}"


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
def test_float32_matches_float64(cell, use_lengths):
    lengths = LENGTHS if use_lengths else None
    x, h0, c0, weights = _problem(cell)
    as32 = lambda a: None if a is None else a.astype(np.float32)  # noqa: E731
    y64, s64, sv64 = run_forward(R, cell, x, h0, c0, weights, lengths)
    y32, s32, sv32 = run_forward(R, cell, as32(x), as32(h0), as32(c0),
                                 tuple(map(as32, weights)), lengths)
    assert y32.dtype == np.float32 and all(s.dtype == np.float32 for s in s32)
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    dy, dst = _loss_weights(cell)
    g64 = run_backward(R, cell, dy, dst, sv64)
    g32 = run_backward(R, cell, dy.astype(np.float32), tuple(map(as32, dst)), sv32)
    for a, b in zip(itertools.chain([g32[0]], g32[1], g32[2]), itertools.chain([g64[0]], g64[1], g64[2])):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
def test_lengths_semantics(cell):
    """Each sequence behaves as if run alone on its valid prefix; outputs past it are zero."""
    x, h0, c0, weights = _problem(cell)
    y, states, _ = run_forward(R, cell, x, h0, c0, weights, LENGTHS)
    for b, n in enumerate(LENGTHS):
        assert np.all(y[n:, b] == 0)
        if n == 0:
            np.testing.assert_array_equal(states[0][b], h0[b])
            continue
        yb, sb, _ = run_forward(R, cell, x[:n, b:b + 1], h0[b:b + 1],
                                None if c0 is None else c0[b:b + 1], weights)
        np.testing.assert_allclose(y[:n, b], yb[:, 0], rtol=1e-12, atol=1e-14)
        for s, s_alone in zip(states, sb):
            np.testing.assert_allclose(s[b], s_alone[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_step_kernels_match_sequence(cell):
    """Chaining step kernels forward and backward reproduces the sequence kernels."""
    x, h0, c0, weights = _problem(cell)
    y, states, saved = run_forward(R, cell, x, h0, c0, weights)
    dy, dst = _loss_weights(cell)
    dx, dinit, dw = run_backward(R, cell, dy, dst, saved)
    nl = {"rnn_tanh": "tanh", "rnn_relu": "relu"}.get(cell)
    h, c, saves = h0, c0, []
    for t in range(T):
        if cell == "lstm":
            h, c, s = R.lstm_step_forward(x[t], h, c, *weights)
        elif cell == "gru":
            h, s = R.gru_step_forward(x[t], h, *weights)
        else:
            h, s = R.rnn_step_forward(x[t], h, *weights, nonlinearity=nl)
        np.testing.assert_allclose(h, y[t], rtol=1e-13)
        saves.append(s)
    dh = dst[0].copy()
    dc = dst[1].copy() if cell == "lstm" else None
    dw_sum = [np.zeros_like(w) for w in weights]
    for t in reversed(range(T)):
        if cell == "lstm":
            dxt, dh, dc, *g = R.lstm_step_backward(dh + dy[t], dc, saves[t])
        else:
            step_bwd = R.gru_step_backward if cell == "gru" else R.rnn_step_backward
            dxt, dh, *g = step_bwd(dh + dy[t], saves[t])
        np.testing.assert_allclose(dxt, dx[t], rtol=1e-10, atol=1e-12)
        for acc, gi in zip(dw_sum, g):
            acc += gi
    np.testing.assert_allclose(dh, dinit[0], rtol=1e-10, atol=1e-12)
    for acc, full in zip(dw_sum, dw):
        np.testing.assert_allclose(acc, full, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_mode_saves_nothing(cell):
    x, h0, c0, weights = _problem(cell)
    y_t, s_t, saved = run_forward(R, cell, x, h0, c0, weights, training=True)
    y_i, s_i, none = run_forward(R, cell, x, h0, c0, weights, training=False)
    assert none is None and isinstance(saved, dict)
    np.testing.assert_array_equal(y_t, y_i)
    with pytest.raises(ValueError, match="training=False"):
        run_backward(R, cell, None, (None, None), None)


def test_activations_finite_for_huge_inputs():
    for dtype in (np.float32, np.float64):
        big = np.array([-1e30, -100, 0, 100, 1e30], dtype)
        s = R._sigmoid(big)
        assert np.all(np.isfinite(s)) and s.dtype == dtype
        np.testing.assert_array_equal(s[[0, 2, 4]], np.array([0, 0.5, 1], dtype))
        assert np.isnan(R._sigmoid(np.array([np.nan], dtype)))[0]


# ---------------------------------------------------------------------------------------------
# parity with torch.nn (same weights): outputs, final states and every gradient

def _torch_module(torch, cell, bias):
    kw = dict(input_size=I, hidden_size=H, num_layers=1, bias=bias)
    if cell == "lstm":
        return torch.nn.LSTM(**kw)
    if cell == "gru":
        return torch.nn.GRU(**kw)
    return torch.nn.RNN(nonlinearity=cell.split("_")[1], **kw)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_matches_torch(cell, use_lengths, bias):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lengths = np.array([4, 1, 2]) if use_lengths else None  # torch cannot pack length 0
    x, h0, c0, weights = _problem(cell, bias=bias)
    dy, dst = _loss_weights(cell)
    y, states, saved = run_forward(R, cell, x, h0, c0, weights, lengths)
    dx, dinit, dw = run_backward(R, cell, dy, dst, saved)

    m = _torch_module(torch, cell, bias).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(weights[0]))
        m.weight_hh_l0.copy_(torch.from_numpy(weights[1]))
        if bias:
            m.bias_ih_l0.copy_(torch.from_numpy(weights[2]))
            m.bias_hh_l0.copy_(torch.from_numpy(weights[3]))
    xt = torch.from_numpy(x).requires_grad_()
    ht = torch.from_numpy(h0)[None].clone().requires_grad_()
    init = ht
    if cell == "lstm":
        ct = torch.from_numpy(c0)[None].clone().requires_grad_()
        init = (ht, ct)
    inp = xt
    if use_lengths:
        inp = pack_padded_sequence(xt, torch.from_numpy(lengths), enforce_sorted=False)
    out, st = m(inp, init)
    if use_lengths:
        out, _ = pad_packed_sequence(out, total_length=T)
    st = st if cell == "lstm" else (st,)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(states, st):
        np.testing.assert_allclose(mine, theirs[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    loss = (out * torch.from_numpy(dy)).sum() + sum(
        (s[0] * torch.from_numpy(d)).sum() for s, d in zip(st, dst))
    loss.backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dinit[0], ht.grad[0].numpy(), rtol=1e-9, atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(dinit[1], ct.grad[0].numpy(), rtol=1e-9, atol=1e-12)
    names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if bias else [])
    for name, g in zip(names, dw):
        np.testing.assert_allclose(g, getattr(m, name).grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
