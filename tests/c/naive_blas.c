/* naive_blas.c: a plain-loop reference BLAS (column-major, Fortran calling convention) for the
 * C tests, so they run under the sanitizers without any BLAS library. Only what rnnfast calls:
 * sgemm, dgemm, sgemv, dgemv. Slow and simple on purpose. */
#include "naive_blas.h"

#define NAIVE_GEMM(real, name)                                                                  \
void name(char *ta, char *tb, int *m, int *n, int *k, real *alpha, real *a, int *lda, real *b,  \
          int *ldb, real *beta, real *c, int *ldc) {                                            \
    int M = *m, N = *n, K = *k;                                                                 \
    for (int j = 0; j < N; j++)                                                                 \
        for (int i = 0; i < M; i++) {                                                           \
            real s = 0;                                                                         \
            for (int p = 0; p < K; p++) {                                                       \
                real av = (*ta == 'N') ? a[i + p * *lda] : a[p + i * *lda];                     \
                real bv = (*tb == 'N') ? b[p + j * *ldb] : b[j + p * *ldb];                     \
                s += av * bv;                                                                   \
            }                                                                                   \
            real *cij = c + i + j * *ldc;                                                       \
            *cij = (*beta == 0 ? 0 : *beta * *cij) + *alpha * s;                                \
        }                                                                                       \
}
NAIVE_GEMM(float, naive_sgemm)
NAIVE_GEMM(double, naive_dgemm)

#define NAIVE_GEMV(real, name)                                                                  \
void name(char *t, int *m, int *n, real *alpha, real *a, int *lda, real *x, int *incx,          \
          real *beta, real *y, int *incy) {                                                     \
    int rows = (*t == 'N') ? *m : *n, cols = (*t == 'N') ? *n : *m;                             \
    for (int i = 0; i < rows; i++) {                                                            \
        real s = 0;                                                                             \
        for (int p = 0; p < cols; p++) {                                                        \
            real av = (*t == 'N') ? a[i + p * *lda] : a[p + i * *lda];                          \
            s += av * x[p * *incx];                                                             \
        }                                                                                       \
        real *yi = y + i * *incy;                                                               \
        *yi = (*beta == 0 ? 0 : *beta * *yi) + *alpha * s;                                      \
    }                                                                                           \
}
NAIVE_GEMV(float, naive_sgemv)
NAIVE_GEMV(double, naive_dgemv)
