"""BLAS set-up: make scipy's OpenBLAS run the CPU's widest GEMM kernels, and report on it.

rnnfast's compiled kernels call the BLAS that scipy ships (through scipy.linalg.cython_blas).
OpenBLAS picks its kernels ("core type") once, when the library loads, and it misidentifies some
AVX-512 CPUs (AMD Zen 5 among them; OpenBLAS issue 6029) as AVX2-only, which halves GEMM speed.
So, before scipy's BLAS loads, :func:`prepare` asks OpenBLAS for its SkylakeX kernels (its AVX-512
float32/float64 GEMM kernels) when the CPU has the AVX-512 subsets those kernels use, unless the user
has chosen a core type with OPENBLAS_CORETYPE already. Once loaded, :func:`info` reads the core
type the library *reports*, and :func:`check` warns once if an AVX-512 CPU is running non-AVX-512
kernels and says why and how to fix it: scipy.linalg was imported before rnnfast, or
OPENBLAS_CORETYPE names a narrower core (some machines set it for every process).

This module imports nothing heavy at import time; it must run before scipy.linalg is imported.
"""
import ctypes
import os
import sys
import warnings

_AVX512_FLAGS = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")
# OpenBLAS core names whose sgemm/dgemm kernels use 512-bit AVX-512.
_AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids", "zen5")
_warned = False
_chosen_here = None  # the core type prepare() set, if it set one


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (Linux), or None where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_has_avx512():
    """True if /proc/cpuinfo lists every AVX-512 subset OpenBLAS's SkylakeX kernels need."""
    flags = cpu_flags()
    return flags is not None and all(flag in flags for flag in _AVX512_FLAGS)


def _tuning_off():
    return os.environ.get("RNNFAST_NO_BLAS_TUNING", "0") not in ("", "0")


def _scipy_blas_loaded():
    return "scipy.linalg" in sys.modules or "scipy.linalg.cython_blas" in sys.modules


def prepare():
    """Choose OpenBLAS's AVX-512 kernels before scipy's BLAS loads, where the CPU has AVX-512.

    Does nothing if OPENBLAS_CORETYPE is already set (the user's choice wins), if the CPU lacks
    AVX-512, if RNNFAST_NO_BLAS_TUNING=1, or if scipy's BLAS is already loaded (too late: see check).
    """
    if _tuning_off():
        return
    if "OPENBLAS_CORETYPE" in os.environ or _scipy_blas_loaded():
        return
    if cpu_has_avx512():
        global _chosen_here
        os.environ["OPENBLAS_CORETYPE"] = _chosen_here = "SkylakeX"


def _openblas_libraries():
    """Paths of the OpenBLAS libraries loaded in this process (Linux: read /proc/self/maps)."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    return paths


def _call_str(lib, name):
    for prefix in ("scipy_", "", "scipy_openblas_"):
        fn = getattr(lib, prefix + name, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            out = fn()
            return out.decode() if out else None
    return None


def _scipy_openblas():
    """(path, ctypes handle) of scipy's OpenBLAS, loading scipy's BLAS if needed."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's OpenBLAS)
    import scipy
    scipy_dir = os.path.dirname(os.path.dirname(scipy.__file__))
    libs = _openblas_libraries()
    mine = [p for p in libs if p.startswith(scipy_dir) and "scipy" in os.path.basename(p)]
    for path in mine or libs:
        try:
            return path, ctypes.CDLL(path)
        except OSError:
            continue
    return None, None


def info():
    """A dict describing scipy's BLAS: library path, config string, reported core type."""
    path, lib = _scipy_openblas()
    out = {"library": path, "config": None, "core_type": None,
           "cpu_avx512": cpu_has_avx512(), "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    if lib is not None:
        out["config"] = _call_str(lib, "openblas_get_config")
        out["core_type"] = _call_str(lib, "openblas_get_corename")
    return out


def check():
    """Warn once if the CPU has AVX-512 but scipy's OpenBLAS runs narrower kernels, saying why.

    Silent with RNNFAST_NO_BLAS_TUNING=1 (the user looks after the BLAS)."""
    global _warned
    if _warned:
        return
    _warned = True
    if not cpu_has_avx512() or _tuning_off():
        return
    core = (info().get("core_type") or "").lower()
    if not core or any(core.startswith(c) for c in _AVX512_CORES):
        return
    what = (f"scipy's OpenBLAS runs its '{core}' kernels on a CPU with AVX-512, so the products "
            "rnnfast hands to the BLAS (large layers and single steps: see the README's "
            "'The BLAS') run at about half speed")
    env = os.environ.get("OPENBLAS_CORETYPE")
    if env is not None and env != _chosen_here:
        why = (f"OPENBLAS_CORETYPE={env} is set in the environment, and rnnfast leaves a core "
               "type the user chose alone: unset it, or set OPENBLAS_CORETYPE=SkylakeX, before "
               "Python starts (RNNFAST_NO_BLAS_TUNING=1 silences this warning)")
    else:
        why = ("the core type is chosen when the library loads: import rnnfast before "
               "scipy.linalg, or start Python with OPENBLAS_CORETYPE=SkylakeX")
    warnings.warn(f"{what}. {why}.", RuntimeWarning, stacklevel=3)


def set_blas_threads(n):
    """Set scipy's OpenBLAS thread count; returns the previous count (None if unknown)."""
    _, lib = _scipy_openblas()
    if lib is None:
        return None
    for prefix in ("scipy_", "", "scipy_openblas_"):
        get = getattr(lib, prefix + "openblas_get_num_threads", None)
        put = getattr(lib, prefix + "openblas_set_num_threads", None)
        if get is not None and put is not None:
            old = get()
            put(ctypes.c_int(int(n)))
            return old
    return None
