/* rf_common.h: internal pieces shared by rnn.c, lstm.c and gru.c that do not depend on the dtype:
 * the small-problem switch, workspace layout helpers, batch and unit slicing for threads, the
 * step sync, argument checks.
 * Not part of the public API (rnnfast.h is).
 */
#ifndef RF_COMMON_H
#define RF_COMMON_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "rnnfast.h"

#ifdef RNNFAST_OPENMP
#include <omp.h>
#endif

/* Problems with B*G*H*H multiply-adds per step up to this size run "small": one OpenMP region for
 * the whole sequence, each thread owning a batch slice for all T steps (or, with fewer sequences
 * than threads, a share of the hidden units: the unit split below; in backward, then one
 * barrier and the weight gradients split by rows), every product by our own single-threaded
 * kernel (rf_mm), so the BLAS's threads never run while ours are busy. Larger ones run "large":
 * the input projection and the weight gradients as single BLAS GEMMs, per-step BLAS GEMMs (on the
 * BLAS's own threads) from the calling thread, element-wise work on that thread, no OpenMP at all.
 * The choice depends on the shape only, so the result never depends on the thread count.
 * Switch point measured on a 2-core AVX-512 Xeon (float32, 2 threads, ms forward / forward+
 * backward, small path vs large path): at (B,T,I,H) = (64,100,128,256) every cell is faster
 * small (RNN 9.9/29 vs 13.9/39, LSTM 37/113 vs 54/157, GRU 20/84 vs 40/116), as is the RNN at
 * (128,100,512,512) (B*H*H = 2^25: 96/303 vs 110/304). There, with the weights packed (rf_pack),
 * the GRU (3 * 2^25) is also faster small: inference 286-302 vs 301-422 ms, training forward
 * 261-292 vs 328-372, backward 677-814 vs 712-804 (three alternating runs); the LSTM (2^27) was
 * not: inference 361-406 vs 359-388, backward 758-910 vs 801-810. On a 2-core AMD EPYC (Zen 4,
 * AVX-512 on 256-bit units; OpenBLAS's SkylakeX kernels), in one process, calls interleaved
 * (5 rounds, medians), the LSTM there is faster small too: inference 277 vs 306 ms, forward+
 * backward 1045 vs 1242, so the switch now includes it. Override with -DRF_SMALL_MACS=... */
#ifndef RF_SMALL_MACS
#define RF_SMALL_MACS ((int64_t)1 << 27)
#endif

/* Inference keeps the input projection of at most this many elements (or one step) at a time,
 * so its memory is O(B*H) (bounded by max(B*G*H, this)). Large problems: big enough that the
 * chunk's projection is still one efficient GEMM (at least 4 steps of B rows for the largest
 * benchmark shape); small ones project fewer steps at a time (each thread its own sequences'
 * rows), which keeps the buffer in L2. */
#define RF_CHUNK_ELEMS ((int64_t)1 << 21)
#ifndef RF_CHUNK_ELEMS_SMALL
#define RF_CHUNK_ELEMS_SMALL ((int64_t)1 << 17)
#endif

/* Sub-buffers of the workspace start at multiples of this many elements. The kernels first round
 * the workspace pointer up to a 64-byte boundary (at most RF_PAD - 1 elements, which every
 * workspace length includes as slack), so every sub-buffer is cache-line aligned: products whose
 * B operand straddles cache lines run up to twice as slow. */
#define RF_PAD 16
#define RF_ALIGN 64

/* The small path also needs at least this many rows (T*B) of input (rf_small): it first packs
 * the weights for its kernel (rf_pack; transposed in forward), (I+H)*G*H element moves, which
 * only pays for itself when the products that follow have rows enough; a step kernel (T = 1)
 * with a few sequences goes to the BLAS path, whose GEMV/GEMM read the weights as they are
 * (measured: a (B,T,I,H) = (1,1,512,512) LSTM step took 4 ms on the small path, nearly all of
 * it the weight copies, against 2M multiply-adds). */
#ifndef RF_SMALL_MIN_ROWS
#define RF_SMALL_MIN_ROWS 16
#endif

static inline int rf_small(int64_t T, int64_t B, int64_t G, int64_t H) {
    return B * G * H * H <= RF_SMALL_MACS && T * B >= RF_SMALL_MIN_ROWS;
}

static inline int64_t rf_pad(int64_t n) { return (n + RF_PAD - 1) / RF_PAD * RF_PAD; }

/* Steps of input projection kept at once in inference. */
static inline int64_t rf_chunk_steps(int64_t T, int64_t B, int64_t G, int64_t H) {
    int64_t tc = (rf_small(T, B, G, H) ? RF_CHUNK_ELEMS_SMALL : RF_CHUNK_ELEMS) / (B * G * H);
    if (tc < 4) tc = 4;
    return tc < T ? tc : T;
}

/* Sizes valid and small enough that every BLAS dimension and leading dimension fits in an int
 * and every element count in int64. */
static inline int rf_sizes_ok(int64_t T, int64_t B, int64_t I, int64_t H, int64_t G) {
    if (T < 1 || B < 1 || I < 1 || H < 1) return 0;
    const int64_t lim = INT_MAX;
    if (B > lim || I > lim || H > lim / 4) return 0;
    if (T > lim / B) return 0;                     /* T*B rows */
    if (G * H > lim / (I > H ? I : H)) return 0;   /* weight sizes */
    if (T * B > INT64_MAX / 16 / (G * H + I)) return 0;
    return 1;
}

static inline int rf_lengths_ok(const int64_t *lengths, int64_t T, int64_t B) {
    if (!lengths) return 1;
    for (int64_t b = 0; b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T) return 0;
    return 1;
}

static inline int rf_valid(const int64_t *lengths, int64_t t, int64_t b) {
    return !lengths || t < lengths[b];
}

/* Threads of the batch split: at most one per batch row. (A thread with no sequence of its own
 * could only share the input projection, and the rows it projected then had to cross to the
 * cache of the core running the steps: measured slower than one thread on an Ice Lake Xeon, B = 1,
 * LSTM (T,I,H) = (200,64,128): 0.92 vs 0.85 ms. Such problems now mostly take the unit split,
 * rf_unit_threads, which gives every thread its own share of every step.) */
static inline int rf_threads(int n_threads, int64_t B) {
#ifdef RNNFAST_OPENMP
    int64_t n = n_threads < 1 ? 1 : n_threads;
    return (int)(n < B ? n : B);
#else
    (void)n_threads; (void)B;
    return 1;
#endif
}

/* Threads of the LSTM's and GRU's small-path forward. Inference: at most one per sequence; a
 * thread with no sequence of its own would only add the region's overhead. Training: as many
 * as the backward will use, even without a sequence each, because a thread that sat out the
 * forward may have gone to sleep by the time the backward needs it, and waking it on this machine
 * cost more than the whole difference (Ice Lake, LSTM (1,200,64,128) forward+backward, before the
 * unit split, 0.3 s pause before each block of calls: 2.6-3.3 ms with one forward thread, 2.3-2.8
 * with two). The RNN forward
 * keeps one per sequence: its forward+backward measured the same either way. */
static inline int rf_fwd_threads(int n_threads, int64_t T, int64_t B, int training) {
    return rf_threads(n_threads, training ? T * B : B);
}

/* Batch rows [*b0, *b1) of thread `it` of `nt`. */
static inline void rf_slice(int64_t B, int nt, int it, int64_t *b0, int64_t *b1) {
    *b0 = B * it / nt;
    *b1 = B * (it + 1) / nt;
}

