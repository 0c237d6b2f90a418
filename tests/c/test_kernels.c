/* test_kernels.c: C-level tests of rnnfast's kernels, meant to run under AddressSanitizer and
 * UndefinedBehaviorSanitizer (tests/test_c_sanitizers.py builds and runs it).
 *
 * With a naive BLAS (naive_blas.c), for every cell (RNN tanh/relu, LSTM, GRU), on shapes that take
 * both code paths (small: own products in one OpenMP region; large: per-step BLAS):
 *   - double-precision gradients from backward against central finite differences of
 *     L = <dy, y> + <dh_n, h_n> (+ <dc_n, c_n>) along random directions in (x, h0, c0, weights,
 *     biases), with lengths, with and without biases and initial states;
 *   - training and inference forward give identical outputs; 1 and 2 threads give identical
 *     float results; inference workspace does not grow with T (memory O(B*H));
 *   - every error code for bad sizes, NULL pointers, short workspace, bad lengths and options,
 *     and outputs untouched on error;
 *   - the internal products: rf_mmp_set against filling C and adding, rf_mm against its
 *     determinism contract element by element; the RNN's backward with dy = NULL against zeros.
 * Prints the worst relative gradient error and exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "naive_blas.h"
#include "rnnfast.h"
#include "rf_common.h"

enum { RNN_TANH, RNN_RELU, LSTM, GRU };
static const char *NAMES[] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};
static const int GATES[] = {1, 1, 4, 3};

static int failures = 0;
static double worst = 0;
static rnnfast_blas BLAS = {naive_sgemm, naive_dgemm, naive_sgemv, naive_dgemv};

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            failures++;                                                                         \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                         \
            printf(__VA_ARGS__);                                                                \
            printf("\n");                                                                       \
        }                                                                                       \
    } while (0)

static unsigned long long rng_state = 88172645463325252ull;
static double urand(void) { /* xorshift64, uniform in [-1, 1) */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2 - 1;
}
static void fill(double *a, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = urand() * scale;
}
static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* One problem: parameters packed in one vector p = (x, h0, c0, w_ih, w_hh, b_ih, b_hh). */
typedef struct {
    int cell, bias, with_h0, use_lengths;
    int64_t T, B, I, H, G;
    size_t nx, nh, nwi, nwh, nb, n; /* sizes; offsets follow in this order */
    int64_t *lengths;
    double *dy, *dhn, *dcn;         /* the loss weights */
} Prob;

typedef struct { double *x, *h0, *c0, *wi, *wh, *bi, *bh; } Parts;

static Parts parts(const Prob *P, double *p) {
    Parts s;
    s.x = p; s.h0 = s.x + P->nx; s.c0 = s.h0 + P->nh; s.wi = s.c0 + P->nh; s.wh = s.wi + P->nwi;
    s.bi = s.wh + P->nwh; s.bh = s.bi + P->nb;
    return s;
}

/* Forward; writes y, h_n, c_n; gates/aux (saved) may be NULL. Returns the error code. */
static int forward(const Prob *P, double *p, double *y, double *hn, double *cn, double *gates,
                   double *aux, int n_threads) {
    Parts s = parts(P, p);
    const double *h0 = P->with_h0 ? s.h0 : NULL, *c0 = P->with_h0 ? s.c0 : NULL;
    const double *bi = P->bias ? s.bi : NULL, *bh = P->bias ? s.bh : NULL;
    int training = gates != NULL, rc;
    size_t nw;
    double *work;
    switch (P->cell) {
    case LSTM:
        nw = rnnfast_lstm_forward_workspace(P->T, P->B, P->I, P->H, training);
        work = malloc(nw * sizeof(double));
        rc = rnnfast_lstm_forward_f64(y, hn, cn, gates, aux, s.x, h0, c0, s.wi, s.wh, bi, bh,
                                      P->lengths, P->T, P->B, P->I, P->H, work, nw, &BLAS,
                                      n_threads);
        break;
    case GRU:
        nw = rnnfast_gru_forward_workspace(P->T, P->B, P->I, P->H, training);
        work = malloc(nw * sizeof(double));
        rc = rnnfast_gru_forward_f64(y, hn, gates, aux, s.x, h0, s.wi, s.wh, bi, bh, P->lengths,
                                     P->T, P->B, P->I, P->H, work, nw, &BLAS, n_threads);
        break;
    default:
        nw = rnnfast_rnn_forward_workspace(P->T, P->B, P->I, P->H);
        work = malloc(nw * sizeof(double));
        rc = rnnfast_rnn_forward_f64(y, hn, s.x, h0, s.wi, s.wh, bi, bh, P->lengths,
                                     P->cell == RNN_RELU ? RNNFAST_RELU : RNNFAST_TANH,
                                     P->T, P->B, P->I, P->H, work, nw, &BLAS, n_threads);
    }
    free(work);
    return rc;
}

static double loss(const Prob *P, double *p) {
    size_t ny = (size_t)(P->T * P->B * P->H), nh = P->nh;
    double *y = malloc(ny * sizeof(double)), *hn = malloc(nh * sizeof(double)),
           *cn = malloc(nh * sizeof(double));
    int rc = forward(P, p, y, hn, cn, NULL, NULL, 2);
    CHECK(rc == RNNFAST_OK, "%s forward rc %d", NAMES[P->cell], rc);
    double L = dot(P->dy, y, ny) + dot(P->dhn, hn, nh);
    if (P->cell == LSTM) L += dot(P->dcn, cn, nh);
    free(y); free(hn); free(cn);
    return L;
}

