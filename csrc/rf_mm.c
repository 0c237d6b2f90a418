/* rf_mm.c: the small matrix product of the "small problem" path, C (M,N) += A (M,K) @ Bm (K,N).
 *
 * Runs every product of the small path (rf_small in rf_common.h: per-step products, run by each
 * OpenMP thread on its own batch slice or columns, and the projection and weight-gradient
 * products split among the threads); the large path's products go to the BLAS. Row-major,
 * leading dimensions lda/ldb/ldc; A's element (i,k) is A[i*lda + k*acs], so A may also be a
 * transposed view (lda = 1, acs = rows). B is either plain (rf_mm) or packed in panels (rf_mmp:
 * the small path's weights, packed once per call): 8 vectors wide for AVX-512, 2 (one tile's
 * width) for AVX2 (rf_np_f32 in rf_common.h).
 *
 * Determinism contract: every C element is computed as c = C[i,j]; for k = 0..K-1:
 * c = fma(A[i,k], Bm[k,j], c) (or c + A*B without FMA hardware), whatever M, N, the blocking or
 * the remainder handling. So a row's result does not depend on which thread or block it fell in.
 * The products that set C (rf_mmp_set, rf_mmp_cols_set: C = bias + A Bm) start c at bias[j] (or
 * 0) instead of C[i,j], in registers: the same bits as filling C and adding, without that pass.
 * Measured against the fill (in-process A/B, float32, 2 threads, same bits), with the RNN's AVX2
 * tanh (rnn.c): RNN (32,50,32,64) inference 0.88, forward+backward 0.91; LSTM 0.96 / 0.985;
 * GRU forward+backward 0.97, (1,200,64,128) 0.96.
 *
 * Vector kernels for AVX-512 and for AVX2+FMA, written once (RF_MM_KERNELS) and chosen at run
 * time (rf_isa: the best the CPU has; portable loops without either), with masked loads/stores
 * for the column remainder. Shapes and measurements below are AVX-512's (AVX2 has 16 registers
 * of 8 floats, not 32 of 16: tiles of up to 6 rows, 4-row blocks of 3 vectors):
 *  - packed B (rf_mmp) and at least 4 rows: tiles of 4-12 rows (AVX2: 3-6) x 2 vectors
 *    (mm_tiles), k in blocks of RF_TKC and columns in blocks of RF_TNC (AVX2: RF_TNC_AVX2), so
 *    a block of B stays in L2 while each tile's rows of A stay in L1. Against the 4x4 blocks
 *    below, measured side by side in one process (2 threads, medians): a 6400x512x512
 *    projection 86-99 -> 110-122 GFLOP/s on one core; LSTM (64,100,128,256) inference and
 *    training forward 3-10% faster, GRU (128,100,512,512) inference 3-11%, the small shapes
 *    0-5%; the RNN at 512 within +-5%;
 *  - a plain B with contiguous rows (ldb == N: the RNN's and GRU's weight gradients) and at
 *    least 4 rows: the same tiles (RF_MM_CASE);
 *  - otherwise (a plain B whose rows lie further apart, such as the LSTM's columns of its gate
 *    gradient, up to 4 KB apart, where the tiles measured 4-14% slower; fewer than 4 rows) 4
 *    rows x 4 vectors of C in 16 registers, or one row x 8 vectors for the rows left over
 *    (mm_vec);
 *  - both operands packed (rf_mm_pp, with rf_pack_at: the weight gradients of large problems,
 *    rf_wgrad_packed and the LSTM's rf_wgrad_cols_chunk in rf_real.h): the same tiles, A's rows
 *    of a tile k-major in one panel.
 *    A 512x512x12800 product with A a transposed view (x^T), rows 2 KB apart, on one core:
 *    59-67 GFLOP/s plain, 101-102 packed (packing B alone: 70-75).
 */
#include "rf_common.h"

/* ---- portable kernel ----------------------------------------------------------------------- */
#define RF_GENERIC_MM(real, name)                                                               \
static void name(int64_t M, int64_t N, int64_t K, const real *A, int64_t lda, int64_t acs,     \
                 const real *Bm, int64_t ldb, real *C, int64_t ldc) {                            \
    for (int64_t i = 0; i < M; i++) {                                                           \
        const real *a_i = A + i * lda;                                                          \
        real *c_i = C + i * ldc;                                                                \
        for (int64_t k = 0; k < K; k++) {                                                       \
            const real a = a_i[k * acs];                                                        \
            const real *b_k = Bm + k * ldb;                                                     \
            for (int64_t j = 0; j < N; j++) c_i[j] = c_i[j] + a * b_k[j];                       \
        }                                                                                       \
    }                                                                                           \
}
RF_GENERIC_MM(float, mm_generic_f32)
RF_GENERIC_MM(double, mm_generic_f64)

/* B's columns in panels of np, panel p at Bm + p * pstride (unpacked B: pstride = np). */
#define RF_GENERIC_PANELS(real, name, kernel)                                                   \
static void name(int64_t M, int64_t N, int64_t K, const real *A, int64_t lda, int64_t acs,     \
                 const real *Bm, int64_t ldb, int64_t np, int64_t pstride, real *C,             \
                 int64_t ldc) {                                                                 \
    for (int64_t j = 0; j < N; j += np)                                                         \
        kernel(M, N - j < np ? N - j : np, K, A, lda, acs, Bm + j / np * pstride, ldb, C + j,   \
               ldc);                                                                            \
}
RF_GENERIC_PANELS(float, mm_panels_f32, mm_generic_f32)
RF_GENERIC_PANELS(double, mm_panels_f64, mm_generic_f64)

/* Rows [*i, *i + *mr) of block q of M rows in blocks of at most mx (sizes differing by at most
 * one): the row tiles of mm_tiles (mx: the ISA's tile height) and, with mx = 12 whatever the ISA
 * (tile_blocks, tile_rows), the A panels of rf_pack_at / rf_mm_pp. */
