/* lstm.c: LSTM sequence kernels, forward and backward side by side, float and double.
 *
 * One source for both dtypes: the bottom half of this file is the templated body; the top half
 * includes this same file twice, once with real = float (names _f32) and once with double (_f64).
 *
 *   (i, f, g, o) = split(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); i, f, o = sigmoid; g = tanh;
 *   c_t = f*c_{t-1} + i*g; h_t = o*tanh(c_t)
 *
 * Speed architecture (DESIGN.md): the input projection of all steps is one product before the
 * time loop (in chunks of steps in inference, to keep memory O(B*H)); per step one product
 * accumulates W_hh h_{t-1} into that step's slice of the projection, then one fused pass
 * activates the gates in place (kept for backward), updates c and h, and writes y[t]. Backward
 * runs the fused gate-gradient pass and dgates_t @ W_hh per step, then dx, dW_ih and dW_hh as
 * single GEMMs over all steps after the loop. Small problems run the whole time loop inside one
 * OpenMP region, each thread owning a batch slice, or with fewer sequences than threads a share of
 * the hidden units (rf_small, rf_unit_threads in rf_common.h); large ones call the
 * BLAS per step from the calling thread. What it is not: a general LSTM (no peepholes, no
 * projection, no dropout); multi-layer and bidirectional stacks are built above, in Python.
 */
#ifndef RF_REAL_DEFINED
#include "rf_common.h"

size_t rnnfast_lstm_forward_workspace(int64_t T, int64_t B, int64_t I, int64_t H, int training) {
    const int64_t G = 4, GH = G * H;
    if (!rf_sizes_ok(T, B, I, H, G)) return SIZE_MAX;
    int64_t n = RF_PAD + rf_pad(GH); /* alignment slack, bias sum */
    if (rf_small(T, B, G, H)) /* packed weights, the unit split's h_t and h_{t-1} and parts */
        n += rf_fwd_small_extra(I, H, GH) + rf_pad(2 * B * H) + rf_units_extra(B, H, G, 0);
    if (!training) n += rf_pad(rf_chunk_steps(T, B, 4, H) * B * GH); /* projection chunk */
    return (size_t)n;
}

size_t rnnfast_lstm_backward_workspace(int64_t T, int64_t B, int64_t I, int64_t H) {
    const int64_t G = 4, GH = G * H;
    if (!rf_sizes_ok(T, B, I, H, G)) return SIZE_MAX;
    if (rf_small(T, B, G, H)) { /* alignment slack, one chunk's gate gradients, packed weights */
        /* and, when the rows are far apart, the chunk packed and its x^T, h_prev^T panels */
        /* and the unit split's parts */
        const int64_t rows = rf_bwd_chunk_steps(T, B, GH) * B;
        return (size_t)(RF_PAD + rf_pad(rows * GH) + rf_bwd_small_extra(I, H, GH) +
                        (rf_chunk_packed_used(GH, (int64_t)sizeof(double))
                             ? rf_pad(rf_packed_len(rows, GH)) + rf_pad((I + H) * rows) : 0) +
                        rf_units_extra(B, H, G, 1));
    }
    /* alignment slack, gate gradients, ones */
    return (size_t)(RF_PAD + rf_pad(T * B * GH) + rf_pad(T * B));
}

#define RF_REAL_DEFINED
#define real float
#define RF_F(n) n##_f32
#define RF_SFX f32
#define RF_IS_F32 1
#include "lstm.c"
#undef real
#undef RF_F
#undef RF_SFX
#undef RF_IS_F32
#define real double
#define RF_F(n) n##_f64
#define RF_SFX f64
#define RF_IS_F32 0
#include "lstm.c"
#undef real
#undef RF_F
#undef RF_SFX
#undef RF_IS_F32

#else /* ---- templated body: real, RF_F(), RF_IS_F32 ---------------------------------------- */
#include "rf_real.h"