/* A barrier of the small path's OpenMP region (none when one thread runs alone). */
static inline void rf_barrier(int nt) {
#ifdef RNNFAST_OPENMP
    if (nt > 1) {
#pragma omp barrier
    }
#else
    (void)nt;
#endif
}

/* Call fn(args..., n, it) for it = 0..n-1: directly when nt == 1, else once per thread of one
 * OpenMP region of up to nt threads (nt is 1 whenever OpenMP is not built in: rf_threads). n is
 * the team's actual size, which can be smaller than asked for (a call from inside another
 * parallel region without nested parallelism gets a team of one, as can OMP_DYNAMIC): every
 * split is computed from it, so no share of the work is left without a thread. */
#ifdef RNNFAST_OPENMP
#define RF_RUN_THREADS(nt, fn, ...)                                                             \
    do {                                                                                        \
        const int rf_nt_ = (nt);                                                                \
        if (rf_nt_ == 1) {                                                                      \
            fn(__VA_ARGS__, 1, 0);                                                              \
        } else {                                                                                \
            _Pragma("omp parallel num_threads(rf_nt_)")                                         \
            fn(__VA_ARGS__, omp_get_num_threads(), rf_thread_num());                           \
        }                                                                                       \
    } while (0)
#else
#define RF_RUN_THREADS(nt, fn, ...) ((void)(nt), fn(__VA_ARGS__, 1, 0))
#endif

/* ---- the unit split: fewer sequences than threads ------------------------------------------
 * With B = 1 (generally B < threads) the batch split leaves all but one thread idle, and each
 * step's product reads the whole of W_hh from that core's L2 for one row: on a 2-core Zen 4 it
 * ran at that cache's bandwidth (LSTM H = 128: 256 KB, 2.75 us a step). Instead, thread `it`
 * owns hidden units [u0,u1) of every sequence (every gate's columns for them, its c, its part of
 * h and of the gate gradients), so it reads only its part of the weights; the threads exchange
 * the new h (forward) or the step's gate gradients (backward) each split step through rf_step_sync
 * (a spin on each other's step counters: 70-140 ns here, an OpenMP barrier 250-300). Every
 * element is computed by the same code in the same order as in the batch split, so the results
 * are the same bits for any thread count. Used when W_hh has at least RF_UNITS_MIN_BYTES.
 * Measured side by side (2 threads against the batch split's one, float, B = 1, time new/old,
 * inference and forward+backward): (T,I,H) = (200,64,128) LSTM 0.73-0.80 / 0.71-0.80, GRU
 * 0.74-0.82 / 0.77, RNN (64 KB) 0.92-1.0 / 0.83-0.86; double LSTM 0.65 / 0.68, RNN 0.71 / 0.77;
 * (100,32,64) LSTM (64 KB) 0.96 / 0.89, GRU (48 KB) 0.97 / 0.96; but RNN (100,32,96) (36 KB)
 * 1.03 / 1.02. A long enough forward or backward also checks, as it runs, that the split beats
 * thread 0 alone (rf_trial, below). */
#ifndef RF_UNITS_MIN_BYTES
#define RF_UNITS_MIN_BYTES ((int64_t)48 << 10)
#endif
#define RF_UNITS_MAX_THREADS 8

/* Threads of the unit split, or 0 when it is not used. Each owns at least `vec` units (one
 * vector, vec elements). */
static inline int rf_unit_threads(int n_threads, int64_t B, int64_t G, int64_t H, int64_t vec,
                                  int64_t elem_size) {
#ifdef RNNFAST_OPENMP
    if (B >= n_threads || G * H * H * elem_size < RF_UNITS_MIN_BYTES) return 0;
    int64_t n = H / vec;
    if (n > n_threads) n = n_threads;
    if (n > RF_UNITS_MAX_THREADS) n = RF_UNITS_MAX_THREADS;
    return n >= 2 ? (int)n : 0;
#else
    (void)n_threads; (void)B; (void)G; (void)H; (void)vec; (void)elem_size;
    return 0;
#endif
}

/* Units [*u0, *u1) of H for thread `it` of `nt`: boundaries at multiples of vec, so that the
 * element-wise loops split their elements into vector body and remainder as the whole row does. */
static inline void rf_units(int64_t H, int nt, int it, int64_t vec, int64_t *u0, int64_t *u1) {
    *u0 = H * it / nt / vec * vec;
    *u1 = it == nt - 1 ? H : H * (it + 1) / nt / vec * vec;
}

/* This thread's share of the small path: the batch split's rows [b0,b1) of all H units, or the
 * unit split's units [u0,u1) of all B rows. */
static inline void rf_share(int unit, int64_t B, int64_t H, int64_t vec, int nt, int it,
                            int64_t *b0, int64_t *b1, int64_t *u0, int64_t *u1) {
    *b0 = 0; *b1 = B; *u0 = 0; *u1 = H;
    if (unit) rf_units(H, nt, it, vec, u0, u1);
    else rf_slice(B, nt, it, b0, b1);
}

/* Give the CPU to another runnable thread (POSIX sched_yield; elsewhere a no-op). */
#if defined(__unix__) || defined(__APPLE__)
int sched_yield(void);
static inline void rf_yield(void) { sched_yield(); }
#else
static inline void rf_yield(void) {}
#endif

/* One step counter per thread, each on its own cache line; zeroed before the region. `solo` and
 * `clear` (thread 0's only): the outcome of the split's trial (rf_trial), written before the step
 * counter's release store that the other threads wait for. */
typedef struct {
    _Alignas(64) _Atomic int64_t step;
    int solo, clear;
    char pad[64 - sizeof(int64_t) - 2 * sizeof(int)];
} rf_step_flag;

/* Thread `it` has reached its s-th step sync (all it wrote is published), then waits until
 * every thread has. A spin on the other threads' counters: a step is microseconds, a futex wait
 * far more. After RF_SPIN_YIELD rounds it yields the CPU between checks, so that with more
 * threads than free CPUs (other processes, or several calls at once) the thread being waited for
 * gets to run instead of losing its time slices to the spinner. */
#define RF_SPIN_YIELD 4096
static inline void rf_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
/* One round of a spin wait that has gone `spins` rounds: a pause, or the CPU given up. */
static inline void rf_spin(long spins) {
    if (spins >= RF_SPIN_YIELD) rf_yield();
    else rf_pause();
}
/* With `ahead`, while it waits, it brings up to `len` bytes from there (what the thread reads
 * first after the sync: the start of its next step product's weights) into L1, two cache lines
 * a round, rather than leave the core idle and have the product wait for them from L2.
 * The unit split's steps (rf_trial_end, rf_step_dh in rf_real.h). B = 1, (T,I,H) =
 * (200,64,128), in-process A/B, 2 threads, same bits: LSTM inference 0.923-0.981 with 24 KB (8
 * KB 0.964-0.976, 40 KB 0.961-0.973), GRU 0.986, RNN 0.991. */
#define RF_AHEAD_BYTES ((int64_t)24 << 10)
static inline void rf_step_sync_ahead(rf_step_flag *f, int nt, int it, int64_t s,
                                      const char *ahead, int64_t len) {
    atomic_store_explicit(&f[it].step, s, memory_order_release);
    int64_t q = 0;
    for (int j = 0; j < nt; j++)
        for (long spins = 0;
             j != it && atomic_load_explicit(&f[j].step, memory_order_acquire) < s; spins++) {
            if (q >= len) {
                rf_spin(spins);
                continue;
            }
            __builtin_prefetch(ahead + q, 0, 3);
            __builtin_prefetch(ahead + q + 64, 0, 3);
            q += 128;
        }
}
static inline void rf_step_sync(rf_step_flag *f, int nt, int it, int64_t s) {
    rf_step_sync_ahead(f, nt, it, s, NULL, 0);
}

