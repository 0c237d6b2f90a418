"""The training loop: fit(), predict(), evaluate(), History, EarlyStopping.

fit() reads like Keras but is a plain function over plain objects: it slices minibatches along
axis 0 of X (so recurrent layers must be built with ``batch_first=True``), runs forward, the loss,
backward, optional clipping and the optimizer step, and returns a History of per-epoch figures.
Nothing global is touched; the model is trained in place.

Arrays: X (N, ...) inputs, e.g. (N, T) token ids or (N, T, I) floats; y (N, ...) targets in the
form the loss wants; lengths (N,) valid steps per sequence, or None.

>>> import numpy as np, rnnfast as rf
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((64, 10, 1)).astype(np.float32)     # (N, T, I)
>>> y = (X.sum(axis=(1, 2)) > 0).astype(np.int64)                # (N,)
>>> model = rf.Sequential(rf.GRU(1, 8, batch_first=True, seed=0), rf.LastStep(),
...                       rf.Linear(8, 2, seed=0))
>>> history = rf.fit(model, X, y, loss=rf.CrossEntropyLoss(),
...                  optimizer=rf.Adam(model.parameters(), lr=1e-2), epochs=2, batch_size=16,
...                  progress=False)
>>> sorted(history.history)
['accuracy', 'loss', 'samples_per_sec', 'time']
"""
import math
import sys
import time
import warnings

import numpy as np
from tqdm import tqdm

from ._module import Module, no_grad
from .models import _is_recurrent, _takes_lengths
from .optim import clip_grad_norm_

__all__ = ["fit", "predict", "evaluate", "History", "EarlyStopping", "StopTraining"]


class StopTraining(Exception):
    """Raise from a callback to end fit() cleanly after the current epoch."""


class History:
    """Per-epoch figures of one fit() call.

    ``history.history`` maps "loss", "accuracy" (classification losses), "val_loss",
    "val_accuracy" (with validation data), "time" (seconds) and "samples_per_sec" to one value per
    epoch; ``history["loss"]`` is a shortcut. ``epoch`` lists the epoch indices run;
    ``stopped_early``, ``interrupted`` (Ctrl-C) and ``best_epoch`` (early stopping) say how it
    ended.
    """

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.stopped_early = False
        self.interrupted = False
        self.best_epoch = None

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs,
    then (``restore_best_weights``) put back the weights of the best epoch.

    ``mode`` "min" or "max"; "auto" means "max" for accuracies and "min" otherwise.

    >>> import rnnfast as rf
    >>> stop = rf.EarlyStopping(monitor="val_loss", patience=3)
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="auto",
                 restore_best_weights=True):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) \
                or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = bool(restore_best_weights)
        self.reset()

    def reset(self):
        self.best = None
        self.best_epoch = None
        self.best_state = None
        self.wait = 0

    def _improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch, logs, model):
        """Record this epoch; True when training should stop: after ``patience`` epochs in a row
        without improvement (patience=2: the best epoch, two more, stop), as Keras counts."""
        if self.monitor not in logs:
            raise ValueError(f"early stopping monitors {self.monitor!r}, which fit() does not "
                             f"report; available: {sorted(logs)}")
        value = float(logs[self.monitor])
        if math.isfinite(value) and self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = model.state_dict()
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model):
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)


# -- helpers ------------------------------------------------------------------------------------
def _call(model, x, lengths):
    out = model(x, lengths=lengths) if lengths is not None else model(x)
    return out[0] if isinstance(out, tuple) else out  # a bare recurrent layer returns (out, state)


def _count(loss, target):
    """The weight of a batch's mean loss in the data set's mean (Loss.count; samples otherwise)."""
    count = getattr(loss, "count", None)
    return count(target) if count is not None else len(target)


def _check_model(model, lengths_given):
    if not isinstance(model, Module):
        raise TypeError(f"model must be an rnnfast Module, got {type(model).__name__}")
    for m in model.modules():
        if _is_recurrent(m) and not m.batch_first:
            raise ValueError(f"{type(m).__name__} has batch_first=False, but fit()/predict() take "
                             "batches along axis 0 of X; build recurrent layers with "
                             "batch_first=True")
    if lengths_given and not _takes_lengths(model):
        raise ValueError(f"lengths were given but {type(model).__name__}.forward takes no lengths")


def _check_loss_and_optimizer(model, loss, optimizer):
    if isinstance(loss, type) or not callable(getattr(loss, "backward", None)):
        raise TypeError(f"loss must be a loss object such as rf.CrossEntropyLoss(), got {loss!r}")
    if isinstance(optimizer, type) or not callable(getattr(optimizer, "step", None)):
        raise TypeError("optimizer must be an optimizer object such as "
                        f"rf.Adam(model.parameters()), got {optimizer!r}")
    mine, theirs = {id(p) for p in model.parameters()}, getattr(optimizer, "params", None)
    if mine and theirs is not None and not any(id(p) in mine for p in theirs):
        raise ValueError("the optimizer updates none of this model's parameters, so training "
                         "would change nothing; build it from model.parameters() (after "
                         "rf.load, from the loaded model's)")


