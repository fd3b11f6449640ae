"""Regularizers and constraints stored on a net: the ``ng.keras.MultiHeadAttention`` builder
and ``from_keras`` carry Keras's ``kernel_regularizer`` (and the others), they survive
save/load, and NetTrain applies them as the explicit ``regularizers=`` would."""
from __future__ import annotations

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
