"""Smoke test of the side-by-side benchmark (rnnfast._bench, behind `python -m rnnfast bench`).

Runs it on a tiny shape with one round and parses the table: one row per cell x mode, times where
a candidate ran, "n/a" where it did not, and ratios that agree with the printed times. Bad options
must stop with a clear message. The real benchmarks live in bench/ and are not part of this run.
"""
import numpy as np
import pytest

import rnnfast
from rnnfast import _bench

TINY = ["--shapes", "2,3,4,5", "--repeat", "1", "--warmup", "0", "--pause", "0"]
COLUMNS = list(_bench.COLUMNS)


def _markdown_rows(text):
    """Data rows of the Markdown table in ``text`` as dicts keyed by column name."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert lines, text
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    assert set(lines[1].replace("|", "")) == {"-"}
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def _ms(cell):
    return float(cell.rstrip("*"))


def _check_ratio(row, numerator, column):
    if row["compiled ms"] == "n/a" or row[f"{numerator} ms"] == "n/a":
        assert row[column] == "n/a"
        return
    # the ratio comes from the unrounded times; the table prints 3 significant digits
    expected = _ms(row[f"{numerator} ms"]) / _ms(row["compiled ms"])
    assert float(row[column]) == pytest.approx(expected, rel=0.02, abs=0.01)


def test_table_rows_and_ratios(capsys):
    assert _bench.main(TINY + ["--markdown", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert f"rnnfast {rnnfast.__version__}" in out
    assert "- command: python -m rnnfast bench --shapes 2,3,4,5 --repeat 1" in out
    assert "core type" in out
    rows = _markdown_rows(out)
    assert [(r["cell"], r["shape B,T,I,H"], r["mode"]) for r in rows] == [
        (cell, "2,3,4,5", mode) for cell in ("rnn", "lstm", "gru") for mode in ("fwd", "fwdbwd")]
    for row in rows:
        assert _ms(row["reference ms"]) > 0
        assert row["torch ms"] == "n/a" and row["torch/compiled"] == "n/a"
        if rnnfast.compiled_available():
            assert _ms(row["compiled ms"]) > 0
        else:
            assert row["compiled ms"] == "n/a"
        _check_ratio(row, "reference", "reference/compiled")


def test_plain_table_with_torch(capsys):
    pytest.importorskip("torch")
    assert _bench.main(TINY + ["--cells", "lstm", "--modes", "fwdbwd", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("cell "))
    assert lines[header].split("  ")[0] == "cell"
    row = lines[header + 2].split()
    assert row[:3] == ["lstm", "2,3,4,5", "fwdbwd"]
    assert len(row) == len(COLUMNS)
    values = dict(zip(COLUMNS, row))
    assert _ms(values["torch ms"]) > 0 and _ms(values["reference ms"]) > 0
    _check_ratio(values, "torch", "torch/compiled")
    _check_ratio(values, "reference", "reference/compiled")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
def test_candidates_compute_the_same_thing(cell, mode):
    """The benchmark's torch and rnnfast calls use the same data and weights: same outputs."""
    torch = pytest.importorskip("torch")
    p = _bench.make_problem(cell, (2, 3, 4, 5), "float64")
    ref = _bench.rnnfast_runner("reference", p, mode)
    with ref.context():
        ours = ref.run()
    y = ours if mode == "fwd" else ours[0]
    tr = _bench.torch_runner(torch, p, mode)
    with tr.context():
        theirs = tr.run()
    np.testing.assert_allclose(y, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("argv, message", [
    (["--cells", "lstm,foo"], "unknown cell 'foo'"),
    (["--modes", "backward"], "unknown mode 'backward'"),
    (["--shapes", "1,2,3"], "a shape is B,T,I,H"),
    (["--shapes", "1,2,x,4"], "a shape is B,T,I,H"),
    (["--shapes", "0,2,3,4"], "a shape is B,T,I,H"),
    (["--repeat", "0"], "expected a positive integer"),
    (["--threads", "two"], "expected a positive integer"),
    (["--dtype", "float16"], "invalid choice"),
    (["--pause", "-1"], "--pause must be between"),
    (["--warmup", "-1"], "--warmup must be >= 0"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_options_exit_with_a_message(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        _bench.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_format_table_ratios_and_single_call_mark():
    times = {"compiled": 0.002, "reference": 0.0201, "torch": 0.005}
    rows = [("lstm", (1, 2, 3, 4), "fwd", times, False),
            ("gru", (1, 2, 3, 4), "fwdbwd", {"reference": 1.5, "torch": 0.25}, True)]
    table = _markdown_rows("\n".join(_bench.format_table(rows, markdown=True)))
    assert table[0] == dict(zip(COLUMNS, ["lstm", "1,2,3,4", "fwd", "2", "20.1", "5",
                                          "2.50", "10.05"]))
    assert table[1] == dict(zip(COLUMNS, ["gru", "1,2,3,4", "fwdbwd", "n/a", "1500*", "250",
                                          "n/a", "n/a"]))


def test_measure_interleaves_and_times_once():
    calls = []

    def runner(name):
        import contextlib
        return _bench.Runner(name, lambda: calls.append(name), contextlib.nullcontext)

    runners = [runner("a"), runner("b"), runner("c")]
    times = _bench.measure(runners, rounds=3, warmup=0, once=("c",))
    assert set(times) == {"a", "b", "c"} and all(t >= 0 for t in times.values())
    # round-robin with a rotating start; "c" is timed by one call in the first round only
    assert calls == ["a", "b", "c", "b", "a", "a", "b"]


def test_thread_settings_are_restored(capsys):
    before = rnnfast.get_num_threads()
    assert _bench.main(TINY + ["--cells", "rnn", "--modes", "fwd", "--no-torch",
                               "--threads", str(before + 1)]) == 0
    assert f"threads: rnnfast {before + 1}" in capsys.readouterr().out
    assert rnnfast.get_num_threads() == before


def test_ratios_against_compiled(monkeypatch, capsys):
    """With the compiled backend present every row has compiled times and both ratios.

    Until the C kernels are built this stands the reference in for them (its saved dicts then
    travel between "both" backends, which are the same module)."""
    from rnnfast import kernels
    if not rnnfast.compiled_available():
        monkeypatch.setattr(kernels, "_active", kernels._active)  # restored after the test
        monkeypatch.setattr(kernels, "_compiled", rnnfast.reference)
    assert _bench.main(TINY + ["--markdown", "--no-torch", "--modes", "fwd,fwdbwd"]) == 0
    out = capsys.readouterr().out
    assert "compiled kernels: yes" in out
    rows = _markdown_rows(out)
    assert len(rows) == 6
    for row in rows:
        assert _ms(row["compiled ms"]) > 0 and _ms(row["reference ms"]) > 0
        assert row["reference/compiled"] != "n/a"
        _check_ratio(row, "reference", "reference/compiled")
