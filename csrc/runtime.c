/* runtime.c: facts about how the kernels were built, and error strings. */
#include "rf_common.h"
#include "rnnfast.h"

int rnnfast_openmp_enabled(void) {
#ifdef RNNFAST_OPENMP
    return 1;
#else
    return 0;
#endif
}

const char *rnnfast_isa(void) {
    switch (rf_isa()) {
    case RF_ISA_AVX512: return "avx512";
    case RF_ISA_AVX2: return "avx2";
    default: return "generic";
    }
}

const char *rnnfast_strerror(int code) {
    switch (code) {
    case RNNFAST_OK: return "ok";
    case RNNFAST_ERR_NULL: return "a required pointer (or the BLAS routine for the dtype) is NULL";
    case RNNFAST_ERR_SIZE: return "T, B, I or H is < 1 or too large";
    case RNNFAST_ERR_WORKSPACE: return "workspace shorter than rnnfast_*_workspace() asks for";
    case RNNFAST_ERR_LENGTHS: return "a lengths value lies outside [0, T]";
    case RNNFAST_ERR_ARG: return "bad argument (nonlinearity, n_threads, or saved-array pair)";
    default: return "unknown rnnfast error code";
    }
}

#if RF_STEAL_DELAY
/* Test builds only (rf_common.h's row stealing): how many times rows were handed over. */
static _Atomic long rf_steals;
void rf_steal_counted(void) { atomic_fetch_add_explicit(&rf_steals, 1, memory_order_relaxed); }
long rf_steal_count(void) { return atomic_load_explicit(&rf_steals, memory_order_relaxed); }
#endif
