"""rnnfast.RNN/LSTM/GRU on their own (torch parity lives in test_layers_torch.py): bad input and
its messages, input layouts, no_grad per thread, gradient accumulation, dropout (reproducible,
train/eval, honoured in backward), lengths edge cases, config/repr/state_dict, and the compiled
backend against the reference one."""
import json
import threading

import numpy as np
import pytest

import rnnfast as rf

T, B, I, H = 4, 3, 2, 3
CELLS = ("rnn", "lstm", "gru")

BACKENDS = [
    "reference",
    pytest.param("compiled", marks=pytest.mark.skipif(
        not rf.compiled_available(), reason="compiled kernels not built yet")),
]


def make(cell, **kw):
    kw.setdefault("seed", 0)
    return {"rnn": rf.RNN, "lstm": rf.LSTM, "gru": rf.GRU}[cell](I, H, **kw)


def state_for(cell, num_states_shape, rng, dtype=np.float64):
    h = rng.standard_normal(num_states_shape).astype(dtype)
    if cell == "lstm":
        return h, rng.standard_normal(num_states_shape).astype(dtype)
    return h


def run(layer, cell, x, hx=None, lengths=None, d_out=None, d_state=None):
    """Forward + backward; returns every result as a flat list of arrays (grads last)."""
    layer.zero_grad()
    out, fin = layer(x, hx, lengths=lengths)
    dx, d0 = layer.backward(np.ones_like(out) if d_out is None else d_out, d_state)
    flat = lambda s: list(s) if cell == "lstm" else [s]  # noqa: E731
    return [out] + flat(fin) + [dx] + flat(d0) + [g.copy() for g in layer.grads.values()]


def assert_all_close(a, b, **tol):
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b)):
        np.testing.assert_allclose(u, v, err_msg=f"result {k}", **tol)


# ----------------------------------------------------------------------------------------------
# construction

@pytest.mark.parametrize("cell", CELLS)
def test_parameters_names_shapes_dtype(cell):
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    layer = make(cell, num_layers=2, bidirectional=True, dtype=np.float64)
    names = [n for n, _ in layer.named_parameters()]
    want = []
    for k in range(2):
        for sfx in ("", "_reverse"):
            want += [f"{w}_l{k}{sfx}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert names == want
    sd = layer.state_dict()
    assert sd["weight_ih_l0"].shape == (G * H, I)
    assert sd["weight_ih_l1_reverse"].shape == (G * H, 2 * H)
    assert sd["weight_hh_l1"].shape == (G * H, H)
    assert sd["bias_hh_l0_reverse"].shape == (G * H,)
    assert all(v.dtype == np.float64 for v in sd.values())
    assert layer.weight_hh_l0 is layer.parameters()[1].data  # torch-style attribute access
    assert [n for n, _ in make(cell, bias=False).named_parameters()] == ["weight_ih_l0",
                                                                        "weight_hh_l0"]
    assert all(p.grad.shape == p.data.shape and not p.grad.any() for p in layer.parameters())


@pytest.mark.parametrize("cell", CELLS)
def test_seed_fixes_init_and_config_rebuilds(cell):
    a = make(cell, num_layers=2, bidirectional=True, seed=5, dropout=0.25, batch_first=True)
    b = make(cell, num_layers=2, bidirectional=True, seed=5, dropout=0.25, batch_first=True)
    c = make(cell, num_layers=2, bidirectional=True, seed=6, dropout=0.25, batch_first=True)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
        assert np.abs(v).max() <= 1 / np.sqrt(H)
        assert v.dtype == np.float32
    assert any(not np.array_equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    cfg = a.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    assert cfg["dtype"] == "float32" and cfg["seed"] == 5 and cfg["dropout"] == 0.25
    rebuilt = type(a)(**cfg)
    assert rebuilt.get_config() == cfg and repr(rebuilt) == repr(a)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, rebuilt.state_dict()[k])
    if cell == "rnn":
        r = rf.RNN(I, H, nonlinearity="relu", dtype="float64")
        assert r.get_config()["nonlinearity"] == "relu"
        assert r.get_config()["dtype"] == "float64"
        assert repr(r) == "RNN(2, 3, dtype=float64, nonlinearity='relu')"


def test_dtype_none_means_float32_as_in_torch():
    assert rf.LSTM(I, H, dtype=None).dtype == np.float32
    assert rf.LSTM(I, H, dtype="float64").weight_ih_l0.dtype == np.float64


def test_docstring_examples_run():
    import doctest
    import rnnfast.layers
    failed, attempted = doctest.testmod(rnnfast.layers)
    assert failed == 0 and attempted >= 10
    for cls in (rf.RNN, rf.LSTM, rf.GRU):
        assert ">>>" in cls.__doc__ and "(T, B, input_size)" in cls.__doc__


def test_reset_parameters_redraws_the_same_weights():
    layer = rf.GRU(I, H, seed=3)
    before = layer.state_dict()
    layer.weight_ih_l0[...] = 0
    layer.reset_parameters()
    for k, v in before.items():
        np.testing.assert_array_equal(layer.state_dict()[k], v)


def test_reset_parameters_without_a_seed_draws_new_weights():
    layer = rf.LSTM(I, H)  # seed=None: a fresh draw each time, as torch's reset_parameters
    before = layer.weight_hh_l0.copy()
    layer.reset_parameters()
    assert not np.array_equal(layer.weight_hh_l0, before)
    assert np.abs(layer.weight_hh_l0).max() <= 1 / np.sqrt(H)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=-1), ValueError, "hidden_size"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(input_size=2.5), TypeError, "input_size"),
    (dict(hidden_size="3"), TypeError, "hidden_size"),
    (dict(num_layers=True), TypeError, "num_layers"),
    (dict(dtype=np.float16), TypeError, "dtype"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype="not-a-dtype"), TypeError, "dtype"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(dropout=1.5), ValueError, "dropout"),
    (dict(dropout="0.5"), ValueError, "dropout"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=-1), ValueError, "seed"),
])
@pytest.mark.parametrize("cell", CELLS)
def test_bad_constructor_arguments(cell, kwargs, exc, match):
    args = dict(input_size=I, hidden_size=H, num_layers=2)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        {"rnn": rf.RNN, "lstm": rf.LSTM, "gru": rf.GRU}[cell](**args)


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity"):
        rf.RNN(I, H, nonlinearity="sigmoid")


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers"):
        rf.LSTM(I, H, dropout=0.5)


