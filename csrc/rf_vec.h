/* rf_vec.h: the float activations and the cells' float gate passes on vectors of RFV_W floats,
 * written once for both vector instruction sets: included (without an include guard) by
 * rf_real.h, in its float instance, with RFV_W 8 (AVX2 + FMA: names rf_v8_*) and, where the
 * build has AVX-512, again with 16 (names rf_v16_*). Not part of the public API.
 *
 * The activations are rf_expneg_f32, rf_tanh_pq_f32, rf_tanh_f32, rf_sigmoid_f32 and
 * rf_lstm_gates_f32 of rf_real.h operation for operation, with multiply-adds where the compiler
 * contracts the scalar forms, so they give the same bits as gcc's vectorisation of those forms
 * (measured for both widths; tests/c_activations measures their accuracy like the other copies').
 * The clamps are min/max with the constant first: a NaN input comes out as NaN.
 * The row functions are the vector copies of rnn_row_forward (tanh), lstm_row_forward,
 * lstm_row_backward and gru_row_forward (rnn.c, lstm.c, gru.c), the last n % RFV_W units
 * masked, so every unit gets the same operations wherever a row or a thread's share starts.
 * Written by hand because gcc's own loops are slower. AVX2 (Zen 3 and an Ice Lake Xeon, in-process
 * A/B, float32, time new/old): gcc's LSTM forward loop spilled and reloaded its constants, and
 * the pass took 0.69-0.72 of its time by hand (B = 16, H = 64, TSC cycles); RNN (32,50,32,64)
 * inference 0.95 (H = 61: 0.92), (1,200,64,128) 0.96. AVX-512 (Zen 5): gcc's tanh loop took
 * 1.8x this one's time (a row of 2048 floats in L1: 0.19 against 0.106 ns an element). */

#if RFV_W == 8
#define RFV_TARGET "avx2,fma"
#define RFV_T __m256
#define RFV(name) rf_v8_##name
#define RFV_S(c) _mm256_set1_ps(c)
#define RFV_ZERO() _mm256_setzero_ps()
#define RFV_ADD _mm256_add_ps
#define RFV_SUB _mm256_sub_ps
#define RFV_MUL _mm256_mul_ps
#define RFV_DIV _mm256_div_ps
#define RFV_MIN _mm256_min_ps
#define RFV_MAX _mm256_max_ps
#define RFV_OR _mm256_or_ps
#define RFV_FMA _mm256_fmadd_ps   /* a b + c */
#define RFV_FNMA _mm256_fnmadd_ps /* c - a b */
/* e where !(x < c) (true for NaN), else 0 */
#define RFV_KEEP_NLT(x, c, e) _mm256_and_ps(_mm256_cmp_ps(x, c, _CMP_NLT_UQ), e)
/* x >= 0 ? b : a */
#define RFV_GE0_PICK(x, a, b) _mm256_blendv_ps(a, b, _mm256_cmp_ps(x, RFV_ZERO(), _CMP_GE_OQ))
/* 2^n from s = n + 1.5 * 2^23 (rf_expneg's shifter): n + 127 into the exponent bits */
#define RFV_POW2(s)                                                                            \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                                     \
        _mm256_add_epi32(_mm256_castps_si256(s), _mm256_set1_epi32(127 - 0x4B400000)), 23))
#elif RFV_W == 16
#define RFV_TARGET "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"
#define RFV_T __m512
#define RFV(name) rf_v16_##name
#define RFV_S(c) _mm512_set1_ps(c)
#define RFV_ZERO() _mm512_setzero_ps()
#define RFV_ADD _mm512_add_ps
#define RFV_SUB _mm512_sub_ps
#define RFV_MUL _mm512_mul_ps
#define RFV_DIV _mm512_div_ps
#define RFV_MIN _mm512_min_ps
#define RFV_MAX _mm512_max_ps
#define RFV_OR _mm512_or_ps
#define RFV_FMA _mm512_fmadd_ps
#define RFV_FNMA _mm512_fnmadd_ps
#define RFV_KEEP_NLT(x, c, e) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, c, _CMP_NLT_UQ), e)
#define RFV_GE0_PICK(x, a, b)                                                                  \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, RFV_ZERO(), _CMP_GE_OQ), a, b)
#define RFV_POW2(s)                                                                            \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                                     \
        _mm512_add_epi32(_mm512_castps_si512(s), _mm512_set1_epi32(127 - 0x4B400000)), 23))
