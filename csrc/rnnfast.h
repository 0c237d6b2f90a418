/* rnnfast.h: the public C API of rnnfast's recurrent-network kernels.
 *
 * Pure C (no Python headers). Kernels are filled in by the compiled-kernels work; this header
 * currently declares the build facts only.
 */
#ifndef RNNFAST_H
#define RNNFAST_H

#ifdef __cplusplus
extern "C" {
#endif

#define RNNFAST_VERSION_MAJOR 0
#define RNNFAST_VERSION_MINOR 1

/* 1 if the library was built with OpenMP, else 0. */
int rnnfast_openmp_enabled(void);

#ifdef __cplusplus
}
#endif
#endif /* RNNFAST_H */