# ----------------------------------------------------------------------------------------------
# bad calls

@pytest.fixture(params=CELLS)
def cell(request):
    return request.param


def test_bad_x(cell):
    layer = make(cell)
    with pytest.raises(ValueError, match="x must be 3-D"):
        layer(np.ones((T, I)))
    with pytest.raises(ValueError, match="x must be 3-D"):
        layer(np.ones((1, T, B, I)))
    with pytest.raises(ValueError, match="x has 5 features.*input_size=2"):
        layer(np.ones((T, B, 5)))
    with pytest.raises(ValueError, match="x must have at least one step"):
        layer(np.ones((0, B, I)))
    for bad in (np.full((T, B, I), "a"), np.ones((T, B, I), bool), np.ones((T, B, I), complex),
                np.empty((T, B, I), object)):
        with pytest.raises(TypeError, match="x must hold real numbers"):
            layer(bad)
    with pytest.raises(ValueError, match="x must be a rectangular array"):
        layer([[[1.0, 2.0]], [[1.0]]])
    with pytest.raises(ValueError, match=r"batch_first=True, got shape \(3, 2\)"):
        make(cell, batch_first=True)(np.ones((3, 2)))


def test_bad_state(cell):
    layer = make(cell, num_layers=2)
    x = np.ones((T, B, I))
    good = np.zeros((2, B, H))
    bad = np.zeros((1, B, H))
    if cell == "lstm":
        with pytest.raises(TypeError, match=r"hx must be an \(h0, c0\) pair"):
            layer(x, good)
        with pytest.raises(TypeError, match=r"hx must be an \(h0, c0\) pair"):
            layer(x, (good, good, good))
        with pytest.raises(ValueError, match=r"hx\[0\] \(h0\) must have shape .*\(2, 3, 3\)"):
            layer(x, (bad, good))
        with pytest.raises(ValueError, match=r"hx\[1\] \(c0\)"):
            layer(x, (good, np.zeros((2, B + 1, H))))
        with pytest.raises(TypeError, match=r"hx\[1\] \(c0\) must hold real numbers"):
            layer(x, (good, good.astype(str)))
    else:
        with pytest.raises(TypeError, match="only the LSTM takes an"):
            layer(x, (good, good))
        with pytest.raises(ValueError, match=r"hx must have shape .*\(2, 3, 3\)"):
            layer(x, bad)
        with pytest.raises(ValueError, match="hx must have shape"):
            layer(x, np.zeros((2, B, H + 1)))


