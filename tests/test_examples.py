"""Each example in examples/, shortened with --quick, runs and gives sensible figures; so does the
demo behind ``python -m rnnfast demo``."""
import importlib.util
import os

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_forecasting(tmp_path, capsys):
    result = _load("forecasting").main(["--quick", "--plot", str(tmp_path / "f.png")])
    out = capsys.readouterr().out
    assert "one step ahead" in out and "free-running forecast" in out
    assert all(np.isfinite(v) for v in (result["rmse"], result["naive_rmse"], result["free_rmse"]))
    assert result["loss"][-1] < result["loss"][0]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out
    else:
        assert (tmp_path / "f.png").stat().st_size > 0


def test_text_classification(capsys):
    result = _load("text_classification").main(["--quick"])
    out = capsys.readouterr().out
    assert "test accuracy" in out and "the soup was not good" in out
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["loss"][-1] < result["loss"][0]


def test_text_classification_corpus_labels_follow_word_order():
    ex = _load("text_classification")
    texts, labels = ex.make_reviews(300, seed=1)
    for text, label in zip(texts, labels):
        last = text.split(" but ")[-1].split()
        positive = last[-1] in ex.GOOD
        negated = "not" in last or "never" in last
        assert label == int(positive != negated), text
    ids, lengths = ex.encode(["a b", "b"], {"a": 2, "b": 3})
    assert ids.tolist() == [[2, 3], [3, 0]] and lengths.tolist() == [2, 1]


def test_char_generation(capsys):
    ex = _load("char_generation")
    result = ex.main(["--quick", "--prompt", "The sea"])
    out = capsys.readouterr().out
    assert "temperature" in out
    for text in result["samples"].values():
        assert text.startswith("The sea") and len(text) == len("The sea") + 40
    assert result["loss"][-1] < result["loss"][0]


def test_char_generation_sample_checks_the_prompt_and_keeps_the_mode():
    import rnnfast as rf
    ex = _load("char_generation")
    chars = "ab "
    model = rf.Sequential(rf.Embedding(3, 4, seed=0), rf.LSTM(4, 5, batch_first=True, seed=0),
                          rf.Linear(5, 3, seed=0)).eval()
    to_id, to_char = {c: i for i, c in enumerate(chars)}, dict(enumerate(chars))
    text = ex.sample(model, "ab", 6, to_id, to_char)
    assert text.startswith("ab") and len(text) == 8 and set(text) <= set(chars)
    assert not any(m.training for m in model.modules())  # eval stays eval
    with pytest.raises(ValueError, match=r"never saw: \['z'\]"):
        ex.sample(model, "az", 3, to_id, to_char)


def test_char_generation_windows_reach_the_last_character():
    ex = _load("char_generation")
    X, Y = ex.make_windows(np.arange(10), width=4, stride=1)
    assert X.tolist()[-1] == [5, 6, 7, 8] and Y.tolist()[-1] == [6, 7, 8, 9] and len(X) == 6
    np.testing.assert_array_equal(X[:, 1:], Y[:, :-1])


@pytest.mark.parametrize("compare", [False, True])
def test_demo(capsys, compare):
    from rnnfast import _demo
    import rnnfast as rf
    argv = ["--quick", "--no-progress"] + ([] if compare else ["--no-compare"])
    assert _demo.main(argv) == 0
    out = capsys.readouterr().out
    assert "validation: accuracy" in out
    if compare and rf.compiled_available():
        assert "samples/s" in out and ("faster" in out or "slower" in out)
    elif compare:
        assert "compiled backend is not available" in out


def test_demo_without_the_compiled_backend(capsys, monkeypatch):
    import rnnfast as rf
    from rnnfast import _demo
    monkeypatch.setattr(rf, "compiled_available", lambda: False)
    assert _demo.main(["--quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "backend: reference" in out and "validation: accuracy" in out
    assert "compiled backend is not available" in out
