"""The C kernels on their own, under AddressSanitizer and UndefinedBehaviorSanitizer.

Builds tests/c/test_kernels.c with every csrc/*.c and a naive C BLAS (tests/c/naive_blas.c),
with -fsanitize=address,undefined (and OpenMP when the compiler has it), and runs it: gradients
against finite differences in double, 1 vs 2 threads bitwise, every error code for bad sizes and
pointers. Skipped only when there is no C compiler. The build moves the small/large switch
(RF_SMALL_MACS: B*G*H*H per step down to 2^20; RF_SMALL_MIN_ROWS: T*B down to 1) so that both
paths run on shapes cheap enough for the sanitizers and the naive BLAS, and likewise the switch
to packed weight-gradient products (RF_WGRAD_PACK_MACS, RF_WGRAD_PACK_BYTES; the LSTM's
RF_CHUNK_PACK_BYTES) and to the unit
split of one sequence over the threads (RF_UNITS_MIN_BYTES), and shortens that split's trial
against thread 0 alone (RF_TRIAL_STEPS, RF_TRIAL_MIN_T: 2 steps split, 2 alone, from 5 steps; three
builds fix its outcome, TRIAL_FORCE) and the chunks of steps: the inference's
(RF_CHUNK_ELEMS_SMALL: the double LSTM of one sequence, (T,B,I,H) = (7,1,3,21), in chunks of 4
steps, as long as the trial, whose outcome then falls on the next chunk's first step and so must
not be tried: tried, it overflowed the workspace) and the LSTM backward's (RF_BWD_CHUNK_*: 5 steps
of one sequence; T = 9 starts with a chunk of 4, whose trial would hang, T = 10 with one of 5),
and the pieces of dx that the threads take in turn after the backward's time loop
(RF_PIECE_MACS: 12 rows each, so that these small problems have several). The same command by
hand, from the checkout:

    cc -std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \\
       -fno-omit-frame-pointer -fopenmp -DRNNFAST_OPENMP -DRF_SMALL_MACS=1048576 \\
       -DRF_SMALL_MIN_ROWS=1 -DRF_WGRAD_PACK_MACS=2000 -DRF_WGRAD_PACK_BYTES=0 \\
       -DRF_CHUNK_PACK_BYTES=0 -DRF_UNITS_MIN_BYTES=0 -DRF_TRIAL_STEPS=2 -DRF_TRIAL_MIN_T=5 \\
       -DRF_CHUNK_ELEMS_SMALL=400 -DRF_BWD_CHUNK_ELEMS=1 -DRF_BWD_CHUNK_ROWS=5 \\
       -DRF_PIECE_MACS=1 -Icsrc -Itests/c \\
       csrc/*.c tests/c/*.c -lm -o /tmp/rnnfast_ctest && /tmp/rnnfast_ctest
"""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def _compiler():
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _build(cc, out, extra):
    sources = sorted(glob.glob(os.path.join(ROOT, "csrc", "*.c")))
    sources += sorted(glob.glob(os.path.join(ROOT, "tests", "c", "*.c")))
    cmd = [cc, "-std=c11", "-O1", "-g", "-Wall", *SANITIZE, *extra, "-DRF_SMALL_MACS=1048576",
           "-DRF_SMALL_MIN_ROWS=1", "-DRF_WGRAD_PACK_MACS=2000", "-DRF_WGRAD_PACK_BYTES=0",
           "-DRF_UNITS_MIN_BYTES=0", "-DRF_TRIAL_STEPS=2", "-DRF_TRIAL_MIN_T=5",
           "-DRF_CHUNK_ELEMS_SMALL=400", "-DRF_BWD_CHUNK_ELEMS=1", "-DRF_BWD_CHUNK_ROWS=5",
           "-DRF_PIECE_MACS=1", "-I" + os.path.join(ROOT, "csrc"),
           "-I" + os.path.join(ROOT, "tests", "c"),
           *sources, "-lm", "-o", out]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


