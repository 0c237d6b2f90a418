"""``python -m rnnfast demo``: train a small LSTM classifier on a built-in task, in seconds.

The task: tell four noisy waveforms apart (sine, square, sawtooth, a pulse train; random
frequency, phase and amplitude), one value per time step. The model is the classic sequence
classifier, LSTM -> LastStep -> Linear, trained with Adam and fit()'s progress bar. The demo then
reports the validation accuracy, and trains copies of the same model (same initial weights, same
data, same batches) on each backend, taking turns, to measure how much faster the compiled
kernels train than the NumPy reference. Without the compiled extension it says so and trains on
the reference.

This module is what the CLI calls (``rnnfast.cli`` wires ``demo`` to :func:`main`); it is not an
API. Run ``python -m rnnfast demo --help`` for its options.
"""
import argparse
import time
import warnings

import numpy as np

import rnnfast as rf

CLASSES = ("sine", "square", "sawtooth", "pulses")


def make_waveforms(n, steps, seed=0, noise=0.3):
    """n noisy waveforms of ``steps`` samples: X (n, steps, 1) float32 and labels y (n,) int64."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), size=n)
    t = np.arange(steps)[None, :]
    cycles = rng.uniform(1.5, 4.0, size=(n, 1))           # periods per window
    phase = rng.uniform(0, 1, size=(n, 1))
    u = (t / steps * cycles + phase) % 1.0                # position inside the period, [0, 1)
    waves = np.stack([
        np.sin(2 * np.pi * u),
        np.where(u < 0.5, 1.0, -1.0),
        2 * u - 1,
        np.where(u < 0.2, 1.5, -0.4),
    ])                                                    # (4, n, steps)
    X = waves[y, np.arange(n)] * rng.uniform(0.5, 1.5, size=(n, 1))
    X = X + noise * rng.standard_normal(X.shape)
    return X[:, :, None].astype(np.float32), y.astype(np.int64)


def build_model(hidden=64, seed=0):
    return rf.Sequential(rf.LSTM(1, hidden, batch_first=True, seed=seed), rf.LastStep(),
                         rf.Linear(hidden, len(CLASSES), seed=seed))


def _train_speeds(initial, X, y, batch_size, seed, rounds=3):
    """{backend: samples per second} training the same model from the same weights over (X, y).

    Shared machines are noisy: the backends take turns, ``rounds`` passes each, and each keeps
    its best pass, so a burst of load elsewhere does not decide the comparison.
    """
    backends = ("compiled", "reference")
    models, optimizers = {}, {}
    for b in backends:
        models[b] = build_model(hidden=initial["0.weight_hh_l0"].shape[1], seed=seed)
        models[b].load_state_dict(initial)
        optimizers[b] = rf.Adam(models[b].parameters(), lr=1e-2)
    best = dict.fromkeys(backends, 0.0)
    for r in range(rounds + 1):
        for b in backends:
            with rf.use_backend(b):
                start = time.perf_counter()
                rf.fit(models[b], X, y, loss=rf.CrossEntropyLoss(), optimizer=optimizers[b],
                       epochs=1, batch_size=batch_size, progress=False, seed=seed + r)
                elapsed = time.perf_counter() - start
            if r:  # round 0 warms caches and lazily loaded code
                best[b] = max(best[b], len(X) / elapsed)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m rnnfast demo",
        description="Train a small LSTM to classify noisy waveforms and compare the speed of the "
                    "compiled and reference backends.")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    parser.add_argument("--samples", type=int, default=1600,
                        help="training sequences (default 1600; a quarter more for validation)")
    parser.add_argument("--steps", type=int, default=40,
                        help="time steps per sequence (default 40)")
    parser.add_argument("--hidden", type=int, default=64, help="LSTM hidden size (default 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a much smaller run (a few seconds), e.g. for tests")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the compiled-vs-reference speed measurement")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.samples, args.steps = min(args.epochs, 2), min(args.samples, 256), \
            min(args.steps, 20)
    for name in ("epochs", "samples", "steps", "hidden", "batch_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")

    compiled = rf.compiled_available()
    backend = "compiled" if compiled else "reference"
    n_val = max(args.samples // 4, 1)
    X, y = make_waveforms(args.samples + n_val, args.steps, seed=args.seed)
    Xt, yt, Xv, yv = X[:args.samples], y[:args.samples], X[args.samples:], y[args.samples:]
    model = build_model(args.hidden, seed=args.seed)
    initial = model.state_dict()
    n_params = sum(p.data.size for p in model.parameters())

    print("rnnfast demo: tell noisy waveforms apart (" + ", ".join(CLASSES) + ")")
    print(f"  data:    {len(Xt)} training / {len(Xv)} validation sequences of {args.steps} steps")
    print(f"  model:   LSTM(1, {args.hidden}) -> LastStep -> Linear({args.hidden}, "
          f"{len(CLASSES)}), {n_params:,} parameters, Adam lr=1e-2")
    if compiled:
        print(f"  backend: compiled ({rf.get_num_threads()} thread(s))")
    else:
        reason = getattr(rf.kernels, "_compiled_error", None) or "not built"
        print(f"  backend: reference (NumPy); the compiled kernels are not available ({reason})")
    print(flush=True)

    with warnings.catch_warnings():
        # the reference backend warns once that it is slow; the lines above already say so
        warnings.filterwarnings("ignore", message="rnnfast's compiled kernels are not available")
        with rf.use_backend(backend):
            start = time.perf_counter()
            history = rf.fit(model, Xt, yt, loss=rf.CrossEntropyLoss(),
                             optimizer=rf.Adam(model.parameters(), lr=1e-2), epochs=args.epochs,
                             batch_size=args.batch_size, validation_data=(Xv, yv),
                             clip_grad_norm=5.0, progress=not args.no_progress, seed=args.seed)
            seconds = time.perf_counter() - start
        print()
        if history.interrupted:
            print("training interrupted; reporting the model as it is")
        if len(history):
            print(f"trained {len(history)} epoch(s) in {seconds:.1f} s on the {backend} backend "
                  f"({np.mean(history['samples_per_sec']):,.0f} samples/s)")
        result = rf.evaluate(model, Xv, yv, rf.CrossEntropyLoss())
        print(f"validation: accuracy {100 * result['accuracy']:.1f}% "
              f"(chance {100 / len(CLASSES):.0f}%), loss {result['loss']:.3f}")
        confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
        np.add.at(confusion, (yv, model.predict(Xv).argmax(axis=1)), 1)
        per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
        print("  per class: "
              + ", ".join(f"{c} {100 * a:.0f}%" for c, a in zip(CLASSES, per_class)))

        if args.no_compare:
            return 0
        print()
        if not compiled:
            print("speed: the compiled backend is not available, so there is nothing to compare; "
                  "install rnnfast with a C compiler (pip install .) to get it")
            return 0
        subset = min(len(Xt), 384)
        print(f"speed: the same model, weights and batches, training on {subset} sequences\n"
              "       (best of 3 passes each, the backends taking turns):")
        speeds = _train_speeds(initial, Xt[:subset], yt[:subset], args.batch_size, args.seed)
        for b, s in speeds.items():
            print(f"  {b:<9} {s:>10,.0f} samples/s")
        ratio = speeds["compiled"] / speeds["reference"]
        if ratio >= 1:
            print(f"  the compiled backend trained {ratio:.1f}x faster than the reference")
        else:
            print(f"  the compiled backend trained {1 / ratio:.1f}x slower than the reference "
                  "here\n  (is the machine busy? see python -m rnnfast info)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