/* Ask for all the cache lines of the `bytes` at p at once. After a split step's sync: what the
 * other threads wrote (h_{t-1}, the step's gate gradients), which the step product would
 * otherwise fetch from their cores a line at a time as its loop over k reaches them (the next
 * line's first load lies too far ahead for out-of-order execution to issue it early). B = 1,
 * (T,I,H) = (200,64,128), in-process A/B, same bits, inference / forward+backward: near LSTM
 * 0.992-0.995 / 0.987-1.015, GRU 0.973-0.980 / 0.976-0.991, RNN 0.944-0.950 / 0.930-0.986; far
 * LSTM 0.954 / 0.961, GRU 0.993 / 0.980, RNN 0.987 / 0.982 (the backward's part alone, near:
 * LSTM 0.994, GRU 0.994, RNN 0.977). */
static inline void rf_prefetch(const void *p, int64_t bytes) {
    const char *c = (const char *)p;
    for (int64_t q = 0; q < bytes; q += 64) __builtin_prefetch(c + q, 0, 3);
    if (bytes > 0) __builtin_prefetch(c + bytes - 1, 0, 3);
}

/* ---- the batch split's row stealing ---------------------------------------------------------
 * The batch split gives each thread the same rows, but on these VMs the two vCPUs finish a
 * region 10-17% apart, at random (the host takes one of them for a while), and the other waits.
 * So a thread that has finished its rows takes part of a slower thread's: it asks (rf_steal_take),
 * the owner answers at the top of its next step (rf_steal_give) by handing over the upper half of
 * its rows from that step on, and the thief runs those rows to the end. Every row is computed by
 * the same code in the same order whichever thread runs it and however many rows a product has
 * (rf_mm.c's contract), so the results stay the same bits. Rows whose product would have fewer
 * than RF_STEAL_MIN_ROWS rows, or fewer than RF_STEAL_MIN_STEPS steps left, are not split. A
 * thread's state: 0 running, k > 0 thread k-1 asks for rows, -1 finished (no more to give: a
 * thief's rows are never split again). answer: from the owner to this thread as a thief, 1 rows
 * (r0, r1 from step index s), 2 none. RF_STEAL_DELAY (tests): threads other than 0 spin that many
 * pause instructions a step, and before each piece they take (rf_piece_take), so that thread 0
 * steals rows and takes more pieces. */
#define RF_STEAL_MAX_THREADS 8
#ifndef RF_STEAL_MIN_ROWS
#define RF_STEAL_MIN_ROWS 4
#endif
#ifndef RF_STEAL_MIN_STEPS
#define RF_STEAL_MIN_STEPS 2
#endif
#ifndef RF_STEAL_DELAY
#define RF_STEAL_DELAY 0
#endif
#if RF_STEAL_DELAY
void rf_steal_counted(void); /* test builds: count the hand-overs (runtime.c) */
long rf_steal_count(void);
#endif
typedef struct {
    _Alignas(64) _Atomic int state;
    _Atomic int answer;
    int64_t r0, r1, s;
} rf_steal;

/* Ready the slots for a region of up to nt threads; NULL (no stealing) for one or more than
 * RF_STEAL_MAX_THREADS. */
static inline rf_steal *rf_steal_init(rf_steal *sl, int nt) {
    if (nt < 2 || nt > RF_STEAL_MAX_THREADS) return NULL;
    for (int i = 0; i < RF_STEAL_MAX_THREADS; i++) {
        atomic_init(&sl[i].state, 0);
        atomic_init(&sl[i].answer, 0);
    }
    return sl;
}

/* Owner `it` answers thief k (1 rows, 2 none): its state is reset first, as the thief may ask
 * again as soon as it has the answer; the release publishes the rows given and their data. */
static inline void rf_steal_answer(rf_steal *sl, int it, int k, int a) {
    atomic_store_explicit(&sl[it].state, 0, memory_order_relaxed);
    atomic_store_explicit(&sl[k].answer, a, memory_order_release);
}

/* Owner `it` at the top of step index n of its steps [., T): if a thief asks, hand it rows
 * [mid, *b1) from step n on and keep [b0, mid), or say none. */
static inline void rf_steal_give(rf_steal *sl, int it, int64_t n, int64_t T, int64_t b0,
                                 int64_t *b1) {
    if (RF_STEAL_DELAY && it != 0)
        for (int i = 0; i < RF_STEAL_DELAY; i++) rf_pause();
    /* acquire: the thief reset its answer before asking */
    const int k = atomic_load_explicit(&sl[it].state, memory_order_acquire) - 1;
    if (k < 0) return;
    const int64_t mid = b0 + (*b1 - b0) / 2;
    const int give = mid - b0 >= RF_STEAL_MIN_ROWS && T - n >= RF_STEAL_MIN_STEPS;
    if (give) {
        sl[k].r0 = mid; sl[k].r1 = *b1; sl[k].s = n;
        *b1 = mid;
#if RF_STEAL_DELAY
        rf_steal_counted();
#endif
    }
    rf_steal_answer(sl, it, k, give ? 1 : 2);
}

/* Owner `it` has finished its rows: refuse the thief that may be asking, then take none. */
static inline void rf_steal_done(rf_steal *sl, int it) {
    for (;;) {
        int s = 0;
        if (atomic_compare_exchange_strong(&sl[it].state, &s, -1)) return;
        if (s < 0) return;
        rf_steal_answer(sl, it, s - 1, 2);
    }
}

/* Thread `it` (finished: rf_steal_done) asks the others in turn; returns 1 with rows [*r0,*r1)
 * from step index *s, or 0 when none gave any. A busy owner (another thief asking) is skipped. */
static inline int rf_steal_take(rf_steal *sl, int nt, int it, int64_t *r0, int64_t *r1,
                                int64_t *s) {
    for (int j = 1; j < nt; j++) {
        const int v = (it + j) % nt;
        int zero = 0;
        if (!atomic_compare_exchange_strong(&sl[v].state, &zero, it + 1)) continue;
        int a;
        for (long spins = 0; !(a = atomic_load_explicit(&sl[it].answer, memory_order_acquire));
             spins++)
            rf_spin(spins);
        atomic_store_explicit(&sl[it].answer, 0, memory_order_relaxed);
        if (a == 1) {
            *r0 = sl[it].r0; *r1 = sl[it].r1; *s = sl[it].s;
            return 1;
        }
    }
    return 0;
}

/* The batch split's time loop with row stealing: the statements after b1 (the step), for step
 * index n = 0..T-1 of rows [b0, b1) (the caller's variables, which the statements use), then,
 * with sl, for rows taken from slower threads, each from its own step index on. */
#define RF_STEAL_STEPS(sl, nt, it, T, n, b0, b1, ...)                                           \
    for (int64_t rf_n0_ = 0;;) {                                                                \
        for (int64_t n = rf_n0_; n < (T); n++) {                                                \
            if (sl) rf_steal_give(sl, it, n, T, b0, &(b1));                                     \
            __VA_ARGS__;                                                                        \
        }                                                                                       \
        if (!(sl)) break;                                                                       \
        rf_steal_done(sl, it);                                                                  \
        if (!rf_steal_take(sl, nt, it, &(b0), &(b1), &rf_n0_)) break;                           \
    }

/* ---- pieces handed out in turn -------------------------------------------------------------
 * Work cut into pieces that any thread may run: each thread takes the next piece from one
 * shared counter when it has finished its last, so a thread the host slows down runs fewer
 * (the work after the backward's time loop, rf_wgrad_after). Each piece writes its own outputs,
 * and the region's end publishes them, so that counter needs no ordering. `done` counts the
 * threads that have finished a first part of the work, so that the last of them can combine
 * their results without a barrier (rf_pieces_last). */
