"""The one place that chooses between the compiled kernels and the NumPy reference.

Every kernel in :data:`KERNELS` exists in both backends with the same signature and the same
answers (to rounding): ``rnnfast._kernels`` (C + Cython, built by setup.py) and
``rnnfast.reference`` (NumPy). Callers use the functions of this module and never know which ran.

The compiled backend is active when the extension imports; otherwise rnnfast runs on the reference
kernels and warns once. ``set_backend("reference")`` / ``set_backend("compiled")`` switches for the
whole process; ``use_backend(name)`` switches inside a ``with`` block.
"""
import contextlib
import functools
import threading
import warnings

from . import _blas, reference

KERNELS = (
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
    "rnn_step_forward", "rnn_step_backward", "lstm_step_forward", "lstm_step_backward",
    "gru_step_forward", "gru_step_backward",
)
BACKENDS = ("compiled", "reference")

try:
    from . import _kernels as _compiled
    _missing = [k for k in KERNELS if not hasattr(_compiled, k)]
    _compiled_error = f"rnnfast._kernels lacks {', '.join(_missing)}" if _missing else None
    if _missing:
        _compiled = None
except ImportError as exc:  # the extension was not built, or cannot load
    _compiled, _compiled_error = None, f"{type(exc).__name__}: {exc}"

_lock = threading.Lock()
_active = None  # module of the active backend; chosen lazily so import never warns twice


def compiled_available():
    """True if the compiled extension is built and importable."""
    return _compiled is not None


def _module(name):
    if name == "compiled":
        if _compiled is None:
            raise RuntimeError(f"the compiled backend is not available ({_compiled_error}); "
                               "reinstall rnnfast with a C compiler: pip install .")
        return _compiled
    if name == "reference":
        return reference
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


def _current():
    global _active
    if _active is None:
        with _lock:
            if _active is None:
                if _compiled is None:
                    warnings.warn("rnnfast's compiled kernels are not available "
                                  f"({_compiled_error}); using the NumPy reference kernels, "
                                  "which are much slower", RuntimeWarning, stacklevel=3)
                    _active = reference
                else:
                    _blas.check()  # warn once if scipy's BLAS runs narrower kernels than the CPU has
                    _active = _compiled
    return _active


def backend():
    """The name of the active backend: "compiled" or "reference"."""
    return "compiled" if _current() is _compiled and _compiled is not None else "reference"


def set_backend(name):
    """Make ``name`` ("compiled" or "reference") the active backend for the whole process."""
    global _active
    _active = _module(name)
    if _active is _compiled:
        _blas.check()


@contextlib.contextmanager
def use_backend(name):
    """``with use_backend("reference"): ...`` runs the block on that backend, then restores.

    Like set_backend, this switches the one process-wide setting (not a per-thread one): don't
    switch backends from several threads at once.
    """
    global _active
    previous = _active  # may still be None (undecided): restoring that decides lazily, as before
    _active = _module(name)
    if _active is _compiled:
        _blas.check()
    try:
        yield
    finally:
        _active = previous


def _dispatcher(name):
    @functools.wraps(getattr(reference, name))
    def kernel(*args, **kwargs):
        return getattr(_current(), name)(*args, **kwargs)
    return kernel


for _name in KERNELS:
    globals()[_name] = _dispatcher(_name)
del _name
