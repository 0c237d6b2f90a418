"""Side-by-side speed comparison: rnnfast's compiled kernels vs its NumPy reference vs torch.nn.

This is what ``python -m rnnfast bench`` runs (``python -m rnnfast._bench`` works too). For each
cell x shape x mode it times every candidate in one process, *interleaved*: after a warm-up, each
round runs every candidate once (in an order that rotates from round to round), and the reported
figure is the median over rounds. Absolute times drift on shared machines; ratios measured this
way hold, so the table prints ratios next to the times.

Candidates (same float data, same weights, PyTorch's layout):

* ``compiled``  rnnfast.kernels under ``use_backend("compiled")`` (skipped if not built);
* ``reference`` rnnfast.kernels under ``use_backend("reference")`` (NumPy);
* ``torch``     torch.nn.RNN / LSTM / GRU with the same weights, if torch imports. torch is never a
  dependency of rnnfast; it is only measured when it is installed.

Modes: ``fwd`` is inference (``training=False``; torch under ``inference_mode``); ``fwdbwd`` is a
training forward plus the full backward: dx, dh0 (dc0), and every weight and bias gradient (torch:
``y.backward(dy)`` with x, h0 (c0) and the parameters requiring gradients).

The builders (:func:`make_problem`, :func:`rnnfast_runner`, :func:`torch_runner`) are shared with
the pytest-benchmark suite in bench/, so both measure exactly the same calls.

It deliberately does not profile, plot or save results: it prints a table (``--markdown`` for
bench/RESULTS.md), nothing else.
"""
import argparse
import contextlib
import math
import os
import sys
import time
import warnings
from collections import namedtuple

import numpy as np

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
SHAPES = ((1, 200, 64, 128), (32, 50, 32, 64), (64, 100, 128, 256), (128, 100, 512, 512))
MODES = ("fwd", "fwdbwd")
CANDIDATES = ("compiled", "reference", "torch")
DTYPES = ("float32", "float64")
# Above this many B*T*H*(I+H) multiply-adds the reference takes seconds per call: by default it is
# timed once there (no warm-up, no repeats). Of the standard shapes only (128, 100, 512, 512) is.
BIG_PROBLEM = 2e9

Problem = namedtuple("Problem", "cell shape dtype x h0 c0 w_ih w_hh b_ih b_hh dy")
Runner = namedtuple("Runner", "name run context")  # run() -> outputs; context() wraps the timing


def shape_label(shape):
    """(B, T, I, H) as the string the --shapes option takes: "B,T,I,H"."""
    return ",".join(str(n) for n in shape)


def is_big(shape):
    B, T, I, H = shape
    return B * T * H * (I + H) > BIG_PROBLEM


def make_problem(cell, shape, dtype="float32", seed=0):
    """Inputs, states, weights and an output gradient for one benchmark, in rnnfast's layout.

    shape is (B, T, I, H); x is time-major (T, B, I); weights are torch's (G*H, I), (G*H, H),
    (G*H,), drawn like torch's default init, uniform(-1/sqrt(H), 1/sqrt(H)).
    """
    B, T, I, H = shape
    G = GATES[cell]
    rng = np.random.default_rng(seed)
    k = 1.0 / math.sqrt(H)

    def uniform(*dims):
        return rng.uniform(-k, k, dims).astype(dtype)

    def normal(*dims):
        return rng.standard_normal(dims).astype(dtype)

    c0 = normal(B, H) * 0.5 if cell == "lstm" else None
    return Problem(cell, tuple(shape), np.dtype(dtype), normal(T, B, I), normal(B, H) * 0.5, c0,
                   uniform(G * H, I), uniform(G * H, H), uniform(G * H), uniform(G * H),
                   normal(T, B, H))


def rnnfast_runner(backend, p, mode):
    """A Runner calling rnnfast.kernels on ``backend`` ("compiled" or "reference")."""
    import rnnfast
    from rnnfast import kernels

    forward = getattr(kernels, f"{p.cell}_forward")
    backward = getattr(kernels, f"{p.cell}_backward")
    states = (p.h0, p.c0) if p.cell == "lstm" else (p.h0,)
    args = (p.x,) + states + (p.w_ih, p.w_hh, p.b_ih, p.b_hh)
    kwargs = {"nonlinearity": "tanh"} if p.cell == "rnn" else {}
    no_state_grads = (None, None) if p.cell == "lstm" else (None,)

    if mode == "fwd":
        def run():
            return forward(*args, training=False, **kwargs)[0]
    else:
        def run():
            out = forward(*args, training=True, **kwargs)
            return (out[0],) + tuple(backward(p.dy, *no_state_grads, out[-1]))

    def context():
        return rnnfast.use_backend(backend)
    return Runner(backend, run, context)


