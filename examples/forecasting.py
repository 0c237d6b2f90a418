"""Time-series forecasting: an LSTM regressor on a synthetic seasonal series with noise.

The series has two seasonal cycles (periods 50 and 12) and Gaussian noise. The model reads
a window of the last ``--window`` values and predicts the next one (LSTM -> LastStep -> Linear,
MSE loss). It is trained on the first 80% of the series and judged on the rest, one step ahead
against two naive baselines (repeat the last value; repeat the value one season ago), and then
as a free-running forecast that feeds its own predictions back in. With matplotlib installed it
plots forecast against truth (``--plot``).

    python examples/forecasting.py             # about a minute on 2 cores
    python examples/forecasting.py --quick     # a few seconds: fewer, shorter epochs
"""
import argparse
import time

import numpy as np

import rnnfast as rf


def make_series(n, seed=0):
    """A seasonal series of n points: cycles of period 50 and 12 plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (np.sin(2 * np.pi * t / 50) + 0.5 * np.sin(2 * np.pi * t / 12 + 1.0)
            + 0.15 * rng.standard_normal(n))


def windows(series, width):
    """Every window of ``width`` values and the value after it: X (N, width, 1), y (N, 1)."""
    idx = np.arange(len(series) - width)[:, None] + np.arange(width)[None, :]
    X = series[idx][:, :, None].astype(np.float32)
    y = series[width:][:, None].astype(np.float32)
    return X, y


def free_run(model, history, steps):
    """Forecast ``steps`` values by feeding each prediction back in as the newest input."""
    window = list(history)
    out = []
    for _ in range(steps):
        x = np.array(window[-len(history):], dtype=np.float32)[None, :, None]   # (1, T, 1)
        nxt = float(model.predict(x)[0, 0])
        out.append(nxt)
        window.append(nxt)
    return np.array(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2400, help="length of the series")
    parser.add_argument("--window", type=int, default=60, help="input steps per prediction")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--horizon", type=int, default=100, help="steps of free-running forecast")
    parser.add_argument("--plot", default="forecast.png",
                        help="where to save the plot (needs matplotlib; '' for none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a short run, e.g. for tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.epochs, args.horizon = 600, 2, 20

    series = make_series(args.points, seed=args.seed)
    split = int(0.8 * len(series))
    mean, std = series[:split].mean(), series[:split].std()   # scale with training data only
    scaled = (series - mean) / std
    X, y = windows(scaled, args.window)
    n_train = split - args.window                 # windows whose target lies in the training part
    Xt, yt, Xv, yv = X[:n_train], y[:n_train], X[n_train:], y[n_train:]

    model = rf.Sequential(rf.LSTM(1, args.hidden, batch_first=True, seed=args.seed),
                          rf.LastStep(), rf.Linear(args.hidden, 1, seed=args.seed))
    print(f"series of {len(series)} points; {len(Xt)} training windows of {args.window} steps, "
          f"{len(Xv)} test windows; backend {rf.backend()}")
    start = time.perf_counter()
    history = rf.fit(model, Xt, yt, loss=rf.MSELoss(),
                     optimizer=rf.Adam(model.parameters(), lr=1e-2), epochs=args.epochs,
                     batch_size=64, validation_data=(Xv, yv), clip_grad_norm=1.0,
                     early_stopping=rf.EarlyStopping("val_loss", patience=4), seed=args.seed)
    print(f"trained {len(history)} epochs in {time.perf_counter() - start:.1f} s")

    pred = model.predict(Xv)[:, 0] * std + mean
    truth = yv[:, 0] * std + mean
    rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
    last = Xv[:, -1, 0] * std + mean
    seasonal = Xv[:, -50, 0] * std + mean if args.window >= 50 else last
    naive = float(np.sqrt(np.mean((last - truth) ** 2)))
    print(f"one step ahead on the test part: RMSE {rmse:.3f} (repeat last value {naive:.3f}"
          + (f", repeat one season ago {np.sqrt(np.mean((seasonal - truth) ** 2)):.3f})"
             if args.window >= 50 else ")"))
    print("(the noise alone has standard deviation 0.15)")

    horizon = min(args.horizon, len(series) - split)
    forecast = free_run(model, scaled[split - args.window:split], horizon) * std + mean
    future = series[split:split + horizon]
    free_rmse = float(np.sqrt(np.mean((forecast - future) ** 2)))
    print(f"free-running forecast of {horizon} steps: RMSE {free_rmse:.3f}")

    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no plot (pip install matplotlib)")
        else:
            fig, ax = plt.subplots(figsize=(10, 4))
            t = np.arange(len(series))
            lo = max(split - 3 * args.window, 0)
            ax.plot(t[lo:split + horizon], series[lo:split + horizon], color="0.6", label="truth")
            ax.plot(t[split:split + horizon], forecast, color="C3", label="free-running forecast")
            ax.plot(t[split:split + horizon], pred[:horizon], color="C0", lw=1,
                    label="one step ahead")
            ax.axvline(split, color="k", lw=0.8, ls=":")
            ax.set_xlabel("time step")
            ax.legend(loc="upper left")
            fig.tight_layout()
            fig.savefig(args.plot, dpi=100)
            plt.close(fig)
            print(f"plot saved to {args.plot}")
    return {"rmse": rmse, "naive_rmse": naive, "free_rmse": free_rmse,
            "loss": history["loss"], "val_loss": history["val_loss"]}


if __name__ == "__main__":
    main()
