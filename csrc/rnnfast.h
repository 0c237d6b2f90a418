/* rnnfast.h: the public C API of rnnfast's recurrent-network kernels (Elman RNN, LSTM, GRU).
 *
 * Pure C11, no Python. What an embedding C project includes; the Python package is one client.
 * Every kernel exists for float (_f32) and double (_f64), generated from one source.
 *
 * Layout (dimension letters used everywhere: T steps, B batch, I input size, H hidden size,
 * G gates = 1 RNN, 4 LSTM (i,f,g,o), 3 GRU (r,z,n)). All arrays are C-contiguous, row-major:
 *   x (T,B,I)   y (T,B,H)   states h0 c0 h_n c_n (B,H)
 *   w_ih (G*H,I)   w_hh (G*H,H)   b_ih b_hh (G*H)            -- PyTorch's parameter layout
 *   lengths: NULL (every sequence has T steps) or B int64 values in [0,T], any order; past its
 *            length a sequence's output is 0 and its state is frozen (torch pack_padded_sequence).
 * Optional inputs may be NULL: h0/c0 (zeros), b_ih/b_hh (no bias), dy/dh_n/dc_n (zero gradient),
 * db_ih/db_hh (not computed).
 *
 * Math (PyTorch's conventions):
 *   RNN:  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu
 *   LSTM: (i,f,g,o) = split(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); i,f,o = sigmoid; g = tanh;
 *         c_t = f*c_{t-1} + i*g; h_t = o*tanh(c_t)
 *   GRU:  r = sigmoid(W_ir x + b_ir + W_hr h + b_hr); z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *         n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h_t = (1-z)*n + z*h_{t-1}
 *
 * Argument order: outputs, saved activations, inputs and weights, sizes, then the call context
 * (workspace, BLAS table, thread count).
 *
 * Workspace: every kernel takes `work`, an array of `work_len` elements of the kernel's dtype,
 * whose required length is returned by the matching rnnfast_*_workspace() function (a function
 * of the sizes only; it is the same for _f32 and _f64). The kernels allocate nothing.
 *
 * Saved activations (training): forward writes what backward needs into caller-owned arrays:
 *   LSTM: gates (T,B,4H) activated i,f,g,o and c_all (T,B,H) the cell state after every step;
 *   GRU:  gates (T,B,3H) activated r,z,n and hn_all (T,B,H) = W_hn h_{t-1} + b_hn;
 *   RNN:  nothing beyond y.
 * Pass NULL for both to run inference: then nothing is saved and the memory beyond inputs and
 * outputs is O(B*H).
 *
 * A single time step (streaming) is the sequence kernel with T = 1 and lengths = NULL.
 *
 * Threads: n_threads >= 1 OpenMP threads share the batch (with fewer sequences than threads, the
 * hidden units of every sequence). Problems with B*G*H*H <= 2^27 multiply-adds per step and
 * T*B >= 16 rows (G = 1, 4, 3 for RNN, LSTM, GRU) run every product on
 * the library's own kernel inside one OpenMP region; larger ones (and single steps of a few
 * sequences) call the BLAS, which runs with whatever threads it has, with the element-wise work on
 * the calling thread. Results are bitwise identical for every n_threads. With GCC's OpenMP
 * runtime, do not fork() after a call (use spawn/forkserver start methods with multiprocessing).
 * Kernels hold no global state: concurrent calls from several threads are safe as long as their
 * output and workspace arrays differ.
 *
 * Building: compile the five sources of csrc/ (rnn.c, lstm.c, gru.c, rf_mm.c, runtime.c; the
 * other headers are theirs) into your program or library with a C11 compiler and the flags the
 * Python package uses, e.g. with GCC or Clang, in csrc/:
 *   cc -std=c11 -O3 -fno-math-errno -fno-trapping-math -ffp-contract=fast -falign-loops=64
 *      -fopenmp -DRNNFAST_OPENMP -I. -c rnn.c lstm.c gru.c rf_mm.c runtime.c
 * and link with -fopenmp -lm (-falign-loops=64, where the compiler takes it, is worth 8-14% on
 * small problems: setup.py). Leave out -fopenmp -DRNNFAST_OPENMP for a single-threaded build;
 * never add -ffast-math (it deletes the NaN checks and sets flush-to-zero for the whole
 * process). The AVX-512 and AVX2 kernels are compiled with function target attributes and chosen
 * at run time, so no -m flags are needed (-DRNNFAST_NO_AVX512 or -DRNNFAST_NO_AVX2 leave them
 * out). Pass your BLAS in an rnnfast_blas table (rnnfast_blas.h); tests/c/ builds this way with
 * a naive BLAS. The Python package installs these headers (rnnfast.get_include()), not the
 * sources: take those from the repository's csrc/.
 *
 * Errors: every kernel returns RNNFAST_OK or an error code; it never aborts, and on error it has
 * touched no output. It cannot check that arrays are as long as the sizes say: that is the caller's
 * contract.
 */
