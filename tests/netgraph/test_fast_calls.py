"""Repeated calls with a seen input signature take the prepared path (same results, value
checks kept, no new compilation), and ``net(x)`` works on traced values inside ``jax.jit``,
``jax.grad`` and ``jax.vmap``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng


@pytest.fixture
def mlp():
    return ng.NetInitialize(ng.NetChain([ng.LinearLayer(4), "Tanh", ng.LinearLayer(2)], Input=3), seed=0)


def _reference(net, x):
    w0, b0 = ng.NetExtract(net, (0, "Weights")), ng.NetExtract(net, (0, "Biases"))
    w2, b2 = ng.NetExtract(net, (2, "Weights")), ng.NetExtract(net, (2, "Biases"))
    return np.tanh(x @ w0.T + b0) @ w2.T + b2


def test_repeated_calls_agree_and_compile_once(mlp, randn):
    x, batch = randn(3), randn(5, 3)
    first = [mlp(x), mlp(batch)]
    again = [mlp(x), mlp(batch), mlp(x.astype(np.float64))]
    np.testing.assert_allclose(again[0], first[0])
    np.testing.assert_allclose(again[1], first[1])
    np.testing.assert_allclose(again[1], _reference(mlp, batch), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again[2], first[0], rtol=1e-6)
    stats = ng.compile_stats(mlp)
    assert stats["calls"] == 5 and stats["compilations"] == 2  # one example, a batch of 5


def test_value_checks_stay_on_the_repeated_path():
    emb = ng.NetInitialize(ng.EmbeddingLayer(2, 5, Input=3), seed=0)
    good = np.array([1, 2, 3])
    emb(good)
    emb(good)
    with pytest.raises(ng.InputDataError, match=r"integers in \[0, 5\); found 7"):
        emb(np.array([1, 2, 7]))
    with pytest.raises(ng.InputDataError, match="found -1"):
        emb(np.array([-1, 2, 3]))


def test_several_ports_and_outputs_on_the_repeated_path(randn):
    net = ng.NetInitialize(ng.NetGraph({"a": ng.LinearLayer(2), "b": ng.LinearLayer(2)},
                                       [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b")], A=3, B=4), seed=0)
    data = {"A": randn(3), "B": randn(4)}
    first = net(data)
    second = net(data)
    assert set(second) == {"Output1", "Output2"}
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_net_inside_jit_grad_and_vmap(mlp, randn):
    x = randn(5, 3)
    np.testing.assert_allclose(jax.jit(lambda v: mlp(v))(x), _reference(mlp, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(mlp)(x), _reference(mlp, x), rtol=1e-5, atol=1e-6)
    grad = jax.grad(lambda v: jnp.sum(mlp(v)))(x[0])
    eps = 1e-3
    numeric = [(np.sum(_reference(mlp, x[0] + eps * e)) - np.sum(_reference(mlp, x[0] - eps * e))) / (2 * eps)
               for e in np.eye(3, dtype=np.float32)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-2, atol=1e-3)


def test_traced_call_checks_what_it_can(mlp):
    with pytest.raises(ng.InputDataError, match="wrong dimensions"):
        jax.jit(lambda v: mlp(v))(np.ones(4, np.float32))
    with pytest.raises(ng.InputDataError, match="needs seed"):
        jax.jit(lambda v: mlp(v, train=True))(np.ones(3, np.float32))


def test_a_net_with_a_decoder_decodes_every_repeated_call(randn):
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(3), ng.SoftmaxLayer()], Input=4,
                                       Output=ng.NetDecoder("Class", ["a", "b", "c"])), seed=0)
    x = randn(4)
    first = net(x)
    assert first in ("a", "b", "c") and net(x) == first and net(x) == first
    probabilities = net(x, "Probabilities")
    assert set(probabilities) == {"a", "b", "c"} and net(x) == first
