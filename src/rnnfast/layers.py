"""PyTorch-compatible recurrent layers: RNN, LSTM and GRU, stacked and bidirectional.

Each layer is a drop-in for its torch.nn namesake in everything but autograd: the same constructor
options, parameter names, shapes, equations and defaults, so a state_dict moves between the two
unchanged. Backward is explicit: ``layer.backward(d_out, d_state)`` returns the gradients of the
input and the initial state and adds the weight gradients into ``layer.grads``.

How a forward pass runs: each (layer, direction) pair is one sequence-kernel call through
:mod:`rnnfast.kernels` (no Python loop over time, and no knowledge of which backend ran). The
reverse direction reverses every sequence within its own length before the kernel and reverses the
kernel's output back, so it starts at each sequence's last valid step, as torch's packed sequences
do. ``batch_first`` is a transpose at the layer's edge; dropout is applied between layers in
training mode, with masks drawn from a generator the layer owns (``seed``).

What this module deliberately is not: an autograd engine. The layer keeps the saved activations of
its last forward pass only, so a backward pass always belongs to the most recent forward.

Dimension letters: T steps, B batch, I input features, H hidden size, L layers, D directions
(1 or 2), G gates per cell (1 RNN, 4 LSTM, 3 GRU).
"""
import math
import numbers
import warnings

import numpy as np

from . import _validate, kernels
from ._module import Module, is_grad_enabled, owned, read_only

__all__ = ["RNN", "LSTM", "GRU"]


# ----------------------------------------------------------------------------------------------
# argument checks (each error names the argument and shows what it got; the checks shared with
# the kernels and the other modules live in _validate)

_size = _validate.positive_int
_layer_dtype = _validate.layer_dtype


def _numeric(value, name):
    """``value`` as an ndarray of real numbers (bool, complex, strings and objects refused)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists and the like
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from exc
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}")
    return arr


def _owned(arr, source, dtype):
    """C-contiguous ``arr`` in ``dtype`` that the caller cannot change behind the layer's back."""
    return owned(np.ascontiguousarray(arr, dtype=dtype), source)


# ----------------------------------------------------------------------------------------------
# the shared machinery

