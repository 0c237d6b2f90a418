/* rnn.c: Elman RNN sequence kernels (tanh or relu), forward and backward side by side, float and
 * double from one source (this file includes itself once per dtype; see lstm.c).
 *
 *   h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu
 *
 * The input projection of all steps is one product written straight into y; per step the
 * recurrent product accumulates into y[t] and one pass applies act in place (y is also all that
 * backward needs, so training saves nothing extra and inference needs no buffer at all). Backward:
 * per step the fused pass and dpre_t @ W_hh; dx, dW_ih, dW_hh after the loop as single GEMMs.
 * Small problems: one OpenMP region, a batch slice per thread (a thread that finishes first takes
 * rows from a slower one: rf_steal), or a share of the hidden units (see rf_common.h). Row
 * stealing against none (in-process A/B, float32, 2 threads, forward+backward, same bits):
 * (32,50,32,64) 0.980-0.994, (64,100,128,256) 0.997, (128,100,512,512) 0.95; inference
 * (32,50,32,64) 0.986 (the forward's threads rarely finish far apart: 0.025 hand-overs a call,
 * the backward's 1.8).
 */
#ifndef RF_REAL_DEFINED
#include "rf_common.h"

size_t rnnfast_rnn_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) {
    if (!rf_sizes_ok(T, B, I, H, 1)) return SIZE_MAX;
    int64_t n = RF_PAD + rf_pad(H); /* alignment slack, bias sum */
    if (rf_small(T, B, 1, H)) /* packed weights, the unit split's h_t and h_{t-1} and parts */
        n += rf_fwd_small_extra(I, H, H) + rf_pad(2 * B * H) + rf_units_extra(B, H, 1, 0);
    return (size_t)n;
}

size_t rnnfast_rnn_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) {
    if (!rf_sizes_ok(T, B, I, H, 1)) return SIZE_MAX;
    int64_t n = RF_PAD + rf_pad(T * B * H) + rf_pad(T * B); /* alignment slack, da, ones */
    if (rf_small(T, B, 1, H)) n += rf_wgrad_small_len(T, B, I, H, H) + rf_units_extra(B, H, 1, 1);
    return (size_t)n;
}

#define RF_REAL_DEFINED
#define real float
#define RF_F(n) n##_f32
#define RF_SFX f32
#define RF_IS_F32 1
#include "rnn.c"
#undef real
#undef RF_F
#undef RF_SFX
#undef RF_IS_F32
#define real double
#define RF_F(n) n##_f64
#define RF_SFX f64
#define RF_IS_F32 0
#include "rnn.c"
#undef real
#undef RF_F
#undef RF_SFX
#undef RF_IS_F32

#else /* ---- templated body ------------------------------------------------------------------ */
#include "rf_real.h"

typedef struct {
    real *y, *h;
    real *hb;        /* unit split: h_t at hb[t % 2] (B,H) */
    real *units;     /* unit split: the threads' parts */
    rf_steal *steal; /* batch split: row stealing, or NULL */
    const real *x, *bias, *WiT, *WhT, *w_hh;
    const int64_t *lengths;
    int64_t T, B, I, H;
    int relu;
} RF_F(rnn_fwd);

RF_INLINE void RF_F(rnn_row_forward)(int relu, int64_t H, real *restrict y,
                                     real *restrict h_b) {
    for (int64_t j = 0; j < H; j++) {
        real v = relu ? (y[j] < 0 ? 0 : y[j]) /* NaN passes through */ : RF_F(rf_tanh)(y[j]);
        y[j] = v; h_b[j] = v;
    }
}

/* y[t] rows [b0,b1), units [u0,u1) hold pre-activations; apply act in place and write h_t to h
 * (B rows of H; h_{t-1} is in hp, the same buffer in the batch split). */