# Every instruction set's kernels on this machine's CPU, as far as it has them: "native" (the
# best the CPU has), "avx2" (built without the AVX-512 kernels), "avx2-rows" (the same with the
# row tiles off: every packed product on the row blocks, mm_rows, whose 4-row blocks then stop
# at the edges of AVX2's 2-vector panels) and "portable" (without the AVX2 ones either: the
# loops a CPU without them runs).
ISA_FLAGS = {"native": [], "avx2": ["-DRNNFAST_NO_AVX512"], "portable": ["-DRNNFAST_NO_AVX2"],
             "avx2-rows": ["-DRNNFAST_NO_AVX512", "-DRF_TILE_MIN_M=1000000"]}
# The outcome of the unit split's trial (RF_TRIAL_FORCE; rf_trial in rf_common.h), fixed so that
# every way through it runs in every suite: thread 0 alone after the trial, the split resumed
# after it, or the split going on without its steps alone (clearly the faster); "avx2" decides
# by the time each way took (skipped on a CPU without AVX-512: there the extension's own build,
# which tests/test_compiled.py runs, is the one that decides by time).
TRIAL_FORCE = {"avx2-rows": 1, "portable": 2, "native": 3}
# The LSTM's chunked weight gradients run packed from gate-gradient rows of this many bytes
# (RF_CHUNK_PACK_BYTES): from any in most builds; from 256 in one, so that its smallest shapes
# (H = 4, 5, 7: rows of 224 bytes and less in double) run the plain products and the larger ones
# (H = 9 and up) the packed ones.
CHUNK_PACK_BYTES = {"avx2-rows": 256}
# The batch split's row stealing (rf_steal in rf_common.h) runs when a thread falls behind, which
# these tiny problems rarely do: in these builds every thread but 0 spins a while each step, and
# rows are handed over down to one, so that thread 0 takes rows (counted, and asserted below)
# and the C tests compare those runs with one thread's bit for bit. The same spin before each
# piece of dx (rf_piece_take) has thread 0 take more than half of them.
STEAL = {"native": ["-DRF_STEAL_DELAY=3000", "-DRF_STEAL_MIN_ROWS=1"],
         "portable": ["-DRF_STEAL_DELAY=3000", "-DRF_STEAL_MIN_ROWS=1"]}


def _builds():
    """The builds to run: all of ISA_FLAGS, but "avx2" only where the native build runs other
    kernels (a CPU with AVX2 and no AVX-512 runs the same ones natively; avx2-rows still builds
    without the AVX-512 kernels there)."""
    try:
        from rnnfast import _kernels
        native = _kernels.isa()
    except ImportError:  # no extension to ask: run them all
        native = None
    return [b for b in sorted(ISA_FLAGS) if not (b == "avx2" and native == "avx2")]


@pytest.mark.parametrize("isa", _builds())
def test_c_kernels_under_sanitizers(tmp_path, isa):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler")
    exe = str(tmp_path / "rnnfast_ctest")
    isa_flags = ISA_FLAGS[isa] + [f"-DRF_TRIAL_FORCE={TRIAL_FORCE.get(isa, 0)}",
                                  f"-DRF_CHUNK_PACK_BYTES={CHUNK_PACK_BYTES.get(isa, 0)}",
                                  *STEAL.get(isa, [])]
    build = _build(cc, exe, ["-fopenmp", "-DRNNFAST_OPENMP", *isa_flags])
    if build.returncode != 0:  # no OpenMP: the kernels build single-threaded
        build = _build(cc, exe, isa_flags)
    assert build.returncode == 0, f"build failed:\n{build.stderr[-4000:]}"
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", OMP_NUM_THREADS="2")
    run = subprocess.run([exe], capture_output=True, text=True, timeout=600, env=env)
    report = run.stdout[-4000:] + run.stderr[-4000:]
    assert run.returncode == 0, report
    assert "0 failure(s)" in run.stdout, report
    if isa != "native":  # the build left out the kernels it was told to
        ran = run.stdout.split("kernels' instruction set: ")[1].split()[0]
        assert ran in (("generic",) if isa == "portable" else ("avx2", "generic")), report
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr, report
    if isa in STEAL and "-fopenmp" in build.args:
        assert int(run.stdout.split("rows handed over: ")[1].split()[0]) > 0, report
