/* rf_real.h: dtype-templated helpers for the cell kernels -- activations and the BLAS glue.
 *
 * Included (without an include guard) by each cell file once per dtype, with
 *   real       float or double
 *   RF_F(n)    n##_f32 or n##_f64 (names of everything templated)
 *   RF_IS_F32  1 or 0
 * defined. Not part of the public API.
 *
 * Activations: our own sigmoid and tanh, written as branch-free selects so the element-wise
 * passes vectorise. The sigmoid uses exp of a non-positive argument only (z = exp(-|x|)); the
 * tanh is a rational function of clamped x in float and exp-based in double. Both are finite for
 * any input (+-1e30 gives exactly 0/1 or -1/1), and NaN passes through. No libm call, no
 * -ffast-math. Accuracy: a few ulp (tests/test_c_activations.py measures it).
 */

#if RF_IS_F32
typedef uint32_t RF_F(rf_bits);
#else
typedef uint64_t RF_F(rf_bits);
#endif

/* Elements of one AVX-512 vector: the unit split's granularity (rf_units). */
#define RF_VEC (RF_IS_F32 ? 16 : 8)

/* exp(x) for x <= 0 (or NaN): Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, Taylor polynomial
 * for exp(r), 2^n built in the exponent bits. Results below the smallest normal number are 0. */
RF_INLINE real RF_F(rf_expneg)(real x) {
#if RF_IS_F32
    const float lo = -87.0f, shifter = 12582912.0f; /* 1.5 * 2^23 */
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    float xc = x < lo ? lo : x; /* NaN stays NaN (the comparison is false) */
    float s = xc * log2e + shifter;
    float n = s - shifter;      /* round(x / ln2), an integer in [-126, 0] */
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    /* 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3), relative-error minimax on |r| <= ln2/2 (our
     * own fit; 1.05e-7 before rounding): two multiply-adds fewer than the Taylor series of
     * degree 7 that it replaces, for about one ulp more. */
    float p = 8.312524296e-03f;
    p = 4.189011455e-02f + r * p;
    p = 1.666711420e-01f + r * p;
    p = 4.999923110e-01f + r * p;
    p = 1.0f + r * p;
    p = 1.0f + r * p;
    uint32_t sb;
    memcpy(&sb, &s, sizeof sb);
    uint32_t eb = (sb - 0x4B400000u + 127u) << 23; /* the low bits of s hold n */
    float scale;
    memcpy(&scale, &eb, sizeof scale);
    float e = p * scale;
    return x < -87.33654f ? 0.0f : e;
#else
    const double lo = -708.0, shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    const double log2e = 1.4426950408889634074, ln2_hi = 6.93147180369123816490e-01,
                 ln2_lo = 1.90821492927058770002e-10;
    double xc = x < lo ? lo : x;
    double s = xc * log2e + shifter;
    double n = s - shifter;     /* an integer in [-1022, 0] */
    double r = (xc - n * ln2_hi) - n * ln2_lo;
    double p = 1.0 / 6227020800.0;
    p = 1.0 / 479001600.0 + r * p;
    p = 1.0 / 39916800.0 + r * p;
    p = 1.0 / 3628800.0 + r * p;
    p = 1.0 / 362880.0 + r * p;
    p = 1.0 / 40320.0 + r * p;
    p = 1.0 / 5040.0 + r * p;
    p = 1.0 / 720.0 + r * p;
    p = 1.0 / 120.0 + r * p;
    p = 1.0 / 24.0 + r * p;
    p = 1.0 / 6.0 + r * p;
    p = 0.5 + r * p;
    p = 1.0 + r * p;
    p = 1.0 + r * p;
    uint64_t sb;
    memcpy(&sb, &s, sizeof sb);
    uint64_t eb = (sb - 0x4338000000000000ull + 1023u) << 52;
    double scale;
    memcpy(&scale, &eb, sizeof scale);
    double e = p * scale;
    return x < -708.3964 ? 0.0 : e;
#endif
}

/* p rounded up to the next RF_ALIGN-byte boundary (p is element-aligned: at most RF_PAD - 1
 * elements further on). */
static inline real *RF_F(rf_align)(real *p) {
    const uintptr_t u = (uintptr_t)p;
    return (real *)(void *)(p + ((RF_ALIGN - u % RF_ALIGN) % RF_ALIGN) / sizeof(real));
}

RF_INLINE real RF_F(rf_abs)(real x) { return x < 0 ? -x : x; }

/* sigmoid(x) = 1/(1+z) for x >= 0, z/(1+z) for x < 0, z = exp(-|x|). */
RF_INLINE real RF_F(rf_sigmoid)(real x) {
    real z = RF_F(rf_expneg)(-RF_F(rf_abs)(x));
    real d = 1 / (1 + z);
    return x >= 0 ? d : z * d;
}

#if !RF_IS_F32
/* double: the odd polynomial of tanh on |x| < 0.625: tanh(x) ~ x + x * s * P(s), s = x^2;
 * returns P(s). */
RF_INLINE real RF_F(rf_tanh_poly)(real s) {
    real p = -0.000017244874494844330172;
    p = 0.000079599557352648080002 + s * p;
    p = -0.000230776162695198579 + s * p;
    p = 0.00058743728600943818973 + s * p;
    p = -0.001455309297534642025 + s * p;
    p = 0.0035920589774734553151 + s * p;
    p = -0.0088632298309257087457 + s * p;
    p = 0.021869488260559114645 + s * p;
    p = -0.053968253961395570821 + s * p;
    p = 0.13333333333326657736 + s * p;
    p = -0.33333333333333322565 + s * p;
    return p;
}
#endif

#if RF_IS_F32
/* float: tanh(x) = x P(x^2) / Q(x^2) for |x| <= 9, x clamped to +-9 beyond (where tanh rounds
 * to +-1 in float), the result clamped to [-1, 1]. P of degree 5 and Q of degree 4 are our own
 * relative-error fit on [0, 9] (1.3e-9 before rounding; in float arithmetic, against long double
 * libm: max 5.3 ulp, mean 0.2 -- the exp-based form was max 1.5, mean 0.13 -- measured by
 * tests/test_c_activations.py). No exp, no cancellation near 0 (x P /
 * Q = x (1 + O(x^2))), NaN passes through; 17 operations against about 35 for the exp-based
 * form below, which the double path keeps (it needs 1e-10). The P, Q evaluation is shared with
 * the LSTM's gate pass (rf_lstm_gates), which folds the division into its one reciprocal. */
RF_INLINE void rf_tanh_pq_f32(float x, float *xc, float *P, float *Q) {
    float c = x > 9.0f ? 9.0f : x;
    c = c < -9.0f ? -9.0f : c;
    float s = c * c;
    float p = -1.224621793e-11f;
    p = 3.064248233e-08f + s * p;
    p = 2.803129064e-05f + s * p;
    p = 3.869506996e-03f + s * p;
    p = 1.368085593e-01f + s * p;
    p = 1.0f + s * p;
    float q = 1.289033776e-06f;
    q = 3.940711613e-04f + s * q;
    q = 2.725015208e-02f + s * q;
    q = 4.701418877e-01f + s * q;
    q = 1.0f + s * q;
    *xc = c; *P = p; *Q = q;
}

/* The rational form's result, clamped to [-1, 1] (NaN passes through). */
RF_INLINE float rf_tanh_clamp_f32(float y) {
    y = y > 1.0f ? 1.0f : y;
    return y < -1.0f ? -1.0f : y;
}