RF_INLINE void RF_F(rnn_act_forward_body)(const RF_F(rnn_fwd) *a, int64_t t, int64_t b0,
                                          int64_t b1, int64_t u0, int64_t u1, real *h,
                                          const real *hp, int isa) {
    const int64_t B = a->B, H = a->H, n = u1 - u0;
    (void)isa; /* the double copies have no vector pass (RF_VROW is 0) */
    for (int64_t b = b0; b < b1; b++) {
        real *y_tb = a->y + (t * B + b) * H + u0, *h_b = h + b * H + u0;
        if (!rf_valid(a->lengths, t, b)) {
            memset(y_tb, 0, (size_t)n * sizeof(real));
            if (hp != h) memcpy(h_b, hp + b * H + u0, (size_t)n * sizeof(real));
            continue;
        }
        if (a->relu) RF_F(rnn_row_forward)(1, n, y_tb, h_b);
        else if (!RF_VROW(isa, rnn_row_tanh, (n, y_tb, h_b)))
            RF_F(rnn_row_forward)(0, n, y_tb, h_b);
    }
}
RF_MULTIVERSION_ISA(rnn_act_forward, (const RF_F(rnn_fwd) *a, int64_t t, int64_t b0,
                                      int64_t b1, int64_t u0, int64_t u1, real *h, const real *hp),
                    (a, t, b0, b1, u0, u1, h, hp))

/* The batch split's steps for rows [b0,b1) (h_n the running state), then, with a->steal, rows
 * taken from slower threads (rf_steal_take) until none are left. */
static void RF_F(rnn_forward_rows)(const RF_F(rnn_fwd) *a, int nt, int it, int64_t b0,
                                   int64_t b1) {
    const int64_t T = a->T, B = a->B, H = a->H;
    RF_STEAL_STEPS(a->steal, nt, it, T, t, b0, b1, {
        RF_F(rf_step_product)(a->y + t * B * H, H, a->h, B, H, a->WhT, 1, NULL, NULL, b0, b1, 0,
                              NULL, 1);
        RF_F(rnn_act_forward)(a, t, b0, b1, 0, H, a->h, a->h);
    })
}

/* Small path, thread `it` of `nt`: its batch slice's rows of the projection of all T steps into
 * y (rf_project_slice), then its batch slice for all T steps (rnn_forward_rows); no barrier. Or
 * (f, the unit split, as lstm_forward_small) its columns [u0,u1) of the projection, and per step
 * its columns of h_{t-1} W_hh^T and units of act, h_t into hb[t % 2], and the step sync. */
static void RF_F(rnn_forward_small)(const RF_F(rnn_fwd) *a, rf_step_flag *f, int nt, int it) {
    const int64_t T = a->T, B = a->B, I = a->I, H = a->H;
    rf_trial tr = rf_trial_init(f, nt, it, T, T);
    int64_t b0, b1, u0, u1;
    real *h;
    const real *hp;
    rf_share(tr.unit, B, H, RF_VEC, nt, it, &b0, &b1, &u0, &u1);
    RF_F(rf_project_share)(a->y, H, a->x, 0, T, B, I, a->WiT, 1, H, tr.unit, b0, b1, u0, u1,
                           a->bias);
    if (!tr.unit) {
        RF_F(rnn_forward_rows)(a, nt, it, b0, b1);
        return;
    }
    RF_F(rf_unit_part) parts[RF_UNITS_MAX_THREADS];
    RF_F(rf_pack_units)(&tr, parts, a->units, a->w_hh, NULL, B, H, 1);
    for (int64_t t = 0; t < T; t++) {
        if ((t = RF_F(rf_trial_step)(&tr, t, a->h, a->hb, B, H, &b0, &b1, &u0, &u1)) < 0) return;
        RF_F(rf_step_h)(a->h, a->hb, t, tr.t_unit, B, H, tr.unit, &h, &hp);
        RF_F(rf_step_product)(a->y + t * B * H, H, hp, B, H, a->WhT, 1, &tr, parts, b0, b1, 0,
                              NULL, 1);
        RF_F(rnn_act_forward)(a, t, b0, b1, u0, u1, h, hp);
        rf_trial_end(&tr, t);
    }
    if (tr.unit) /* h_n = h_T, as in lstm_forward_small */
        RF_F(rf_copy_units)(a->h, a->hb + ((T - 1) & 1) * B * H, B, H, u0, u1);
}

