"""The thread count the compiled kernels use.

One setting for the process: ``set_num_threads(n)``, else the environment variable
RNNFAST_NUM_THREADS, else every core this process may run on. Kernels receive the count as an
argument; nothing in C reads it from a global.
"""
import os

from ._validate import positive_int

_num_threads = None


def _default():
    env = os.environ.get("RNNFAST_NUM_THREADS")
    if env:
        try:
            return positive_int(int(env), "RNNFAST_NUM_THREADS")
        except (TypeError, ValueError):
            raise ValueError(f"RNNFAST_NUM_THREADS must be a positive integer, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def set_num_threads(n):
    """Use ``n`` threads in the compiled kernels (>= 1). Results do not depend on ``n``."""
    global _num_threads
    _num_threads = positive_int(n, "n")


def get_num_threads():
    """The number of threads the compiled kernels will use."""
    return _num_threads if _num_threads is not None else _default()