/* Gradient of the loss, packed like p (unused parts zero). */
static void gradient(const Prob *P, double *p, double *g) {
    const int64_t T = P->T, B = P->B, H = P->H, GH = P->G * H;
    size_t ny = (size_t)(T * B * H);
    double *y = malloc(ny * sizeof(double)), *hn = malloc(P->nh * sizeof(double)),
           *cn = malloc(P->nh * sizeof(double)), *y2 = malloc(ny * sizeof(double)),
           *hn2 = malloc(P->nh * sizeof(double)), *cn2 = malloc(P->nh * sizeof(double));
    double *gates = malloc((size_t)(T * B * GH) * sizeof(double));
    double *aux = malloc(ny * sizeof(double));
    int rc = forward(P, p, y, hn, cn, P->cell == LSTM || P->cell == GRU ? gates : NULL,
                     aux, 1);
    CHECK(rc == RNNFAST_OK, "%s training forward rc %d", NAMES[P->cell], rc);
    /* inference gives the same numbers */
    rc = forward(P, p, y2, hn2, cn2, NULL, NULL, 2);
    CHECK(rc == RNNFAST_OK && !memcmp(y, y2, ny * sizeof(double)) &&
          !memcmp(hn, hn2, P->nh * sizeof(double)),
          "%s inference forward differs from training forward", NAMES[P->cell]);
    memset(g, 0, P->n * sizeof(double));
    Parts s = parts(P, p), d = parts(P, g);
    const double *h0 = P->with_h0 ? s.h0 : NULL, *c0 = P->with_h0 ? s.c0 : NULL;
    double *dbi = P->bias ? d.bi : NULL, *dbh = P->bias ? d.bh : NULL;
    size_t nw;
    double *work;
    switch (P->cell) {
    case LSTM:
        nw = rnnfast_lstm_backward_workspace(T, B, P->I, H);
        work = malloc(nw * sizeof(double));
        rc = rnnfast_lstm_backward_f64(d.x, d.h0, d.c0, d.wi, d.wh, dbi, dbh, P->dy, P->dhn,
                                       P->dcn, gates, aux, y, s.x, h0, c0, s.wi, s.wh,
                                       P->lengths, T, B, P->I, H, work, nw, &BLAS, 2);
        break;
    case GRU:
        nw = rnnfast_gru_backward_workspace(T, B, P->I, H);
        work = malloc(nw * sizeof(double));
        rc = rnnfast_gru_backward_f64(d.x, d.h0, d.wi, d.wh, dbi, dbh, P->dy, P->dhn, gates, aux,
                                      y, s.x, h0, s.wi, s.wh, P->lengths, T, B, P->I, H, work,
                                      nw, &BLAS, 2);
        break;
    default:
        nw = rnnfast_rnn_backward_workspace(T, B, P->I, H);
        work = malloc(nw * sizeof(double));
        rc = rnnfast_rnn_backward_f64(d.x, d.h0, d.wi, d.wh, dbi, dbh, P->dy, P->dhn, y, s.x,
                                      h0, s.wi, s.wh, P->lengths,
                                      P->cell == RNN_RELU ? RNNFAST_RELU : RNNFAST_TANH,
                                      T, B, P->I, H, work, nw, &BLAS, 1);
    }
    CHECK(rc == RNNFAST_OK, "%s backward rc %d", NAMES[P->cell], rc);
    if (!P->with_h0) {
        memset(d.h0, 0, P->nh * sizeof(double));
        memset(d.c0, 0, P->nh * sizeof(double));
    }
    if (P->cell != LSTM) memset(d.c0, 0, P->nh * sizeof(double));
    free(work); free(y); free(hn); free(cn); free(y2); free(hn2); free(cn2); free(gates); free(aux);
}

static void check_gradients(int cell, int64_t T, int64_t B, int64_t I, int64_t H, int bias,
                            int with_h0, int use_lengths) {
    Prob P = {0};
    P.cell = cell; P.bias = bias; P.with_h0 = with_h0; P.use_lengths = use_lengths;
    P.T = T; P.B = B; P.I = I; P.H = H; P.G = GATES[cell];
    P.nx = (size_t)(T * B * I); P.nh = (size_t)(B * H); P.nwi = (size_t)(P.G * H * I);
    P.nwh = (size_t)(P.G * H * H); P.nb = (size_t)(P.G * H);
    P.n = P.nx + 2 * P.nh + P.nwi + P.nwh + 2 * P.nb;
    double *p = malloc(P.n * sizeof(double)), *g = malloc(P.n * sizeof(double)),
           *v = malloc(P.n * sizeof(double)), *q = malloc(P.n * sizeof(double));
    fill(p, P.n, 1.0);
    Parts s = parts(&P, p);
    fill(s.wi, P.nwi + P.nwh, 1.0 / sqrt((double)H + I)); /* keep the gates away from saturation */
    P.dy = malloc((size_t)(T * B * H) * sizeof(double));
    P.dhn = malloc(P.nh * sizeof(double));
    P.dcn = malloc(P.nh * sizeof(double));
    fill(P.dy, (size_t)(T * B * H), 1.0); fill(P.dhn, P.nh, 1.0); fill(P.dcn, P.nh, 1.0);
    P.lengths = malloc((size_t)B * sizeof(int64_t));
    for (int64_t b = 0; b < B; b++) P.lengths[b] = (b * 7 + 3) % (T + 1);
    if (!use_lengths) { free(P.lengths); P.lengths = NULL; }
    gradient(&P, p, g);
    const double eps = 1e-5;
    for (int k = 0; k < 3; k++) {
        fill(v, P.n, 1.0);
        for (size_t i = 0; i < P.n; i++) q[i] = p[i] + eps * v[i];
        double lp = loss(&P, q);
        for (size_t i = 0; i < P.n; i++) q[i] = p[i] - eps * v[i];
        double lm = loss(&P, q);
        double fd = (lp - lm) / (2 * eps), an = dot(g, v, P.n);
        double err = fabs(fd - an) / (fabs(an) > 1 ? fabs(an) : 1);
        if (err > worst) worst = err;
        CHECK(err < 1e-6, "%s (T,B,I,H)=(%lld,%lld,%lld,%lld) bias=%d h0=%d lengths=%d: "
              "gradient %.12g vs finite difference %.12g", NAMES[cell], (long long)T,
              (long long)B, (long long)I, (long long)H, bias, with_h0, use_lengths, an, fd);
    }
    free(p); free(g); free(v); free(q); free(P.dy); free(P.dhn); free(P.dcn); free(P.lengths);
}