RF_INLINE float rf_tanh_f32(float x) {
    float c, p, q;
    rf_tanh_pq_f32(x, &c, &p, &q);
    return rf_tanh_clamp_f32(c * p / q);
}
#else
/* double: tanh(x) = odd polynomial x + x^3 P(x^2) for |x| < 0.625 (no cancellation near 0),
 * else sign(x) (1-z)/(1+z), z = exp(-2|x|). */
RF_INLINE real RF_F(rf_tanh)(real x) {
    real a = RF_F(rf_abs)(x);
    real s = x * x;
    real p = RF_F(rf_tanh_poly)(s);
    real small = x + x * s * p;
    real z = RF_F(rf_expneg)(-2 * a);
    real big = (1 - z) / (1 + z);
    big = x < 0 ? -big : big;
    return a < (real)0.625 ? small : big;
}
#endif

/* The four LSTM gates at once: i, f, o = sigmoid, g = tanh. Same formulas as rf_sigmoid and
 * rf_tanh, but the four reciprocals 1/(1+z) come from one division (1/(d_i d_f d_g d_o) times the
 * other three factors, each d in [1, 2]): a few ulp, and the division is the slow instruction. */
RF_INLINE void RF_F(rf_lstm_gates)(real xi, real xf, real xg, real xo, real *i, real *f, real *g,
                                   real *o) {
#if RF_IS_F32
    /* float: g = xc P / Q (rf_tanh_pq), and Q (in [1, 500]) takes d_g's place in the shared
     * reciprocal: 1/(d_i d_f Q d_o) stays far from overflow. */
    float zi = rf_expneg_f32(-rf_abs_f32(xi)), zf = rf_expneg_f32(-rf_abs_f32(xf));
    float zo = rf_expneg_f32(-rf_abs_f32(xo));
    float c, p, q;
    rf_tanh_pq_f32(xg, &c, &p, &q);
    float di = 1 + zi, df = 1 + zf, d_o = 1 + zo;
    float dif = di * df, dqo = q * d_o;
    float r = 1 / (dif * dqo);
    float ri = df * dqo * r, rf = di * dqo * r, rg = dif * d_o * r, ro = dif * q * r;
    *i = xi >= 0 ? ri : zi * ri;
    *f = xf >= 0 ? rf : zf * rf;
    *o = xo >= 0 ? ro : zo * ro;
    *g = rf_tanh_clamp_f32(c * p * rg);
#else
    real zi = RF_F(rf_expneg)(-RF_F(rf_abs)(xi)), zf = RF_F(rf_expneg)(-RF_F(rf_abs)(xf));
    real zo = RF_F(rf_expneg)(-RF_F(rf_abs)(xo)), zg = RF_F(rf_expneg)(-2 * RF_F(rf_abs)(xg));
    real di = 1 + zi, df = 1 + zf, dg = 1 + zg, d_o = 1 + zo;
    real dif = di * df, dgo = dg * d_o;
    real r = 1 / (dif * dgo);
    real ri = df * dgo * r, rf = di * dgo * r, rg = dif * d_o * r, ro = dif * dg * r;
    *i = xi >= 0 ? ri : zi * ri;
    *f = xf >= 0 ? rf : zf * rf;
    *o = xo >= 0 ? ro : zo * ro;
    real s = xg * xg;
    real p = RF_F(rf_tanh_poly)(s);
    real small = xg + xg * s * p;
    real big = (1 - zg) * rg;
    big = xg < 0 ? -big : big;
    *g = RF_F(rf_abs)(xg) < (real)0.625 ? small : big;
#endif
}

/* ---- float activations and gate passes on AVX2 and AVX-512 vectors (rf_vec.h) -------------
 * RF_VROW(isa, name, args): runs the float gate pass rf_v8_<name> (isa AVX2) or rf_v16_<name>
 * (AVX-512) on args and is 1, or is 0 (double, or no vector copy for isa): the cells' element-wise
 * bodies call it first and fall back to their portable loops. */
