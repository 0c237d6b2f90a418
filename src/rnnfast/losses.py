"""Loss functions: each gives its value (mean over the batch) and the gradient of that value.

Call a loss on (scores, target) to get a Python float; ``backward()`` then returns
d(loss)/d(scores), shaped like scores, ready for ``model.backward``. All three stay finite for any
finite logits (log-sum-exp shifted by the row maximum; softplus in its exp(-|x|) form).

* MSELoss: scores and target of one shape; mean of squared differences.
* CrossEntropyLoss: scores (B, C) or (B, T, C) raw logits, integer targets (B,) or (B, T);
  targets equal to ``ignore_index`` (default -100, e.g. padding) count for nothing.
* BCEWithLogitsLoss: logits and targets in [0, 1] of one shape, optional ``pos_weight``.

Not here: other reductions, class weights, label smoothing.

>>> import numpy as np, rnnfast as rf
>>> loss = rf.CrossEntropyLoss()
>>> scores = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])   # (B, C)
>>> round(loss(scores, np.array([0, 1])), 4)
0.1324
>>> loss.backward().shape                                      # d loss / d scores
(2, 3)
"""
import numpy as np
from scipy.special import expit

__all__ = ["Loss", "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss"]


def _float_array(a, name):
    a = np.asarray(a)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.floating)
                               or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a