/* float32 inputs of one problem, and forward+backward on them with nt threads into out (y, h_n,
 * dx, dh0, dW_ih, dW_hh, db: f32_out_len elements); the return codes of both calls. */
typedef struct {
    int cell;
    int64_t T, B, I, H;
    float *x, *wi, *wh, *b, *dy;
} ProbF;

static size_t f32_out_len(const ProbF *P) {
    const int64_t GH = GATES[P->cell] * P->H;
    return (size_t)(P->T * P->B * (P->H + P->I) + 2 * P->B * P->H + GH * (P->I + P->H + 1));
}

static ProbF f32_problem(int cell, int64_t T, int64_t B, int64_t I, int64_t H) {
    const int64_t GH = GATES[cell] * H;
    ProbF P = {cell, T, B, I, H, NULL, NULL, NULL, NULL, NULL};
    size_t nx = (size_t)(T * B * I), ny = (size_t)(T * B * H);
    P.x = malloc(nx * 4); P.wi = malloc((size_t)(GH * I) * 4); P.wh = malloc((size_t)(GH * H) * 4);
    P.b = malloc((size_t)GH * 4); P.dy = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) P.x[i] = (float)urand();
    for (int64_t i = 0; i < GH * I; i++) P.wi[i] = (float)(urand() * 0.3);
    for (int64_t i = 0; i < GH * H; i++) P.wh[i] = (float)(urand() * 0.3);
    for (int64_t i = 0; i < GH; i++) P.b[i] = (float)urand();
    for (size_t i = 0; i < ny; i++) P.dy[i] = (float)urand();
    return P;
}

static void f32_free(ProbF *P) { free(P->x); free(P->wi); free(P->wh); free(P->b); free(P->dy); }

static int run_f32(const ProbF *P, int nt, float *o) {
    const int64_t T = P->T, B = P->B, I = P->I, H = P->H, GH = GATES[P->cell] * H;
    const int cell = P->cell;
    size_t nx = (size_t)(T * B * I), ny = (size_t)(T * B * H), nh = (size_t)(B * H);
    float *x = P->x, *wi = P->wi, *wh = P->wh, *b = P->b, *dy = P->dy;
    float *y = o, *hn = y + ny, *dx = hn + nh, *dh0 = dx + nx, *dwi = dh0 + nh,
          *dwh = dwi + GH * I, *db = dwh + GH * H;
    float *cn = malloc(nh * 4), *dc0 = malloc(nh * 4);
    float *gates = malloc((size_t)(T * B * GH) * 4), *aux = malloc(ny * 4);
    size_t nw = 0;
    float *work;
    int rc1, rc2;
    if (cell == LSTM) {
        nw = rnnfast_lstm_forward_workspace(T, B, I, H, 1);
        size_t nb = rnnfast_lstm_backward_workspace(T, B, I, H);
        work = malloc((nw > nb ? nw : nb) * 4);
        rc1 = rnnfast_lstm_forward_f32(y, hn, cn, gates, aux, x, NULL, NULL, wi, wh, b, NULL,
                                       NULL, T, B, I, H, work, nw, &BLAS, nt);
        rc2 = rnnfast_lstm_backward_f32(dx, dh0, dc0, dwi, dwh, db, NULL, dy, NULL, NULL, gates,
                                        aux, y, x, NULL, NULL, wi, wh, NULL, T, B, I, H, work, nb,
                                        &BLAS, nt);
    } else if (cell == GRU) {
        nw = rnnfast_gru_forward_workspace(T, B, I, H, 1);
        size_t nb = rnnfast_gru_backward_workspace(T, B, I, H);
        work = malloc((nw > nb ? nw : nb) * 4);
        rc1 = rnnfast_gru_forward_f32(y, hn, gates, aux, x, NULL, wi, wh, b, b, NULL, T, B, I, H,
                                      work, nw, &BLAS, nt);
        rc2 = rnnfast_gru_backward_f32(dx, dh0, dwi, dwh, db, NULL, dy, NULL, gates, aux, y, x,
                                       NULL, wi, wh, NULL, T, B, I, H, work, nb, &BLAS, nt);
    } else {
        nw = rnnfast_rnn_forward_workspace(T, B, I, H);
        size_t nb = rnnfast_rnn_backward_workspace(T, B, I, H);
        work = malloc((nw > nb ? nw : nb) * 4);
        int nl = cell == RNN_RELU ? RNNFAST_RELU : RNNFAST_TANH;
        rc1 = rnnfast_rnn_forward_f32(y, hn, x, NULL, wi, wh, NULL, b, NULL, nl, T, B, I, H,
                                      work, nw, &BLAS, nt);
        rc2 = rnnfast_rnn_backward_f32(dx, dh0, dwi, dwh, NULL, db, dy, NULL, y, x, NULL, wi, wh,
                                       NULL, nl, T, B, I, H, work, nb, &BLAS, nt);
    }
    free(cn); free(dc0); free(gates); free(aux); free(work);
    return rc1 != RNNFAST_OK ? rc1 : rc2;
}