RF_DEFINE(RNNFAST_RNN_FORWARD, real, RF_SFX) {
    /* y (T,B,H), h_n (B,H), x (T,B,I), h0 (B,H), w_ih (H,I), w_hh (H,H), b_ih b_hh (H) */
    if (!y || !h_n || !x || !w_ih || !w_hh || !work || !RF_F(rf_blas_ok)(blas))
        return RNNFAST_ERR_NULL;
    if ((nonlinearity != RNNFAST_TANH && nonlinearity != RNNFAST_RELU) || n_threads < 1)
        return RNNFAST_ERR_ARG;
    if (!rf_sizes_ok(T, B, I, H, 1)) return RNNFAST_ERR_SIZE;
    if (!rf_lengths_ok(lengths, T, B)) return RNNFAST_ERR_LENGTHS;
    if (work_len < rnnfast_rnn_forward_workspace(T, B, I, H)) return RNNFAST_ERR_WORKSPACE;
    const int small = rf_small(T, B, 1, H);
    const int nu = small ? rf_unit_threads(n_threads, B, 1, H, RF_VEC, (int64_t)sizeof(real)) : 0;
    RF_F(rnn_fwd) a = {0};
    a.y = y; a.h = h_n; a.x = x; a.lengths = lengths; a.T = T; a.B = B; a.I = I; a.H = H;
    a.relu = nonlinearity == RNNFAST_RELU;
    real *w = RF_F(rf_align)(work);
    a.bias = RF_F(rf_bias_sum)(w, b_ih, b_hh, H) ? w : NULL;
    w += rf_pad(H);
    if (small) { /* the unit split packs W_hh^T in parts (rf_pack_units) */
        RF_F(rf_pack_fwd)(w, w_ih, nu ? NULL : w_hh, I, H, H, &a.WiT, &a.WhT);
        a.hb = w + rf_fwd_small_extra(I, H, H);
        a.units = a.hb + rf_pad(2 * B * H);
        a.w_hh = w_hh;
    }
    RF_F(rf_copy_or_zero)(h_n, h0, B * H);

    if (small) {
        if (nu) RF_RUN_UNITS(nu, RF_F(rnn_forward_small), &a);
        else /* at most one per sequence (rf_threads) */
            RF_RUN_STEALING(rf_threads(n_threads, B), a.steal, RF_F(rnn_forward_small), &a);
        return RNNFAST_OK;
    }
    RF_F(rf_fill_rows)(y, T * B, H, a.bias, H);
    /* y (T*B,H) += x (T*B,I) @ w_ih^T */
    RF_F(rf_gemm)(blas, 'N', 'T', T * B, H, I, 1, x, I, w_ih, I, 1, y, H);
    for (int64_t t = 0; t < T; t++) {
        /* y[t] (B,H) += h_{t-1} (B,H) @ w_hh^T */
        RF_F(rf_gemm)(blas, 'N', 'T', B, H, H, 1, h_n, H, w_hh, H, 1, y + t * B * H, H);
        RF_F(rnn_act_forward)(&a, t, 0, B, 0, H, h_n, h_n);
    }
    return RNNFAST_OK;
}

typedef struct {
    real *dh, *da;
    rf_steal *steal; /* batch split: row stealing, or NULL */
    real *units; /* unit split: the threads' parts of w_hh (rf_pack_units_bwd) */
    const real *dy, *y, *w_hh; /* w_hh: packed, the unit split's the caller's */
    const int64_t *lengths;
    int64_t T, B, H;
    int relu;
    int set; /* the batch split without lengths: the step product sets dh, the pass leaves it */
} RF_F(rnn_bwd);

