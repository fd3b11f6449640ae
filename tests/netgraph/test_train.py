"""NetTrain: the API, losses, optimisers, data forms, errors, freezing, regularizers,
constraints, validation, early stopping, callbacks, progress, layer state, checkpoints.

The learning tasks (sorting digits, regression, ragged classification) are in
test_train_learning.py. Every net here is tiny so that each test takes about a second.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import netgraph as ng
from netgraph.train_loss import build_training_net
from netgraph.train_optim import parse_constraint, parse_regularizer


def classification(n=64, seed=0, features=4, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = np.argmax(x[:, :classes], axis=1).astype(np.int32)
    return x, y


def classifier(features=4, classes=3, hidden=8):
    return ng.NetChain({"h": ng.LinearLayer(hidden), "act": "Tanh", "o": ng.LinearLayer(classes),
                        "p": ng.SoftmaxLayer()}, Input=features)


def regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    return x, y


def regressor():
    return ng.NetChain({"h": ng.LinearLayer(8), "act": "Tanh", "o": ng.LinearLayer(1)}, Input=3)


def arrays(net):
    out = {}

    def walk(layer, path):
        for name, value in layer.arrays.items():
            out[path + (name,)] = np.array(value)
        for child, sub in layer.children().items():
            walk(sub, path + (child,))

    walk(net, ())
    return out


def ragged(n=48, seed=0, vocab=6, longest=40):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest, n)
    xs = [rng.integers(0, vocab, k).astype(np.int32) for k in lengths]
    ys = np.array([int((x == 1).any()) for x in xs], np.int32)
    return xs, ys


def sequence_classifier(vocab=6):
    return ng.NetChain([ng.EmbeddingLayer(8, vocab), ng.AggregationLayer("Max", 0), ng.LinearLayer(2),
                        ng.SoftmaxLayer()], Input=("Varying", ng.Restricted("Integer", vocab)))


# ============================================================================ the result
def test_result_api(tmp_path):
    x, y = classification()
    result = ng.NetTrain(classifier(), {"Input": x, "Target": y}, validation_set=(x[:16], y[:16]),
                         max_epochs=3, batch_size=16, learning_rate=1e-2)
    assert isinstance(result, ng.TrainResult)
    assert result["TrainedNet"] is result.net and result["FinalNet"] is result.final_net
    h = result.history
    for key in ("epoch", "loss", "validation_loss", "accuracy", "error_rate", "validation_accuracy",
                "validation_error_rate", "compilations", "seconds"):
        assert len(h[key]) == 3, key
    assert h["epoch"] == [0, 1, 2]
    np.testing.assert_allclose(np.add(h["accuracy"], h["error_rate"]), 1.0, rtol=1e-6)
    assert result["RoundLossList"] == h["loss"] and len(result["BatchLossList"]) == 3 * 4
    assert result.net.input_ports == {"Input": (4,)} and result.net.output_names == ("Output",)
    probs = result.net(x[:5])
    assert probs.shape == (5, 3)
    path = result.plot(tmp_path / "loss.png")
    assert os.path.getsize(path) > 1000
    assert "NetTrain: 3 epoch(s)" in result.summary
    with pytest.raises(ng.SpecificationError, match="no property 'Bogus'"):
        result["Bogus"]


def test_training_lowers_the_loss():
    x, y = classification(128)
    result = ng.NetTrain(classifier(), {"Input": x, "Target": y}, max_epochs=8, learning_rate=3e-2)
    assert result.history["loss"][-1] < 0.6 * result.history["loss"][0]


def test_uninitialized_and_automatic_inputs_are_fitted_and_seeded():
    x, y = regression()
    net = ng.NetChain([ng.LinearLayer(4), "Tanh", ng.LinearLayer(1)])  # no input shape, no arrays
    a = ng.NetTrain(net, (x, y), max_epochs=1, seed=3)
    b = ng.NetTrain(net, (x, y), max_epochs=1, seed=3)
    assert a.net.input_ports == {"Input": (3,)}
    for k, v in arrays(a.net).items():
        np.testing.assert_array_equal(v, arrays(b.net)[k])


# ============================================================================ losses
def test_automatic_loss_choice():
    terms = build_training_net(classifier()).terms
    assert [t.kind for t in terms] == ["Index"]
    seq = ng.NetChain([ng.EmbeddingLayer(4, 5), ng.NetMapOperator(ng.NetChain([ng.LinearLayer(3), ng.SoftmaxLayer()]))],
                      Input=("Varying", ng.Restricted("Integer", 5)))
    training = build_training_net(seq)
    assert training.terms[0].kind == "Index"
    assert training.graph.input_ports["Target"] == ("Varying", ng.Restricted("Integer", 3))
    assert build_training_net(regressor()).terms[0].kind == "Regression"
    softmax_first_axis = ng.NetChain([ng.LinearLayer((3, 2)), ng.SoftmaxLayer(0)], Input=4)
    assert build_training_net(softmax_first_axis).terms[0].kind == "Regression"


def test_explicit_loss_layer_and_dict():
    x, y = regression()
    result = ng.NetTrain(regressor(), {"Input": x, "Target": y}, loss=ng.MeanAbsoluteLossLayer(),
                         max_epochs=1, optimizer="SGD", learning_rate=1e-9, shuffle=False, batch_size=64)
    initial = ng.NetInitialize(regressor(), seed=0)
    expected = np.mean(np.abs(initial(x) - y))
    np.testing.assert_allclose(result.history["loss"][0], expected, rtol=1e-5)
    result = ng.NetTrain(regressor(), {"Input": x, "Target": y}, loss={"Output": "Automatic"}, max_epochs=1)
    assert "mean_absolute_error" in result.history


def test_own_loss_outputs_weighted():
    """A NetGraph with two scalar "Loss" outputs of its own: their weighted sum is trained."""
    x, y = regression()
    net = ng.NetGraph(
        {"o": ng.LinearLayer(1), "mse": ng.MeanSquaredLossLayer(), "mae": ng.MeanAbsoluteLossLayer()},
        [(ng.NetPort("Input"), "o"), ("o", ng.NetPort("mse", "Input")), ("o", ng.NetPort("mae", "Input")),
         (ng.NetPort("Target"), ng.NetPort("mse", "Target")), (ng.NetPort("Target"), ng.NetPort("mae", "Target")),
         (ng.NetPort("mse", "Loss"), ng.NetPort("Loss1")), (ng.NetPort("mae", "Loss"), ng.NetPort("Loss2"))],
        Input=3)
    net = ng.NetInitialize(net, seed=0)
    result = ng.NetTrain(net, {"Input": x, "Target": y}, loss_weights={"Loss1": 2.0, "Loss2": 0.5},
                         max_epochs=1, optimizer="SGD", learning_rate=1e-9, shuffle=False, batch_size=64)
    out = net({"Input": x, "Target": y})
    np.testing.assert_allclose(result.history["loss"][0], 2.0 * out["Loss1"].mean() + 0.5 * out["Loss2"].mean(),
                               rtol=1e-5)
    with pytest.raises(ng.SpecificationError, match="not losses"):
        ng.NetTrain(net, {"Input": x, "Target": y}, loss_weights={"Bogus": 1.0}, max_epochs=1)


def test_two_outputs_get_targets_named_after_them():
    net = ng.NetGraph({"a": ng.LinearLayer(2), "b": ng.LinearLayer(1)},
                      [(ng.NetPort("Input"), ["a", "b"]), ("a", ng.NetPort("A")), ("b", ng.NetPort("B"))], Input=3)
    x, _ = regression()
    data = {"Input": x, "A": np.zeros((64, 2), np.float32), "B": np.ones((64, 1), np.float32)}
    result = ng.NetTrain(net, data, max_epochs=2, loss_weights={"A": 1.0, "B": 0.0})
    assert "A_mean_absolute_error" in result.history and "B_mean_absolute_error" in result.history


def test_bad_losses():
    with pytest.raises(ng.SpecificationError, match="not a loss"):
        ng.NetTrain(regressor(), regression(), loss=42)
    with pytest.raises(ng.SpecificationError, match="not scalar outputs"):
        ng.NetTrain(regressor(), regression(), loss="Output")
    with pytest.raises(ng.SpecificationError, match="not an output"):
        ng.NetTrain(regressor(), regression(), loss={"Bogus": ng.MeanSquaredLossLayer()})


# ============================================================================ optimisers
@pytest.mark.parametrize("optimizer", ["Adam", "SGD", "RMSProp", "AdamW", "adam", ("SGD", {"momentum": 0.9})])
def test_named_optimizers(optimizer):
    result = ng.NetTrain(regressor(), regression(), optimizer=optimizer, max_epochs=2, learning_rate=1e-2)
    assert np.isfinite(result.history["loss"]).all()


def test_optax_transform_and_schedule():
    result = ng.NetTrain(regressor(), regression(), optimizer=optax.chain(optax.clip(1.0), optax.sgd(1e-2)),
                         max_epochs=2)
    assert len(result.history["loss"]) == 2
    schedule = optax.exponential_decay(1e-2, transition_steps=2, decay_rate=0.5)
    result = ng.NetTrain(regressor(), regression(), learning_rate=schedule, max_epochs=2, batch_size=32)
    np.testing.assert_allclose(result.history["learning_rate"], [schedule(2), schedule(4)], rtol=1e-6)
    with pytest.raises(ng.SpecificationError, match="own learning rate"):
        ng.NetTrain(regressor(), regression(), optimizer=optax.sgd(1e-2), learning_rate=1e-3)
    with pytest.raises(ng.SpecificationError, match="not a known optimizer"):
        ng.NetTrain(regressor(), regression(), optimizer="Adamax")
    with pytest.raises(ng.SpecificationError, match="optax.sgd"):
        ng.NetTrain(regressor(), regression(), optimizer=("SGD", {"momentun": 0.9}))


def test_gradient_clipping_by_value():
    x, y = regression()
    net = ng.NetInitialize(regressor(), seed=0)
    result = ng.NetTrain(net, (x, 100 * y), optimizer="SGD", learning_rate=1.0, gradient_clipping=("Value", 0.01),
                         max_epochs=1, batch_size=64)
    for k, before in arrays(net).items():
        assert np.max(np.abs(arrays(result.net)[k] - before)) <= 0.01 + 1e-6
    with pytest.raises(ng.SpecificationError, match="gradient_clipping"):
        ng.NetTrain(net, (x, y), gradient_clipping=-1)


def test_weight_decay_shrinks_weights():
    x, y = regression()
    net = ng.NetInitialize(regressor(), seed=0)
    zero = (x, np.zeros_like(y))
    plain = ng.NetTrain(net, zero, optimizer="SGD", learning_rate=1e-9, max_epochs=1, weight_decay=0.0)
    decayed = ng.NetTrain(net, zero, optimizer="AdamW", learning_rate=1e-2, max_epochs=3, weight_decay=1.0)
    w0 = np.abs(ng.NetExtract(plain.net, ("h", "Weights"))).sum()
    assert np.abs(ng.NetExtract(decayed.net, ("h", "Weights"))).sum() < w0


# ============================================================================ multipliers
def test_multiplier_zero_freezes_bit_identical():
    xs, ys = ragged()
    net = ng.NetInitialize(sequence_classifier(), seed=0)
    result = ng.NetTrain(net, {"Input": xs, "Target": ys}, learning_rate_multipliers={0: 0.0}, max_epochs=2,
                         learning_rate=1e-1, weight_decay=0.1)
    before, after = arrays(net), arrays(result.net)
    np.testing.assert_array_equal(after[("0", "Weights")], before[("0", "Weights")])
    assert not np.array_equal(after[("2", "Weights")], before[("2", "Weights")])


def test_multipliers_scale_the_update_most_specific_wins():
    x, y = regression()
    net = ng.NetInitialize(regressor(), seed=0)
    kw = dict(optimizer="SGD", learning_rate=1e-2, max_epochs=1, batch_size=64, shuffle=False)
    one = ng.NetTrain(net, (x, y), **kw)
    half = ng.NetTrain(net, (x, y), learning_rate_multipliers={ng.All: 0.5, ("o", "Biases"): 0.0, "h": 2.0}, **kw)
    b, d1, dh = arrays(net), arrays(one.net), arrays(half.net)
    np.testing.assert_allclose(dh[("o", "Weights")] - b[("o", "Weights")],
                               0.5 * (d1[("o", "Weights")] - b[("o", "Weights")]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dh[("h", "Weights")] - b[("h", "Weights")],
                               2.0 * (d1[("h", "Weights")] - b[("h", "Weights")]), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(dh[("o", "Biases")], b[("o", "Biases")])


def test_bad_multipliers():
    with pytest.raises(ng.PartSpecError, match="no part 'nope'"):
        ng.NetTrain(regressor(), regression(), learning_rate_multipliers={"nope": 0.0})
    with pytest.raises(ng.SpecificationError, match=">= 0"):
        ng.NetTrain(regressor(), regression(), learning_rate_multipliers={"h": -1.0})


# ============================================================================ data
def test_ragged_lists_compile_once_per_bucket_shape():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 300, 200)
    xs = [rng.integers(0, 6, k).astype(np.int32) for k in lengths]
    ys = [int((x == 1).any()) for x in xs]  # a plain list of labels
    result = ng.NetTrain(sequence_classifier(), {"Input": xs, "Target": ys}, max_epochs=3, batch_size=16)
    per_epoch = result.history["compilations"]
    assert per_epoch[1] == 0 and per_epoch[2] == 0
    assert 1 <= per_epoch[0] == result.compilations["train"] <= 12


def test_dict_of_arrays_has_one_shape_per_batch_size():
    x, y = classification(70)
    result = ng.NetTrain(classifier(), {"Input": x, "Target": y}, max_epochs=2, batch_size=32)
    assert result.compilations["train"] == 2  # 32 rows, and the last 6 examples padded to 8
    assert result.history["compilations"][1] == 0


def test_padding_rows_do_not_count():
    """The loss of a batch with padding rows is the mean over its real examples."""
    x, y = regression(5)
    net = ng.NetInitialize(regressor(), seed=0)
    result = ng.NetTrain(net, (x, y), optimizer="SGD", learning_rate=1e-9, max_epochs=1, batch_size=8)
    np.testing.assert_allclose(result.history["loss"][0], np.mean((net(x) - y) ** 2), rtol=1e-5)


def test_iterable_of_batches_and_generator_function():
    x, y = regression(96)
    batches = [{"Input": x[i:i + 32], "Target": y[i:i + 32]} for i in range(0, 96, 32)]
    a = ng.NetTrain(regressor(), batches, max_epochs=2, shuffle=False)
    assert len(a.batch_losses) == 6

    def generate():
        for b in batches:
            yield b

    b = ng.NetTrain(regressor(), generate, max_epochs=2, shuffle=False)
    np.testing.assert_allclose(b.history["loss"], a.history["loss"], rtol=1e-6)
    c = ng.NetTrain(regressor(), generate(), max_epochs=3, steps_per_epoch=1)
    assert len(c.history["loss"]) == 3
    with pytest.raises(ng.InputDataError, match="read once"):
        ng.NetTrain(regressor(), generate(), max_epochs=2)


def test_generated_ragged_batches():
    xs, ys = ragged(64)
    batches = [{"Input": xs[i:i + 16], "Target": ys[i:i + 16]} for i in range(0, 64, 16)]
    result = ng.NetTrain(sequence_classifier(), lambda: iter(batches), max_epochs=2)
    assert result.history["compilations"][1] == 0


def test_one_shot_iterator_running_out_stops_training():
    x, y = regression(64)
    stream = iter([{"Input": x, "Target": y}] * 3)
    result = ng.NetTrain(regressor(), stream, max_epochs=10, steps_per_epoch=2)
    assert len(result.history["loss"]) == 2 and "ran out" in result.stop_reason


# ------------------------------------------------------------------------- bad data
def _fails(match, data, net=None, **kw):
    with pytest.raises(ng.InputDataError, match=match):
        ng.NetTrain(net or classifier(), data, max_epochs=1, **kw)


def test_missing_target_names_the_port_and_the_loss():
    x, _ = classification()
    with pytest.raises(ng.InputDataError) as info:
        ng.NetTrain(classifier(), {"Input": x}, max_epochs=1)
    text = str(info.value)
    assert "\"Target\"" in text or "'Target'" in text
    assert 'CrossEntropyLossLayer["Index"]' in text and "Integer in [0, 3)" in text


def test_bad_data_is_named_before_compiling():
    x, y = classification()
    _fails("different numbers of examples", {"Input": x, "Target": y[:10]})
    _fails(r'port "Input".*\(5,\) instead of \(4,\)', {"Input": np.zeros((64, 5), np.float32), "Target": y})
    _fails(r'port "Input" takes examples of shape \{4\}', {"Input": x[0], "Target": y[:4]})
    bad = y.copy()
    bad[17] = 3
    _fails(r'port "Target", example #17, holds the value 3; it takes integers in \[0, 3\)',
           {"Input": x, "Target": bad})
    _fails("unknown port", {"Input": x, "Target": y, "Extra": y})
    _fails("should be real", {"Input": x.astype(np.int32), "Target": y})
    _fails("no examples", {"Input": x[:0], "Target": y[:0]})
    xs, ys = ragged()
    xs[5] = np.array([0, 9], np.int32)
    _fails(r'port "Input", example #5.*\[0, 6\)', {"Input": xs, "Target": ys}, net=sequence_classifier())
    xs[5] = np.zeros((2, 2), np.int32)
    _fails(r"example #5, should be a rank-1", {"Input": xs, "Target": ys}, net=sequence_classifier())
    _fails("validation_set", {"Input": x, "Target": y}, validation_set={"Input": x})
    _fails("not training data", 42)


def test_bad_arguments():
    data = regression()
    for kw, match in [({"batch_size": 0}, "batch_size"), ({"max_epochs": -1}, "max_epochs"),
                      ({"seed": 1.5}, "seed"), ({"patience": 0}, "patience"), ({"callback": 3}, "callback"),
                      ({"progress": "yes"}, "progress"), ({"learning_rate": -1.0}, "learning_rate"),
                      ({"monitor": "bogus"}, "monitor"), ({"epochs": 3}, "unknown option"),
                      ({"weight_decay": -1}, "weight_decay")]:
        with pytest.raises(ng.SpecificationError, match=match):
            ng.NetTrain(regressor(), data, **kw)
    with pytest.raises(ng.SpecificationError, match="needs a net"):
        ng.NetTrain("net", data)


# ============================================================================ training mode
def test_dropout_only_in_training_and_reproducible():
    x, y = regression()
    net = ng.NetChain({"h": ng.LinearLayer(16), "drop": ng.DropoutLayer(0.5), "o": ng.LinearLayer(1)}, Input=3)
    a = ng.NetTrain(net, (x, y), max_epochs=2, seed=1)
    b = ng.NetTrain(net, (x, y), max_epochs=2, seed=1)
    c = ng.NetTrain(net, (x, y), max_epochs=2, seed=2)
    np.testing.assert_array_equal(arrays(a.net)[("o", "Weights")], arrays(b.net)[("o", "Weights")])
    assert not np.array_equal(arrays(a.net)[("o", "Weights")], arrays(c.net)[("o", "Weights")])
    # validation runs in evaluation mode: it equals the trained net's own loss on that data
    v = ng.NetTrain(net, (x, y), validation_set=(x, y), max_epochs=1, select_best=False)
    np.testing.assert_allclose(v.history["validation_loss"][0], np.mean((v.net(x) - y) ** 2), rtol=1e-5)


def test_batch_normalization_state_is_updated_not_trained():
    x, y = regression(128)
    x = 3.0 + 2.0 * x
    net = ng.NetChain({"h": ng.LinearLayer(8), "bn": ng.BatchNormalizationLayer(), "act": "Tanh",
                       "o": ng.LinearLayer(1)}, Input=3)
    net = ng.NetInitialize(net, seed=0)
    result = ng.NetTrain(net, (x, y), max_epochs=3, learning_rate=1e-2)
    mean = ng.NetExtract(result.net, ("bn", "MovingMean"))
    h = ng.NetExtract(net, "h")(x)
    assert not np.allclose(mean, 0.0)
    assert np.all(np.abs(mean - h.mean(axis=0)) < np.abs(h.mean(axis=0)) + 1e-3)
    frozen = ng.NetTrain(net, (x, y), max_epochs=1, learning_rate_multipliers={"bn": 0.0})
    np.testing.assert_array_equal(ng.NetExtract(frozen.net, ("bn", "Scaling")), np.ones(8, np.float32))


# ============================================================================ validation
def test_early_stopping_and_best_net():
    x, y = regression(64)
    net = ng.NetInitialize(regressor(), seed=0)
    result = ng.NetTrain(net, (x, y), validation_set=(x, -y), patience=2, max_epochs=20, learning_rate=3e-2)
    h = result.history
    assert len(h["loss"]) < 20 and "patience" in result.stop_reason
    best = int(np.argmin(h["validation_loss"]))
    assert result.best_epoch == best and len(h["loss"]) == best + 3
    np.testing.assert_allclose(np.mean((result.net(x) + y) ** 2), h["validation_loss"][best], rtol=1e-5)
    assert not np.array_equal(arrays(result.net)[("o", "Weights")], arrays(result.final_net)[("o", "Weights")])


def test_monitor_accuracy_is_maximised():
    x, y = classification(96)
    result = ng.NetTrain(classifier(), (x, y), validation_set=(x[:32], y[:32]), monitor="validation_accuracy",
                         max_epochs=4, learning_rate=1e-2)
    assert result.best_epoch == int(np.argmax(result.history["validation_accuracy"]))


def test_callback_per_batch_and_epoch_and_stop():
    events = []

    def callback(event):
        events.append((event.kind, event.epoch, event.batch))
        if event.kind == "epoch":
            assert event.net.input_ports == {"Input": 3}  or event.net is not None
            return "StopTraining"

    result = ng.NetTrain(regressor(), regression(64), batch_size=32, max_epochs=5, callback=callback)
    assert events == [("batch", 0, 0), ("batch", 0, 1), ("epoch", 0, -1)]
    assert len(result.history["loss"]) == 1 and "StopTraining" in result.stop_reason


def test_progress_bar_and_summary(capsys):
    ng.NetTrain(regressor(), regression(64), max_epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "NetTrain" in err and "examples/s" in err
    assert "NetTrain: 2 epoch(s), 128 examples" in err.strip().splitlines()[-1]


# ============================================================================ regularizers
def test_regularizers_follow_keras():
    w = np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)
    assert float(parse_regularizer("l2", "r")(jnp.asarray(w))) == pytest.approx(0.01 * 5.25)
    assert float(parse_regularizer(("l1", 0.1), "r")(jnp.asarray(w))) == pytest.approx(0.35)
    assert float(parse_regularizer(("l1_l2", 0.1, 1.0), "r")(jnp.asarray(w))) == pytest.approx(0.35 + 5.25)
    assert float(parse_regularizer("l1_l2", "r")(jnp.asarray(w))) == pytest.approx(0.01 * 3.5 + 0.01 * 5.25)
    with pytest.raises(ng.SpecificationError, match="not a regularizer"):
        parse_regularizer("l3", "r")


def test_regularization_is_added_and_reported():
    x, y = regression()
    net = ng.NetInitialize(regressor(), seed=0)
    result = ng.NetTrain(net, (x, y), regularizers={("o", "Weights"): ("l2", 1e-1), "h": "l1"},
                         optimizer="SGD", learning_rate=1e-9, max_epochs=1)
    expected = 0.1 * np.sum(ng.NetExtract(net, ("o", "Weights")) ** 2) + 0.01 * np.sum(
        np.abs(ng.NetExtract(net, ("h", "Weights"))))
    np.testing.assert_allclose(result.history["regularization"][0], expected, rtol=1e-5)
    strong = ng.NetTrain(net, (x, y), regularizers={ng.All: ("l2", 10.0)}, max_epochs=3, learning_rate=1e-2)
    assert np.sum(ng.NetExtract(strong.net, ("h", "Weights")) ** 2) < np.sum(ng.NetExtract(net, ("h", "Weights")) ** 2)
    with pytest.raises(ng.SpecificationError, match='no "Weights"'):
        ng.NetTrain(net, (x, y), regularizers={"act": "l2"})


# ================================================================== activity regularizers
def test_activity_regularizer_counts_true_positions_only():
    """A ragged batch: the penalty of each example is over its own length (padding never
    counts), then averaged over the real examples. All arrays frozen, so the epoch's value
    is that of the initial net."""
    xs, ys = ragged(n=20)
    net = ng.NetInitialize(sequence_classifier(), seed=0)
    result = ng.NetTrain(net, {"Input": xs, "Target": ys}, batch_size=8, max_epochs=1,
                         learning_rate_multipliers={ng.All: 0.0}, activity_regularizers={0: ("l2", 0.5)})
    table = ng.NetExtract(net, (0, "Weights"))
    expected = np.mean([0.5 * np.sum(table[x] ** 2) for x in xs])
    np.testing.assert_allclose(result.history["activity_regularization"][0], expected, rtol=1e-5)
    assert "activity_regularization" not in ng.NetTrain(net, {"Input": xs, "Target": ys}, max_epochs=1).history


def test_bad_activity_regularizers():
    x, y = classification()
    net = classifier()
    with pytest.raises(ng.PartSpecError, match=r"activity_regularizers\['nope'\].*no part 'nope'"):
        ng.NetTrain(net, (x, y), activity_regularizers={"nope": "l2"}, max_epochs=1)
    with pytest.raises(ng.SpecificationError, match="not a regularizer"):
        ng.NetTrain(net, (x, y), activity_regularizers={"h": "l3"}, max_epochs=1)
    with pytest.raises(ng.SpecificationError, match="name the same layer h"):
        ng.NetTrain(net, (x, y), activity_regularizers={"h": "l2", 0: "l1"}, max_epochs=1)
    with pytest.raises(ng.SpecificationError, match="keyed by a layer path"):
        ng.NetTrain(net, (x, y), activity_regularizers={ng.All: "l2"}, max_epochs=1)
    with pytest.raises(ng.SpecificationError, match="must be a dict"):
        ng.NetTrain(net, (x, y), activity_regularizers=[("h", "l2")], max_epochs=1)
    mapped = ng.NetChain({"m": ng.NetMapOperator(ng.NetChain({"lin": ng.LinearLayer(2)})),
                          "flat": ng.FlattenLayer(), "o": ng.LinearLayer(1)}, Input=(3, 2))
    with pytest.raises(ng.SpecificationError, match=r"m \(NetMapOperator.*is not a NetGraph"):
        ng.NetTrain(mapped, {"Input": np.zeros((4, 3, 2), np.float32), "Target": np.zeros((4, 1), np.float32)},
                    activity_regularizers={("m", "lin"): "l2"}, max_epochs=1)


# ============================================================================ constraints
def _keras_norm(w, axis):
    return np.sqrt(np.sum(w ** 2, axis=axis, keepdims=True))


def test_constraints_follow_keras_formulas(rng):
    w = rng.standard_normal((3, 4)).astype(np.float32)
    n = _keras_norm(w, 1)
    cases = [
        ("max_norm", w * np.clip(n, 0, 2.0) / (1e-7 + n)),
        (("max_norm", 1.0), w * np.clip(n, 0, 1.0) / (1e-7 + n)),
        ("non_neg", np.maximum(w, 0)),
        ("unit_norm", w / (1e-7 + n)),
        (("unit_norm", {"axis": 0}), w / (1e-7 + _keras_norm(w, 0))),
        (("min_max_norm", {"min_value": 0.5, "max_value": 1.5, "rate": 0.5}),
         w * (0.5 * np.clip(n, 0.5, 1.5) + 0.5 * n) / (1e-7 + n)),
        ("min_max_norm", w * np.clip(n, 0.0, 1.0) / (1e-7 + n)),
    ]
    for spec, expected in cases:
        np.testing.assert_allclose(parse_constraint(spec, 2, "c")(jnp.asarray(w)), expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ng.SpecificationError, match="not a constraint"):
        parse_constraint("positive", 2, "c")
    with pytest.raises(ng.SpecificationError, match="no option"):
        parse_constraint(("max_norm", {"maximum": 1}), 2, "c")


def test_constraints_hold_after_training():
    x, y = regression()
    result = ng.NetTrain(regressor(), (x, y), constraints={"h": ("max_norm", 0.5), ("o", "Weights"): "non_neg"},
                         max_epochs=3, learning_rate=5e-2)
    w = ng.NetExtract(result.net, ("h", "Weights"))
    assert np.all(np.sqrt((w ** 2).sum(axis=1)) <= 0.5 + 1e-5)
    assert np.all(ng.NetExtract(result.net, ("h", "Biases")) ** 2 <= 0.25 + 1e-5)
    assert np.all(ng.NetExtract(result.net, ("o", "Weights")) >= 0)


# ============================================================================ checkpoints
def test_resume_is_bit_identical(tmp_path):
    xs, ys = ragged(40, longest=9)
    net = ng.NetChain([ng.EmbeddingLayer(8, 6), ng.DropoutLayer(0.2), ng.AggregationLayer("Mean", 0),
                       ng.LinearLayer(2), ng.SoftmaxLayer()], Input=("Varying", ng.Restricted("Integer", 6)))
    data = {"Input": xs, "Target": ys}
    kw = dict(batch_size=8, seed=5, validation_set={"Input": xs[:8], "Target": ys[:8]})
    whole = ng.NetTrain(net, data, max_epochs=4, **kw)
    first = ng.NetTrain(net, data, max_epochs=2, checkpoint=str(tmp_path), **kw)
    assert sorted(os.listdir(tmp_path)) == ["net.npz", "training.npz"]
    np.load(tmp_path / "training.npz", allow_pickle=False)  # no pickled objects inside
    saved = ng.load(tmp_path / "net.npz")
    for k, v in arrays(first.final_net).items():
        np.testing.assert_array_equal(arrays(saved)[k], v)
    resumed = ng.NetTrain(net, data, max_epochs=4, resume=str(tmp_path), **kw)
    for k, v in arrays(whole.final_net).items():
        np.testing.assert_array_equal(arrays(resumed.final_net)[k], v, err_msg=str(k))
    for k, v in arrays(whole.net).items():
        np.testing.assert_array_equal(arrays(resumed.net)[k], v, err_msg=str(k))
    assert resumed.history["loss"] == whole.history["loss"]
    with pytest.raises(ng.SpecificationError, match="another run"):
        ng.NetTrain(net, data, max_epochs=4, resume=str(tmp_path), batch_size=4, seed=5)
    with pytest.raises(ng.SerializationError, match="no checkpoint"):
        ng.NetTrain(net, data, max_epochs=4, resume=str(tmp_path / "missing"), **kw)


def test_damaged_checkpoint_is_a_serialization_error(tmp_path):
    x, y = regression()
    ng.NetTrain(regressor(), (x, y), max_epochs=1, checkpoint=str(tmp_path))
    (tmp_path / "training.npz").write_bytes(b"not a zip")
    with pytest.raises(ng.SerializationError, match="damaged"):
        ng.NetTrain(regressor(), (x, y), max_epochs=2, resume=str(tmp_path))
