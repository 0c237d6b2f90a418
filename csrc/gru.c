/* gru.c: GRU sequence kernels, forward and backward side by side, float and double from one
 * source (this file includes itself once per dtype; see lstm.c).
 *
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr); z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h_t = (1-z)*n + z*h_{t-1}
 *
 * The reset gate multiplies the hidden product (PyTorch/cuDNN), so the per-step product
 * hh = W_hh h_{t-1} + b_hh goes to its own (B,3H) buffer rather than into the projection; one
 * fused pass then combines it with the precomputed input projection, keeps r, z, n and
 * hn = W_hn h + b_hn for backward, and writes y[t]. Backward keeps the hidden-side gate gradient
 * (its n part is r*dn) in its own buffer so dW_hh stays one GEMM. Small problems: one OpenMP
 * region, a batch slice per thread, or a share of the hidden units (see rf_common.h).
 */
#ifndef RF_REAL_DEFINED
#include "rf_common.h"

size_t rnnfast_gru_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H, int training) {
    const int64_t G = 3, GH = G * H;
    if (!rf_sizes_ok(T, B, I, H, G)) return SIZE_MAX;
    int64_t n = RF_PAD + rf_pad(B * GH); /* alignment slack, hh */
    if (rf_small(T, B, G, H)) /* packed weights, the unit split's h_t and h_{t-1} and parts */
        n += rf_fwd_small_extra(I, H, GH) + rf_pad(2 * B * H) + rf_units_extra(B, H, G, 0);
    if (!training) n += rf_pad(rf_chunk_steps(T, B, 3, H) * B * GH);  /* projection chunk */
    return (size_t)n;
}

size_t rnnfast_gru_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) {
    const int64_t G = 3, GH = G * H;
    if (!rf_sizes_ok(T, B, I, H, G)) return SIZE_MAX;
    /* alignment slack, da_in, da_hh, ones */
    int64_t n = RF_PAD + 2 * rf_pad(T * B * GH) + rf_pad(T * B);
    if (rf_small(T, B, G, H)) n += rf_wgrad_small_len(T, B, I, H, GH) + rf_units_extra(B, H, G, 1);
    return (size_t)n;
}

#define RF_REAL_DEFINED
#define real float
#define RF_F(n) n##_f32
#define RF_SFX f32
#define RF_IS_F32 1
#include "gru.c"
#undef real
#undef RF_F
#undef RF_SFX
#undef RF_IS_F32
#define real double
#define RF_F(n) n##_f64
#define RF_SFX f64
#define RF_IS_F32 0
#include "gru.c"
#undef real
#undef RF_F
#undef RF_SFX
#undef RF_IS_F32

#else /* ---- templated body ------------------------------------------------------------------ */
#include "rf_real.h"

typedef struct {
    real *y, *h, *gates, *hn_all, *chunk, *hh;
    real *hb;    /* unit split: h_t at hb[t % 2] (B,H) */
    real *units; /* unit split: the threads' parts */
    const real *x, *b_ih, *b_hh, *WiT, *WhT, *w_hh;
    const int64_t *lengths;
    int64_t T, B, I, H, Tc;
} RF_F(gru_fwd);

/* One row of the fused pass: xr, xz, xn = W_i x + b_i (r, z, n parts), hr, hz, hn = W_h h + b_h.
 * r and z replace xr and xz (the projection chunk is scratch in inference); when training
 * (save != 0) n replaces xn too and hn is copied to hn_save. */
RF_INLINE void RF_F(gru_row_forward)(int save, int64_t H, real *restrict xr, real *restrict xz,
                                     real *restrict xn, const real *restrict hr,
                                     const real *restrict hz, const real *restrict hn,
                                     real *restrict hn_save, real *restrict y,
                                     real *restrict h_b) {
    /* two short loops (r and z, then n and h) rather than one long chain per element: see
     * lstm_row_forward */
    for (int64_t j = 0; j < H; j++) {
        xr[j] = RF_F(rf_sigmoid)(xr[j] + hr[j]);
        xz[j] = RF_F(rf_sigmoid)(xz[j] + hz[j]);
    }
    for (int64_t j = 0; j < H; j++) {
        real r = xr[j], z = xz[j];
        real n = RF_F(rf_tanh)(xn[j] + r * hn[j]);
        real h = (1 - z) * n + z * h_b[j];
        if (save) { xn[j] = n; hn_save[j] = hn[j]; } /* for backward, with r and z */
        y[j] = h; h_b[j] = h;
    }
}

