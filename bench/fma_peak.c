/* fma_peak.c: one core's float32 FMA throughput, the ceiling every product kernel is measured
 * against in bench/RESULTS.md. Twelve independent chains of 256-bit FMAs (or 512-bit ones with
 * -DWIDE512: AVX-512), more than the two FMA pipes' latency times their count, 1.2e9 instructions,
 * timed by the wall clock and by the TSC. FMA/ns x 2 x lanes (8, or 16 with WIDE512) = GFLOP/s per
 * core; FMA per TSC cycle / 2 pipes = the core's clock over the TSC's. Run two copies at once to
 * see whether both (virtual) cores keep that rate: two vCPUs on one physical core's two hardware
 * threads share its FMA pipes and get half each.
 *
 *   cc -O2 -mavx2 -mfma bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 *   cc -O2 -mavx512f -DWIDE512 bench/fma_peak.c -o /tmp/fma_peak512 && /tmp/fma_peak512
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

#ifdef WIDE512
#define LANES 16
typedef __m512 vec;
#define SET1 _mm512_set1_ps
#define FMADD _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define REG "+v"
#else
#define LANES 8
typedef __m256 vec;
#define SET1 _mm256_set1_ps
#define FMADD _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define REG "+x"
#endif
#define STEP(v) v = FMADD(v, m, c); __asm__ volatile("" : REG(v));

int main(void) {
    vec a0 = SET1(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
        a9 = a0, a10 = a0, a11 = a0;
    const vec m = SET1(0.9999999f), c = SET1(1e-7f);
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
    vec s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));
    const double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec), n = 12.0 * iters;
    printf("%d-bit: %.2f FMA/ns = %.1f GFLOP/s float32 (%.2f FMA per TSC cycle; checksum %g)\n",
           32 * LANES, n / ns, 2 * LANES * n / ns, n / (double)(r1 - r0), (double)s[0]);
    return 0;
}
