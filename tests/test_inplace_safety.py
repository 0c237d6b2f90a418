"""Arrays a module keeps for backward cannot be changed behind its back: outputs it keeps are
returned read-only (an in-place edit raises, as in torch) and inputs it keeps are copied when the
caller could still change them. Without this, gradients would be silently wrong."""
import numpy as np
import pytest

import rnnfast as rf


@pytest.mark.parametrize("cls", [rf.RNN, rf.LSTM, rf.GRU])
def test_recurrent_output_is_read_only_while_training(cls):
    layer = cls(3, 4, seed=0)
    x = np.ones((5, 2, 3), np.float32)
    out, _ = layer(x)
    with pytest.raises(ValueError, match="read-only"):
        out *= 0.5
    dx_first, _ = layer.backward(np.ones_like(out))
    layer.zero_grad()
    dx_again, _ = layer.backward(np.ones_like(out))
    np.testing.assert_array_equal(dx_first, dx_again)
    with rf.no_grad():
        out, _ = layer(x)
    out *= 0.5  # nothing is kept, so the caller owns the output


@pytest.mark.parametrize("cls", [rf.Tanh, rf.Sigmoid])
def test_activation_output_is_read_only_while_training(cls):
    act = cls()
    y = act(np.linspace(-2, 2, 6))
    with pytest.raises(ValueError, match="read-only"):
        y[0] = 0
    with rf.no_grad():
        act(np.zeros(3))[0] = 1.0


def test_linear_gradient_survives_in_place_edit_of_its_input():
    lin = rf.Linear(3, 2, dtype=np.float64, seed=0)
    x = np.arange(6.0).reshape(2, 3)
    lin(x)
    x *= 10  # the caller reuses its buffer before backward
    lin.backward(np.ones((2, 2)))
    np.testing.assert_allclose(lin.grads["weight"], np.ones((2, 2)).T @ np.arange(6.0).reshape(2, 3))


def test_embedding_gradient_survives_in_place_edit_of_ids():
    emb = rf.Embedding(5, 2, seed=0)
    ids = np.array([[1, 2]])
    emb(ids)
    ids[:] = 4
    emb.backward(np.ones((1, 2, 2), emb.weight.dtype))
    assert emb.grads["weight"][4].sum() == 0 and emb.grads["weight"][1].sum() == 2


def test_models_chain_through_read_only_outputs():
    model = rf.Sequential(rf.Embedding(6, 4, seed=0), rf.GRU(4, 5, batch_first=True, seed=1),
                          rf.Tanh(), rf.LastStep(), rf.Linear(5, 2, seed=2))
    ids = np.array([[1, 2, 3], [4, 5, 0]])
    scores = model(ids, lengths=[3, 2])
    model.backward(np.ones_like(scores))
    assert all(np.isfinite(g).all() for g in model.grads.values())
