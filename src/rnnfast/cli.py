"""Command line: ``python -m rnnfast {demo,bench,info}`` (also installed as ``rnnfast``).

demo   train a small model on a built-in task and report quality and the compiled-vs-reference speed-up
bench  time rnnfast's kernels against the NumPy reference and PyTorch (when installed), side by side
info   version, active backend, threads, workspace and output caches, OpenMP, and the BLAS: library, core
       type, measured sgemm GFLOP/s
"""
import argparse
import sys
import time


def _sgemm_gflops(m=128, k=512, n=2048, repeat=15):
    """Median float32 GEMM speed of scipy's BLAS (the one our kernels call) at an RNN-like shape."""
    import numpy as np
    from scipy.linalg.blas import sgemm

    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((m, k), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((k, n), dtype=np.float32))
    for _ in range(3):
        sgemm(1.0, a, b)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        sgemm(1.0, a, b)
        times.append(time.perf_counter() - t)
    return 2.0 * m * k * n / sorted(times)[len(times) // 2] / 1e9


def info(argv=None):
    parser = argparse.ArgumentParser(prog="rnnfast info", description="Describe this installation.")
    parser.add_argument("--no-measure", action="store_true", help="skip the sgemm measurement")
    args = parser.parse_args(argv)
    import numpy as np
    import scipy

    import rnnfast
    from rnnfast import _blas, kernels

    rows = [("rnnfast", rnnfast.__version__), ("numpy", np.__version__), ("scipy", scipy.__version__)]
    if kernels.compiled_available():
        from rnnfast import _kernels
        rows.append(("compiled kernels", "available"))
        rows.append(("OpenMP", "yes" if _kernels.openmp_enabled() else "no (single-threaded build)"))
        rows.append(("kernels' instruction set", _kernels.isa()))
    else:
        rows.append(("compiled kernels", f"NOT available ({kernels._compiled_error})"))
    rows.append(("active backend", rnnfast.backend()))
    rows.append(("threads", str(rnnfast.get_num_threads())))
    for name, cache in (("workspace kept per thread", rnnfast.get_workspace_cache()),
                        ("output arrays kept for reuse", rnnfast.get_output_cache())):
        size = f"{cache >> 20} MiB" if cache >= 1 << 20 else f"{cache} bytes"
        rows.append((name, f"up to {size}"))
    b = _blas.info()
    rows += [("BLAS library", str(b["library"])), ("BLAS config", str(b["config"])),
             ("BLAS core type", str(b["core_type"])), ("CPU has AVX-512", str(b["cpu_avx512"])),
             ("OPENBLAS_CORETYPE", str(b["OPENBLAS_CORETYPE"]))]
    if not args.no_measure:
        rows.append(("sgemm 128x512x2048", f"{_sgemm_gflops():.0f} GFLOP/s"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    _blas.check()
    return 0


def demo(argv=None):
    from rnnfast import _demo
    return _demo.main(argv)


def bench(argv=None):
    from rnnfast import _bench
    return _bench.main(argv)


COMMANDS = {"demo": demo, "bench": bench, "info": info}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"rnnfast: unknown command {command!r}; choose one of {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    return COMMANDS[command](rest) or 0


if __name__ == "__main__":
    sys.exit(main())
