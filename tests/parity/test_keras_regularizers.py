"""Regularizers against Keras: activity regularizers train as in ``fit``; rules stored on a
net (the ``ng.keras.MultiHeadAttention`` builder and ``from_keras`` carry Keras's
``kernel_regularizer`` and the others) survive save/load and train as the explicit
``regularizers=`` would. The parity conftest guarantees Keras on the JAX backend: no skip."""
from __future__ import annotations

import jax
import keras
import numpy as np
import pytest

import netgraph as ng


def _linears(net):
    return {path: layer for path, layer in ng.iter_layers(net) if isinstance(layer, ng.LinearLayer)}


def test_builder_stores_rules_on_each_projection():
    mha = ng.keras.MultiHeadAttention(2, 3, kernel_regularizer=("l2", 1e-3), bias_regularizer="l1",
                                      kernel_constraint="max_norm", activity_regularizer=("l1", 0.01),
                                      query_dim=4)
    linears = _linears(mha)
    assert len(linears) == 4
    for layer in linears.values():
        assert layer.regularizers == {"Weights": ("l2", 1e-3), "Biases": "l1"}
        assert layer.constraints == {"Weights": "max_norm"}
    assert mha.children()["output"].activity_regularizer == ("l1", 0.01)


def test_rules_survive_save_and_load(tmp_path):
    layer = ng.LinearLayer(3, Input=2).with_regularizers({"Weights": ("l1_l2", 0.1, 0.2)}) \
        .with_constraints({"Weights": ("min_max_norm", {"min_value": 0.5, "max_value": 1.0})}) \
        .with_activity_regularizer("l2")
    ng.save(ng.NetChain({"h": layer, "o": ng.LinearLayer(1)}), tmp_path / "net.npz")
    back = ng.NetExtract(ng.load(tmp_path / "net.npz"), "h")
    assert back.regularizers == {"Weights": ("l1_l2", 0.1, 0.2)}
    assert back.constraints == {"Weights": ("min_max_norm", {"min_value": 0.5, "max_value": 1.0})}
    assert back.activity_regularizer == "l2"


def test_bad_rules_are_refused_at_once():
    with pytest.raises(ng.SpecificationError, match='no array "Kernel"'):
        ng.LinearLayer(3).with_regularizers({"Kernel": "l2"})
    with pytest.raises(ng.SpecificationError, match="not a regularizer|regularizer"):
        ng.LinearLayer(3).with_regularizers({"Weights": "l3"})
    with pytest.raises(ng.SpecificationError, match="constraint"):
        ng.LinearLayer(3).with_constraints({"Weights": "positive"})


def test_stored_rules_train_as_explicit_ones(rng):
    x = rng.standard_normal((64, 3)).astype(np.float32)
    data = {"Input": x, "Target": x[:, :1] - x[:, 1:2]}

    def train(net, **rules):
        return ng.NetTrain(net, data, max_epochs=2, batch_size=16, seed=0, **rules).net

    plain = ng.NetChain({"h": ng.LinearLayer(4), "act": "Tanh", "o": ng.LinearLayer(1)}, Input=3)
    stored = ng.NetReplacePart(plain, {"h": ng.LinearLayer(4).with_regularizers({"Weights": ("l2", 0.1)})
                                       .with_constraints({"Weights": "non_neg"})})
    explicit = train(plain, regularizers={("h", "Weights"): ("l2", 0.1)},
                     constraints={("h", "Weights"): "non_neg"})
    np.testing.assert_array_equal(ng.NetExtract(train(stored), ("h", "Weights")),
                                  ng.NetExtract(explicit, ("h", "Weights")))
    assert (ng.NetExtract(explicit, ("h", "Weights")) >= 0).all()


def test_from_keras_carries_regularizers_and_constraints(keras_call):
    layer = keras.layers.MultiHeadAttention(
        2, 3, kernel_regularizer=keras.regularizers.L2(1e-3), bias_regularizer=keras.regularizers.L1L2(0.1, 0.2),
        activity_regularizer=keras.regularizers.L1(0.05), kernel_constraint=keras.constraints.MaxNorm(2.0),
        bias_constraint=keras.constraints.NonNeg())
    q = np.ones((1, 4, 5), np.float32)
    keras_call(layer, q, q)
    net = ng.keras.from_keras(layer)
    for linear in _linears(net).values():
        assert linear.regularizers["Weights"][0] == "l2"
        np.testing.assert_allclose(linear.regularizers["Weights"][1], 1e-3, rtol=1e-6)
        assert linear.regularizers["Biases"][0] == "l1_l2"
        assert linear.constraints == {"Weights": ("max_norm", {"max_value": 2.0}), "Biases": "non_neg"}
    assert net.children()["output"].activity_regularizer[0] == "l1"


@pytest.mark.filterwarnings(  # Keras's get_weights on JAX arrays (as in tests/parity)
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_activity_regularizers_match_keras_fit():
    """Keras's activity_regularizer (layer.py: ``regularizer(output) / batch_size`` added to
    the loss) on a Dense output and on its tanh: two epochs of SGD with batches of 32 and a
    last one of 16 give Keras's weights."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 4)).astype(np.float32)
    y = np.argmax(x[:, :3], axis=1).astype(np.int32)
    net = ng.NetInitialize(ng.NetChain({"h": ng.LinearLayer(8), "act": "Tanh", "o": ng.LinearLayer(3),
                                        "p": ng.SoftmaxLayer()}, Input=4), seed=0)
    result = ng.NetTrain(net, (x, y), optimizer="SGD", learning_rate=0.1, batch_size=32, max_epochs=2,
                         shuffle=False, activity_regularizers={"h": ("l2", 1e-2), "act": ("l1", 1e-2)})
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(8, activity_regularizer=keras.regularizers.L2(1e-2)),
        keras.layers.Activation("tanh", activity_regularizer=keras.regularizers.L1(1e-2)),
        keras.layers.Dense(3, activation="softmax")])
    model.set_weights([ng.NetExtract(net, (k, a)).T if a == "Weights" else ng.NetExtract(net, (k, a))
                       for k in ("h", "o") for a in ("Weights", "Biases")])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):  # Keras's own math
        model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    kernels = model.get_weights()
    for i, k in ((0, "h"), (2, "o")):
        np.testing.assert_allclose(ng.NetExtract(result.net, (k, "Weights")).T, kernels[i], atol=1e-5)
    assert result.history["activity_regularization"] == result.history["regularization"]
    assert result.history["activity_regularization"][0] > 0