#ifndef RNNFAST_H
#define RNNFAST_H

#include <stddef.h>
#include <stdint.h>

#include "rnnfast_blas.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RNNFAST_VERSION_MAJOR 0
#define RNNFAST_VERSION_MINOR 1

enum {
    RNNFAST_OK = 0,
    RNNFAST_ERR_NULL = 1,      /* a required pointer (or the BLAS routine for the dtype) is NULL */
    RNNFAST_ERR_SIZE = 2,      /* T, B, I or H < 1, or too large for the BLAS's int */
    RNNFAST_ERR_WORKSPACE = 3, /* work_len below what rnnfast_*_workspace() asks for */
    RNNFAST_ERR_LENGTHS = 4,   /* a lengths value outside [0, T] */
    RNNFAST_ERR_ARG = 5        /* bad option: nonlinearity, n_threads < 1, gates/c_all half NULL */
};

/* RNN nonlinearity. */
enum { RNNFAST_TANH = 0, RNNFAST_RELU = 1 };

/* A short English description of an error code (static string). */
const char *rnnfast_strerror(int code);

/* 1 if the library was built with OpenMP, else 0. */
int rnnfast_openmp_enabled(void);

/* The instruction set whose kernels run on this CPU, as a static string: "avx512", "avx2" (AVX2
 * with FMA) or "generic" (the portable loops). Chosen once per process from what the CPU has and
 * what the build compiled (-DRNNFAST_NO_AVX512, -DRNNFAST_NO_AVX2 leave copies out); results may
 * differ in the last bit between instruction sets, never between calls or thread counts. */
const char *rnnfast_isa(void);

/* Workspace lengths, in elements of the kernel's dtype; SIZE_MAX if the sizes are invalid.
 * `training` is 1 when the forward saves activations (gates non-NULL), else 0. */
size_t rnnfast_rnn_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H);
size_t rnnfast_rnn_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H);
size_t rnnfast_lstm_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H, int training);
size_t rnnfast_lstm_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H);
size_t rnnfast_gru_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H, int training);
size_t rnnfast_gru_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H);

/* ---- Elman RNN ------------------------------------------------------------------------------
 * forward: y (T,B,H), h_n (B,H). y is all backward needs.
 * backward: dx (T,B,I), dh0 (B,H), dw_ih (H,I), dw_hh (H,H), db_ih, db_hh (H) or NULL;
 *           from dy (T,B,H), dh_n (B,H) and the forward's y, x, h0, weights, lengths. */
#define RNNFAST_RNN_FORWARD(real, sfx)                                                          \
int rnnfast_rnn_forward_##sfx(real *y, real *h_n,                                               \
    const real *x, const real *h0, const real *w_ih, const real *w_hh,                          \
    const real *b_ih, const real *b_hh, const int64_t *lengths, int nonlinearity,              \
    int64_t T, int64_t B, int64_t I, int64_t H,                                                 \
    real *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
#define RNNFAST_RNN_BACKWARD(real, sfx)                                                         \
int rnnfast_rnn_backward_##sfx(real *dx, real *dh0, real *dw_ih, real *dw_hh,                   \
    real *db_ih, real *db_hh,                                                                   \
    const real *dy, const real *dh_n,                                                           \
    const real *y, const real *x, const real *h0, const real *w_ih, const real *w_hh,           \
    const int64_t *lengths, int nonlinearity,                                                   \
    int64_t T, int64_t B, int64_t I, int64_t H,                                                 \
    real *work, size_t work_len, const rnnfast_blas *blas, int n_threads)