typedef struct {
    real *y, *h, *c, *gates, *c_all, *chunk;   /* h, c: the running state, in h_n, c_n (the */
                                               /* unit split: h in hb, into h_n at the end) */
    real *hb;                                  /* unit split: h_t at hb[t % 2] (B,H) */
    real *units;                               /* unit split: the threads' parts */
    const real *x, *bias, *WiT, *WhT, *w_hh;   /* WiT (I,4H), WhT (H,4H): small path only */
    const int64_t *lengths;
    int64_t T, B, I, H, Tc;
} RF_F(lstm_fwd);

/* One row of the fused pass: activate the gates in place (P_t is the saved gates when training,
 * scratch in inference), update c (also into cs, the saved c_t, when cs != NULL) and h (also into
 * y). Two short loops rather than one long one: each iteration of a long one is a chain of
 * dependent exps and divisions (the gates, then tanh(c)) too long for the out-of-order window to
 * overlap iterations, so it ran at the latency of that chain; short loops run at throughput
 * (about 3x faster). */
RF_INLINE void RF_F(lstm_row_forward)(int save_c, int64_t H, real *restrict pi, real *restrict pf,
                                      real *restrict pg, real *restrict po, real *restrict c_b,
                                      real *restrict cs, real *restrict y, real *restrict h_b) {
    for (int64_t j = 0; j < H; j++) {
        real i, f, g, o;
        RF_F(rf_lstm_gates)(pi[j], pf[j], pg[j], po[j], &i, &f, &g, &o);
        real c = f * c_b[j] + i * g;
        pi[j] = i; pf[j] = f; pg[j] = g; po[j] = o;
        c_b[j] = c;
        if (save_c) cs[j] = c;
    }
    for (int64_t j = 0; j < H; j++) {
        real h = po[j] * RF_F(rf_tanh)(c_b[j]);
        y[j] = h; h_b[j] = h;
    }
}

/* The fused pass for rows [b0,b1), units [u0,u1) of step t. The pre-activations of row b's
 * unit u0 are at pre0 + b * ldp, each gate's gs after the last's (P_t + u0, 4H, H: the step's
 * rows of P; the unit split's rows, rf_step_product); the activated gates replace them (when
 * training, in P, the saved gates) and c_all[t] gets the cell state. h_t goes to h (B rows of
 * H), h_{t-1} is in hp (the same buffer in the batch split). Past a sequence's length: y = 0,
 * state frozen. */
RF_INLINE void RF_F(lstm_gates_forward_body)(const RF_F(lstm_fwd) *a, int64_t t, real *pre0,
                                             int64_t ldp, int64_t gs, int64_t b0, int64_t b1,
                                             int64_t u0, int64_t u1, real *h, const real *hp,
                                             int isa) {
    const int64_t B = a->B, H = a->H, n = u1 - u0;
    const int training = a->gates != NULL;
    (void)isa; /* the double copies have no vector pass (RF_VROW is 0) */
    for (int64_t b = b0; b < b1; b++) {
        real *pre = pre0 + b * ldp;
        real *y_tb = a->y + (t * B + b) * H + u0;
        real *h_b = h + b * H + u0, *c_b = a->c + b * H + u0;
        real *cs_tb = training ? a->c_all + (t * B + b) * H + u0 : NULL;
        if (!rf_valid(a->lengths, t, b)) {
            memset(y_tb, 0, (size_t)n * sizeof(real));
            if (training) memcpy(cs_tb, c_b, (size_t)n * sizeof(real));
            if (hp != h) memcpy(h_b, hp + b * H + u0, (size_t)n * sizeof(real));
            continue;
        }
        if (RF_VROW(isa, lstm_row_forward, (training, n, pre, pre + gs, pre + 2 * gs,
                                            pre + 3 * gs, c_b, cs_tb, y_tb, h_b)))
            continue;
        if (training)
            RF_F(lstm_row_forward)(1, n, pre, pre + gs, pre + 2 * gs, pre + 3 * gs, c_b, cs_tb,
                                   y_tb, h_b);
        else
            RF_F(lstm_row_forward)(0, n, pre, pre + gs, pre + 2 * gs, pre + 3 * gs, c_b, NULL,
                                   y_tb, h_b);
    }
}
RF_MULTIVERSION_ISA(lstm_gates_forward, (const RF_F(lstm_fwd) *a, int64_t t, real *pre0,
                                         int64_t ldp, int64_t gs, int64_t b0, int64_t b1,
                                         int64_t u0, int64_t u1, real *h, const real *hp),
                    (a, t, pre0, ldp, gs, b0, b1, u0, u1, h, hp))