def test_bad_lengths(cell):
    layer = make(cell)
    x = np.ones((T, B, I))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T=4\]"):
        layer(x, lengths=[1, 5, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T=4\]"):
        layer(x, lengths=[1, -1, 2])
    with pytest.raises(ValueError, match=r"lengths must be 1-D with one entry per sequence"):
        layer(x, lengths=[1, 2])
    with pytest.raises(ValueError, match=r"lengths must be 1-D"):
        layer(x, lengths=[[1, 2, 3]])
    with pytest.raises(TypeError, match="lengths must hold integers"):
        layer(x, lengths=[1.5, 2, 3])


def test_bad_backward(cell):
    layer = make(cell, num_layers=2, batch_first=True)
    with pytest.raises(RuntimeError, match="before any forward"):
        layer.backward(np.ones((B, T, H)))
    out, _ = layer(np.ones((B, T, I)))
    with pytest.raises(ValueError, match=r"d_out must have the output's shape \(3, 4, 3\)"):
        layer.backward(np.ones((T, B, H)))
    with pytest.raises(TypeError, match="d_out must hold real numbers"):
        layer.backward(np.ones(out.shape, complex))
    with pytest.raises(ValueError, match="d_state"):
        layer.backward(np.ones_like(out),
                       (np.ones((1, B, H)),) * 2 if cell == "lstm" else np.ones((1, B, H)))
    if cell == "lstm":
        with pytest.raises(TypeError, match=r"d_state must be an \(dh_n, dc_n\) pair"):
            layer.backward(np.ones_like(out), np.ones((2, B, H)))
    assert not any(g.any() for g in layer.grads.values())  # failed calls added nothing
    layer.backward(np.ones_like(out))  # still usable after the errors


def test_backward_after_no_grad_forward_raises(cell):
    layer = make(cell)
    x = np.ones((T, B, I))
    out, _ = layer(x)
    with rf.no_grad():
        layer(x)
    with pytest.raises(RuntimeError, match="no_grad"):
        layer.backward(np.ones_like(out))
    layer(x)
    layer.backward(np.ones_like(out))


# ----------------------------------------------------------------------------------------------
# layouts, dtypes, gradients

def test_lists_views_and_fortran_arrays_give_the_same_answers(cell):
    rng = np.random.default_rng(0)
    layer = make(cell, num_layers=2, bidirectional=True, dtype=np.float64)
    x = rng.standard_normal((T, B, I))
    hx = state_for(cell, (4, B, H), rng)
    d_out = rng.standard_normal((T, B, 2 * H))
    d_state = state_for(cell, (4, B, H), rng)
    lengths = np.array([2, 4, 1])
    want = run(layer, cell, x, hx, lengths, d_out, d_state)

    def tolist(s):
        return tuple(v.tolist() for v in s) if cell == "lstm" else s.tolist()

    def fortran(s):
        return tuple(np.asfortranarray(v) for v in s) if cell == "lstm" else np.asfortranarray(s)

    def view(s):  # every other element of a bigger array: strided, not contiguous
        def one(v):
            big = np.zeros(v.shape[:-1] + (2 * v.shape[-1],))
            big[..., ::2] = v
            return big[..., ::2]
        return tuple(one(v) for v in s) if cell == "lstm" else one(s)

    got = run(layer, cell, x.tolist(), tolist(hx), lengths.tolist(), d_out.tolist(),
              tolist(d_state))
    assert_all_close(got, want, rtol=0, atol=0)
    got = run(layer, cell, np.asfortranarray(x), fortran(hx), lengths.astype(np.int32),
              np.asfortranarray(d_out), fortran(d_state))
    assert_all_close(got, want, rtol=0, atol=0)
    got = run(layer, cell, view(x), view(hx), lengths[::-1][::-1], view(d_out), view(d_state))
    assert_all_close(got, want, rtol=0, atol=0)
    # integer and float32 inputs are cast to the layer's dtype
    got = run(layer, cell, x.astype(np.float32), hx, lengths, d_out, d_state)
    assert got[0].dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_and_gradients_have_the_layer_dtype(cell, dtype):
    layer = make(cell, num_layers=2, dtype=dtype)
    res = run(layer, cell, np.ones((T, B, I), np.int64))
    assert all(r.dtype == dtype for r in res)
    assert all(p.grad.dtype == dtype for p in layer.parameters())


def test_batch_first_is_a_transpose(cell):
    rng = np.random.default_rng(1)
    tm = make(cell, num_layers=2, bidirectional=True, dtype=np.float64)
    bf = make(cell, num_layers=2, bidirectional=True, dtype=np.float64, batch_first=True)
    x = rng.standard_normal((T, B, I))
    d_out = rng.standard_normal((T, B, 2 * H))
    a = run(tm, cell, x, lengths=[3, 1, 4], d_out=d_out)
    b = run(bf, cell, x.transpose(1, 0, 2), lengths=[3, 1, 4], d_out=d_out.transpose(1, 0, 2))
    np.testing.assert_array_equal(b[0], a[0].transpose(1, 0, 2))
    n = 2 if cell == "lstm" else 1
    np.testing.assert_array_equal(b[1 + n], a[1 + n].transpose(1, 0, 2))  # dx
    assert b[0].flags.c_contiguous and b[1 + n].flags.c_contiguous
    assert_all_close(b[1:1 + n] + b[2 + n:], a[1:1 + n] + a[2 + n:], rtol=0, atol=0)


def test_gradients_accumulate_until_zero_grad(cell):
    layer = make(cell, num_layers=2, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((T, B, I))
    out, _ = layer(x)
    layer.backward(np.ones_like(out))
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer.backward(np.ones_like(out))  # the same forward's activations, used again
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12)
    assert [p.grad for p in layer.parameters()][0] is layer.grads["weight_ih_l0"]
    layer.zero_grad()
    assert not any(g.any() for g in layer.grads.values())


def test_backward_defaults_are_zeros(cell):
    layer = make(cell, num_layers=2, dtype=np.float64)
    x = np.random.default_rng(3).standard_normal((T, B, I))
    zeros_state = (np.zeros((2, B, H)),) * 2 if cell == "lstm" else np.zeros((2, B, H))
    a = run(layer, cell, x, d_out=np.ones((T, B, H)), d_state=None)
    b = run(layer, cell, x, d_out=np.ones((T, B, H)), d_state=zeros_state)
    assert_all_close(a, b, rtol=0, atol=0)
    if cell == "lstm":  # either half of the pair may be None
        c = run(layer, cell, x, d_out=np.ones((T, B, H)), d_state=(None, np.zeros((2, B, H))))
        assert_all_close(a, c, rtol=0, atol=0)
    layer.zero_grad()
    out, fin = layer(x)
    dx, _ = layer.backward(None, None)
    assert not dx.any() and not any(g.any() for g in layer.grads.values())


def test_changing_inputs_after_forward_does_not_change_gradients(cell):
    layer = make(cell, dtype=np.float64)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, I))
    hx = state_for(cell, (1, B, H), rng)
    want = run(layer, cell, x, hx)
    layer.zero_grad()
    out, _ = layer(x, hx)
    x[...] = 7  # a reused input buffer
    for s in (hx if cell == "lstm" else (hx,)):
        s[...] = 7
    dx, d0 = layer.backward(np.ones_like(out))
    np.testing.assert_array_equal(dx, want[2 if cell != "lstm" else 3])
    np.testing.assert_array_equal(layer.grads["weight_hh_l0"], want[-3])