/* Rows [b0,b1), units [u0,u1) of step t: P_t (B,3H) holds W_ih x_t + b_ih; W_hh h + b_hh for
 * row b's unit u0 is at hh0 + b * ldh, each gate's gs after the last's (a->hh + u0, 3H, H; the
 * unit split's rows, rf_step_product). h_t goes to h (B rows of H), h_{t-1} is in hp (the same
 * buffer in the batch split; else copied to h first, and updated there in place). */
RF_INLINE void RF_F(gru_gates_forward_body)(const RF_F(gru_fwd) *a, int64_t t, real *P_t,
                                            const real *hh0, int64_t ldh, int64_t gs, int64_t b0,
                                            int64_t b1, int64_t u0, int64_t u1, real *h,
                                            const real *hp, int isa) {
    const int64_t B = a->B, H = a->H, GH = 3 * H, n = u1 - u0;
    const int training = a->gates != NULL;
    (void)isa; /* the double copies have no vector pass (RF_VROW is 0) */
    for (int64_t b = b0; b < b1; b++) {
        real *xp = P_t + b * GH + u0;
        const real *hh = hh0 + b * ldh;
        real *y_tb = a->y + (t * B + b) * H + u0, *h_b = h + b * H + u0;
        real *hn_tb = training ? a->hn_all + (t * B + b) * H + u0 : NULL;
        if (hp != h) memcpy(h_b, hp + b * H + u0, (size_t)n * sizeof(real));
        if (!rf_valid(a->lengths, t, b)) {
            memset(y_tb, 0, (size_t)n * sizeof(real));
            if (training) memset(hn_tb, 0, (size_t)n * sizeof(real));
            continue;
        }
        if (RF_VROW(isa, gru_row_forward, (training, n, xp, xp + H, xp + 2 * H, hh, hh + gs,
                                           hh + 2 * gs, hn_tb, y_tb, h_b)))
            continue;
        if (training)
            RF_F(gru_row_forward)(1, n, xp, xp + H, xp + 2 * H, hh, hh + gs, hh + 2 * gs, hn_tb,
                                  y_tb, h_b);
        else
            RF_F(gru_row_forward)(0, n, xp, xp + H, xp + 2 * H, hh, hh + gs, hh + 2 * gs, NULL,
                                  y_tb, h_b);
    }
}
RF_MULTIVERSION_ISA(gru_gates_forward, (const RF_F(gru_fwd) *a, int64_t t, real *P_t,
                                        const real *hh0, int64_t ldh, int64_t gs, int64_t b0,
                                        int64_t b1, int64_t u0, int64_t u1, real *h,
                                        const real *hp),
                    (a, t, P_t, hh0, ldh, gs, b0, b1, u0, u1, h, hp))

static real *RF_F(gru_chunk)(const RF_F(gru_fwd) *a, int64_t t0) {
    return a->gates ? a->gates + t0 * a->B * 3 * a->H : a->chunk;
}

/* Small path, thread `it` of `nt`, chunk by chunk, as lstm_forward_small (batch split, or with
 * f the unit split: each gate's columns [u0,u1) of the projection and of hh). */
static void RF_F(gru_forward_small)(const RF_F(gru_fwd) *a, rf_step_flag *f, int nt, int it) {
    const int64_t B = a->B, I = a->I, H = a->H, GH = 3 * H, T = a->T;
    rf_trial tr = rf_trial_init(f, nt, it, T, a->Tc);
    int64_t b0, b1, u0, u1;
    rf_share(tr.unit, B, H, RF_VEC, nt, it, &b0, &b1, &u0, &u1);
    RF_F(rf_unit_part) parts[RF_UNITS_MAX_THREADS];
    if (tr.unit) RF_F(rf_pack_units)(&tr, parts, a->units, a->w_hh, a->b_hh, B, H, 3);
    for (int64_t t0 = 0; t0 < T; t0 += a->Tc) {
        const int64_t tc = a->Tc < T - t0 ? a->Tc : T - t0;
        real *P = RF_F(gru_chunk)(a, t0), *h;
        const real *hp;
        RF_F(rf_project_share)(P, GH, a->x, t0, t0 + tc, B, I, a->WiT, 3, H, tr.unit, b0, b1, u0,
                               u1, a->b_ih);
        for (int64_t t = t0; t < t0 + tc; t++) {
            if ((t = RF_F(rf_trial_step)(&tr, t, a->h, a->hb, B, H, &b0, &b1, &u0, &u1)) < 0)
                return;
            RF_F(rf_step_h)(a->h, a->hb, t, tr.t_unit, B, H, tr.unit, &h, &hp);
            /* hh = b_hh + h_{t-1} W_hh^T: this thread's rows, or each gate's columns [u0,u1),
             * which stay in its part's rows for the gates */
            RF_F(rf_step_product)(a->hh, GH, hp, B, H, a->WhT, 3, &tr, parts, b0, b1, 1,
                                  a->b_hh, 0);
            real *P_t = P + (t - t0) * B * GH;
            if (f) {
                int s0, s1;
                rf_trial_shares(&tr, &s0, &s1);
                for (int s = s0; s < s1; s++)
                    RF_F(gru_gates_forward)(a, t, P_t, parts[s].rows, 3 * parts[s].np,
                                            parts[s].np, b0, b1, parts[s].u0, parts[s].u1, h,
                                            hp);
            } else {
                RF_F(gru_gates_forward)(a, t, P_t, a->hh + u0, GH, H, b0, b1, u0, u1, h, hp);
            }
            rf_trial_end(&tr, t);
        }
    }
    if (tr.unit) /* h_n = h_T, as in lstm_forward_small */
        RF_F(rf_copy_units)(a->h, a->hb + ((T - 1) & 1) * B * H, B, H, u0, u1);
}