typedef struct {
    _Alignas(64) _Atomic int64_t next;
    _Alignas(64) _Atomic int done;
} rf_pieces;

static inline rf_pieces *rf_pieces_init(rf_pieces *p) {
    atomic_init(&p->next, 0);
    atomic_init(&p->done, 0);
    return p;
}

/* The calling thread, one of `nt`, has finished its first part: 1 if it is the last of them to
 * (it then sees everything the others wrote before they counted themselves). */
static inline int rf_pieces_last(rf_pieces *p, int nt) {
    return atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) == nt - 1;
}

/* The next piece for thread `it` (RF_STEAL_DELAY, tests: threads other than 0 spin first, so
 * that thread 0 takes more than its share). */
static inline int64_t rf_piece_take(rf_pieces *p, int it) {
    if (RF_STEAL_DELAY && it != 0)
        for (int i = 0; i < RF_STEAL_DELAY; i++) rf_pause();
    return atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
}

/* Rows per piece of a product with `cost` multiply-adds a row: about RF_PIECE_MACS (a few
 * microseconds; the counter costs ~0.1 us a piece), a multiple of `mult`. */
#ifndef RF_PIECE_MACS
#define RF_PIECE_MACS ((int64_t)1 << 18)
#endif
static inline int64_t rf_piece_rows(int64_t cost, int64_t mult) {
    const int64_t r = cost > 0 ? (RF_PIECE_MACS + cost - 1) / cost : mult;
    return (r + mult - 1) / mult * mult;
}

/* Run fn(args..., NULL, n, it) on nt threads (the batch split) with row stealing: *steal (the
 * argument struct's field) points to their slots for the region. */
#define RF_RUN_STEALING(nt, steal, fn, ...)                                                     \
    do {                                                                                        \
        const int rf_snt_ = (nt);                                                               \
        rf_steal rf_sl_[RF_STEAL_MAX_THREADS];                                                  \
        (steal) = rf_steal_init(rf_sl_, rf_snt_);                                               \
        RF_RUN_THREADS(rf_snt_, fn, __VA_ARGS__, NULL);                                         \
    } while (0)

/* Run fn(args..., f, n, it) on up to nu threads (the unit split), f their zeroed step counters. */
#define RF_RUN_UNITS(nu, fn, ...)                                                               \
    do {                                                                                        \
        rf_step_flag rf_f_[RF_UNITS_MAX_THREADS];                                               \
        for (int rf_i_ = 0; rf_i_ < RF_UNITS_MAX_THREADS; rf_i_++) {                            \
            atomic_init(&rf_f_[rf_i_].step, 0);                                                 \
            rf_f_[rf_i_].solo = rf_f_[rf_i_].clear = 0;                                         \
        }                                                                                       \
        RF_RUN_THREADS(nu, fn, __VA_ARGS__, rf_f_);                                             \
    } while (0)

/* ---- the unit split's trial of itself ------------------------------------------------------
 * Whether splitting each step's units pays depends on how fast the threads hand each other the
 * new h, and on a VM that changes from one minute to the next: the same two vCPUs of a Zen 3
 * waited 150-470 cycles a step sync at one time and 1100-1600 at another (the host had moved
 * them), and the RNN (1,200,64,128) forward took 0.7-0.8 of one thread's time in the first
 * case, 1.5-2.0 in the second (a step split: 0.6-1.0 us, then 2.0; alone: 0.9-1.1). So a
 * forward or backward of at least RF_TRIAL_MIN_T steps measures it: its first K steps run
 * split, the next K on thread 0 alone (the others wait), and the rest the faster way
 * (K = RF_TRIAL_STEPS; each way timed over its last K-1 steps, its first one paying for the
 * switch; the forwards: rf_trial_top, the backwards: rf_trial_bwd_top). Both ways compute every
 * element with the same code in the same order, so the results are the same bits whichever
 * wins, and no state outlives the call. But when thread 0's step syncs took at most
 * RF_TRIAL_CLEAR of its split steps' time, the split is clearly the faster: thread 0 says so at
 * step K and no step runs alone (rf_trial_time decides it). Zen 5, near (a cache line 45-75 ns
 * between the vCPUs), B = 1, inference, split against alone after the trial (RF_TRIAL_FORCE 3
 * against 1): (T,I,H) = (200,64,128) LSTM 0.64, GRU 0.61, RNN 0.70, (100,32,64) LSTM 0.68, GRU
 * 0.80; alone took 1.65-1.96x a split step's busy time (its time less the sync's wait). Far (190
 * ns and more), both grow and alone was once the faster (bench/RESULTS.md), so only waits of a
 * tenth count: near they are 0.06-0.08 of the LSTM's (200,64,128) forward steps (backward
 * 0.06-0.20), GRU 0.07-0.17, RNN 0.15-0.22, (100,32,64) 0.20-0.33; far a sync waits 0.4 us and
 * more. RF_TRIAL_FORCE (tests): 1 always alone after the trial, 2 always split after it, 3
 * always split without it (clear), 0 as measured. */
#ifndef RF_TRIAL_STEPS
#define RF_TRIAL_STEPS 8
#endif
#ifndef RF_TRIAL_MIN_T
#define RF_TRIAL_MIN_T 64
#endif
#ifndef RF_TRIAL_FORCE
#define RF_TRIAL_FORCE 0
#endif
#ifndef RF_TRIAL_CLEAR
#define RF_TRIAL_CLEAR 0.10
#endif
_Static_assert(RF_TRIAL_STEPS >= 2, "a trial times each way over at least one step");

/* Wall-clock seconds (only the unit split, an OpenMP build's, asks). */
static inline double rf_wtime(void) {
#ifdef RNNFAST_OPENMP
    return omp_get_wtime();
#else
    return 0;
#endif
}

/* One thread's view of its split: the step counters (NULL: the batch split), whether the
 * current step runs split (else thread 0 runs all of it, or this is the batch split), whether
 * thread 0 runs the rest alone (solo; the backwards), whether the split was clearly the faster
 * (clear), the first step of the current split phase (the forwards: its h_{t-1} is in h_n), the
 * syncs so far and the trial's length (0: none, or over) and timings (thread 0's: whether its
 * step syncs are being timed, and their sum); what the step syncs bring into L1 while they wait
 * (rf_trial_ahead; none when NULL). */
typedef struct {
    rf_step_flag *f;
    int nt, it, unit, solo, clear, timing;
    int64_t t_unit, s, k, ahead_len;
    double mark, split_s, solo_s, wait_s;
    const char *ahead;
} rf_trial;

/* The split of T steps, the first chunk of steps tc0 long: the trial and the step after it
 * (2K, where thread 0 publishes the outcome) lie in it, so every thread meets the trial's
 * transitions in the same chunk (with 2K the next chunk's first step, in a forward thread 0
 * would project that chunk alone while the others still ran the first one's loop; in the LSTM's
 * backward it would wait at the chunk's barrier while the others wait for the outcome). */
static inline rf_trial rf_trial_init(rf_step_flag *f, int nt, int it, int64_t T, int64_t tc0) {
    rf_trial tr = {0};
    tr.f = f; tr.nt = nt; tr.it = it; tr.unit = f != NULL;
    if (f && nt > 1 && T >= RF_TRIAL_MIN_T && tc0 > 2 * RF_TRIAL_STEPS) tr.k = RF_TRIAL_STEPS;
    return tr;
}

