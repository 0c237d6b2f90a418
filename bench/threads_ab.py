"""One thread against two: how much a kernel call gains from the second core, measured side by side.

Times the compiled kernels (float32) on one shape with rnnfast.set_num_threads(1) and (2) in
alternation, each sample at least 50 ms of back-to-back calls, and prints both medians and the
median of the per-round ratios. On shared 2-vCPU machines this ratio moves from minute to minute
(bench/RESULTS.md): run it next to a benchmark to see what the second core was worth then.

    python bench/threads_ab.py rnn 32 50 32 64 [--mode fwdbwd|infer] [--rounds 21]
"""
import argparse
import time

import numpy as np

import rnnfast
from rnnfast import kernels


def _call(cell, mode, x, w, dy):
    if cell == "lstm":
        out = kernels.lstm_forward(x, None, None, *w, training=mode == "fwdbwd")
        return kernels.lstm_backward(dy, None, None, out[-1]) if mode == "fwdbwd" else out
    out = getattr(kernels, cell + "_forward")(x, None, *w, training=mode == "fwdbwd")
    return getattr(kernels, cell + "_backward")(dy, None, out[-1]) if mode == "fwdbwd" else out


def _sample(n_threads, fn, min_seconds=0.05):
    rnnfast.set_num_threads(n_threads)
    fn()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed / calls


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cell", choices=["rnn", "lstm", "gru"])
    p.add_argument("B", type=int)
    p.add_argument("T", type=int)
    p.add_argument("I", type=int)
    p.add_argument("H", type=int)
    p.add_argument("--mode", choices=["fwdbwd", "infer"], default="fwdbwd")
    p.add_argument("--rounds", type=int, default=21)
    a = p.parse_args(argv)
    if rnnfast.backend() != "compiled":
        p.error("the compiled extension is not built")
    G = {"rnn": 1, "lstm": 4, "gru": 3}[a.cell]
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((a.T, a.B, a.I)).astype(f32)
    w = [(rng.standard_normal(s) / np.sqrt(a.H)).astype(f32)
         for s in [(G * a.H, a.I), (G * a.H, a.H), (G * a.H,), (G * a.H,)]]
    dy = rng.standard_normal((a.T, a.B, a.H)).astype(f32)

    def fn():
        _call(a.cell, a.mode, x, w, dy)

    one, two = [], []
    for r in range(a.rounds):  # alternate which goes first
        order = [(1, one), (2, two)] if r % 2 else [(2, two), (1, one)]
        for n, times in order:
            times.append(_sample(n, fn))
    ratio = np.median(np.array(two) / np.array(one))
    print(f"{a.cell} (B,T,I,H) = ({a.B},{a.T},{a.I},{a.H}) {a.mode}: 1 thread "
          f"{np.median(one) * 1e3:.3f} ms, 2 threads {np.median(two) * 1e3:.3f} ms, "
          f"2/1 {ratio:.3f}")


if __name__ == "__main__":
    main()