#else
#error "rf_vec.h: define RFV_W as 8 or 16"
#endif
#define RFV_INLINE static inline __attribute__((target(RFV_TARGET), always_inline))
/* the gate passes: each cell file calls its own (not inlined into other instruction sets' code) */
#define RFV_PASS __attribute__((target(RFV_TARGET), unused)) static void

/* The RFV_W floats at p, or the first `left` of them when left < RFV_W (the others are then
 * neither read nor written). */
#if RFV_W == 8
RFV_INLINE __m256i rf_v8_mask(int64_t left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
RFV_INLINE __m256 rf_v8_load(const float *p, int64_t left) {
    return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, rf_v8_mask(left));
}
RFV_INLINE void rf_v8_store(float *p, int64_t left, __m256 v) {
    if (left >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, rf_v8_mask(left), v);
}
#else
RFV_INLINE __m512 rf_v16_load(const float *p, int64_t left) {
    return left >= 16 ? _mm512_loadu_ps(p)
                      : _mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1), p);
}
RFV_INLINE void rf_v16_store(float *p, int64_t left, __m512 v) {
    if (left >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, (__mmask16)((1u << left) - 1), v);
}
#endif
/* The row functions' loops `for (j = 0; j < n; j += RFV_W)`: the vector at p + j, the last
 * masked. */
#define RFV_LD(p) RFV(load)((p) + j, n - j)
#define RFV_ST(p, v) RFV(store)((p) + j, n - j, v)

RFV_INLINE RFV_T RFV(expneg)(RFV_T x) {
    const RFV_T shifter = RFV_S(12582912.0f);
    RFV_T xc = RFV_MAX(RFV_S(-87.0f), x);
    RFV_T s = RFV_FMA(xc, RFV_S(1.44269504088896341f), shifter);
    RFV_T n = RFV_SUB(s, shifter);
    RFV_T r = RFV_FNMA(n, RFV_S(0.693359375f), xc);
    r = RFV_FNMA(n, RFV_S(-2.12194440e-4f), r);
    RFV_T p = RFV_FMA(r, RFV_S(8.312524296e-03f), RFV_S(4.189011455e-02f));
    p = RFV_FMA(r, p, RFV_S(1.666711420e-01f));
    p = RFV_FMA(r, p, RFV_S(4.999923110e-01f));
    p = RFV_FMA(r, p, RFV_S(1.0f));
    p = RFV_FMA(r, p, RFV_S(1.0f));
    return RFV_KEEP_NLT(x, RFV_S(-87.33654f), RFV_MUL(p, RFV_POW2(s)));
}

RFV_INLINE void RFV(tanh_pq)(RFV_T x, RFV_T *xc, RFV_T *P, RFV_T *Q) {
    RFV_T c = RFV_MAX(RFV_S(-9.0f), RFV_MIN(RFV_S(9.0f), x));
    RFV_T s = RFV_MUL(c, c);
    RFV_T p = RFV_FMA(s, RFV_S(-1.224621793e-11f), RFV_S(3.064248233e-08f));
    p = RFV_FMA(s, p, RFV_S(2.803129064e-05f));
    p = RFV_FMA(s, p, RFV_S(3.869506996e-03f));
    p = RFV_FMA(s, p, RFV_S(1.368085593e-01f));
    p = RFV_FMA(s, p, RFV_S(1.0f));
    RFV_T q = RFV_FMA(s, RFV_S(1.289033776e-06f), RFV_S(3.940711613e-04f));
    q = RFV_FMA(s, q, RFV_S(2.725015208e-02f));
    q = RFV_FMA(s, q, RFV_S(4.701418877e-01f));
    q = RFV_FMA(s, q, RFV_S(1.0f));
    *xc = c; *P = p; *Q = q;
}

RFV_INLINE RFV_T RFV(clamp1)(RFV_T y) { return RFV_MAX(RFV_S(-1.0f), RFV_MIN(RFV_S(1.0f), y)); }

