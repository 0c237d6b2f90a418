"""Backend selection: names, switching, and the warn-once fallback when the extension is absent."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnnfast
from rnnfast import kernels


def test_backend_names_and_switching():
    assert rnnfast.backend() in ("compiled", "reference")
    before = rnnfast.backend()
    rnnfast.set_backend("reference")
    try:
        assert rnnfast.backend() == "reference"
        with pytest.raises(ValueError, match="backend must be one of"):
            rnnfast.set_backend("cuda")
        assert rnnfast.backend() == "reference"
    finally:
        rnnfast.set_backend(before)
    assert rnnfast.backend() == before


def test_use_backend_restores_on_error():
    before = rnnfast.backend()
    with pytest.raises(RuntimeError, match="boom"):
        with rnnfast.use_backend("reference"):
            assert rnnfast.backend() == "reference"
            raise RuntimeError("boom")
    assert rnnfast.backend() == before


def test_compiled_backend_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(kernels, "_compiled", None)
    monkeypatch.setattr(kernels, "_compiled_error", "ImportError: not built")
    with pytest.raises(RuntimeError, match="not available.*not built"):
        rnnfast.set_backend("compiled")


def test_dispatch_reaches_the_reference_kernels():
    x = np.ones((2, 1, 3))
    with rnnfast.use_backend("reference"):
        y, h, saved = kernels.rnn_forward(x, None, np.full((4, 3), 0.1), np.eye(4) * 0.5)
    assert saved["backend"] == "reference"
    np.testing.assert_allclose(y[0, 0], np.tanh(0.3))
    assert kernels.lstm_forward.__doc__ == rnnfast.reference.lstm_forward.__doc__


def test_falls_back_to_reference_with_one_warning():
    """Without the extension the package imports, runs on the reference kernels and warns once."""
    code = textwrap.dedent("""
        import sys, warnings
        sys.modules["rnnfast._kernels"] = None  # makes "from . import _kernels" raise ImportError
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import numpy as np, rnnfast
            for _ in range(3):
                rnnfast.kernels.gru_forward(np.ones((2, 1, 3)), None, np.ones((9, 3)), np.ones((9, 3)))
            assert rnnfast.backend() == "reference", rnnfast.backend()
            assert not rnnfast.compiled_available()
        msgs = [str(w.message) for w in caught if "compiled kernels are not available" in str(w.message)]
        assert len(msgs) == 1, msgs
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("cache", ["workspace", "output"])
def test_cache_settings(cache):
    get, set_ = getattr(rnnfast, f"get_{cache}_cache"), getattr(rnnfast, f"set_{cache}_cache")
    old = get()
    assert old == 1 << 28  # the documented default of both
    try:
        for bad, exc in ((-1, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)):
            with pytest.raises(exc, match="nbytes must"):
                set_(bad)
        assert get() == old
        set_(123 << 20)
        assert get() == 123 << 20
        set_(0)
        assert get() == 0
    finally:
        set_(old)


@pytest.mark.skipif(not rnnfast.compiled_available(), reason="the compiled backend's cache")
def test_workspace_cache_reuse():
    old = rnnfast.get_workspace_cache()
    try:
        rnnfast.set_workspace_cache(1 << 20)
        from rnnfast import _kernels
        work = _kernels._work
        small = work(1000, np.float32)
        assert small.dtype == np.float32 and small.shape == (1000,)
        assert np.shares_memory(work(500, np.float32), small)          # kept and reused
        d = work(300, np.float64)                                       # one buffer, any dtype
        assert d.dtype == np.float64 and d.shape == (300,) and np.shares_memory(d, small)
        big = work(1 << 20, np.float32)                                 # 4 MiB: over the limit
        assert not np.shares_memory(big, small)
        assert not np.shares_memory(work(1 << 20, np.float32), big)     # so not kept
        assert np.shares_memory(work(1000, np.float32), small)          # the kept one stays
        rnnfast.set_workspace_cache(0)                                  # dropped at the next call
        assert not np.shares_memory(work(10, np.float32), small)
        assert getattr(_kernels._work_tls, "buf", None) is None
        rnnfast.set_workspace_cache(old)
        x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
        w = np.full((5, 5), 0.1, np.float32)
        with rnnfast.use_backend("compiled"):
            kernels.rnn_forward(x, None, w[:, :4], w)
        assert getattr(_kernels._work_tls, "buf", None) is not None  # a kernel call keeps one
    finally:
        rnnfast.set_workspace_cache(old)


