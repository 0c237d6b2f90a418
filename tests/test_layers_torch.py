"""rnnfast.RNN/LSTM/GRU against torch.nn.RNN/LSTM/GRU with the same weights.

Every combination of cell, num_layers 1-3, bidirectional, batch_first, bias, lengths (unsorted)
and initial state given or not, in float64 (to 1e-8) and float32 (to 2e-4), on both backends:
outputs, final states, dx, d(initial state) and every weight gradient. torch's side runs through
pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence(total_length=T) when lengths are
given. Also: load_state_dict from a torch module, eval-mode dropout, state_dict key order.
"""
import itertools

import numpy as np
import pytest

import rnnfast as rf

torch = pytest.importorskip("torch")

T, B, I, H = 5, 4, 3, 4
LENGTHS = np.array([3, 5, 1, 4])  # unsorted, one full-length sequence (torch needs lengths >= 1)
CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
TOL = {np.float64: dict(rtol=1e-8, atol=1e-8), np.float32: dict(rtol=2e-4, atol=2e-4)}

BACKENDS = [
    "reference",
    pytest.param("compiled", marks=pytest.mark.skipif(
        not rf.compiled_available(), reason="compiled kernels not built yet")),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny problems: one thread each for torch and rnnfast, so neither spins against the other
    (or against other work on this 2-core machine). Restored afterwards."""
    torch_threads, rf_threads = torch.get_num_threads(), rf.get_num_threads()
    torch.set_num_threads(1)
    rf.set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)
    rf.set_num_threads(rf_threads)


def make_pair(cell, dtype, seed=0, **kw):
    """An rnnfast layer and a torch module holding the same weights."""
    if cell.startswith("rnn"):
        nl = cell.split("_")[1]
        ours = rf.RNN(I, H, nonlinearity=nl, dtype=dtype, seed=seed, **kw)
        theirs = torch.nn.RNN(I, H, nonlinearity=nl, **kw)
    else:
        ours = {"lstm": rf.LSTM, "gru": rf.GRU}[cell](I, H, dtype=dtype, seed=seed, **kw)
        theirs = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H, **kw)
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def torch_run(theirs, cell, x, states, lengths, batch_first, d_out, d_states):
    """torch forward + backward of sum(out*d_out) + sum(state*d_state); numpy results."""
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states] if states is not None else None
    hx = None if st is None else (tuple(st) if cell == "lstm" else st[0])
    if lengths is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        out, fin = theirs(packed, hx)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first,
                                                        total_length=T)
    else:
        out, fin = theirs(xt, hx)
    fin = fin if cell == "lstm" else (fin,)
    loss = (out * torch.tensor(d_out)).sum()
    for f, d in zip(fin, d_states):
        loss = loss + (f * torch.tensor(d)).sum()
    theirs.zero_grad()
    loss.backward()
    return dict(
        out=out.detach().numpy(), fin=[f.detach().numpy() for f in fin], dx=xt.grad.numpy(),
        d0=None if st is None else [s.grad.numpy() for s in st],
        grads={k: p.grad.numpy() for k, p in theirs.named_parameters()})


def ours_run(ours, cell, x, states, lengths, d_out, d_states):
    hx = None if states is None else (tuple(states) if cell == "lstm" else states[0])
    out, fin = ours(x, hx, lengths=lengths)
    fin = fin if cell == "lstm" else (fin,)
    ours.zero_grad()
    dx, d0 = ours.backward(d_out, tuple(d_states) if cell == "lstm" else d_states[0])
    d0 = d0 if cell == "lstm" else (d0,)
    return dict(out=out, fin=list(fin), dx=dx, d0=list(d0),
                grads={k: g.copy() for k, g in ours.grads.items()})


def problem(cell, dtype, num_layers, bidirectional, batch_first, seed=1):
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    x_shape = (B, T, I) if batch_first else (T, B, I)
    out_shape = (B, T, D * H) if batch_first else (T, B, D * H)
    n = 2 if cell == "lstm" else 1
    x = rng.standard_normal(x_shape).astype(dtype)
    states = [0.5 * rng.standard_normal((num_layers * D, B, H)).astype(dtype) for _ in range(n)]
    d_out = rng.standard_normal(out_shape).astype(dtype)
    d_states = [rng.standard_normal((num_layers * D, B, H)).astype(dtype) for _ in range(n)]
    return x, states, d_out, d_states


def compare(got, want, dtype, with_state):
    tol = TOL[dtype]
    np.testing.assert_allclose(got["out"], want["out"], **tol, err_msg="out")
    for k, (g, w) in enumerate(zip(got["fin"], want["fin"])):
        np.testing.assert_allclose(g, w, **tol, err_msg=f"final state {k}")
    np.testing.assert_allclose(got["dx"], want["dx"], **tol, err_msg="dx")
    if with_state:
        for k, (g, w) in enumerate(zip(got["d0"], want["d0"])):
            np.testing.assert_allclose(g, w, **tol, err_msg=f"d initial state {k}")
    assert list(got["grads"]) == list(want["grads"])  # same names, same order
    for name in want["grads"]:
        np.testing.assert_allclose(got["grads"][name], want["grads"][name], **tol, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,use_lengths,with_state",
                         list(itertools.product([1, 2, 3], [False, True], [False, True],
                                                [True, False], [False, True], [True, False])))
@pytest.mark.parametrize("cell", CELLS)
def test_matches_torch(cell, num_layers, bidirectional, batch_first, bias, use_lengths,
                       with_state, dtype, backend):
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
              bias=bias)
    ours, theirs = make_pair(cell, dtype, **kw)
    x, states, d_out, d_states = problem(cell, dtype, num_layers, bidirectional, batch_first)
    lengths = LENGTHS if use_lengths else None
    states = states if with_state else None
    want = torch_run(theirs, cell, x, states, lengths, batch_first, d_out, d_states)
    with rf.use_backend(backend):
        got = ours_run(ours, cell, x, states, lengths, d_out, d_states)
    compare(got, want, dtype, with_state)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_load_state_dict_from_torch(cell, backend):
    """Weights from a torch module (float32 tensors) load into a float64 layer unchanged."""
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True)
    if cell.startswith("rnn"):
        theirs = torch.nn.RNN(I, H, nonlinearity=cell.split("_")[1], **kw)
        ours = rf.RNN(I, H, nonlinearity=cell.split("_")[1], dtype=np.float64, **kw)
    else:
        theirs = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H, **kw)
        ours = {"lstm": rf.LSTM, "gru": rf.GRU}[cell](I, H, dtype=np.float64, **kw)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert ours.state_dict()[k].dtype == np.float64
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy().astype(np.float64))
    theirs = theirs.double()
    x = np.random.default_rng(0).standard_normal((T, B, I))
    with rf.use_backend(backend):
        out, _ = ours(x, lengths=LENGTHS)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor(LENGTHS),
                                                     enforce_sorted=False)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(theirs(packed)[0], total_length=T)
    np.testing.assert_allclose(out, want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_eval_mode_dropout_matches_torch(cell):
    """With dropout > 0, eval mode is deterministic and equals torch's eval mode."""
    ours, theirs = make_pair(cell, np.float64, num_layers=3, dropout=0.5, bidirectional=True)
    ours.eval()
    theirs.eval()
    x, states, d_out, d_states = problem(cell, np.float64, 3, True, False)
    want = torch_run(theirs, cell, x, states, None, False, d_out, d_states)
    got = ours_run(ours, cell, x, states, None, d_out, d_states)
    compare(got, want, np.float64, True)


@pytest.mark.parametrize("cell", CELLS)
def test_all_dropped_matches_torch(cell):
    """dropout=1 zeroes every input to layer 2 in training mode, in torch and here alike."""
    ours, theirs = make_pair(cell, np.float64, num_layers=2, dropout=1.0)
    x, states, d_out, d_states = problem(cell, np.float64, 2, False, False)
    want = torch_run(theirs, cell, x, states, None, False, d_out, d_states)
    got = ours_run(ours, cell, x, states, None, d_out, d_states)
    compare(got, want, np.float64, True)


def test_default_init_matches_torch_distribution():
    """Every parameter is drawn from uniform(-1/sqrt(H), 1/sqrt(H)), as torch draws it."""
    Hbig = 64
    ours = rf.LSTM(8, Hbig, num_layers=2, bidirectional=True, seed=0)
    theirs = torch.nn.LSTM(8, Hbig, num_layers=2, bidirectional=True)
    bound = 1 / np.sqrt(Hbig)
    for (k, v), (k2, w) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert k == k2 and v.shape == tuple(w.shape)
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.9 * bound
        assert abs(v.std() - w.numpy().std()) < 0.2 * bound


def test_repr_matches_torch():
    for kw in [dict(), dict(num_layers=2, bias=False, batch_first=True, dropout=0.5,
                            bidirectional=True)]:
        assert repr(rf.LSTM(3, 4, **kw)) == repr(torch.nn.LSTM(3, 4, **kw))
        assert repr(rf.GRU(3, 4, **kw)) == repr(torch.nn.GRU(3, 4, **kw))
        assert repr(rf.RNN(3, 4, **kw)) == repr(torch.nn.RNN(3, 4, **kw))