/* forward: y[t] = act(a_t), so da_t = (dy_t + dh_t) * act'(a_t), written with y[t]; dh then
 * zeroed for the caller to add da[t] @ W_hh, unless the caller sets it (a->set) */
RF_INLINE void RF_F(rnn_row_backward)(int relu, int has_dy, int zero, int64_t H,
                                      const real *restrict y, const real *restrict dy,
                                      real *restrict dh, real *restrict da) {
    for (int64_t j = 0; j < H; j++) {
        real d_out = has_dy ? dy[j] + dh[j] : dh[j];
        da[j] = relu ? d_out * (y[j] > 0 ? (real)1 : (real)0) : d_out * (1 - y[j] * y[j]);
        if (zero) dh[j] = 0;
    }
}

RF_INLINE void RF_F(rnn_act_backward_body)(const RF_F(rnn_bwd) *a, int64_t t, int64_t b0,
                                           int64_t b1, int64_t u0, int64_t u1) {
    const int64_t B = a->B, H = a->H, n = u1 - u0;
    for (int64_t b = b0; b < b1; b++) {
        const int64_t tb = t * B + b;
        real *da = a->da + tb * H + u0, *dh = a->dh + b * H + u0;
        if (!rf_valid(a->lengths, t, b)) {
            memset(da, 0, (size_t)n * sizeof(real));
            continue;
        }
        const real *y = a->y + tb * H + u0, *dy = a->dy ? a->dy + tb * H + u0 : NULL;
        const int zero = !a->set;
        if (a->relu && dy) RF_F(rnn_row_backward)(1, 1, zero, n, y, dy, dh, da);
        else if (a->relu) RF_F(rnn_row_backward)(1, 0, zero, n, y, dy, dh, da);
        else if (dy) RF_F(rnn_row_backward)(0, 1, zero, n, y, dy, dh, da);
        else RF_F(rnn_row_backward)(0, 0, zero, n, y, dy, dh, da);
    }
}
RF_MULTIVERSION(rnn_act_backward, (const RF_F(rnn_bwd) *a, int64_t t, int64_t b0, int64_t b1,
                                   int64_t u0, int64_t u1), (a, t, b0, b1, u0, u1))

/* Small path, thread `it` of `nt`: its batch slice for all T steps, then rows taken from slower
 * threads (RF_STEAL_STEPS); or (f, the unit split) per step its units of the gate gradient, the
 * step sync, its units of dh += da[t] @ W_hh (after the trial, rf_trial_bwd_top, perhaps thread
 * 0 alone, the others skipping the steps); then, after the one barrier, dx, dW_ih, dW_hh and db
 * (rf_wgrad_after). */
static void RF_F(rnn_backward_small)(const RF_F(rnn_bwd) *a, const RF_F(rf_wgrad) *w,
                                     rf_step_flag *f, int nt, int it) {
    const int64_t B = a->B, H = a->H, T = a->T;
    rf_trial tr = rf_trial_init(f, nt, it, T, T);
    int64_t b0, b1, u0, u1;
    const int split = tr.unit; /* fixed for the call (the trial may end tr.unit) */
    rf_share(split, B, H, RF_VEC, nt, it, &b0, &b1, &u0, &u1);
    if (!split) /* the batch split, step index n = T - 1 - t */
        RF_STEAL_STEPS(a->steal, nt, it, T, n, b0, b1, {
            RF_F(rnn_act_backward)(a, T - 1 - n, b0, b1, 0, H);
            RF_F(rf_step_dh)(a->dh, a->da + (T - 1 - n) * B * H, a->w_hh, B, H, H, b0, b1,
                             a->set, &tr, NULL);
        })
    RF_F(rf_unit_part) parts[RF_UNITS_MAX_THREADS];
    if (split) RF_F(rf_pack_units_bwd)(&tr, parts, a->units, a->w_hh, H, 1);
    for (int64_t t = T - 1; t >= 0 && split; t--) {
        if (!rf_trial_bwd_top(&tr, T - 1 - t, B, H, RF_VEC, &b0, &b1, &u0, &u1)) continue;
        RF_F(rnn_act_backward)(a, t, b0, b1, u0, u1);
        /* dh += da[t] @ W_hh: this thread's rows, or its columns [u0,u1) */
        RF_F(rf_step_dh)(a->dh, a->da + t * B * H, a->w_hh, B, H, H, b0, b1, 0, &tr, parts);
        rf_trial_time(&tr, T - 1 - t);
    }
    rf_barrier(nt); /* every step's gate gradients are in */
    RF_F(rf_wgrad_after)(w, nt, it);
}

