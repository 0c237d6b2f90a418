"""save/load: round trips of every layer kind, atomic writes, and clear errors for damaged or
mismatched files."""
import json
import os

import numpy as np
import pytest

import rnnfast as rf


def _every_kind():
    return rf.Sequential(
        rf.Embedding(30, 6, padding_idx=0, seed=0),
        rf.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True, seed=1),
        rf.Dropout(0.2, seed=2), rf.Tanh(),
        rf.GRU(10, 4, batch_first=True, bias=False, seed=3), rf.ReLU(),
        rf.RNN(4, 4, nonlinearity="relu", batch_first=True, seed=4), rf.Sigmoid(),
        rf.LastStep(), rf.Linear(4, 3, seed=5))


def _ids(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 30, size=(5, 7)), np.array([7, 3, 1, 5, 2])


def test_round_trip_every_layer_kind(tmp_path):
    model = _every_kind()
    path = tmp_path / "model.npz"
    rf.save(model, path)
    again = rf.load(path)
    assert [type(m).__name__ for m in again] == [type(m).__name__ for m in model]
    assert again[1].bidirectional and again[1].num_layers == 2 and not again[4].bias
    assert again[6].nonlinearity == "relu" and again[0].padding_idx == 0
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[k], v)
    ids, lengths = _ids()
    np.testing.assert_array_equal(again.predict(ids, lengths=lengths),
                                  model.predict(ids, lengths=lengths))
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind


def test_float64_and_single_layers_round_trip(tmp_path):
    lstm = rf.LSTM(3, 4, dtype=np.float64, seed=0)
    rf.save(lstm, tmp_path / "lstm.npz")
    again = rf.load(str(tmp_path / "lstm.npz"))
    assert type(again) is rf.LSTM and again.dtype == np.float64
    assert again.weight_ih_l0.dtype == np.float64
    lin = rf.Linear(2, 2, dtype=np.float64)
    rf.save(lin, tmp_path / "lin.npz")
    assert rf.load(tmp_path / "lin.npz").weight.dtype == np.float64


def test_load_into_a_given_model(tmp_path):
    model = _every_kind()
    rf.save(model, tmp_path / "m.npz")
    other = _every_kind()
    for p in other.parameters():
        p.data[...] = 0
    assert rf.load(tmp_path / "m.npz", model=other) is other
    np.testing.assert_array_equal(other[9].weight, model[9].weight)
    wrong = rf.Sequential(rf.Linear(3, 4))
    with pytest.raises(rf.ModelFileError, match="do not fit the given Sequential.*missing"):
        rf.load(tmp_path / "m.npz", model=wrong)
    small = rf.Sequential(rf.Linear(4, 3))
    rf.save(small, tmp_path / "small.npz")
    with pytest.raises(rf.ModelFileError, match=r"'0.weight'.*shape"):
        rf.load(tmp_path / "small.npz", model=rf.Sequential(rf.Linear(5, 3)))


