"""Fixtures of the pytest-benchmark suite: thread counts, and torch when it is installed.

The problems and the calls timed come from rnnfast._bench, the module behind
`python -m rnnfast bench`, so the suite and the side-by-side table measure the same thing.
"""
import pytest

import rnnfast


def pytest_addoption(parser):
    parser.addoption("--bench-threads", type=int, default=2,
                     help="threads for rnnfast's compiled kernels and for torch (default 2)")


@pytest.fixture(scope="session")
def bench_threads(request):
    n = request.config.getoption("--bench-threads")
    rnnfast.set_num_threads(n)
    return n


@pytest.fixture(scope="session")
def torch(bench_threads):
    torch = pytest.importorskip("torch")  # optional: never a dependency of rnnfast
    torch.set_num_threads(bench_threads)
    return torch
