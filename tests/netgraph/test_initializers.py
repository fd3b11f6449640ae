"""Initializers: every Keras initializer name and object as netgraph's own spec, their
distributions against the NumPy formulas (fixed seeds: mean, std, bounds, orthogonality),
NetInitialize's "Random", "Orthogonal" and "Identity" methods, NetArrayLayer's explicit
initializer, saving, and the Keras builders (``kernel_initializer=``, ``from_keras``)."""
from __future__ import annotations

import math
import os

import jax
import numpy as np
import pytest

import netgraph as ng
from netgraph.initialize import initializer_spec

OUT, IN = 200, 300  # LinearLayer Weights are out x in: fan_in 300, fan_out 200
FAN_AVG = (OUT + IN) / 2
TRUNCATED = 0.87962566103423978  # std of a standard normal cut to [-2, 2]


def _weights(init, seed=0, shape=(OUT, IN)):
    layer = ng.LinearLayer(shape[0], Input=shape[1:]).with_initializers({"Weights": init})
    return ng.NetExtract(ng.NetInitialize(layer, seed), "Weights").astype(np.float64)


def _truncated(std):
    """(expected std, bound) of Keras's truncated normal whose untruncated std is ``std``."""
    return std * TRUNCATED, 2 * std


@pytest.mark.parametrize("name, expected_std, bound", [
    ("glorot_uniform", math.sqrt(2 / (OUT + IN)), math.sqrt(6 / (OUT + IN))),
    ("he_uniform", math.sqrt(2 / IN), math.sqrt(6 / IN)),
    ("lecun_uniform", math.sqrt(1 / IN), math.sqrt(3 / IN)),
    ("random_uniform", 0.1 / math.sqrt(12), 0.05),
    # Keras's variance-scaling normals are truncated and rescaled to the wanted std
    ("glorot_normal", math.sqrt(1 / FAN_AVG), 2 * math.sqrt(1 / FAN_AVG) / TRUNCATED),
    ("he_normal", math.sqrt(2 / IN), 2 * math.sqrt(2 / IN) / TRUNCATED),
    ("lecun_normal", math.sqrt(1 / IN), 2 * math.sqrt(1 / IN) / TRUNCATED),
    ("truncated_normal", *_truncated(0.05)),
    ("random_normal", 0.05, None),
    ("HeNormal", math.sqrt(2 / IN), 2 * math.sqrt(2 / IN) / TRUNCATED),   # class names too
])
def test_keras_names_follow_their_formulas(name, expected_std, bound):
    w = _weights(name)
    assert abs(w.mean()) < 4 * expected_std / math.sqrt(w.size)
    assert w.std() == pytest.approx(expected_std, rel=0.02)
    if bound is not None:
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.9 * bound  # the whole range is used


def test_constant_specs_and_their_keras_names():
    np.testing.assert_array_equal(_weights("zeros", shape=(3, 2)), np.zeros((3, 2)))
    np.testing.assert_array_equal(_weights("ones", shape=(3, 2)), np.ones((3, 2)))
    np.testing.assert_array_equal(_weights(("Constant", 0.5), shape=(3, 2)), np.full((3, 2), 0.5))
    np.testing.assert_array_equal(_weights("identity", shape=(3, 4)), np.eye(3, 4))
    assert initializer_spec("variance_scaling") == ("VarianceScaling", 1.0, "fan_in", "truncated_normal")
    assert initializer_spec("glorot_uniform") == ("VarianceScaling", 1.0, "fan_avg", "uniform")