RFV_INLINE RFV_T RFV(tanh)(RFV_T x) {
    RFV_T c, p, q;
    RFV(tanh_pq)(x, &c, &p, &q);
    return RFV(clamp1)(RFV_DIV(RFV_MUL(c, p), q));
}

/* x >= 0 ? r : z r (the sigmoid's two branches) */
RFV_INLINE RFV_T RFV(sigmoid_pick)(RFV_T x, RFV_T z, RFV_T r) {
    return RFV_GE0_PICK(x, RFV_MUL(z, r), r);
}

/* rf_sigmoid_f32: z = exp(-|x|), 1/(1+z) or z/(1+z). */
RFV_INLINE RFV_T RFV(sigmoid)(RFV_T x) {
    const RFV_T z = RFV(expneg)(RFV_OR(x, RFV_S(-0.0f))); /* x | sign = -|x| */
    return RFV(sigmoid_pick)(x, z, RFV_DIV(RFV_S(1.0f), RFV_ADD(RFV_S(1.0f), z)));
}

RFV_INLINE void RFV(lstm_gates)(RFV_T xi, RFV_T xf, RFV_T xg, RFV_T xo, RFV_T *i, RFV_T *f,
                                RFV_T *g, RFV_T *o) {
    const RFV_T sign = RFV_S(-0.0f), one = RFV_S(1.0f); /* x | sign = -|x| */
    RFV_T zi = RFV(expneg)(RFV_OR(xi, sign)), zf = RFV(expneg)(RFV_OR(xf, sign));
    RFV_T zo = RFV(expneg)(RFV_OR(xo, sign));
    RFV_T c, p, q;
    RFV(tanh_pq)(xg, &c, &p, &q);
    RFV_T di = RFV_ADD(one, zi), df = RFV_ADD(one, zf), d_o = RFV_ADD(one, zo);
    RFV_T dif = RFV_MUL(di, df), dqo = RFV_MUL(q, d_o);
    RFV_T r = RFV_DIV(one, RFV_MUL(dif, dqo));
    *i = RFV(sigmoid_pick)(xi, zi, RFV_MUL(RFV_MUL(df, dqo), r));
    *f = RFV(sigmoid_pick)(xf, zf, RFV_MUL(RFV_MUL(di, dqo), r));
    *o = RFV(sigmoid_pick)(xo, zo, RFV_MUL(RFV_MUL(dif, q), r));
    *g = RFV(clamp1)(RFV_MUL(RFV_MUL(c, p), RFV_MUL(RFV_MUL(dif, d_o), r)));
}

/* ---- the gate passes ------------------------------------------------------------------------ */

/* rnn_row_forward's tanh: y = h_b = tanh(y). */
RFV_PASS RFV(rnn_row_tanh)(int64_t n, float *restrict y, float *restrict h_b) {
    for (int64_t j = 0; j < n; j += RFV_W) {
        const RFV_T v = RFV(tanh)(RFV_LD(y));
        RFV_ST(y, v);
        RFV_ST(h_b, v);
    }
}

/* lstm_row_forward: the gates in place, c (and cs when save_c), then h into y and h_b. */
RFV_PASS RFV(lstm_row_forward)(
    int save_c, int64_t n, float *restrict pi, float *restrict pf, float *restrict pg,
    float *restrict po, float *restrict c_b, float *restrict cs, float *restrict y,
    float *restrict h_b) {
    for (int64_t j = 0; j < n; j += RFV_W) {
        RFV_T i, f, g, o;
        RFV(lstm_gates)(RFV_LD(pi), RFV_LD(pf), RFV_LD(pg), RFV_LD(po), &i, &f, &g, &o);
        const RFV_T c = RFV_FMA(f, RFV_LD(c_b), RFV_MUL(i, g));
        RFV_ST(pi, i); RFV_ST(pf, f); RFV_ST(pg, g); RFV_ST(po, o); RFV_ST(c_b, c);
        if (save_c) RFV_ST(cs, c);
    }
    for (int64_t j = 0; j < n; j += RFV_W) { /* a second loop, as in lstm_row_forward */
        const RFV_T h = RFV_MUL(RFV_LD(po), RFV(tanh)(RFV_LD(c_b)));
        RFV_ST(y, h); RFV_ST(h_b, h);
    }
}