/* The step syncs' look-ahead (rf_step_sync_ahead): the first RF_AHEAD_BYTES of the `bytes` at p
 * (the thread's part of the weights, which each step product reads from its start). */
static inline void rf_trial_ahead(rf_trial *tr, const void *p, int64_t bytes) {
    tr->ahead = (const char *)p;
    tr->ahead_len = bytes < RF_AHEAD_BYTES ? bytes : RF_AHEAD_BYTES;
}

/* The unit split's shares of units [*s0,*s1) this thread runs at the current step: its own when
 * split; all of them for thread 0 alone after the trial. */
static inline void rf_trial_shares(const rf_trial *tr, int *s0, int *s1) {
    *s0 = tr->unit ? tr->it : 0;
    *s1 = tr->unit ? tr->it + 1 : tr->nt;
}

/* This thread's share of the current step (rf_share): its units when split, else all of it. */
static inline void rf_trial_share(const rf_trial *tr, int64_t B, int64_t H, int64_t vec,
                                  int64_t *b0, int64_t *b1, int64_t *u0, int64_t *u1) {
    rf_share(tr->unit, B, H, vec, tr->unit ? tr->nt : 1, tr->unit ? tr->it : 0, b0, b1, u0, u1);
}

/* Thread 0 times the trial at the end of its n-th step (from 0): the split steps [1,K) and
 * their step syncs (whether the split is clearly the faster), then the steps [K+1,2K) alone,
 * which read the clock twice each, as the split ones do around their step syncs
 * (rf_trial_sync), so that the reads cost both ways the same. */
static inline void rf_trial_time(rf_trial *tr, int64_t n) {
    if (!tr->k || tr->it != 0) return;
    if (n > tr->k && n < 2 * tr->k) {
        (void)rf_wtime();
        (void)rf_wtime();
    }
    if (n == 0 || n == tr->k) {
        tr->mark = rf_wtime();
        tr->timing = n == 0;
    } else if (n == tr->k - 1) {
        tr->split_s = rf_wtime() - tr->mark;
        tr->timing = 0;
        tr->clear = RF_TRIAL_FORCE ? RF_TRIAL_FORCE == 3
                                   : tr->wait_s <= RF_TRIAL_CLEAR * tr->split_s;
    } else if (n == 2 * tr->k - 1) {
        tr->solo_s = rf_wtime() - tr->mark;
    }
}

/* A split step's step sync (rf_step_sync_ahead), timed when thread 0 is timing them. */
static inline void rf_trial_sync(rf_trial *tr) {
    const double t0 = tr->timing ? rf_wtime() : 0;
    rf_step_sync_ahead(tr->f, tr->nt, tr->it, ++tr->s, tr->ahead, tr->ahead_len);
    if (tr->timing) tr->wait_s += rf_wtime() - t0;
}

/* After step t: the step sync when split; thread 0 times the trial. */
static inline void rf_trial_end(rf_trial *tr, int64_t t) {
    if (tr->unit) rf_trial_sync(tr);
    rf_trial_time(tr, t);
}

/* Thread 0 decides (alone from here on?) and publishes it with its next step sync; when the
 * split was clearly the faster (at step K), the trial is over. f[0].clear is written only then,
 * before the others may read it (rf_trial_bwd_top). */
static inline void rf_trial_publish(rf_trial *tr) {
    tr->solo = tr->clear ? 0 : RF_TRIAL_FORCE ? RF_TRIAL_FORCE == 1 : tr->solo_s <= tr->split_s;
    tr->f[0].solo = tr->solo;
    if (tr->clear) tr->f[0].clear = 1;
    rf_step_sync(tr->f, tr->nt, 0, ++tr->s);
    tr->unit = !tr->solo;
    if (tr->clear) tr->k = 0;
}

/* Whether thread 0 published that the split was clearly the faster (with a step sync this
 * thread has passed); then the trial is over for this thread too. */
static inline int rf_trial_cleared(rf_trial *tr) {
    tr->clear = tr->f[0].clear;
    if (tr->clear) tr->k = 0;
    return tr->clear;
}

/* The other threads wait for thread 0's decision (rf_trial_publish). */
static inline void rf_trial_await(rf_trial *tr) {
    rf_step_sync(tr->f, tr->nt, tr->it, ++tr->s);
    tr->solo = tr->f[0].solo;
    rf_trial_cleared(tr);
}

/* The forwards, at the top of step t = K or 2K of a trial: at K thread 0 goes on alone (its
 * caller first moves h_{t-1} from hb into h_n) while the others wait for the outcome, which
 * thread 0 publishes at 2K; or, the split clearly the faster, thread 0 publishes it at K and all
 * go on split. Returns the step to run next (the others resume at 2K, or K) or -1 when this
 * thread has no more steps, with its share of the step. */
static inline int64_t rf_trial_top(rf_trial *tr, int64_t t, int64_t B, int64_t H, int64_t vec,
                                   int64_t *b0, int64_t *b1, int64_t *u0, int64_t *u1) {
    if (tr->it == 0) {
        if (t == tr->k && !tr->clear) {
            tr->unit = 0;
        } else {
            if (!tr->clear) tr->t_unit = t;
            rf_trial_publish(tr);
        }
        rf_trial_share(tr, B, H, vec, b0, b1, u0, u1);
        return t;
    }
    if (t != tr->k) return t; /* not reached: the others go from K straight to 2K's step */
    rf_trial_await(tr);
    if (tr->solo) return -1;
    if (tr->clear) return t;
    tr->t_unit = 2 * tr->k;
    return tr->t_unit;
}

/* The backwards' trial, over their n-th step (from 0, from the last step back). Each split step
 * syncs inside (rf_step_dh: the gate gradients, before dh += da_t @ W_hh), so at step K every
 * thread first syncs once more (everyone's share of dh is in); thread 0 then runs steps
 * [K,2K) alone while the others wait for the outcome, which thread 0 publishes at step 2K. Or,
 * the split clearly the faster, that sync carries the outcome (rf_trial_publish) and all run
 * step K split.
 * Alone, thread 0 takes all rows and units (rf_trial_share) and the others skip the remaining
 * steps (tr->solo), but not what follows the step loop: the products of the gate gradients
 * after it are shared as before, after a barrier (thread 0's last steps must be in). Returns
 * whether this thread runs step n. */
static inline int rf_trial_bwd_top(rf_trial *tr, int64_t n, int64_t B, int64_t H, int64_t vec,
                                   int64_t *b0, int64_t *b1, int64_t *u0, int64_t *u1) {
    if (!tr->k || n < tr->k || (n > 2 * tr->k && !tr->solo)) return 1;
    if (tr->it == 0) {
        if (n == tr->k) {
            if (tr->clear) {
                rf_trial_publish(tr);
                return 1;
            }
            rf_step_sync(tr->f, tr->nt, 0, ++tr->s);
            tr->unit = 0;
            rf_trial_share(tr, B, H, vec, b0, b1, u0, u1);
        } else if (n == 2 * tr->k) {
            rf_trial_publish(tr);
            rf_trial_share(tr, B, H, vec, b0, b1, u0, u1);
        }
        return 1;
    }
    if (n == tr->k) {
        rf_step_sync(tr->f, tr->nt, tr->it, ++tr->s);
        if (rf_trial_cleared(tr)) return 1; /* thread 0's sync at K carried the outcome */
        rf_trial_await(tr);
    }
    return !tr->solo && n == 2 * tr->k; /* steps [K,2K) are thread 0's */
}

/* Columns [*j0, *j1) of n for thread `it` of `nt` in the weight-gradient phase: boundaries at
 * multiples of RF_PAD, so every thread's columns start on a cache line of a padded row. */
