"""Feed-forward building blocks and the Sequential container that chains them with the RNN layers.

What is here: Embedding, Linear, Dropout, LastStep, the elementwise activations Tanh / ReLU /
Sigmoid, and Sequential. Each module pairs ``forward`` with ``backward`` (gradient of the output in,
gradient of the input out, parameter gradients accumulated into ``Parameter.grad``), as the
recurrent layers in :mod:`rnnfast.layers` do. What is not here: autograd. A module remembers what
its backward needs from its last forward (nothing under ``rnnfast.no_grad()``), so run backward
once per forward, in reverse order; Sequential does exactly that.

Dimension letters: B batch, T time, I/F features, D embedding size, N vocabulary size.

>>> import numpy as np, rnnfast as rf
>>> model = rf.Sequential(rf.Embedding(20, 8), rf.GRU(8, 16, batch_first=True),
...                       rf.LastStep(), rf.Linear(16, 3))
>>> ids = np.random.default_rng(0).integers(0, 20, size=(4, 7))      # (B, T)
>>> model(ids, lengths=[7, 3, 5, 1]).shape                          # (B, classes)
(4, 3)
"""
import inspect
import math
import numbers

import numpy as np
from scipy.special import expit

from . import _validate
from ._module import Module, is_grad_enabled, owned, read_only

__all__ = ["Sequential", "Embedding", "Linear", "Dropout", "LastStep", "Tanh", "ReLU", "Sigmoid",
           "register_module", "describe", "build"]

_float_dtype = _validate.layer_dtype      # None means float32, as for the recurrent layers
_positive_int = _validate.positive_int


def _float_input(x, dtype, name="x"):
    """``x`` as an array of ``dtype``: integers and the other float width are cast, the rest
    refused."""
    x = np.asarray(x)
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.floating)
                               or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
    return x.astype(dtype, copy=False)


class _Layer(Module):
    """A module that keeps what its backward needs in ``self._saved`` (None if nothing is kept)."""

    def __init__(self):
        super().__init__()
        self._saved = None

    def _save(self, value):
        self._saved = value if is_grad_enabled() else None

    def _take_saved(self):
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before a forward pass that "
                               "keeps activations (no forward yet, or it ran under "
                               "rnnfast.no_grad())")
        return self._saved

    def get_config(self):
        return dict(self._config)


