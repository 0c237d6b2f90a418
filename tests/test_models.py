"""Sequential and the feed-forward modules: shapes, semantics, errors, and a whole-model gradient
check (every layer kind in one Sequential) against central finite differences in float64."""
import numpy as np
import pytest

import rnnfast as rf
from rnnfast.models import build, describe

F64 = np.float64


# -- whole-model gradient check ----------------------------------------------------------------
def _fd_check(model, loss_of, params, rng, dx_input=None, n_probe=5, eps=1e-6, rtol=1e-6):
    """Compare analytic parameter (and input) gradients with central differences on a few
    randomly chosen entries of each array; returns the worst relative error."""
    model.zero_grad()
    value, dx = loss_of(backward=True)
    analytic = {name: p.grad.copy() for name, p in params}
    worst = 0.0
    targets = [(name, p.data, analytic[name]) for name, p in params]
    if dx_input is not None:
        targets.append(("input", dx_input, dx))
    for name, array, grad in targets:
        flat = array.reshape(-1)
        for i in rng.choice(flat.size, size=min(n_probe, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = loss_of()
            flat[i] = old - eps
            down = loss_of()
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            exact = grad.reshape(-1)[i]
            # central differences are exact to ~eps^2 plus rounding ~1e-16/eps: atol 1e-8
            err = abs(numeric - exact) / (1e-8 / rtol + abs(numeric))
            assert err < rtol, f"{name}[{i}]: analytic {exact!r} vs numeric {numeric!r}"
            worst = max(worst, err)
    return worst


@pytest.fixture(params=["reference", "compiled"])
def backend(request):
    """Run a test on each backend (the compiled one only where it is built)."""
    if request.param == "compiled" and not rf.compiled_available():
        pytest.skip("the compiled backend is not built")
    with rf.use_backend(request.param):
        yield request.param


def _reseeding(model, dropouts, seed=5):
    """Fix every Dropout mask across the repeated forward passes of a finite-difference check."""
    for d in dropouts:
        d.rng = np.random.default_rng(seed)


def test_whole_model_gradient_every_layer_kind_from_ids(backend):
    rng = np.random.default_rng(0)
    V, B, T = 11, 4, 6
    drop = rf.Dropout(0.3, seed=1)
    model = rf.Sequential(
        rf.Embedding(V, 5, dtype=F64, seed=0),  # padding rows: see test_embedding_*
        rf.LSTM(5, 4, batch_first=True, bidirectional=True, dtype=F64, seed=1),
        drop,
        rf.Tanh(),
        rf.GRU(8, 3, num_layers=2, batch_first=True, dtype=F64, seed=2),
        rf.ReLU(),
        rf.RNN(3, 4, batch_first=True, dtype=F64, seed=3),
        rf.Sigmoid(),
        rf.Linear(4, 5, dtype=F64, seed=4),
        rf.LastStep(),
        rf.Linear(5, 3, dtype=F64, seed=5),
    )
    ids = rng.integers(0, V, size=(B, T))
    lengths = np.array([6, 2, 4, 1])
    y = np.array([0, 2, 1, 2])
    loss = rf.CrossEntropyLoss()

    def loss_of(backward=False):
        _reseeding(model, [drop])
        value = loss(model(ids, lengths=lengths), y)
        if backward:
            return value, model.backward(loss.backward())
        return value

    params = [(n, p) for n, p in model.named_parameters()]
    assert {n.split(".")[0] for n, _ in params} == {"0", "1", "4", "6", "8", "10"}
    _fd_check(model, loss_of, params, rng)


def test_whole_model_gradient_float_input_bidirectional_last_step(backend):
    rng = np.random.default_rng(1)
    B, T, I = 3, 5, 2
    model = rf.Sequential(
        rf.Linear(I, 4, dtype=F64, seed=0), rf.Tanh(),
        rf.LSTM(4, 3, batch_first=True, bidirectional=True, num_layers=2, dtype=F64, seed=1),
        rf.LastStep(), rf.Sigmoid(), rf.Linear(6, 2, dtype=F64, seed=2))
    x = rng.standard_normal((B, T, I))
    lengths = np.array([5, 3, 1])
    target = rng.standard_normal((B, 2))
    loss = rf.MSELoss()

    def loss_of(backward=False):
        value = loss(model(x, lengths=lengths), target)
        if backward:
            return value, model.backward(loss.backward())
        return value

    _fd_check(model, loss_of, model.named_parameters(), rng, dx_input=x)


def test_time_major_model_gradient_with_bce(backend):
    rng = np.random.default_rng(2)
    T, B, I = 4, 3, 3
    model = rf.Sequential(rf.GRU(I, 5, dtype=F64, seed=0), rf.Dropout(0.0), rf.ReLU(),
                          rf.Linear(5, 1, dtype=F64, seed=1))
    x = rng.standard_normal((T, B, I))
    target = (rng.random((T, B, 1)) > 0.5).astype(F64)
    loss = rf.BCEWithLogitsLoss()

    def loss_of(backward=False):
        value = loss(model(x), target)
        if backward:
            return value, model.backward(loss.backward())
        return value

    _fd_check(model, loss_of, model.named_parameters(), rng, dx_input=x)


# -- Sequential --------------------------------------------------------------------------------
def test_sequential_passes_lengths_and_the_output_sequence():
    rng = np.random.default_rng(3)
    lstm = rf.LSTM(3, 4, batch_first=True, seed=0)
    model = rf.Sequential(lstm, rf.LastStep(), rf.Linear(4, 2, seed=1))
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    lengths = np.array([7, 1, 3, 0, 5])
    got = model(x, lengths=lengths)
    out, (h_n, c_n) = lstm(x, lengths=lengths)
    # the last valid step of a one-direction LSTM is its final state
    expected = h_n[-1] @ model[2].weight.T + model[2].bias
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert model[0] is lstm and len(model) == 3 and list(model)[1] is model[1]


def test_last_step_after_bidirectional_is_each_directions_final_state():
    rng = np.random.default_rng(4)
    for batch_first in (True, False):
        gru = rf.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=batch_first,
                     dtype=F64, seed=0)
        model = rf.Sequential(gru, rf.LastStep())
        x = rng.standard_normal((4, 6, 2) if batch_first else (6, 4, 2))
        lengths = np.array([6, 2, 5, 1])
        got = model(x, lengths=lengths)
        _, h_n = gru(x, lengths=lengths)
        np.testing.assert_allclose(got, np.concatenate([h_n[-2], h_n[-1]], axis=1), atol=1e-12)


def test_last_step_layout_inference_in_sequential():
    bi = rf.GRU(2, 3, bidirectional=True)
    model = rf.Sequential(bi, rf.Dropout(0.1), rf.LastStep(), rf.Linear(6, 2))
    assert model[2]._layout() == (False, True)
    mixed = rf.Sequential(rf.LSTM(2, 3, bidirectional=True, batch_first=True), rf.Linear(6, 4),
                          rf.LastStep())
    assert mixed[2]._layout() == (True, False)  # the Linear mixed the directions
    assert rf.LastStep()._layout() == (True, False)
    assert rf.Sequential(bi, rf.LastStep(batch_first=True))[1]._layout() == (True, True)


def test_last_step_infers_the_layout_through_nested_sequentials():
    # a LastStep after a Sequential that ends in a bidirectional layer takes each direction's
    # final output, exactly as when the layers sit in one flat Sequential
    rng = np.random.default_rng(5)
    make = lambda: rf.LSTM(2, 3, batch_first=True, bidirectional=True, dtype=F64, seed=0)
    nested = rf.Sequential(rf.Sequential(make(), rf.Tanh()), rf.LastStep())
    flat = rf.Sequential(make(), rf.Tanh(), rf.LastStep())
    assert nested[1]._layout() == flat[2]._layout() == (True, True)
    x, lengths = rng.standard_normal((3, 5, 2)), [5, 2, 1]
    np.testing.assert_array_equal(nested(x, lengths=lengths), flat(x, lengths=lengths))
    tail = rf.Sequential(make(), rf.Sequential(rf.LastStep(), rf.Linear(6, 2)))
    assert tail[1][0]._layout() == (True, True)


def test_last_step_explicit_layout_and_backward():
    y = np.arange(2 * 3 * 4, dtype=F64).reshape(3, 2, 4)  # (T, B, F) time-major
    step = rf.LastStep(batch_first=False, bidirectional=True)
    out = step(y, lengths=[2, 3])
    np.testing.assert_array_equal(out[0], np.r_[y[1, 0, :2], y[0, 0, 2:]])
    np.testing.assert_array_equal(out[1], np.r_[y[2, 1, :2], y[0, 1, 2:]])
    dx = step.backward(np.ones((2, 4)))
    assert dx.shape == y.shape and dx.sum() == 8
    assert np.array_equal(rf.LastStep(batch_first=False)(y, lengths=[0, 3])[0], np.zeros(4))
    with pytest.raises(ValueError, match="lengths"):
        step(y, lengths=[4, 1])
    with pytest.raises(ValueError, match="3-D"):
        step(np.zeros((2, 3)))


def test_sequential_casts_floats_and_backward_returns_none_for_ids():
    model = rf.Sequential(rf.Linear(3, 2, dtype=F64))
    assert model(np.ones((2, 3), dtype=np.float32)).dtype == F64
    emb = rf.Sequential(rf.Embedding(5, 2), rf.Linear(2, 1))
    out = emb(np.array([[1, 2], [3, 4]]))
    assert out.dtype == np.float32 and out.shape == (2, 2, 1)
    assert emb.backward(np.ones_like(out)) is None
    with pytest.raises(RuntimeError, match="before forward"):
        rf.Sequential(rf.Tanh()).backward(np.ones(2))


def test_backward_needs_a_forward_that_kept_activations():
    lin = rf.Linear(2, 2)
    with pytest.raises(RuntimeError, match="backward called before"):
        lin.backward(np.ones((1, 2)))
    with rf.no_grad():
        lin(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="no_grad"):
        lin.backward(np.ones((1, 2)))


def test_predict_batches_eval_mode_and_nothing_saved():
    rng = np.random.default_rng(5)
    model = rf.Sequential(rf.Linear(3, 8, seed=0), rf.Dropout(0.5, seed=0), rf.ReLU(),
                          rf.Linear(8, 2, seed=1))
    x = rng.standard_normal((50, 3)).astype(np.float32)
    full = model.eval()(x)
    model.train()
    np.testing.assert_allclose(model.predict(x, batch_size=7), full, rtol=1e-6)
    assert all(m.training for m in model.modules())
    assert model[0]._saved is None


# -- feed-forward modules ----------------------------------------------------------------------
def test_linear_shapes_values_and_errors():
    rng = np.random.default_rng(6)
    lin = rf.Linear(3, 2, dtype=F64, seed=0)
    x = rng.standard_normal((4, 5, 3))
    np.testing.assert_allclose(lin(x), x @ lin.weight.T + lin.bias)
    assert lin(x[0]).shape == (5, 2)
    assert rf.Linear(3, 2, bias=False).named_parameters()[0][0] == "weight"
    assert len(rf.Linear(3, 2, bias=False).parameters()) == 1
    bound = 1 / np.sqrt(3)
    assert np.abs(rf.Linear(3, 50).weight).max() <= bound
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        lin(np.ones((2, 4)))
    with pytest.raises(ValueError, match="in_features"):
        rf.Linear(0, 2)
    with pytest.raises(TypeError, match="dtype"):
        rf.Linear(2, 2, dtype=np.int32)
    with pytest.raises(TypeError, match="numeric"):
        lin(np.array([["a", "b", "c"]]))


def test_argument_checks_agree_with_the_recurrent_layers():
    # dtype=None is float32 for every module (torch's default dtype), not NumPy's float64
    assert rf.Linear(2, 2, dtype=None).dtype == rf.LSTM(2, 2, dtype=None).dtype == np.float32
    assert rf.Embedding(3, 2, dtype=None).weight.dtype == np.float32
    with pytest.raises(TypeError, match="in_features must be an int"):
        rf.Linear(3.0, 2)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        rf.Embedding(3, 2, dtype="bogus")
    with pytest.raises(TypeError, match="lengths must hold integers"):
        rf.LastStep()(np.ones((2, 3, 2)), lengths=[1.0, 2.0])


def test_embedding_lookup_padding_and_errors():
    emb = rf.Embedding(6, 3, padding_idx=-1, seed=0)
    assert emb.padding_idx == 5 and np.all(emb.weight[5] == 0)
    ids = np.array([[0, 5, 2], [2, 2, 5]])
    out = emb(ids)
    np.testing.assert_array_equal(out[0, 2], emb.weight[2])
    emb.backward(np.ones((2, 3, 3), dtype=np.float32))
    g = emb._parameters["weight"].grad
    assert g[2].tolist() == [3, 3, 3] and g[0].tolist() == [1, 1, 1] and not g[5].any()
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        emb(np.array([[6]]))
    with pytest.raises(TypeError, match="integer"):
        emb(np.array([[1.0]]))
    with pytest.raises(ValueError, match="padding_idx"):
        rf.Embedding(3, 2, padding_idx=3)


def test_dropout_training_eval_and_seed():
    x = np.ones((200, 50), dtype=np.float32)
    a = rf.Dropout(0.25, seed=3)(x)
    b = rf.Dropout(0.25, seed=3)(x)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.02 and abs(a.mean() - 1) < 0.03
    drop = rf.Dropout(0.25).eval()
    assert drop(x) is not None and np.array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.backward(x), x)
    assert not rf.Dropout(1.0)(x).any()
    with pytest.raises(ValueError):
        rf.Dropout(1.5)
    with pytest.raises(ValueError):
        rf.Dropout(True)
    assert rf.Dropout(np.float32(0.25)).p == 0.25  # NumPy scalars are numbers too
    # integer input is scaled by 1/(1-p) = 1.25, not by int(1.25) = 1
    kept = rf.Dropout(0.2, seed=0)(np.ones((50, 40), dtype=np.int64))
    assert set(np.unique(kept)) == {0.0, 1.25}