def torch_runner(torch, p, mode):
    """A Runner calling torch.nn.RNN/LSTM/GRU with the problem's weights (time-major input)."""
    B, T, I, H = p.shape
    tdtype = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}[p.dtype]
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[p.cell]
    kwargs = {"nonlinearity": "tanh"} if p.cell == "rnn" else {}
    module = cls(I, H, **kwargs).to(tdtype)
    with torch.no_grad():
        for name, value in (("weight_ih_l0", p.w_ih), ("weight_hh_l0", p.w_hh),
                            ("bias_ih_l0", p.b_ih), ("bias_hh_l0", p.b_hh)):
            getattr(module, name).copy_(torch.from_numpy(value))
    x = torch.from_numpy(p.x.copy())
    h0 = torch.from_numpy(p.h0.copy())[None]  # torch's states are (layers, B, H)
    c0 = torch.from_numpy(p.c0.copy())[None] if p.cell == "lstm" else None

    if mode == "fwd":
        state = (h0, c0) if p.cell == "lstm" else h0

        def run():
            return module(x, state)[0]
        return Runner("torch", run, torch.inference_mode)

    # Everything rnnfast's backward returns gets a gradient here too: dx, dh0 (dc0) and weights.
    x.requires_grad_(True)
    h0.requires_grad_(True)
    if c0 is not None:
        c0.requires_grad_(True)
    state = (h0, c0) if p.cell == "lstm" else h0
    leaves = [x, h0] + ([c0] if c0 is not None else []) + list(module.parameters())
    dy = torch.from_numpy(p.dy.copy())

    def run():
        for leaf in leaves:  # backward() accumulates; start every call from no gradient
            leaf.grad = None
        y = module(x, state)[0]
        y.backward(dy)
        return y
    return Runner("torch", run, contextlib.nullcontext)


def import_torch():
    """torch if it imports, else None (it is optional, never a dependency)."""
    try:
        import torch
    except Exception:  # not installed, or a broken install: compare without it
        return None
    return torch


# ----------------------------------------------------------------------------------------------
# timing

def _call_time(runner, number):
    with runner.context():
        start = time.perf_counter()
        for _ in range(number):
            runner.run()
        return (time.perf_counter() - start) / number


def measure(runners, rounds, warmup=2, min_sample=0.02, min_warmup=0.05, pause=0.0, once=(),
            rewarm=0.03):
    """Median seconds per call of each runner, interleaved round-robin.

    Each runner is first called ``warmup`` times (and, if that took less than ``min_warmup``
    seconds, more, up to 100 calls); the last warm-up call sets how many calls make
    one sample (enough to last ``min_sample`` seconds, so tiny problems are not timer noise).
    Then ``rounds`` rounds each take one sample of every runner, the order rotating by one each
    round so no runner always goes first. Runners named in ``once`` are timed
    by a single call, with no warm-up, in the first round only.
    ``pause`` seconds of sleep before each sample let the previous runner's thread pool go idle:
    OpenBLAS and OpenMP workers spin for a while after a call, and on a small machine a spinning
    pool steals the cores the next runner's threads need. After the pause each runner is called,
    untimed, for ``rewarm`` seconds (at least once), so every runner is timed warm: on these
    virtual machines an idle CPU takes ~10 ms of calls to come back to full speed (measured: the
    first 5-8 calls of a 1 ms kernel after a 0.2 s sleep ran 1.1-3.5x slower).
    Returns {name: median seconds}.
    """
    number, samples = {}, {r.name: [] for r in runners}
    for r in runners:
        if r.name in once:
            number[r.name] = 1
            continue
        t, spent, calls = None, 0.0, 0
        # at least `warmup` calls, and cheap problems keep warming for min_warmup seconds:
        # first calls pay for lazy set-up (torch's JIT and autograd threads, page faults)
        while calls < warmup or (warmup and spent < min_warmup and calls < 100):
            t = _call_time(r, 1)
            spent, calls = spent + t, calls + 1
        number[r.name] = 1 if t is None else max(1, min(1000, math.ceil(min_sample / max(t, 1e-9))))
    for i in range(rounds):
        for r in runners[i % len(runners):] + runners[:i % len(runners)]:
            if r.name in once and samples[r.name]:
                continue
            if pause and len(runners) > 1:
                time.sleep(pause)
                if r.name not in once:
                    # untimed calls first: after an idle pause the first calls pay for waking
                    # the (virtual) CPUs and the runner's thread pool, which would otherwise be
                    # charged to whichever runner is cheapest per call
                    spent = 0.0
                    while True:
                        spent += _call_time(r, 1)
                        if spent >= rewarm:
                            break
            samples[r.name].append(_call_time(r, number[r.name]))
    return {name: float(np.median(s)) for name, s in samples.items()}