/* Projection buffer of chunk starting at t0: the saved gates when training, else the chunk. */
static real *RF_F(lstm_chunk)(const RF_F(lstm_fwd) *a, int64_t t0) {
    return a->gates ? a->gates + t0 * a->B * 4 * a->H : a->chunk;
}

/* Small path, thread `it` of `nt`, chunk by chunk. Batch split (f == NULL): its batch slice's
 * rows of the chunk's input projection (rf_project_slice), then its batch slice for the chunk's
 * steps, with our own products; a thread reads only rows it wrote itself: no barrier. Unit split
 * (rf_unit_threads; f the step counters): its units [u0,u1) of every sequence, i.e. each gate's
 * columns [u0,u1) of the projection and of h_{t-1} W_hh^T, its units of the fused pass with h_t
 * into hb[t % 2], then the step sync, after which every thread reads the whole h_t; after a
 * trial (rf_trial) thread 0 may run the rest alone, as the batch split's one thread. */
static void RF_F(lstm_forward_small)(const RF_F(lstm_fwd) *a, rf_step_flag *f, int nt, int it) {
    const int64_t B = a->B, I = a->I, H = a->H, GH = 4 * H, T = a->T;
    const int training = a->gates != NULL;
    rf_trial tr = rf_trial_init(f, nt, it, T, a->Tc);
    int64_t b0, b1, u0, u1;
    rf_share(tr.unit, B, H, RF_VEC, nt, it, &b0, &b1, &u0, &u1);
    RF_F(rf_unit_part) parts[RF_UNITS_MAX_THREADS];
    if (tr.unit) RF_F(rf_pack_units)(&tr, parts, a->units, a->w_hh, NULL, B, H, 4);
    for (int64_t t0 = 0; t0 < T; t0 += a->Tc) {
        const int64_t tc = a->Tc < T - t0 ? a->Tc : T - t0;
        real *P = RF_F(lstm_chunk)(a, t0), *h;
        const real *hp;
        RF_F(rf_project_share)(P, GH, a->x, t0, t0 + tc, B, I, a->WiT, 4, H, tr.unit, b0, b1,
                               u0, u1, a->bias);
        for (int64_t t = t0; t < t0 + tc; t++) {
            if ((t = RF_F(rf_trial_step)(&tr, t, a->h, a->hb, B, H, &b0, &b1, &u0, &u1)) < 0)
                return;
            real *P_t = P + (t - t0) * B * GH;
            RF_F(rf_step_h)(a->h, a->hb, t, tr.t_unit, B, H, tr.unit, &h, &hp);
            /* P_t += h_{t-1} W_hh^T: this thread's rows, or each gate's columns [u0,u1), which
             * in inference stay in its part's rows for the gates (P is scratch then) */
            RF_F(rf_step_product)(P_t, GH, hp, B, H, a->WhT, 4, &tr, parts, b0, b1, 0, NULL,
                                  training);
            if (f && !training) {
                int s0, s1;
                rf_trial_shares(&tr, &s0, &s1);
                for (int s = s0; s < s1; s++)
                    RF_F(lstm_gates_forward)(a, t, parts[s].rows, 4 * parts[s].np, parts[s].np,
                                             b0, b1, parts[s].u0, parts[s].u1, h, hp);
            } else {
                RF_F(lstm_gates_forward)(a, t, P_t + u0, GH, H, b0, b1, u0, u1, h, hp);
            }
            rf_trial_end(&tr, t);
        }
    }
    /* h_n = h_T (every thread is past the split's first step t_unit, the last to read h_n) */
    if (tr.unit)
        RF_F(rf_copy_units)(a->h, a->hb + ((T - 1) & 1) * B * H, B, H, u0, u1);
}