@pytest.mark.parametrize("shape", [(OUT, IN), (IN, OUT // 2), (6, 4, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = _weights(("Orthogonal", 2.0), shape=shape).reshape(shape[0], -1) / 2.0
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] == small else w.T @ w
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)
    np.testing.assert_allclose(_weights("orthogonal", shape=(5, 5)) @ _weights("orthogonal", shape=(5, 5)).T,
                               np.eye(5), atol=1e-5)


def test_variance_scaling_modes_and_explicit_specs():
    w = _weights(("VarianceScaling", 3.0, "fan_out", "untruncated_normal"))
    assert w.std() == pytest.approx(math.sqrt(3.0 / OUT), rel=0.02)
    w = _weights(("TruncatedNormal", 1.0, 0.02))
    assert w.mean() == pytest.approx(1.0, abs=1e-3)
    assert w.std() == pytest.approx(0.02 * TRUNCATED, rel=0.02) and np.abs(w - 1).max() <= 0.04
    w = _weights(("RandomUniform", 2.0, 3.0))
    assert 2.0 <= w.min() and w.max() <= 3.0 and w.mean() == pytest.approx(2.5, abs=0.01)


def test_a_keras_object_and_a_serialised_one_become_our_own_spec():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    spec = ("TruncatedNormal", 0.0, 0.02)
    assert initializer_spec(keras.initializers.TruncatedNormal(stddev=0.02)) == spec
    assert initializer_spec(keras.initializers.serialize(keras.initializers.TruncatedNormal(stddev=0.02))) == spec
    assert initializer_spec(keras.initializers.HeNormal(seed=3)) == initializer_spec("he_normal")
    assert initializer_spec(keras.initializers.Orthogonal(gain=0.5)) == ("Orthogonal", 0.5)
    assert initializer_spec(keras.initializers.Constant(2.0)) == ("Constant", 2.0)
    layer = ng.LinearLayer(4).with_initializers({"Weights": keras.initializers.GlorotNormal()})
    assert layer.initializers["Weights"] == ("VarianceScaling", 1.0, "fan_avg", "truncated_normal")
    with pytest.raises(ng.SpecificationError, match="input_axes"):
        initializer_spec(keras.initializers.GlorotUniform(input_axes=(0,), output_axes=(1,)))


def test_specs_save_with_the_net(tmp_path):
    net = ng.LinearLayer(3, Input=4).with_initializers({"Weights": "he_normal", "Biases": ("Constant", 0.1)})
    ng.save(net, tmp_path / "init.npz")
    back = ng.load(tmp_path / "init.npz")
    assert back.initializers == net.initializers
    np.testing.assert_array_equal(ng.NetExtract(ng.NetInitialize(back, 5), "Weights"),
                                  ng.NetExtract(ng.NetInitialize(net, 5), "Weights"))
    np.testing.assert_array_equal(ng.NetExtract(ng.NetInitialize(back), "Biases"), np.full(3, 0.1, np.float32))


def test_bad_specs_are_clear_errors():
    for bad in ("Bogus", ("RandomNormal", 0.0), ("RandomNormal", 0.0, -1.0), ("Kaiming", "Cauchy"),
                ("VarianceScaling", 1.0, "fan_sideways", "uniform"), ("Constant", "a"), {"a": 1}, 3):
        with pytest.raises(ng.SpecificationError, match="unknown initializer"):
            ng.LinearLayer(3).with_initializers({"Weights": bad})
    with pytest.raises(ng.SpecificationError, match='no array "Kernel"'):
        ng.LinearLayer(3).with_initializers({"Kernel": "zeros"})
    with pytest.raises(ng.SpecificationError, match="dict keyed by array name"):
        ng.LinearLayer(3).with_initializers("zeros")


# ------------------------------------------------------------------ NetInitialize methods
def _initialised(method, seed=0, **options):
    net = ng.NetChain([ng.LinearLayer(OUT, Input=IN), ng.ReshapeLayer((4, 50)), ng.ConvolutionLayer(4, 3)])
    net = ng.NetInitialize(net, seed, method=method, **options)
    return (ng.NetExtract(net, ("0", "Weights")), ng.NetExtract(net, ("0", "Biases")),
            ng.NetExtract(net, ("2", "Weights")))


@pytest.mark.parametrize("distribution", ["Normal", "Uniform"])
def test_random_method(distribution):
    w, b, _ = _initialised("Random", distribution=distribution)
    assert w.std() == pytest.approx(1.0, rel=0.02) and abs(w.mean()) < 0.01
    np.testing.assert_array_equal(b, np.zeros(OUT))
    w, _, _ = _initialised("Random", distribution=distribution, std=0.1)
    assert w.std() == pytest.approx(0.1, rel=0.02)
    if distribution == "Uniform":
        assert np.abs(w).max() <= 0.1 * math.sqrt(3) + 1e-6


def test_orthogonal_method():
    w, b, kernel = _initialised("Orthogonal")
    np.testing.assert_allclose(w @ w.T, np.eye(OUT), atol=1e-5)   # 200 x 300: rows
    flat = kernel.reshape(4, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(4), atol=1e-5)
    np.testing.assert_array_equal(b, np.zeros(OUT))


def test_identity_method():
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(6), ng.ReshapeLayer((2, 3)),
                                        ng.ConvolutionLayer(2, 3, padding="Same")], Input=6),
                           method="Identity", std=0.0)
    x = np.arange(6, dtype=np.float32)
    np.testing.assert_allclose(net(x), x.reshape(2, 3), atol=1e-6)   # both layers pass x on
    w, _, kernel = _initialised("Identity")
    noise = w - np.eye(OUT, IN)
    assert noise.std() == pytest.approx(0.01, rel=0.02)
    centre = kernel[:, :, 1] - np.eye(4)
    assert np.abs(centre).max() < 0.06 and np.abs(kernel[:, :, 0]).max() < 0.06