RF_DEFINE(RNNFAST_GRU_FORWARD, real, RF_SFX) {
    /* y (T,B,H), h_n (B,H), gates (T,B,3H), hn_all (T,B,H), x (T,B,I), h0 (B,H),
     * w_ih (3H,I), w_hh (3H,H), b_ih b_hh (3H) */
    if (!y || !h_n || !x || !w_ih || !w_hh || !work || !RF_F(rf_blas_ok)(blas))
        return RNNFAST_ERR_NULL;
    if ((gates == NULL) != (hn_all == NULL) || n_threads < 1) return RNNFAST_ERR_ARG;
    if (!rf_sizes_ok(T, B, I, H, 3)) return RNNFAST_ERR_SIZE;
    if (!rf_lengths_ok(lengths, T, B)) return RNNFAST_ERR_LENGTHS;
    const int training = gates != NULL;
    if (work_len < rnnfast_gru_forward_workspace(T, B, I, H, training))
        return RNNFAST_ERR_WORKSPACE;
    const int64_t GH = 3 * H;
    const int small = rf_small(T, B, 3, H);
    const int nu = small ? rf_unit_threads(n_threads, B, 3, H, RF_VEC, (int64_t)sizeof(real)) : 0;
    RF_F(gru_fwd) a = {0};
    a.y = y; a.h = h_n; a.gates = gates; a.hn_all = hn_all; a.x = x; a.b_ih = b_ih;
    a.b_hh = b_hh; a.lengths = lengths; a.T = T; a.B = B; a.I = I; a.H = H;
    real *w = RF_F(rf_align)(work);
    a.hh = w;
    w += rf_pad(B * GH);
    if (small) { /* the unit split packs W_hh^T in parts (rf_pack_units) */
        RF_F(rf_pack_fwd)(w, w_ih, nu ? NULL : w_hh, I, H, GH, &a.WiT, &a.WhT);
        w += rf_fwd_small_extra(I, H, GH);
        a.hb = w;
        w += rf_pad(2 * B * H);
        a.units = w;
        a.w_hh = w_hh;
        w += rf_units_extra(B, H, 3, 0);
    }
    a.Tc = training ? T : rf_chunk_steps(T, B, 3, H);
    a.chunk = training ? NULL : w;
    RF_F(rf_copy_or_zero)(h_n, h0, B * H);

    if (small) {
        if (nu) RF_RUN_UNITS(nu, RF_F(gru_forward_small), &a);
        else RF_RUN_THREADS(rf_fwd_threads(n_threads, T, B, training), RF_F(gru_forward_small),
                            &a, NULL);
        return RNNFAST_OK;
    }
    for (int64_t t0 = 0; t0 < T; t0 += a.Tc) {
        const int64_t tc = a.Tc < T - t0 ? a.Tc : T - t0;
        real *P = RF_F(gru_chunk)(&a, t0);
        RF_F(rf_fill_rows)(P, tc * B, GH, b_ih, GH);
        /* P (tc*B,3H) += x (tc*B,I) @ w_ih^T */
        RF_F(rf_gemm)(blas, 'N', 'T', tc * B, GH, I, 1, x + t0 * B * I, I, w_ih, I, 1, P, GH);
        for (int64_t t = t0; t < t0 + tc; t++) {
            /* hh (B,3H) = b_hh + h_{t-1} (B,H) @ w_hh^T */
            RF_F(rf_fill_rows)(a.hh, B, GH, b_hh, GH);
            RF_F(rf_gemm)(blas, 'N', 'T', B, GH, H, 1, h_n, H, w_hh, H, 1, a.hh, GH);
            RF_F(gru_gates_forward)(&a, t, P + (t - t0) * B * GH, a.hh, GH, H, 0, B, 0, H, h_n,
                                    h_n);
        }
    }
    return RNNFAST_OK;
}