static inline int64_t tile_blocks_of(int64_t M, int64_t mx) { return (M + mx - 1) / mx; }
static inline void tile_rows_of(int64_t M, int64_t mx, int64_t q, int64_t *i, int *mr) {
    const int64_t nblk = tile_blocks_of(M, mx), base = M / nblk, extra = M % nblk;
    *i = q * base + (q < extra ? q : extra);
    *mr = (int)(base + (q < extra));
}
static inline int64_t tile_blocks(int64_t M) { return tile_blocks_of(M, 12); }
static inline void tile_rows(int64_t M, int64_t q, int64_t *i, int *mr) {
    tile_rows_of(M, 12, q, i, mr);
}

/* C += A B with A in panels (rf_pack_at) and B packed (rf_pack layout: panels of np columns,
 * rows ldb apart, ps apart; Bm at a panel's edge or within one panel), N columns of it. */
#define RF_GENERIC_PP(real, name, np)                                                           \
static void name(int64_t M, int64_t N, int64_t K, const real *Ap, const real *Bm, int64_t ldb,  \
                 int64_t ps, real *C, int64_t ldc) {                                            \
    for (int64_t q = 0, off = 0; q < tile_blocks(M); q++) {                                     \
        int64_t i0;                                                                             \
        int mr;                                                                                 \
        tile_rows(M, q, &i0, &mr);                                                              \
        for (int r = 0; r < mr; r++) {                                                          \
            real *c_i = C + (i0 + r) * ldc;                                                     \
            for (int64_t k = 0; k < K; k++) {                                                   \
                const real a = Ap[off + k * mr + r];                                            \
                for (int64_t j0 = 0; j0 < N; j0 += (np)) {                                      \
                    const real *b = Bm + j0 / (np) * ps + k * ldb - j0;                         \
                    const int64_t j1 = N - j0 < (np) ? N : j0 + (np);                           \
                    for (int64_t j = j0; j < j1; j++) c_i[j] = c_i[j] + a * b[j];               \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        off += (int64_t)mr * K;                                                                 \
    }                                                                                           \
}
RF_GENERIC_PP(float, mm_pp_generic_f32, RF_NP_F32)
RF_GENERIC_PP(double, mm_pp_generic_f64, RF_NP_F64)

#ifdef RF_HAVE_AVX2
#ifndef RF_KC
#define RF_KC 128
#endif
#ifndef RF_MC
#define RF_MC 192
#endif
/* The vector kernels are written once and instantiated per instruction set (RF_MM_KERNELS,
 * below) with: the target, the vector type of W elements, loads and stores that mask the column
 * remainder (LOADM(masked, m, p), STOREM(p, masked, m, v): the mask m applies only when `masked`,
 * a constant after inlining), MASKN(n) the mask of the first n elements, and the register
 * budget: tiles of at most MRMAX rows x 2 vectors and 4-row blocks of NV4 vectors (AVX-512, 32
 * registers: 12 and 4; AVX2, 16 registers: 6 and RF_NV4_AVX2 = 3). NP is the width of a
 * packed B's panel, TNC the columns of a block of B (mm_tiles). */

/* One block: MR (1..12) rows of C, NV (1..8) vectors of columns, the last one masked by `last`
 * when MASKED. Always inlined with constant MR/NV/MASKED so the accumulators live in registers.
 * B's vector v at Bm + (v*W) / NP * pstride + (v*W) % NP: a packed B's block starts at a panel's
 * edge or lies within one panel; an unpacked B (pstride = NP, the layout of a packed B whose
 * panels are NP apart) has its vectors at Bm + v*W, wherever the block starts. */
#define RF_MM_BLOCK(TGT, real, vec, W, sfx, maskt, LOADM, STOREM, SET1, FMADD, NP)              \
__attribute__((target(TGT), always_inline)) static inline void                                 \
block_##sfx(const int MR, const int NV, const int MASKED, maskt last, int64_t K, const real *A, \
            int64_t lda, int64_t acs, const real *Bm, int64_t ldb, int64_t pstride, real *C,    \
            int64_t ldc, int set, const real *c0) {                                             \
    vec acc[12][8];                                                                             \
    for (int r = 0; r < MR; r++)                                                                \
        for (int v = 0; v < NV; v++)                                                            \
            acc[r][v] = !set ? LOADM(MASKED && v == NV - 1, last, C + r * ldc + v * W)          \
                        : c0 ? LOADM(MASKED && v == NV - 1, last, c0 + v * W) : SET1(0);        \
    for (int64_t k = 0; k < K; k++) {                                                           \
        const real *b_k = Bm + k * ldb, *a_k = A + k * acs;                                     \
        vec b[8];                                                                               \
        for (int v = 0; v < NV; v++)                                                            \
            b[v] = LOADM(MASKED && v == NV - 1, last,                                           \
                         b_k + (v * W) / (NP) * pstride + (v * W) % (NP));                      \
        for (int r = 0; r < MR; r++) {                                                          \
            vec a = SET1(a_k[r * lda]);                                                         \
            for (int v = 0; v < NV; v++) acc[r][v] = FMADD(a, b[v], acc[r][v]);                 \
        }                                                                                       \
    }                                                                                           \
    for (int r = 0; r < MR; r++)                                                                \
        for (int v = 0; v < NV; v++)                                                            \
            STOREM(C + r * ldc + v * W, MASKED && v == NV - 1, last, acc[r][v]);                \
}

/* block_ with MASKED known only at run time (whether the last vector is partial). */
#define RF_BLOCK_CALL(sfx, MR, NV, masked, ...)                                                 \
    do {                                                                                        \
        if (masked) block_##sfx(MR, NV, 1, __VA_ARGS__);                                        \
        else block_##sfx(MR, NV, 0, __VA_ARGS__);                                               \
    } while (0)

/* A block of MR rows x NV vectors at row a_i of A and c_i of C (panel_'s names). */
#define RF_ROW_BLOCK(sfx, MR, NV)                                                               \
    RF_BLOCK_CALL(sfx, MR, NV, m, last, K, a_i, lda, acs, Bm, ldb, ps, c_i, ldc, set, c0)

/* Columns [j, j+nb) of rows [i, M): 4-row blocks of up to NV4 vectors, then single rows of up to
 * 8 vectors (one row alone needs more independent accumulators to hide the FMA latency). */
#define RF_MM_ROWS(TGT, real, W, sfx, maskt, MASKN, NV4, NP)                                    \
__attribute__((target(TGT))) static void                                                       \
panel_##sfx(int four_rows, int64_t M, int64_t nb, int64_t K, const real *A, int64_t lda,        \
            int64_t acs, const real *Bm, int64_t ldb, int64_t ps, real *C, int64_t ldc,         \
            int set, const real *c0) {                                                          \
    const int nv = (int)((nb + W - 1) / W);                                                     \
    const int rem = (int)(nb - (int64_t)(nv - 1) * W), m = rem < W;                             \
    const maskt last = MASKN(rem);                                                              \
    if (four_rows) {                                                                            \
        for (int64_t i = 0; i + 4 <= M; i += 4) {                                               \
            const real *a_i = A + i * lda;                                                      \
            real *c_i = C + i * ldc;                                                            \
            switch (nv) {                                                                       \
            case 1: RF_ROW_BLOCK(sfx, 4, 1); break;                                             \
            case 2: RF_ROW_BLOCK(sfx, 4, 2); break;                                             \
            case 3:                                                                             \
                if (NV4 >= 3) RF_ROW_BLOCK(sfx, 4, 3);                                          \
                else __builtin_unreachable(); /* mm_rows: at most NV4 vectors */                \
                break;                                                                          \
            default:                                                                            \
                if (NV4 >= 4) RF_ROW_BLOCK(sfx, 4, 4);                                          \
                else __builtin_unreachable();                                                   \
                break;                                                                          \
            }                                                                                   \
        }                                                                                       \
        return;                                                                                 \
    }                                                                                           \
    for (int64_t i = 0; i < M; i++) {                                                           \
        const real *a_i = A + i * lda;                                                          \
        real *c_i = C + i * ldc;                                                                \
        switch (nv) {                                                                           \
        case 1: RF_ROW_BLOCK(sfx, 1, 1); break;                                                 \
        case 2: RF_ROW_BLOCK(sfx, 1, 2); break;                                                 \
        case 3: RF_ROW_BLOCK(sfx, 1, 3); break;                                                 \
        case 4: RF_ROW_BLOCK(sfx, 1, 4); break;                                                 \
        case 5: RF_ROW_BLOCK(sfx, 1, 5); break;                                                 \
        case 6: RF_ROW_BLOCK(sfx, 1, 6); break;                                                 \
        case 7: RF_ROW_BLOCK(sfx, 1, 7); break;                                                 \
        default: RF_ROW_BLOCK(sfx, 1, 8); break;                                                \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
__attribute__((target(TGT))) static void                                                       \
mm_rows_##sfx(int64_t M, int64_t N, int64_t K, const real *A, int64_t lda, int64_t acs,         \
              const real *Bm, int64_t ldb, int64_t pstride, real *C, int64_t ldc, int set,       \
              const real *c0) {                                                                  \
    const int64_t M4 = M / 4 * 4;                                                               \
    /* Columns in strips of 8 vectors (each at a panel's edge or within one panel); within a    \
     * strip, k in blocks of RF_KC, so the B panel being reused stays in L1 and the strip of C  \
     * (its partial sums) stays in L1/L2 across the k blocks instead of the whole of C being    \
     * swept once per block. Every element still accumulates k = 0..K-1 in order. The 4-row     \
     * blocks take NV4 vectors, or one panel of a packed B whose panels are narrower than a     \
     * strip (so each block lies within a panel). */                                            \
    const int64_t w4 = (NP) < 8 * W && pstride != (NP) ? (NP) : (NV4) * W;                      \
    for (int64_t j = 0; j < N; j += 8 * W) {                                                    \
        const int64_t nb = N - j < 8 * W ? N - j : 8 * W;                                       \
        const real *B_j = Bm + j / (NP) * pstride + j % (NP);                                   \
        for (int64_t k0 = 0; k0 < K; k0 += RF_KC) {                                            \
            const int64_t kc = K - k0 < RF_KC ? K - k0 : RF_KC;                                 \
            const real *A_k = A + k0 * acs, *B_k = B_j + k0 * ldb;                              \
            const int s = set && k0 == 0; /* later k blocks add to C */                         \
            if (M4 > 0)                                                                         \
                for (int64_t jj = j; jj < j + nb; jj += w4)                                     \
                    panel_##sfx(1, M4, j + nb - jj < w4 ? j + nb - jj : w4, kc, A_k, lda, acs,  \
                                Bm + jj / (NP) * pstride + jj % (NP) + k0 * ldb, ldb, pstride,  \
                                C + jj, ldc, s, c0 ? c0 + jj : NULL);                           \
            if (M4 < M)                                                                         \
                panel_##sfx(0, M - M4, nb, kc, A_k + M4 * lda, lda, acs, B_k, ldb, pstride,     \
                            C + M4 * ldc + j, ldc, s, c0 ? c0 + j : NULL);                      \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
/* Rows in blocks of RF_MC (a multiple of 4), so that a block's rows of A and of C stay in L2   \
 * while the column strips and k blocks sweep them (an input projection has thousands of rows;  \
 * unblocked, every strip re-read all of A and every k block all of C from memory). */          \
__attribute__((target(TGT))) static void                                                       \
mm_vec_##sfx(int64_t M, int64_t N, int64_t K, const real *A, int64_t lda, int64_t acs,          \
             const real *Bm, int64_t ldb, int64_t pstride, real *C, int64_t ldc, int set,        \
             const real *c0) {                                                                   \
    for (int64_t i = 0; i < M; i += RF_MC)                                                      \
        mm_rows_##sfx(M - i < RF_MC ? M - i : RF_MC, N, K, A + i * lda, lda, acs, Bm, ldb,      \
                      pstride, C + i * ldc, ldc, set, c0);                                      \
}

#ifndef RF_TILE_MIN_M
#define RF_TILE_MIN_M 4
#endif
#ifndef RF_TKC
#define RF_TKC 256
#endif
#ifndef RF_TNC
#define RF_TNC 512
#endif
/* AVX2's column blocks: half of AVX-512's, for Zen 3's 512 KB L2 (its 256 x 512 float block of B
 * filled the L2). One core, time against 512, median of 15 interleaved: 64x1024x256 0.87,
 * 3200x2048x512 0.86, 512x512x3200 0.86, 6400x512x512 0.92; 128 and 384 were no better. */
#ifndef RF_TNC_AVX2
#define RF_TNC_AVX2 256
#endif
/* AVX2's 4-row blocks of the plain-B products: 3 vectors (12 accumulators; B from memory
 * operands), not 2. One core, time against 2, median of 15 interleaved: 0.78-0.94 (64x1024x256
 * 0.80, 3200x2048x512 0.78, 16x256x32 0.87); in the cells (forward+backward, 2 threads): RNN
 * (32,50,32,64) 0.96, LSTM 0.95, GRU (64,100,128,256) 0.97, the rest 0.99-1.0; same bits. */
#ifndef RF_NV4_AVX2
#define RF_NV4_AVX2 3
#endif
/* A column block (whole panels) starts at a panel's edge, jc / NP * ps. */
_Static_assert(RF_TNC % RF_NP_F32 == 0 && RF_TNC % RF_NP_F64 == 0 &&
                   RF_TNC_AVX2 % RF_NP_AVX2_F32 == 0 && RF_TNC_AVX2 / 2 % RF_NP_AVX2_F64 == 0,
               "column blocks (RF_TNC, RF_TNC_AVX2) must be whole panels");
/* A tile's strip is 2 vectors at a panel's edge; a packed matrix's length (rf_packed_len) is
 * counted in panels of RF_NP_F32 (up to 64 columns, in 16s). */
_Static_assert(RF_NP_AVX2_F32 % 16 == 0 && RF_NP_AVX2_F64 % 8 == 0 &&
                   RF_NP_F32 % RF_NP_AVX2_F32 == 0 && RF_NP_F32 % RF_NP_AVX2_F64 == 0,
               "AVX2 panels: whole tile strips, dividing RF_NP_F32");
/* mm_rows' 4-row blocks on a packed B: one panel (at most NV4 vectors) when panels are narrower
 * than its 8-vector strips, else NV4 vectors within a panel. */
_Static_assert((RF_NP_AVX2_F32 >= 64 || RF_NP_AVX2_F32 <= 8 * RF_NV4_AVX2) &&
                   (RF_NP_AVX2_F64 >= 32 || RF_NP_AVX2_F64 <= 4 * RF_NV4_AVX2),
               "AVX2 panels narrower than a strip must fit a 4-row block (RF_NV4_AVX2)");
/* Tile height n (1..12) of the tiles below, for an ISA whose tiles hold at most MRMAX rows: more
 * rows (only A's packed panels of rf_pack_at, always up to 12) run as two tiles. */
#define RF_TILE_CASE(sfx, MRMAX, n)                                                             \
    case n:                                                                                     \
        strip_##sfx((n) <= (MRMAX) ? (n) : ((n) + 1) / 2, nc, K, A, l, packed ? (n) : acs, Bm,  \
                    ldb, ps, C, ldc, set, c0);                                                  \
        if ((n) > (MRMAX))                                                                      \
            strip_##sfx((n) / 2, nc, K, A + ((n) + 1) / 2 * l, l, packed ? (n) : acs, Bm, ldb,  \
                        ps, C + ((n) + 1) / 2 * ldc, ldc, set, c0);                             \
        break;