@pytest.mark.skipif(not rnnfast.compiled_available(), reason="the compiled backend's outputs")
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("B", [3, 64])  # outputs under 1 MiB (plain), and y, dx from the cache
def test_outputs_start_on_cache_lines(cell, B):
    # the kernels' threads write neighbouring rows of the outputs (y, states, dx, the saved
    # activations, the gradients): every one starts on a 64-byte boundary
    from rnnfast import _kernels
    T, I, H = 16, 256, 256
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    r = np.random.default_rng(5)
    x = r.standard_normal((T, B, I)).astype(np.float32)
    w_ih = (r.standard_normal((G * H, I)) * 0.06).astype(np.float32)
    w_hh = (r.standard_normal((G * H, H)) * 0.06).astype(np.float32)
    b = np.zeros(G * H, np.float32)
    dy = r.standard_normal((T, B, H)).astype(np.float32)
    def run():
        if cell == "lstm":
            *out, saved = _kernels.lstm_forward(x, None, None, w_ih, w_hh, b, b)
            out += _kernels.lstm_backward(dy, None, None, saved)
        else:
            *out, saved = getattr(_kernels, f"{cell}_forward")(x, None, w_ih, w_hh, b, b)
            out += getattr(_kernels, f"{cell}_backward")(dy, None, saved)
        arrays = out + [saved[k] for k in ("gates", "c", "hn") if k in saved]
        assert len(arrays) == {"rnn": 8, "lstm": 12, "gru": 10}[cell]
        assert all(a.ctypes.data % 64 == 0 for a in arrays), [a.ctypes.data % 64 for a in arrays]
        listed = any(arrays[0].base is blk for blk in _kernels._out_blocks)
        assert listed == (B == 64)  # y has 1 MiB at B = 64: from the cache
        return id(arrays[0].base)  # (an id: a reference would keep the block in use)

    run()
    if B == 64:  # the first call's outputs are gone, so its blocks are handed out again
        kept = {id(blk) for blk in _kernels._out_blocks}
        assert run() in kept


@pytest.mark.skipif(not rnnfast.compiled_available(), reason="the compiled backend's cache")
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_output_cache_reuses_only_dropped_outputs(cell):
    # (The concurrency test of test_compiled.py also runs through the cache: its LSTM's and GRU's
    # gates at LARGE have over 1 MiB.)
    from rnnfast import _kernels
    T, B, I, H = 16, 64, 256, 256  # y and dx: 1 MiB of float32, the smallest size kept
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    r = np.random.default_rng(3)
    x = r.standard_normal((T, B, I)).astype(np.float32)
    w_ih = (r.standard_normal((G * H, I)) * 0.06).astype(np.float32)
    w_hh = (r.standard_normal((G * H, H)) * 0.06).astype(np.float32)
    dy = r.standard_normal((T, B, H)).astype(np.float32)

    def run():
        if cell == "lstm":
            y, h, c, saved = _kernels.lstm_forward(x, None, None, w_ih, w_hh)
            return (y, h) + tuple(_kernels.lstm_backward(dy, None, None, saved))
        fwd, bwd = getattr(_kernels, f"{cell}_forward"), getattr(_kernels, f"{cell}_backward")
        y, h, saved = fwd(x, None, w_ih, w_hh)
        return (y, h) + tuple(bwd(dy, None, saved))

    def listed(a):
        return any(a.base is blk for blk in _kernels._out_blocks)

    def same(got, want):
        for a, b in zip(got, want):
            if b is not None:
                np.testing.assert_array_equal(a, b)

    old = rnnfast.get_output_cache()
    try:
        rnnfast.set_output_cache(0)
        want = run()
        assert not listed(want[0]) and not listed(want[2])  # 0: nothing kept
        rnnfast.set_output_cache(old)
        first = run()
        assert listed(first[0]) and listed(first[2]) and first[2].nbytes == 1 << 20  # y, dx
        y_small = _kernels.rnn_forward(x[:, :2], None, w_ih[:H], w_hh[:H])[0]
        assert not listed(y_small)  # under 1 MiB: not kept
        y0, keep = first[0].base, first[0][3].copy()
        view = first[0][3]  # a view alone keeps its block in use
        del first
        second = run()
        assert not np.shares_memory(second[0], view) and not np.shares_memory(second[2], view)
        np.testing.assert_array_equal(view, keep)  # untouched by the second call
        same(second, want)
        n = len(_kernels._out_blocks)
        del view, second
        third = run()  # the two calls' blocks are free again (but y0's): reused, none added
        assert len(_kernels._out_blocks) == n and listed(third[0]) and third[0].base is not y0
        same(third, want)
        del y0
        rnnfast.set_output_cache(1 << 20)  # lowering the limit drops unused blocks at once
        assert len(_kernels._out_blocks) < n
        assert all(any(a is not None and a.base is blk for a in third)
                   for blk in _kernels._out_blocks)  # those left are in use
        rnnfast.set_output_cache(0)  # 0 with outputs alive: they stay theirs ...
        assert listed(third[0])
        fourth = run()
        assert not listed(fourth[0])  # ... but nothing new is kept
        same(fourth, want)
        del third, fourth
        _kernels.rnn_forward(x, None, w_ih[:H], w_hh[:H])  # a call drops what the limit excludes
        assert not _kernels._out_blocks
        rnnfast.set_output_cache(1 << 80)  # more than any address space: no limit, no error
        same(run(), want)
    finally:
        rnnfast.set_output_cache(old)


def test_num_threads_setting(monkeypatch):
    old = rnnfast._threads._num_threads
    try:
        rnnfast.set_num_threads(1)
        assert rnnfast.get_num_threads() == 1
        for bad, exc in ((0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError)):
            with pytest.raises(exc, match="n must"):
                rnnfast.set_num_threads(bad)
        rnnfast._threads._num_threads = None
        monkeypatch.setenv("RNNFAST_NUM_THREADS", "3")
        assert rnnfast.get_num_threads() == 3
        monkeypatch.setenv("RNNFAST_NUM_THREADS", "lots")
        with pytest.raises(ValueError, match="RNNFAST_NUM_THREADS"):
            rnnfast.get_num_threads()
    finally:
        rnnfast._threads._num_threads = old