def _as_inputs(X, name="X"):
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError(f"{name} must have a batch axis (axis 0), got a scalar")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number)):
        raise TypeError(f"{name} must be a numeric array, got dtype {X.dtype}")
    return X


def _as_lengths(lengths, N, name="lengths"):
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.shape[0] != N:
        raise ValueError(f"{name} must hold one length per sample (N={N}), got shape "
                         f"{lengths.shape}")
    return lengths


def _modes(model):
    return [(m, m.training) for m in model.modules()]


def _restore_modes(modes):
    for m, training in modes:
        m.training = training


def _show_progress(progress):
    if progress == "always":
        return True
    if not progress:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# -- public ----------------------------------------------------------------------------------------
def predict(model, X, batch_size=256, lengths=None):
    """The model's outputs for X, ``batch_size`` samples at a time, in eval mode and under
    no_grad (nothing kept for backward); the modules' train/eval modes are restored afterwards.

    X (N, ...) -> (N, ...) as the model maps one batch.

    >>> import numpy as np, rnnfast as rf
    >>> rf.predict(rf.Linear(3, 2), np.zeros((1000, 3)), batch_size=128).shape
    (1000, 2)
    """
    X = _as_inputs(X)
    lengths = _as_lengths(lengths, len(X))
    _check_model(model, lengths is not None)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    modes = _modes(model)
    model.eval()
    try:
        with no_grad():
            outs = [_call(model, X[s:s + batch_size],
                          None if lengths is None else lengths[s:s + batch_size])
                    for s in range(0, len(X), batch_size)]
    finally:
        _restore_modes(modes)
    if not outs:
        return np.zeros((0,), dtype=getattr(model, "dtype", None) or np.float32)
    return np.concatenate(outs, axis=0)


def evaluate(model, X, y, loss, batch_size=256, lengths=None):
    """{"loss": mean loss, "accuracy": fraction correct (classification losses only)} over X, y.

    >>> import numpy as np, rnnfast as rf
    >>> sorted(rf.evaluate(rf.Linear(3, 2), np.zeros((8, 3)), np.zeros(8, dtype=int),
    ...                    rf.CrossEntropyLoss()))
    ['accuracy', 'loss']
    """
    X = _as_inputs(X)
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} samples but X has {len(X)}")
    scores = predict(model, X, batch_size=batch_size, lengths=lengths)
    total, weight, correct, counted = 0.0, 0, 0, 0
    for s in range(0, len(X), batch_size):  # batch means, weighted back into the data set's mean
        sb, yb = scores[s:s + batch_size], y[s:s + batch_size]
        value, _ = loss.value_and_grad(sb, yb)
        n = _count(loss, yb)
        total += value * n
        weight += n
        acc = loss.accuracy(sb, yb)
        if acc is not None:
            correct, counted = correct + acc[0], counted + acc[1]
    out = {"loss": total / max(weight, 1)}
    if loss.accuracy(scores[:1], y[:1]) is not None:
        out["accuracy"] = correct / max(counted, 1)
    return out