/* Row tiles (blocks of MR rows x NV = 1..2 vectors). Per k, NV loads of B and MR broadcasts of
 * A feed MR*NV FMAs (AVX-512, 12 x 2: 14 loads per 24 FMAs, against 8 per 16 for 4 x 4): the MR
 * rows' k block of A stays in L1 while the tile sweeps the columns, B's k block streams from L2.
 * Same FMA order per element as every other kernel here. */
#define RF_MM_TILES(TGT, real, W, sfx, maskt, MASKN, MRMAX, NP, TNC)                            \
/* MR rows, columns [0, nc) of C in strips of 2 vectors, B's column j at                        \
 * Bm + j / NP * pstride + j % NP. */                                                           \
__attribute__((target(TGT), always_inline)) static inline void                                 \
strip_##sfx(const int MR, int64_t nc, int64_t K, const real *A, int64_t lda, int64_t acs,       \
            const real *Bm, int64_t ldb, int64_t pstride, real *C, int64_t ldc, int set,        \
            const real *c0) {                                                                   \
    int64_t j = 0;                                                                              \
    for (; j + 2 * W <= nc; j += 2 * W) {                                                       \
        const real *b = Bm + j / (NP) * pstride + j % (NP);                                     \
        block_##sfx(MR, 2, 0, MASKN(W), K, A, lda, acs, b, ldb, pstride, C + j, ldc, set,       \
                    c0 ? c0 + j : NULL);                                                        \
    }                                                                                           \
    if (j < nc) {                                                                               \
        const int64_t rem = nc - j;                                                             \
        const int r1 = (int)(rem > W ? rem - W : rem), m = r1 < W;                              \
        const maskt last = MASKN(r1);                                                           \
        const real *b = Bm + j / (NP) * pstride + j % (NP), *c0j = c0 ? c0 + j : NULL;          \
        if (rem > W)                                                                            \
            RF_BLOCK_CALL(sfx, MR, 2, m, last, K, A, lda, acs, b, ldb, pstride, C + j, ldc,     \
                          set, c0j);                                                            \
        else RF_BLOCK_CALL(sfx, MR, 1, m, last, K, A, lda, acs, b, ldb, pstride, C + j, ldc,    \
                           set, c0j);                                                           \
    }                                                                                           \
}                                                                                               \
/* strip_ for a tile height mr known only at run time (1..12); packed A (rf_mm_pp) has lda 1   \
 * and acs mr, constants the compiler then folds into the broadcasts' addresses. */             \