static inline void rf_slice_cols(int64_t n, int nt, int it, int64_t *j0, int64_t *j1) {
    int64_t a = n * it / nt / RF_PAD * RF_PAD, b = n * (it + 1) / nt / RF_PAD * RF_PAD;
    *j0 = a;
    *j1 = it == nt - 1 ? n : b;
}

/* Steps per chunk of the small path's backward (rf_wgrad_cols_chunk in rf_real.h): the gate
 * gradients of one chunk, about RF_BWD_CHUNK_ELEMS elements: small enough to stay in L2 (and to
 * keep the workspace, allocated per call, small), but at least RF_BWD_CHUNK_ROWS rows of T*B,
 * the depth (K) of the chunk's weight-gradient products, each of which reads and writes all of
 * its thread's columns of dW^T. The LSTM at (128,100,512,512) had one step (K = 128) a chunk;
 * with four, forward+backward took 0.92-0.93 of the time (Zen 4, in-process A/B, 3 runs of 5
 * rounds; (64,100,128,256), 4 -> 8 steps: 0.94-1.0). */
#ifndef RF_BWD_CHUNK_ELEMS
#define RF_BWD_CHUNK_ELEMS ((int64_t)1 << 18)
#endif
#ifndef RF_BWD_CHUNK_ROWS
#define RF_BWD_CHUNK_ROWS 512
#endif
static inline int64_t rf_bwd_chunk_steps(int64_t T, int64_t B, int64_t GH) {
    int64_t tc = RF_BWD_CHUNK_ELEMS / (B * GH), tr = (RF_BWD_CHUNK_ROWS + B - 1) / B;
    if (tc < tr) tc = tr;
    return tc < T ? tc : T;
}

/* Instruction sets with code of their own, chosen at run time (rf_isa in rf_mm.c: the best one
 * the CPU has and the build compiled, constant for the process, so results are reproducible):
 * the matrix products (rf_mm.c) and the element-wise passes (RF_MULTIVERSION) have an AVX-512
 * copy, an AVX2+FMA copy and a baseline one. The build contracts multiply-adds
 * (-ffp-contract=fast) where the ISA has FMA, so the copies may differ in the last bit from each
 * other; each is deterministic whatever the thread count. -DRNNFAST_NO_AVX512 builds without the
 * AVX-512 copies, -DRNNFAST_NO_AVX2 without either (the tests use them to run every copy). */
#define RF_ISA_GENERIC 0
#define RF_ISA_AVX2 1   /* AVX2 and FMA */
#define RF_ISA_AVX512 2 /* AVX-512 F, VL, DQ and BW (and AVX2, FMA) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RNNFAST_NO_AVX2)
#define RF_HAVE_AVX2 1
#include <immintrin.h> /* rf_vec.h's AVX2 and AVX-512 forms, rf_mm.c's kernels */
#define RF_AVX2_TARGET __attribute__((target("avx2,fma")))
#if !defined(RNNFAST_NO_AVX512)
#define RF_HAVE_AVX512 1
#define RF_AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#endif
#endif
#ifndef RF_AVX2_TARGET
#define RF_AVX2_TARGET
#endif
#ifndef RF_AVX512_TARGET
#define RF_AVX512_TARGET
#endif
int rf_isa(void);

/* Packed B operands (rf_mmp): B's columns in panels of np, each panel's rows one after the other
 * (a row of ld elements, rf_packed_ld). AVX-512 (and the portable loops): panels of 8 AVX-512
 * vectors, RF_NP_F32 / RF_NP_F64. AVX2: panels of 2 AVX2 vectors, a tile's width
 * (RF_NP_AVX2_F32 / _F64), so the k block of B a tile sweeps is one contiguous run that the
 * hardware prefetches as a stream; in 128-column panels its rows lay 512 bytes apart, one cache
 * line used from each. Against those, in-process A/B on Zen 3, float32, 2 threads, time new/old
 * (inference / forward+backward), same bits: (1,200,64,128) LSTM 0.80/0.85, GRU 0.81/0.83, RNN
 * 0.84/0.89; (64,100,128,256) 0.90/0.97, 0.94/0.94, 0.91/0.94; (128,100,512,512) 0.79/0.89,
 * 0.79/1.02, 0.97/0.90; (32,50,32,64) 0.95/0.98, 0.98/0.95, 0.99/0.96. rf_np_f32 / rf_np_f64:
 * the width for the kernels of rf_isa, the one place the packers and the products take it
 * from. */
#define RF_NP_F32 128
#define RF_NP_F64 64
#ifndef RF_NP_AVX2_F32
#define RF_NP_AVX2_F32 16
#endif
#ifndef RF_NP_AVX2_F64
#define RF_NP_AVX2_F64 8
#endif
static inline int64_t rf_np_f32(void) {
    return rf_isa() == RF_ISA_AVX2 ? RF_NP_AVX2_F32 : RF_NP_F32;
}
static inline int64_t rf_np_f64(void) {
    return rf_isa() == RF_ISA_AVX2 ? RF_NP_AVX2_F64 : RF_NP_F64;
}

/* Row length within a packed (K,N) matrix's panels: np, or for a matrix of one panel its
 * width rounded up to a cache line, so that a narrow B (a dx product's I = 32 columns) keeps its
 * rows 128 bytes apart; spread over 512-byte panel rows, its 128-row blocks would use a quarter
 * of the L1 sets (measured slower). AVX2's panels are one cache line wide: there ld is np. */
static inline int64_t rf_packed_ld(int64_t N, int64_t np, int64_t line) {
    return N > np ? np : (N + line - 1) / line * line;
}

/* ...for each dtype (cache lines of 16 floats, 8 doubles). */
static inline int64_t rf_packed_ld_f32(int64_t N) { return rf_packed_ld(N, rf_np_f32(), 16); }
static inline int64_t rf_packed_ld_f64(int64_t N) { return rf_packed_ld(N, rf_np_f64(), 8); }

/* Elements of a packed (K,N) matrix for either dtype and instruction set: up to 64 columns,
 * rows of whole cache lines of floats (one panel of AVX-512's, or AVX2's panels of 16 floats or
 * 8 doubles); wider, whole panels of the widest, RF_NP_F32. */
_Static_assert(RF_NP_F32 >= 64 && RF_NP_F64 >= 64 && 16 % RF_NP_AVX2_F32 == 0 &&
                   16 % RF_NP_AVX2_F64 == 0,
               "rf_packed_len: up to 64 columns, one AVX-512 panel or AVX2 panels within 16");
static inline int64_t rf_packed_len(int64_t K, int64_t N) {
    const int64_t w = N <= 64 ? 16 : RF_NP_F32;
    return K * ((N + w - 1) / w * w);
}

/* Forward workspace of the small path for its weights: W_ih^T (I,GH) and W_hh^T (H,GH) packed
 * (rf_pack_fwd). */
static inline int64_t rf_fwd_small_extra(int64_t I, int64_t H, int64_t GH) {
    return rf_pad(rf_packed_len(I, GH)) + rf_pad(rf_packed_len(H, GH));
}

/* Backward workspace of the small path beyond the gate gradients: packed copies of w_hh (GH,H)
 * and w_ih (GH,I) (rf_pack_bwd), the B operands of the per-step and dx products (in use or not,
 * the at least GH*(H+I) elements are then the scratch of the weight gradients' final
 * transposes). */
static inline int64_t rf_bwd_small_extra(int64_t I, int64_t H, int64_t GH) {
    return rf_pad(rf_packed_len(GH, H)) + rf_pad(rf_packed_len(GH, I));
}