/* lstm_row_backward's gate gradients (c_prev and dy may be NULL: zeros). */
RFV_PASS RFV(lstm_row_backward)(
    int64_t n, const float *restrict gi, const float *restrict gf, const float *restrict gg,
    const float *restrict go, const float *restrict c_t, const float *restrict c_prev,
    const float *restrict dy, float *restrict dh, float *restrict dc, float *restrict dai,
    float *restrict daf, float *restrict dag, float *restrict dao) {
    const RFV_T one = RFV_S(1.0f);
    for (int64_t j = 0; j < n; j += RFV_W) /* tanh(c_t), parked in dao */
        RFV_ST(dao, RFV(tanh)(RFV_LD(c_t)));
    for (int64_t j = 0; j < n; j += RFV_W) {
        const RFV_T i = RFV_LD(gi), f = RFV_LD(gf), g = RFV_LD(gg), o = RFV_LD(go);
        const RFV_T tc = RFV_LD(dao);
        const RFV_T cp = c_prev ? RFV_LD(c_prev) : RFV_ZERO();
        const RFV_T d_h = dy ? RFV_ADD(RFV_LD(dy), RFV_LD(dh)) : RFV_LD(dh);
        const RFV_T d_c = RFV_FMA(RFV_MUL(d_h, o), RFV_FNMA(tc, tc, one), RFV_LD(dc));
        const RFV_T di = RFV_MUL(RFV_MUL(d_c, g), i);
        const RFV_T df = RFV_MUL(RFV_MUL(d_c, cp), f);
        const RFV_T dop = RFV_MUL(RFV_MUL(d_h, tc), o);
        RFV_ST(dai, RFV_MUL(di, RFV_SUB(one, i)));
        RFV_ST(daf, RFV_MUL(df, RFV_SUB(one, f)));
        RFV_ST(dag, RFV_MUL(RFV_MUL(d_c, i), RFV_FNMA(g, g, one)));
        RFV_ST(dao, RFV_MUL(dop, RFV_SUB(one, o)));
        RFV_ST(dc, RFV_MUL(d_c, f));
        RFV_ST(dh, RFV_ZERO()); /* the caller adds da[t] @ W_hh */
    }
}

/* gru_row_forward: r and z in place of xr and xz, then n (and, when save, n into xn and hn
 * into hn_save) and h into y and h_b. */
RFV_PASS RFV(gru_row_forward)(
    int save, int64_t n, float *restrict xr, float *restrict xz, float *restrict xn,
    const float *restrict hr, const float *restrict hz, const float *restrict hn,
    float *restrict hn_save, float *restrict y, float *restrict h_b) {
    for (int64_t j = 0; j < n; j += RFV_W) {
        RFV_ST(xr, RFV(sigmoid)(RFV_ADD(RFV_LD(xr), RFV_LD(hr))));
        RFV_ST(xz, RFV(sigmoid)(RFV_ADD(RFV_LD(xz), RFV_LD(hz))));
    }
    for (int64_t j = 0; j < n; j += RFV_W) {
        const RFV_T r = RFV_LD(xr), z = RFV_LD(xz), hnj = RFV_LD(hn);
        const RFV_T nn = RFV(tanh)(RFV_FMA(r, hnj, RFV_LD(xn)));
        const RFV_T h = RFV_FMA(RFV_SUB(RFV_S(1.0f), z), nn, RFV_MUL(z, RFV_LD(h_b)));
        if (save) { RFV_ST(xn, nn); RFV_ST(hn_save, hnj); }
        RFV_ST(y, h); RFV_ST(h_b, h);
    }
}

#undef RFV_TARGET
#undef RFV_T
#undef RFV
#undef RFV_S
#undef RFV_ZERO
#undef RFV_ADD
#undef RFV_SUB
#undef RFV_MUL
#undef RFV_DIV
#undef RFV_MIN
#undef RFV_MAX
#undef RFV_OR
#undef RFV_FMA
#undef RFV_FNMA
#undef RFV_KEEP_NLT
#undef RFV_GE0_PICK
#undef RFV_POW2
#undef RFV_INLINE
#undef RFV_PASS
#undef RFV_LD
#undef RFV_ST
#undef RFV_W