__attribute__((target(TGT), always_inline)) static inline void                                 \
tile_##sfx(const int packed, int mr, int64_t nc, int64_t K, const real *A, int64_t lda,         \
           int64_t acs, const real *Bm, int64_t ldb, int64_t ps, real *C, int64_t ldc, int set, \
           const real *c0) {                                                                    \
    const int64_t l = packed ? 1 : lda;                                                         \
    if (!packed && mr > (MRMAX)) __builtin_unreachable(); /* mm_tiles: tile_rows_of(M, MRMAX) */\
    switch (mr) {                                                                               \
    RF_TILE_CASE(sfx, MRMAX, 1) RF_TILE_CASE(sfx, MRMAX, 2) RF_TILE_CASE(sfx, MRMAX, 3)         \
    RF_TILE_CASE(sfx, MRMAX, 4) RF_TILE_CASE(sfx, MRMAX, 5) RF_TILE_CASE(sfx, MRMAX, 6)         \
    RF_TILE_CASE(sfx, MRMAX, 7) RF_TILE_CASE(sfx, MRMAX, 8) RF_TILE_CASE(sfx, MRMAX, 9)         \
    RF_TILE_CASE(sfx, MRMAX, 10) RF_TILE_CASE(sfx, MRMAX, 11)                                   \
    default: RF_TILE_CASE(sfx, MRMAX, 12)                                                       \
    }                                                                                           \
}                                                                                               \
/* M >= 4 rows in blocks of up to MRMAX (tile_rows); columns in blocks of TNC (whole panels), k  \
 * in blocks of RF_TKC: one block of B (RF_TKC x TNC: 512 KB in float for AVX-512's 512) stays  \
 * in L2 while every row block sweeps it. */                                                       \
