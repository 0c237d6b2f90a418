"""fit(): learning, reproducibility, validation, early stopping, callbacks, clipping, progress,
Ctrl-C, and the errors raised before training starts; predict() and evaluate()."""
import numpy as np
import pytest

import rnnfast as rf


def _task(n=96, T=8, seed=0):
    """Is the sum of a noisy sequence positive? (N, T, 1) floats, (N,) labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, 1)).astype(np.float32)
    y = (X.sum(axis=(1, 2)) > 0).astype(np.int64)
    return X, y


def _model(seed=0, dropout=0.0):
    return rf.Sequential(rf.GRU(1, 12, batch_first=True, seed=seed), rf.LastStep(),
                         rf.Dropout(dropout, seed=seed), rf.Linear(12, 2, seed=seed))


def _fit(model, X, y, **kw):
    kw.setdefault("epochs", 3)
    kw.setdefault("batch_size", 16)
    kw.setdefault("progress", False)
    opt = kw.pop("optimizer", None) or rf.Adam(model.parameters(), lr=2e-2)
    return rf.fit(model, X, y, loss=kw.pop("loss", rf.CrossEntropyLoss()), optimizer=opt, **kw)


def test_fit_learns_and_reports_history():
    X, y = _task(160)
    model = _model()
    h = _fit(model, X[:128], y[:128], epochs=8, validation_data=(X[128:], y[128:]))
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "time",
                              "samples_per_sec"}
    assert len(h) == 8 and h.epoch == list(range(8)) and len(h["val_loss"]) == 8
    assert h["loss"][-1] < 0.6 * h["loss"][0]
    assert h["accuracy"][-1] > 0.8 and h["val_accuracy"][-1] > 0.7
    assert not h.stopped_early and not h.interrupted
    assert all(m.training for m in model.modules())
    assert "History(epochs=8" in repr(h)


def test_shuffling_is_reproducible_from_seed():
    X, y = _task()
    runs = []
    for seed in (0, 0, 1):
        model = _model(dropout=0.2)
        h = _fit(model, X, y, seed=seed, epochs=2)
        runs.append((h["loss"], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    assert runs[0][0] != runs[2][0]


def test_no_shuffle_visits_samples_in_order():
    X, y = _task(32)
    seen = []

    class Spy(rf.Linear):
        def forward(self, x):
            seen.append(x.copy())
            return super().forward(x)

    model = rf.Sequential(Spy(8, 2))
    _fit(model, X[:, :, 0], y, epochs=1, shuffle=False, batch_size=10)
    batches = [s for s in seen if len(s) > 1]  # the first call is fit's one-sample shape probe
    np.testing.assert_array_equal(np.concatenate(batches), X[:, :, 0])
    assert [len(b) for b in batches] == [10, 10, 10, 2]


def test_regression_with_lengths_and_mse():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 6, 2)).astype(np.float32)
    lengths = rng.integers(1, 7, size=64)
    y = np.array([X[i, :n].sum() for i, n in enumerate(lengths)], dtype=np.float32)[:, None]
    model = rf.Sequential(rf.LSTM(2, 16, batch_first=True, seed=0), rf.LastStep(),
                          rf.Linear(16, 1, seed=0))
    h = _fit(model, X, y, loss=rf.MSELoss(), lengths=lengths, epochs=6,
             validation_data=(X[:16], y[:16], lengths[:16]))
    assert "accuracy" not in h.history and "val_loss" in h.history
    assert h["loss"][-1] < h["loss"][0]
    full = model(X, lengths=lengths)
    model.train()
    np.testing.assert_allclose(model.predict(X, batch_size=10, lengths=lengths),
                               model.eval()(X, lengths=lengths), rtol=1e-5, atol=1e-6)
    assert full.shape == (64, 1)


def test_early_stopping_restores_best_weights():
    X, y = _task(96)
    model = _model()
    snapshots = []
    stop = rf.EarlyStopping(monitor="val_loss", patience=1)
    # a learning rate far too high makes the validation loss bounce, so the best epoch is not
    # the last one
    h = _fit(model, X[:64], y[:64], epochs=30, optimizer=rf.SGD(model.parameters(), lr=3.0),
             validation_data=(X[64:], y[64:]), early_stopping=stop,
             callbacks=[lambda epoch, logs: snapshots.append(model.state_dict())])
    assert h.stopped_early and len(h) < 30
    assert h.best_epoch == int(np.argmin(h["val_loss"]))
    best = snapshots[h.best_epoch]
    assert all(np.array_equal(model.state_dict()[k], best[k]) for k in best)


def test_early_stopping_patience_counts_epochs():
    X, y = _task(32)
    model = _model()
    # lr = 0: the loss never improves after the first epoch; patience=2 means two epochs
    # without improvement and then stop (Keras's count), not a third
    h = _fit(model, X, y, epochs=20, early_stopping=2, shuffle=False,
             optimizer=rf.SGD(model.parameters(), lr=0.0))
    assert h.stopped_early and len(h) == 3 and h.best_epoch == 0
    h = _fit(model, X, y, epochs=20, early_stopping=1, shuffle=False,
             optimizer=rf.SGD(model.parameters(), lr=0.0))
    assert h.stopped_early and len(h) == 2
    with pytest.raises(ValueError, match="no validation_data"):
        _fit(model, X, y, early_stopping=rf.EarlyStopping("val_loss"))
    with pytest.raises(ValueError, match="does not report"):
        _fit(model, X, y, early_stopping=rf.EarlyStopping("f1"))


def test_callbacks_functions_objects_and_stop():
    X, y = _task(32)
    calls = []

    class Recorder:
        def on_epoch_end(self, epoch, logs):
            calls.append(("obj", epoch, sorted(logs)))

    def stopper(epoch, logs):
        calls.append(("fn", epoch))
        if epoch == 1:
            raise rf.StopTraining

    h = _fit(_model(), X, y, epochs=5, callbacks=[Recorder(), stopper])
    assert len(h) == 2
    assert calls[0] == ("obj", 0, ["accuracy", "loss", "samples_per_sec", "time"])
    assert calls[-1] == ("fn", 1)
    with pytest.raises(TypeError, match="callback"):
        _fit(_model(), X, y, callbacks=[3])


def test_clip_grad_norm_is_applied_before_each_step():
    X, y = _task(32)
    model = _model()
    norms = []

    class Spy(rf.SGD):
        def step(self):
            norms.append(np.sqrt(sum(float((p.grad.astype(float) ** 2).sum())
                                     for p in self.params)))
            super().step()

    _fit(model, X, y, epochs=1, optimizer=Spy(model.parameters(), lr=0.1), clip_grad_norm=1e-3)
    assert norms and max(norms) <= 1e-3 * (1 + 1e-4)


def test_progress_bar_shows_loss_and_throughput(capsys):
    X, y = _task(32)
    _fit(_model(), X, y, epochs=1, progress="always")
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "sample/s" in err
    _fit(_model(), X, y, epochs=1, progress=True)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""


def test_ctrl_c_stops_cleanly_and_keeps_the_model():
    X, y = _task(64)
    model = _model()

    class InterruptingLoss(rf.CrossEntropyLoss):
        calls = 0

        def forward(self, scores, target):
            InterruptingLoss.calls += 1
            if InterruptingLoss.calls == 7:  # in the second epoch (4 batches per epoch)
                raise KeyboardInterrupt
            return super().forward(scores, target)

    with pytest.warns(RuntimeWarning, match="interrupted after 1 complete epoch"):
        h = _fit(model, X, y, epochs=5, loss=InterruptingLoss(), early_stopping=3)
    assert h.interrupted and len(h) == 1
    assert all(m.training for m in model.modules())
    assert model.predict(X).shape == (64, 2)


def test_errors_before_training_starts():
    X, y = _task(32)
    model = _model()
    before = model.state_dict()
    with pytest.raises(ValueError, match="class label 2 is out of range"):
        _fit(model, X, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match="y has 31 samples but X has 32"):
        _fit(model, X, y[:-1])
    with pytest.raises(ValueError, match="validation y has"):
        _fit(model, X, y, validation_data=(X, y[:3]))
    with pytest.raises(ValueError, match="out of range"):
        _fit(model, X, y, validation_data=(X, y + 5))
    with pytest.raises(ValueError, match="one length per sample"):
        _fit(model, X, y, lengths=[3, 4])
    with pytest.raises(TypeError, match="integer class labels"):
        _fit(model, X, y.astype(float))
    with pytest.raises(ValueError, match="batch_size"):
        _fit(model, X, y, batch_size=0)
    with pytest.raises(ValueError, match="batch_first=True"):
        _fit(rf.Sequential(rf.GRU(1, 4), rf.LastStep(), rf.Linear(4, 2)), X, y)
    with pytest.raises(ValueError, match="takes no lengths"):
        _fit(rf.Linear(1, 2), X[:, 0], y, lengths=np.ones(32, dtype=int))
    # an optimizer over another model's parameters (e.g. the model before rf.load) would
    # silently train nothing; a loss or optimizer class instead of an object
    with pytest.raises(ValueError, match="none of this model's parameters"):
        _fit(model, X, y, optimizer=rf.Adam(_model().parameters()))
    with pytest.raises(TypeError, match="loss object"):
        _fit(model, X, y, loss=rf.CrossEntropyLoss)
    with pytest.raises(TypeError, match="optimizer object"):
        _fit(model, X, y, optimizer=rf.Adam)
    assert all(np.array_equal(model.state_dict()[k], before[k]) for k in before)


def test_diverging_loss_raises():
    X, y = _task(32)
    X = X.copy()
    X[3, 0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        _fit(_model(), X, y, shuffle=False)


def test_evaluate_and_predict_helpers():
    X, y = _task(40)
    model = _model()
    scores = rf.predict(model, X, batch_size=9)
    assert scores.shape == (40, 2)
    result = rf.evaluate(model, X, y, rf.CrossEntropyLoss(), batch_size=9)
    assert result["accuracy"] == pytest.approx(np.mean(scores.argmax(1) == y))
    assert result["loss"] > 0
    with pytest.raises(ValueError, match="batch_size"):
        rf.predict(model, X, batch_size=0)


def test_bare_recurrent_layer_can_be_fitted():
    # a layer that returns (out, state) works without a Sequential around it
    rng = np.random.default_rng(2)
    X = rng.standard_normal((16, 4, 3)).astype(np.float32)
    y = np.zeros((16, 4, 5), dtype=np.float32)
    layer = rf.RNN(3, 5, batch_first=True, seed=0)
    h = _fit(layer, X, y, loss=rf.MSELoss(), epochs=3, optimizer=rf.SGD(layer, lr=0.5))
    assert h["loss"][-1] < h["loss"][0]


def test_losses_with_ignored_targets_do_not_depend_on_the_batch_size():
    # a sequence-labelling model whose padding targets are ignore_index: evaluate()'s loss and
    # fit()'s epoch loss are the mean over every counted target, not a mean of batch means
    rng = np.random.default_rng(3)
    N, T = 12, 5
    X = rng.standard_normal((N, T, 2)).astype(np.float32)
    lengths = np.array([5, 0, 1, 3, 5, 2, 0, 4, 1, 5, 2, 3])
    y = rng.integers(0, 3, (N, T))
    y[np.arange(T)[None, :] >= lengths[:, None]] = -100
    model = rf.Sequential(rf.GRU(2, 6, batch_first=True, seed=0), rf.Linear(6, 3, seed=0))
    loss = rf.CrossEntropyLoss()
    whole = loss(model.predict(X, lengths=lengths), y)
    for batch_size in (1, 5, 256):
        got = rf.evaluate(model, X, y, loss, batch_size=batch_size, lengths=lengths)["loss"]
        assert got == pytest.approx(whole, rel=1e-6)
    h = _fit(model, X, y, loss=loss, lengths=lengths, epochs=1, batch_size=4, shuffle=False,
             optimizer=rf.SGD(model.parameters(), lr=0.0))
    assert h["loss"][0] == pytest.approx(whole, rel=1e-6)
