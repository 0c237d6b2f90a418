/* Accuracy of the kernels' own activations (csrc/rf_real.h), as compiled for the kernels.
 *
 * Evaluates tanh, sigmoid and the LSTM's four-gate function in float and double over dense
 * sweeps of inputs, with each instruction set's copy of the loops that the CPU can run (the
 * element-wise passes are built per instruction set, RF_MULTIVERSION), against long double
 * libm; prints the largest and mean error in ulp of the result's dtype and checks bounds and
 * special values. Exit status 1 when an error exceeds the limits below. Built and run by
 * tests/test_c_activations.py.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "rf_common.h"

#define real float
#define RF_F(n) n##_f32
#define RF_IS_F32 1
#include "rf_real.h"
#undef real
#undef RF_F
#undef RF_IS_F32
#define real double
#define RF_F(n) n##_f64
#define RF_IS_F32 0
#include "rf_real.h"
#undef real
#undef RF_F
#undef RF_IS_F32

/* Limits in ulp of the result (measured: see the printed table). */
#define MAX_ULP_F32 8.0
#define MAX_ULP_F64 8.0

static int failures = 0;

/* y[k] = fn(x[k]), every copy of a loop the way the kernels build them; name(copy, ...) runs
 * copy `copy` (an RF_ISA_* value). */
#define EVAL_COPIES(real, name, TARGET, isa, body)                                              \
    TARGET static void name##_##isa(const real *x, real *y, long n) { body }
#define EVAL_DISPATCH(real, name, body)                                                         \
    EVAL_COPIES(real, name, , generic, body)                                                    \
    EVAL_COPIES(real, name, RF_AVX2_TARGET, avx2, body)                                         \
    EVAL_COPIES(real, name, RF_AVX512_TARGET, avx512, body)                                     \
    static void name(int copy, const real *x, real *y, long n) {                                \
        (copy == RF_ISA_AVX512 ? name##_avx512 : copy == RF_ISA_AVX2 ? name##_avx2              \
                                                                     : name##_generic)(x, y, n); \
    }
#define EVAL_LOOPS(real, name, expr)                                                            \
    EVAL_DISPATCH(real, name, for (long k = 0; k < n; k++) { real v = x[k]; y[k] = (expr); })
EVAL_LOOPS(float, tanh32, rf_tanh_f32(v))
EVAL_LOOPS(float, sig32, rf_sigmoid_f32(v))
EVAL_LOOPS(double, tanh64, rf_tanh_f64(v))
EVAL_LOOPS(double, sig64, rf_sigmoid_f64(v))

/* The four LSTM gates from four input vectors. */
#define GATE_LOOPS(real, sfx)                                                                   \
    EVAL_DISPATCH(real, gates##sfx, for (long k = 0; k < n; k++)                                \
        rf_lstm_gates_##sfx(x[k], x[n + k], x[2 * n + k], x[3 * n + k], y + k, y + n + k,       \
                            y + 2 * n + k, y + 3 * n + k);)
GATE_LOOPS(float, f32)
GATE_LOOPS(double, f64)

/* Two more copies: the float forms written with vector intrinsics (rf_vec.h: the gate passes of
 * the LSTM and GRU and the RNN's tanh), on AVX2 vectors of 8 and AVX-512 vectors of 16, the last
 * n % width masked. VEC(w, f, x, y, n) runs width w's f. */
#define COPY_V8 (RF_ISA_AVX512 + 1)
#define COPY_V16 (RF_ISA_AVX512 + 2)
#define VEC_LD(W, p, left) rf_v##W##_load(p, left)
#define VEC_FORMS(W, TARGET)                                                                    \
    TARGET static void tanh32_v##W(const float *x, float *y, long n) {                          \
        for (long k = 0; k < n; k += W)                                                         \
            rf_v##W##_store(y + k, n - k, rf_v##W##_tanh(VEC_LD(W, x + k, n - k)));             \
    }                                                                                           \
    TARGET static void sig32_v##W(const float *x, float *y, long n) {                           \
        for (long k = 0; k < n; k += W)                                                         \
            rf_v##W##_store(y + k, n - k, rf_v##W##_sigmoid(VEC_LD(W, x + k, n - k)));          \
    }                                                                                           \
    TARGET static void gatesf32_v##W(const float *x, float *y, long n) {                        \
        for (long k = 0; k < n; k += W) {                                                       \
            VEC_T##W v[4];                                                                      \
            rf_v##W##_lstm_gates(VEC_LD(W, x + k, n - k), VEC_LD(W, x + n + k, n - k),          \
                                 VEC_LD(W, x + 2 * n + k, n - k),                               \
                                 VEC_LD(W, x + 3 * n + k, n - k), &v[0], &v[1], &v[2], &v[3]);  \
            for (int g = 0; g < 4; g++) rf_v##W##_store(y + g * n + k, n - k, v[g]);            \
        }                                                                                       \
    }