/* float32 forward+backward: finite, and bitwise equal for 1 and 2 threads. */
static void check_threads_f32(int cell, int64_t T, int64_t B, int64_t I, int64_t H) {
    ProbF P = f32_problem(cell, T, B, I, H);
    size_t nout = f32_out_len(&P);
    float *out[2];
    for (int r = 0; r < 2; r++) {
        float *o = out[r] = calloc(nout, 4);
        int rc = run_f32(&P, r + 1, o);
        CHECK(rc == RNNFAST_OK, "%s f32 rc %d", NAMES[cell], rc);
        for (size_t i = 0; i < nout; i++)
            if (!isfinite(o[i])) {
                CHECK(0, "%s f32 output %zu not finite", NAMES[cell], i);
                break;
            }
    }
    CHECK(!memcmp(out[0], out[1], nout * 4), "%s f32: 1 and 2 threads differ", NAMES[cell]);
    free(out[0]); free(out[1]); f32_free(&P);
}

/* Called from inside an OpenMP parallel region (no nested parallelism: each call's own region
 * gets a team of one thread, fewer than the two it asks for), every thread's call still computes
 * the whole problem, and the same bits as a call from outside. */
static void check_nested_f32(int cell, int64_t T, int64_t B, int64_t I, int64_t H) {
#ifdef _OPENMP
    ProbF P = f32_problem(cell, T, B, I, H);
    size_t nout = f32_out_len(&P);
    float *want = calloc(nout, 4), *got = calloc(2 * nout, 4);
    int rc = run_f32(&P, 2, want), rcs[2] = {-1, -1};
#pragma omp parallel num_threads(2)
    {
        int me = omp_get_thread_num();
        if (me < 2) rcs[me] = run_f32(&P, 2, got + (size_t)me * nout);
    }
    CHECK(rc == RNNFAST_OK && rcs[0] == RNNFAST_OK, "%s nested rc %d %d", NAMES[cell], rc,
          rcs[0]);
    for (int k = 0; k < 2; k++)
        CHECK(rcs[k] == -1 || !memcmp(want, got + (size_t)k * nout, nout * 4),
              "%s f32: a call inside a parallel region differs", NAMES[cell]);
    free(want); free(got); f32_free(&P);
#else
    (void)cell; (void)T; (void)B; (void)I; (void)H;
#endif
}

