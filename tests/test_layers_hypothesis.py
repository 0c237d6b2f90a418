"""Random layer configurations against a plain per-step composition of the reference step kernels.

The twin below is written the obvious way: a Python loop over time calling
rnnfast.reference.<cell>_step_forward, with the reverse direction walking t = T-1 .. 0 and every
sequence frozen (output zero, state kept) outside its length; backward replays the tape in reverse
through <cell>_step_backward. The layer (one sequence-kernel call per layer and direction, with
gathers for the reverse direction) must agree with it in float64 for any configuration.
"""
import numpy as np
import pytest

import rnnfast as rf
from rnnfast import reference as R

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

BACKENDS = [
    "reference",
    pytest.param("compiled", marks=pytest.mark.skipif(
        not rf.compiled_available(), reason="compiled kernels not built yet")),
]


# ----------------------------------------------------------------------------------------------
# the per-step twin

def step_forward(cell, x_t, state, w):
    if cell == "lstm":
        h, c, saved = R.lstm_step_forward(x_t, state[0], state[1], *w)
        return (h, c), saved
    if cell == "gru":
        h, saved = R.gru_step_forward(x_t, state[0], *w)
    else:
        h, saved = R.rnn_step_forward(x_t, state[0], *w, nonlinearity=cell.split("_")[1])
    return (h,), saved


def step_backward(cell, d_new, saved):
    if cell == "lstm":
        dx, dh, dc, *dw = R.lstm_step_backward(d_new[0], d_new[1], saved)
        return dx, (dh, dc), dw
    fn = R.gru_step_backward if cell == "gru" else R.rnn_step_backward
    dx, dh, *dw = fn(d_new[0], saved)
    return dx, (dh,), dw


def twin_direction_forward(cell, x, state0, w, lengths, reverse):
    T, B, _ = x.shape
    H = w[1].shape[1]
    y = np.zeros((T, B, H))
    state, tape = state0, []
    for t in (reversed(range(T)) if reverse else range(T)):
        new, saved = step_forward(cell, x[t], state, w)
        valid = (t < lengths)[:, None]
        state = tuple(np.where(valid, n, s) for n, s in zip(new, state))
        y[t] = np.where(valid, new[0], 0)
        tape.append((t, valid, saved))
    return y, state, tape


def twin_direction_backward(cell, dy, d_final, tape, in_size, grads, names):
    dx = np.zeros((dy.shape[0], dy.shape[1], in_size))
    d = d_final
    for t, valid, saved in reversed(tape):
        # forward: y[t] = h_new where valid; state = h_new (c_new) where valid, else kept
        d_new = (np.where(valid, d[0] + dy[t], 0),) + tuple(np.where(valid, v, 0) for v in d[1:])
        dx[t], d_prev, dws = step_backward(cell, d_new, saved)
        d = tuple(np.where(valid, p, v) for p, v in zip(d_prev, d))
        for name, dw in zip(names, dws):
            if dw is not None:
                grads[name] = grads.get(name, 0) + dw
    return dx, d


