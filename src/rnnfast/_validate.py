"""Argument checks shared by both kernel backends (reference and compiled).

Every kernel validates its arguments here, once, at the Python boundary, so the two backends raise
the same errors for the same bad input: TypeError for a wrong dtype, ValueError for a wrong ndim,
shape or value, each naming the argument and what it got. What comes back is safe to hand to C:
C-contiguous arrays of one floating dtype with consistent shapes (dimension letters T, B, I, H, G
as in DESIGN.md; G = gates per cell).
"""
from collections import namedtuple
import numbers

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
NONLINEARITIES = ("tanh", "relu")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

Forward = namedtuple("Forward", "x h0 c0 w_ih w_hh b_ih b_hh lengths T B I H")
Backward = namedtuple("Backward", "dy dh_n dc_n")


def _dtype_of(a, name):
    a = np.asarray(a)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}")
    return a


def array(a, name, dtype, shape):
    """``a`` as a C-contiguous array of ``dtype`` and exactly ``shape``, or a clear error.

    The dtype must already be ``dtype`` (no silent casts between float32 and float64).
    """
    if a is None:
        raise ValueError(f"{name} is required")
    a = np.asarray(a)
    if a.dtype != dtype:
        if a.dtype in FLOAT_DTYPES:
            raise TypeError(f"{name} has dtype {a.dtype} but x has dtype {dtype}; "
                            "all arrays of one call must share x's dtype")
        raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}")
    if a.ndim != len(shape):
        raise ValueError(f"{name} must be {len(shape)}-D with shape {shape}, got shape {a.shape}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return np.ascontiguousarray(a)


def nonlinearity(name):
    if name not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {name!r}")
    return name


def lengths_array(lengths, T, B):
    """Per-sequence lengths as a C-contiguous int64 array of B values in [0, T], or None."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != B:
        raise ValueError(f"lengths must be 1-D with one entry per sequence (B={B}), "
                         f"got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if B and (arr.min() < 0 or arr.max() > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got values from {arr.min()} to {arr.max()}")
    return arr


def forward(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, step=False):
    """Check a forward call. x is (T, B, I), or (B, I) for a step; returns a Forward tuple.

    Weights: w_ih (G*H, I), w_hh (G*H, H), b_ih and b_hh (G*H,) or None. States (B, H) or None
    (zeros). For steps the returned x is (1, B, I).
    """
    G = GATES[cell]
    x = _dtype_of(x, "x")
    dtype = x.dtype
    want = 2 if step else 3
    if x.ndim != want:
        layout = "(B, I)" if step else "(T, B, I)"
        raise ValueError(f"x must be {want}-D {layout}, got shape {x.shape}")
    if step:
        x = x[None]
    T, B, I = x.shape
    if T < 1 or B < 1 or I < 1:
        raise ValueError(f"x must have T, B, I >= 1, got shape {x.shape if not step else x.shape[1:]}")
    w_hh_arr = _dtype_of(w_hh, "w_hh")
    if w_hh_arr.ndim != 2 or w_hh_arr.shape[1] < 1 or w_hh_arr.shape[0] != G * w_hh_arr.shape[1]:
        raise ValueError(f"w_hh must be 2-D ({G}*H, H) for this cell, got shape {w_hh_arr.shape}")
    H = w_hh_arr.shape[1]
    w_hh = array(w_hh_arr, "w_hh", dtype, (G * H, H))
    w_ih = array(w_ih, "w_ih", dtype, (G * H, I))
    b_ih = None if b_ih is None else array(b_ih, "b_ih", dtype, (G * H,))
    b_hh = None if b_hh is None else array(b_hh, "b_hh", dtype, (G * H,))
    hname, cname = ("h", "c") if step else ("h0", "c0")
    h0 = np.zeros((B, H), dtype) if h0 is None else array(h0, hname, dtype, (B, H))
    if cell == "lstm":
        c0 = np.zeros((B, H), dtype) if c0 is None else array(c0, cname, dtype, (B, H))
    elif c0 is not None:
        raise ValueError(f"{cname} is only used by the LSTM")
    lengths = None if step else lengths_array(lengths, T, B)
    return Forward(np.ascontiguousarray(x), h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, T, B, I, H)


def saved_dict(saved, cell, backend):
    """Check that ``saved`` came from ``{cell}_forward(training=True)`` of the same backend."""
    if saved is None:
        raise ValueError("saved is None: the forward pass ran with training=False, "
                         "so nothing was kept for backward; run it with training=True")
    if not isinstance(saved, dict) or saved.get("cell") != cell:
        if not isinstance(saved, dict):
            got = f"a value of type {type(saved).__name__}"
        elif "cell" not in saved:
            got = "a dict without its 'cell' entry"
        else:
            got = f"the saved dict of a {saved['cell']!r} cell"
        raise ValueError(f"saved must be what {cell}_forward(..., training=True) returned, got {got}")
    if saved.get("backend") != backend:
        raise ValueError(f"saved comes from the {saved.get('backend')!r} backend; pass it to that "
                         f"backend's {cell}_backward, not the {backend!r} one")
    return saved


def backward(cell, dy, dh_n, dc_n, saved, step=False):
    """Check a backward call against the forward's saved dict; None gradients become zeros."""
    x = saved["x"]
    T, B, _ = x.shape
    H = saved["w_hh"].shape[1]
    dtype = x.dtype
    if step:
        if T != 1:
            raise ValueError(f"saved holds a sequence of T={T} steps; a step backward takes what "
                             f"{cell}_step_forward(..., training=True) returned (T=1): use "
                             f"{cell}_backward for a sequence")
        dy = np.zeros((1, B, H), dtype)
    elif dy is None:
        dy = np.zeros((T, B, H), dtype)
    else:
        dy = array(dy, "dy", dtype, (T, B, H))
    hname, cname = ("dh_new", "dc_new") if step else ("dh_n", "dc_n")
    dh_n = np.zeros((B, H), dtype) if dh_n is None else array(dh_n, hname, dtype, (B, H))
    if cell == "lstm":
        dc_n = np.zeros((B, H), dtype) if dc_n is None else array(dc_n, cname, dtype, (B, H))
    return Backward(dy, dh_n, dc_n)


def layer_dtype(dtype):
    """A layer's ``dtype`` argument as float32 or float64; None means float32 (torch's default
    dtype, not NumPy's float64), as for every rnnfast module."""
    if dtype is None:
        return FLOAT_DTYPES[0]
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def positive_int(n, name, minimum=1):
    """``n`` as an int >= ``minimum`` (1 unless given), or a TypeError/ValueError naming it."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(n).__name__} {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return int(n)