RF_DEFINE(RNNFAST_LSTM_FORWARD, real, RF_SFX) {
    /* y (T,B,H), h_n c_n (B,H), gates (T,B,4H), c_all (T,B,H), x (T,B,I), h0 c0 (B,H),
     * w_ih (4H,I), w_hh (4H,H), b_ih b_hh (4H) */
    if (!y || !h_n || !c_n || !x || !w_ih || !w_hh || !work || !RF_F(rf_blas_ok)(blas))
        return RNNFAST_ERR_NULL;
    if ((gates == NULL) != (c_all == NULL) || n_threads < 1) return RNNFAST_ERR_ARG;
    if (!rf_sizes_ok(T, B, I, H, 4)) return RNNFAST_ERR_SIZE;
    if (!rf_lengths_ok(lengths, T, B)) return RNNFAST_ERR_LENGTHS;
    const int training = gates != NULL;
    if (work_len < rnnfast_lstm_forward_workspace(T, B, I, H, training))
        return RNNFAST_ERR_WORKSPACE;
    const int64_t GH = 4 * H;
    const int small = rf_small(T, B, 4, H);
    const int nu = small ? rf_unit_threads(n_threads, B, 4, H, RF_VEC, (int64_t)sizeof(real)) : 0;

    RF_F(lstm_fwd) a = {0};
    a.y = y; a.h = h_n; a.c = c_n; a.gates = gates; a.c_all = c_all;
    a.x = x; a.lengths = lengths; a.T = T; a.B = B; a.I = I; a.H = H;
    real *w = RF_F(rf_align)(work);
    a.bias = RF_F(rf_bias_sum)(w, b_ih, b_hh, GH) ? w : NULL;
    w += rf_pad(GH);
    if (small) { /* the unit split packs W_hh^T in parts (rf_pack_units) */
        RF_F(rf_pack_fwd)(w, w_ih, nu ? NULL : w_hh, I, H, GH, &a.WiT, &a.WhT);
        w += rf_fwd_small_extra(I, H, GH);
        a.hb = w;
        w += rf_pad(2 * B * H);
        a.units = w;
        a.w_hh = w_hh;
        w += rf_units_extra(B, H, 4, 0);
    }
    a.Tc = training ? T : rf_chunk_steps(T, B, 4, H);
    a.chunk = training ? NULL : w;
    RF_F(rf_copy_or_zero)(h_n, h0, B * H);
    RF_F(rf_copy_or_zero)(c_n, c0, B * H);

    if (small) {
        if (nu) RF_RUN_UNITS(nu, RF_F(lstm_forward_small), &a);
        else RF_RUN_THREADS(rf_fwd_threads(n_threads, T, B, training), RF_F(lstm_forward_small),
                            &a, NULL);
        return RNNFAST_OK;
    }

    /* large path: BLAS products from this thread, element-wise work on this thread */
    for (int64_t t0 = 0; t0 < T; t0 += a.Tc) {
        const int64_t tc = a.Tc < T - t0 ? a.Tc : T - t0;
        real *P = RF_F(lstm_chunk)(&a, t0);
        RF_F(rf_fill_rows)(P, tc * B, GH, a.bias, GH);
        /* P (tc*B,4H) += x (tc*B,I) @ w_ih^T */
        RF_F(rf_gemm)(blas, 'N', 'T', tc * B, GH, I, 1, x + t0 * B * I, I, w_ih, I, 1, P, GH);
        for (int64_t t = t0; t < t0 + tc; t++) {
            real *P_t = P + (t - t0) * B * GH;
            /* P_t (B,4H) += h_{t-1} (B,H) @ w_hh^T */
            RF_F(rf_gemm)(blas, 'N', 'T', B, GH, H, 1, h_n, H, w_hh, H, 1, P_t, GH);
            RF_F(lstm_gates_forward)(&a, t, P_t, GH, H, 0, B, 0, H, h_n, h_n);
        }
    }
    return RNNFAST_OK;
}

