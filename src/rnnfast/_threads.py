"""The compiled kernels' process-wide settings: the thread count and the workspace cache.

Threads: ``set_num_threads(n)``, else the environment variable RNNFAST_NUM_THREADS, else every
core this process may run on. Kernels receive the count as an argument; nothing in C reads it from
a global.

Workspace cache: each Python thread that calls a compiled kernel keeps the scratch memory of its
last call, up to ``get_workspace_cache()`` bytes, and reuses it when the next call's fits
(rnnfast._kernels._work). Fresh memory costs page faults and the OS's zeroing of every page: for
the GRU at (128,100,512,512), 10-13% of a forward+backward's profile with a 16 MiB limit (its
backward's 157 MB workspace was fresh every call); kept, the call took 0.88-0.99 of the time
(in-process A/B, two runs). The outputs are new arrays every call, as they must be.
"""
import os

from ._validate import positive_int

_num_threads = None
# 256 MiB: the largest workspace of DESIGN.md's shapes is the GRU's backward at (128,100,512,512),
# 157 MB (two gate gradients of T*B*3H floats).
_workspace_cache = 1 << 28


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


def set_workspace_cache(nbytes):
    """Let each calling thread keep up to ``nbytes`` of kernel workspace between calls (>= 0).

    One buffer per thread, whatever the dtype. The default, 256 MiB, covers the workspaces of
    large layers (a GRU's backward at B=128, T=100, H=512 needs 157 MB): a loop of calls then
    reuses one buffer instead of faulting fresh memory in on every call. Each thread of a pool
    that calls the kernels keeps its own. A smaller value returns larger buffers to the allocator
    after each call; 0 keeps none. A thread drops a kept buffer above the new limit at its next
    kernel call.
    """
    global _workspace_cache
    _workspace_cache = positive_int(nbytes, "nbytes", minimum=0)


def get_workspace_cache():
    """The most bytes of kernel workspace each calling thread keeps between calls."""
    return _workspace_cache
