"""Optimizers step for step against torch.optim (and hand-computed steps), and clipping."""
import math

import numpy as np
import pytest

import rnnfast as rf

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.3, amsgrad=True)),
]


def _run(make_opt, steps=6, seed=0):
    """Parameters after ``steps`` updates driven by a fixed sequence of gradients."""
    rng = np.random.default_rng(seed)
    params = [rf.Parameter(rng.standard_normal((3, 4))), rf.Parameter(rng.standard_normal(5))]
    start = [p.data.copy() for p in params]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    opt = make_opt(params)
    for g in grads:
        opt.zero_grad()
        for p, gi in zip(params, g):
            p.grad += gi
        opt.step()
    return start, grads, [p.data for p in params]


@pytest.mark.parametrize("name,kwargs", CONFIGS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    start, grads, ours = _run(lambda ps: getattr(rf, name)(ps, **kwargs))
    tparams = [torch.tensor(s, requires_grad=True) for s in start]
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    for g in grads:
        topt.zero_grad()
        for p, gi in zip(tparams, g):
            p.grad = torch.tensor(gi)
        topt.step()
    for a, b in zip(ours, tparams):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_first_steps_by_hand():
    start, grads, ours = _run(lambda ps: rf.SGD(ps, lr=0.1), steps=1)
    np.testing.assert_allclose(ours[1], start[1] - 0.1 * grads[0][1])
    # Adam's first step moves every weight by lr * sign(g) (up to eps)
    start, grads, ours = _run(lambda ps: rf.Adam(ps, lr=0.01), steps=1)
    np.testing.assert_allclose(ours[0], start[0] - 0.01 * np.sign(grads[0][0]), rtol=1e-6)
    # AdamW decays before the step: p(1 - lr wd)
    start, grads, ours = _run(lambda ps: rf.AdamW(ps, lr=0.01, weight_decay=0.5), steps=1)
    np.testing.assert_allclose(ours[0], start[0] * (1 - 0.005) - 0.01 * np.sign(grads[0][0]),
                               rtol=1e-6)


def test_float32_parameters_stay_float32_and_model_argument():
    model = rf.Linear(3, 2)
    opt = rf.Adam(model, lr=0.1)
    for p in model.parameters():
        p.grad[...] = 1
    opt.step()
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert opt.params[0] is model.parameters()[0]
    assert opt.steps == 1


def test_optimizer_state_dict_round_trip():
    rng = np.random.default_rng(2)
    a = rf.Parameter(rng.standard_normal(4))
    opt = rf.Adam([a], lr=0.1)
    a.grad[:] = 1
    opt.step()
    saved = opt.state_dict()
    b = rf.Parameter(a.data.copy())
    opt2 = rf.Adam([b], lr=0.1)
    opt2.load_state_dict(saved)
    for p in (a, b):
        p.grad[:] = 0.5
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="parameters"):
        rf.Adam([a, b]).load_state_dict(saved)


def test_bad_arguments():
    p = rf.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        rf.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="Parameters"):
        rf.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        rf.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        rf.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="betas"):
        rf.Adam([p], betas=0.9)
    with pytest.raises(ValueError, match="lr"):
        rf.SGD([p], lr=True)
    assert rf.SGD([p], lr=np.int64(1)).lr == 1.0  # NumPy integers are numbers too
    with pytest.raises(ValueError, match="Nesterov"):
        rf.SGD([p], lr=0.1, nesterov=True)


def test_clip_grad_norm():
    rng = np.random.default_rng(3)
    params = [rf.Parameter(np.zeros((2, 3))), rf.Parameter(np.zeros(4))]
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    before = [p.grad.copy() for p in params]
    assert rf.clip_grad_norm_(params, 10 * norm) == pytest.approx(norm)
    assert all(np.array_equal(p.grad, b) for p, b in zip(params, before))  # under the limit
    assert rf.clip_grad_norm_(params, 0.5) == pytest.approx(norm)
    after = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    assert after == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_allclose(params[0].grad / before[0], 0.5 / norm, rtol=1e-5)
    # infinity norm
    params[1].grad[0] = 7.0
    assert rf.clip_grad_norm_(params, 1.0, norm_type=math.inf) == 7.0
    assert np.abs(params[1].grad).max() == pytest.approx(1.0, rel=1e-5)
    # a non-finite norm leaves the gradients alone
    params[0].grad[0, 0] = np.nan
    assert math.isnan(rf.clip_grad_norm_(params, 1.0))


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal((3, 3)), rng.standard_normal(3)]
    params = [rf.Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad[...] = g
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(tparams, grads):
        p.grad = torch.tensor(g)
    assert rf.clip_grad_norm_(params, 0.7) == pytest.approx(
        torch.nn.utils.clip_grad_norm_(tparams, 0.7).item())
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value():
    p = rf.Parameter(np.zeros(3))
    p.grad[:] = [-5.0, 0.2, 3.0]
    rf.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, 0.2, 1.0]
