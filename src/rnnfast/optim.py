"""Optimizers (SGD, Adam, AdamW) that update Parameters in place, and gradient clipping.

The update rules are torch.optim's, step for step, so a model trained here follows the same path
it would in PyTorch from the same weights and gradients. An optimizer holds the Parameter objects
(not copies): ``model.backward`` accumulates into ``p.grad``, ``opt.step()`` changes ``p.data``,
``opt.zero_grad()`` (or ``model.zero_grad()``) clears the gradients.

Not here: parameter groups, learning-rate schedules (change ``opt.lr`` between steps).

>>> import numpy as np, rnnfast as rf
>>> model = rf.Linear(3, 1)
>>> opt = rf.Adam(model.parameters(), lr=1e-2)
>>> y = model(np.ones((4, 3)))
>>> _ = model.backward(np.ones_like(y))
>>> norm = rf.clip_grad_norm_(model.parameters(), max_norm=1.0)
>>> opt.step(); opt.zero_grad()
"""
import math
import numbers

import numpy as np

from ._module import Module, Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_", "clip_grad_value_"]


def _parameter_list(params):
    if isinstance(params, Module):
        params = params.parameters()
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"optimizers take rnnfast Parameters (model.parameters()), got "
                            f"{type(p).__name__}")
    return params


def _non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: holds the Parameters and per-parameter state; subclasses implement ``step``."""

    def __init__(self, params, lr):
        self.params = _parameter_list(params)
        self.lr = _non_negative(lr, "lr")
        self.state = [dict() for _ in self.params]
        self.steps = 0

    def zero_grad(self):
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        raise NotImplementedError

    def state_dict(self):
        """{"steps": n, "state": [per-parameter arrays]} (copies), for checkpointing."""
        return {"steps": self.steps,
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state):
        if len(state["state"]) != len(self.params):
            raise ValueError(f"optimizer state holds {len(state['state'])} parameters, this "
                             f"optimizer has {len(self.params)}")
        self.steps = int(state["steps"])
        self.state = [{k: np.array(v, dtype=p.dtype) for k, v in s.items()}
                      for s, p in zip(state["state"], self.params)]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (classical or Nesterov) and L2 decay.

    As torch.optim.SGD: g = grad + weight_decay * p; buf = momentum * buf + (1 - dampening) * g
    (buf = g on the first step); g = g + momentum * buf if nesterov else buf; p -= lr * g.

    >>> import rnnfast as rf
    >>> opt = rf.SGD(rf.Linear(2, 2).parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, lr)
        self.momentum = _non_negative(momentum, "momentum")
        self.dampening = _non_negative(dampening, "dampening")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self):
        self.steps += 1
        for p, state in zip(self.params, self.state):
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
                else:
                    buf *= self.momentum
                    buf += (1 - self.dampening) * g
                g = g + self.momentum * buf if self.nesterov else buf
            p.data -= (self.lr * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with torch's bias correction; ``weight_decay`` adds L2 to the gradient.

    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    >>> import rnnfast as rf
    >>> opt = rf.Adam(rf.Linear(2, 2).parameters(), lr=1e-3, betas=(0.9, 0.999))
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, lr)
        try:
            b1, b2 = betas
            ok = 0 <= b1 < 1 and 0 <= b2 < 1
        except (TypeError, ValueError):  # not a pair of numbers
            ok = False
        if not ok:
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        self.betas = (float(b1), float(b2))
        self.eps = _non_negative(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.amsgrad = bool(amsgrad)

    def step(self):
        self.steps += 1
        t = self.steps
        b1, b2 = self.betas
        correction1 = 1 - b1 ** t
        correction2 = 1 - b2 ** t
        for p, state in zip(self.params, self.state):
            g = p.grad
            if self.weight_decay:
                if self._decoupled:  # AdamW: shrink the weights, leave the gradient alone
                    p.data *= 1 - self.lr * self.weight_decay
                else:
                    g = g + self.weight_decay * p.data
            if not state:
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
                if self.amsgrad:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            if self.amsgrad:
                np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                v = state["max_exp_avg_sq"]
            denom = np.sqrt(v) / math.sqrt(correction2) + self.eps
            p.data -= ((self.lr / correction1) * m / denom).astype(p.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay before
    the Adam step. Default weight_decay 0.01, as torch.optim.AdamW.

    >>> import rnnfast as rf
    >>> opt = rf.AdamW(rf.Linear(2, 2).parameters(), lr=1e-3, weight_decay=0.01)
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scale all gradients together so their global norm is at most ``max_norm``; returns the norm
    before clipping (as torch.nn.utils.clip_grad_norm_). A non-finite norm leaves them unchanged.

    >>> import numpy as np, rnnfast as rf
    >>> p = rf.Parameter(np.zeros(2)); p.grad[:] = [3.0, 4.0]
    >>> rf.clip_grad_norm_([p], 1.0), np.round(p.grad, 6).tolist()
    (5.0, [0.6, 0.8])
    """
    params = _parameter_list(parameters)
    max_norm = _non_negative(max_norm, "max_norm")
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max((float(np.abs(p.grad).max()) if p.grad.size else 0.0) for p in params)
    else:
        total = sum(float(np.sum(np.abs(p.grad.astype(np.float64)) ** norm_type)) for p in params)
        total = total ** (1.0 / norm_type)
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for p in params:
            p.grad *= p.dtype.type(scale)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    clip_value = _non_negative(clip_value, "clip_value")
    for p in _parameter_list(parameters):
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
