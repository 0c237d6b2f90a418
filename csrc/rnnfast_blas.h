/* rnnfast_blas.h: the BLAS function table rnnfast's kernels call.
 *
 * rnnfast never links a BLAS itself: the caller hands in the four routines it uses, with the
 * reference (Fortran) BLAS calling convention -- column-major, every argument by pointer. These
 * are the signatures of scipy.linalg.cython_blas, of OpenBLAS/MKL/BLIS `sgemm_` etc., and of any
 * netlib-compatible BLAS. The kernels never change the BLAS's thread count; whatever threads the
 * BLAS uses are its own business.
 *
 * Only the routines for the dtype in use are needed: a float32 caller may leave dgemm/dgemv NULL.
 */
#ifndef RNNFAST_BLAS_H
#define RNNFAST_BLAS_H

#ifdef __cplusplus
extern "C" {
#endif

/* C := alpha*op(A)*op(B) + beta*C, column-major; op is 'N' or 'T'. */
typedef void (*rnnfast_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                 float *alpha, float *a, int *lda, float *b, int *ldb,
                                 float *beta, float *c, int *ldc);
typedef void (*rnnfast_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                 double *alpha, double *a, int *lda, double *b, int *ldb,
                                 double *beta, double *c, int *ldc);
/* y := alpha*op(A)*x + beta*y, column-major A (m, n). */
typedef void (*rnnfast_sgemv_fn)(char *trans, int *m, int *n, float *alpha, float *a, int *lda,
                                 float *x, int *incx, float *beta, float *y, int *incy);
typedef void (*rnnfast_dgemv_fn)(char *trans, int *m, int *n, double *alpha, double *a, int *lda,
                                 double *x, int *incx, double *beta, double *y, int *incy);

typedef struct rnnfast_blas {
    rnnfast_sgemm_fn sgemm;
    rnnfast_dgemm_fn dgemm;
    rnnfast_sgemv_fn sgemv;
    rnnfast_dgemv_fn dgemv;
} rnnfast_blas;

#ifdef __cplusplus
}
#endif
#endif /* RNNFAST_BLAS_H */
