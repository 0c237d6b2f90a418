"""Another Cython project can ``cimport rnnfast._kernels`` and call the C kernels directly.

Builds a tiny extension in a temporary directory that cimports rnnfast._kernels (the C-level API
declared in src/rnnfast/_kernels.pxd, exported through Cython's C-API mechanism, headers from
rnnfast.get_include()), calls the LSTM forward kernel with scipy's BLAS table and checks the
result against rnnfast.reference.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnnfast
from rnnfast import reference

pytest.importorskip("Cython")
if not rnnfast.compiled_available():  # pragma: no cover
    pytest.skip("the compiled backend is not built", allow_module_level=True)

PYX = textwrap.dedent('''
    # cython: language_level=3
    import numpy as np
    from libc.stdint cimport int64_t
    cimport rnnfast._kernels as rk

    def lstm_inference(float[:, :, ::1] x, float[:, ::1] w_ih, float[:, ::1] w_hh,
                       float[::1] b_ih, int n_threads):
        cdef int64_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = w_hh.shape[1]
        y = np.empty((T, B, H), np.float32)
        h_n = np.empty((B, H), np.float32)
        c_n = np.empty((B, H), np.float32)
        cdef size_t n_work = rk.lstm_forward_workspace(T, B, I, H, 0)
        work = np.empty(n_work, np.float32)
        cdef float[:, :, ::1] yv = y
        cdef float[:, ::1] hv = h_n, cv = c_n
        cdef float[::1] wv = work
        cdef int rc
        with nogil:
            rc = rk.lstm_forward_f32(&yv[0, 0, 0], &hv[0, 0], &cv[0, 0], NULL, NULL,
                                     &x[0, 0, 0], NULL, NULL, &w_ih[0, 0], &w_hh[0, 0],
                                     &b_ih[0], NULL, NULL, T, B, I, H, &wv[0], n_work,
                                     rk.scipy_blas(), n_threads)
        bad = rk.lstm_forward_f32(&yv[0, 0, 0], &hv[0, 0], &cv[0, 0], NULL, NULL,
                                  &x[0, 0, 0], NULL, NULL, &w_ih[0, 0], &w_hh[0, 0],
                                  NULL, NULL, NULL, T, B, I, H, &wv[0], 0,
                                  rk.scipy_blas(), n_threads)
        return rc, bad, rk.strerror(bad).decode(), y, h_n, c_n
''')

SETUP = textwrap.dedent('''
    import numpy, rnnfast, os
    from setuptools import Extension, setup
    from Cython.Build import cythonize
    pkg_parent = os.path.dirname(os.path.dirname(rnnfast.__file__))
    ext = Extension("use_rnnfast", ["use_rnnfast.pyx"],
                    include_dirs=[rnnfast.get_include(), numpy.get_include()])
    setup(ext_modules=cythonize([ext], include_path=[pkg_parent], quiet=True))
''')


def test_cimport_and_call_a_kernel(tmp_path):
    (tmp_path / "use_rnnfast.pyx").write_text(PYX)
    (tmp_path / "setup.py").write_text(SETUP)
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    sys.path.insert(0, str(tmp_path))
    try:
        import use_rnnfast
    finally:
        sys.path.remove(str(tmp_path))
    rng = np.random.default_rng(0)
    T, B, I, H = 6, 3, 5, 11
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih = rng.uniform(-0.5, 0.5, (4 * H, I)).astype(np.float32)
    w_hh = rng.uniform(-0.5, 0.5, (4 * H, H)).astype(np.float32)
    b_ih = rng.uniform(-0.5, 0.5, 4 * H).astype(np.float32)
    rc, bad, msg, y, h_n, c_n = use_rnnfast.lstm_inference(x, w_ih, w_hh, b_ih, 2)
    assert rc == 0
    assert bad != 0 and "workspace" in msg
    y_r, h_r, c_r, _ = reference.lstm_forward(x, None, None, w_ih, w_hh, b_ih, None,
                                              training=False)
    for got, want in ((y, y_r), (h_n, h_r), (c_n, c_r)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