#ifdef RF_HAVE_AVX2
#define VEC_T8 __m256
VEC_FORMS(8, RF_AVX2_TARGET)
#define V8(f, x, y, n) f##_v8(x, y, n)
#else
#define V8(f, x, y, n) (void)0
#endif
#ifdef RF_HAVE_AVX512
#define VEC_T16 __m512
VEC_FORMS(16, RF_AVX512_TARGET)
#define V16(f, x, y, n) f##_v16(x, y, n)
#else
#define V16(f, x, y, n) (void)0
#endif
#define VEC(w, f, x, y, n) ((w) == 16 ? V16(f, x, y, n) : V8(f, x, y, n))

static long double ref_tanh(long double x) { return tanhl(x); }
static long double ref_sig(long double x) { return 1.0L / (1.0L + expl(-x)); }

/* Error of got against want in ulp of the dtype (mantissa bits `mant`) at want's magnitude;
 * results below the smallest normal count in units of that. */
static double ulp_err(long double got, long double want, int mant, int emin) {
    if (isnan(want)) return isnan(got) ? 0 : 1e30;
    long double a = fabsl(want);
    int e;
    frexpl(a, &e);
    if (e - 1 < emin) e = emin + 1;
    long double ulp = ldexpl(1.0L, e - 1 - (mant - 1));
    return (double)(fabsl(got - want) / ulp);
}

typedef struct { double max, sum, at; long n; } stat;
static void acc(stat *s, double err, double x) {
    if (err > s->max) { s->max = err; s->at = x; }
    s->sum += err; s->n++;
}
static void report(const char *what, const stat *s, double limit) {
    int bad = s->max > limit;
    printf("%-28s max %6.2f ulp (x = %-13.6g) mean %.3f ulp%s\n", what, s->max, s->at,
           s->sum / (double)s->n, bad ? "   FAIL" : "");
    failures += bad;
}

static void check(int cond, const char *what) {
    if (!cond) { printf("FAIL: %s\n", what); failures++; }
}

/* Inputs: a dense sweep of [-lim, lim] plus geometric sweeps down to tiny magnitudes. */
static long fill(double *x, long n, double lim) {
    long k = 0, half = n / 2;
    for (long i = 0; i < half; i++) x[k++] = -lim + 2 * lim * (double)i / (double)(half - 1);
    for (long i = 0; k < n; i++) {
        double m = pow(10.0, -30.0 + 31.5 * (double)i / (double)(n - half - 1) * 2);
        if (m > lim) m = lim;
        x[k++] = (i & 1) ? -m : m;
    }
    return k;
}