def test_methods_keep_per_array_choices_and_defaults():
    layer = ng.LinearLayer(3, Input=4).with_initializers({"Weights": "zeros"})
    net = ng.NetInitialize(layer, method="Orthogonal")
    np.testing.assert_array_equal(ng.NetExtract(net, "Weights"), np.zeros((3, 4)))
    same = ng.NetInitialize(ng.LinearLayer(3, Input=4), 7)
    again = ng.NetInitialize(ng.LinearLayer(3, Input=4), 7, method="Kaiming", distribution="Normal")
    np.testing.assert_array_equal(ng.NetExtract(same, "Weights"), ng.NetExtract(again, "Weights"))


def test_bad_method_options():
    net = ng.LinearLayer(3, Input=4)
    with pytest.raises(ng.SpecificationError, match="unknown method"):
        ng.NetInitialize(net, method="Glorot")
    with pytest.raises(ng.SpecificationError, match="std"):
        ng.NetInitialize(net, method="Kaiming", std=0.1)
    with pytest.raises(ng.SpecificationError, match="std"):
        ng.NetInitialize(net, method="Random", std=-1.0)
    with pytest.raises(ng.SpecificationError, match="no distribution"):
        ng.NetInitialize(net, method="Orthogonal", distribution="Uniform")


# ------------------------------------------------------------------ NetArrayLayer, Keras builders
def test_net_array_layer_with_an_explicit_initializer(tmp_path):
    bias = ng.NetInitialize(ng.NetArrayLayer(initializer="zeros", Output=5))
    np.testing.assert_array_equal(bias(), np.zeros(5))
    assert bias.options.initializer == "Zeros"
    drawn = ng.NetInitialize(ng.NetArrayLayer(initializer=("RandomNormal", 3.0, 0.5), Output=(400,)))
    assert drawn().mean() == pytest.approx(3.0, abs=0.1) and drawn().std() == pytest.approx(0.5, rel=0.1)
    ng.save(drawn, tmp_path / "array.npz")
    assert ng.load(tmp_path / "array.npz").options == drawn.options
    with pytest.raises(ng.SpecificationError, match="initializer"):
        ng.NetArrayLayer(initializer="bogus")


def test_keras_builders_take_keras_initializers():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    net = ng.keras.MultiHeadAttention(2, 4, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                      bias_initializer="ones", query_dim=8)
    inits = {path: layer.initializers for path, layer in ng.iter_layers(net) if layer.initializers}
    assert inits and all(i == {"Weights": ("TruncatedNormal", 0.0, 0.02), "Biases": "Ones"}
                         for i in inits.values())
    theirs = keras.layers.MultiHeadAttention(2, 4, kernel_initializer="he_uniform")
    with jax.numpy_rank_promotion("allow"):
        theirs.build((1, 3, 8), (1, 3, 8))
    converted = ng.keras.from_keras(theirs)
    assert {layer.initializers.get("Weights") for _, layer in ng.iter_layers(converted) if layer.initializers} \
        == {initializer_spec("he_uniform")}


def test_a_bad_keras_config_is_a_clear_error():
    with pytest.raises(ng.SpecificationError, match="unknown initializer"):
        initializer_spec({"class_name": "VarianceScaling", "config": {"mode": "fan_sideways"}})
    with pytest.raises(ng.SpecificationError, match="does not convert"):
        initializer_spec({"class_name": "TruncatedNormal", "config": {"stddev": "wide"}})
    with pytest.raises(ng.SpecificationError, match="without a netgraph counterpart"):
        initializer_spec({"class_name": "STFT", "config": {}})