__attribute__((target(TGT))) static void                                                       \
mm_tiles_##sfx(int64_t M, int64_t N, int64_t K, const real *A, int64_t lda, int64_t acs,        \
               const real *Bm, int64_t ldb, int64_t ps, real *C, int64_t ldc, int set,           \
               const real *c0) {                                                                 \
    for (int64_t jc = 0; jc < N; jc += (TNC)) {                                                 \
        const int64_t nc = N - jc < (TNC) ? N - jc : (TNC);                                     \
        const real *B_j = Bm + jc / (NP) * ps + jc % (NP);                                      \
        for (int64_t pc = 0; pc < K; pc += RF_TKC) {                                            \
            const int64_t kc = K - pc < RF_TKC ? K - pc : RF_TKC;                               \
            const real *b = B_j + pc * ldb;                                                     \
            for (int64_t q = 0; q < tile_blocks_of(M, MRMAX); q++) {                            \
                int64_t i;                                                                      \
                int mr;                                                                         \
                tile_rows_of(M, MRMAX, q, &i, &mr);                                             \
                const real *a = A + i * lda + pc * acs;                                         \
                real *c = C + i * ldc + jc;                                                     \
                tile_##sfx(0, mr, nc, kc, a, lda, acs, b, ldb, ps, c, ldc, set && pc == 0,      \
                           c0 ? c0 + jc : NULL);                                                \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
/* Both operands packed (rf_mm_pp): each block's rows of A k-major in one contiguous panel, so  \
 * the MR broadcasts per k come from one cache line or two at fixed offsets; columns in blocks  \
 * of TNC, as in mm_tiles. */                                                                \
__attribute__((target(TGT))) static void                                                       \
mm_pp_##sfx(int64_t M, int64_t N, int64_t K, const real *Ap, const real *Bm, int64_t ldb,       \
            int64_t ps, real *C, int64_t ldc) { /* C += A B only */                             \
    for (int64_t jc = 0; jc < N; jc += (TNC)) {                                                 \
        const int64_t nc = N - jc < (TNC) ? N - jc : (TNC);                                     \
        const real *b = Bm + jc / (NP) * ps + jc % (NP);                                        \
        for (int64_t q = 0, off = 0; q < tile_blocks(M); q++) {                                 \
            int64_t i;                                                                          \
            int mr;                                                                             \
            tile_rows(M, q, &i, &mr);                                                           \
            const real *a = Ap + off;                                                           \
            real *c = C + i * ldc + jc;                                                         \
            off += (int64_t)mr * K;                                                             \
            tile_##sfx(1, mr, nc, K, a, 1, mr, b, ldb, ps, c, ldc, 0, NULL);                    \
        }                                                                                       \
    }                                                                                           \
}

#define RF_MM_KERNELS(TGT, real, vec, W, sfx, maskt, LOADM, STOREM, MASKN, SET1, FMADD, MRMAX,  \
                      NV4, NP, TNC)                                                             \
    RF_MM_BLOCK(TGT, real, vec, W, sfx, maskt, LOADM, STOREM, SET1, FMADD, NP)                  \
    RF_MM_ROWS(TGT, real, W, sfx, maskt, MASKN, NV4, NP)                                        \
    RF_MM_TILES(TGT, real, W, sfx, maskt, MASKN, MRMAX, NP, TNC)

/* AVX2 + FMA: 16 registers of 8 floats / 4 doubles; the masks are vectors (vmaskmov). */
#define RF_LD256(sfx, msk, m, p) ((msk) ? _mm256_maskload_##sfx(p, m) : _mm256_loadu_##sfx(p))
#define RF_ST256(sfx, p, msk, m, v)                                                             \
    do {                                                                                        \
        if (msk) _mm256_maskstore_##sfx(p, m, v);                                               \
        else _mm256_storeu_##sfx(p, v);                                                         \
    } while (0)
#define RF_LD256_PS(msk, m, p) RF_LD256(ps, msk, m, p)
#define RF_LD256_PD(msk, m, p) RF_LD256(pd, msk, m, p)
#define RF_ST256_PS(p, msk, m, v) RF_ST256(ps, p, msk, m, v)
#define RF_ST256_PD(p, msk, m, v) RF_ST256(pd, p, msk, m, v)
#define RF_MASK256_PS(n)                                                                        \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define RF_MASK256_PD(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
RF_MM_KERNELS("avx2,fma", float, __m256, 8, f32_avx2, __m256i, RF_LD256_PS, RF_ST256_PS,
              RF_MASK256_PS, _mm256_set1_ps, _mm256_fmadd_ps, 6, RF_NV4_AVX2, RF_NP_AVX2_F32,
              RF_TNC_AVX2)
RF_MM_KERNELS("avx2,fma", double, __m256d, 4, f64_avx2, __m256i, RF_LD256_PD, RF_ST256_PD,
              RF_MASK256_PD, _mm256_set1_pd, _mm256_fmadd_pd, 6, RF_NV4_AVX2, RF_NP_AVX2_F64,
              RF_TNC_AVX2 / 2)

#ifdef RF_HAVE_AVX512
/* AVX-512: 32 registers of 16 floats / 8 doubles; mask registers. */
#define RF_LD512(sfx, maskt, msk, m, p) _mm512_maskz_loadu_##sfx((msk) ? (m) : (maskt)-1, p)
#define RF_ST512(sfx, maskt, p, msk, m, v) _mm512_mask_storeu_##sfx(p, (msk) ? (m) : (maskt)-1, v)
#define RF_LD512_PS(msk, m, p) RF_LD512(ps, __mmask16, msk, m, p)
#define RF_LD512_PD(msk, m, p) RF_LD512(pd, __mmask8, msk, m, p)
#define RF_ST512_PS(p, msk, m, v) RF_ST512(ps, __mmask16, p, msk, m, v)
#define RF_ST512_PD(p, msk, m, v) RF_ST512(pd, __mmask8, p, msk, m, v)
#define RF_MASK512(maskt, W, n) ((maskt)((n) >= (W) ? (maskt)-1 : (maskt)(((maskt)1 << (n)) - 1)))
#define RF_MASK512_PS(n) RF_MASK512(__mmask16, 16, n)
#define RF_MASK512_PD(n) RF_MASK512(__mmask8, 8, n)
RF_MM_KERNELS("avx512f,avx512dq,avx512vl,fma", float, __m512, 16, f32_avx512, __mmask16,
              RF_LD512_PS, RF_ST512_PS, RF_MASK512_PS, _mm512_set1_ps, _mm512_fmadd_ps, 12, 4,
              RF_NP_F32, RF_TNC)
RF_MM_KERNELS("avx512f,avx512dq,avx512vl,fma", double, __m512d, 8, f64_avx512, __mmask8,
              RF_LD512_PD, RF_ST512_PD, RF_MASK512_PD, _mm512_set1_pd, _mm512_fmadd_pd, 12, 4,
              RF_NP_F64, RF_TNC)

/* One 16x16 block: dst (16 rows, leading dimension ldd) = src (16 rows, lds)^T, in registers:
 * unpack pairs of rows, shuffle pairs of pairs within 128-bit lanes, then move lanes twice. */
__attribute__((target("avx512f"))) static void tr16_f32(float *dst, int64_t ldd, const float *src,
                                                        int64_t lds) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* r[4i+j], 128-bit lane l: column 4l+j of rows 4i..4i+3 */
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);      /* lanes 0, 2 of each */
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);  /* lanes 1, 3 */
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    }
    /* t[j]: column j of rows 0-3 | column 8+j of rows 0-3 | column j of rows 4-7 | column 8+j
     * of rows 4-7 (t[8+j] the same for rows 8-15; t[4+j], t[12+j] for columns 4+j, 12+j) */
    for (int j = 0; j < 4; j++) {
        __m512 a = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);      /* column j, rows 0-15 */
        __m512 b = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);      /* column 8+j */
        __m512 c = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88); /* column 4+j */
        __m512 d = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD); /* column 12+j */
        _mm512_storeu_ps(dst + j * ldd, a);
        _mm512_storeu_ps(dst + (8 + j) * ldd, b);
        _mm512_storeu_ps(dst + (4 + j) * ldd, c);
        _mm512_storeu_ps(dst + (12 + j) * ldd, d);
    }
}

