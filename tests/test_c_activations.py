"""Accuracy of the kernels' own sigmoid, tanh and LSTM gate function, as the kernels compile them.

Builds tests/c_activations/activations.c with the extension's optimisation flags (setup.py's
BASE_CFLAGS: -O3 with FMA contraction, never -ffast-math) and runs it: float and double, the
loops' copy for each instruction set the CPU has (baseline, AVX2, AVX-512, and the float forms
written with AVX2 and AVX-512 intrinsics that the gate passes use), over dense sweeps of
inputs against long double libm. It fails when an error exceeds 8 ulp of the dtype, when tanh
leaves [-1, 1] or sigmoid [0, 1], or when +-1e30, infinities or NaN do not give their exact
limits. Skipped only when there is no C compiler. By hand, from the checkout:

    cc -O3 -std=c11 -fno-math-errno -fno-trapping-math -ffp-contract=fast -Icsrc \\
       tests/c_activations/activations.c csrc/rf_mm.c -lm -o /tmp/act && /tmp/act
"""
import os
import subprocess

import pytest

from test_c_sanitizers import ROOT, _compiler

FLAGS = ["-O3", "-std=c11", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast", "-Wall"]


def test_activations_accuracy(tmp_path):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler")
    exe = str(tmp_path / "activations")
    cmd = [cc, *FLAGS, "-I" + os.path.join(ROOT, "csrc"),
           os.path.join(ROOT, "tests", "c_activations", "activations.c"),
           os.path.join(ROOT, "csrc", "rf_mm.c"), "-lm", "-o", exe]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, f"build failed:\n{build.stderr[-4000:]}"
    run = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "0 failure(s)" in run.stdout, run.stdout[-4000:] + run.stderr
    assert "float tanh (generic)" in run.stdout  # the sweep ran
    if "float tanh (avx2)" in run.stdout:  # so did the AVX2 intrinsics' forms
        assert "float LSTM g (avx2 vectors)" in run.stdout
        assert "float sigmoid (avx2 vectors)" in run.stdout
    if "float tanh (avx512)" in run.stdout:  # and the AVX-512 ones
        assert "float LSTM g (avx512 vectors)" in run.stdout
        assert "float sigmoid (avx512 vectors)" in run.stdout