class _RNNBase(Module):
    """Stacked, optionally bidirectional recurrent layer over one cell type (see subclasses)."""

    _cell = None        # kernel family: "rnn", "lstm" or "gru"
    _gates = None       # G
    _has_cell_state = False

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None):
        super().__init__()
        self.input_size = _size(input_size, "input_size")
        self.hidden_size = _size(hidden_size, "hidden_size")
        self.num_layers = _size(num_layers, "num_layers")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0 <= dropout <= 1:
            raise ValueError("dropout must be a number in [0, 1] (the probability of zeroing an "
                             f"element), got {dropout!r}")
        self.dropout = float(dropout)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn("dropout is applied between stacked layers only, so a non-zero dropout "
                          f"expects num_layers > 1, got dropout={self.dropout} and num_layers=1",
                          UserWarning, stacklevel=3)
        self.dtype = _layer_dtype(dtype)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be None or a non-negative int, got {seed!r}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be None or a non-negative int, got {seed}")
        self.seed = None if seed is None else int(seed)
        # one seed, two independent streams: the initial weights and the dropout masks
        init_seq, dropout_seq = np.random.SeedSequence(self.seed).spawn(2)
        self._init_seq = init_seq
        self._dropout_rng = np.random.default_rng(dropout_seq)

        G, H = self._gates, self.hidden_size
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else H * self.num_directions
            for direction in range(self.num_directions):
                sfx = self._suffix(layer, direction)
                self.add_parameter("weight_ih" + sfx, np.zeros((G * H, in_size), self.dtype))
                self.add_parameter("weight_hh" + sfx, np.zeros((G * H, H), self.dtype))
                if self.bias:
                    self.add_parameter("bias_ih" + sfx, np.zeros(G * H, self.dtype))
                    self.add_parameter("bias_hh" + sfx, np.zeros(G * H, self.dtype))
        self.reset_parameters()
        self._saved = None
        self._no_saved_reason = "backward called before any forward pass"

    # -- description ----------------------------------------------------------------------------
    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @staticmethod
    def _suffix(layer, direction):
        return f"_l{layer}" + ("_reverse" if direction else "")

    def reset_parameters(self):
        """Draw every weight and bias from uniform(-1/sqrt(H), 1/sqrt(H)), as torch does.

        With an integer ``seed`` the draw is the same every time (and for every layer built with
        that seed); with ``seed=None`` it is a fresh draw, as in torch. Gradients are left alone.
        """
        rng = np.random.default_rng(self._init_seq if self.seed is not None else None)
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self._parameters.values():
            p.data[...] = rng.uniform(-bound, bound, p.data.shape)

    def get_config(self):
        """The constructor arguments (JSON-friendly; dtype as a string) that rebuild this layer."""
        return dict(input_size=self.input_size, hidden_size=self.hidden_size,
                    num_layers=self.num_layers, bias=self.bias, batch_first=self.batch_first,
                    dropout=self.dropout, bidirectional=self.bidirectional,
                    dtype=self.dtype.name, seed=self.seed)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def __setattr__(self, name, value):
        # ``layer.weight_ih_l0 = w`` must reach the Parameter the kernels read (and optimizers
        # hold), not shadow it with a plain attribute: copy the values in, cast to our dtype.
        params = self.__dict__.get("_parameters")
        if params is not None and name in params:
            p = params[name]
            arr = _numeric(value, name)
            if arr.shape != p.data.shape:
                raise ValueError(f"{name} must have shape {p.data.shape}, got {arr.shape}")
            p.data[...] = arr
            return
        object.__setattr__(self, name, value)

    def flatten_parameters(self):
        """No-op, for code written against torch.nn (our weights are always contiguous)."""

    # -- checks of the call's arguments -----------------------------------------------------------
    def _check_x(self, x):
        """x (T, B, I) or (B, T, I) -> time-major (T, B, I) array in the layer's dtype."""
        arr = _numeric(x, "x")
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if arr.ndim != 3:
            raise ValueError(f"x must be 3-D {layout}"
                             + (" with batch_first=True" if self.batch_first else "")
                             + f", got shape {arr.shape}"
                             + ("; add a batch axis for a single sequence"
                                if arr.ndim == 2 else ""))
        if self.batch_first:
            arr = arr.transpose(1, 0, 2)
        T, B, I = arr.shape
        if I != self.input_size:
            raise ValueError(f"x has {I} features (last axis) but input_size={self.input_size}; "
                             f"x must be {layout}, got shape {np.shape(x)}")
        if T < 1 or B < 1:
            raise ValueError(f"x must have at least one step and one sequence, got shape "
                             f"{np.shape(x)} as {layout}")
        return _owned(arr, x, self.dtype) if is_grad_enabled() else \
            np.ascontiguousarray(arr, dtype=self.dtype)

    def _state_shape(self, B):
        return (self.num_layers * self.num_directions, B, self.hidden_size)

    def _check_state_array(self, value, name, B, what):
        shape = self._state_shape(B)
        if value is None:  # zeros, which the kernels supply themselves
            return None
        arr = _numeric(value, name)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape (num_layers*num_directions, B, hidden_size) "
                             f"= {shape} {what}, got {arr.shape}")
        return _owned(arr, value, self.dtype)

    def _check_pair(self, value, name, B, what):
        """The LSTM's (h, c) pair; the single array of the other cells. Missing parts are zeros."""
        if self._has_cell_state:
            if value is None:
                value = (None, None)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                got = (f"a {type(value).__name__} of length {len(value)}"
                       if isinstance(value, (tuple, list)) else
                       f"{type(value).__name__} of shape {np.shape(value)}")
                raise TypeError(f"{name} must be an ({what[0]}, {what[1]}) pair for the LSTM, "
                                f"got {got}")
            return tuple(self._check_state_array(v, f"{name}[{k}] ({w})", B,
                                                 "for this layer and batch")
                         for k, (v, w) in enumerate(zip(value, what)))
        if isinstance(value, tuple):
            raise TypeError(f"{name} must be one array {what[0]} for the {type(self).__name__} "
                            "(only the LSTM takes an (h, c) pair), got a tuple of length "
                            f"{len(value)}")
        return (self._check_state_array(value, name, B, "for this layer and batch"),)

    @staticmethod
    def _check_lengths(lengths, T, B):
        if lengths is None:
            return None
        try:
            arr = np.asarray(lengths)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"lengths must be B={B} integers: {exc}") from exc
        arr = _validate.lengths_array(arr, T, B)
        if np.all(arr == T):  # every sequence full: same answers, no masking needed
            return None
        return arr

    # -- one (layer, direction) through the kernels ---------------------------------------------
    def _weights(self, layer, direction):
        sfx = self._suffix(layer, direction)
        p = self._parameters
        w = [p["weight_ih" + sfx].data, p["weight_hh" + sfx].data]
        w += [p["bias_ih" + sfx].data, p["bias_hh" + sfx].data] if self.bias else [None, None]
        return w

    def _kernel_forward(self, x, states, weights, lengths, training):
        """Returns y (T, B, H), final states tuple, saved."""
        raise NotImplementedError

    def _kernel_backward(self, dy, d_states, saved):
        """Returns dx (T, B, I), d(initial states) tuple, (dw_ih, dw_hh, db_ih, db_hh)."""
        raise NotImplementedError

    @staticmethod
    def _flip(a, rev_index):
        """Reverse every sequence of a (T, B, F) array within its own length (an involution)."""
        if rev_index is None:
            return a[::-1]
        return a[rev_index, np.arange(a.shape[1])[None, :]]

    def _dropout_mask(self, shape):
        p = self.dropout
        if p >= 1:
            return np.zeros(shape, self.dtype)
        keep = self._dropout_rng.random(shape) >= p
        return keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - p))

    # -- the public calls -----------------------------------------------------------------------
    def forward(self, x, hx=None, lengths=None):
        """Run the stack over a batch of sequences; see the class docstring for shapes."""
        x = self._check_x(x)
        T, B, _ = x.shape
        n_states = 2 if self._has_cell_state else 1
        names = ("h0", "c0")[:n_states]
        states0 = self._check_pair(hx, "hx", B, names)
        lengths = self._check_lengths(lengths, T, B)
        rev_index = None
        if lengths is not None and self.bidirectional:
            t = np.arange(T)[:, None]
            rev_index = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)

        training = is_grad_enabled()
        D, L = self.num_directions, self.num_layers
        finals = [np.empty(self._state_shape(B), self.dtype) for _ in range(n_states)]
        saved_layers = []
        layer_in = x
        for layer in range(L):
            outs, saved_dirs = [], []
            for direction in range(D):
                k = layer * D + direction
                xin = layer_in if direction == 0 else self._flip(layer_in, rev_index)
                y, final, saved = self._kernel_forward(
                    xin, tuple(None if s is None else s[k] for s in states0),
                    self._weights(layer, direction),
                    lengths, training)
                outs.append(y if direction == 0 else self._flip(y, rev_index))
                saved_dirs.append(saved)
                for s in range(n_states):
                    finals[s][k] = final[s]
            out = outs[0] if D == 1 else np.concatenate(outs, axis=2)
            mask = None
            if self.training and self.dropout > 0 and layer < L - 1:
                mask = self._dropout_mask(out.shape)
                out = out * mask
            saved_layers.append((saved_dirs, mask))
            layer_in = out

        if training:
            self._saved = dict(T=T, B=B, rev_index=rev_index, layers=saved_layers)
        else:
            self._saved = None
            self._no_saved_reason = ("the last forward pass ran under rnnfast.no_grad(), so "
                                     "nothing was kept for backward; run forward again outside it")
        out = layer_in
        if self.batch_first:
            out = np.ascontiguousarray(out.transpose(1, 0, 2))
        elif training:
            out = read_only(out)  # it may be the kept activation y: an in-place edit must raise
        return out, (tuple(finals) if self._has_cell_state else finals[0])

    def backward(self, d_out=None, d_state=None):
        """Gradients for the last forward pass; adds the weight gradients into ``self.grads``.

        d_out has the output's shape ((T, B, D*H), or (B, T, D*H) with batch_first); d_state the
        final state's ((L*D, B, H), or a (dh_n, dc_n) pair for the LSTM). Either, or either half of
        the pair, may be None (zeros). Returns dx shaped like x, and the gradient of the initial
        state shaped like it ((dh0, dc0) for the LSTM).
        """
        if self._saved is None:
            raise RuntimeError(self._no_saved_reason)
        sv = self._saved
        T, B, D, H = sv["T"], sv["B"], self.num_directions, self.hidden_size
        out_shape = (B, T, D * H) if self.batch_first else (T, B, D * H)
        if d_out is None:
            g = np.zeros((T, B, D * H), self.dtype)
        else:
            g = _numeric(d_out, "d_out")
            if g.shape != out_shape:
                raise ValueError(f"d_out must have the output's shape {out_shape}, got {g.shape}")
            g = g.astype(self.dtype, copy=False)
            if self.batch_first:
                g = g.transpose(1, 0, 2)
        names = ("dh_n", "dc_n") if self._has_cell_state else ("dh_n",)
        d_final = self._check_pair(d_state, "d_state", B, names)
        rev_index = sv["rev_index"]

        grads = {}  # summed here first, so a failing backward leaves .grad untouched
        d_init = [np.empty(self._state_shape(B), self.dtype) for _ in names]
        for layer in reversed(range(self.num_layers)):
            saved_dirs, mask = sv["layers"][layer]
            if mask is not None:  # forward: out = y * mask
                g = g * mask
            d_in = None
            for direction in range(D):
                k = layer * D + direction
                dy = g[:, :, direction * H:(direction + 1) * H]
                if direction:
                    dy = self._flip(dy, rev_index)
                dx, d0, dws = self._kernel_backward(
                    dy, tuple(None if s is None else s[k] for s in d_final),
                    saved_dirs[direction])
                if direction:
                    dx = self._flip(dx, rev_index)
                d_in = dx if d_in is None else d_in + dx
                for s, d in enumerate(d0):
                    d_init[s][k] = d
                sfx = self._suffix(layer, direction)
                for name, dw in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), dws):
                    if dw is not None:
                        grads[name + sfx] = dw
            g = d_in
        for name, dw in grads.items():
            self._parameters[name].grad += dw
        dx = np.ascontiguousarray(g.transpose(1, 0, 2)) if self.batch_first else g
        return dx, (tuple(d_init) if self._has_cell_state else d_init[0])


