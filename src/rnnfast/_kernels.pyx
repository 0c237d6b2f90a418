# cython: language_level=3
"""Cython binding of rnnfast's C kernels (csrc/): the compiled backend of rnnfast.kernels.

Each function has exactly the signature, results and ``saved`` conventions of its NumPy twin in
rnnfast.reference (read those docstrings for the math and shapes: x (T, B, I), states (B, H),
y (T, B, H), w_ih (G*H, I), w_hh (G*H, H), biases (G*H,) or None). What happens here:

* arguments are checked by rnnfast._validate -- the same checks, and so the same errors, as the
  reference -- which also turns any layout (non-contiguous, Fortran-ordered) into C-contiguous
  arrays;
* outputs and the per-call workspace (its length from the C workspace functions) are NumPy arrays
  allocated here (large outputs from the output cache, _out); C allocates nothing;
* the whole C kernel runs without the GIL, with rnnfast.get_num_threads() OpenMP threads and
  scipy's BLAS (scipy.linalg.cython_blas) handed to C as a table of function pointers; the C code
  runs the products on its own kernels (csrc/rf_mm.c) below a problem size and on that BLAS
  above it or when the call has fewer than 16 rows, T*B (csrc/rf_common.h, rf_small).

The same kernels are exported at C level for other Cython code: see _kernels.pxd.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, SIZE_MAX
from cpython.ref cimport Py_REFCNT, Py_INCREF
from cpython.object cimport PyTypeObject
import sys
cimport scipy.linalg.cython_blas as cblas

from rnnfast import _validate
from rnnfast._threads import get_num_threads, get_workspace_cache, get_output_cache
import threading

# Workspace of the kernels: scratch, dead once a call returns. Each thread keeps its last one (up to
# rnnfast.get_workspace_cache() bytes, one buffer of bytes whatever the dtype) and reuses it when
# big enough, so a loop of calls does not hand megabytes back to the C allocator after every call
# (glibc then trims the heap, or unmaps what it mapped, and the next call pays a page fault and
# the zeroing of every 4 KiB touched). Per thread, so concurrent calls never share one.
_work_tls = threading.local()


def _work(n, dt, shape=None):
    """n elements of dtype dt of this thread's workspace (the kept buffer when it is big enough).
    n is what a C workspace function returned for shape (T, B, I, H): SIZE_MAX when the sizes
    are beyond what the kernels take."""
    if n == SIZE_MAX:
        raise ValueError(f"sizes (T, B, I, H) = {tuple(shape or ())} are too large for the "
                         f"compiled kernels: T*B and each weight matrix's element count (G*H "
                         f"times the larger of I and H, G gates) must fit in a 32-bit int, the "
                         f"BLAS's")
    dt = np.dtype(dt)
    nbytes = max(n, 1) * dt.itemsize
    limit = get_workspace_cache()
    buf = getattr(_work_tls, "buf", None)
    if buf is not None and buf.nbytes > limit:  # the limit was lowered since it was kept
        buf = _work_tls.buf = None
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(nbytes, np.uint8)  # malloc'd: aligned for any dtype
        if nbytes <= limit:
            _work_tls.buf = buf
    return buf[:nbytes].view(dt)

# Outputs start on a 64-byte boundary, a cache line (NumPy's own arrays are 16-byte aligned): the
# threads of a kernel write neighbouring rows of y, h_n, dx and the rest, and where a row that one
# thread writes shares a cache line with another thread's, that line moves between the two cores
# every step. Measured at (32,50,32,64), float32, 2 threads on two vCPUs whose caches were 190 ns
# apart (in-process A/B, time aligned/unaligned): RNN 0.973 inference, 0.957 forward+backward;
# LSTM 0.931 and 0.953. On vCPUs 50 ns apart: 0.98-1.02.
cdef enum:
    _ALIGN = 64

cdef extern from "numpy/arrayobject.h":
    # steals a reference to descr; the array does not own data (its base must keep it alive)
    object PyArray_NewFromDescr(PyTypeObject *subtype, cnp.dtype descr, int nd,
                                cnp.npy_intp *dims, cnp.npy_intp *strides, void *data, int flags,
                                object obj)


cdef inline Py_ssize_t _align_offset(object raw):
    """Bytes from the start of uint8 array raw to its first 64-byte boundary."""
    cdef size_t addr = <size_t>cnp.PyArray_DATA(raw)
    return <Py_ssize_t>((_ALIGN - addr % _ALIGN) % _ALIGN)


cdef object _on_line(object raw, tuple shape, cnp.dtype descr):
    """An uninitialised C-ordered array of that shape (at most 3 dimensions) and dtype at the
    first 64-byte boundary of uint8 array raw, which must have room for it, with raw as its base
    (so raw's reference count tells whether an output still uses it). Made through NumPy's C API:
    a single step's call makes up to a dozen outputs, and slicing, viewing and reshaping in Python
    cost about 1 us each."""
    cdef cnp.npy_intp dims[3]
    cdef int nd = len(shape), i
    for i in range(nd):
        dims[i] = shape[i]
    Py_INCREF(descr)  # PyArray_NewFromDescr steals it
    out = PyArray_NewFromDescr(<PyTypeObject *>cnp.ndarray, descr, nd, dims, NULL,
                               <char *>cnp.PyArray_DATA(raw) + _align_offset(raw),
                               cnp.NPY_ARRAY_CARRAY, None)
    cnp.set_array_base(out, raw)
    return out


cdef object _empty(tuple shape, dt):
    """np.empty(shape, dt), starting on a 64-byte boundary (of a uint8 array 64 bytes longer)."""
    cdef cnp.dtype descr = np.dtype(dt)
    cdef cnp.npy_intp nbytes = descr.itemsize
    for n in shape:
        nbytes *= <cnp.npy_intp>n
    return _on_line(np.empty(nbytes + _ALIGN, np.uint8), shape, descr)


# Output cache (rnnfast.set_output_cache): outputs of at least _OUT_MIN bytes are views of uint8
# blocks listed here, least recently handed out first (_out_bytes: their outputs' total; each
# block has 64 bytes more, to start its output on a cache line). A block whose
# only reference is this list's (no array or view uses it any more: NumPy's views of views all
# refer to the block itself) is handed out again for an output of the same size, so a loop of
# calls reuses memory that is already mapped instead of faulting in and zeroing fresh pages every
# call. The size is compared first, then the reference count read and the block taken off the
# list with the GIL held and no allocation in between (an allocation may run the garbage
# collector, whose finalisers may let another thread in), so no other thread can take the same
# block; it goes back on the list, as the newest, once its view exists (or failed). Only on
# CPython with its GIL (_out_cacheable): elsewhere reference counts are not that or threads run
# at once, and every output is a fresh array (_empty).
_out_blocks = []
cdef Py_ssize_t _out_bytes = 0
cdef Py_ssize_t _OUT_MIN = 1 << 20
cdef bint _out_cacheable = (sys.implementation.name == "cpython"
                            and getattr(sys, "_is_gil_enabled", lambda: True)())


cdef inline Py_ssize_t _out_limit():
    return min(get_output_cache(), sys.maxsize) if _out_cacheable else 0


def _trim_outputs(keep=None):
    """Drop unused blocks, least recently handed out first, until at most ``keep`` bytes are
    listed (default: the output cache's limit; blocks in use stay listed until a later trim).
    Returns the bytes still listed."""
    global _out_bytes
    cdef Py_ssize_t limit = _out_limit() if keep is None else keep, i = 0
    while _out_bytes > limit and i < len(_out_blocks):
        block = _out_blocks[i]  # with this local, an unused block has two references
        if Py_REFCNT(block) == 2:
            del _out_blocks[i]
            _out_bytes -= block.nbytes - _ALIGN
        else:
            i += 1
    return _out_bytes


cdef object _out(int64_t T, int64_t B, int64_t N, dt):
    """An uninitialised (T, B, N) output array of dtype dt starting on a 64-byte boundary, from the
    output cache if it has at least _OUT_MIN bytes."""
    global _out_bytes
    cdef Py_ssize_t nbytes = T * B * N * dt.itemsize, i, limit
    cdef Py_ssize_t size = nbytes + _ALIGN  # a block: the output and room to align it
    if nbytes < _OUT_MIN:
        return _empty((T, B, N), dt)
    limit = _out_limit()
    if _out_bytes > limit:  # the limit was lowered: first drop what is no longer in use
        _trim_outputs(limit)
    for i in range(len(_out_blocks) - 1, -1, -1):  # the newest unused block of this size
        block = _out_blocks[i]  # with this local, an unused block has two references
        if block.nbytes == size and Py_REFCNT(block) == 2:
            # off the list while its view is made: that allocation may run the garbage collector,
            # and a finaliser may let another thread in, which must not find the block unused
            del _out_blocks[i]
            try:
                return _on_line(block, (T, B, N), dt)
            finally:
                _out_blocks.append(block)  # now the newest
    block = np.empty(size, np.uint8)
    if nbytes <= limit and _trim_outputs(limit - nbytes) + nbytes <= limit:
        _out_blocks.append(block)
        _out_bytes += nbytes  # the limit counts outputs' bytes, not the alignment's slack
    return _on_line(block, (T, B, N), dt)


cnp.import_array()

cdef extern from "rnnfast.h" nogil:
    int rnnfast_openmp_enabled()
    const char *rnnfast_isa()
    const char *rnnfast_strerror(int code)
    size_t rnnfast_rnn_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H)
    size_t rnnfast_rnn_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H)
    size_t rnnfast_lstm_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H, int training)
    size_t rnnfast_lstm_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H)
    size_t rnnfast_gru_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H, int training)
    size_t rnnfast_gru_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H)
    int rnnfast_rnn_forward_f32(float *y, float *h_n, const float *x, const float *h0,
        const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
        const int64_t *lengths, int nonlinearity, int64_t T, int64_t B, int64_t I, int64_t H,
        float *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_rnn_forward_f64(double *y, double *h_n, const double *x, const double *h0,
        const double *w_ih, const double *w_hh, const double *b_ih, const double *b_hh,
        const int64_t *lengths, int nonlinearity, int64_t T, int64_t B, int64_t I, int64_t H,
        double *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_rnn_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh,
        float *db_ih, float *db_hh, const float *dy, const float *dh_n, const float *y,
        const float *x, const float *h0, const float *w_ih, const float *w_hh,
        const int64_t *lengths, int nonlinearity, int64_t T, int64_t B, int64_t I, int64_t H,
        float *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_rnn_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh,
        double *db_ih, double *db_hh, const double *dy, const double *dh_n, const double *y,
        const double *x, const double *h0, const double *w_ih, const double *w_hh,
        const int64_t *lengths, int nonlinearity, int64_t T, int64_t B, int64_t I, int64_t H,
        double *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_lstm_forward_f32(float *y, float *h_n, float *c_n, float *gates, float *c_all,
        const float *x, const float *h0, const float *c0, const float *w_ih, const float *w_hh,
        const float *b_ih, const float *b_hh, const int64_t *lengths,
        int64_t T, int64_t B, int64_t I, int64_t H,
        float *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_lstm_forward_f64(double *y, double *h_n, double *c_n, double *gates,
        double *c_all, const double *x, const double *h0, const double *c0,
        const double *w_ih, const double *w_hh, const double *b_ih, const double *b_hh,
        const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,
        double *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_lstm_backward_f32(float *dx, float *dh0, float *dc0, float *dw_ih,
        float *dw_hh, float *db_ih, float *db_hh, const float *dy, const float *dh_n,
        const float *dc_n, const float *gates, const float *c_all, const float *y,
        const float *x, const float *h0, const float *c0, const float *w_ih, const float *w_hh,
        const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,
        float *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_lstm_backward_f64(double *dx, double *dh0, double *dc0, double *dw_ih,
        double *dw_hh, double *db_ih, double *db_hh, const double *dy, const double *dh_n,
        const double *dc_n, const double *gates, const double *c_all, const double *y,
        const double *x, const double *h0, const double *c0, const double *w_ih,
        const double *w_hh, const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,
        double *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_gru_forward_f32(float *y, float *h_n, float *gates, float *hn_all,
        const float *x, const float *h0, const float *w_ih, const float *w_hh,
        const float *b_ih, const float *b_hh, const int64_t *lengths,
        int64_t T, int64_t B, int64_t I, int64_t H,
        float *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_gru_forward_f64(double *y, double *h_n, double *gates, double *hn_all,
        const double *x, const double *h0, const double *w_ih, const double *w_hh,
        const double *b_ih, const double *b_hh, const int64_t *lengths,
        int64_t T, int64_t B, int64_t I, int64_t H,
        double *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_gru_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh,
        float *db_ih, float *db_hh, const float *dy, const float *dh_n, const float *gates,
        const float *hn_all, const float *y, const float *x, const float *h0,
        const float *w_ih, const float *w_hh, const int64_t *lengths,
        int64_t T, int64_t B, int64_t I, int64_t H,
        float *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
    int rnnfast_gru_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh,
        double *db_ih, double *db_hh, const double *dy, const double *dh_n,
        const double *gates, const double *hn_all, const double *y, const double *x,
        const double *h0, const double *w_ih, const double *w_hh, const int64_t *lengths,
        int64_t T, int64_t B, int64_t I, int64_t H,
        double *work, size_t work_len, const rnnfast_blas *blas, int n_threads)


# ---- BLAS glue: the one place that fills the C function table ---------------------------------
# Written once at import and only read afterwards.
cdef rnnfast_blas _BLAS
_BLAS.sgemm = <rnnfast_sgemm_fn>cblas.sgemm
_BLAS.dgemm = <rnnfast_dgemm_fn>cblas.dgemm
_BLAS.sgemv = <rnnfast_sgemv_fn>cblas.sgemv
_BLAS.dgemv = <rnnfast_dgemv_fn>cblas.dgemv


# ---- C-level API (declared in _kernels.pxd) ---------------------------------------------------
cdef const rnnfast_blas *scipy_blas() noexcept nogil:
    return &_BLAS

cdef const char *strerror(int code) noexcept nogil:
    return rnnfast_strerror(code)

cdef size_t rnn_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil:
    return rnnfast_rnn_forward_workspace(T, B, I, H)

cdef size_t rnn_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil:
    return rnnfast_rnn_backward_workspace(T, B, I, H)

cdef size_t lstm_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H,
                                   int training) noexcept nogil:
    return rnnfast_lstm_forward_workspace(T, B, I, H, training)

cdef size_t lstm_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil:
    return rnnfast_lstm_backward_workspace(T, B, I, H)

cdef size_t gru_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H,
                                  int training) noexcept nogil:
    return rnnfast_gru_forward_workspace(T, B, I, H, training)

cdef size_t gru_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil:
    return rnnfast_gru_backward_workspace(T, B, I, H)

cdef int rnn_forward_f32(float *y, float *h_n, const float *x, const float *h0,
                         const float *w_ih, const float *w_hh, const float *b_ih,
                         const float *b_hh, const int64_t *lengths, int nonlinearity,
                         int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_rnn_forward_f32(y, h_n, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, nonlinearity,
                                   T, B, I, H, work, work_len, blas, n_threads)

cdef int rnn_forward_f64(double *y, double *h_n, const double *x, const double *h0,
                         const double *w_ih, const double *w_hh, const double *b_ih,
                         const double *b_hh, const int64_t *lengths, int nonlinearity,
                         int64_t T, int64_t B, int64_t I, int64_t H, double *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_rnn_forward_f64(y, h_n, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, nonlinearity,
                                   T, B, I, H, work, work_len, blas, n_threads)

cdef int rnn_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                          float *db_hh, const float *dy, const float *dh_n, const float *y,
                          const float *x, const float *h0, const float *w_ih, const float *w_hh,
                          const int64_t *lengths, int nonlinearity, int64_t T, int64_t B,
                          int64_t I, int64_t H, float *work, size_t work_len,
                          const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_rnn_backward_f32(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dy, dh_n, y, x, h0,
                                    w_ih, w_hh, lengths, nonlinearity, T, B, I, H, work,
                                    work_len, blas, n_threads)

cdef int rnn_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                          double *db_hh, const double *dy, const double *dh_n, const double *y,
                          const double *x, const double *h0, const double *w_ih,
                          const double *w_hh, const int64_t *lengths, int nonlinearity,
                          int64_t T, int64_t B, int64_t I, int64_t H, double *work,
                          size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_rnn_backward_f64(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dy, dh_n, y, x, h0,
                                    w_ih, w_hh, lengths, nonlinearity, T, B, I, H, work,
                                    work_len, blas, n_threads)

cdef int lstm_forward_f32(float *y, float *h_n, float *c_n, float *gates, float *c_all,
                          const float *x, const float *h0, const float *c0, const float *w_ih,
                          const float *w_hh, const float *b_ih, const float *b_hh,
                          const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,
                          float *work, size_t work_len, const rnnfast_blas *blas,
                          int n_threads) noexcept nogil:
    return rnnfast_lstm_forward_f32(y, h_n, c_n, gates, c_all, x, h0, c0, w_ih, w_hh, b_ih,
                                    b_hh, lengths, T, B, I, H, work, work_len, blas, n_threads)

cdef int lstm_forward_f64(double *y, double *h_n, double *c_n, double *gates, double *c_all,
                          const double *x, const double *h0, const double *c0,
                          const double *w_ih, const double *w_hh, const double *b_ih,
                          const double *b_hh, const int64_t *lengths, int64_t T, int64_t B,
                          int64_t I, int64_t H, double *work, size_t work_len,
                          const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_lstm_forward_f64(y, h_n, c_n, gates, c_all, x, h0, c0, w_ih, w_hh, b_ih,
                                    b_hh, lengths, T, B, I, H, work, work_len, blas, n_threads)

cdef int lstm_backward_f32(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                           float *db_ih, float *db_hh, const float *dy, const float *dh_n,
                           const float *dc_n, const float *gates, const float *c_all,
                           const float *y, const float *x, const float *h0, const float *c0,
                           const float *w_ih, const float *w_hh, const int64_t *lengths,
                           int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                           size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_lstm_backward_f32(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dy, dh_n, dc_n,
                                     gates, c_all, y, x, h0, c0, w_ih, w_hh, lengths, T, B, I, H,
                                     work, work_len, blas, n_threads)

cdef int lstm_backward_f64(double *dx, double *dh0, double *dc0, double *dw_ih, double *dw_hh,
                           double *db_ih, double *db_hh, const double *dy, const double *dh_n,
                           const double *dc_n, const double *gates, const double *c_all,
                           const double *y, const double *x, const double *h0,
                           const double *c0, const double *w_ih, const double *w_hh,
                           const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,
                           double *work, size_t work_len, const rnnfast_blas *blas,
                           int n_threads) noexcept nogil:
    return rnnfast_lstm_backward_f64(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dy, dh_n, dc_n,
                                     gates, c_all, y, x, h0, c0, w_ih, w_hh, lengths, T, B, I, H,
                                     work, work_len, blas, n_threads)

cdef int gru_forward_f32(float *y, float *h_n, float *gates, float *hn_all, const float *x,
                         const float *h0, const float *w_ih, const float *w_hh,
                         const float *b_ih, const float *b_hh, const int64_t *lengths,
                         int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_gru_forward_f32(y, h_n, gates, hn_all, x, h0, w_ih, w_hh, b_ih, b_hh,
                                   lengths, T, B, I, H, work, work_len, blas, n_threads)

cdef int gru_forward_f64(double *y, double *h_n, double *gates, double *hn_all, const double *x,
                         const double *h0, const double *w_ih, const double *w_hh,
                         const double *b_ih, const double *b_hh, const int64_t *lengths,
                         int64_t T, int64_t B, int64_t I, int64_t H, double *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_gru_forward_f64(y, h_n, gates, hn_all, x, h0, w_ih, w_hh, b_ih, b_hh,
                                   lengths, T, B, I, H, work, work_len, blas, n_threads)

cdef int gru_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                          float *db_hh, const float *dy, const float *dh_n, const float *gates,
                          const float *hn_all, const float *y, const float *x, const float *h0,
                          const float *w_ih, const float *w_hh, const int64_t *lengths,
                          int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                          size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_gru_backward_f32(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dy, dh_n, gates, hn_all,
                                    y, x, h0, w_ih, w_hh, lengths, T, B, I, H, work, work_len,
                                    blas, n_threads)

cdef int gru_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                          double *db_hh, const double *dy, const double *dh_n,
                          const double *gates, const double *hn_all, const double *y,
                          const double *x, const double *h0, const double *w_ih,
                          const double *w_hh, const int64_t *lengths, int64_t T, int64_t B,
                          int64_t I, int64_t H, double *work, size_t work_len,
                          const rnnfast_blas *blas, int n_threads) noexcept nogil:
    return rnnfast_gru_backward_f64(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dy, dh_n, gates, hn_all,
                                    y, x, h0, w_ih, w_hh, lengths, T, B, I, H, work, work_len,
                                    blas, n_threads)


# ---- Python-level helpers ---------------------------------------------------------------------
def openmp_enabled():
    """True if the compiled kernels were built with OpenMP."""
    return bool(rnnfast_openmp_enabled())


def isa():
    """The instruction set the compiled kernels run with here: "avx512", "avx2" or "generic"."""
    return rnnfast_isa().decode()


cdef inline void *_p(object arr):
    """Data pointer of a C-contiguous array (as _validate returns them), or NULL for None."""
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef inline int _threads() except -1:
    n = get_num_threads()
    return <int>min(int(n), 1 << 16)


cdef inline _check(int rc):
    if rc != 0:  # every argument was validated above, so this is a bug, not bad input
        raise RuntimeError(f"rnnfast C kernel failed: {rnnfast_strerror(rc).decode()} (code {rc})")


def _saved(cell, a, y, **extra):
    return dict(cell=cell, backend="compiled", x=a.x, h0=a.h0, w_ih=a.w_ih, w_hh=a.w_hh,
                has_b_ih=a.b_ih is not None, has_b_hh=a.b_hh is not None, lengths=a.lengths,
                y=y, **extra)


# ---- Elman RNN ---------------------------------------------------------------------------------
cdef _rnn_forward(a, str nonlinearity, bint training):
    cdef int64_t T = a.T, B = a.B, I = a.I, H = a.H
    cdef size_t n_work = rnnfast_rnn_forward_workspace(T, B, I, H)
    work = _work(n_work, a.x.dtype, (T, B, I, H))
    cdef bint f32 = a.x.dtype == np.float32
    cdef int nl = RNNFAST_RELU if nonlinearity == "relu" else RNNFAST_TANH
    y = _out(T, B, H, a.x.dtype)
    h_n = _empty((B, H), a.x.dtype)
    cdef void *y_p = _p(y)
    cdef void *hn_p = _p(h_n)
    cdef void *x_p = _p(a.x)
    cdef void *h0_p = _p(a.h0)
    cdef void *wih_p = _p(a.w_ih)
    cdef void *whh_p = _p(a.w_hh)
    cdef void *bih_p = _p(a.b_ih)
    cdef void *bhh_p = _p(a.b_hh)
    cdef int64_t *len_p = <int64_t *>_p(a.lengths)
    cdef void *w_p = _p(work)
    cdef int nt = _threads()
    cdef int rc
    with nogil:
        if f32:
            rc = rnnfast_rnn_forward_f32(<float *>y_p, <float *>hn_p, <float *>x_p,
                <float *>h0_p, <float *>wih_p, <float *>whh_p, <float *>bih_p, <float *>bhh_p,
                len_p, nl, T, B, I, H, <float *>w_p, n_work, &_BLAS, nt)
        else:
            rc = rnnfast_rnn_forward_f64(<double *>y_p, <double *>hn_p, <double *>x_p,
                <double *>h0_p, <double *>wih_p, <double *>whh_p, <double *>bih_p,
                <double *>bhh_p, len_p, nl, T, B, I, H, <double *>w_p, n_work, &_BLAS, nt)
    _check(rc)
    saved = _saved("rnn", a, y, nonlinearity=nonlinearity) if training else None
    return y, h_n, saved


cdef _rnn_backward(g, s):
    x = s["x"]
    cdef int64_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = s["w_hh"].shape[1]
    cdef size_t n_work = rnnfast_rnn_backward_workspace(T, B, I, H)
    work = _work(n_work, x.dtype, (T, B, I, H))
    cdef bint f32 = x.dtype == np.float32
    cdef int nl = RNNFAST_RELU if s["nonlinearity"] == "relu" else RNNFAST_TANH
    dx = _out(T, B, I, x.dtype)
    dh0 = _empty((B, H), x.dtype)
    dw_ih = _empty((H, I), x.dtype)
    dw_hh = _empty((H, H), x.dtype)
    db_ih = _empty((H,), x.dtype) if s["has_b_ih"] else None
    db_hh = _empty((H,), x.dtype) if s["has_b_hh"] else None
    cdef void *dx_p = _p(dx)
    cdef void *dh0_p = _p(dh0)
    cdef void *dwih_p = _p(dw_ih)
    cdef void *dwhh_p = _p(dw_hh)
    cdef void *dbih_p = _p(db_ih)
    cdef void *dbhh_p = _p(db_hh)
    cdef void *dy_p = _p(g.dy)
    cdef void *dhn_p = _p(g.dh_n)
    cdef void *y_p = _p(s["y"])
    cdef void *x_p = _p(x)
    cdef void *h0_p = _p(s["h0"])
    cdef void *wih_p = _p(s["w_ih"])
    cdef void *whh_p = _p(s["w_hh"])
    cdef int64_t *len_p = <int64_t *>_p(s["lengths"])
    cdef void *w_p = _p(work)
    cdef int nt = _threads()
    cdef int rc
    with nogil:
        if f32:
            rc = rnnfast_rnn_backward_f32(<float *>dx_p, <float *>dh0_p, <float *>dwih_p,
                <float *>dwhh_p, <float *>dbih_p, <float *>dbhh_p, <float *>dy_p,
                <float *>dhn_p, <float *>y_p, <float *>x_p, <float *>h0_p, <float *>wih_p,
                <float *>whh_p, len_p, nl, T, B, I, H, <float *>w_p, n_work, &_BLAS, nt)
        else:
            rc = rnnfast_rnn_backward_f64(<double *>dx_p, <double *>dh0_p, <double *>dwih_p,
                <double *>dwhh_p, <double *>dbih_p, <double *>dbhh_p, <double *>dy_p,
                <double *>dhn_p, <double *>y_p, <double *>x_p, <double *>h0_p,
                <double *>wih_p, <double *>whh_p, len_p, nl, T, B, I, H, <double *>w_p, n_work,
                &_BLAS, nt)
    _check(rc)
    return dx, dh0, dw_ih, dw_hh, db_ih, db_hh


def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh", lengths=None,
                training=True):
    """Elman RNN over a sequence; see rnnfast.reference.rnn_forward.

    x (T, B, I), h0 (B, H) or None, w_ih (H, I), w_hh (H, H), b_ih, b_hh (H,) or None.
    Returns y (T, B, H), h_n (B, H), saved (dict, or None when training=False).
    """
    nonlinearity = _validate.nonlinearity(nonlinearity)
    a = _validate.forward("rnn", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    return _rnn_forward(a, nonlinearity, training)


def rnn_backward(dy, dh_n, saved):
    """Backward of rnn_forward: dx (T, B, I), dh0 (B, H), dw_ih, dw_hh, db_ih, db_hh."""
    s = _validate.saved_dict(saved, "rnn", "compiled")
    g = _validate.backward("rnn", dy, dh_n, None, s)
    return _rnn_backward(g, s)


def rnn_step_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh",
                     training=True):
    """One RNN step. x (B, I), h (B, H) or None. Returns h_new (B, H), saved (or None)."""
    nonlinearity = _validate.nonlinearity(nonlinearity)
    a = _validate.forward("rnn", x, h, None, w_ih, w_hh, b_ih, b_hh, step=True)
    _, h_new, saved = _rnn_forward(a, nonlinearity, training)
    return h_new, saved


def rnn_step_backward(dh_new, saved):
    """Backward of rnn_step_forward: dx (B, I), dh (B, H), dw_ih, dw_hh, db_ih, db_hh."""
    s = _validate.saved_dict(saved, "rnn", "compiled")
    dx, dh, *dw = _rnn_backward(_validate.backward("rnn", None, dh_new, None, s, step=True), s)
    return (dx[0], dh, *dw)


# ---- LSTM --------------------------------------------------------------------------------------
cdef _lstm_forward(a, bint training):
    cdef int64_t T = a.T, B = a.B, I = a.I, H = a.H
    cdef size_t n_work = rnnfast_lstm_forward_workspace(T, B, I, H, training)
    work = _work(n_work, a.x.dtype, (T, B, I, H))
    cdef bint f32 = a.x.dtype == np.float32
    dt = a.x.dtype
    y = _out(T, B, H, dt)
    h_n = _empty((B, H), dt)
    c_n = _empty((B, H), dt)
    gates = _out(T, B, 4 * H, dt) if training else None
    c_all = _out(T, B, H, dt) if training else None
    cdef void *y_p = _p(y)
    cdef void *hn_p = _p(h_n)
    cdef void *cn_p = _p(c_n)
    cdef void *g_p = _p(gates)
    cdef void *ca_p = _p(c_all)
    cdef void *x_p = _p(a.x)
    cdef void *h0_p = _p(a.h0)
    cdef void *c0_p = _p(a.c0)
    cdef void *wih_p = _p(a.w_ih)
    cdef void *whh_p = _p(a.w_hh)
    cdef void *bih_p = _p(a.b_ih)
    cdef void *bhh_p = _p(a.b_hh)
    cdef int64_t *len_p = <int64_t *>_p(a.lengths)
    cdef void *w_p = _p(work)
    cdef int nt = _threads()
    cdef int rc
    with nogil:
        if f32:
            rc = rnnfast_lstm_forward_f32(<float *>y_p, <float *>hn_p, <float *>cn_p,
                <float *>g_p, <float *>ca_p, <float *>x_p, <float *>h0_p, <float *>c0_p,
                <float *>wih_p, <float *>whh_p, <float *>bih_p, <float *>bhh_p, len_p,
                T, B, I, H, <float *>w_p, n_work, &_BLAS, nt)
        else:
            rc = rnnfast_lstm_forward_f64(<double *>y_p, <double *>hn_p, <double *>cn_p,
                <double *>g_p, <double *>ca_p, <double *>x_p, <double *>h0_p, <double *>c0_p,
                <double *>wih_p, <double *>whh_p, <double *>bih_p, <double *>bhh_p, len_p,
                T, B, I, H, <double *>w_p, n_work, &_BLAS, nt)
    _check(rc)
    saved = _saved("lstm", a, y, c0=a.c0, gates=gates, c=c_all) if training else None
    return y, h_n, c_n, saved


cdef _lstm_backward(g, s):
    x = s["x"]
    cdef int64_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = s["w_hh"].shape[1]
    cdef size_t n_work = rnnfast_lstm_backward_workspace(T, B, I, H)
    work = _work(n_work, x.dtype, (T, B, I, H))
    cdef bint f32 = x.dtype == np.float32
    dt = x.dtype
    dx = _out(T, B, I, dt)
    dh0 = _empty((B, H), dt)
    dc0 = _empty((B, H), dt)
    dw_ih = _empty((4 * H, I), dt)
    dw_hh = _empty((4 * H, H), dt)
    db_ih = _empty((4 * H,), dt) if s["has_b_ih"] else None
    db_hh = _empty((4 * H,), dt) if s["has_b_hh"] else None
    cdef void *dx_p = _p(dx)
    cdef void *dh0_p = _p(dh0)
    cdef void *dc0_p = _p(dc0)
    cdef void *dwih_p = _p(dw_ih)
    cdef void *dwhh_p = _p(dw_hh)
    cdef void *dbih_p = _p(db_ih)
    cdef void *dbhh_p = _p(db_hh)
    cdef void *dy_p = _p(g.dy)
    cdef void *dhn_p = _p(g.dh_n)
    cdef void *dcn_p = _p(g.dc_n)
    cdef void *gates_p = _p(s["gates"])
    cdef void *ca_p = _p(s["c"])
    cdef void *y_p = _p(s["y"])
    cdef void *x_p = _p(x)
    cdef void *h0_p = _p(s["h0"])
    cdef void *c0_p = _p(s["c0"])
    cdef void *wih_p = _p(s["w_ih"])
    cdef void *whh_p = _p(s["w_hh"])
    cdef int64_t *len_p = <int64_t *>_p(s["lengths"])
    cdef void *w_p = _p(work)
    cdef int nt = _threads()
    cdef int rc
    with nogil:
        if f32:
            rc = rnnfast_lstm_backward_f32(<float *>dx_p, <float *>dh0_p, <float *>dc0_p,
                <float *>dwih_p, <float *>dwhh_p, <float *>dbih_p, <float *>dbhh_p,
                <float *>dy_p, <float *>dhn_p, <float *>dcn_p, <float *>gates_p,
                <float *>ca_p, <float *>y_p, <float *>x_p, <float *>h0_p, <float *>c0_p,
                <float *>wih_p, <float *>whh_p, len_p, T, B, I, H, <float *>w_p, n_work,
                &_BLAS, nt)
        else:
            rc = rnnfast_lstm_backward_f64(<double *>dx_p, <double *>dh0_p, <double *>dc0_p,
                <double *>dwih_p, <double *>dwhh_p, <double *>dbih_p, <double *>dbhh_p,
                <double *>dy_p, <double *>dhn_p, <double *>dcn_p, <double *>gates_p,
                <double *>ca_p, <double *>y_p, <double *>x_p, <double *>h0_p, <double *>c0_p,
                <double *>wih_p, <double *>whh_p, len_p, T, B, I, H, <double *>w_p, n_work,
                &_BLAS, nt)
    _check(rc)
    return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, lengths=None, training=True):
    """LSTM over a sequence; see rnnfast.reference.lstm_forward.

    x (T, B, I), h0, c0 (B, H) or None, w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H,) or None.
    Returns y (T, B, H), h_n, c_n (B, H), saved (dict, or None when training=False).
    """
    a = _validate.forward("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths)
    return _lstm_forward(a, training)


def lstm_backward(dy, dh_n, dc_n, saved):
    """Backward of lstm_forward: dx (T, B, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh."""
    s = _validate.saved_dict(saved, "lstm", "compiled")
    g = _validate.backward("lstm", dy, dh_n, dc_n, s)
    return _lstm_backward(g, s)


def lstm_step_forward(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, training=True):
    """One LSTM step. x (B, I), h, c (B, H) or None. Returns h_new, c_new (B, H), saved."""
    a = _validate.forward("lstm", x, h, c, w_ih, w_hh, b_ih, b_hh, step=True)
    _, h_new, c_new, saved = _lstm_forward(a, training)
    return h_new, c_new, saved


def lstm_step_backward(dh_new, dc_new, saved):
    """Backward of lstm_step_forward: dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh."""
    s = _validate.saved_dict(saved, "lstm", "compiled")
    dx, dh, dc, *dw = _lstm_backward(_validate.backward("lstm", None, dh_new, dc_new, s, step=True), s)
    return (dx[0], dh, dc, *dw)


# ---- GRU ---------------------------------------------------------------------------------------
cdef _gru_forward(a, bint training):
    cdef int64_t T = a.T, B = a.B, I = a.I, H = a.H
    cdef size_t n_work = rnnfast_gru_forward_workspace(T, B, I, H, training)
    work = _work(n_work, a.x.dtype, (T, B, I, H))
    cdef bint f32 = a.x.dtype == np.float32
    dt = a.x.dtype
    y = _out(T, B, H, dt)
    h_n = _empty((B, H), dt)
    gates = _out(T, B, 3 * H, dt) if training else None
    hn_all = _out(T, B, H, dt) if training else None
    cdef void *y_p = _p(y)
    cdef void *hn_p = _p(h_n)
    cdef void *g_p = _p(gates)
    cdef void *hna_p = _p(hn_all)
    cdef void *x_p = _p(a.x)
    cdef void *h0_p = _p(a.h0)
    cdef void *wih_p = _p(a.w_ih)
    cdef void *whh_p = _p(a.w_hh)
    cdef void *bih_p = _p(a.b_ih)
    cdef void *bhh_p = _p(a.b_hh)
    cdef int64_t *len_p = <int64_t *>_p(a.lengths)
    cdef void *w_p = _p(work)
    cdef int nt = _threads()
    cdef int rc
    with nogil:
        if f32:
            rc = rnnfast_gru_forward_f32(<float *>y_p, <float *>hn_p, <float *>g_p,
                <float *>hna_p, <float *>x_p, <float *>h0_p, <float *>wih_p, <float *>whh_p,
                <float *>bih_p, <float *>bhh_p, len_p, T, B, I, H, <float *>w_p, n_work,
                &_BLAS, nt)
        else:
            rc = rnnfast_gru_forward_f64(<double *>y_p, <double *>hn_p, <double *>g_p,
                <double *>hna_p, <double *>x_p, <double *>h0_p, <double *>wih_p,
                <double *>whh_p, <double *>bih_p, <double *>bhh_p, len_p, T, B, I, H,
                <double *>w_p, n_work, &_BLAS, nt)
    _check(rc)
    saved = _saved("gru", a, y, gates=gates, hn=hn_all) if training else None
    return y, h_n, saved


cdef _gru_backward(g, s):
    x = s["x"]
    cdef int64_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = s["w_hh"].shape[1]
    cdef size_t n_work = rnnfast_gru_backward_workspace(T, B, I, H)
    work = _work(n_work, x.dtype, (T, B, I, H))
    cdef bint f32 = x.dtype == np.float32
    dt = x.dtype
    dx = _out(T, B, I, dt)
    dh0 = _empty((B, H), dt)
    dw_ih = _empty((3 * H, I), dt)
    dw_hh = _empty((3 * H, H), dt)
    db_ih = _empty((3 * H,), dt) if s["has_b_ih"] else None
    db_hh = _empty((3 * H,), dt) if s["has_b_hh"] else None
    cdef void *dx_p = _p(dx)
    cdef void *dh0_p = _p(dh0)
    cdef void *dwih_p = _p(dw_ih)
    cdef void *dwhh_p = _p(dw_hh)
    cdef void *dbih_p = _p(db_ih)
    cdef void *dbhh_p = _p(db_hh)
    cdef void *dy_p = _p(g.dy)
    cdef void *dhn_p = _p(g.dh_n)
    cdef void *gates_p = _p(s["gates"])
    cdef void *hna_p = _p(s["hn"])
    cdef void *y_p = _p(s["y"])
    cdef void *x_p = _p(x)
    cdef void *h0_p = _p(s["h0"])
    cdef void *wih_p = _p(s["w_ih"])
    cdef void *whh_p = _p(s["w_hh"])
    cdef int64_t *len_p = <int64_t *>_p(s["lengths"])
    cdef void *w_p = _p(work)
    cdef int nt = _threads()
    cdef int rc
    with nogil:
        if f32:
            rc = rnnfast_gru_backward_f32(<float *>dx_p, <float *>dh0_p, <float *>dwih_p,
                <float *>dwhh_p, <float *>dbih_p, <float *>dbhh_p, <float *>dy_p,
                <float *>dhn_p, <float *>gates_p, <float *>hna_p, <float *>y_p, <float *>x_p,
                <float *>h0_p, <float *>wih_p, <float *>whh_p, len_p, T, B, I, H,
                <float *>w_p, n_work, &_BLAS, nt)
        else:
            rc = rnnfast_gru_backward_f64(<double *>dx_p, <double *>dh0_p, <double *>dwih_p,
                <double *>dwhh_p, <double *>dbih_p, <double *>dbhh_p, <double *>dy_p,
                <double *>dhn_p, <double *>gates_p, <double *>hna_p, <double *>y_p,
                <double *>x_p, <double *>h0_p, <double *>wih_p, <double *>whh_p, len_p,
                T, B, I, H, <double *>w_p, n_work, &_BLAS, nt)
    _check(rc)
    return dx, dh0, dw_ih, dw_hh, db_ih, db_hh


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, lengths=None, training=True):
    """GRU over a sequence; see rnnfast.reference.gru_forward.

    x (T, B, I), h0 (B, H) or None, w_ih (3H, I), w_hh (3H, H), b_ih, b_hh (3H,) or None.
    Returns y (T, B, H), h_n (B, H), saved (dict, or None when training=False).
    """
    a = _validate.forward("gru", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    return _gru_forward(a, training)


def gru_backward(dy, dh_n, saved):
    """Backward of gru_forward: dx (T, B, I), dh0 (B, H), dw_ih, dw_hh, db_ih, db_hh."""
    s = _validate.saved_dict(saved, "gru", "compiled")
    g = _validate.backward("gru", dy, dh_n, None, s)
    return _gru_backward(g, s)


def gru_step_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, training=True):
    """One GRU step. x (B, I), h (B, H) or None. Returns h_new (B, H), saved (or None)."""
    a = _validate.forward("gru", x, h, None, w_ih, w_hh, b_ih, b_hh, step=True)
    _, h_new, saved = _gru_forward(a, training)
    return h_new, saved


def gru_step_backward(dh_new, saved):
    """Backward of gru_step_forward: dx (B, I), dh (B, H), dw_ih, dw_hh, db_ih, db_hh."""
    s = _validate.saved_dict(saved, "gru", "compiled")
    dx, dh, *dw = _gru_backward(_validate.backward("gru", None, dh_new, None, s, step=True), s)
    return (dx[0], dh, *dw)