/* The unit split's weights (rf_unit_threads; rf_pack_units, rf_pack_units_bwd and the step
 * products in rf_real.h): each thread's share of them as a packed matrix of its own, so that one
 * row's step product sweeps one contiguous block, with every gate's columns in flight in the
 * forwards, instead of column ranges of the whole weights (in the forwards, G of them one after
 * the other, each too narrow to hide the FMA latency; each half of every panel row).
 * Forward, share s of nt (units [u0,u1), rf_units), from its start: its W_hh^T, (H, G*np) with
 * gate g's units at columns [g*np, g*np + u1-u0) and zeros up to np, the share's width rounded
 * up to vec; the step product's rows (B, G*np); the share of b_hh (G*np). Backward (bwd): its
 * columns [u0,u1) of w_hh (GH,H), (GH, u1-u0), the B operand of its columns of dh.
 * Against the column ranges, in-process A/B on Zen 5, float, 2 threads, B = 1, (T,I,H) =
 * (200,64,128), time new/old, same bits: inference LSTM 0.785, GRU 0.856, RNN 0.745; forward +
 * backward 0.871, 0.902, 0.975 with the forwards' parts alone, then 0.879, 0.881, 0.851 with
 * the backwards' too (one row's product over 128 KB of the LSTM's W_hh^T: 1.0-1.1 us as G
 * ranges, 0.6-0.76 us packed so, 0.54-0.70 us merely to read those bytes from L2). Elements of
 * share s's part; the shares lie one after the other. */
static inline int64_t rf_unit_share_len(int64_t B, int64_t H, int64_t G, int nt, int s,
                                        int64_t vec, int bwd) {
    int64_t u0, u1;
    rf_units(H, nt, s, vec, &u0, &u1);
    if (bwd) return rf_pad(rf_packed_len(G * H, u1 - u0));
    const int64_t N = G * ((u1 - u0 + vec - 1) / vec * vec);
    return rf_pad(rf_packed_len(H, N)) + rf_pad(B * N) + rf_pad(N);
}

/* Workspace for the unit split's weights, enough for any thread count and either dtype (vec 8
 * or 16); 0 when B rules the split out for every thread count. */
static inline int64_t rf_units_extra(int64_t B, int64_t H, int64_t G, int bwd) {
    int64_t most = 0;
    for (int64_t vec = 8; vec <= 16 && B < RF_UNITS_MAX_THREADS; vec += 8)
        for (int nt = 1; nt <= RF_UNITS_MAX_THREADS; nt++) {
            int64_t n = 0;
            for (int s = 0; s < nt; s++) n += rf_unit_share_len(B, H, G, nt, s, vec, bwd);
            if (n > most) most = n;
        }
    return most;
}

static inline int rf_thread_num(void) {
#ifdef RNNFAST_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* rows (n rows of GH, leading dimension ld) = bias, or 0 when bias is NULL (rf_fill_rows_f32,
 * _f64: the large path's bias before a BLAS product, and the portable kernels' rf_mmp_set). */
#define RF_FILL_ROWS(real, sfx)                                                                 \
    static inline void rf_fill_rows_##sfx(real *rows, int64_t n, int64_t ld, const real *bias,  \
                                          int64_t GH) {                                         \
        for (int64_t r = 0; r < n; r++) {                                                       \
            real *row = rows + r * ld;                                                          \
            if (bias) memcpy(row, bias, (size_t)GH * sizeof(real));                             \
            else memset(row, 0, (size_t)GH * sizeof(real));                                     \
        }                                                                                       \
    }
RF_FILL_ROWS(float, f32)
RF_FILL_ROWS(double, f64)

/* Small matrix product C (M,N) += A (M,K) @ Bm (K,N), row-major with leading dimensions (A's
 * element (i,k) at A[i*lda + k*acs]), in a fixed order: each C element is C + sum_k A[i,k]*Bm[k,j]
 * accumulated k = 0..K-1, whatever M, N and the blocking, so results never depend on how rows are
 * split among threads. rf_mm.c. */
void rf_mm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, int64_t acs,
               const float *Bm, int64_t ldb, float *C, int64_t ldc);
void rf_mm_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, int64_t acs,
               const double *Bm, int64_t ldb, double *C, int64_t ldc);

/* The same with B packed: its columns in panels of np = rf_np_f32() / rf_np_f64() (per
 * instruction set, above), each panel kp rows of ld = rf_packed_ld(N) contiguous elements (rows
 * [0,K) used), panel p at Bm + p * kp * ld;
 * N must be the packed matrix's full width (it fixes ld). The product
 * kernel reads a panel's rows one after the other instead of one row per ldb (which for weights
 * 1-8 KB wide meant a new page and the same few L1 sets for every row); same sums, same order,
 * so the same bits as rf_mm. The small path packs its weights once per call (rf_pack). */
void rf_mmp_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, int64_t acs,
                const float *Bm, int64_t kp, float *C, int64_t ldc);
void rf_mmp_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, int64_t acs,
                const double *Bm, int64_t kp, double *C, int64_t ldc);
/* rf_mmp that sets C instead of adding to it: C = bias + A @ Bm, bias a row of N added to every
 * row (NULL: zeros). The same bits as filling C with bias and calling rf_mmp (each element's sum
 * starts at bias[j]), without the pass that writes C first and the product's first read of it. */
void rf_mmp_set_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, int64_t acs,
                    const float *Bm, int64_t kp, const float *bias, float *C, int64_t ldc);
void rf_mmp_set_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, int64_t acs,
                    const double *Bm, int64_t kp, const double *bias, double *C, int64_t ldc);

/* rf_mmp_set on columns [c0, c0 + n) of a packed B of full width N: C (M,n) = bias + A @
 * B[:, c0:c0+n], bias a row of n (NULL: zeros); the same sums in the same order as rf_mmp_set
 * (the unit split's projections, rf_project_share in rf_real.h). */
void rf_mmp_cols_set_f32(int64_t M, int64_t N, int64_t c0, int64_t n, int64_t K, const float *A,
                         int64_t lda, int64_t acs, const float *Bp, int64_t kp, const float *bias,
                         float *C, int64_t ldc);
void rf_mmp_cols_set_f64(int64_t M, int64_t N, int64_t c0, int64_t n, int64_t K,
                         const double *A, int64_t lda, int64_t acs, const double *Bp, int64_t kp,
                         const double *bias, double *C, int64_t ldc);

/* Both operands packed, for the small path's larger weight gradients (rf_wgrad_packed,
 * rf_wgrad_cols_chunk): A (M,K) in panels of up to 12 rows, each k-major, written by rf_pack_at
 * from A(i,k) = rows[k - k0][i0 + i] for its columns k0..k1-1 (a share); B packed as for rf_mmp
 * (full width N, kp rows a panel), of which C (M,n) += A @ B[:, c0:c0+n], B's rows from Bp.
 * Same per-element order as rf_mm. rf_mm.c. */
void rf_pack_at_f32(float *Ap, int64_t M, int64_t K, const float *const *rows, int64_t i0,
                    int64_t k0, int64_t k1);
void rf_pack_at_f64(double *Ap, int64_t M, int64_t K, const double *const *rows, int64_t i0,
                    int64_t k0, int64_t k1);
void rf_mm_pp_f32(int64_t M, int64_t N, int64_t c0, int64_t n, int64_t K, const float *Ap,
                  const float *Bp, int64_t kp, float *C, int64_t ldc);
void rf_mm_pp_f64(int64_t M, int64_t N, int64_t c0, int64_t n, int64_t K, const double *Ap,
                  const double *Bp, int64_t kp, double *C, int64_t ldc);