static void check_errors(void) {
    const int64_t T = 3, B = 2, I = 4, H = 5;
    double x[3 * 2 * 4] = {0}, y[3 * 2 * 5], hn[2 * 5], cn[2 * 5], wi[4 * 5 * 4] = {0},
           wh[4 * 5 * 5] = {0}, gates[3 * 2 * 20], aux[3 * 2 * 5], work[4096];
    int64_t bad_len[2] = {1, 4}, neg_len[2] = {-1, 0};
    size_t nw = rnnfast_lstm_forward_workspace(T, B, I, H, 1);
    CHECK(nw <= 4096, "workspace %zu", nw);
    rnnfast_blas no_s = {NULL, naive_dgemm, NULL, naive_dgemv};
#define LSTM_CALL(Y, XX, TT, BB, II, HH, LEN, W, NW, BL, NT, G, A)                              \
    rnnfast_lstm_forward_f64(Y, hn, cn, G, A, XX, NULL, NULL, wi, wh, NULL, NULL, LEN, TT, BB, \
                             II, HH, W, NW, BL, NT)
    /* EXPECT(code, y, x, T, B, I, H, lengths, work, work_len, blas, n_threads, gates, c_all) */
#define EXPECT(code, what, ...) CHECK(LSTM_CALL(__VA_ARGS__) == (code), what)
    const int64_t big = (int64_t)1 << 40;
    EXPECT(RNNFAST_OK, "ok", y, x, T, B, I, H, NULL, work, nw, &BLAS, 1, gates, aux);
    for (int i = 0; i < 30; i++) y[i] = 42;
    EXPECT(RNNFAST_ERR_NULL, "y NULL", NULL, x, T, B, I, H, NULL, work, nw, &BLAS, 1, gates, aux);
    EXPECT(RNNFAST_ERR_NULL, "x NULL", y, NULL, T, B, I, H, NULL, work, nw, &BLAS, 1, gates, aux);
    EXPECT(RNNFAST_ERR_NULL, "work NULL", y, x, T, B, I, H, NULL, NULL, nw, &BLAS, 1, gates, aux);
    EXPECT(RNNFAST_ERR_NULL, "blas NULL", y, x, T, B, I, H, NULL, work, nw, NULL, 1, gates, aux);
    rnnfast_blas only_s = {naive_sgemm, NULL, naive_sgemv, NULL};
    EXPECT(RNNFAST_ERR_NULL, "no dgemm", y, x, T, B, I, H, NULL, work, nw, &only_s, 1, gates, aux);
    (void)no_s;
    EXPECT(RNNFAST_ERR_SIZE, "T=0", y, x, 0, B, I, H, NULL, work, nw, &BLAS, 1, gates, aux);
    EXPECT(RNNFAST_ERR_SIZE, "B<0", y, x, T, -1, I, H, NULL, work, nw, &BLAS, 1, gates, aux);
    EXPECT(RNNFAST_ERR_SIZE, "I=0", y, x, T, B, 0, H, NULL, work, nw, &BLAS, 1, gates, aux);
    EXPECT(RNNFAST_ERR_SIZE, "H huge", y, x, T, B, I, big, NULL, work, nw, &BLAS, 1, gates, aux);
    EXPECT(RNNFAST_ERR_SIZE, "T*B huge", y, x, big, big >> 10, I, H, NULL, work, nw, &BLAS, 1,
           gates, aux);
    EXPECT(RNNFAST_ERR_WORKSPACE, "short work", y, x, T, B, I, H, NULL, work, nw - 1, &BLAS, 1,
           gates, aux);
    EXPECT(RNNFAST_ERR_LENGTHS, "len > T", y, x, T, B, I, H, bad_len, work, nw, &BLAS, 1, gates,
           aux);
    EXPECT(RNNFAST_ERR_LENGTHS, "len < 0", y, x, T, B, I, H, neg_len, work, nw, &BLAS, 1, gates,
           aux);
    EXPECT(RNNFAST_ERR_ARG, "n_threads 0", y, x, T, B, I, H, NULL, work, nw, &BLAS, 0, gates, aux);
    EXPECT(RNNFAST_ERR_ARG, "c_all NULL", y, x, T, B, I, H, NULL, work, nw, &BLAS, 1, gates, NULL);
#undef EXPECT
    for (int i = 0; i < 30; i++) CHECK(y[i] == 42, "y touched on error");
    CHECK(rnnfast_rnn_forward_f64(y, hn, x, NULL, wi, wh, NULL, NULL, NULL, 7, T, B, I, H, work,
                                  4096, &BLAS, 1) == RNNFAST_ERR_ARG, "nonlinearity");
    CHECK(rnnfast_gru_forward_f64(y, hn, gates, NULL, x, NULL, wi, wh, NULL, NULL, NULL, T, B, I,
                                  H, work, 4096, &BLAS, 1) == RNNFAST_ERR_ARG, "gru half saved");
    CHECK(rnnfast_gru_backward_f64(x, hn, wi, wh, NULL, NULL, NULL, NULL, gates, NULL, y, x, NULL,
                                   wi, wh, NULL, T, B, I, H, work, 4096, &BLAS, 1)
              == RNNFAST_ERR_NULL,
          "gru backward hn_all NULL");
    CHECK(rnnfast_lstm_backward_f64(x, hn, cn, wi, wh, NULL, NULL, NULL, NULL, NULL, gates, aux, y,
                                    x, NULL, NULL, wi, wh, bad_len, T, B, I, H, work, 4096, &BLAS,
                                    1) == RNNFAST_ERR_LENGTHS, "lstm backward lengths");
    CHECK(rnnfast_rnn_backward_f64(x, hn, wi, wh, NULL, NULL, NULL, NULL, y, x, NULL, wi, wh,
                                   NULL, RNNFAST_TANH, T, B, I, H, work, 1, &BLAS, 1)
          == RNNFAST_ERR_WORKSPACE, "rnn backward short work");
    CHECK(rnnfast_lstm_forward_workspace(0, 1, 1, 1, 0) == SIZE_MAX, "workspace of bad sizes");
    CHECK(rnnfast_gru_backward_workspace(1, -2, 1, 1) == SIZE_MAX, "workspace of bad sizes");
    /* beyond a 32-bit BLAS: T*B rows, and a weight's element count (G*H*max(I,H)) */
    CHECK(rnnfast_rnn_forward_workspace((int64_t)1 << 31, 1, 1, 1) == SIZE_MAX, "T*B too large");
    CHECK(rnnfast_lstm_backward_workspace(1, 1, (int64_t)1 << 28, 4) == SIZE_MAX,
          "weights too large");
    /* inference memory is O(B*H): its workspace stops growing with T */
    CHECK(rnnfast_lstm_forward_workspace(100000, 4, 8, 16, 0) ==
          rnnfast_lstm_forward_workspace(1000000, 4, 8, 16, 0), "lstm inference workspace grows");
    CHECK(rnnfast_gru_forward_workspace(1000, 64, 8, 256, 0) ==
          rnnfast_gru_forward_workspace(100000, 64, 8, 256, 0), "gru inference workspace grows");
    CHECK(rnnfast_rnn_forward_workspace(10, 4, 8, 16) ==
          rnnfast_rnn_forward_workspace(10000, 4, 8, 16),
          "rnn workspace grows");
    CHECK(strlen(rnnfast_strerror(RNNFAST_ERR_LENGTHS)) > 0 && strlen(rnnfast_strerror(99)) > 0,
          "strerror");
}