typedef struct {
    real *dh, *da_in, *da_hh;
    real *units; /* unit split: the threads' parts of w_hh (rf_pack_units_bwd) */
    const real *dy, *gates, *hn_all, *y, *h0;
    const real *w_hh; /* packed; the unit split's: the caller's */
    const int64_t *lengths;
    int64_t T, B, H;
} RF_F(gru_bwd);

/* One row of the gate gradients; without has_hp / has_dy, h_{t-1} / dy are zeros. */
RF_INLINE void RF_F(gru_row_backward)(int has_hp, int has_dy, int64_t H, const real *restrict gr,
                                      const real *restrict gz, const real *restrict gn,
                                      const real *restrict hn, const real *restrict h_prev,
                                      const real *restrict dy, real *restrict dh,
                                      real *restrict di_r, real *restrict di_z,
                                      real *restrict di_n, real *restrict dhh_r,
                                      real *restrict dhh_z, real *restrict dhh_n) {
    for (int64_t j = 0; j < H; j++) {
        real r = gr[j], z = gz[j], n = gn[j], hp = has_hp ? h_prev[j] : 0;
        real d_h = has_dy ? dy[j] + dh[j] : dh[j];
        /* forward: h_t = (1-z)*n + z*h_{t-1}; n = tanh(a_n + r*hn); r, z = sigmoid(.) */
        real d_an = d_h * (1 - z) * (1 - n * n);
        real d_r = d_an * hn[j] * r * (1 - r);
        real d_z = d_h * (hp - n) * z * (1 - z);
        di_r[j] = d_r; dhh_r[j] = d_r;
        di_z[j] = d_z; dhh_z[j] = d_z;
        di_n[j] = d_an;
        dhh_n[j] = d_an * r; /* the hidden-side n gradient: its own buffer keeps dW_hh one GEMM */
        dh[j] = d_h * z;     /* the caller adds da_hh[t] @ W_hh */
    }
}

RF_INLINE void RF_F(gru_gates_backward_body)(const RF_F(gru_bwd) *a, int64_t t, int64_t b0,
                                             int64_t b1, int64_t u0, int64_t u1) {
    const int64_t B = a->B, H = a->H, GH = 3 * H, n = u1 - u0;
    for (int64_t b = b0; b < b1; b++) {
        const int64_t tb = t * B + b;
        real *di = a->da_in + tb * GH + u0, *dhh = a->da_hh + tb * GH + u0;
        if (!rf_valid(a->lengths, t, b)) {
            for (int64_t g = 0; g < 3; g++) {
                memset(di + g * H, 0, (size_t)n * sizeof(real));
                memset(dhh + g * H, 0, (size_t)n * sizeof(real));
            }
            continue;
        }
        const real *g = a->gates + tb * GH + u0, *hn = a->hn_all + tb * H + u0;
        const real *h_prev = t > 0 ? a->y + (tb - B) * H + u0
                                   : (a->h0 ? a->h0 + b * H + u0 : NULL);
        const real *dy = a->dy ? a->dy + tb * H + u0 : NULL;
#define RF_ROW(has_hp, has_dy)                                                                  \
    RF_F(gru_row_backward)(has_hp, has_dy, n, g, g + H, g + 2 * H, hn, h_prev, dy,               \
                           a->dh + b * H + u0, di, di + H, di + 2 * H, dhh, dhh + H, dhh + 2 * H)
        if (h_prev && dy) RF_ROW(1, 1);
        else if (h_prev) RF_ROW(1, 0);
        else if (dy) RF_ROW(0, 1);
        else RF_ROW(0, 0);
#undef RF_ROW
    }
}
RF_MULTIVERSION(gru_gates_backward, (const RF_F(gru_bwd) *a, int64_t t, int64_t b0, int64_t b1,
                                     int64_t u0, int64_t u1), (a, t, b0, b1, u0, u1))

/* Small path, thread `it` of `nt`: its batch slice for all T steps, or (f, the unit split) per
 * step its units of the gate gradients, the step sync, its units of dh += da_hh[t] @ W_hh
 * (after the trial, rf_trial_bwd_top, perhaps thread 0 alone, the others skipping the steps);
 * then, after the one barrier, dx, dW_ih, dW_hh and db (rf_wgrad_after). */