def test_assigning_a_parameter_attribute_updates_the_parameter(cell):
    layer = make(cell)
    p = layer.parameters()[0]
    new = np.arange(p.data.size, dtype=np.float64).reshape(p.shape) / 10
    layer.weight_ih_l0 = new
    assert layer.parameters()[0] is p and p.data.dtype == np.float32
    np.testing.assert_allclose(layer.weight_ih_l0, new, rtol=1e-7)
    np.testing.assert_allclose(layer.state_dict()["weight_ih_l0"], new, rtol=1e-7)
    with pytest.raises(ValueError, match="weight_hh_l0 must have shape"):
        layer.weight_hh_l0 = np.zeros((1, 1))


def test_a_parameter_update_changes_the_output(cell):
    layer = make(cell)
    x = np.ones((T, B, I))
    before, _ = layer(x)
    for p in layer.parameters():  # what an optimizer does: update .data in place
        p.data -= 0.1 * np.sign(p.data)
    after, _ = layer(x)
    assert not np.allclose(before, after)


# ----------------------------------------------------------------------------------------------
# lengths

def test_full_lengths_equal_no_lengths(cell):
    layer = make(cell, num_layers=2, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(5).standard_normal((T, B, I))
    assert_all_close(run(layer, cell, x, lengths=[T] * B), run(layer, cell, x), rtol=0, atol=0)


def test_zero_length_sequence_keeps_its_initial_state(cell):
    layer = make(cell, num_layers=2, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, B, I))
    hx = state_for(cell, (4, B, H), rng)
    out, fin = layer(x, hx, lengths=[0, 2, 4])
    assert not out[:, 0].any() and not out[2:, 1].any() and out[:, 2].all()
    for f, h in zip(fin if cell == "lstm" else (fin,), hx if cell == "lstm" else (hx,)):
        np.testing.assert_array_equal(f[:, 0], h[:, 0])
    dx, d0 = layer.backward(np.ones_like(out), None)
    assert not dx[:, 0].any() and not dx[2:, 1].any()
    np.testing.assert_array_equal((d0[0] if cell == "lstm" else d0)[:, 0], 0)