# ----------------------------------------------------------------------------------------------
# the three cells

_SHAPES_DOC = """
    Shapes (D = 2 if bidirectional else 1, L = num_layers):

    * x: (T, B, input_size), or (B, T, input_size) with ``batch_first=True``; lists, views and
      Fortran-ordered arrays are accepted and cast to the layer's dtype.
    * {state_in}: (L*D, B, hidden_size), zeros when omitted (never batch-first, as in torch).
    * lengths: B ints in [0, T], any order, as torch's
      ``pack_padded_sequence(enforce_sorted=False)`` + ``pad_packed_sequence(total_length=T)``:
      outputs past a sequence's length are zero and each direction's final state is taken at the
      sequence's own end (the reverse direction starts at its last valid step).
    * out: (T, B, D*hidden_size), or (B, T, D*hidden_size) with ``batch_first``; the two
      directions are concatenated on the last axis, forward first.
    * {state_out}: (L*D, B, hidden_size), layer-major (layer 0 forward, layer 0 reverse, ...).

    Parameters (torch's names, shapes and init uniform(-1/sqrt(H), 1/sqrt(H))):
    ``weight_ih_l{{k}}[_reverse]`` ({G}*H, in_k), ``weight_hh_l{{k}}[_reverse]`` ({G}*H, H),
    ``bias_ih_l{{k}}[_reverse]``, ``bias_hh_l{{k}}[_reverse]`` ({G}*H,) when ``bias``; in_0 =
    input_size, in_k = D*H above. ``dropout`` zeroes layer outputs between stacked layers (not
    after the last) in training mode only; ``seed`` fixes the initial weights and the masks.
    ``dtype`` is float32 (default) or float64.

    Backward: ``layer.backward(d_out, d_state)`` (both optional, zeros) returns
    ({d_x}) for the last forward pass and adds every weight gradient into ``layer.grads``
    (``Parameter.grad``) until ``zero_grad()``. Under ``rnnfast.no_grad()`` forward keeps nothing
    and a later backward raises.
"""


