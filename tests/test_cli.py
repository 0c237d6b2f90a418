"""The command line and the BLAS set-up it reports on."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from rnnfast import _blas, cli


def run(code, **env):
    full = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, env=full)
    assert out.returncode == 0, out.stderr
    return out


def test_info_reports_blas_and_backend(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("rnnfast", "active backend", "BLAS core type", "sgemm 128x512x2048", "GFLOP/s",
                "workspace kept per thread", "output arrays kept for reuse"):
        assert key in out


def test_unknown_command_and_help(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out


def test_python_dash_m_runs():
    out = subprocess.run([sys.executable, "-m", "rnnfast", "info", "--no-measure"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "BLAS core type" in out.stdout


@pytest.mark.skipif(not _blas.cpu_has_avx512(), reason="the CPU has no AVX-512")
def test_import_chooses_avx512_kernels_before_scipy_loads():
    out = run("""
        import rnnfast, os
        from rnnfast import _blas
        print(os.environ.get("OPENBLAS_CORETYPE"), _blas.info()["core_type"])
    """)
    env, core = out.stdout.split()
    assert env == "SkylakeX" and core.lower() in _blas._AVX512_CORES


def test_users_core_type_is_respected():
    out = run("""
        import rnnfast, os
        print(os.environ["OPENBLAS_CORETYPE"], rnnfast._blas.info()["core_type"])
    """, OPENBLAS_CORETYPE="Haswell")
    assert out.stdout.split() == ["Haswell", "Haswell"]


@pytest.mark.skipif(not _blas.cpu_has_avx512(), reason="the CPU has no AVX-512")
@pytest.mark.parametrize("tuning", ["", "1"])
def test_users_narrow_core_type_gets_a_warning_that_names_it(tuning):
    # some machines set OPENBLAS_CORETYPE for every process; rnnfast keeps it but says so, unless
    # RNNFAST_NO_BLAS_TUNING=1 (the user looks after the BLAS)
    out = run("""
        import json, warnings, rnnfast
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            rnnfast._blas.check(); rnnfast._blas.check()
        print(json.dumps([str(x.message) for x in w]))
    """, OPENBLAS_CORETYPE="Haswell", RNNFAST_NO_BLAS_TUNING=tuning)
    msgs = json.loads(out.stdout)
    if tuning:
        assert msgs == []
    else:
        assert len(msgs) == 1 and "OPENBLAS_CORETYPE=Haswell is set in the environment" in msgs[0]
        assert "'haswell' kernels" in msgs[0] and "import rnnfast before" not in msgs[0]


@pytest.mark.skipif(not _blas.cpu_has_avx512(), reason="the CPU has no AVX-512")
def test_warns_once_when_scipy_loaded_narrow_kernels_first():
    out = run("""
        import os, warnings
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
        import scipy.linalg            # the user loads scipy's BLAS first...
        del os.environ["OPENBLAS_CORETYPE"]
        import rnnfast                 # ...so rnnfast is too late to choose
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            rnnfast._blas.check(); rnnfast._blas.check()
        msgs = [str(x.message) for x in w]
        assert len(msgs) == 1 and "import rnnfast before scipy.linalg" in msgs[0], msgs
        assert "OPENBLAS_CORETYPE=SkylakeX" in msgs[0], msgs
        print("ok")
    """)
    assert out.stdout.strip() == "ok"
