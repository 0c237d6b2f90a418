"""Losses: values and gradients against finite differences and torch, stability, bad targets."""
import numpy as np
import pytest

import rnnfast as rf


def _numeric_grad(loss, scores, target, eps=1e-6):
    g = np.zeros_like(scores)
    flat, gflat = scores.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = loss.value_and_grad(scores, target)[0]
        flat[i] = old - eps
        down = loss.value_and_grad(scores, target)[0]
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


CASES = [
    ("mse", lambda: rf.MSELoss(), (4, 3), lambda r, s: r.standard_normal(s)),
    ("ce2", lambda: rf.CrossEntropyLoss(), (5, 4), lambda r, s: r.integers(0, s[-1], s[:-1])),
    ("ce3", lambda: rf.CrossEntropyLoss(ignore_index=-1), (3, 4, 5),
     lambda r, s: np.where(r.random(s[:-1]) < 0.3, -1, r.integers(0, s[-1], s[:-1]))),
    ("bce", lambda: rf.BCEWithLogitsLoss(), (4, 3), lambda r, s: r.random(s)),
    ("bce_pw", lambda: rf.BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 0.5]), (4, 3),
     lambda r, s: (r.random(s) > 0.5).astype(float)),
]


@pytest.mark.parametrize("name,make,shape,target", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(name, make, shape, target):
    rng = np.random.default_rng(0)
    loss = make()
    scores = rng.standard_normal(shape) * 2
    y = target(rng, shape)
    value = loss(scores, y)
    assert isinstance(value, float)
    np.testing.assert_allclose(loss.backward(), _numeric_grad(loss, scores, y), atol=1e-8)


@pytest.mark.parametrize("name,make,shape,target", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, make, shape, target):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    loss = make()
    scores = rng.standard_normal(shape) * 3
    y = target(rng, shape)
    s = torch.tensor(scores, requires_grad=True)
    if name == "mse":
        ref = torch.nn.functional.mse_loss(s, torch.tensor(y))
    elif name.startswith("ce"):
        t = torch.tensor(y)
        st = s if s.ndim == 2 else s.permute(0, 2, 1)  # torch wants (B, C, T)
        ref = torch.nn.functional.cross_entropy(st, t, ignore_index=loss.ignore_index)
    else:
        pw = None if loss.pos_weight is None else torch.tensor(loss.pos_weight)
        ref = torch.nn.functional.binary_cross_entropy_with_logits(s, torch.tensor(y),
                                                                   pos_weight=pw)
    ref.backward()
    assert loss(scores, y) == pytest.approx(ref.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(loss.backward(), s.grad.numpy(), atol=1e-12)


def test_stable_for_extreme_logits():
    scores = np.array([[1e4, -1e4, 0.0], [-1e30, 1e30, 5.0]])
    ce = rf.CrossEntropyLoss()
    v = ce(scores, np.array([1, 0]))
    assert np.isfinite(v) and v == pytest.approx((2e4 + 2e30) / 2)
    assert np.all(np.isfinite(ce.backward()))
    bce = rf.BCEWithLogitsLoss()
    v = bce(np.array([1e4, -1e4, 1e4]), np.array([1.0, 0.0, 0.0]))
    assert v == pytest.approx(1e4 / 3)
    assert np.all(np.isfinite(bce.backward()))
    f32 = ce(scores.astype(np.float32)[:1], np.array([0]))
    assert f32 == 0.0 and ce.backward().dtype == np.float32


def test_cross_entropy_bad_targets():
    ce = rf.CrossEntropyLoss()
    scores = np.zeros((2, 3))
    with pytest.raises(ValueError, match="class label 3 is out of range"):
        ce(scores, np.array([0, 3]))
    with pytest.raises(ValueError, match="out of range"):
        ce(scores, np.array([-2, 0]))
    with pytest.raises(ValueError, match="shape"):
        ce(scores, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        ce(scores, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        ce(np.zeros(3), np.array(0))
    # all targets ignored: zero loss and zero gradient rather than NaN
    assert ce(scores, np.array([-100, -100])) == 0.0 and not ce.backward().any()


def test_check_target_before_training():
    ce = rf.CrossEntropyLoss()
    ce.check_target((1, 4), np.array([0, 3, 1]))
    with pytest.raises(ValueError, match="out of range"):
        ce.check_target((1, 4), np.array([0, 4]))
    with pytest.raises(ValueError, match=r"\(N, 7\)"):
        ce.check_target((1, 7, 4), np.zeros((3, 6), dtype=int))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        rf.MSELoss().check_target((1, 2), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rf.BCEWithLogitsLoss().check_target((1, 1), np.array([[2.0]]))


def test_mse_and_bce_shape_errors_and_backward_before_call():
    with pytest.raises(ValueError, match="shape"):
        rf.MSELoss()(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        rf.BCEWithLogitsLoss()(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(RuntimeError, match="before"):
        rf.MSELoss().backward()


def test_accuracy():
    ce = rf.CrossEntropyLoss(ignore_index=-1)
    assert ce.accuracy(np.array([[0.0, 1.0], [2.0, 1.0], [0.0, 1.0]]), np.array([1, 1, -1])) \
        == (1, 2)
    assert rf.BCEWithLogitsLoss().accuracy(np.array([-1.0, 2.0]), np.array([0.0, 0.0])) == (1, 2)
    assert rf.MSELoss().accuracy(np.zeros(2), np.zeros(2)) is None
    assert "ignore_index=-1" in repr(ce)