# ----------------------------------------------------------------------------------------------
# command line

def _choices(kind, allowed):
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in items if s not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, bad)) or repr(text)}; "
                f"choose from {', '.join(allowed)} (comma-separated)")
        return tuple(dict.fromkeys(items))
    return parse


def _shapes(text):
    shapes = []
    for part in text.replace(";", " ").split():
        try:
            dims = tuple(int(s) for s in part.replace("x", ",").split(","))
        except ValueError:
            dims = ()
        if len(dims) != 4 or min(dims) < 1:
            raise argparse.ArgumentTypeError(
                f"a shape is B,T,I,H (four positive integers, e.g. 32,50,32,64), got {part!r}")
        shapes.append(dims)
    if not shapes:
        raise argparse.ArgumentTypeError("no shape given; e.g. --shapes 32,50,32,64")
    return shapes


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m rnnfast bench",
        description="Time rnnfast's compiled kernels against its NumPy reference and torch.nn, "
                    "interleaved in one process, and print medians and ratios.")
    parser.add_argument("--cells", type=_choices("cell", CELLS), default=CELLS,
                        help="comma-separated cells (default: rnn,lstm,gru; rnn is tanh)")
    parser.add_argument("--shapes", type=_shapes, action="extend", nargs="+", default=None,
                        metavar="B,T,I,H",
                        help="one or more shapes, e.g. --shapes 32,50,32,64 1,200,64,128 "
                             "(default: the four shapes of DESIGN.md)")
    parser.add_argument("--modes", type=_choices("mode", MODES), default=MODES,
                        help="fwd (inference), fwdbwd (training forward + backward); default both")
    parser.add_argument("--repeat", type=_positive, default=9,
                        help="interleaved rounds; the median is reported (default 9)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed calls of each candidate before timing; cheap problems get "
                             "more, up to 50 ms of warm-up (default 2)")
    parser.add_argument("--pause", type=float, default=0.1, metavar="SECONDS",
                        help="sleep before each timed sample so the previous candidate's "
                             "spinning BLAS/OpenMP threads go idle (default 0.1)")
    parser.add_argument("--threads", type=_positive, default=None,
                        help="threads for rnnfast and torch (default: rnnfast.get_num_threads())")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--no-reference", action="store_true", help="do not time the reference")
    parser.add_argument("--no-torch", action="store_true", help="do not time torch")
    parser.add_argument("--full-reference", action="store_true",
                        help="time the reference like the others on big shapes too (slow: "
                             "seconds per call); by default it is timed once there")
    parser.add_argument("--markdown", action="store_true",
                        help="print a Markdown table (for bench/RESULTS.md)")
    return parser


def _header(args, threads, torch, lines):
    import rnnfast
    from rnnfast import _blas

    try:
        blas = _blas.info()
        blas_text = f"{blas.get('config') or blas.get('library')}; core type {blas.get('core_type')}"
    except Exception as exc:  # report, never fail the benchmark over it
        blas_text = f"unknown ({type(exc).__name__}: {exc})"
    load, cpus = os.getloadavg()[0], os.cpu_count()
    if rnnfast.compiled_available():
        from rnnfast import _kernels
        compiled = f"yes, {_kernels.isa()} kernels"
    else:
        compiled = "NO (not built: compiled columns n/a)"
    torch_text = "not installed" if torch is None else f"{torch.__version__}, {threads} threads"
    if torch is not None and args.no_torch:
        torch_text = "not timed (--no-torch)"
    lines += [
        f"rnnfast {rnnfast.__version__} benchmark: {args.dtype}, medians of {args.repeat} "
        f"interleaved rounds after {args.warmup}+ warm-up call(s) each, "
        f"{args.pause:g} s pause before each sample",
        f"compiled kernels: {compiled}; reference: "
        f"{'not timed (--no-reference)' if args.no_reference else 'yes'}",
        f"threads: rnnfast {threads}; numpy's BLAS (reference) at its own default",
        f"scipy BLAS (compiled kernels): {blas_text}",
        f"torch: {torch_text}",
        f"load average (1 min): {load:.2f} on {cpus} CPUs",
    ]
    if load > 0.5:
        lines.append("note: other processes are using the CPUs; with every core in use, thread "
                     "pools stall and times jump (ratios too): prefer a quiet machine")