/* ---- LSTM -----------------------------------------------------------------------------------
 * forward: y (T,B,H), h_n, c_n (B,H); saved gates (T,B,4H), c_all (T,B,H) or both NULL.
 * backward: dx, dh0, dc0, dw_ih (4H,I), dw_hh (4H,H), db_ih, db_hh (4H) or NULL;
 *           from dy, dh_n, dc_n and the forward's gates, c_all, y, x, h0, c0, weights, lengths. */
#define RNNFAST_LSTM_FORWARD(real, sfx)                                                         \
int rnnfast_lstm_forward_##sfx(real *y, real *h_n, real *c_n, real *gates, real *c_all,         \
    const real *x, const real *h0, const real *c0, const real *w_ih, const real *w_hh,          \
    const real *b_ih, const real *b_hh, const int64_t *lengths,                                 \
    int64_t T, int64_t B, int64_t I, int64_t H,                                                 \
    real *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
#define RNNFAST_LSTM_BACKWARD(real, sfx)                                                        \
int rnnfast_lstm_backward_##sfx(real *dx, real *dh0, real *dc0, real *dw_ih, real *dw_hh,       \
    real *db_ih, real *db_hh,                                                                   \
    const real *dy, const real *dh_n, const real *dc_n,                                         \
    const real *gates, const real *c_all, const real *y, const real *x,                         \
    const real *h0, const real *c0, const real *w_ih, const real *w_hh,                         \
    const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,                         \
    real *work, size_t work_len, const rnnfast_blas *blas, int n_threads)

/* ---- GRU ------------------------------------------------------------------------------------
 * forward: y (T,B,H), h_n (B,H); saved gates (T,B,3H), hn_all (T,B,H) or both NULL.
 * backward: dx, dh0, dw_ih (3H,I), dw_hh (3H,H), db_ih, db_hh (3H) or NULL;
 *           from dy, dh_n and the forward's gates, hn_all, y, x, h0, weights, lengths. */
#define RNNFAST_GRU_FORWARD(real, sfx)                                                          \
int rnnfast_gru_forward_##sfx(real *y, real *h_n, real *gates, real *hn_all,                    \
    const real *x, const real *h0, const real *w_ih, const real *w_hh,                          \
    const real *b_ih, const real *b_hh, const int64_t *lengths,                                 \
    int64_t T, int64_t B, int64_t I, int64_t H,                                                 \
    real *work, size_t work_len, const rnnfast_blas *blas, int n_threads)
#define RNNFAST_GRU_BACKWARD(real, sfx)                                                         \
int rnnfast_gru_backward_##sfx(real *dx, real *dh0, real *dw_ih, real *dw_hh,                   \
    real *db_ih, real *db_hh,                                                                   \
    const real *dy, const real *dh_n,                                                           \
    const real *gates, const real *hn_all, const real *y, const real *x,                        \
    const real *h0, const real *w_ih, const real *w_hh,                                         \
    const int64_t *lengths, int64_t T, int64_t B, int64_t I, int64_t H,                         \
    real *work, size_t work_len, const rnnfast_blas *blas, int n_threads)

/* The declarations, spelled out by the macros above for both dtypes. */
RNNFAST_RNN_FORWARD(float, f32);
RNNFAST_RNN_FORWARD(double, f64);
RNNFAST_RNN_BACKWARD(float, f32);
RNNFAST_RNN_BACKWARD(double, f64);
RNNFAST_LSTM_FORWARD(float, f32);
RNNFAST_LSTM_FORWARD(double, f64);
RNNFAST_LSTM_BACKWARD(float, f32);
RNNFAST_LSTM_BACKWARD(double, f64);
RNNFAST_GRU_FORWARD(float, f32);
RNNFAST_GRU_FORWARD(double, f64);
RNNFAST_GRU_BACKWARD(float, f32);
RNNFAST_GRU_BACKWARD(double, f64);

#ifdef __cplusplus
}
#endif
#endif /* RNNFAST_H */