def test_each_sequence_is_independent_of_its_padding(cell):
    """A sequence's results do not depend on the values past its length or on its neighbours."""
    layer = make(cell, num_layers=3, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, B, I))
    lengths = [2, 4, 3]
    out, fin = layer(x, lengths=lengths)
    noisy = x.copy()
    noisy[2:, 0] = 100
    out2, fin2 = layer(noisy, lengths=lengths)
    np.testing.assert_array_equal(out, out2)
    alone, fin_alone = layer(x[:2, :1])  # sequence 0 on its own, cut to its length
    np.testing.assert_allclose(out[:2, :1], alone, rtol=1e-12, atol=1e-14)
    f, fa = (fin[0], fin_alone[0]) if cell == "lstm" else (fin, fin_alone)
    np.testing.assert_allclose(f[:, :1], fa, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# dropout

def test_dropout_train_eval_and_reproducibility(cell):
    x = np.random.default_rng(8).standard_normal((T, B, I))
    a = make(cell, num_layers=3, dropout=0.5, seed=11, dtype=np.float64)
    b = make(cell, num_layers=3, dropout=0.5, seed=11, dtype=np.float64)
    a1, _ = a(x)
    a2, _ = a(x)
    b1, _ = b(x)
    b2, _ = b(x)
    np.testing.assert_array_equal(a1, b1)  # same seed, same masks
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)      # a fresh mask on every training call
    assert np.all(a1 != 0)                 # no dropout after the last layer
    a.eval()
    e1, _ = a(x)
    e2, _ = a(x)
    np.testing.assert_array_equal(e1, e2)
    assert not np.array_equal(e1, a1)
    plain = make(cell, num_layers=3, seed=11, dtype=np.float64)
    np.testing.assert_array_equal(e1, plain(x)[0])  # eval mode: no dropout at all
    a.train()
    with rf.no_grad():  # no_grad does not switch dropout off (as in torch)
        n1, _ = a(x)
    c = make(cell, num_layers=3, dropout=0.5, seed=11, dtype=np.float64)
    c(x), c(x)
    np.testing.assert_array_equal(n1, c(x)[0])


def test_dropout_mask_scale():
    """Kept elements are scaled by 1/(1-p); the drop rate is close to p."""
    layer = rf.RNN(1, 1, num_layers=2, dropout=0.3, seed=0, dtype=np.float64)
    mask = layer._dropout_mask((200, 50, 2))
    kept = mask[mask != 0]
    np.testing.assert_allclose(kept, 1 / 0.7)
    assert abs((mask == 0).mean() - 0.3) < 0.02