/* The small path's weight gradients run on packed operands (rf_wgrad_packed) when the gate
 * gradient's rows lie at least RF_WGRAD_PACK_BYTES apart and the products have at least
 * RF_WGRAD_PACK_MACS multiply-adds, (I+H)*GH*T*B; blocks of RF_WKC steps' rows. In place, rows
 * that far apart fall in a few L1 sets. Measured side by side (backward, 2 threads, time packed /
 * plain): float RNN (128,100,512,512) 0.82, GRU (128,100,512,512) 0.76, GRU (64,100,128,256)
 * 0.88-0.89; double RNN and GRU (64,100,128,256) 0.86; but float RNN (64,100,128,256), rows 1 KB
 * apart, 1.04, and (32,100,64,128) 1.14 (RNN) and 0.98 (GRU), too short to repay the packing and
 * the two barriers per block. */
#ifndef RF_WGRAD_PACK_MACS
#define RF_WGRAD_PACK_MACS ((int64_t)1 << 26)
#endif
#ifndef RF_WGRAD_PACK_BYTES
#define RF_WGRAD_PACK_BYTES 2048
#endif
#define RF_WKC 256
static inline int rf_wgrad_packed_used(int64_t T, int64_t B, int64_t I, int64_t H, int64_t GH,
                                       int64_t elem_size) {
    return GH * elem_size >= RF_WGRAD_PACK_BYTES && (I + H) * GH * T * B >= RF_WGRAD_PACK_MACS;
}
/* The LSTM's chunked weight gradients (rf_wgrad_cols_chunk) read the chunk's gate gradient
 * packed (each thread its own columns, rf_pack_block) when its rows lie at least
 * RF_CHUNK_PACK_BYTES apart. Same sums, same bits; forward+backward, in-process A/B on Zen 4:
 * (128,100,512,512) 0.89-0.95, (64,100,128,256) 0.94 (double 0.93); workspace: one more chunk of
 * the gate gradient. Their A operands, the chunk's x^T and h_prev^T, are then packed too (the
 * threads a share each, rf_wgrad_pack_a_chunk; workspace (I + H) times the chunk's rows): on
 * Zen 3 (AVX2), one core, a 512x1024x512 product ran at 0.74-0.76 of its time with A a
 * transposed view, packing included. On Zen 3 the threshold is 640 bytes, not 2 KB: packed /
 * plain, forward+backward, float (B,T,I,H) = (32,50,32,64) 0.94-0.95, (32,50,32,48) 0.96,
 * (32,50,32,40) 0.97, (64,100,32,48) 0.94; double (32,50,32,24) 0.96; but at 512 bytes, float
 * (32,50,32,32) 1.04 and double (32,50,32,16) 1.0 (measured on Zen 3 with the AVX2 kernels only;
 * the AVX-512 ones, with panels of 128 floats, were not measured at this threshold). */
#ifndef RF_CHUNK_PACK_BYTES
#define RF_CHUNK_PACK_BYTES 640
#endif
static inline int rf_chunk_packed_used(int64_t GH, int64_t elem_size) {
    return GH * elem_size >= RF_CHUNK_PACK_BYTES;
}
/* Workspace of rf_wgrad_packed (for either dtype): one block of the gate gradient, packed, and
 * the A panels of every thread's rows of one product. */
static inline int64_t rf_wgrad_pack_len(int64_t T, int64_t B, int64_t I, int64_t H, int64_t GH) {
    if (!rf_wgrad_packed_used(T, B, I, H, GH, (int64_t)sizeof(double))) return 0;
    return rf_pad(rf_packed_len(RF_WKC, GH)) + rf_pad(RF_WKC * (I > H ? I : H));
}

/* The RNN's and GRU's small-path backward workspace after the gate gradients and `ones`: the
 * packed weights (rf_bwd_small_extra), dW^T ((I+H)*GH), the weight gradients' packed operands
 * (rf_wgrad_pack_len) and db's per-sequence sums (two sets of B*GH, rf_wgrad_db_seq), laid out
 * by rf_wgrad_small_init (rf_real.h). */
static inline int64_t rf_wgrad_small_len(int64_t T, int64_t B, int64_t I, int64_t H, int64_t GH) {
    return rf_bwd_small_extra(I, H, GH) + rf_pad((I + H) * GH) + rf_wgrad_pack_len(T, B, I, H, GH) +
           2 * rf_pad(B * GH);
}

/* dst (C,R) = src (R,C)^T, row-major with leading dimensions ldd and lds (the weights' copies
 * for our products, the weight gradients' final layout). rf_mm.c: blocks in registers (float:
 * 16x16 with AVX-512, 8x8 with AVX2; double: 4x4 with either), the edges and the portable copy
 * element by element in 16x16 tiles. */
void rf_transpose_blocks_f32(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t R,
                             int64_t C);
void rf_transpose_blocks_f64(double *dst, int64_t ldd, const double *src, int64_t lds, int64_t R,
                             int64_t C);

/* Always inlined: the element-wise helpers (rf_real.h's activations) must become part of each
 * instruction set's copy of a pass. An outlined copy is compiled for the baseline ISA, without
 * FMA, so a loop that called one (the inliner's choice) neither vectorized nor rounded like its
 * twin that inlined it: the LSTM's float64 forward differed in the last bit between training
 * and inference on AVX2. */
#if defined(__GNUC__)
#define RF_INLINE static inline __attribute__((always_inline))
#else
#define RF_INLINE static inline
#endif

/* Defines RF_F(base) dispatching to three copies of RF_F(base##_body) (which must be RF_INLINE):
 * one per instruction set of rf_isa (a copy the build does not target is never called). */
#define RF_MULTIVERSION(base, params, args)                                                     \
    static void RF_F(base##_generic) params { RF_F(base##_body) args; }                         \
    RF_AVX2_TARGET static void RF_F(base##_avx2) params { RF_F(base##_body) args; }             \
    RF_AVX512_TARGET static void RF_F(base##_avx512) params { RF_F(base##_body) args; }         \
    RF_DISPATCH(base, params, args)

/* As RF_MULTIVERSION, with the copy's RF_ISA_* value as the body's last argument (a constant
 * after inlining), for bodies that call code written for one instruction set. */
#define RF_UNPAREN(...) __VA_ARGS__
#define RF_MULTIVERSION_ISA(base, params, args)                                                 \
    static void RF_F(base##_generic) params {                                                   \
        RF_F(base##_body)(RF_UNPAREN args, RF_ISA_GENERIC);                                     \
    }                                                                                           \
    RF_AVX2_TARGET static void RF_F(base##_avx2) params {                                       \
        RF_F(base##_body)(RF_UNPAREN args, RF_ISA_AVX2);                                        \
    }                                                                                           \
    RF_AVX512_TARGET static void RF_F(base##_avx512) params {                                   \
        RF_F(base##_body)(RF_UNPAREN args, RF_ISA_AVX512);                                      \
    }                                                                                           \
    RF_DISPATCH(base, params, args)

/* RF_F(base): the copy for rf_isa(). */
#define RF_DISPATCH(base, params, args)                                                         \
    static void RF_F(base) params {                                                             \
        switch (rf_isa()) {                                                                     \
        case RF_ISA_AVX512: RF_F(base##_avx512) args; break;                                    \
        case RF_ISA_AVX2: RF_F(base##_avx2) args; break;                                        \
        default: RF_F(base##_generic) args; break;                                              \
        }                                                                                       \
    }

/* Expand the arguments (real, RF_SFX) before a rnnfast.h signature macro pastes them. */
#define RF_DEFINE(signature, real_t, sfx) signature(real_t, sfx)

#endif /* RF_COMMON_H */