/* The internal transpose (rf_common.h: the packed weights and the weight gradients' layout):
 * every (R, C) up to 40 by 40, with leading dimensions wider than the rows, so the register
 * blocks (8x8, 16x16 float; 4x4 double), their edges and the element-wise tiles all run; the
 * destination's padding stays untouched. */
void rf_transpose_blocks_f32(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t R,
                             int64_t C);
void rf_transpose_blocks_f64(double *dst, int64_t ldd, const double *src, int64_t lds, int64_t R,
                             int64_t C);
static void check_transposes(void) {
    enum { N = 40, LD = N + 3 };
    float *sf = malloc(sizeof(float) * N * LD), *df = malloc(sizeof(float) * N * LD);
    double *sd = malloc(sizeof(double) * N * LD), *dd = malloc(sizeof(double) * N * LD);
    for (int i = 0; i < N * LD; i++) sf[i] = (float)(sd[i] = i + 0.5);
    for (int64_t R = 1; R <= N; R++)
        for (int64_t C = 1; C <= N; C++) {
            const int64_t lds = C + (R + C) % 4, ldd = R + (R * C) % 3;
            for (int i = 0; i < N * LD; i++) df[i] = -1, dd[i] = -1;
            rf_transpose_blocks_f32(df, ldd, sf, lds, R, C);
            rf_transpose_blocks_f64(dd, ldd, sd, lds, R, C);
            int bad = 0;
            for (int64_t c = 0; c < C; c++)
                for (int64_t r = 0; r < ldd; r++) {
                    const double want = r < R ? sd[r * lds + c] : -1;
                    bad += df[c * ldd + r] != (float)want || dd[c * ldd + r] != want;
                }
            for (int64_t i = C * ldd; i < N * LD; i++) bad += df[i] != -1 || dd[i] != -1;
            CHECK(!bad, "transpose R=%d C=%d: %d wrong elements\n", (int)R, (int)C, bad);
        }
    free(sf); free(df); free(sd); free(dd);
}

/* The RNN's backward with dy = NULL against dy = zeros: the same bits (the pass without dy, with
 * the step product setting dh or, with lengths, adding to it), tanh and ReLU, 1 and 2 threads. */
static void check_rnn_null_dy(int64_t T, int64_t B, int64_t I, int64_t H) {
    const int64_t nx = T * B * I, ny = T * B * H, nh = B * H;
    double *x = malloc(sizeof(double) * nx), *y = malloc(sizeof(double) * ny);
    double *h0 = malloc(sizeof(double) * nh), *hn = malloc(sizeof(double) * nh);
    double *dhn = malloc(sizeof(double) * nh), *zero = calloc(ny, sizeof(double));
    double *wi = malloc(sizeof(double) * H * I), *wh = malloc(sizeof(double) * H * H);
    double *b = malloc(sizeof(double) * H), *g[2];
    int64_t *len = malloc(sizeof(int64_t) * B);
    const int64_t ng = nx + nh + H * I + H * H + 2 * H; /* dx, dh0, dW_ih, dW_hh, db_ih, db_hh */
    fill(x, nx, 1); fill(h0, nh, 1); fill(dhn, nh, 1); fill(wi, H * I, 0.3); fill(wh, H * H, 0.3);
    fill(b, H, 1);
    for (int64_t i = 0; i < B; i++) len[i] = (i * 5) % (T + 1);
    const size_t nw = rnnfast_rnn_backward_workspace(T, B, I, H) +
                      rnnfast_rnn_forward_workspace(T, B, I, H);
    double *work = malloc(sizeof(double) * nw);
    for (int opt = 0; opt < 8; opt++) {
        const int nl = opt & 1 ? RNNFAST_RELU : RNNFAST_TANH, nt = opt & 4 ? 2 : 1;
        const int64_t *lengths = opt & 2 ? len : NULL;
        int rc = rnnfast_rnn_forward_f64(y, hn, x, h0, wi, wh, b, b, lengths, nl, T, B, I, H, work,
                                         nw, &BLAS, nt);
        for (int k = 0; k < 2; k++) {
            double *o = g[k] = malloc(sizeof(double) * ng);
            rc |= rnnfast_rnn_backward_f64(o, o + nx, o + nx + nh, o + nx + nh + H * I,
                                           o + nx + nh + H * I + H * H,
                                           o + nx + nh + H * I + H * H + H, k ? NULL : zero, dhn,
                                           y, x, h0, wi, wh, lengths, nl, T, B, I, H, work, nw,
                                           &BLAS, nt);
        }
        CHECK(rc == RNNFAST_OK && !memcmp(g[0], g[1], sizeof(double) * ng),
              "rnn backward, dy NULL against zeros: rc %d, relu %d, lengths %d, threads %d\n", rc,
              opt & 1, (opt >> 1) & 1, nt);
        free(g[0]); free(g[1]);
    }
    free(x); free(y); free(h0); free(hn); free(dhn); free(zero); free(wi); free(wh); free(b);
    free(len); free(work);
}

/* The internal product that sets C (rf_mmp_set, rf_mmp_cols_set; rf_common.h) against filling C
 * and adding (rf_mmp; for columns [c0, N), all N columns of it, then those compared): the same
 * bits, with a bias row and with zeros (NULL), K = 0
 * (C = the bias), row counts on both sides of the tiles' 4 and column counts around the vector
 * widths, across panel edges (128 columns for AVX-512) and past a column block (RF_TNC_AVX2 =
 * 256, RF_TNC = 512); k beyond one k block (RF_TKC = 256); C's columns past n stay untouched. */