RF_DEFINE(RNNFAST_RNN_BACKWARD, real, RF_SFX) {
    /* dx (T,B,I), dh0 (B,H), dw_ih (H,I), dw_hh (H,H), db_ih db_hh (H); dy (T,B,H), dh_n (B,H);
     * y (T,B,H), x (T,B,I), h0 (B,H) */
    if (!dx || !dh0 || !dw_ih || !dw_hh || !y || !x || !w_ih || !w_hh || !work ||
        !RF_F(rf_blas_ok)(blas))
        return RNNFAST_ERR_NULL;
    if ((nonlinearity != RNNFAST_TANH && nonlinearity != RNNFAST_RELU) || n_threads < 1)
        return RNNFAST_ERR_ARG;
    if (!rf_sizes_ok(T, B, I, H, 1)) return RNNFAST_ERR_SIZE;
    if (!rf_lengths_ok(lengths, T, B)) return RNNFAST_ERR_LENGTHS;
    if (work_len < rnnfast_rnn_backward_workspace(T, B, I, H)) return RNNFAST_ERR_WORKSPACE;
    const int64_t TB = T * B;
    real *w0 = RF_F(rf_align)(work);
    RF_F(rnn_bwd) a = {0};
    a.dh = dh0; a.da = w0; a.dy = dy; a.y = y; a.w_hh = w_hh; a.lengths = lengths;
    a.T = T; a.B = B; a.H = H; a.relu = nonlinearity == RNNFAST_RELU;
    RF_F(rf_wgrad) w = {dx, dw_ih, dw_hh, db_ih, db_hh, a.da, a.da, x, h0, y, w_ih,
                        w0 + rf_pad(TB * H), T, B, I, H, H};
    RF_F(rf_copy_or_zero)(dh0, dh_n, B * H);

    if (rf_small(T, B, 1, H)) {
        rf_pieces pieces;
        const int nu = rf_unit_threads(n_threads, B, 1, H, RF_VEC, (int64_t)sizeof(real));
        RF_F(rf_wgrad_small_init)(&w, w_ih, nu ? NULL : w_hh, &a.w_hh, &pieces);
        a.units = w.dbp + 2 * rf_pad(B * H); /* after rf_wgrad_small_len */
        /* Rows past their sequence's end keep dh as it is (rnn_act_backward): with lengths,
         * the pass zeroes dh and the product adds. Setting instead, (32,50,32,64) forward+
         * backward, in-process A/B, 2 threads, same bits: 0.964-0.983 (double 0.983); one
         * thread 1.003; (64,100,128,256) 1.00. */
        a.set = !nu && !lengths;
        if (nu) RF_RUN_UNITS(nu, RF_F(rnn_backward_small), &a, &w);
        else /* the weight phase splits I+H rows */
            RF_RUN_STEALING(rf_threads(n_threads, I + H), a.steal, RF_F(rnn_backward_small), &a,
                            &w);
        return RNNFAST_OK;
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        RF_F(rnn_act_backward)(&a, t, 0, B, 0, H);
        RF_F(rf_gemm)(blas, 'N', 'N', B, H, H, 1, a.da + t * B * H, H, w_hh, H, 1, dh0, H);
    }
    RF_F(rf_wgrad_blas)(blas, &w);
    return RNNFAST_OK;
}

#endif