typedef struct {
    real *dh, *dc, *da;   /* running dh, dc (in dh0, dc0); da (Tc,B,4H): step t at t % Tc */
    real *units;          /* unit split: the threads' parts of w_hh (rf_pack_units_bwd) */
    const real *dy, *gates, *c_all, *c0, *w_hh; /* w_hh: packed, the unit split's the caller's */
    const int64_t *lengths;
    int64_t T, B, H, Tc;
} RF_F(lstm_bwd);

/* One row of the gate gradients. Without has_cp / has_dy, c_{t-1} / dy are zeros (and the
 * pointers unused); the caller passes constants so each inlined copy is a straight loop. */
RF_INLINE void RF_F(lstm_row_backward)(int has_cp, int has_dy, int64_t H,
                                       const real *restrict gi, const real *restrict gf,
                                       const real *restrict gg, const real *restrict go,
                                       const real *restrict c_t, const real *restrict c_prev,
                                       const real *restrict dy, real *restrict dh,
                                       real *restrict dc, real *restrict dai,
                                       real *restrict daf, real *restrict dag,
                                       real *restrict dao) {
    /* tanh(c_t) first, parked in dao (two short loops, as in the forward) */
    for (int64_t j = 0; j < H; j++) dao[j] = RF_F(rf_tanh)(c_t[j]);
    for (int64_t j = 0; j < H; j++) {
        real i = gi[j], f = gf[j], g = gg[j], o = go[j];
        real cp = has_cp ? c_prev[j] : 0;
        real tc = dao[j];
        real d_h = has_dy ? dy[j] + dh[j] : dh[j];
        /* forward: h_t = o*tanh(c_t); c_t = f*c_{t-1} + i*g */
        real d_c = dc[j] + d_h * o * (1 - tc * tc);
        dai[j] = d_c * g * i * (1 - i);
        daf[j] = d_c * cp * f * (1 - f);
        dag[j] = d_c * i * (1 - g * g);
        dao[j] = d_h * tc * o * (1 - o);
        dc[j] = d_c * f;
        dh[j] = 0; /* the caller adds da[t] @ W_hh */
    }
}

/* Gate gradients of rows [b0,b1), units [u0,u1) at step t into da[t]; updates dc and sets dh
 * to the part that does not go through W_hh (zero here; the caller then adds da[t] @ W_hh).
 * Frozen rows: da = 0, dh and dc pass through unchanged. */
RF_INLINE void RF_F(lstm_gates_backward_body)(const RF_F(lstm_bwd) *a, int64_t t, int64_t b0,
                                              int64_t b1, int64_t u0, int64_t u1, int isa) {
    const int64_t B = a->B, H = a->H, GH = 4 * H, n = u1 - u0;
    (void)isa; /* the double copies have no vector pass (RF_VROW is 0) */
    for (int64_t b = b0; b < b1; b++) {
        const int64_t tb = t * B + b;
        real *da = a->da + ((t % a->Tc) * B + b) * GH + u0;
        if (!rf_valid(a->lengths, t, b)) {
            for (int64_t g = 0; g < 4; g++) memset(da + g * H, 0, (size_t)n * sizeof(real));
            continue;
        }
        const real *gt = a->gates + tb * GH + u0;
        const real *c_prev = t > 0 ? a->c_all + (tb - B) * H + u0
                                   : (a->c0 ? a->c0 + b * H + u0 : NULL);
        const real *dy = a->dy ? a->dy + tb * H + u0 : NULL;
        if (RF_VROW(isa, lstm_row_backward, (n, gt, gt + H, gt + 2 * H, gt + 3 * H,
                                             a->c_all + tb * H + u0, c_prev, dy,
                                             a->dh + b * H + u0, a->dc + b * H + u0, da, da + H,
                                             da + 2 * H, da + 3 * H)))
            continue;
#define RF_ROW(has_cp, has_dy)                                                                  \
    RF_F(lstm_row_backward)(has_cp, has_dy, n, gt, gt + H, gt + 2 * H, gt + 3 * H,               \
                            a->c_all + tb * H + u0, c_prev, dy, a->dh + b * H + u0,             \
                            a->dc + b * H + u0, da, da + H, da + 2 * H, da + 3 * H)
        if (c_prev && dy) RF_ROW(1, 1);
        else if (c_prev) RF_ROW(1, 0);
        else if (dy) RF_ROW(0, 1);
        else RF_ROW(0, 0);
#undef RF_ROW
    }
}
RF_MULTIVERSION_ISA(lstm_gates_backward, (const RF_F(lstm_bwd) *a, int64_t t, int64_t b0,
                                          int64_t b1, int64_t u0, int64_t u1),
                    (a, t, b0, b1, u0, u1))