def twin(cell, cfg, sd, x, states, lengths, d_out, d_states):
    """Everything in time-major float64; returns out, finals, dx, d_initials, grads."""
    L, D, H = cfg["num_layers"], 2 if cfg["bidirectional"] else 1, cfg["hidden_size"]
    T, B, _ = x.shape
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    n = len(states)
    finals = [[None] * (L * D) for _ in range(n)]
    tapes, inputs = [], []
    layer_in = x
    for layer in range(L):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = [sd["weight_ih" + sfx], sd["weight_hh" + sfx],
                 sd.get("bias_ih" + sfx), sd.get("bias_hh" + sfx)]
            k = layer * D + d
            y, fin, tape = twin_direction_forward(cell, layer_in, tuple(s[k] for s in states), w,
                                                  lengths, reverse=bool(d))
            outs.append(y)
            tapes.append((k, sfx, tape))
            for s in range(n):
                finals[s][k] = fin[s]
        inputs.append(layer_in)
        layer_in = np.concatenate(outs, axis=2)
    out = layer_in

    grads, d_init = {}, [[None] * (L * D) for _ in range(n)]
    g = d_out
    for layer in reversed(range(L)):
        d_in = 0
        for d in range(D):
            k, sfx, tape = tapes[layer * D + d]
            names = [p + sfx for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            dx, d0 = twin_direction_backward(cell, g[:, :, d * H:(d + 1) * H],
                                             tuple(s[k] for s in d_states), tape,
                                             inputs[layer].shape[2], grads, names)
            d_in = d_in + dx
            for s in range(n):
                d_init[s][k] = d0[s]
        g = d_in
    return out, [np.stack(f) for f in finals], g, [np.stack(f) for f in d_init], grads


# ----------------------------------------------------------------------------------------------
# random configurations

@st.composite
def configurations(draw):
    cell = draw(st.sampled_from(["rnn_tanh", "rnn_relu", "lstm", "gru"]))
    cfg = dict(input_size=draw(st.integers(1, 4)), hidden_size=draw(st.integers(1, 4)),
               num_layers=draw(st.integers(1, 3)), bias=draw(st.booleans()),
               batch_first=draw(st.booleans()), bidirectional=draw(st.booleans()),
               seed=draw(st.integers(0, 2**16)))
    T, B = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    lengths = draw(st.none() | st.lists(st.integers(0, T), min_size=B, max_size=B))
    with_state = draw(st.booleans())
    with_d_state = draw(st.booleans())
    data_seed = draw(st.integers(0, 2**16))
    return cell, cfg, T, B, lengths, with_state, with_d_state, data_seed


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_layer_matches_per_step_twin(backend, conf):
    cell, cfg, T, B, lengths, with_state, with_d_state, data_seed = conf
    rng = np.random.default_rng(data_seed)
    L, D, H = cfg["num_layers"], 2 if cfg["bidirectional"] else 1, cfg["hidden_size"]
    n = 2 if cell == "lstm" else 1
    if cell.startswith("rnn"):
        layer = rf.RNN(nonlinearity=cell.split("_")[1], dtype=np.float64, **cfg)
    else:
        layer = {"lstm": rf.LSTM, "gru": rf.GRU}[cell](dtype=np.float64, **cfg)
    x = rng.standard_normal((T, B, cfg["input_size"]))
    states = [0.5 * rng.standard_normal((L * D, B, H)) for _ in range(n)]
    d_out = rng.standard_normal((T, B, D * H))
    d_states = [rng.standard_normal((L * D, B, H)) for _ in range(n)]
    if not with_d_state:
        d_states = [np.zeros_like(s) for s in d_states]

    want_out, want_fin, want_dx, want_d0, want_grads = twin(
        cell, cfg, layer.state_dict(), x, states if with_state else
        [np.zeros_like(s) for s in states], lengths, d_out, d_states)

    edge = (lambda a: a.transpose(1, 0, 2)) if cfg["batch_first"] else (lambda a: a)
    pack = (lambda s: tuple(s)) if cell == "lstm" else (lambda s: s[0])
    with rf.use_backend(backend):
        out, fin = layer(edge(x), pack(states) if with_state else None, lengths=lengths)
        dx, d0 = layer.backward(edge(d_out), pack(d_states) if with_d_state else None)
    fin, d0 = (fin, d0) if cell == "lstm" else ((fin,), (d0,))

    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(edge(out), want_out, **tol)
    np.testing.assert_allclose(edge(dx), want_dx, **tol)
    for got, want in zip(fin, want_fin):
        np.testing.assert_allclose(got, want, **tol)
    for got, want in zip(d0, want_d0):
        np.testing.assert_allclose(got, want, **tol)
    assert set(layer.grads) == set(want_grads)
    for name, g in layer.grads.items():
        np.testing.assert_allclose(g, want_grads[name], err_msg=name, **tol)