# -- layers with parameters -------------------------------------------------------------------
class Embedding(_Layer):
    """Looks up a learned vector for each integer id: ids (...) -> (..., D).

    weight is (N, D), initialised N(0, 1) as torch does. Row ``padding_idx`` (if given) starts at
    zero and never receives a gradient, so padding tokens stay zero vectors.

    >>> import rnnfast as rf
    >>> emb = rf.Embedding(10, 4, padding_idx=0)
    >>> emb([[1, 2, 0]]).shape
    (1, 3, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32,
                 seed=None):
        super().__init__()
        N = _positive_int(num_embeddings, "num_embeddings")
        D = _positive_int(embedding_dim, "embedding_dim")
        dt = _float_dtype(dtype)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -N <= padding_idx < N:
                raise ValueError(f"padding_idx must be an integer in [-{N}, {N}), "
                                 f"got {padding_idx!r}")
            padding_idx = int(padding_idx) % N
        self.num_embeddings, self.embedding_dim, self.padding_idx = N, D, padding_idx
        self._config = dict(num_embeddings=N, embedding_dim=D, padding_idx=padding_idx,
                            dtype=dt.name, seed=seed)
        weight = np.random.default_rng(seed).standard_normal((N, D)).astype(dt)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.add_parameter("weight", weight)

    def forward(self, ids):
        ids_in, ids = ids, np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer) or ids.dtype == bool:
            raise TypeError(f"Embedding input must hold integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"Embedding ids must lie in [0, {self.num_embeddings}), got values "
                             f"from {ids.min()} to {ids.max()}")
        self._save(owned(ids, ids_in) if is_grad_enabled() else None)
        return self._parameters["weight"].data[ids]

    def backward(self, dy):
        # forward was: y[..., :] = weight[ids[...]]; so each row of dy adds into its id's row
        ids = self._take_saved()
        p = self._parameters["weight"]
        dy = np.asarray(dy, dtype=p.dtype)
        if dy.shape != ids.shape + (self.embedding_dim,):
            raise ValueError(f"dy must have shape {ids.shape + (self.embedding_dim,)}, "
                             f"got {dy.shape}")
        flat_ids, flat_dy = ids.reshape(-1), dy.reshape(-1, self.embedding_dim)
        if self.padding_idx is not None:
            keep = flat_ids != self.padding_idx
            flat_ids, flat_dy = flat_ids[keep], flat_dy[keep]
        # sum the rows of each id with one sort and one reduceat (np.add.at is much slower)
        order = np.argsort(flat_ids, kind="stable")
        sorted_ids = flat_ids[order]
        if sorted_ids.size:
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
            p.grad[sorted_ids[starts]] += np.add.reduceat(flat_dy[order], starts, axis=0)
        return None  # integer ids have no gradient


class Linear(_Layer):
    """y = x W^T + b on the last axis: x (..., I) -> (..., O); works on (B, I) and (B, T, I).

    weight is (O, I), bias (O,), both uniform(-1/sqrt(I), 1/sqrt(I)) as torch initialises them.

    >>> import numpy as np, rnnfast as rf
    >>> rf.Linear(3, 2)(np.ones((5, 4, 3))).shape
    (5, 4, 2)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None):
        super().__init__()
        I = _positive_int(in_features, "in_features")
        O = _positive_int(out_features, "out_features")
        dt = _float_dtype(dtype)
        self.in_features, self.out_features, self.dtype = I, O, dt
        self._config = dict(in_features=I, out_features=O, bias=bool(bias), dtype=dt.name,
                            seed=seed)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(I)
        self.add_parameter("weight", rng.uniform(-bound, bound, (O, I)).astype(dt))
        if bias:
            self.add_parameter("bias", rng.uniform(-bound, bound, O).astype(dt))

    def forward(self, x):
        x_in, x = x, _float_input(x, self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects input of shape (..., {self.in_features}), "
                             f"got {x.shape}")
        self._save(owned(x, x_in) if is_grad_enabled() else None)
        y = x @ self._parameters["weight"].data.T
        if "bias" in self._parameters:
            y += self._parameters["bias"].data
        return y

    def backward(self, dy):
        # forward was: y = x W^T + b; so dW += dy^T x, db += sum(dy), dx = dy W
        x = self._take_saved()
        w = self._parameters["weight"]
        dy = np.asarray(dy, dtype=self.dtype)
        if dy.shape != x.shape[:-1] + (self.out_features,):
            raise ValueError(f"dy must have shape {x.shape[:-1] + (self.out_features,)}, "
                             f"got {dy.shape}")
        dy2, x2 = dy.reshape(-1, self.out_features), x.reshape(-1, self.in_features)
        w.grad += dy2.T @ x2
        if "bias" in self._parameters:
            self._parameters["bias"].grad += dy2.sum(axis=0)
        return dy @ w.data