/* Small path, thread `it` of `nt`, chunk by chunk (rf_wgrad_cols_chunk). Batch split
 * (f == NULL): its batch slice for the chunk's steps (gate gradients and dh += da_t @ W_hh with
 * our own product) and their dx rows. Unit split (f the step counters): per step its units of
 * the gate gradients (each gate's columns [u0,u1) of da[t]), the step sync, then its units of
 * dh += da[t] @ W_hh (columns [u0,u1) of W_hh), or, after the trial (rf_trial_bwd_top), perhaps
 * thread 0 alone with the others skipping the steps, then a barrier; after the chunk, a share of
 * the chunk's rows of dx (every step has its own rows of the chunk's gate gradients, and the
 * barriers below keep the next chunk from overwriting them), and its share of the chunk's A
 * panels when both operands are packed. Then, after a barrier, its columns of dW_ih^T, dW_hh^T
 * and db for the chunk. */
static void RF_F(lstm_backward_small)(const RF_F(lstm_bwd) *a, const RF_F(rf_wgrad) *w,
                                      rf_step_flag *f, int nt, int it) {
    const int64_t B = a->B, H = a->H, GH = 4 * H, Tc = a->Tc, T = a->T;
    rf_trial tr = rf_trial_init(f, nt, it, T, T - (T - 1) / Tc * Tc); /* the last chunk first */
    int64_t b0, b1, u0, u1, j0, j1;
    rf_share(tr.unit, B, H, RF_VEC, nt, it, &b0, &b1, &u0, &u1);
    RF_F(rf_unit_part) parts[RF_UNITS_MAX_THREADS];
    if (tr.unit) RF_F(rf_pack_units_bwd)(&tr, parts, a->units, a->w_hh, H, 4);
    rf_slice_cols(GH, nt, it, &j0, &j1);
    for (int64_t t1 = T; t1 > 0;) {
        const int64_t t0 = (t1 - 1) / Tc * Tc;
        for (int64_t t = t1 - 1; t >= t0; t--) {
            if (!rf_trial_bwd_top(&tr, T - 1 - t, B, H, RF_VEC, &b0, &b1, &u0, &u1)) continue;
            RF_F(lstm_gates_backward)(a, t, b0, b1, u0, u1);
            /* dh += da[t] (.,4H) @ w_hh (4H,H): this thread's rows, or its columns [u0,u1) */
            RF_F(rf_step_dh)(a->dh, a->da + (t - t0) * B * GH, a->w_hh, B, H, GH, b0, b1, 0, &tr,
                             parts);
            rf_trial_time(&tr, T - 1 - t);
        }
        if (tr.solo) rf_barrier(nt); /* thread 0 ran the last steps alone: they are in */
        if (f) RF_F(rf_wgrad_dx_rows)(w, t0, t1, nt, it);
        else RF_F(rf_wgrad_dx_chunk)(w, b0, b1, t0, t1);
        if (w->pa) RF_F(rf_wgrad_pack_a_chunk)(w, t0, t1, nt, it);
        rf_barrier(nt); /* the chunk's gate gradients (and A panels) are in */
        RF_F(rf_wgrad_cols_chunk)(w, j0, j1, t0, t1);
        if (t0 > 0) rf_barrier(nt); /* before the next chunk overwrites them and the panels */
        t1 = t0;
    }
    rf_barrier(nt); /* the weight copies' space is free for rf_wgrad_finish */
    RF_F(rf_wgrad_finish)(w, j0, j1);
}