class RNN(_RNNBase):
    __doc__ = """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float32, seed=None)``;
    ``out, h_n = rnn(x, h0=None, lengths=None)``.
    """ + _SHAPES_DOC.format(state_in="h0", state_out="h_n", G=1, d_x="dx, dh0") + """
    >>> import numpy as np, rnnfast as rf
    >>> rnn = rf.RNN(3, 5, num_layers=2, nonlinearity="relu", seed=0)
    >>> out, h_n = rnn(np.ones((7, 2, 3)))
    >>> out.shape, h_n.shape
    ((7, 2, 5), (2, 2, 5))
    >>> dx, dh0 = rnn.backward(np.ones_like(out))
    >>> dx.shape, rnn.grads["weight_hh_l1"].shape
    ((7, 2, 3), (5, 5))
    """

    _cell, _gates = "rnn", 1

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float32,
                 seed=None):
        self.nonlinearity = _validate.nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed)

    def get_config(self):
        return dict(super().get_config(), nonlinearity=self.nonlinearity)

    def extra_repr(self):
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity != "tanh" else "")

    def _kernel_forward(self, x, states, weights, lengths, training):
        y, h, saved = kernels.rnn_forward(x, states[0], *weights, nonlinearity=self.nonlinearity,
                                          lengths=lengths, training=training)
        return y, (h,), saved

    def _kernel_backward(self, dy, d_states, saved):
        dx, dh0, *dws = kernels.rnn_backward(dy, d_states[0], saved)
        return dx, (dh0,), dws