class Loss:
    """Base class: ``value = loss(scores, target)``, then ``dscores = loss.backward()``."""

    def __call__(self, scores, target):
        return self.forward(scores, target)

    def forward(self, scores, target):
        value, grad = self.value_and_grad(scores, target)
        self._grad = grad
        return value

    def backward(self):
        """d(loss)/d(scores) of the last call, shaped like its scores."""
        grad = getattr(self, "_grad", None)
        if grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss was "
                               "computed")
        return grad

    def value_and_grad(self, scores, target):
        """(loss as a float, d(loss)/d(scores)) without keeping anything."""
        raise NotImplementedError

    def check_target(self, scores_shape, target):
        """Raise a clear error if ``target`` (the whole data set's) cannot go with scores whose
        per-sample shape is ``scores_shape[1:]``. Used by fit() before training starts."""

    def count(self, target):
        """How much a batch with this ``target`` weighs in a mean over several batches: the
        number of samples, or of the terms the loss averages where some count for nothing
        (CrossEntropyLoss's ignore_index). fit() and evaluate() weight batch losses by it, so
        their figures are the loss of the whole data set, whatever the batch size."""
        return len(target)

    def accuracy(self, scores, target):
        """(number correct, number counted) for classification losses; None where it does not
        apply."""
        return None

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MSELoss(Loss):
    """mean((scores - target)^2) over every element.

    >>> import numpy as np, rnnfast as rf
    >>> rf.MSELoss()(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    2.0
    """

    def value_and_grad(self, scores, target):
        scores = _float_array(scores, "scores")
        target = _float_array(target, "target")
        if target.shape != scores.shape:
            raise ValueError(f"MSELoss target must have the scores' shape {scores.shape}, "
                             f"got {target.shape}")
        diff = scores - target.astype(scores.dtype, copy=False)
        n = max(diff.size, 1)
        value = float(np.vdot(diff, diff).real / n)
        return value, (2.0 / n) * diff

    def check_target(self, scores_shape, target):
        target = _float_array(target, "y")
        if target.shape[1:] != tuple(scores_shape[1:]):
            raise ValueError(f"y must have shape (N, {', '.join(map(str, scores_shape[1:]))}) to "
                             f"match the model's output, got {target.shape}")


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on raw scores: -mean(log softmax(scores)[target]).

    scores (B, C) with target (B,), or (B, T, C) with target (B, T); targets are class indices in
    [0, C) or ``ignore_index``. The mean runs over the targets that are not ignored (0.0, with a
    zero gradient, when all are).

    >>> import numpy as np, rnnfast as rf
    >>> loss = rf.CrossEntropyLoss(ignore_index=-1)
    >>> scores = np.zeros((1, 3, 4))                              # (B, T, C)
    >>> round(loss(scores, np.array([[2, 0, -1]])), 4)            # log(4)
    1.3863
    """

    def __init__(self, ignore_index=-100):
        self.ignore_index = int(ignore_index)

    def get_config(self):
        return {"ignore_index": self.ignore_index}

    def _check(self, scores, target):
        if scores.ndim not in (2, 3):
            raise ValueError(f"CrossEntropyLoss scores must be (B, C) or (B, T, C), got shape "
                             f"{scores.shape}")
        target = np.asarray(target)
        if target.dtype == bool or not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"CrossEntropyLoss targets must be integer class indices, got "
                            f"dtype {target.dtype}")
        if target.shape != scores.shape[:-1]:
            raise ValueError(f"CrossEntropyLoss target must have shape {scores.shape[:-1]} for "
                             f"scores of shape {scores.shape}, got {target.shape}")
        self._check_range(target, scores.shape[-1])
        return target

    def _check_range(self, target, C):
        bad = (target != self.ignore_index) & ((target < 0) | (target >= C))
        if bad.any():
            value = target[bad].flat[0]
            raise ValueError(f"class label {value} is out of range: labels must lie in [0, {C}) "
                             f"(or equal ignore_index={self.ignore_index})")

    def value_and_grad(self, scores, target):
        scores = _float_array(scores, "scores")
        target = self._check(scores, target)
        C = scores.shape[-1]
        s = scores.reshape(-1, C)
        t = target.reshape(-1)
        keep = t != self.ignore_index
        n = int(keep.sum())
        # log softmax with the row maximum subtracted: exp never overflows
        shifted = s - s.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_z
        grad = np.exp(log_p)  # softmax
        rows = np.nonzero(keep)[0]
        picked = log_p[rows, t[rows]]
        value = float(-picked.sum() / n) if n else 0.0
        grad[rows, t[rows]] -= 1.0
        grad[~keep] = 0.0
        grad /= max(n, 1)
        return value, grad.reshape(scores.shape)

    def count(self, target):
        return int(np.count_nonzero(np.asarray(target) != self.ignore_index))

    def check_target(self, scores_shape, target):
        target = np.asarray(target)
        want = (len(scores_shape) - 1)  # per-sample target dims: 1 for (B, C), 2 for (B, T, C)
        if target.dtype == bool or not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"y must hold integer class labels for CrossEntropyLoss, got dtype "
                            f"{target.dtype}")
        if target.ndim != want or (want == 2 and target.shape[1] != scores_shape[1]):
            expect = "(N,)" if want == 1 else f"(N, {scores_shape[1]})"
            dims = ", ".join(map(str, scores_shape[1:]))
            raise ValueError(f"y must have shape {expect} for a model whose output is "
                             f"(batch, {dims}), got {target.shape}")
        self._check_range(target, scores_shape[-1])

    def accuracy(self, scores, target):
        target = np.asarray(target)
        keep = target != self.ignore_index
        pred = np.asarray(scores).argmax(axis=-1)
        return int((pred == target)[keep].sum()), int(keep.sum())


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits: mean of -[w y log s(x) + (1 - y) log(1 - s(x))], s the
    sigmoid and w = ``pos_weight`` (1 by default; scalar or broadcastable to the last axis).

    >>> import numpy as np, rnnfast as rf
    >>> round(rf.BCEWithLogitsLoss()(np.array([0.0, 1000.0]), np.array([1.0, 1.0])), 4)
    0.3466
    """

    def __init__(self, pos_weight=None):
        self.pos_weight = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)

    def get_config(self):
        return {"pos_weight": None if self.pos_weight is None else self.pos_weight.tolist()}

    def value_and_grad(self, logits, target):
        x = _float_array(logits, "logits")
        y = _float_array(target, "target").astype(x.dtype, copy=False)
        if y.shape != x.shape:
            raise ValueError(f"BCEWithLogitsLoss target must have the logits' shape {x.shape}, "
                             f"got {y.shape}")
        n = max(x.size, 1)
        # -log s(x) = softplus(-x) and -log(1 - s(x)) = softplus(x); softplus(a) = max(a, 0) +
        # log1p(exp(-|a|)) never overflows
        log1p_term = np.log1p(np.exp(-np.abs(x)))
        sp_neg = np.maximum(-x, 0) + log1p_term  # -log s(x)
        sp_pos = np.maximum(x, 0) + log1p_term   # -log(1 - s(x))
        s = expit(x)
        if self.pos_weight is None:
            value = float(np.sum(y * sp_neg + (1 - y) * sp_pos) / n)
            grad = (s - y) / n
        else:
            w = self.pos_weight.astype(x.dtype)
            value = float(np.sum(w * y * sp_neg + (1 - y) * sp_pos) / n)
            grad = (s * (w * y + 1 - y) - w * y) / n
        return value, np.asarray(grad, dtype=x.dtype)

    def check_target(self, scores_shape, target):
        target = _float_array(target, "y")
        if target.shape[1:] != tuple(scores_shape[1:]):
            raise ValueError(f"y must have shape (N, {', '.join(map(str, scores_shape[1:]))}) to "
                             f"match the model's output, got {target.shape}")
        if target.size and (target.min() < 0 or target.max() > 1):
            raise ValueError(f"BCEWithLogitsLoss targets must lie in [0, 1], got values from "
                             f"{target.min()} to {target.max()}")

    def accuracy(self, logits, target):
        pred = np.asarray(logits) > 0
        return int((pred == (np.asarray(target) > 0.5)).sum()), int(np.asarray(target).size)