int main(void) {
    const long n = 1 << 19;
    double *xd = malloc(sizeof(double) * 4 * n), *yd = malloc(sizeof(double) * 4 * n);
    float *xf = malloc(sizeof(float) * 4 * n), *yf = malloc(sizeof(float) * 4 * n);
    if (!xd || !yd || !xf || !yf) return 2;
    /* every copy up to the best the CPU has (rf_isa): generic, avx2, avx512; then the vector
     * forms (float tanh, sigmoid and gates only) of each width the CPU and the build have */
    for (int copy = RF_ISA_GENERIC; copy <= COPY_V16; copy++) {
        const int vw = copy == COPY_V8 ? 8 : copy == COPY_V16 ? 16 : 0; /* vector forms' width */
        if (copy > rf_isa() && !vw) continue;
        if (vw && rf_isa() < (vw == 8 ? RF_ISA_AVX2 : RF_ISA_AVX512)) continue;
#ifndef RF_HAVE_AVX2
        if (vw) continue;
#endif
#ifndef RF_HAVE_AVX512
        if (vw == 16) continue;
#endif
        const char *tag = vw == 8 ? "avx2 vectors"
                          : vw == 16 ? "avx512 vectors"
                          : copy == RF_ISA_AVX512 ? "avx512"
                          : copy == RF_ISA_AVX2   ? "avx2"
                                                  : "generic";
        char name[64];
        /* float tanh and sigmoid */
        fill(xd, n, 20.0);
        for (long k = 0; k < n; k++) xf[k] = (float)xd[k];
        stat st = {0}, ss = {0};
        if (vw) VEC(vw, tanh32, xf, yf, n);
        else tanh32(copy, xf, yf, n);
        for (long k = 0; k < n; k++) {
            acc(&st, ulp_err(yf[k], ref_tanh(xf[k]), 24, -126), xf[k]);
            check(fabsf(yf[k]) <= 1.0f, "float |tanh| <= 1");
        }
        snprintf(name, sizeof name, "float tanh (%s)", tag);
        report(name, &st, MAX_ULP_F32);
        if (vw) VEC(vw, sig32, xf, yf, n);
        else sig32(copy, xf, yf, n);
        for (long k = 0; k < n; k++) {
            acc(&ss, ulp_err(yf[k], ref_sig(xf[k]), 24, -126), xf[k]);
            check(yf[k] >= 0.0f && yf[k] <= 1.0f, "float sigmoid in [0, 1]");
        }
        snprintf(name, sizeof name, "float sigmoid (%s)", tag);
        report(name, &ss, MAX_ULP_F32);
        if (!vw) { /* the double forms have no vector copy of their own */
            /* double tanh and sigmoid */
            fill(xd, n, 40.0);
            stat dt = {0}, ds = {0};
            tanh64(copy, xd, yd, n);
            for (long k = 0; k < n; k++)
                acc(&dt, ulp_err(yd[k], ref_tanh(xd[k]), 53, -1022), xd[k]);
            sig64(copy, xd, yd, n);
            for (long k = 0; k < n; k++)
                acc(&ds, ulp_err(yd[k], ref_sig(xd[k]), 53, -1022), xd[k]);
            snprintf(name, sizeof name, "double tanh (%s)", tag);
            report(name, &dt, MAX_ULP_F64);
            snprintf(name, sizeof name, "double sigmoid (%s)", tag);
            report(name, &ds, MAX_ULP_F64);
        }
        /* the LSTM gates: four shuffled sweeps */
        fill(xd, n, 20.0);
        for (int g = 0; g < 4; g++)
            for (long k = 0; k < n; k++) {
                xd[g * n + k] = xd[(k * (2 * g + 1) + 7919 * g) % n];
                xf[g * n + k] = (float)xd[g * n + k];
            }
        stat gf[4] = {{0}}, gd[4] = {{0}};
        if (vw) VEC(vw, gatesf32, xf, yf, n);
        else gatesf32(copy, xf, yf, n);
        if (!vw) gatesf64(copy, xd, yd, n);
        for (int g = 0; g < 4; g++)
            for (long k = 0; k < n; k++) {
                const long i = g * n + k;
                long double wf = g == 2 ? ref_tanh(xf[i]) : ref_sig(xf[i]);
                long double wd = g == 2 ? ref_tanh(xd[i]) : ref_sig(xd[i]);
                acc(&gf[g], ulp_err(yf[i], wf, 24, -126), xf[i]);
                if (!vw) acc(&gd[g], ulp_err(yd[i], wd, 53, -1022), xd[i]);
            }
        const char *gname[4] = {"i", "f", "g", "o"};
        for (int g = 0; g < 4; g++) {
            snprintf(name, sizeof name, "float LSTM %s (%s)", gname[g], tag);
            report(name, &gf[g], MAX_ULP_F32);
        }
        for (int g = 0; g < 4 && !vw; g++) {
            snprintf(name, sizeof name, "double LSTM %s (%s)", gname[g], tag);
            report(name, &gd[g], MAX_ULP_F64);
        }
        if (vw) { /* a masked tail (29 = 16 + 13 = 3 x 8 + 5 elements) against whole vectors
                   * (32): the same results, and the floats after the 29 untouched */
            enum { WHOLE = 32, PART = 29 };
            float tx[WHOLE], ty[WHOLE], tw[WHOLE], gx[4 * WHOLE], gw[4 * WHOLE], in[4 * PART];
            float out[4 * PART + 3], sy[WHOLE], sw[WHOLE];
            for (int k = 0; k < WHOLE; k++) { tx[k] = xf[k]; ty[k] = sy[k] = 12345.0f; }
            for (int k = 0; k < 4 * WHOLE; k++) gx[k] = xf[(k * 7919) % n];
            for (int q = 0; q < 4; q++) /* gate q's inputs: WHOLE apart in gx, PART apart in in */
                for (int k = 0; k < PART; k++) in[q * PART + k] = gx[q * WHOLE + k];
            for (int k = 0; k < 4 * PART + 3; k++) out[k] = 12345.0f;
            VEC(vw, tanh32, tx, tw, WHOLE);
            VEC(vw, tanh32, tx, ty, PART);
            VEC(vw, sig32, tx, sw, WHOLE);
            VEC(vw, sig32, tx, sy, PART);
            VEC(vw, gatesf32, gx, gw, WHOLE);
            VEC(vw, gatesf32, in, out, PART);
            int same = 1;
            for (int k = PART; k < WHOLE; k++) same &= ty[k] == 12345.0f && sy[k] == 12345.0f;
            for (int k = 4 * PART; k < 4 * PART + 3; k++) same &= out[k] == 12345.0f;
            for (int k = 0; k < PART; k++) {
                same &= ty[k] == tw[k] && sy[k] == sw[k];
                for (int q = 0; q < 4; q++) same &= out[q * PART + k] == gw[q * WHOLE + k];
            }
            snprintf(name, sizeof name, "the vector forms' masked tail (%s)", tag);
            check(same, name);
        }
        if (vw) { /* special values through the vector forms (the scalar tanh's and sigmoid's:
                   * below) */
            const float sx[8] = {1e30f, -1e30f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f, 0.0f};
            float sy[8], ssig[8], gy[4][8];
            const float want[8] = {1.0f, -1.0f, 1.0f, -1.0f, NAN, 1e-30f, -1e-30f, 0.0f};
            const float want_sig[8] = {1.0f, 0.0f, 1.0f, 0.0f, NAN, 0.5f, 0.5f, 0.5f};
            for (int k = 0; k < 8; k++) xf[k] = xf[n + k] = xf[2 * n + k] = xf[3 * n + k] = sx[k];
            VEC(vw, tanh32, sx, sy, 8);
            VEC(vw, sig32, sx, ssig, 8);
            VEC(vw, gatesf32, xf, yf, n);
            for (int g = 0; g < 4; g++)
                for (int k = 0; k < 8; k++) gy[g][k] = yf[g * n + k];
            for (int k = 0; k < 8; k++) {
                const float w = want[k], ws = want_sig[k];
                check(isnan(w) ? isnan(sy[k]) : sy[k] == w,
                      "float tanh special values (vector forms)");
                check(isnan(ws) ? isnan(ssig[k]) : ssig[k] == ws,
                      "float sigmoid special values (vector forms)");
                check(isnan(w) ? isnan(gy[2][k]) : gy[2][k] == w,
                      "LSTM g special values (vector forms)");
                for (int g = 0; g < 4; g += g == 1 ? 2 : 1) /* i, f, o */
                    check(isnan(ws) ? isnan(gy[g][k]) : gy[g][k] == ws,
                          "LSTM sigmoid gates special values (vector forms)");
            }
        }
    }
    /* special values: exact limits, NaN through */
    check(rf_tanh_f32(1e30f) == 1.0f && rf_tanh_f32(-1e30f) == -1.0f, "float tanh(+-1e30)");
    check(rf_tanh_f32(INFINITY) == 1.0f && rf_tanh_f32(-INFINITY) == -1.0f, "float tanh(+-inf)");
    check(rf_sigmoid_f32(1e30f) == 1.0f && rf_sigmoid_f32(-1e30f) == 0.0f, "float sigmoid(+-1e30)");
    check(rf_tanh_f64(1e30) == 1.0 && rf_tanh_f64(-1e30) == -1.0, "double tanh(+-1e30)");
    check(rf_sigmoid_f64(1e30) == 1.0 && rf_sigmoid_f64(-1e30) == 0.0, "double sigmoid(+-1e30)");
    check(isnan(rf_tanh_f32(NAN)) && isnan(rf_sigmoid_f32(NAN)), "float NaN passes through");
    check(isnan(rf_tanh_f64(NAN)) && isnan(rf_sigmoid_f64(NAN)), "double NaN passes through");
    check(rf_tanh_f32(1e-30f) == 1e-30f && rf_tanh_f64(1e-300) == 1e-300, "tanh(tiny) = tiny");
    printf("%d failure(s)\n", failures);
    free(xd); free(yd); free(xf); free(yf);
    return failures ? 1 : 0;
}