# -- layers without parameters ----------------------------------------------------------------
class Dropout(_Layer):
    """Zeroes each element with probability p while training and scales the rest by 1/(1-p);
    the identity in eval mode. Masks come from its own generator, reproducible with ``seed``.

    >>> import numpy as np, rnnfast as rf
    >>> drop = rf.Dropout(0.5, seed=0).eval()
    >>> bool((drop(np.ones(4)) == 1).all())
    True
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self._config = dict(p=self.p, seed=seed)
        self.rng = np.random.default_rng(seed)

    def forward(self, x):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):  # an integer mask would truncate 1/(1-p)
            x = _float_input(x, np.float64)
        if not self.training or self.p == 0.0:
            self._save(1.0)
            return x
        keep = self.rng.random(x.shape) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        mask = keep.astype(x.dtype) * x.dtype.type(scale)
        self._save(mask)
        return x * mask

    def backward(self, dy):
        return np.asarray(dy) * self._take_saved()


class Tanh(_Layer):
    """Elementwise tanh, any shape."""

    _config = {}

    def forward(self, x):
        y = np.tanh(np.asarray(x))
        self._save(y)
        return y if self._saved is None else read_only(y)

    def backward(self, dy):
        y = self._take_saved()  # forward was: y = tanh(x); so dx = dy * (1 - y^2)
        return dy * (1 - y * y)


class ReLU(_Layer):
    """Elementwise max(x, 0), any shape."""

    _config = {}

    def forward(self, x):
        x = np.asarray(x)
        self._save(x > 0)
        return np.maximum(x, 0)

    def backward(self, dy):
        return dy * self._take_saved()


class Sigmoid(_Layer):
    """Elementwise 1 / (1 + exp(-x)), any shape; stable for any x."""

    _config = {}

    def forward(self, x):
        y = expit(np.asarray(x))
        self._save(y)
        return y if self._saved is None else read_only(y)

    def backward(self, dy):
        y = self._take_saved()  # forward was: y = sigmoid(x); so dx = dy * y * (1 - y)
        return dy * y * (1 - y)


class LastStep(_Layer):
    """Each sequence's output at its last valid step: (B, T, F) -> (B, F) (or (T, B, F) input).

    With ``lengths`` the step is ``lengths[b] - 1`` (zeros for an empty sequence), else T - 1. After
    a bidirectional layer (F = 2H) the forward half comes from that last valid step and the reverse
    half from step 0, where the reverse direction finishes: each direction's final output.

    ``batch_first`` and ``bidirectional`` left as None are taken from the nearest recurrent layer
    before this one in a Sequential (``bidirectional`` only if nothing but Dropout and elementwise
    activations sit between them); with no such layer they mean batch-first, one direction.

    >>> import numpy as np, rnnfast as rf
    >>> y = np.arange(12.0).reshape(2, 3, 2)                   # (B, T, F)
    >>> rf.LastStep(batch_first=True)(y, lengths=[3, 1]).tolist()
    [[4.0, 5.0], [6.0, 7.0]]
    """

    def __init__(self, batch_first=None, bidirectional=None):
        super().__init__()
        self._config = dict(batch_first=batch_first, bidirectional=bidirectional)
        self.batch_first, self.bidirectional = batch_first, bidirectional
        self._inferred = (True, False)  # set by Sequential from the recurrent layer before this one

    def _layout(self):
        bf = self._inferred[0] if self.batch_first is None else bool(self.batch_first)
        bi = self._inferred[1] if self.bidirectional is None else bool(self.bidirectional)
        return bf, bi

    def forward(self, x, lengths=None):
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"LastStep expects a 3-D sequence (B, T, F) or (T, B, F), got shape "
                             f"{x.shape}")
        batch_first, bidirectional = self._layout()
        xb = x if batch_first else x.transpose(1, 0, 2)  # (B, T, F)
        B, T, F = xb.shape
        if bidirectional and F % 2:
            raise ValueError(f"LastStep after a bidirectional layer needs an even feature size, "
                             f"got {F}")
        if lengths is None:
            last = np.full(B, T - 1, dtype=np.int64)
        else:
            last = _validate.lengths_array(lengths, T, B) - 1
        valid = last >= 0
        rows = np.arange(B)
        y = np.zeros((B, F), dtype=x.dtype)
        H = F // 2 if bidirectional else F
        y[valid, :H] = xb[rows[valid], last[valid], :H]
        if bidirectional:
            y[valid, H:] = xb[valid, 0, H:]
        self._save((x.shape, batch_first, bidirectional, last, valid, H))
        return y

    def backward(self, dy):
        shape, batch_first, bidirectional, last, valid, H = self._take_saved()
        B, T, F = (shape if batch_first else (shape[1], shape[0], shape[2]))
        dy = np.asarray(dy)
        if dy.shape != (B, F):
            raise ValueError(f"dy must have shape {(B, F)}, got {dy.shape}")
        dx = np.zeros((B, T, F), dtype=dy.dtype)
        rows = np.arange(B)[valid]
        dx[rows, last[valid], :H] = dy[valid, :H]
        if bidirectional:
            dx[rows, 0, H:] += dy[valid, H:]
        return dx if batch_first else dx.transpose(1, 0, 2)


# -- the container ----------------------------------------------------------------------------
_ELEMENTWISE = (Dropout, Tanh, ReLU, Sigmoid)

_TAKES_LENGTHS = {}


def _takes_lengths(module):
    """Whether ``module.forward`` has a ``lengths`` argument (cached per class)."""
    cls = type(module)
    if cls not in _TAKES_LENGTHS:
        try:
            _TAKES_LENGTHS[cls] = "lengths" in inspect.signature(module.forward).parameters
        except (TypeError, ValueError):
            _TAKES_LENGTHS[cls] = False
    return _TAKES_LENGTHS[cls]


def _leaves(sequential):
    """The modules of a Sequential in the order they run, nested Sequentials flattened."""
    for layer in sequential._modules.values():
        if isinstance(layer, Sequential):
            yield from _leaves(layer)
        else:
            yield layer


def _is_recurrent(module):
    return hasattr(module, "batch_first") and hasattr(module, "hidden_size")


class Sequential(Module):
    """Runs modules one after another; ``backward`` runs their backwards in reverse.

    A recurrent layer returns ``(out, state)``; Sequential passes ``out`` (the output sequence) on.
    ``lengths`` (B ints) goes to every module whose forward takes a ``lengths`` argument (the RNN
    layers and LastStep). Children are named "0", "1", ... so parameter names match torch's
    nn.Sequential ("0.weight", "1.weight_ih_l0", ...).

    >>> import numpy as np, rnnfast as rf
    >>> model = rf.Sequential(rf.LSTM(2, 8, batch_first=True), rf.LastStep(), rf.Linear(8, 1))
    >>> x = np.zeros((3, 5, 2), dtype=np.float32)                       # (B, T, I)
    >>> y = model(x)                                                    # (B, 1)
    >>> dx = model.backward(np.ones_like(y))                            # (B, T, I)
    >>> dx.shape
    (3, 5, 2)
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self._returns_state = None
        for layer in layers:
            self.append(layer)

    def append(self, layer):
        """Add a module at the end; returns self."""
        self.add_module(str(len(self._modules)), layer)
        self._link()
        return self

    def _link(self):
        # A LastStep left unconfigured follows the recurrent layer before it: its batch_first
        # always (feature-wise layers keep the layout), its two directions only when nothing but
        # elementwise layers sit between them (a Linear mixes the two halves).
        # Nested Sequentials are looked through: their layers run in this one's order.
        recurrent, halves_intact = None, False
        for layer in _leaves(self):
            if _is_recurrent(layer):
                recurrent, halves_intact = layer, True
            elif isinstance(layer, LastStep):
                if recurrent is not None:
                    layer._inferred = (bool(recurrent.batch_first), halves_intact and
                                       bool(getattr(recurrent, "bidirectional", False)))
            elif not isinstance(layer, _ELEMENTWISE):
                halves_intact = False

    def __getitem__(self, index):
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    @property
    def dtype(self):
        """The dtype of the first parameter (None for a model without parameters)."""
        params = self.parameters()
        return params[0].dtype if params else None

    def forward(self, x, lengths=None):
        """x: whatever the first module takes, e.g. (B, T) ids or (B, T, I) floats. Floating input
        is cast to the model's dtype. Returns the last module's output."""
        x = np.asarray(x)
        dtype = self.dtype
        if dtype is not None and np.issubdtype(x.dtype, np.floating) and x.dtype != dtype:
            x = x.astype(dtype)
        returns_state = []
        for layer in self._modules.values():
            out = layer(x, lengths=lengths) if _takes_lengths(layer) else layer(x)
            returns_state.append(isinstance(out, tuple))
            x = out[0] if isinstance(out, tuple) else out
        self._returns_state = returns_state
        return x

    def backward(self, dy):
        """Gradient of the output in, gradient of the input out (None when the input was ids)."""
        if self._returns_state is None:
            raise RuntimeError("Sequential.backward called before forward")
        for layer, has_state in zip(reversed(list(self._modules.values())),
                                    reversed(self._returns_state)):
            dy = layer.backward(dy)
            if has_state:  # recurrent layers return (dx, d_initial_state)
                dy = dy[0]
        return dy

    def predict(self, X, batch_size=256, lengths=None):
        """Outputs for X in eval mode and without keeping activations, ``batch_size`` rows at a
        time (axis 0 is the batch). See :func:`rnnfast.train.predict`."""
        from .train import predict
        return predict(self, X, batch_size=batch_size, lengths=lengths)

    def get_config(self):
        return {"layers": [describe(layer) for layer in self._modules.values()]}

    @classmethod
    def from_config(cls, config):
        return cls(*[build(d) for d in config["layers"]])

    def __repr__(self):
        inner = "".join(f"\n  ({k}): {type(m).__name__}" for k, m in self._modules.items())
        return f"Sequential({inner}\n)"