#endif /* RF_HAVE_AVX512 */

/* AVX2: one 8x8 float block the same way (pairs of rows, pairs of pairs, then the two 128-bit
 * lanes), and one 4x4 double block. */
__attribute__((target("avx2"))) static void tr8_f32(float *dst, int64_t ldd, const float *src,
                                                    int64_t lds) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        r[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* r[j] (r[4+j]), lane l: column 4l+j of rows 0-3 (rows 4-7) */
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(dst + j * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x20));
        _mm256_storeu_ps(dst + (4 + j) * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x31));
    }
}

__attribute__((target("avx2"))) static void tr4_f64(double *dst, int64_t ldd, const double *src,
                                                    int64_t lds) {
    __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds);
    __m256d r2 = _mm256_loadu_pd(src + 2 * lds), r3 = _mm256_loadu_pd(src + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1); /* cols 0,2; 1,3 */
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#endif /* RF_HAVE_AVX2 */

/* What the CPU has and the build compiled; rf_isa asks once and keeps the answer (every product
 * and element-wise pass, per step and thread, asks rf_isa). */
static int rf_detect_isa(void) {
#ifdef RF_HAVE_AVX2
    __builtin_cpu_init();
#ifdef RF_HAVE_AVX512
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return RF_ISA_AVX512; /* its kernels use AVX2 and FMA too (rf_common.h) */
#endif
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RF_ISA_AVX2;
#endif
    return RF_ISA_GENERIC;
}

int rf_isa(void) {
    /* Constant for the process: every call takes the same kernels, so results are reproducible.
     * Threads racing on the first call all store the same value. */
    static atomic_int known = -1;
    int isa = atomic_load_explicit(&known, memory_order_relaxed);
    if (isa < 0) {
        isa = rf_detect_isa();
        atomic_store_explicit(&known, isa, memory_order_relaxed);
    }
    return isa;
}

/* CASE(ISA, isa, ...): one case of a switch on rf_isa() for each vector instruction set the
 * build compiled (the dispatches below). */
#ifdef RF_HAVE_AVX512
#define RF_CASE_AVX512(CASE, ...) CASE(RF_ISA_AVX512, avx512, __VA_ARGS__)
#else
#define RF_CASE_AVX512(CASE, ...)
#endif
#ifdef RF_HAVE_AVX2
#define RF_CASE_AVX2(CASE, ...) CASE(RF_ISA_AVX2, avx2, __VA_ARGS__)
#else
#define RF_CASE_AVX2(CASE, ...)
#endif
#define RF_VECTOR_CASES(CASE, ...) RF_CASE_AVX512(CASE, __VA_ARGS__) RF_CASE_AVX2(CASE, __VA_ARGS__)