def test_activations_values_and_stability():
    x = np.array([-1000.0, -1.0, 0.0, 2.0, 1000.0])
    np.testing.assert_allclose(rf.Sigmoid()(x), [0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2)), 1])
    np.testing.assert_allclose(rf.Tanh()(x), np.tanh(x))
    relu = rf.ReLU()
    np.testing.assert_array_equal(relu(x), [0, 0, 0, 2, 1000])
    np.testing.assert_array_equal(relu.backward(np.ones(5)), [0, 0, 0, 1, 1])


def test_describe_and_build_round_trip():
    model = rf.Sequential(rf.Embedding(7, 3, padding_idx=0), rf.GRU(3, 4, batch_first=True),
                          rf.LastStep(), rf.Dropout(0.1), rf.Linear(4, 2, dtype=F64),
                          rf.Tanh(), rf.ReLU(), rf.Sigmoid())
    desc = describe(model)
    again = build(desc)
    assert describe(again) == desc
    assert [n for n, _ in again.named_parameters()] == [n for n, _ in model.named_parameters()]
    with pytest.raises(ValueError, match="unknown module class"):
        build({"class": "Nope", "config": {}})


def test_torch_sequential_state_dict_loads_unchanged():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Embedding(9, 4), torch.nn.Linear(4, 3)).double()
    ours = rf.Sequential(rf.Embedding(9, 4, dtype=F64), rf.Linear(4, 3, dtype=F64))
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    ids = np.array([[1, 2, 3], [8, 0, 4]])
    with torch.no_grad():
        expected = tm(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(ours(ids), expected, atol=1e-12)


def test_classifier_matches_torch_forward_and_every_gradient():
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence
    torch.manual_seed(0)
    V, E, H, C, B, T = 13, 5, 4, 3, 4, 6
    emb, lstm = torch.nn.Embedding(V, E, padding_idx=0), torch.nn.LSTM(E, H, batch_first=True,
                                                                         bidirectional=True)
    lin = torch.nn.Linear(2 * H, C)
    for m in (emb, lstm, lin):
        m.double()
    rng = np.random.default_rng(7)
    ids = rng.integers(1, V, size=(B, T))
    lengths = np.array([6, 2, 4, 1])
    for b, n in enumerate(lengths):
        ids[b, n:] = 0
    y = np.array([2, 0, 1, 1])

    packed = pack_padded_sequence(emb(torch.from_numpy(ids)), torch.from_numpy(lengths),
                                  batch_first=True, enforce_sorted=False)
    _, (h_n, _) = lstm(packed)
    scores = lin(torch.cat([h_n[-2], h_n[-1]], dim=1))
    ref = torch.nn.functional.cross_entropy(scores, torch.from_numpy(y))
    ref.backward()

    model = rf.Sequential(rf.Embedding(V, E, padding_idx=0, dtype=F64),
                          rf.LSTM(E, H, batch_first=True, bidirectional=True, dtype=F64),
                          rf.LastStep(), rf.Linear(2 * H, C, dtype=F64))
    torch_params = {}
    for key, m in (("0", emb), ("1", lstm), ("3", lin)):
        for name, p in m.named_parameters():
            torch_params[f"{key}.{name}"] = p
    model.load_state_dict({k: p.detach().numpy() for k, p in torch_params.items()})
    loss = rf.CrossEntropyLoss()
    value = loss(model(ids, lengths=lengths), y)
    model.backward(loss.backward())
    assert value == pytest.approx(ref.item(), rel=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, torch_params[name].grad.numpy(), atol=1e-10,
                                   err_msg=name)