RF_DEFINE(RNNFAST_LSTM_BACKWARD, real, RF_SFX) {
    /* dx (T,B,I), dh0 dc0 (B,H), dw_ih (4H,I), dw_hh (4H,H), db_ih db_hh (4H); dy (T,B,H),
     * dh_n dc_n (B,H); gates (T,B,4H), c_all y (T,B,H), x (T,B,I), h0 c0 (B,H) */
    if (!dx || !dh0 || !dc0 || !dw_ih || !dw_hh || !gates || !c_all || !y || !x || !w_ih ||
        !w_hh || !work || !RF_F(rf_blas_ok)(blas))
        return RNNFAST_ERR_NULL;
    if (n_threads < 1) return RNNFAST_ERR_ARG;
    if (!rf_sizes_ok(T, B, I, H, 4)) return RNNFAST_ERR_SIZE;
    if (!rf_lengths_ok(lengths, T, B)) return RNNFAST_ERR_LENGTHS;
    if (work_len < rnnfast_lstm_backward_workspace(T, B, I, H)) return RNNFAST_ERR_WORKSPACE;
    const int64_t GH = 4 * H, TB = T * B;
    real *w0 = RF_F(rf_align)(work);
    RF_F(lstm_bwd) a = {0};
    a.dh = dh0; a.dc = dc0; a.da = w0; a.dy = dy; a.gates = gates; a.c_all = c_all;
    a.c0 = c0; a.w_hh = w_hh; a.lengths = lengths; a.T = T; a.B = B; a.H = H; a.Tc = T;
    RF_F(rf_wgrad) w = {dx, dw_ih, dw_hh, db_ih, db_hh, a.da, a.da, x, h0, y, w_ih,
                        w0 + rf_pad(TB * GH), T, B, I, H, GH};
    const int small = rf_small(T, B, 4, H);
    const int nu = small ? rf_unit_threads(n_threads, B, 4, H, RF_VEC, (int64_t)sizeof(real)) : 0;
    if (small) { /* one chunk of gate gradients, packed weights, dW^T, the unit split's parts */
        a.Tc = rf_bwd_chunk_steps(T, B, GH);
        real *ws = w0 + rf_pad(a.Tc * B * GH);
        w.ones = NULL;
        RF_F(rf_pack_bwd)(ws, w_ih, nu ? NULL : w_hh, I, H, GH, &a.w_hh, &w.w_ih);
        w.tw = ws; /* free once the products are done */
        a.units = ws + rf_bwd_small_extra(I, H, GH);
        if (rf_chunk_packed_used(GH, (int64_t)sizeof(real))) {
            w.pk = a.units;
            w.pa = w.pk + rf_pad(rf_packed_len(a.Tc * B, GH));
            a.units = w.pa + rf_pad((I + H) * a.Tc * B);
        }
    }
    RF_F(rf_copy_or_zero)(dh0, dh_n, B * H);
    RF_F(rf_copy_or_zero)(dc0, dc_n, B * H);

    if (small) {
        if (nu) RF_RUN_UNITS(nu, RF_F(lstm_backward_small), &a, &w);
        else /* the weight phase splits GH columns */
            RF_RUN_THREADS(rf_threads(n_threads, GH), RF_F(lstm_backward_small), &a, &w, NULL);
        return RNNFAST_OK;
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        RF_F(lstm_gates_backward)(&a, t, 0, B, 0, H);
        /* dh (B,H) += da[t] (B,4H) @ w_hh (4H,H) */
        RF_F(rf_gemm)(blas, 'N', 'N', B, H, GH, 1, a.da + t * B * GH, GH, w_hh, H, 1, dh0, H);
    }
    RF_F(rf_wgrad_blas)(blas, &w);
    return RNNFAST_OK;
}

#endif