/* B in panels of np columns (rf_np_f32 / rf_np_f64: the running kernels' width), panel p at
 * Bm + p * pstride, rows ldb apart within a panel: an unpacked B is pstride = np. The row tiles
 * run when there are at least RF_TILE_MIN_M rows and B is packed ("tiles") or plain with
 * contiguous rows (ldb == N: the RNN's and GRU's weight gradients, rf_wgrad_row_range). Against
 * the 4-row blocks there (Zen 5, in-process A/B, float32, 2 threads, forward+backward, same
 * bits): AVX-512 RNN (64,100,128,256) 0.855-0.921, (32,50,32,64) 0.979-0.987, GRU 0.969-0.992;
 * AVX2 (a build without AVX-512) RNN (64,100,128,256) 0.922, the rest 0.99-1.007. A plain B
 * whose rows lie further apart (the LSTM's columns of its gate gradient, GH apart) keeps the
 * blocks: the tiles measured 4-14% slower there (Zen 3, AVX2). */
#define RF_MM_CASE(ISA, isa, sfx, tiles)                                                        \
    case ISA:                                                                                   \
        if (((tiles) || ldb == N) && M >= RF_TILE_MIN_M)                                        \
            mm_tiles_##sfx##_##isa(M, N, K, A, lda, acs, Bm, ldb, ps, C, ldc, set, c0);         \
        else mm_vec_##sfx##_##isa(M, N, K, A, lda, acs, Bm, ldb, ps, C, ldc, set, c0);          \
        break;
/* set: C = c0 (a row of N, the same for every row; NULL: zeros) + A Bm, else C += A Bm. The
 * vector kernels start their accumulators from c0 (the same sums as filling C first: c0[j] is
 * where each element's sum starts); the portable one, and K = 0, fill C first. */
#define RF_MM_DISPATCH(sfx, tiles)                                                              \
    if (set && (K <= 0 || rf_isa() == RF_ISA_GENERIC)) {                                        \
        rf_fill_rows_##sfx(C, M, ldc, c0, N);                                                   \
        set = 0;                                                                                \
    }                                                                                           \
    switch (rf_isa()) {                                                                         \
    RF_VECTOR_CASES(RF_MM_CASE, sfx, tiles)                                                     \
    default: mm_panels_##sfx(M, N, K, A, lda, acs, Bm, ldb, rf_np_##sfx(), ps, C, ldc); break;  \
    }

void rf_mm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, int64_t acs,
               const float *Bm, int64_t ldb, float *C, int64_t ldc) {
    const int64_t ps = rf_np_f32();
    int set = 0;
    const float *c0 = NULL;
    RF_MM_DISPATCH(f32, 0);
}

void rf_mm_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, int64_t acs,
               const double *Bm, int64_t ldb, double *C, int64_t ldc) {
    const int64_t ps = rf_np_f64();
    int set = 0;
    const double *c0 = NULL;
    RF_MM_DISPATCH(f64, 0);
}

/* A packed B with its row length ldb and panel stride ps given; set and c0 as RF_MM_DISPATCH. */
static void rf_mmp_ld_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                          int64_t acs, const float *Bm, int64_t ldb, int64_t ps, float *C,
                          int64_t ldc, int set, const float *c0) {
    RF_MM_DISPATCH(f32, 1);
}

static void rf_mmp_ld_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda,
                          int64_t acs, const double *Bm, int64_t ldb, int64_t ps, double *C,
                          int64_t ldc, int set, const double *c0) {
    RF_MM_DISPATCH(f64, 1);
}

#define RF_MMP(real, sfx)                                                                       \
void rf_mmp_##sfx(int64_t M, int64_t N, int64_t K, const real *A, int64_t lda, int64_t acs,    \
                  const real *Bm, int64_t kp, real *C, int64_t ldc) {                           \
    const int64_t ldb = rf_packed_ld_##sfx(N);                                                  \
    rf_mmp_ld_##sfx(M, N, K, A, lda, acs, Bm, ldb, kp * ldb, C, ldc, 0, NULL);                  \
}                                                                                               \
void rf_mmp_set_##sfx(int64_t M, int64_t N, int64_t K, const real *A, int64_t lda,             \
                      int64_t acs, const real *Bm, int64_t kp, const real *bias, real *C,       \
                      int64_t ldc) {                                                            \
    const int64_t ldb = rf_packed_ld_##sfx(N);                                                  \
    rf_mmp_ld_##sfx(M, N, K, A, lda, acs, Bm, ldb, kp * ldb, C, ldc, 1, bias);                  \
}
RF_MMP(float, f32)
RF_MMP(double, f64)

/* Of columns [c0, c0 + n) of B in panels of np: how many lie before the first panel edge at or
 * after c0. rf_mmp_cols_set and rf_mm_pp run those as a piece of one panel (B with the panel's row
 * length, from the piece's first column), then the rest from that edge in one product (the
 * kernels' blocks start at panel edges there). */
static inline int64_t cols_to_edge(int64_t np, int64_t c0, int64_t n) {
    const int64_t h = c0 % np ? np - c0 % np : 0;
    return h < n ? h : n;
}

/* C = bias + A @ B on columns [c0, c0 + n) of a packed B of full width N (kp rows a panel; bias a
 * row of n, NULL: zeros). */
#define RF_MMP_COLS(real, sfx)                                                                  \
void rf_mmp_cols_set_##sfx(int64_t M, int64_t N, int64_t c0, int64_t n, int64_t K,             \
                           const real *A, int64_t lda, int64_t acs, const real *Bp, int64_t kp, \
                           const real *bias, real *C, int64_t ldc) {                            \
    const int64_t np = rf_np_##sfx(), ldb = rf_packed_ld_##sfx(N), ps = kp * ldb;               \
    const int64_t h = cols_to_edge(np, c0, n);                                                  \
    if (h > 0)                                                                                  \
        rf_mmp_ld_##sfx(M, h, K, A, lda, acs, Bp + c0 / np * ps + c0 % np, ldb, ps, C, ldc, 1,  \
                        bias);                                                                  \
    if (n > h)                                                                                  \
        rf_mmp_ld_##sfx(M, n - h, K, A, lda, acs, Bp + (c0 + h) / np * ps, ldb, ps, C + h, ldc, \
                        1, bias ? bias + h : NULL);                                             \
}
RF_MMP_COLS(float, f32)
RF_MMP_COLS(double, f64)

/* A (M,K) in panels: block q of tile_rows, element (i,k) at Ap[off_q + k * mr + (i - i_q)],
 * off_q the sum of mr * K over the blocks before it; A(i,k) = rows[k - k0][i0 + i], for the
 * columns k in [k0,k1) only (a thread's share, or a piece that fits the caller's rows array). */