static void RF_F(gru_backward_small)(const RF_F(gru_bwd) *a, const RF_F(rf_wgrad) *w,
                                     rf_step_flag *f, int nt, int it) {
    const int64_t B = a->B, H = a->H, GH = 3 * H, T = a->T;
    rf_trial tr = rf_trial_init(f, nt, it, T, T);
    int64_t b0, b1, u0, u1;
    rf_share(tr.unit, B, H, RF_VEC, nt, it, &b0, &b1, &u0, &u1);
    RF_F(rf_unit_part) parts[RF_UNITS_MAX_THREADS];
    if (tr.unit) RF_F(rf_pack_units_bwd)(&tr, parts, a->units, a->w_hh, H, 3);
    for (int64_t t = T - 1; t >= 0; t--) {
        if (!rf_trial_bwd_top(&tr, T - 1 - t, B, H, RF_VEC, &b0, &b1, &u0, &u1)) continue;
        RF_F(gru_gates_backward)(a, t, b0, b1, u0, u1);
        /* dh += da_hh[t] (.,3H) @ w_hh (3H,H): this thread's rows, or its columns [u0,u1) */
        RF_F(rf_step_dh)(a->dh, a->da_hh + t * B * GH, a->w_hh, B, H, GH, b0, b1, 0, &tr, parts);
        rf_trial_time(&tr, T - 1 - t);
    }
    rf_barrier(nt); /* every step's gate gradients are in */
    RF_F(rf_wgrad_after)(w, nt, it);
}

RF_DEFINE(RNNFAST_GRU_BACKWARD, real, RF_SFX) {
    /* dx (T,B,I), dh0 (B,H), dw_ih (3H,I), dw_hh (3H,H), db_ih db_hh (3H); dy (T,B,H),
     * dh_n (B,H); gates (T,B,3H), hn_all y (T,B,H), x (T,B,I), h0 (B,H) */
    if (!dx || !dh0 || !dw_ih || !dw_hh || !gates || !hn_all || !y || !x || !w_ih || !w_hh ||
        !work || !RF_F(rf_blas_ok)(blas))
        return RNNFAST_ERR_NULL;
    if (n_threads < 1) return RNNFAST_ERR_ARG;
    if (!rf_sizes_ok(T, B, I, H, 3)) return RNNFAST_ERR_SIZE;
    if (!rf_lengths_ok(lengths, T, B)) return RNNFAST_ERR_LENGTHS;
    if (work_len < rnnfast_gru_backward_workspace(T, B, I, H)) return RNNFAST_ERR_WORKSPACE;
    const int64_t GH = 3 * H, TB = T * B;
    real *w0 = RF_F(rf_align)(work);
    RF_F(gru_bwd) a = {0};
    a.dh = dh0; a.da_in = w0; a.da_hh = w0 + rf_pad(TB * GH); a.dy = dy; a.gates = gates;
    a.hn_all = hn_all; a.y = y; a.h0 = h0; a.w_hh = w_hh; a.lengths = lengths;
    a.T = T; a.B = B; a.H = H;
    RF_F(rf_wgrad) w = {dx, dw_ih, dw_hh, db_ih, db_hh, a.da_in, a.da_hh, x, h0, y, w_ih,
                        w0 + 2 * rf_pad(TB * GH), T, B, I, H, GH};
    RF_F(rf_copy_or_zero)(dh0, dh_n, B * H);

    if (rf_small(T, B, 3, H)) {
        rf_pieces pieces;
        const int nu = rf_unit_threads(n_threads, B, 3, H, RF_VEC, (int64_t)sizeof(real));
        RF_F(rf_wgrad_small_init)(&w, w_ih, nu ? NULL : w_hh, &a.w_hh, &pieces);
        a.units = w.dbp + 2 * rf_pad(B * GH); /* after rf_wgrad_small_len */
        if (nu) RF_RUN_UNITS(nu, RF_F(gru_backward_small), &a, &w);
        else /* the weight phase splits I+H rows */
            RF_RUN_THREADS(rf_threads(n_threads, I + H), RF_F(gru_backward_small), &a, &w, NULL);
        return RNNFAST_OK;
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        RF_F(gru_gates_backward)(&a, t, 0, B, 0, H);
        /* dh (B,H) += da_hh[t] (B,3H) @ w_hh (3H,H) */
        RF_F(rf_gemm)(blas, 'N', 'N', B, H, GH, 1, a.da_hh + t * B * GH, GH, w_hh, H, 1, dh0, H);
    }
    RF_F(rf_wgrad_blas)(blas, &w);
    return RNNFAST_OK;
}

#endif
