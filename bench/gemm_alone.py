"""The matrix products alone: scipy's BLAS (what rnnfast's kernels call) against torch's.

At large hidden sizes an RNN's time is its GEMMs, so rnnfast cannot beat a peer whose GEMMs are
faster. This script times the GEMM shapes the four benchmark problems run (the per-step recurrent
product, B x H x G*H, and the all-steps input projection, T*B x I x G*H), interleaving scipy's
sgemm and torch.matmul in one process and reporting medians and GFLOP/s.

    python bench/gemm_alone.py [--threads 2] [--rounds 5]
"""
import argparse
import time

import numpy as np

import rnnfast  # noqa: F401  (chooses scipy's BLAS kernels before scipy loads it)
from scipy.linalg.blas import sgemm

SHAPES = [  # (label, M, K, N)
    ("LSTM step (128,100,512,512)", 128, 512, 2048),
    ("LSTM input proj (128,100,512,512)", 12800, 512, 2048),
    ("LSTM step (64,100,128,256)", 64, 256, 1024),
    ("LSTM input proj (64,100,128,256)", 6400, 128, 1024),
    ("LSTM step (32,50,32,64)", 32, 64, 256),
]


def _median_time(fn, n=15):
    for _ in range(3):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from rnnfast import _blas
    _blas.set_blas_threads(args.threads)
    print(f"scipy BLAS: {_blas.info()['config']}; torch {torch.__version__}, {args.threads} threads")
    print(f"{'GEMM (M x K x N)':<50} {'scipy GFLOP/s':>13} {'torch GFLOP/s':>13} {'scipy/torch time':>16}")
    rng = np.random.default_rng(0)
    for label, M, K, N in SHAPES:
        a = np.asfortranarray(rng.standard_normal((M, K), dtype=np.float32))
        b = np.asfortranarray(rng.standard_normal((K, N), dtype=np.float32))
        ta, tb = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleaved; pauses let the other pool's threads go idle
            time.sleep(0.2)
            ours.append(_median_time(lambda: sgemm(1.0, a, b)))
            time.sleep(0.2)
            theirs.append(_median_time(lambda: ta @ tb))
        s, t = np.median(ours), np.median(theirs)
        flops = 2.0 * M * K * N
        print(f"{label + f' {M}x{K}x{N}':<50} {flops / s / 1e9:>13.0f} {flops / t / 1e9:>13.0f} "
              f"{s / t:>16.2f}")


if __name__ == "__main__":
    main()