class LSTM(_RNNBase):
    __doc__ = """LSTM: (i, f, g, o) = split(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh);
    i, f, o = sigmoid, g = tanh; c_t = f*c_{t-1} + i*g; h_t = o*tanh(c_t).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, dtype=np.float32, seed=None)``;
    ``out, (h_n, c_n) = lstm(x, (h0, c0)=None, lengths=None)``.
    """ + _SHAPES_DOC.format(state_in="h0, c0", state_out="h_n, c_n", G=4,
                             d_x="dx, (dh0, dc0)") + """
    >>> import numpy as np, rnnfast as rf
    >>> lstm = rf.LSTM(3, 4, bidirectional=True, batch_first=True, seed=0)
    >>> out, (h_n, c_n) = lstm(np.ones((2, 6, 3)), lengths=[6, 3])
    >>> out.shape, h_n.shape, c_n.shape
    ((2, 6, 8), (2, 2, 4), (2, 2, 4))
    >>> dx, (dh0, dc0) = lstm.backward(np.ones_like(out))
    >>> dx.shape, dc0.shape
    ((2, 6, 3), (2, 2, 4))
    """

    _cell, _gates, _has_cell_state = "lstm", 4, True

    def _kernel_forward(self, x, states, weights, lengths, training):
        y, h, c, saved = kernels.lstm_forward(x, states[0], states[1], *weights,
                                              lengths=lengths, training=training)
        return y, (h, c), saved

    def _kernel_backward(self, dy, d_states, saved):
        dx, dh0, dc0, *dws = kernels.lstm_backward(dy, d_states[0], d_states[1], saved)
        return dx, (dh0, dc0), dws


class GRU(_RNNBase):
    __doc__ = """GRU (reset applied after the hidden product, as torch and cuDNN do):
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr); z = sigmoid(W_iz x + b_iz + W_hz h + b_hz);
    n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h_t = (1-z)*n + z*h_{t-1}.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, dtype=np.float32, seed=None)``;
    ``out, h_n = gru(x, h0=None, lengths=None)``.
    """ + _SHAPES_DOC.format(state_in="h0", state_out="h_n", G=3, d_x="dx, dh0") + """
    >>> import numpy as np, rnnfast as rf
    >>> gru = rf.GRU(3, 4, num_layers=2, dtype=np.float64, seed=0)
    >>> out, h_n = gru(np.ones((5, 2, 3)), np.zeros((2, 2, 4)))
    >>> dx, dh0 = gru.backward(np.ones_like(out), np.zeros_like(h_n))
    >>> out.dtype, dx.shape, dh0.shape
    (dtype('float64'), (5, 2, 3), (2, 2, 4))
    """

    _cell, _gates = "gru", 3

    def _kernel_forward(self, x, states, weights, lengths, training):
        y, h, saved = kernels.gru_forward(x, states[0], *weights, lengths=lengths,
                                          training=training)
        return y, (h,), saved

    def _kernel_backward(self, dy, d_states, saved):
        dx, dh0, *dws = kernels.gru_backward(dy, d_states[0], saved)
        return dx, (dh0,), dws
