/* fma_peak.c: one core's float32 FMA throughput, the ceiling every product kernel is measured
 * against in bench/RESULTS.md. Twelve independent chains of 256-bit FMAs (more than the two FMA
 * pipes' latency times their count), 1.2e9 instructions, timed by the wall clock and by the TSC.
 * FMA/ns x 16 = GFLOP/s per core; FMA per TSC cycle / 2 pipes = the core's clock over the TSC's.
 * Run two copies at once to see whether both cores keep that clock.
 *
 *   cc -O2 -mavx2 -mfma bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

#define STEP(v) v = _mm256_fmadd_ps(v, m, c); __asm__ volatile("" : "+x"(v));

int main(void) {
    __m256 a0 = _mm256_set1_ps(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
           a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    const long iters = 100000000L; /* x 12 FMAs */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const unsigned long long r0 = __rdtsc();
    for (long i = 0; i < iters; i++) {
        STEP(a0) STEP(a1) STEP(a2) STEP(a3) STEP(a4) STEP(a5)
        STEP(a6) STEP(a7) STEP(a8) STEP(a9) STEP(a10) STEP(a11)
    }
    const unsigned long long r1 = __rdtsc();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    const double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec), n = 12.0 * iters;
    printf("%.2f FMA/ns = %.1f GFLOP/s float32 (%.2f FMA per TSC cycle; checksum %g)\n", n / ns,
           16 * n / ns, n / (double)(r1 - r0), (double)s[0]);
    return 0;
}
