"""pytest-benchmark suite: rnnfast compiled vs NumPy reference vs torch.nn, per cell/shape/mode.

Each benchmark's group is "{cell}-{B}x{T}x{I}x{H}-{mode}", so pytest-benchmark's table puts the
candidates of one problem side by side. mode "fwd" is inference (training=False; torch under
inference_mode), "fwdbwd" a training forward plus the full backward (dx, dh0[, dc0] and every weight
and bias gradient). float32, the four shapes of DESIGN.md. Run with `pytest bench/`; the compiled
candidate is skipped until the extension is built, torch when it is not installed.

The reference is slow (seconds per call at 128x100x512x512), so it runs a few pedantic rounds,
and a single one on that shape.
"""
import warnings

import pytest

import rnnfast
from rnnfast._bench import CELLS, MODES, SHAPES, is_big, make_problem, rnnfast_runner, torch_runner


def _label(shape):
    return "x".join(str(n) for n in shape)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES, ids=_label)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("candidate", ["compiled", "reference", "torch"])
def test_kernel(benchmark, request, bench_threads, candidate, cell, shape, mode):
    benchmark.group = f"{cell}-{_label(shape)}-{mode}"
    benchmark.extra_info.update(candidate=candidate, threads=bench_threads)
    problem = make_problem(cell, shape, "float32")
    if candidate == "torch":
        runner = torch_runner(request.getfixturevalue("torch"), problem, mode)
    elif candidate == "compiled" and not rnnfast.compiled_available():
        pytest.skip("rnnfast's compiled kernels are not built")
    else:
        runner = rnnfast_runner(candidate, problem, mode)

    with warnings.catch_warnings():
        # use_backend("reference") warns once when the compiled kernels are missing
        warnings.simplefilter("ignore", RuntimeWarning)
        with runner.context():
            if candidate == "reference":
                big = is_big(shape)
                benchmark.pedantic(runner.run, rounds=1 if big else 5, iterations=1,
                                   warmup_rounds=0 if big else 1)
            else:
                benchmark(runner.run)