#define RF_PACK_AT(real, sfx)                                                                   \
void rf_pack_at_##sfx(real *Ap, int64_t M, int64_t K, const real *const *rows, int64_t i0,     \
                      int64_t k0, int64_t k1) {                                                 \
    for (int64_t q = 0, off = 0; q < tile_blocks(M); q++) {                                     \
        int64_t i;                                                                              \
        int mr;                                                                                 \
        tile_rows(M, q, &i, &mr);                                                               \
        if (mr >= 8) /* two copies of 8 of known size, overlapping: inlined, unlike a call */   \
            for (int64_t k = k0; k < k1; k++) {                                                 \
                const real *src = rows[k - k0] + i0 + i;                                        \
                real *dst = Ap + off + k * mr;                                                  \
                memcpy(dst, src, 8 * sizeof(real));                                             \
                memcpy(dst + mr - 8, src + mr - 8, 8 * sizeof(real));                           \
            }                                                                                   \
        else                                                                                    \
            for (int64_t k = k0; k < k1; k++)                                                   \
                memcpy(Ap + off + k * mr, rows[k - k0] + i0 + i, (size_t)mr * sizeof(real));    \
        off += (int64_t)mr * K;                                                                 \
    }                                                                                           \
}
RF_PACK_AT(float, f32)
RF_PACK_AT(double, f64)

#define RF_MM_PP_CASE(ISA, isa, sfx)                                                            \
    case ISA: mm_pp_##sfx##_##isa(M, n, K, Ap, Bm, ldb, ps, C, ldc); return;
/* n columns of a packed B (rows ldb apart, panels ps apart) from Bm, at a panel's edge or within
 * one panel. */
#define RF_MM_PP_RUN(real, sfx)                                                                 \
static void mm_pp_run_##sfx(int64_t M, int64_t n, int64_t K, const real *Ap, const real *Bm,    \
                            int64_t ldb, int64_t ps, real *C, int64_t ldc) {                    \
    switch (rf_isa()) {                                                                         \
    RF_VECTOR_CASES(RF_MM_PP_CASE, sfx)                                                         \
    default: break;                                                                             \
    }                                                                                           \
    mm_pp_generic_##sfx(M, n, K, Ap, Bm, ldb, ps, C, ldc);                                      \
}
RF_MM_PP_RUN(float, f32)
RF_MM_PP_RUN(double, f64)

/* Columns [c0, c0 + n) of a packed B of full width N, from its row at Bp (kp rows a panel),
 * split as rf_mmp_cols_set. */
#define RF_MM_PP(real, sfx)                                                                     \
void rf_mm_pp_##sfx(int64_t M, int64_t N, int64_t c0, int64_t n, int64_t K, const real *Ap,    \
                    const real *Bp, int64_t kp, real *C, int64_t ldc) {                         \
    const int64_t np = rf_np_##sfx(), ldb = rf_packed_ld_##sfx(N), ps = kp * ldb;               \
    const int64_t h = cols_to_edge(np, c0, n);                                                  \
    if (h > 0) mm_pp_run_##sfx(M, h, K, Ap, Bp + c0 / np * ps + c0 % np, ldb, ps, C, ldc);      \
    if (n > h) mm_pp_run_##sfx(M, n - h, K, Ap, Bp + (c0 + h) / np * ps, ldb, ps, C + h, ldc);  \
}
RF_MM_PP(float, f32)
RF_MM_PP(double, f64)

/* ---- transposes: dst (C,R) = src (R,C)^T, leading dimensions ldd and lds --------------------- */
#define RF_TRANSPOSE_TILES(real, name)                                                          \
static void name(real *dst, int64_t ldd, const real *src, int64_t lds, int64_t r0, int64_t R,  \
                 int64_t c0, int64_t C) {                                                       \
    for (int64_t rb = r0; rb < R; rb += 16)                                                     \
        for (int64_t cb = c0; cb < C; cb += 16) {                                               \
            const int64_t r1 = rb + 16 < R ? rb + 16 : R, c1 = cb + 16 < C ? cb + 16 : C;       \
            for (int64_t c = cb; c < c1; c++)                                                   \
                for (int64_t r = rb; r < r1; r++) dst[c * ldd + r] = src[r * lds + c];          \
        }                                                                                       \
}
RF_TRANSPOSE_TILES(float, transpose_tiles_f32)
RF_TRANSPOSE_TILES(double, transpose_tiles_f64)

/* n x n blocks in registers (kernel), the edges element by element. */
#define RF_TRANSPOSE_REGS(kernel, n, sfx)                                                       \
    do {                                                                                        \
        const int64_t Rn = R / (n) * (n), Cn = C / (n) * (n);                                   \
        for (int64_t r = 0; r < Rn; r += (n))                                                   \
            for (int64_t c = 0; c < Cn; c += (n))                                               \
                kernel(dst + c * ldd + r, ldd, src + r * lds + c, lds);                         \
        transpose_tiles_##sfx(dst, ldd, src, lds, 0, Rn, Cn, C);                                \
        transpose_tiles_##sfx(dst, ldd, src, lds, Rn, R, 0, C);                                 \
    } while (0)

void rf_transpose_blocks_f32(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t R,
                             int64_t C) {
#ifdef RF_HAVE_AVX512
    if (rf_isa() == RF_ISA_AVX512) {
        RF_TRANSPOSE_REGS(tr16_f32, 16, f32);
        return;
    }
#endif
#ifdef RF_HAVE_AVX2
    if (rf_isa() == RF_ISA_AVX2) {
        RF_TRANSPOSE_REGS(tr8_f32, 8, f32);
        return;
    }
#endif
    transpose_tiles_f32(dst, ldd, src, lds, 0, R, 0, C);
}

void rf_transpose_blocks_f64(double *dst, int64_t ldd, const double *src, int64_t lds, int64_t R,
                             int64_t C) {
#ifdef RF_HAVE_AVX2
    if (rf_isa() != RF_ISA_GENERIC) { /* AVX-512 too: 4x4 blocks */
        RF_TRANSPOSE_REGS(tr4_f64, 4, f64);
        return;
    }
#endif
    transpose_tiles_f64(dst, ldd, src, lds, 0, R, 0, C);
}