def fit(model, X, y, loss, optimizer, epochs=10, batch_size=32, validation_data=None,
        lengths=None, shuffle=True, clip_grad_norm=None, early_stopping=None, callbacks=(),
        progress=True, seed=0):
    """Train ``model`` in place on (X, y) and return a :class:`History`.

    Parameters
    ----------
    model : Module (usually a Sequential) mapping a batch of X to scores for ``loss``.
    X : (N, ...) inputs; y : (N, ...) targets; lengths : (N,) ints or None.
    loss : a loss object (MSELoss, CrossEntropyLoss, BCEWithLogitsLoss).
    optimizer : SGD, Adam or AdamW over ``model.parameters()``.
    validation_data : (Xv, yv) or (Xv, yv, lengths_v); adds val_loss (and val_accuracy).
    shuffle, seed : the order of samples is reshuffled each epoch from ``seed``.
    clip_grad_norm : clip the global gradient norm to this value before each step.
    early_stopping : None, an int patience (on val_loss, else loss), or an EarlyStopping.
    callbacks : callables ``f(epoch, logs)`` or objects with ``on_epoch_end(epoch, logs)``,
        called at the end of each epoch; raise StopTraining to end training.
    progress : a tqdm bar per epoch with loss and samples/s, shown when True and stderr is a
        terminal ("always" forces it, False hides it).

    Bad targets (labels out of range, wrong shape, sample count not matching X) raise before any
    training. Ctrl-C ends training cleanly: the model keeps its current weights and the History
    says ``interrupted``. Training runs in train mode; each module's train/eval mode is restored
    afterwards. Returns the History.

    >>> import numpy as np, rnnfast as rf
    >>> model = rf.Sequential(rf.Linear(2, 1))
    >>> X = np.random.default_rng(0).standard_normal((32, 2))      # (N, I)
    >>> h = rf.fit(model, X, X.sum(axis=1, keepdims=True), loss=rf.MSELoss(),
    ...            optimizer=rf.SGD(model.parameters(), lr=0.1), epochs=5, progress=False)
    >>> h["loss"][-1] < h["loss"][0]
    True
    """
    X = _as_inputs(X)
    N = len(X)
    y = np.asarray(y)
    if len(y) != N:
        raise ValueError(f"y has {len(y)} samples but X has {N}; they must match along axis 0")
    lengths = _as_lengths(lengths, N)
    _check_model(model, lengths is not None)
    _check_loss_and_optimizer(model, loss, optimizer)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if N == 0:
        raise ValueError("X holds no samples")
    if clip_grad_norm is not None and not (clip_grad_norm > 0):
        raise ValueError(f"clip_grad_norm must be > 0 or None, got {clip_grad_norm!r}")

    val = None
    if validation_data is not None:
        if len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (X, y) or (X, y, lengths)")
        Xv = _as_inputs(validation_data[0], "validation X")
        yv = np.asarray(validation_data[1])
        if len(yv) != len(Xv):
            raise ValueError(f"validation y has {len(yv)} samples but validation X has {len(Xv)}")
        lv = _as_lengths(validation_data[2] if len(validation_data) == 3 else None, len(Xv),
                         "validation lengths")
        if lv is not None:
            _check_model(model, True)
        val = (Xv, yv, lv)

    # one sample through the model gives the output shape the targets must fit
    probe = predict(model, X[:1], lengths=None if lengths is None else lengths[:1])
    loss.check_target(probe.shape, y)
    if val is not None and len(val[0]):
        loss.check_target(probe.shape, val[1])

    if isinstance(early_stopping, (int, np.integer)) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping("val_loss" if val is not None else "loss",
                                       patience=int(early_stopping))
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError("early_stopping must be None, an int patience or an EarlyStopping")
        if early_stopping.monitor.startswith("val_") and val is None:
            raise ValueError(f"early stopping monitors {early_stopping.monitor!r} but no "
                             "validation_data was given")
        early_stopping.reset()
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not (callable(cb) or hasattr(cb, "on_epoch_end")):
            raise TypeError(f"callback {cb!r} is neither callable nor has on_epoch_end")

    rng = np.random.default_rng(seed)
    history = History()
    show = _show_progress(progress)
    classifies = loss.accuracy(probe, y[:1]) is not None
    modes = _modes(model)
    model.train()
    bar = None
    try:
        for epoch in range(epochs):
            order = rng.permutation(N) if shuffle else np.arange(N)
            bar = tqdm(total=N, desc=f"epoch {epoch + 1}/{epochs}", unit="sample",
                       disable=not show, leave=True, dynamic_ncols=True, file=sys.stderr)
            total, weight, correct, counted = 0.0, 0, 0, 0
            start = time.perf_counter()
            for s in range(0, N, batch_size):
                idx = order[s:s + batch_size]
                xb, yb = X[idx], y[idx]
                model.zero_grad()
                scores = _call(model, xb, None if lengths is None else lengths[idx])
                value = loss(scores, yb)
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss became {value} in epoch {epoch + 1}; "
                                             "lower the learning rate or clip gradients")
                model.backward(loss.backward())
                if clip_grad_norm is not None:
                    clip_grad_norm_(optimizer.params, clip_grad_norm)
                optimizer.step()
                n = _count(loss, yb)  # a batch mean weighs as many terms as it averaged
                total, weight = total + value * n, weight + n
                if classifies:
                    c, n = loss.accuracy(scores, yb)
                    correct, counted = correct + c, counted + n
                bar.update(len(idx))
                bar.set_postfix(loss=f"{total / max(weight, 1):.4f}", refresh=False)
            elapsed = time.perf_counter() - start
            logs = {"loss": total / max(weight, 1)}
            if classifies:
                logs["accuracy"] = correct / max(counted, 1)
            if val is not None and len(val[0]):
                scores_v = evaluate(model, val[0], val[1], loss, lengths=val[2])
                model.train()
                logs.update({"val_" + k: v for k, v in scores_v.items()})
            logs["time"] = elapsed
            logs["samples_per_sec"] = N / elapsed if elapsed > 0 else float("inf")
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()
                             if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
            bar.close()
            bar = None
            history.append(epoch, logs)
            stop = False
            for cb in callbacks:
                try:
                    (cb.on_epoch_end if hasattr(cb, "on_epoch_end") else cb)(epoch, dict(logs))
                except StopTraining:
                    stop = True
            if early_stopping is not None and early_stopping.update(epoch, logs, model):
                history.stopped_early = True
                stop = True
            if stop:
                break
    except KeyboardInterrupt:
        history.interrupted = True
        warnings.warn(f"training interrupted after {len(history.epoch)} complete epoch(s); "
                      "the model keeps its current weights", RuntimeWarning, stacklevel=2)
    finally:
        if bar is not None:
            bar.close()
        _restore_modes(modes)
    if early_stopping is not None and not history.interrupted:
        history.best_epoch = early_stopping.best_epoch
        early_stopping.restore(model)
    return history
