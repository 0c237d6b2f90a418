# cython: language_level=3
"""C-level API of rnnfast's compiled kernels, for other Cython projects.

    cimport rnnfast._kernels as rk
    cdef const rk.rnnfast_blas *blas = rk.scipy_blas()
    n = rk.lstm_forward_workspace(T, B, I, H, 1)
    rc = rk.lstm_forward_f32(y, h_n, c_n, gates, c_all, x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                             NULL, T, B, I, H, work, n, blas, 2)

Build with include_dirs=[rnnfast.get_include()] (for rnnfast.h) and the directory holding the
rnnfast package on Cython's include path. The functions below are exported through Cython's C-API
mechanism (the cimporting module fetches their addresses when it imports rnnfast._kernels), so
nothing needs to be linked. They are the C kernels of rnnfast.h, unchanged: raw pointers to
C-contiguous arrays, error codes, no Python objects, callable without the GIL. scipy_blas() is the
table of scipy's BLAS (scipy.linalg.cython_blas) that the Python binding itself uses.
"""
from libc.stdint cimport int64_t

cdef extern from "rnnfast.h" nogil:
    ctypedef void (*rnnfast_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *,
                                      int *, float *, int *, float *, float *, int *) noexcept nogil
    ctypedef void (*rnnfast_dgemm_fn)(char *, char *, int *, int *, int *, double *, double *,
                                      int *, double *, int *, double *, double *,
                                      int *) noexcept nogil
    ctypedef void (*rnnfast_sgemv_fn)(char *, int *, int *, float *, float *, int *, float *,
                                      int *, float *, float *, int *) noexcept nogil
    ctypedef void (*rnnfast_dgemv_fn)(char *, int *, int *, double *, double *, int *, double *,
                                      int *, double *, double *, int *) noexcept nogil
    ctypedef struct rnnfast_blas:
        rnnfast_sgemm_fn sgemm
        rnnfast_dgemm_fn dgemm
        rnnfast_sgemv_fn sgemv
        rnnfast_dgemv_fn dgemv
    enum:
        RNNFAST_OK
        RNNFAST_ERR_NULL
        RNNFAST_ERR_SIZE
        RNNFAST_ERR_WORKSPACE
        RNNFAST_ERR_LENGTHS
        RNNFAST_ERR_ARG
        RNNFAST_TANH
        RNNFAST_RELU

cdef const rnnfast_blas *scipy_blas() noexcept nogil
cdef const char *strerror(int code) noexcept nogil

cdef size_t rnn_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil
cdef size_t rnn_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil
cdef size_t lstm_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H,
                                   int training) noexcept nogil
cdef size_t lstm_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil
cdef size_t gru_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H,
                                  int training) noexcept nogil
cdef size_t gru_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) noexcept nogil

cdef int rnn_forward_f32(float *y, float *h_n, const float *x, const float *h0,
                         const float *w_ih, const float *w_hh, const float *b_ih,
                         const float *b_hh, const int64_t *lengths, int nonlinearity,
                         int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int rnn_forward_f64(double *y, double *h_n, const double *x, const double *h0,
                         const double *w_ih, const double *w_hh, const double *b_ih,
                         const double *b_hh, const int64_t *lengths, int nonlinearity,
                         int64_t T, int64_t B, int64_t I, int64_t H, double *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int rnn_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                          float *db_hh, const float *dy, const float *dh_n, const float *y,
                          const float *x, const float *h0, const float *w_ih, const float *w_hh,
                          const int64_t *lengths, int nonlinearity, int64_t T, int64_t B,
                          int64_t I, int64_t H, float *work, size_t work_len,
                          const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int rnn_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                          double *db_hh, const double *dy, const double *dh_n, const double *y,
                          const double *x, const double *h0, const double *w_ih,
                          const double *w_hh, const int64_t *lengths, int nonlinearity,
                          int64_t T, int64_t B, int64_t I, int64_t H, double *work,
                          size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil

cdef int lstm_forward_f32(float *y, float *h_n, float *c_n, float *gates, float *c_all,
                          const float *x, const float *h0, const float *c0, const float *w_ih,
                          const float *w_hh, const float *b_ih, const float *b_hh,
                          const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,
                          float *work, size_t work_len, const rnnfast_blas *blas,
                          int n_threads) noexcept nogil
cdef int lstm_forward_f64(double *y, double *h_n, double *c_n, double *gates, double *c_all,
                          const double *x, const double *h0, const double *c0,
                          const double *w_ih, const double *w_hh, const double *b_ih,
                          const double *b_hh, const int64_t *lengths, int64_t T, int64_t B,
                          int64_t I, int64_t H, double *work, size_t work_len,
                          const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int lstm_backward_f32(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                           float *db_ih, float *db_hh, const float *dy, const float *dh_n,
                           const float *dc_n, const float *gates, const float *c_all,
                           const float *y, const float *x, const float *h0, const float *c0,
                           const float *w_ih, const float *w_hh, const int64_t *lengths,
                           int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                           size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int lstm_backward_f64(double *dx, double *dh0, double *dc0, double *dw_ih, double *dw_hh,
                           double *db_ih, double *db_hh, const double *dy, const double *dh_n,
                           const double *dc_n, const double *gates, const double *c_all,
                           const double *y, const double *x, const double *h0,
                           const double *c0, const double *w_ih, const double *w_hh,
                           const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,
                           double *work, size_t work_len, const rnnfast_blas *blas,
                           int n_threads) noexcept nogil

cdef int gru_forward_f32(float *y, float *h_n, float *gates, float *hn_all, const float *x,
                         const float *h0, const float *w_ih, const float *w_hh,
                         const float *b_ih, const float *b_hh, const int64_t *lengths,
                         int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int gru_forward_f64(double *y, double *h_n, double *gates, double *hn_all, const double *x,
                         const double *h0, const double *w_ih, const double *w_hh,
                         const double *b_ih, const double *b_hh, const int64_t *lengths,
                         int64_t T, int64_t B, int64_t I, int64_t H, double *work,
                         size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int gru_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                          float *db_hh, const float *dy, const float *dh_n, const float *gates,
                          const float *hn_all, const float *y, const float *x, const float *h0,
                          const float *w_ih, const float *w_hh, const int64_t *lengths,
                          int64_t T, int64_t B, int64_t I, int64_t H, float *work,
                          size_t work_len, const rnnfast_blas *blas, int n_threads) noexcept nogil
cdef int gru_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                          double *db_hh, const double *dy, const double *dh_n,
                          const double *gates, const double *hn_all, const double *y,
                          const double *x, const double *h0, const double *w_ih,
                          const double *w_hh, const int64_t *lengths, int64_t T, int64_t B,
                          int64_t I, int64_t H, double *work, size_t work_len,
                          const rnnfast_blas *blas, int n_threads) noexcept nogil