def test_file_is_a_plain_npz_without_pickles(tmp_path):
    model = rf.Sequential(rf.Linear(2, 3), rf.Tanh())
    rf.save(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert set(z.files) == {"__rnnfast__", "weights/0.weight", "weights/0.bias"}
        meta = json.loads(str(z["__rnnfast__"]))
        np.testing.assert_array_equal(z["weights/0.weight"], model[0].weight)
    assert meta["format"] == "rnnfast-model" and meta["version"] == 1
    assert meta["model"]["class"] == "Sequential"
    assert meta["parameters"]["0.weight"] == {"shape": [3, 2], "dtype": "float32"}


def test_new_file_gets_the_mode_a_plain_open_would(tmp_path):
    old = os.umask(0o077)  # a private umask: the model file must not be world-readable
    try:
        rf.save(rf.Linear(2, 2), tmp_path / "private.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "private.npz").stat().st_mode & 0o777 == 0o600
    rf.save(rf.Linear(2, 2), tmp_path / "plain.npz")
    assert (tmp_path / "plain.npz").stat().st_mode & 0o777 == 0o666 & ~old


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    old = rf.Sequential(rf.Linear(2, 2, seed=0))
    rf.save(old, path)
    original = path.read_bytes()

    def crash(f, **arrays):  # write part of the archive, then die
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        rf.save(rf.Sequential(rf.Linear(2, 2, seed=1)), path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(rf.load(path)[0].weight, old[0].weight)


def test_truncated_files_raise_a_clear_error(tmp_path):
    rf.save(_every_kind(), tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    for cut in (0, 10, len(data) // 3, len(data) // 2, len(data) - 1):
        (tmp_path / "t.npz").write_bytes(data[:cut])
        with pytest.raises(rf.ModelFileError, match="corrupted or truncated"):
            rf.load(tmp_path / "t.npz")


def test_corrupted_weights_and_description_are_detected(tmp_path):
    model = _every_kind()
    rf.save(model, tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    # flip a byte inside the stored bytes of a weight array and inside the JSON description
    where = [data.find(model[1].weight_hh_l1.tobytes()) + 17,
             data.find("Sequential".encode("utf-32-le")) + 2]
    assert min(where) > 16
    for pos in where:
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        (tmp_path / "c.npz").write_bytes(bytes(damaged))
        with pytest.raises(rf.ModelFileError, match="corrupted"):
            rf.load(tmp_path / "c.npz")


def test_not_a_model_file(tmp_path):
    (tmp_path / "junk.npz").write_bytes(os.urandom(300))
    with pytest.raises(rf.ModelFileError):
        rf.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(rf.ModelFileError, match="not an rnnfast model file"):
        rf.load(tmp_path / "plain.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(rf.ModelFileError, match="single .npy"):
        rf.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        rf.load(tmp_path / "missing.npz")


def _rewrite(src, dst, edit_meta=None, edit_arrays=None):
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__rnnfast__")))
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    np.savez(dst, __rnnfast__=np.array(json.dumps(meta)), **arrays)


def test_mismatched_contents(tmp_path):
    src = tmp_path / "m.npz"
    rf.save(rf.Sequential(rf.Linear(3, 2), rf.GRU(2, 2)), src)

    def newer(meta):
        meta["version"] = 99

    _rewrite(src, tmp_path / "a.npz", edit_meta=newer)
    with pytest.raises(rf.ModelFileError, match="version 99.*upgrade"):
        rf.load(tmp_path / "a.npz")

    def drop(arrays):
        del arrays["weights/1.bias_hh_l0"]

    _rewrite(src, tmp_path / "b.npz", edit_arrays=drop)
    with pytest.raises(rf.ModelFileError, match="missing.*1.bias_hh_l0"):
        rf.load(tmp_path / "b.npz")

    def reshape(arrays):
        arrays["weights/0.weight"] = np.zeros((2, 4), np.float32)

    _rewrite(src, tmp_path / "c.npz", edit_arrays=reshape)
    with pytest.raises(rf.ModelFileError, match="'0.weight'"):
        rf.load(tmp_path / "c.npz")

    def architecture(meta):  # weights listed as the file has them, architecture changed
        meta["model"]["config"]["layers"][0]["config"]["in_features"] = 4

    _rewrite(src, tmp_path / "d.npz", edit_meta=architecture)
    with pytest.raises(rf.ModelFileError, match="do not fit its stored architecture"):
        rf.load(tmp_path / "d.npz")

    def unknown(meta):
        meta["model"]["config"]["layers"][1]["class"] = "Transformer"

    _rewrite(src, tmp_path / "e.npz", edit_meta=unknown)
    with pytest.raises(rf.ModelFileError, match="Transformer"):
        rf.load(tmp_path / "e.npz")


def test_custom_modules_register_to_load(tmp_path):
    class Scale(rf.Module):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

        def backward(self, dy):
            return dy * self.factor

        def get_config(self):
            return {"factor": self.factor}

    model = rf.Sequential(rf.Linear(2, 2), Scale(3.0))
    rf.save(model, tmp_path / "s.npz")
    with pytest.raises(rf.ModelFileError, match="register_module"):
        rf.load(tmp_path / "s.npz")
    rf.register_module(Scale)
    assert rf.load(tmp_path / "s.npz")[1].factor == 3.0

    class Opaque(rf.Module):
        pass

    with pytest.raises(NotImplementedError, match="Opaque"):
        rf.save(rf.Sequential(Opaque()), tmp_path / "o.npz")
    assert not (tmp_path / "o.npz").exists()
