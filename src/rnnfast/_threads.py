"""The compiled kernels' process-wide settings: the thread count, the workspace and output caches.

Threads: ``set_num_threads(n)``, else the environment variable RNNFAST_NUM_THREADS, else every
core this process may run on. Kernels receive the count as an argument; nothing in C reads it from
a global.

Workspace cache: each Python thread that calls a compiled kernel keeps the scratch memory of its
last call, up to ``get_workspace_cache()`` bytes, and reuses it when the next call's fits
(rnnfast._kernels._work). Fresh memory costs page faults and the OS's zeroing of every page: for
the GRU at (128,100,512,512), 10-13% of a forward+backward's profile with a 16 MiB limit (its
backward's 157 MB workspace was fresh every call); kept, the call took 0.88-0.99 of the time
(in-process A/B, two runs).

Output cache: output arrays of at least 1 MiB (y, the saved activations, dx) are views of blocks
that the compiled backend keeps, up to ``get_output_cache()`` bytes for the whole process, and
hands out again once every array using a block has been dropped (rnnfast._kernels._out). A fresh
block of tens of megabytes costs a page fault and the zeroing of each of its pages: the GRU at
(128,100,512,512) paid ~3000 faults a forward+backward and 6-8% of its profile in the kernel's
page clearing; with its outputs kept, none.
"""
import os

from ._validate import positive_int

_num_threads = None
# 256 MiB: the largest workspace of DESIGN.md's shapes is the GRU's backward at (128,100,512,512),
# 157 MB (two gate gradients of T*B*3H floats).
_workspace_cache = 1 << 28
# 256 MiB: the outputs of the largest forward+backward of DESIGN.md's shapes, the LSTM's at
# (128,100,512,512): gates 105 MB, c_all, y and dx 26 MB each.
_output_cache = 1 << 28


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


def set_output_cache(nbytes):
    """Let the compiled kernels keep up to ``nbytes`` of output arrays' memory for reuse (>= 0).

    Output arrays of at least 1 MiB (y, the activations a training forward saves, dx) are views
    of blocks the process keeps after the arrays are dropped, and a later call whose output has
    the same size reuses one instead of asking the OS for fresh pages (which it must fault in and
    zero: 6-8% of a GRU forward+backward at B=128, T=100, H=512). The default, 256 MiB, holds the
    float32 outputs of one forward+backward of an LSTM of that size; it comes on top of the
    workspaces (set_workspace_cache). The compiled kernels' outputs, kept or not, start on a
    64-byte boundary and do not own their memory (``a.base`` is the block, or a small uint8
    array), so ``ndarray.resize`` refuses them; otherwise they are ordinary arrays. 0 keeps none.
    Lowering the limit releases unused blocks at once; blocks still in use go when a later kernel
    call finds them unused. Only on CPython with its GIL (elsewhere nothing is kept).
    """
    global _output_cache
    _output_cache = positive_int(nbytes, "nbytes", minimum=0)
    try:
        from ._kernels import _trim_outputs
    except ImportError:  # no compiled backend: nothing is kept
        return
    _trim_outputs()


def get_output_cache():
    """The most bytes of output arrays' memory the compiled kernels keep for reuse."""
    return _output_cache