#define CHECK_MMP_SET(real, sfx)                                                                \
    static void check_mmp_set_##sfx(void) {                                                     \
        enum { MX = 13, NX = 600, KX = 300, LDC = NX + 3 };                                     \
        real *A = malloc(sizeof(real) * MX * KX), *Bp = malloc(sizeof(real) * KX * 5 * 128);    \
        real *bias = malloc(sizeof(real) * NX), *C1 = malloc(sizeof(real) * MX * LDC);          \
        real *C2 = malloc(sizeof(real) * MX * LDC);                                             \
        for (int i = 0; i < MX * KX; i++) A[i] = (real)urand();                                 \
        for (int j = 0; j < NX; j++) bias[j] = (real)urand();                                   \
        const int64_t Ms[] = {1, 3, 4, 5, 13}, Ns[] = {1, 7, 8, 9, 16, 17, 33, 40, 150, 600};   \
        const int64_t Ks[] = {0, 1, 5, 300};                                                    \
        for (int mi = 0; mi < 5; mi++)                                                          \
            for (int ni = 0; ni < 10; ni++)                                                     \
                for (int ki = 0; ki < 4; ki++)                                                  \
                    for (int opt = 0; opt < 4; opt++) {                                         \
                        const int64_t M = Ms[mi], N = Ns[ni], K = Ks[ki];                       \
                        const int64_t np = rf_np_##sfx(), ld = rf_packed_ld_##sfx(N);           \
                        const real *b = opt & 1 ? bias : NULL;                                  \
                        const int cols = opt >> 1; /* columns [c0, N): rf_mmp_cols_set */      \
                        const int64_t c0 = cols ? N / 3 : 0, n = N - c0;                        \
                        for (int64_t k = 0; k < K; k++) /* B (K,N) packed, element k+j */       \
                            for (int64_t j = 0; j < N; j++)                                     \
                                Bp[j / np * K * ld + k * ld + j % np] = (real)(k - j) / 64;     \
                        for (int i = 0; i < MX * LDC; i++) C1[i] = C2[i] = -7;                  \
                        for (int64_t i = 0; i < M; i++) /* C1[:, c0:N] = b, the rest -7 */     \
                            for (int64_t j = 0; j < n; j++) C1[i * LDC + c0 + j] = b ? b[j] : 0; \
                        rf_mmp_##sfx(M, N, K, A, KX, 1, Bp, K, C1, LDC);                        \
                        for (int64_t i = 0; cols && i < M; i++) /* its columns [c0, N) */      \
                            memmove(C1 + i * LDC, C1 + i * LDC + c0, sizeof(real) * (size_t)n); \
                        for (int64_t i = 0; i < M; i++) /* and -7 past them, as in C2 */        \
                            for (int64_t j = n; j < LDC; j++) C1[i * LDC + j] = -7;             \
                        if (cols)                                                               \
                            rf_mmp_cols_set_##sfx(M, N, c0, n, K, A, KX, 1, Bp, K, b, C2, LDC); \
                        else rf_mmp_set_##sfx(M, N, K, A, KX, 1, Bp, K, b, C2, LDC);            \
                        CHECK(!memcmp(C1, C2, sizeof(real) * MX * LDC),                         \
                              #sfx " mmp set M=%d N=%d K=%d bias=%d cols=%d: not the same\n",   \
                              (int)M, (int)N, (int)K, opt & 1, cols);                           \
                    }                                                                           \
        free(A); free(Bp); free(bias); free(C1); free(C2);                                      \
    }
CHECK_MMP_SET(float, f32)
CHECK_MMP_SET(double, f64)

/* The plain-B product (rf_mm) against its determinism contract, element by element: c = C[i,j],
 * then c = fma(A[i,k], B[k,j], c) for k = 0..K-1 (c + A*B on the portable kernels). B's rows
 * contiguous (ldb == N: the row tiles) or further apart (the 4-row blocks); A row-major or a
 * transposed view (lda = 1, acs = M, as the weight gradients' x^T); row counts on both sides of
 * the tiles' 4 and 12, columns around the vector widths; C's columns past N stay untouched. */
