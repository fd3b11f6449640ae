"""Reading any port of a net: ``net(data, NetPort(...))`` - inner outputs, inputs of layers,
nested layers, several ports at once, batches and ragged lists, and the errors."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import netgraph as ng


def attention_net(mute: bool = True) -> ng.NetGraph:
    connections = [(ng.NetPort("Query"), "q"), (ng.NetPort("Key"), "k"),
                   ("q", ng.NetPort("att", "Query")), ("k", ng.NetPort("att", "Key")),
                   ("k", ng.NetPort("att", "Value")),
                   (ng.NetPort("att", "Output"), "pool", ng.NetPort("Output"))]
    if mute:
        connections.append((ng.NetPort("att", "AttentionWeights"), None))
    return ng.NetInitialize(ng.NetGraph(
        {"q": ng.LinearLayer(4), "k": ng.NetMapOperator(ng.LinearLayer(4)),
         "att": ng.AttentionLayer("Dot", attention_weights=True),
         "pool": ng.AggregationLayer("Mean", 0)},
        connections, Query=3, Key=("Varying", 2)), seed=0)


def nested_net() -> ng.NetGraph:
    encoder = ng.NetChain({"proj": ng.LinearLayer(5), "act": ng.ElementwiseLayer("Tanh")})
    return ng.NetInitialize(ng.NetGraph(
        {"encoder": encoder, "head": ng.LinearLayer(2)},
        [(ng.NetPort("Input"), "encoder", "head")], Input=3), seed=0)


RNG = np.random.default_rng(0)
QUERY = RNG.standard_normal(3).astype(np.float32)
KEYS = [RNG.standard_normal((n, 2)).astype(np.float32) for n in (4, 1, 6)]


def test_an_inner_output_equals_the_same_port_made_an_output():
    net, exposed = attention_net(), attention_net(mute=False)
    assert "AttentionWeights" not in net.output_names
    weights = net({"Query": QUERY, "Key": KEYS[0]}, ng.NetPort("att", "AttentionWeights"))
    expected = exposed({"Query": QUERY, "Key": KEYS[0]})["AttentionWeights"]
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert weights.shape == (4,) and np.isclose(weights.sum(), 1, atol=1e-6)
    np.testing.assert_allclose(net({"Query": QUERY, "Key": KEYS[0]}),      # the net is unchanged
                               exposed({"Query": QUERY, "Key": KEYS[0]})["Output"], rtol=1e-6)


def test_ragged_lists_give_each_example_its_own_length():
    net = attention_net()
    port = ng.NetPort("att", "AttentionWeights")
    ragged = net({"Query": [QUERY] * 3, "Key": KEYS}, port)
    assert [w.shape for w in ragged] == [(4,), (1,), (6,)]
    for w, k in zip(ragged, KEYS):  # padded == exact
        np.testing.assert_allclose(w, net({"Query": QUERY, "Key": k}, port), rtol=1e-5, atol=1e-6)
    keys = net({"Query": [QUERY] * 3, "Key": KEYS}, ng.NetPort("k", "Output"))
    assert [k.shape for k in keys] == [(4, 4), (1, 4), (6, 4)]


def test_nested_layers_and_input_ports():
    net = nested_net()
    x = RNG.standard_normal((7, 3)).astype(np.float32)
    w, b = ng.NetExtract(net, ("encoder", "proj", "Weights")), ng.NetExtract(net, ("encoder", "proj", "Biases"))
    proj = net(x, ng.NetPort(("encoder", "proj"), "Output"))
    np.testing.assert_allclose(proj, x @ w.T + b, rtol=1e-5, atol=1e-6)            # a batch
    np.testing.assert_allclose(net(x, ng.NetPort(("encoder", "act"), "Input")), proj, rtol=1e-6)
    np.testing.assert_allclose(net(x, ng.NetPort(("encoder", 0), "Input")), x)       # the net input
    np.testing.assert_allclose(net(x, ng.NetPort("head", "Input")), np.tanh(x @ w.T + b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net(x, ng.NetPort("encoder", "Output")), np.tanh(x @ w.T + b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net(x, ng.NetPort("Output")), net(x), rtol=1e-6)
    np.testing.assert_allclose(net(x[0], ng.NetPort(("encoder", "proj"), "Output")), proj[0], rtol=1e-5)


def test_a_list_of_ports_gives_a_dict_keyed_by_port():
    net = nested_net()
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    ports = [ng.NetPort(("encoder", "proj"), "Output"), ng.NetPort("head", "Output"), ng.NetPort("Input")]
    values = net(x, ports)
    assert list(values) == ports
    np.testing.assert_allclose(values[ports[1]], net(x), rtol=1e-6)
    np.testing.assert_allclose(values[ports[2]], x)
    listed = net(list(x), ports[:2])
    assert isinstance(listed, list) and list(listed[0]) == ports[:2]
    np.testing.assert_allclose(listed[1][ports[0]], values[ports[0]][1], rtol=1e-5)
    assert list(net(x, ports[:1])) == ports[:1]


def test_ports_are_read_by_the_compiled_evaluation_and_cached():
    net = nested_net()
    port = ng.NetPort(("encoder", "proj"), "Output")
    x = np.ones((4, 3), np.float32)
    before = ng.compile_stats(net)["compilations"]
    net(x, port)
    net(x + 1, port)
    assert ng.compile_stats(net)["compilations"] == before + 1


def test_ports_that_do_not_exist_list_those_that_do():
    net = nested_net()
    with pytest.raises(ng.PartSpecError, match="has no layer 'decoder'") as err:
        net(np.ones(3, np.float32), ng.NetPort("decoder", "Output"))
    assert "'encoder', 'head'" in str(err.value)
    with pytest.raises(ng.PartSpecError, match="has no port 'Weights'") as err:
        net(np.ones(3, np.float32), ng.NetPort(("encoder", "proj"), "Weights"))
    assert "inputs ['Input'], outputs ['Output']" in str(err.value)
    with pytest.raises(ng.PartSpecError, match="has no port 'Hidden'"):
        net(np.ones(3, np.float32), ng.NetPort("Hidden"))
    with pytest.raises(ng.PartSpecError, match="per element or per pair"):
        attention_net()({"Query": QUERY, "Key": KEYS[0]}, ng.NetPort(("k", "Net"), "Output"))
    with pytest.raises(ng.SpecificationError, match="neither an output port"):
        net(np.ones(3, np.float32), "Hidden")
    with pytest.raises(ng.InputDataError, match="needs NumPy data"):
        jax.jit(lambda v: net(v, ng.NetPort("head", "Input")))(np.ones(3, np.float32))
