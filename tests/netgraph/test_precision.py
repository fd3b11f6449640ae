"""Working precisions: net(x, precision=...), ng.lower(net, precision=...) and
NetTrain(..., precision=...) compute in float16 / bfloat16 / float64 and agree with float32."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from netgraph.errors import SpecificationError

TOLERANCE = {"Real16": 5e-3, "BFloat16": 3e-2, "Real64": 1e-6}
DTYPE = {"Real16": np.float16, "BFloat16": jnp.bfloat16, "Real64": np.float64}


def classifier() -> ng.Layer:
    return ng.NetInitialize(ng.NetChain(
        [ng.ConvolutionLayer(8, 3, interleaving=True), "Ramp", ng.AggregationLayer("Max", 0),
         ng.LinearLayer(8), ng.BatchNormalizationLayer(), "Tanh", ng.LinearLayer(3), ng.SoftmaxLayer()],
        Input=("Varying", 4)), seed=0)


@pytest.mark.parametrize("precision", ["Real16", "BFloat16", "Real64"])
def test_evaluation_in_each_precision_matches_float32(precision):
    net = classifier()
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(3, 6, 4)).astype(np.float32)
    examples = [rng.normal(size=(n, 4)).astype(np.float32) for n in (4, 9)]
    for data in (batch, examples):
        ref = net(data)
        for _ in range(2):  # the second call takes the prepared path
            got = net(data, precision=precision)
            for a, b in zip(got, ref):
                assert a.dtype == DTYPE[precision]
                np.testing.assert_allclose(np.asarray(a, np.float64), b, atol=TOLERANCE[precision])
    assert not jax.config.jax_enable_x64  # Real64 switched 64-bit types on for its call only


def test_real64_computes_in_float64():
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(5), "Tanh", ng.LinearLayer(2)], Input=3), seed=1)
    x = np.array([0.1, -0.7, 2.3])
    w1, b1 = (net.nodes["0"].arrays[k].astype(np.float64) for k in ("Weights", "Biases"))
    w2, b2 = (net.nodes["2"].arrays[k].astype(np.float64) for k in ("Weights", "Biases"))
    expected = w2 @ np.tanh(w1 @ x + b1) + b2  # NumPy, in float64
    got = net(x, precision="Real64")
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.abs(net(x) - expected).max() > 1e-12  # float32 is measurably different


def test_lower_takes_a_precision():
    net = classifier()
    params, x = ng.params_of(net), {"Input": np.ones((5, 4), np.float32)}
    ref = ng.lower(net)(params, x)["Output"]
    for precision in ("Real16", "BFloat16"):
        out = jax.jit(lambda p, v, pr=precision: ng.lower(net, precision=pr)(p, v)["Output"])(params, x)
        assert out.dtype == DTYPE[precision]
        np.testing.assert_allclose(np.asarray(out, np.float32), ref, atol=TOLERANCE[precision])
    with pytest.raises(SpecificationError, match="enable_x64"):
        ng.lower(net, precision="Real64")(params, x)
    with jax.enable_x64(True):
        out = ng.lower(net, precision="Real64")(params, x)["Output"]
    assert out.dtype == np.float64


def test_bad_precision_names_are_errors():
    net = classifier()
    with pytest.raises(SpecificationError, match="precision must be one of"):
        net(np.ones((5, 4), np.float32), precision="float16")
    with pytest.raises(SpecificationError, match="precision must be one of"):
        ng.lower(net, precision="Half")
    with pytest.raises(SpecificationError, match="precision must be one of"):
        ng.NetTrain(net, {"Input": np.ones((2, 5, 4), np.float32), "Target": np.zeros(2, np.int32)},
                    precision=16)


def test_softmax_of_16_bit_data_sums_in_float32():
    net = ng.SoftmaxLayer(Input=("Varying",))
    x = np.random.default_rng(2).normal(size=4096).astype(np.float32)
    ref = net(x)
    for precision in ("Real16", "BFloat16"):
        got = np.asarray(net(x, precision=precision), np.float64)
        np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-2)
        np.testing.assert_allclose(got, ref, rtol=TOLERANCE[precision] * 4, atol=1e-6)
    short = net([x[:3], x[:5]], precision="Real16")  # padded: a varying level
    assert short[0].shape == (3,) and short[0].dtype == np.float16
    np.testing.assert_allclose(np.asarray(short[0], np.float32).sum(), 1.0, rtol=2e-3)


@pytest.mark.parametrize("precision", ["Real16", "BFloat16"])
def test_net_train_in_16_bit_learns(precision):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    net = ng.NetChain([ng.LinearLayer(16), "Tanh", ng.LinearLayer(2), ng.SoftmaxLayer()], Input=4)
    result = ng.NetTrain(net, {"Input": x, "Target": labels}, max_epochs=6, batch_size=16,
                         learning_rate=0.02, precision=precision)
    loss = result.history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert result.history["accuracy"][-1] > 0.9
    trained = result.net
    assert trained.nodes["0"].arrays["Weights"].dtype == np.float32  # the net keeps float32 arrays
    assert trained(x[:4], precision=precision).dtype == DTYPE[precision]


def test_net_train_real64_with_batch_normalization_state():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    net = ng.NetChain([ng.LinearLayer(8), ng.BatchNormalizationLayer(), "Tanh", ng.LinearLayer(1)], Input=4)
    data = {"Input": x, "Target": x[:, :1] * 0.5}
    # SGD: the bias before BatchNormalization gets (almost) no gradient; Adam would blow
    # its rounding noise up to steps of the learning rate
    options = {"max_epochs": 3, "batch_size": 16, "learning_rate": 0.05, "optimizer": "SGD"}
    ref = ng.NetTrain(net, data, **options)
    got = ng.NetTrain(net, data, precision="Real64", **options)
    np.testing.assert_allclose(got.history["loss"], ref.history["loss"], rtol=1e-4)
    moving = got.net.nodes["1"].arrays["MovingMean"]
    np.testing.assert_allclose(moving, ref.net.nodes["1"].arrays["MovingMean"], rtol=1e-4, atol=1e-6)
    assert not jax.config.jax_enable_x64



VARYING = ("Varying", 2)


@pytest.mark.parametrize("make", [
    lambda: ng.SequenceReverseLayer(Input=VARYING),
    lambda: ng.CatenateLayer(0, Input1=VARYING, Input2=VARYING),
    lambda: ng.PaddingLayer([[1, 1], [0, 0]], Input=VARYING),
    lambda: ng.PartLayer(slice(0, -1), Input=VARYING),
    lambda: ng.PoolingLayer(2, function="Mean", interleaving=True, Input=VARYING),
], ids=["reverse", "catenate", "padding", "part", "pooling"])
def test_real64_over_varying_lengths(make):
    """Position indices stay int32 under 64-bit types (strict promotion: no int64 mixing)."""
    net = make()
    rng = np.random.default_rng(0)
    data = {n: [rng.normal(size=(k, 2)).astype(np.float32) for k in (3, 5)] for n in net.input_names}
    want, got = net(data), net(data, precision="Real64")
    for w, g in zip(want, got):
        assert np.asarray(g).dtype == np.float64
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mask", [None, "Causal"])
def test_real64_blocked_attention_keeps_float64_statistics(mask):
    """The online softmax accumulates in float64 under Real64 (float32 for narrower types)."""
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(k, 4)).astype(np.float32) for k in (9, 13)]
    ports = {name: ("Varying", 4) for name in ("Key", "Value", "Query")}
    plain = ng.NetInitialize(ng.AttentionLayer(mask=mask, key_block_size=None, **ports), seed=1)
    blocked = ng.with_params(ng.AttentionLayer(mask=mask, key_block_size=4, **ports), ng.params_of(plain))
    data = {"Key": x, "Value": x, "Query": x}
    for want, got in zip(plain(data, precision="Real64"), blocked(data, precision="Real64")):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