def _fmt_ms(seconds):
    if seconds is None:
        return "n/a"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _fmt_ratio(num, den):
    return "n/a" if num is None or den is None else f"{num / den:.2f}"


COLUMNS = ("cell", "shape B,T,I,H", "mode", "compiled ms", "reference ms", "torch ms",
           "torch/compiled", "reference/compiled")


def format_table(rows, markdown=False):
    """rows: (cell, shape, mode, {name: seconds or None}, reference_once) -> table lines."""
    body = []
    for cell, shape, mode, t, once in rows:
        ref = _fmt_ms(t.get("reference"))
        if once and t.get("reference") is not None:
            ref += "*"
        body.append((cell, shape_label(shape), mode, _fmt_ms(t.get("compiled")), ref,
                     _fmt_ms(t.get("torch")), _fmt_ratio(t.get("torch"), t.get("compiled")),
                     _fmt_ratio(t.get("reference"), t.get("compiled"))))
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return lines
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(COLUMNS)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*COLUMNS), fmt.format(*("-" * w for w in widths))] + \
        [fmt.format(*r) for r in body]


def main(argv=None):
    """Run the comparison and print the table. Returns 0; bad options exit with status 2."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if not 0 <= args.pause <= 10:
        parser.error(f"--pause must be between 0 and 10 seconds, got {args.pause}")
    shapes = [s for group in args.shapes for s in group] if args.shapes else list(SHAPES)

    import rnnfast
    from rnnfast import _threads

    torch = None if args.no_torch else import_torch()
    backends = (["compiled"] if rnnfast.compiled_available() else []) + \
        ([] if args.no_reference else ["reference"])
    if not backends and torch is None:
        parser.error("nothing to time: the compiled kernels are not built, and the reference "
                     "and torch are excluded or unavailable")

    # the thread settings are the caller's: set them for the run, put them back afterwards
    threads = args.threads or rnnfast.get_num_threads()
    saved_threads = _threads._num_threads
    saved_torch_threads = None if torch is None else torch.get_num_threads()
    rnnfast.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        _run(args, shapes, backends, threads, torch)
    finally:
        _threads._num_threads = saved_threads
        if torch is not None:
            torch.set_num_threads(saved_torch_threads)
    return 0


def _run(args, shapes, backends, threads, torch):
    out = [f"command: python -m rnnfast bench {' '.join(args.argv)}".rstrip()]
    _header(args, threads, torch, out)
    print("\n".join(f"- {ln}" if args.markdown else ln for ln in out), flush=True)

    rows = []
    any_once = False
    for cell in args.cells:
        for shape in shapes:
            for mode in args.modes:
                p = make_problem(cell, shape, args.dtype)
                once = ("reference",) if is_big(shape) and not args.full_reference else ()
                with warnings.catch_warnings():
                    # use_backend("reference") warns when the compiled kernels are missing;
                    # the header already says so
                    warnings.simplefilter("ignore", RuntimeWarning)
                    runners = [rnnfast_runner(b, p, mode) for b in backends]
                    if torch is not None:
                        runners.append(torch_runner(torch, p, mode))
                    times = measure(runners, args.repeat, args.warmup, pause=args.pause, once=once)
                once = bool(once) and "reference" in times
                any_once |= once
                rows.append((cell, shape, mode, times, once))
                print(f"  timed {cell} {shape_label(shape)} {mode}", file=sys.stderr, flush=True)

    print()
    print("\n".join(format_table(rows, args.markdown)))
    print()
    if any_once:
        print("* reference timed by a single call (no warm-up) on this shape: it takes seconds; "
              "--full-reference times it like the others")
    print("ratios > 1: rnnfast compiled is faster by that factor. Times are milliseconds per call; "
          "fwd = inference forward, fwdbwd = training forward + backward "
          "(dx, dh0, weight and bias gradients).")


if __name__ == "__main__":
    sys.exit(main())
