/* runtime.c: facts about how the kernels were built. */
#include "rnnfast.h"

int rnnfast_openmp_enabled(void) {
#ifdef RNNFAST_OPENMP
    return 1;
#else
    return 0;
#endif
}
