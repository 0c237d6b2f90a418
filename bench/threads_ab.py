"""One thread against two: how much a kernel call gains from the second core, measured side by side.

Times the compiled kernels on one benchmark problem (the same calls as ``python -m rnnfast bench``)
with rnnfast.set_num_threads(1) and (2), interleaved round-robin by rnnfast._bench.measure, and
prints both medians and their ratio. On shared 2-vCPU machines this ratio moves from minute to
minute (bench/RESULTS.md): run it next to a benchmark to see what the second core was worth then.

    python bench/threads_ab.py rnn 32 50 32 64 [--mode fwdbwd|fwd] [--rounds 21]
"""
import argparse
import contextlib

import rnnfast
from rnnfast import _bench


@contextlib.contextmanager
def _with_threads(n, inner):
    before = rnnfast.get_num_threads()
    rnnfast.set_num_threads(n)
    try:
        with inner():
            yield
    finally:
        rnnfast.set_num_threads(before)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cell", choices=_bench.CELLS)
    for dim in "BTIH":
        p.add_argument(dim, type=int)
    p.add_argument("--mode", choices=_bench.MODES, default="fwdbwd")
    p.add_argument("--rounds", type=int, default=21)
    a = p.parse_args(argv)
    if rnnfast.backend() != "compiled":
        p.error("the compiled extension is not built")
    problem = _bench.make_problem(a.cell, (a.B, a.T, a.I, a.H))
    base = _bench.rnnfast_runner("compiled", problem, a.mode)
    runners = [_bench.Runner(f"{n} thread(s)", base.run,
                             lambda n=n: _with_threads(n, base.context)) for n in (1, 2)]
    t = _bench.measure(runners, a.rounds)
    one, two = (t[r.name] for r in runners)
    print(f"{a.cell} (B,T,I,H) = ({a.B},{a.T},{a.I},{a.H}) {a.mode}: 1 thread {one * 1e3:.3f} ms, "
          f"2 threads {two * 1e3:.3f} ms, 2/1 {two / one:.3f}")


if __name__ == "__main__":
    main()