@pytest.mark.parametrize("bidirectional", [False, True])
def test_dropout_is_honoured_in_backward(cell, bidirectional):
    """Finite differences through a training-mode forward with dropout: a fresh layer with the
    same seed draws the same masks, so the loss is a fixed function of x and the weights."""
    rng = np.random.default_rng(9)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((3, 2, I))
    d_out = rng.standard_normal((3, 2, D * H))
    lengths = [3, 2]
    state = make(cell, num_layers=2, dropout=0.5, seed=1, bidirectional=bidirectional,
                 dtype=np.float64).state_dict()

    def fresh(sd=state):
        layer = make(cell, num_layers=2, dropout=0.5, seed=1, bidirectional=bidirectional,
                     dtype=np.float64)
        layer.load_state_dict(sd)
        return layer

    def loss(xv, sd=state):
        out, _ = fresh(sd)(xv, lengths=lengths)
        return float(np.sum(out * d_out))

    layer = fresh()
    out, _ = layer(x, lengths=lengths)
    dx, _ = layer.backward(d_out)
    eps = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (loss(xp) - loss(xm)) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)
    for name in ("weight_ih_l1", "weight_ih_l0"):
        w = state[name]
        for idx in [(0, 0), (w.shape[0] - 1, w.shape[1] - 1)]:
            sp, sm = dict(state), dict(state)
            sp[name], sm[name] = w.copy(), w.copy()
            sp[name][idx] += eps
            sm[name][idx] -= eps
            g = (loss(x, sp) - loss(x, sm)) / (2 * eps)
            np.testing.assert_allclose(layer.grads[name][idx], g, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# no_grad, threads, chunks

def test_no_grad_is_per_thread(cell):
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def other():
        with rf.no_grad():
            inside.set()
            release.wait(10)
            seen["other"] = rf.is_grad_enabled()

    th = threading.Thread(target=other)
    th.start()
    try:
        assert inside.wait(10)
        assert rf.is_grad_enabled()
        layer = make(cell)
        out, _ = layer(np.ones((T, B, I)))
        layer.backward(np.ones_like(out))  # this thread still records for backward
    finally:
        release.set()
        th.join()
    assert seen["other"] is False


def test_layers_in_several_threads_match_serial(cell):
    rng = np.random.default_rng(10)
    xs = [rng.standard_normal((T, B, I)) for _ in range(4)]
    layers = [make(cell, num_layers=2, bidirectional=True, dtype=np.float64) for _ in xs]
    want = [run(lay, cell, x, lengths=[1, 4, 2]) for lay, x in zip(layers, xs)]
    got = [None] * len(xs)

    def work(k):
        got[k] = run(layers[k], cell, xs[k], lengths=[1, 4, 2])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(xs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for g, w in zip(got, want):
        assert_all_close(g, w, rtol=0, atol=0)


def test_state_carries_across_chunks(cell):
    """Running a sequence in two chunks, passing the final state on, equals one run."""
    layer = make(cell, num_layers=2, dtype=np.float64)
    x = np.random.default_rng(11).standard_normal((6, B, I))
    whole, fin = layer(x)
    first, mid = layer(x[:2])
    second, fin2 = layer(x[2:], mid)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-12, atol=1e-14)
    for a, b in zip(fin if cell == "lstm" else (fin,), fin2 if cell == "lstm" else (fin2,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# state_dict

def test_load_state_dict_checks_keys_and_shapes(cell):
    layer = make(cell, num_layers=2)
    sd = layer.state_dict()
    missing = dict(sd)
    del missing["bias_hh_l1"]
    with pytest.raises(KeyError, match="bias_hh_l1"):
        layer.load_state_dict(missing)
    with pytest.raises(KeyError, match="weight_ih_l2"):
        layer.load_state_dict(dict(sd, weight_ih_l2=np.zeros(3)))
    with pytest.raises(ValueError, match="weight_hh_l0"):
        layer.load_state_dict(dict(sd, weight_hh_l0=np.zeros((2, 2))))
    other = make(cell, num_layers=2, seed=99, dtype=np.float64)
    layer.load_state_dict(other.state_dict())
    for k, v in layer.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_allclose(v, other.state_dict()[k], rtol=1e-7)
    sd = layer.state_dict()
    sd["weight_ih_l0"][...] = 123  # a copy: the layer is untouched
    assert not (layer.weight_ih_l0 == 123).any()


# ----------------------------------------------------------------------------------------------
# backends

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backends_agree(cell, backend, dtype):
    """The compiled backend gives the reference backend's answers through the layers."""
    rng = np.random.default_rng(12)
    layer = make(cell, num_layers=3, bidirectional=True, dtype=dtype, dropout=0.3)
    layer.eval()
    x = rng.standard_normal((T, B, I))
    hx = state_for(cell, (6, B, H), rng, dtype)
    d_out = rng.standard_normal((T, B, 2 * H))
    d_state = state_for(cell, (6, B, H), rng, dtype)
    with rf.use_backend("reference"):
        want = run(layer, cell, x, hx, [2, 4, 1], d_out, d_state)
    with rf.use_backend(backend):
        got = run(layer, cell, x, hx, [2, 4, 1], d_out, d_state)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    assert_all_close(got, want, **tol)