# -- architecture descriptions (used by rnnfast.save / rnnfast.load) ---------------------------
_REGISTRY = {}


def register_module(cls):
    """Make a Module subclass known to :func:`build` (and so to rnnfast.load) by its class name.
    Usable as a decorator; the class must implement ``get_config()``."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register_module expects a Module subclass, got {cls!r}")
    _REGISTRY[cls.__name__] = cls
    return cls


for _cls in (Sequential, Embedding, Linear, Dropout, LastStep, Tanh, ReLU, Sigmoid):
    register_module(_cls)


def _lookup(name):
    if name not in _REGISTRY:
        try:
            from . import layers
        except ImportError:
            layers = None
        cls = getattr(layers, name, None)
        if isinstance(cls, type) and issubclass(cls, Module):
            _REGISTRY[name] = cls
    if name not in _REGISTRY:
        raise ValueError(f"unknown module class {name!r}; register custom modules with "
                         "rnnfast.register_module")
    return _REGISTRY[name]


def describe(module):
    """{"class": name, "config": constructor arguments} for a module (nested for Sequential)."""
    try:
        config = module.get_config()
    except NotImplementedError as exc:
        raise NotImplementedError(f"cannot describe {type(module).__name__}: {exc}") from None
    return {"class": type(module).__name__, "config": config}


def build(description):
    """The module a :func:`describe` result stands for (fresh weights)."""
    cls = _lookup(description["class"])
    config = description.get("config") or {}
    if hasattr(cls, "from_config"):
        return cls.from_config(config)
    return cls(**config)
