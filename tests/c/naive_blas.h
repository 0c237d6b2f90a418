/* naive_blas.h: plain-loop BLAS for the C tests (see naive_blas.c). */
#ifndef NAIVE_BLAS_H
#define NAIVE_BLAS_H
void naive_sgemm(char *, char *, int *, int *, int *, float *, float *, int *, float *, int *,
                 float *, float *, int *);
void naive_dgemm(char *, char *, int *, int *, int *, double *, double *, int *, double *, int *,
                 double *, double *, int *);
void naive_sgemv(char *, int *, int *, float *, float *, int *, float *, int *, float *, float *,
                 int *);
void naive_dgemv(char *, int *, int *, double *, double *, int *, double *, int *, double *,
                 double *, int *);
#endif