#define CHECK_MM_PLAIN(real, sfx, fmafn)                                                        \
    static void check_mm_plain_##sfx(void) {                                                    \
        enum { MX = 25, NX = 150, KX = 300, LDC = NX + 3, LDB = NX + 5 };                       \
        real *A = malloc(sizeof(real) * MX * KX), *Bm = malloc(sizeof(real) * KX * LDB);        \
        real *C = malloc(sizeof(real) * MX * LDC), *W = malloc(sizeof(real) * MX * LDC);        \
        for (int i = 0; i < MX * KX; i++) A[i] = (real)urand();                                 \
        for (int i = 0; i < KX * LDB; i++) Bm[i] = (real)urand();                               \
        const int generic = rf_isa() == RF_ISA_GENERIC;                                         \
        const int64_t Ms[] = {1, 3, 4, 5, 13, 25}, Ns[] = {1, 7, 16, 17, 33, 64, 150};          \
        const int64_t Ks[] = {1, 5, 300};                                                       \
        for (int mi = 0; mi < 6; mi++)                                                          \
            for (int ni = 0; ni < 7; ni++)                                                      \
                for (int ki = 0; ki < 3; ki++)                                                  \
                    for (int opt = 0; opt < 4; opt++) {                                         \
                        const int64_t M = Ms[mi], N = Ns[ni], K = Ks[ki];                       \
                        const int64_t ldb = opt & 1 ? N : LDB;                                  \
                        const int64_t lda = opt & 2 ? 1 : K, acs = opt & 2 ? M : 1;             \
                        for (int i = 0; i < MX * LDC; i++) C[i] = W[i] = (real)urand();         \
                        for (int64_t i = 0; i < M; i++)                                         \
                            for (int64_t j = 0; j < N; j++) {                                   \
                                real c = W[i * LDC + j];                                        \
                                for (int64_t k = 0; k < K; k++) {                               \
                                    const real a = A[i * lda + k * acs], b = Bm[k * ldb + j];   \
                                    volatile real ab = a * b; /* no contraction */              \
                                    c = generic ? c + ab : fmafn(a, b, c);                      \
                                }                                                               \
                                W[i * LDC + j] = c;                                             \
                            }                                                                   \
                        rf_mm_##sfx(M, N, K, A, lda, acs, Bm, ldb, C, LDC);                     \
                        CHECK(!memcmp(C, W, sizeof(real) * MX * LDC),                           \
                              #sfx " mm M=%d N=%d K=%d ldb=%d lda=%d: not the contract's sums\n", \
                              (int)M, (int)N, (int)K, (int)ldb, (int)lda);                      \
                    }                                                                           \
        free(A); free(Bm); free(C); free(W);                                                    \
    }
CHECK_MM_PLAIN(float, f32, fmaf)
CHECK_MM_PLAIN(double, f64, fma)

int main(void) {
    /* (T, B, I, H): small-path shapes (incl. B=1, T=1, odd H), then large-path ones
     * (B*G*H*H > 2^20: built with -DRF_SMALL_MACS=1048576 -DRF_SMALL_MIN_ROWS=1). Built with
     * -DRF_WGRAD_PACK_MACS=2000 -DRF_WGRAD_PACK_BYTES=0, the RNN's and GRU's weight gradients
     * run packed from (I+H)*G*H*T*B = 2000 multiply-adds: some small shapes each way, and
     * (40,7,3,9) in two blocks of T*B rows (RF_WKC = 256), the last one partial; with
     * -DRF_CHUNK_PACK_BYTES=0, the LSTM's chunked ones always run on both operands packed
     * (rf_wgrad_pack_a_chunk), chunk by chunk, with and without h0 (with =256, one build of
     * tests/test_c_sanitizers.py: the plain products for H = 4, 5, 7, packed from H = 9). */
    const int64_t small[][4] = {{4, 3, 5, 7}, {5, 1, 3, 4}, {1, 2, 3, 5}, {3, 5, 2, 19}};
    for (int cell = 0; cell < 4; cell++) {
        for (size_t k = 0; k < sizeof small / sizeof small[0]; k++)
            for (int opt = 0; opt < 4; opt++)
                check_gradients(cell, small[k][0], small[k][1], small[k][2], small[k][3],
                                opt & 1, (opt >> 1) & 1, k != 2);
        int64_t Bl = cell == LSTM ? 2 : cell == GRU ? 2 : 4;
        check_gradients(cell, 2, Bl, 3, 520, 1, 1, 1);
        check_gradients(cell, 2, 1, 3, 1100, 0, 0, 0);
        check_threads_f32(cell, 6, 7, 5, 33);
        check_threads_f32(cell, 2, Bl, 4, 520);
    }
    /* after the others, so that they keep their random inputs; no ReLU, whose kinks a finite
     * difference may straddle. One sequence: the unit split (built with -DRF_UNITS_MIN_BYTES=0,
     * so from H = 16 in double, 32 in float), H not a multiple of the vector width, with lengths
     * (the sequence's is 3 of 7 steps) and without (10 steps: the trial of the split against
     * thread 0 alone, in the build's 2 + 2 steps, on steps that carry state, and the LSTM's
     * backward in chunks of 5 steps, the trial in the first; H = 16, the double LSTM's inference
     * in chunks of 6 steps, long enough for its trial); and calls from inside a parallel
     * region. */
    for (int cell = 0; cell < 4; cell++) {
        if (cell != RNN_RELU) check_gradients(cell, 40, 7, 3, 9, 1, 1, 1);
        check_threads_f32(cell, 40, 7, 5, 33);
        if (cell != RNN_RELU) check_gradients(cell, 7, 1, 3, 21, 1, 1, 1);
        if (cell != RNN_RELU) check_gradients(cell, 10, 1, 3, 21, 1, 1, 0);
        if (cell == LSTM) check_gradients(cell, 10, 1, 3, 16, 1, 1, 0);
        check_threads_f32(cell, 9, 1, 5, 37);
        check_threads_f32(cell, 10, 1, 5, 37);
        check_nested_f32(cell, 9, 1, 5, 37);
        check_nested_f32(cell, 6, 7, 5, 33);
    }
    check_errors();
    check_transposes();
    check_mmp_set_f32();
    check_mmp_set_f64();
    check_mm_plain_f32();
    check_mm_plain_f64();
    check_rnn_null_dy(6, 7, 5, 33);
    printf("kernels' instruction set: %s\n", rnnfast_isa());
#if RF_STEAL_DELAY
    printf("rows handed over: %ld\n", rf_steal_count());
#endif
    printf("rnnfast C tests: %d failure(s); worst relative gradient error %.2e\n", failures,
           worst);
    return failures ? 1 : 0;
}
