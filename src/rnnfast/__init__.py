"""rnnfast: fast recurrent-network kernels (Elman RNN, LSTM, GRU) for CPUs, with a NumPy API.

Three ways in:

* train models with ``rnnfast.fit`` and ``rnnfast.Sequential``;
* use ``rnnfast.RNN`` / ``LSTM`` / ``GRU`` like their torch.nn namesakes (same weights, same math);
* call the kernels directly: ``rnnfast.kernels.lstm_forward(...)`` and friends (see
  ``rnnfast.kernels.KERNELS``), from Python, or from Cython/C through ``rnnfast.get_include()``.

The compiled kernels (C, OpenMP, scipy's BLAS) are used when built; otherwise the NumPy reference
kernels run, with a warning. ``rnnfast.backend()`` says which is active.
"""
from . import _blas

# Must run before anything imports scipy.linalg: OpenBLAS picks its kernels when it loads.
_blas.prepare()

from . import kernels, reference  # noqa: E402
from ._threads import (get_num_threads, set_num_threads, get_workspace_cache,  # noqa: E402
                       set_workspace_cache, get_output_cache, set_output_cache)
from .kernels import backend, set_backend, use_backend, compiled_available  # noqa: E402
from ._module import Module, Parameter, no_grad, is_grad_enabled  # noqa: E402
from .layers import RNN, LSTM, GRU  # noqa: E402
from .models import (Sequential, Embedding, Linear, Dropout, LastStep, Tanh, ReLU,  # noqa: E402
                     Sigmoid, register_module)
from .losses import MSELoss, CrossEntropyLoss, BCEWithLogitsLoss  # noqa: E402
from .optim import SGD, Adam, AdamW, clip_grad_norm_, clip_grad_value_  # noqa: E402
from .train import fit, predict, evaluate, History, EarlyStopping, StopTraining  # noqa: E402
from .io import save, load, ModelFileError  # noqa: E402

__version__ = "0.1.0"


def get_include():
    """Directory holding rnnfast.h (the public C API) and the headers it includes."""
    import os
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


__all__ = ["kernels", "reference", "backend", "set_backend", "use_backend", "compiled_available",
           "get_num_threads", "set_num_threads", "get_workspace_cache", "set_workspace_cache",
           "get_output_cache", "set_output_cache",
           "get_include", "__version__",
           "Module", "Parameter", "no_grad", "is_grad_enabled", "RNN", "LSTM", "GRU",
           "Sequential", "Embedding", "Linear", "Dropout", "LastStep", "Tanh", "ReLU", "Sigmoid",
           "register_module", "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss",
           "SGD", "Adam", "AdamW", "clip_grad_norm_", "clip_grad_value_",
           "fit", "predict", "evaluate", "History", "EarlyStopping", "StopTraining",
           "save", "load", "ModelFileError"]