#undef RF_VROW
#if RF_IS_F32 && defined(RF_HAVE_AVX2)
#define RFV_W 8
#include "rf_vec.h"
#ifdef RF_HAVE_AVX512
#define RFV_W 16
#include "rf_vec.h"
#define RF_VROW(isa, name, args)                                                                \
    ((isa) == RF_ISA_AVX512 ? (rf_v16_##name args, 1)                                          \
                            : (isa) == RF_ISA_AVX2 ? (rf_v8_##name args, 1) : 0)
#else
#define RF_VROW(isa, name, args) ((isa) == RF_ISA_AVX2 ? (rf_v8_##name args, 1) : 0)
#endif
#else
#define RF_VROW(isa, name, args) 0
#endif

/* ---- BLAS glue: the one place that spells out a BLAS call ----------------------------------
 * Row-major C (M,N) = alpha op(A) op(Bm) + beta C. Column-major BLAS sees the transposes, so the
 * operands swap: C^T = op(Bm)^T op(A)^T. M == 1 goes to gemv (GEMM with one row crawls). */
static inline void RF_F(rf_gemm)(const rnnfast_blas *bl, char ta, char tb, int64_t M, int64_t N,
                          int64_t K, real alpha, const real *A, int64_t lda, const real *Bm,
                          int64_t ldb, real beta, real *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    int m = (int)M, n = (int)N, k = (int)K, la = (int)lda, lb = (int)ldb, lc = (int)ldc;
#if RF_IS_F32
    rnnfast_sgemv_fn gemv = bl->sgemv;
    rnnfast_sgemm_fn gemm = bl->sgemm;
#else
    rnnfast_dgemv_fn gemv = bl->dgemv;
    rnnfast_dgemm_fn gemm = bl->dgemm;
#endif
    if (M == 1 && K > 0 && gemv) {
        int inca = ta == 'N' ? 1 : la, one = 1;
        if (tb == 'N') { /* Bm (K,N) row-major = column-major (N,K): c = Bm^T a */
            char t = 'N';
            gemv(&t, &n, &k, &alpha, (real *)Bm, &lb, (real *)A, &inca, &beta, C, &one);
        } else {         /* Bm (N,K) row-major = column-major (K,N): c = (that)^T a */
            char t = 'T';
            gemv(&t, &k, &n, &alpha, (real *)Bm, &lb, (real *)A, &inca, &beta, C, &one);
        }
        return;
    }
    gemm(&tb, &ta, &n, &m, &k, &alpha, (real *)Bm, &lb, (real *)A, &la, &beta, C, &lc);
}

/* b (G*H) = b_ih + b_hh, either of which may be NULL; returns 0 if both are. */
static inline int RF_F(rf_bias_sum)(real *b, const real *b_ih, const real *b_hh, int64_t GH) {
    if (!b_ih && !b_hh) return 0;
    for (int64_t j = 0; j < GH; j++)
        b[j] = (b_ih ? b_ih[j] : 0) + (b_hh ? b_hh[j] : 0);
    return 1;
}

/* Small path, one thread: the input projection of its own batch rows [b0,b1) for steps [t0,t1),
 * P[t - t0, b] (leading dimension ldp, B rows a step) = bias + x[t, b] @ WT (WT packed (I,N)).
 * Only this thread reads the rows afterwards, so no barrier is needed, and they are in its own
 * core's cache (split among the threads by rows of T*B instead, as before, half of a thread's
 * rows came from the other core, with two barriers a chunk). As few products as the rows allow:
 * one when the slice is the whole batch (contiguous rows), one per sequence when the slice has
 * fewer than 4 (rows B apart; one per step would read WT for every row), else one per step.
 * Each element is bias + sum over k in order, whatever the split. */
static inline void RF_F(rf_project_slice)(real *P, int64_t ldp, const real *x, int64_t t0,
                                          int64_t t1, int64_t B, int64_t b0, int64_t b1,
                                          int64_t I, const real *WT, int64_t N,
                                          const real *bias) {
    const int64_t w = b1 - b0, tc = t1 - t0;
    if (w <= 0) return;
    if (w == B) {
        RF_F(rf_mmp_set)(tc * B, N, I, x + t0 * B * I, I, 1, WT, I, bias, P, ldp);
    } else if (w < 4) {
        for (int64_t b = b0; b < b1; b++)
            RF_F(rf_mmp_set)(tc, N, I, x + (t0 * B + b) * I, B * I, 1, WT, I, bias, P + b * ldp,
                             B * ldp);
    } else {
        for (int64_t t = t0; t < t1; t++)
            RF_F(rf_mmp_set)(w, N, I, x + (t * B + b0) * I, I, 1, WT, I, bias,
                             P + ((t - t0) * B + b0) * ldp, ldp);
    }
}

/* The unit split's share of an input projection (rf_unit_threads): columns [c0,c1) of P (rows
 * of leading dimension ldp) = bias + x (rows, I) @ WT[:, c0:c1] (WT packed (I,N)); each element
 * the same sum as rf_project_slice's. */
static inline void RF_F(rf_project_cols)(real *P, int64_t ldp, const real *x, int64_t rows,
                                         int64_t I, const real *WT, int64_t N, int64_t c0,
                                         int64_t c1, const real *bias) {
    RF_F(rf_mmp_cols_set)(rows, N, c0, c1 - c0, I, x, I, 1, WT, I, bias ? bias + c0 : NULL,
                          P + c0, ldp);
}

/* ---- one thread's share of the small path (rf_share): the batch split's rows [b0,b1), or
 * (unit) every row's columns [u0,u1) of each of the G gates of H ---- */

/* The input projection of steps [t0,t1): P (B rows a step, leading dimension ldp) = bias +
 * x @ WT (WT packed (I,G*H)). */
static inline void RF_F(rf_project_share)(real *P, int64_t ldp, const real *x, int64_t t0,
                                          int64_t t1, int64_t B, int64_t I, const real *WT,
                                          int64_t G, int64_t H, int unit, int64_t b0, int64_t b1,
                                          int64_t u0, int64_t u1, const real *bias) {
    if (!unit) RF_F(rf_project_slice)(P, ldp, x, t0, t1, B, b0, b1, I, WT, G * H, bias);
    for (int64_t g = 0; unit && g < G; g++)
        RF_F(rf_project_cols)(P, ldp, x + t0 * B * I, (t1 - t0) * B, I, WT, G * H, g * H + u0,
                              g * H + u1, bias);
}

/* The unit split's part of share s (rf_unit_share_len): its packed weights W (forward: W_hh^T's
 * columns of its units, (H, G*np); backward: w_hh's, (GH, u1-u0)), in the forward its rows of
 * the step product and its b_hh; its units [u0,u1) and their width rounded up to vec, np. */
typedef struct {
    real *W, *rows, *bias;
    int64_t u0, u1, np;
} RF_F(rf_unit_part);

/* Every share's part of nt at `units` (bwd: the backward's), worked out once per call. */
static inline void RF_F(rf_unit_parts)(RF_F(rf_unit_part) *parts, real *units, int64_t B,
                                       int64_t H, int64_t G, int nt, int bwd) {
    for (int s = 0; s < nt; s++) {
        RF_F(rf_unit_part) *p = parts + s;
        rf_units(H, nt, s, RF_VEC, &p->u0, &p->u1);
        p->np = (p->u1 - p->u0 + RF_VEC - 1) / RF_VEC * RF_VEC;
        p->W = units;
        p->rows = bwd ? NULL : p->W + rf_pad(rf_packed_len(H, G * p->np));
        p->bias = bwd ? NULL : p->rows + rf_pad(B * G * p->np);
        units += rf_unit_share_len(B, H, G, nt, s, RF_VEC, bwd);
    }
}

/* The forwards' parts at `units` into parts[], and thread tr->it's part written, by that thread
 * before its first step (b_hh NULL: zeros): W_hh^T's columns of its units gate by gate, in
 * pieces that stay within a panel, and zeros in each gate's padding (within one panel: np and
 * the panels are whole vectors); its rows zeroed (their padding columns are summed but never
 * read). Its step syncs then bring the start of that W_hh^T into L1 while they wait
 * (rf_step_sync_ahead). */
static inline void RF_F(rf_pack_units)(rf_trial *tr, RF_F(rf_unit_part) *parts, real *units,
                                       const real *w_hh, const real *b_hh, int64_t B, int64_t H,
                                       int64_t G) {
    RF_F(rf_unit_parts)(parts, units, B, H, G, tr->nt, 0);
    const RF_F(rf_unit_part) p = parts[tr->it];
    const int64_t n = p.u1 - p.u0, N = G * p.np, np = RF_F(rf_np)(), ld = RF_F(rf_packed_ld)(N);
    for (int64_t g = 0; g < G; g++) {
        for (int64_t j = 0, m; j < n; j += m) { /* columns c.. of panel c / np */
            const int64_t c = g * p.np + j;
            m = n - j < np - c % np ? n - j : np - c % np;
            RF_F(rf_transpose_blocks)(p.W + c / np * H * ld + c % np, ld,
                                      w_hh + (g * H + p.u0 + j) * H, H, m, H);
        }
        const int64_t c = g * p.np + n;
        for (int64_t k = 0; n < p.np && k < H; k++)
            memset(p.W + c / np * H * ld + k * ld + c % np, 0, (size_t)(p.np - n) * sizeof(real));
        for (int64_t j = 0; j < p.np; j++)
            p.bias[g * p.np + j] = b_hh && j < n ? b_hh[g * H + p.u0 + j] : 0;
    }
    memset(p.rows, 0, (size_t)(B * N) * sizeof(real));
    rf_trial_ahead(tr, p.W, (int64_t)sizeof(real) * H * ld * ((N + np - 1) / np));
}

/* A step's recurrent product, C (B rows of G*H) += h (B rows of H) @ W_hh^T; or, with set,
 * C = bias (a row of G*H; NULL: zeros) + h @ W_hh^T. Without the unit split (tr NULL, or no step
 * counters): rows [b0,b1), on WT, W_hh^T packed whole. Split (rf_trial): its shares of units
 * (rf_trial_shares), each through its part (rf_pack_units): C's columns of its units gathered
 * into its rows (unless set), one product over its packed W_hh^T (with set, its b_hh), then
 * scattered back, or, without `scatter`, left in the rows for a gate pass that reads them there
 * (the LSTM's in inference, the GRU's); h's lines asked for first (rf_prefetch). Same sums in
 * the same order either way. */
static inline void RF_F(rf_step_product)(real *C, int64_t ldc, const real *h, int64_t B,
                                         int64_t H, const real *WT, int64_t G, const rf_trial *tr,
                                         const RF_F(rf_unit_part) *parts, int64_t b0, int64_t b1,
                                         int set, const real *bias, int scatter) {
    if (!tr || !tr->f) {
        if (set)
            RF_F(rf_mmp_set)(b1 - b0, G * H, H, h + b0 * H, H, 1, WT, H, bias, C + b0 * ldc,
                             ldc);
        else RF_F(rf_mmp)(b1 - b0, G * H, H, h + b0 * H, H, 1, WT, H, C + b0 * ldc, ldc);
        return;
    }
    int s0, s1;
    rf_trial_shares(tr, &s0, &s1);
    if (tr->unit) rf_prefetch(h, B * H * (int64_t)sizeof(real));
    for (int s = s0; s < s1; s++) {
        const RF_F(rf_unit_part) p = parts[s];
        const int64_t N = G * p.np;
        const size_t len = (size_t)(p.u1 - p.u0) * sizeof(real);
        for (int64_t i = 0; !set && i < B * G; i++)
            memcpy(p.rows + i / G * N + i % G * p.np, C + i / G * ldc + i % G * H + p.u0, len);
        if (set)
            RF_F(rf_mmp_set)(B, N, H, h, H, 1, p.W, H, bias ? p.bias : NULL, p.rows, N);
        else RF_F(rf_mmp)(B, N, H, h, H, 1, p.W, H, p.rows, N);
        for (int64_t i = 0; scatter && i < B * G; i++)
            memcpy(C + i / G * ldc + i % G * H + p.u0, p.rows + i / G * N + i % G * p.np, len);
    }
}

/* Where step t's h goes and where h_{t-1} is: the running state h_n in the batch split (and
 * when thread 0 runs alone); split, h_t goes to hb[t % 2] and h_{t-1} is hb[(t-1) % 2], or h_n
 * at the split's first step t_unit (h0, or where thread 0 left it). */
static inline void RF_F(rf_step_h)(real *h_n, real *hb, int64_t t, int64_t t_unit, int64_t B,
                                   int64_t H, int unit, real **h, const real **hp) {
    *h = unit ? hb + (t & 1) * B * H : h_n;
    *hp = !unit || t == t_unit ? h_n : hb + ((t - 1) & 1) * B * H;
}

/* The forwards' step loop top (rf_trial_top): the next step to run (-1: none), with this
 * thread's share; when thread 0 leaves the split, h_{t-1} moves from hb into h_n. */
static inline int64_t RF_F(rf_trial_step)(rf_trial *tr, int64_t t, real *h_n, const real *hb,
                                          int64_t B, int64_t H, int64_t *b0, int64_t *b1,
                                          int64_t *u0, int64_t *u1) {
    if (!tr->k || (t != tr->k && t != 2 * tr->k)) return t;
    if (tr->it == 0 && t == tr->k && !tr->clear)
        memcpy(h_n, hb + ((t - 1) & 1) * B * H, (size_t)(B * H) * sizeof(real));
    return rf_trial_top(tr, t, B, H, RF_VEC, b0, b1, u0, u1);
}

/* Backward: dh += da_t (B rows of GH) @ W_hh: without the unit split (no step counters), rows
 * [b0,b1) on w_hh packed (GH,H); with `set`, dh = da_t @ W_hh instead, for a caller whose gate
 * pass left dh unzeroed: the same sums as zeroing it and adding. Split (rf_trial): after the
 * step sync when the step runs split (every thread's part of da_t is in; its lines asked for at
 * once, rf_prefetch), its shares' columns of every row (rf_trial_shares), each on its part
 * (rf_pack_units_bwd). */
static inline void RF_F(rf_step_dh)(real *dh, const real *da_t, const real *w_hh, int64_t B,
                                    int64_t H, int64_t GH, int64_t b0, int64_t b1, int set,
                                    rf_trial *tr, const RF_F(rf_unit_part) *parts) {
    if (!tr->f) {
        if (set)
            RF_F(rf_mmp_set)(b1 - b0, H, GH, da_t + b0 * GH, GH, 1, w_hh, GH, NULL, dh + b0 * H,
                             H);
        else RF_F(rf_mmp)(b1 - b0, H, GH, da_t + b0 * GH, GH, 1, w_hh, GH, dh + b0 * H, H);
        return;
    }
    if (tr->unit) {
        rf_trial_sync(tr);
        rf_prefetch(da_t, B * GH * (int64_t)sizeof(real));
    }
    int s0, s1;
    rf_trial_shares(tr, &s0, &s1);
    for (int s = s0; s < s1; s++)
        RF_F(rf_mmp)(B, parts[s].u1 - parts[s].u0, GH, da_t, GH, 1, parts[s].W, GH,
                     dh + parts[s].u0, H);
}

/* dst[b, u0:u1] = src[b, u0:u1] for the B rows of H (the unit split's share of h_n). */
static inline void RF_F(rf_copy_units)(real *dst, const real *src, int64_t B, int64_t H,
                                       int64_t u0, int64_t u1) {
    for (int64_t b = 0; b < B; b++)
        memcpy(dst + b * H + u0, src + b * H + u0, (size_t)(u1 - u0) * sizeof(real));
}

/* Rows [k0,k1), columns [j0,j1) of a packed (.,N) B operand for rf_mmp (panels of kp rows)
 * from B row-major with leading dimension lds; the rest is left as it is, so threads can pack
 * their own rows or columns. Columns of the last panel beyond N are never read. */
static inline void RF_F(rf_pack_block)(real *Bp, int64_t kp, const real *src, int64_t lds,
                                       int64_t k0, int64_t k1, int64_t j0, int64_t j1,
                                       int64_t N) {
    const int64_t np = RF_F(rf_np)(), ld = RF_F(rf_packed_ld)(N);
    for (int64_t c = j0; c < j1;) {
        const int64_t e = (c / np + 1) * np < j1 ? (c / np + 1) * np : j1;
        const size_t len = (size_t)(e - c) * sizeof(real);
        real *dst = Bp + c / np * kp * ld + c % np;
        if (len == 64) /* e.g. a whole AVX2 panel row: a copy of known size, which the */
            for (int64_t k = k0; k < k1; k++) /* compiler inlines (a call per row cost more) */
                memcpy(dst + k * ld, src + k * lds + c, 64);
        else
            for (int64_t k = k0; k < k1; k++) memcpy(dst + k * ld, src + k * lds + c, len);
        c = e;
    }
}

/* Pack a (K,N) B operand for rf_mmp: from W (N,K) row-major (B = W^T) when trans, else from B
 * (K,N) row-major. */
static inline void RF_F(rf_pack)(real *Bp, const real *src, int64_t K, int64_t N, int trans) {
    const int64_t np = RF_F(rf_np)(), ld = RF_F(rf_packed_ld)(N);
    if (!trans) {
        RF_F(rf_pack_block)(Bp, K, src, N, 0, K, 0, N, N);
        return;
    }
    for (int64_t c0 = 0; c0 < N; c0 += np) { /* panel (K,nc) = W[c0:c0+nc, :]^T */
        const int64_t nc = N - c0 < np ? N - c0 : np;
        RF_F(rf_transpose_blocks)(Bp + c0 / np * K * ld, ld, src + c0 * K, K, nc, K);
    }
}

/* The small path's weights, packed once per call. Forward: W_ih^T (I,GH) then W_hh^T (H,GH) at w
 * (rf_fwd_small_extra elements). Backward: w_hh (GH,H) then w_ih (GH,I), the B operands of dh
 * and dx, at w (the first rf_bwd_small_extra elements). With w_hh NULL (the unit split, whose
 * threads pack their parts of it: rf_pack_units, rf_pack_units_bwd), *WhT / *Whh are left as
 * they are. */
static inline void RF_F(rf_pack_fwd)(real *w, const real *w_ih, const real *w_hh, int64_t I,
                                     int64_t H, int64_t GH, const real **WiT, const real **WhT) {
    real *wh = w + rf_pad(rf_packed_len(I, GH));
    RF_F(rf_pack)(w, w_ih, I, GH, 1);
    *WiT = w;
    if (w_hh) {
        RF_F(rf_pack)(wh, w_hh, H, GH, 1);
        *WhT = wh;
    }
}

static inline void RF_F(rf_pack_bwd)(real *w, const real *w_ih, const real *w_hh, int64_t I,
                                     int64_t H, int64_t GH, const real **Whh, const real **Wih) {
    real *wi = w + rf_pad(rf_packed_len(GH, H));
    RF_F(rf_pack)(wi, w_ih, GH, I, 0);
    *Wih = wi;
    if (w_hh) {
        RF_F(rf_pack)(w, w_hh, GH, H, 0);
        *Whh = w;
    }
}

/* The backwards' parts at `units` into parts[], and thread tr->it's written by that thread
 * before its first step: w_hh's (GH,H) columns of its units as a packed (GH, u1-u0) matrix; its
 * step syncs then bring the start of it into L1 while they wait. */
static inline void RF_F(rf_pack_units_bwd)(rf_trial *tr, RF_F(rf_unit_part) *parts, real *units,
                                           const real *w_hh, int64_t H, int64_t G) {
    RF_F(rf_unit_parts)(parts, units, 0, H, G, tr->nt, 1);
    const RF_F(rf_unit_part) p = parts[tr->it];
    const int64_t n = p.u1 - p.u0;
    RF_F(rf_pack_block)(p.W, G * H, w_hh + p.u0, H, 0, G * H, 0, n, n);
    rf_trial_ahead(tr, p.W, (int64_t)sizeof(real) * G * H * RF_F(rf_packed_ld)(n));
}

/* dst (C,R) = src (R,C)^T for contiguous matrices (rf_transpose_blocks, rf_mm.c). */
static inline void RF_F(rf_transpose)(real *dst, const real *src, int64_t R, int64_t C) {
    RF_F(rf_transpose_blocks)(dst, R, src, C, R, C);
}

static inline void RF_F(rf_copy_or_zero)(real *dst, const real *src, int64_t n) {
    if (src) memcpy(dst, src, (size_t)n * sizeof(real));
    else memset(dst, 0, (size_t)n * sizeof(real));
}

/* db[j0:j1] += column sums over those columns of da's rows (ld apart), rows in order. */
RF_INLINE void RF_F(rf_colsum_add_body)(real *restrict db, const real *restrict da, int64_t rows,
                                        int64_t ld, int64_t j0, int64_t j1) {
    for (int64_t r = 0; r < rows; r++) {
        const real *da_r = da + r * ld;
        for (int64_t j = j0; j < j1; j++) db[j] += da_r[j];
    }
}
RF_MULTIVERSION(rf_colsum_add, (real *db, const real *da, int64_t rows, int64_t ld, int64_t j0,
                                int64_t j1), (db, da, rows, ld, j0, j1))

/* ---- after backward's time loop: dx, dW_ih, dW_hh, db from the gate gradients of all steps ---
 *   dx = da_in @ W_ih;  dW_ih = da_in^T @ x;  dW_hh = da_hh^T @ h_prev;  db_ih, db_hh = column
 *   sums of da_in, da_hh; h_prev = (h0, y[0], ..., y[T-2]) (only valid steps carry gradient, and
 *   for those y[t-1] is h_{t-1}). da_hh is da_in except for the GRU. */
typedef struct {
    real *dx, *dw_ih, *dw_hh, *db_ih, *db_hh;   /* db_* may be NULL (no bias) */
    const real *da_in, *da_hh, *x, *h0, *y, *w_ih; /* h0 may be NULL (zeros) */
    real *ones;                                 /* T*B elements of workspace (BLAS path) */
    int64_t T, B, I, H, GH;
    real *tw;  /* small path: scratch of rf_wgrad_finish, or (I+H)*GH: dW^T (rf_wgrad_after) */
    real *pk;  /* small path, rf_wgrad_packed_used: rf_wgrad_pack_len elements; the LSTM, */
               /* rf_chunk_packed_used: one packed chunk of the gate gradient */
    real *pa;  /* the LSTM with pk: the chunk's A panels, x^T then h_prev^T ((I + H) * rows) */
    rf_pieces *pieces; /* small path, RNN and GRU (rf_wgrad_after): zeroed counters */
    real *dbp; /* small path: per-sequence sums (rf_wgrad_db_seq), (B,GH) of da_in, then of da_hh */
} RF_F(rf_wgrad);

/* The RNN's and GRU's small path: lay out the workspace after w->ones (rf_wgrad_small_len), pack
 * the weights' B operands (w_hh's into *whh_packed, w_ih's into w->w_ih; w_hh NULL, the unit
 * split's: *whh_packed left as it is, rf_pack_bwd) and give the threads their zeroed counters
 * (pieces, which must live as long as the OpenMP region). */
static inline void RF_F(rf_wgrad_small_init)(RF_F(rf_wgrad) *w, const real *w_ih,
                                             const real *w_hh, const real **whh_packed,
                                             rf_pieces *pieces) {
    const int64_t T = w->T, B = w->B, I = w->I, H = w->H, GH = w->GH;
    real *ws = w->ones + rf_pad(T * B);
    RF_F(rf_pack_bwd)(ws, w_ih, w_hh, I, H, GH, whh_packed, &w->w_ih);
    w->tw = ws + rf_bwd_small_extra(I, H, GH);
    if (rf_wgrad_packed_used(T, B, I, H, GH, (int64_t)sizeof(real)))
        w->pk = w->tw + rf_pad((I + H) * GH);
    w->dbp = w->tw + rf_pad((I + H) * GH) + rf_wgrad_pack_len(T, B, I, H, GH);
    w->pieces = rf_pieces_init(pieces);
}

/* Row k of h_prev = (h0; y[0], ..., y[T-2]) counted from step ts's rows: h0's first when
 * ts == 0 (the weight gradients' A operand of dW_hh^T). */
static inline const real *RF_F(rf_hprev_row)(const RF_F(rf_wgrad) *w, int64_t ts, int64_t k) {
    const int64_t B = w->B, H = w->H, r = ts * B + k; /* row of (h0; y) */
    return r < B ? w->h0 + r * H : w->y + (r - B) * H;
}

/* Large problems: single GEMMs over all steps (the BLAS's threads). */
static inline void RF_F(rf_wgrad_blas)(const rnnfast_blas *bl, const RF_F(rf_wgrad) *w) {
    const int64_t T = w->T, B = w->B, I = w->I, H = w->H, GH = w->GH, TB = T * B;
    RF_F(rf_gemm)(bl, 'N', 'N', TB, I, GH, 1, w->da_in, GH, w->w_ih, I, 0, w->dx, I);
    RF_F(rf_gemm)(bl, 'T', 'N', GH, I, TB, 1, w->da_in, GH, w->x, I, 0, w->dw_ih, I);
    if (T > 1)
        RF_F(rf_gemm)(bl, 'T', 'N', GH, H, (T - 1) * B, 1, w->da_hh + B * GH, GH, w->y, H, 0,
                      w->dw_hh, H);
    if (w->h0)
        RF_F(rf_gemm)(bl, 'T', 'N', GH, H, B, 1, w->da_hh, GH, w->h0, H, T > 1 ? 1 : 0, w->dw_hh,
                      H);
    else if (T == 1)
        memset(w->dw_hh, 0, (size_t)(GH * H) * sizeof(real));
    for (int64_t r = 0; r < TB; r++) w->ones[r] = 1;
    /* db (1,GH) = ones (1,TB) @ da (TB,GH): one gemv */
    if (w->db_ih)
        RF_F(rf_gemm)(bl, 'N', 'N', 1, GH, TB, 1, w->ones, TB, w->da_in, GH, 0, w->db_ih, GH);
    if (w->db_hh) {
        if (w->db_ih && w->da_hh == w->da_in)
            memcpy(w->db_hh, w->db_ih, (size_t)GH * sizeof(real));
        else
            RF_F(rf_gemm)(bl, 'N', 'N', 1, GH, TB, 1, w->ones, TB, w->da_hh, GH, 0, w->db_hh, GH);
    }
}

/* n rows of dx from as many rows of the gate gradient: dx[xr + i] (.,I) = da_in[ar + i] (.,GH)
 * @ w_ih, i < n. One product over contiguous rows (per sequence, the rows of one batch column
 * were B*GH apart and the product ran at half speed). */
static inline void RF_F(rf_wgrad_dx)(const RF_F(rf_wgrad) *w, int64_t ar, int64_t xr, int64_t n) {
    const int64_t I = w->I, GH = w->GH;
    if (n > 0)
        RF_F(rf_mmp_set)(n, I, GH, w->da_in + ar * GH, GH, 1, w->w_ih, GH, NULL, w->dx + xr * I, I);
}

/* One weight gradient of a large problem, its rows [r0,r1) of M split among the threads:
 * dW_ih^T (I,GH) = x^T @ da_in, or (hh) dW_hh^T (H,GH) = h_prev^T @ da_hh with h_prev = (h0;
 * y[0..T-2]) (a missing h0 is zeros: those steps are skipped). Block by block of RF_WKC rows of
 * the gate gradient: all threads pack a share of the block (after a barrier, so nobody still
 * reads the last one), a barrier, then each packs its own rows of x^T or h_prev^T and runs
 * rf_mm_pp. Every element still sums k = 0..K-1 in order. */
static inline void RF_F(rf_wgrad_packed)(const RF_F(rf_wgrad) *w, int nt, int it, int hh,
                                         int64_t r0, int64_t r1) {
    const int64_t B = w->B, GH = w->GH, TB = w->T * B, M = hh ? w->H : w->I;
    const real *D = hh ? w->da_hh : w->da_in;
    real *tt = w->tw + (hh ? w->I * GH : 0), *Bp = w->pk;
    real *Ap = w->pk + rf_pad(rf_packed_len(RF_WKC, GH)) + r0 * RF_WKC;
    const real *rows[RF_WKC];
    if (r1 > r0) memset(tt + r0 * GH, 0, (size_t)((r1 - r0) * GH) * sizeof(real));
    for (int64_t pc = hh && !w->h0 ? B : 0; pc < TB; pc += RF_WKC) {
        const int64_t kc = TB - pc < RF_WKC ? TB - pc : RF_WKC;
        int64_t s0, s1;
        rf_slice(kc, nt, it, &s0, &s1);
        rf_barrier(nt);
        RF_F(rf_pack_block)(Bp, RF_WKC, D + pc * GH, GH, s0, s1, 0, GH, GH);
        rf_barrier(nt);
        if (r1 <= r0) continue;
        for (int64_t k = 0; k < kc; k++) {
            const int64_t kk = pc + k;
            rows[k] = !hh ? w->x + kk * M : RF_F(rf_hprev_row)(w, 0, kk);
        }
        RF_F(rf_pack_at)(Ap, r1 - r0, kc, rows, r0, 0, kc);
        RF_F(rf_mm_pp)(r1 - r0, GH, 0, GH, kc, Ap, Bp, RF_WKC, tt + r0 * GH, GH);
    }
    if (r1 > r0)
        RF_F(rf_transpose_blocks)((hh ? w->dw_hh : w->dw_ih) + r0, M, tt + r0 * GH, GH, r1 - r0,
                                  GH);
}

/* Rows [r0,r1) of (dW_ih^T; dW_hh^T), I + H rows of GH, computed in w->tw and transposed into
 * dW_ih and dW_hh. The products run transposed, dW^T = x^T @ da, so that their B operand is the
 * gate gradient (our aligned workspace, contiguous rows) and x, y are only broadcast from; and
 * a share of these rows (not of GH) is what a thread takes, because every row is GH wide, so even
 * a small H gives each product full-width vectors (splitting GH instead halves the vector work
 * per load at H = 64). Every element sums over all steps in the same order whatever the rows. */
static inline void RF_F(rf_wgrad_row_range)(const RF_F(rf_wgrad) *w, int64_t r0, int64_t r1) {
    const int64_t T = w->T, B = w->B, I = w->I, H = w->H, GH = w->GH, TB = T * B;
    real *tt = w->tw; /* (I + H, GH): dW_ih^T then dW_hh^T */
    if (r1 <= r0) return;
    memset(tt + r0 * GH, 0, (size_t)((r1 - r0) * GH) * sizeof(real));
    const int64_t i0 = r0 < I ? r0 : I, i1 = r1 < I ? r1 : I; /* rows of dW_ih^T */
    const int64_t h0 = (r0 > I ? r0 : I) - I, h1 = (r1 > I ? r1 : I) - I; /* of dW_hh^T */
    /* dW_ih^T[i0:i1] (.,GH) += x[:, i0:i1]^T (.,TB) @ da_in (TB,GH) */
    if (i1 > i0) {
        RF_F(rf_mm)(i1 - i0, GH, TB, w->x + i0, 1, I, w->da_in, GH, tt + i0 * GH, GH);
        RF_F(rf_transpose_blocks)(w->dw_ih + i0, I, tt + i0 * GH, GH, i1 - i0, GH);
    }
    /* dW_hh^T[h0:h1] += (h0; y[0..T-2])[:, h0:h1]^T @ da_hh, step 0 first */
    if (h1 > h0) {
        real *th = tt + (I + h0) * GH;
        if (w->h0) RF_F(rf_mm)(h1 - h0, GH, B, w->h0 + h0, 1, H, w->da_hh, GH, th, GH);
        if (T > 1)
            RF_F(rf_mm)(h1 - h0, GH, (T - 1) * B, w->y + h0, 1, H, w->da_hh + B * GH, GH, th,
                        GH);
        RF_F(rf_transpose_blocks)(w->dw_hh + h0, H, th, GH, h1 - h0, GH);
    }
}

/* Which gate gradients db needs summed: 1 da_in (for db_ih, or for db_hh when da_hh is da_in),
 * 2 da_hh (for db_hh, when it differs: the GRU). */
static inline int RF_F(rf_wgrad_db_sets)(const RF_F(rf_wgrad) *w) {
    const int same = w->da_hh == w->da_in;
    return (w->db_ih || (w->db_hh && same) ? 1 : 0) | (w->db_hh && !same ? 2 : 0);
}

/* Small path, after the backward's time loop and its barrier: thread `it` of `nt` sums, for its
 * share of the sequences b, the gate gradients over the steps, dbp[b] = da[0, b] + ... +
 * da[T-1, b]: in the batch split, mostly rows its own time loop wrote, still in its cache. db is
 * then the sum of these in b's order (rf_wgrad_db): an order fixed by the shape, so the results
 * do not depend on the thread count. Summing db's columns over all T*B rows in order instead
 * read half of every row from the other core's cache: RNN (32,50,32,64), 26 us of each thread's
 * ~300 us backward, against 7 us now. */
static inline void RF_F(rf_wgrad_db_seq)(const RF_F(rf_wgrad) *w, int nt, int it) {
    const int64_t T = w->T, B = w->B, GH = w->GH;
    const int sets = RF_F(rf_wgrad_db_sets)(w);
    int64_t b0, b1;
    rf_slice(B, nt, it, &b0, &b1);
    for (int hh = 0; hh < 2; hh++) {
        if (!(sets & (1 << hh))) continue;
        const real *da = hh ? w->da_hh : w->da_in;
        real *p = w->dbp + hh * B * GH;
        for (int64_t b = b0; b < b1; b++) {
            memset(p + b * GH, 0, (size_t)GH * sizeof(real));
            RF_F(rf_colsum_add)(p + b * GH, da + b * GH, T, B * GH, 0, GH);
        }
    }
}

/* db_ih and db_hh, the sums over b of the per-sequence sums (rf_wgrad_db_seq), once all are in. */
static inline void RF_F(rf_wgrad_db)(const RF_F(rf_wgrad) *w) {
    const int64_t B = w->B, GH = w->GH;
    const int sets = RF_F(rf_wgrad_db_sets)(w);
    real *db[2] = {w->db_ih, w->db_hh};
    for (int k = 0; k < 2; k++) {
        if (!db[k]) continue;
        /* db_hh sums da_in's set when da_hh is da_in: a copy of db_ih's when there is one */
        const int set = k && (sets & 2) ? 1 : 0;
        if (k && !set && db[0]) {
            memcpy(db[1], db[0], (size_t)GH * sizeof(real));
            continue;
        }
        memset(db[k], 0, (size_t)GH * sizeof(real));
        RF_F(rf_colsum_add)(db[k], w->dbp + set * B * GH, B, GH, 0, GH);
    }
}

/* Small problems, inside the OpenMP region, after the time loop and a barrier: dx, dW_ih, dW_hh and
 * db from all steps' gate gradients, thread `it` of `nt`. Its sequences' sums for db
 * (rf_wgrad_db_seq; the last thread to finish them adds them up), then its share of the rows of
 * (dW_ih^T; dW_hh^T) (rf_wgrad_row_range), then pieces of dx's rows (about RF_PIECE_MACS each, a
 * multiple of 12 rows: whole tiles of either ISA) taken in turn (w->pieces), so that a thread the
 * host has slowed down runs fewer of them. With static halves of dx, one thread waited for the
 * other at the end of an RNN (32,50,32,64) backward: 30-37 us a call, both threads' waits summed,
 * against 4-5 us with the pieces (rdtsc, in one process, two runs). Pieces of the weight rows too
 * (8 rows) took 1.03-1.08 of the time: each piece streams all of the gate gradient from L2 again
 * for 8 rows. Large problems (w->pk) pack both operands block by block with two barriers a block
 * (rf_wgrad_packed), so their threads keep static shares: dx's rows, then the I rows of dW_ih^T,
 * then the H rows of dW_hh^T. Which thread computes a row does not change its sums, so the results
 * do not depend on the thread count or on who took which piece. */
static inline void RF_F(rf_wgrad_after)(const RF_F(rf_wgrad) *w, int nt, int it) {
    const int64_t TB = w->T * w->B, I = w->I, H = w->H, GH = w->GH, R = I + H;
    int64_t r0, r1;
    RF_F(rf_wgrad_db_seq)(w, nt, it);
    const int last = rf_pieces_last(w->pieces, nt);
    if (w->pk) { /* db after the products: the others would wait for it at their barriers */
        rf_slice(TB, nt, it, &r0, &r1);
        RF_F(rf_wgrad_dx)(w, r0, r0, r1 - r0);
        rf_slice(I, nt, it, &r0, &r1);
        RF_F(rf_wgrad_packed)(w, nt, it, 0, r0, r1);
        rf_slice(H, nt, it, &r0, &r1);
        RF_F(rf_wgrad_packed)(w, nt, it, 1, r0, r1);
        if (last) RF_F(rf_wgrad_db)(w);
        return;
    }
    if (last) RF_F(rf_wgrad_db)(w);
    rf_slice(R, nt, it, &r0, &r1);
    RF_F(rf_wgrad_row_range)(w, r0, r1);
    const int64_t xr = rf_piece_rows(I * GH, 12);
    for (int64_t p; (p = rf_piece_take(w->pieces, it)) * xr < TB;)
        RF_F(rf_wgrad_dx)(w, p * xr, p * xr, TB - p * xr < xr ? TB - p * xr : xr);
}

/* ---- small path, chunked: the backward time loop runs in chunks of steps [t0,t1) with t0 a
 * multiple of Tc (the last chunk first), keeping the gate gradients of one chunk only
 * (w->da_in, w->da_hh: step t at row block t % Tc), so backward's workspace stays O(Tc*B*GH)
 * and in cache. After each chunk: the dx rows of one thread's batch slice (the unit split: a
 * share of the chunk's rows, rf_wgrad_dx_rows, after a barrier when thread 0 ran the steps
 * alone) and, with both operands packed, a share of the chunk's A panels (rf_wgrad_pack_a_chunk),
 * a barrier, then each thread adds the chunk's part of its columns of dW^T and db, and a barrier
 * before the next chunk overwrites the gate gradients and the panels. Every element sums the same
 * products in an order fixed by the shape (chunk by chunk, last chunk first), whatever the
 * thread count. */
static inline void RF_F(rf_wgrad_dx_chunk)(const RF_F(rf_wgrad) *w, int64_t b0, int64_t b1,
                                          int64_t t0, int64_t t1) {
    const int64_t B = w->B, I = w->I, GH = w->GH;
    if (b1 - b0 >= t1 - t0) {
        /* per step, the slice's rows at once: dx[t, b0:b1] (.,I) = da_in[t, b0:b1] @ w_ih */
        for (int64_t t = t0; t < t1; t++)
            RF_F(rf_wgrad_dx)(w, (t - t0) * B + b0, t * B + b0, b1 - b0);
    } else {
        /* per sequence, the chunk's steps at once: dx[t0:t1, b] (.,I) = da_in[chunk, b] @ w_ih */
        for (int64_t b = b0; b < b1; b++)
            RF_F(rf_mmp_set)(t1 - t0, I, GH, w->da_in + b * GH, B * GH, 1, w->w_ih, GH, NULL,
                             w->dx + (t0 * B + b) * I, B * I);
    }
}

/* The unit split's dx for the chunk: thread `it` of `nt` its share of the chunk's rows (steps
 * times sequences, contiguous in dx and in the chunk's gate gradients), one product. */
static inline void RF_F(rf_wgrad_dx_rows)(const RF_F(rf_wgrad) *w, int64_t t0, int64_t t1, int nt,
                                          int it) {
    int64_t r0, r1;
    rf_slice((t1 - t0) * w->B, nt, it, &r0, &r1);
    RF_F(rf_wgrad_dx)(w, r0, t0 * w->B + r0, r1 - r0);
}

/* The rows of h_prev for the chunk's dW_hh^T (h_prev = h0 at step 0, else y[t-1]): their
 * count, and the first step they pair with (*ts: t0, or 1 when h0 is missing and step 0 is
 * skipped). */
static inline int64_t RF_F(rf_chunk_hprev)(const RF_F(rf_wgrad) *w, int64_t t0, int64_t t1,
                                           int64_t *ts) {
    *ts = t0 == 0 && !w->h0 ? 1 : t0;
    return (t1 - *ts) * w->B;
}

/* With both operands packed (w->pa): thread `it` of `nt` packs its share of the chunk's rows of
 * x^T (I, K) and h_prev^T (H, K_h) into w->pa, before the barrier that precedes the chunk's
 * weight-gradient products (and after the barrier that ended the previous chunk's, which read
 * w->pa).
 * A transposed view as the A operand (rows I or H apart, one cache line per k) ran the AVX2
 * products at 0.75 of the packed ones' speed here. */
static inline void RF_F(rf_wgrad_pack_a_chunk)(const RF_F(rf_wgrad) *w, int64_t t0, int64_t t1,
                                               int nt, int it) {
    const int64_t B = w->B, I = w->I, K = (t1 - t0) * B;
    int64_t ts, k0, k1;
    const int64_t Kh = RF_F(rf_chunk_hprev)(w, t0, t1, &ts);
    const real *rows[RF_WKC];
    for (int hh = 0; hh < 2; hh++) { /* x^T (I, K), then h_prev^T (H, Kh) */
        const int64_t Km = hh ? Kh : K;
        rf_slice(Km, nt, it, &k0, &k1);
        for (int64_t p = k0; p < k1; p += RF_WKC) { /* as many rows as `rows` holds at a time */
            const int64_t q = k1 - p < RF_WKC ? k1 : p + RF_WKC;
            for (int64_t k = p; k < q; k++)
                rows[k - p] = hh ? RF_F(rf_hprev_row)(w, ts, k) : w->x + (t0 * B + k) * I;
            RF_F(rf_pack_at)(w->pa + (hh ? I * K : 0), hh ? w->H : I, Km, rows, 0, p, q);
        }
    }
}

/* Columns [j0,j1) of dW_ih^T, dW_hh^T and db for the chunk's steps; the first chunk (t1 == T)
 * starts them from zero. dW_ih^T[:, j0:j1] (I,M) is kept in the memory of its final place, rows
 * [j0,j1) of dW_ih (the same M*I elements), likewise dW_hh; rf_wgrad_finish transposes them. */
static inline void RF_F(rf_wgrad_cols_chunk)(const RF_F(rf_wgrad) *w, int64_t j0, int64_t j1,
                                             int64_t t0, int64_t t1) {
    const int64_t T = w->T, B = w->B, I = w->I, H = w->H, GH = w->GH, M = j1 - j0;
    if (M <= 0) return;
    real *ti = w->dw_ih + j0 * I, *th = w->dw_hh + j0 * H; /* (I,M), (H,M) */
    if (t1 == T) {
        memset(ti, 0, (size_t)(M * I) * sizeof(real));
        memset(th, 0, (size_t)(M * H) * sizeof(real));
        if (w->db_ih) memset(w->db_ih + j0, 0, (size_t)M * sizeof(real));
        if (w->db_hh) memset(w->db_hh + j0, 0, (size_t)M * sizeof(real));
    }
    const int64_t K = (t1 - t0) * B;
    const real *D = w->da_in + j0; /* (K, M), rows GH apart */
#define RF_DPROD(M_, A_, acs_, k0_, kn_, C_)                                                    \
    RF_F(rf_mm)(M_, M, kn_, A_, 1, acs_, D + (k0_) * GH, GH, C_, M)
    if (w->pa) { /* both packed (w->pk, w->pa; rf_wgrad_pack_a_chunk): the same products */
        /* rows far apart fall in a few cache sets: this thread's columns packed once, read twice
         * (packed row by row in the time loop instead, while in cache, it took 1.02-1.07 of the
         * time at (32,50,32,64): each row's stores went to 16 panels, with the stores of the
         * time loop's other work) */
        RF_F(rf_pack_block)(w->pk, K, w->da_in, GH, 0, K, j0, j1, GH);
        int64_t ts;
        const int64_t Kh = RF_F(rf_chunk_hprev)(w, t0, t1, &ts);
        const real *Dh = w->pk + (ts - t0) * B * RF_F(rf_packed_ld)(GH);
        RF_F(rf_mm_pp)(I, GH, j0, M, K, w->pa, w->pk, K, ti, M);
        if (Kh > 0) RF_F(rf_mm_pp)(H, GH, j0, M, Kh, w->pa + I * K, Dh, K, th, M);
    } else {
        /* dW_ih^T[:, j0:j1] (I,M) += x[t0:t1]^T (I,.) @ da_in[chunk, j0:j1] */
        RF_DPROD(I, w->x + t0 * B * I, I, 0, K, ti);
        /* dW_hh^T[:, j0:j1] (H,M) += h_prev^T @ da_hh[chunk, j0:j1]; h_prev = h0 at step 0,
         * else y[t-1] (da_hh is da_in: the LSTM) */
        int64_t ts = t0;
        if (t0 == 0) {
            if (w->h0) RF_DPROD(H, w->h0, H, 0, B, th);
            ts = 1;
        }
        if (t1 > ts) RF_DPROD(H, w->y + (ts - 1) * B * H, H, (ts - t0) * B, (t1 - ts) * B, th);
    }
#undef RF_DPROD
    /* db_hh is db_ih when both come from the same gate gradient: summed once, copied last */
    const int same = w->db_ih && w->da_hh == w->da_in;
    if (w->db_ih) RF_F(rf_colsum_add)(w->db_ih, w->da_in, (t1 - t0) * B, GH, j0, j1);
    if (w->db_hh && !same) RF_F(rf_colsum_add)(w->db_hh, w->da_hh, (t1 - t0) * B, GH, j0, j1);
    if (w->db_hh && same && t0 == 0)
        memcpy(w->db_hh + j0, w->db_ih + j0, (size_t)M * sizeof(real));
}

/* After the last chunk and a barrier (w->tw, the space of the weight copies, is free again; it
 * has at least GH*max(I,H) elements): dW_ih^T[:, j0:j1], dW_hh^T[:, j0:j1] transposed into
 * place. */
static inline void RF_F(rf_wgrad_finish)(const RF_F(rf_wgrad) *w, int64_t j0, int64_t j1) {
    const int64_t I = w->I, H = w->H, M = j1 - j0;
    if (M <= 0) return;
    real *tmp = w->tw + j0 * (I > H ? I : H);
    memcpy(tmp, w->dw_ih + j0 * I, (size_t)(M * I) * sizeof(real));
    RF_F(rf_transpose)(w->dw_ih + j0 * I, tmp, I, M);
    memcpy(tmp, w->dw_hh + j0 * H, (size_t)(M * H) * sizeof(real));
    RF_F(rf_transpose)(w->dw_hh + j0 * H, tmp, H, M);
}

/* Check the BLAS table has this dtype's GEMM. */
static inline int RF_F(rf_blas_ok)(const rnnfast_blas *bl) {
#if RF_IS_F32
    return bl && bl->sgemm;
#else
    return bl && bl->dgemm;
#endif
}
