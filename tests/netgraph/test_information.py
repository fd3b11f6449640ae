"""Information(net, prop) and the text summary (layers/display.py).

The nets are the README's graph, the nested-graph example and an attention layer with a
custom scoring NetGraph; every expected count is worked out by hand in the comments.
"""
from __future__ import annotations

import re

import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

import netgraph as ng
from netgraph.layers.tree import iter_layers
from netgraph.summary import summary
from netgraph.information import DEFAULT_PROPERTIES, PROPERTIES, Information


# ------------------------------------------------------------------------------ nets
def readme_graph(**sizes):
    sizes = {"A": 4, "B": 5, **sizes}
    return ng.NetGraph(
        {"a": ng.LinearLayer(8), "b": ng.LinearLayer(ng.Automatic), "plus": ng.ThreadingLayer("Plus"),
         "out": ng.LinearLayer(2)},
        [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "plus", "out")],
        **sizes)


def nested_model():
    """examples/nested_graph.py's model."""
    encoder = ng.NetGraph(
        {"proj": ng.NetMapOperator(ng.LinearLayer(16)),
         "gate": ng.NetMapOperator(ng.NetChain([ng.LinearLayer(16), ng.ElementwiseLayer("LogisticSigmoid")])),
         "mix": ng.ThreadingLayer("Times")},
        [(["proj", "gate"], "mix")],
        Input=("Varying", 6))
    return ng.NetGraph(
        {"encoder": encoder, "last": ng.SequenceLastLayer(), "context": ng.LinearLayer(16),
         "combine": ng.CatenateLayer(),
         "head": ng.NetChain([ng.LinearLayer(32), "Ramp", ng.LinearLayer(4), ng.SoftmaxLayer()])},
        [(ng.NetPort("Sequence"), "encoder", "last"),
         (ng.NetPort("Context"), "context"),
         (["last", "context"], "combine", "head", ng.NetPort("Scores"))],
        Context=3)


def scoring_net(hidden=10):
    """examples/attention_custom_scoring.py's additive scoring net."""
    return ng.NetGraph(
        {"key": ng.LinearLayer(hidden, Biases=None), "query": ng.LinearLayer(hidden, Biases=None),
         "tanh": ng.ThreadingLayer(lambda a, b: jnp.tanh(a + b)),
         "score": ng.LinearLayer((), Biases=None)},
        [(ng.NetPort("Input"), "key"), (ng.NetPort("Query"), "query"),
         (["key", "query"], "tanh", "score")])


def attention_model(scoring=None):
    return ng.NetGraph(
        {"attention": ng.AttentionLayer(scoring or scoring_net(), attention_weights=True)},
        [(ng.NetPort("Key"), ng.NetPort("attention", "Key")),
         (ng.NetPort("Value"), ng.NetPort("attention", "Value")),
         (ng.NetPort("Query"), ng.NetPort("attention", "Query")),
         (ng.NetPort("attention", "Output"), ng.NetPort("Output")),
         (ng.NetPort("attention", "AttentionWeights"), ng.NetPort("Weights"))],
        Key=("Varying", 5), Value=("Varying", 4), Query=("Varying", 3))


# ------------------------------------------------------------------------ properties
def test_default_properties_of_the_readme_graph():
    # a: 8x4+8 = 40, b: 8x5+8 = 48, out: 2x8+2 = 18 -> 106 elements in 6 arrays
    assert Information(readme_graph()) == {
        "LayersCount": 4, "ArraysCount": 6, "SharedArraysCount": 0, "InputPortNames": ["A", "B"],
        "OutputPortNames": ["Output"], "ArraysTotalElementCount": 106, "ArraysTotalSize": "424 bytes",
    }
    assert tuple(Information(readme_graph())) == DEFAULT_PROPERTIES


def test_layers_count_leaf_layers_through_containers_and_operators():
    net = nested_model()
    layers = Information(net, "Layers")
    assert list(layers) == [
        ("encoder", "proj", "Net"), ("encoder", "gate", "Net", "0"), ("encoder", "gate", "Net", "1"),
        ("encoder", "mix"), ("last",), ("context",), ("combine",),
        ("head", "0"), ("head", "1"), ("head", "2"), ("head", "3"),
    ]
    assert layers[("encoder", "mix")] is net.nodes["encoder"].nodes["mix"]
    assert Information(net, "LayersCount") == 11
    assert Information(net, "LayersList") == list(layers.values())
    assert Information(net, "LayerTypeCounts") == {
        "LinearLayer": 5, "ElementwiseLayer": 2, "CatenateLayer": 1, "SequenceLastLayer": 1,
        "SoftmaxLayer": 1, "ThreadingLayer": 1,
    }


def test_attention_layer_and_its_scoring_net_layers_count():
    layers = Information(attention_model(), "Layers")
    assert list(layers) == [("attention",), ("attention", "ScoringNet", "key"),
                            ("attention", "ScoringNet", "query"), ("attention", "ScoringNet", "tanh"),
                            ("attention", "ScoringNet", "score")]
    bilinear = ng.AttentionLayer("Bilinear", Key=("Varying", 5), Value=("Varying", 4), Query=3)
    assert list(Information(bilinear, "Layers")) == [(), ("ScoringNet",)]
    assert Information(bilinear, "ArraysDimensions") == {("ScoringNet", "Weights"): (3, 5)}


def test_a_single_layer_is_its_own_only_layer():
    layer = ng.LinearLayer(3, Input=4)
    assert Information(layer, "Layers") == {(): layer}
    assert Information(layer, "ArraysDimensions") == {("Weights",): (3, 4), ("Biases",): (3,)}
    assert Information(layer) == {"LayersCount": 1, "ArraysCount": 2, "SharedArraysCount": 0,
                                  "InputPortNames": ["Input"], "OutputPortNames": ["Output"],
                                  "ArraysTotalElementCount": 15, "ArraysTotalSize": "60 bytes"}


def test_arrays_before_and_after_initialisation():
    net = nested_model()
    arrays = Information(net, "Arrays")
    assert all(a is None for a in arrays.values())
    dims = Information(net, "ArraysDimensions")
    assert list(arrays) == list(dims) == Information(net, "ArraysPositionList")
    assert dims[("encoder", "proj", "Net", "Weights")] == (16, 6)
    assert dims[("encoder", "gate", "Net", "0", "Biases")] == (16,)
    assert dims[("head", "0", "Weights")] == (32, 32)  # catenated 16 + 16
    assert Information(net, "ArraysCount") == 10
    # 16*6+16 twice, 16*3+16, 32*32+32, 4*32+4
    assert Information(net, "ArraysTotalElementCount") == 112 + 112 + 64 + 1056 + 132 == 1476
    assert Information(net, "ArraysTotalByteCount") == 4 * 1476

    init = ng.NetInitialize(net, seed=0)
    arrays = Information(init, "Arrays")
    for position, array in arrays.items():
        assert isinstance(array, np.ndarray) and array.shape == dims[position]
        np.testing.assert_array_equal(array, ng.NetExtract(init, position))
    assert Information(init, "ArraysElementCounts")[("context", "Weights")] == 48
    assert Information(init, "ArraysByteCounts")[("context", "Weights")] == 192
    assert len(Information(init, "ArraysList")) == 10


def test_unknown_array_sizes_are_automatic():
    chain = ng.NetChain([ng.LinearLayer(3), "Tanh"])  # the input size is never given
    weights = Information(chain, "ArraysDimensions")[("0", "Weights")]
    assert weights[0] == 3 and weights[1] is ng.Automatic
    assert Information(chain, "ArraysTotalElementCount") is ng.Automatic
    assert Information(chain, "ArraysTotalByteCount") is ng.Automatic
    assert Information(chain, "ArraysElementCounts")[("0", "Biases")] == 3


def test_ports():
    net = nested_model()
    assert Information(net, "InputPorts") == net.input_ports == {"Sequence": ("Varying", 6), "Context": (3,)}
    assert Information(net, "OutputPorts") == {"Scores": (4,)}
    assert Information(net, "InputPortNames") == ["Sequence", "Context"]
    assert Information(net, "OutputPortNames") == ["Scores"]


def test_properties_and_unknown_property():
    names = Information(readme_graph(), "Properties")
    assert names == sorted(PROPERTIES)
    for required in ("Layers", "LayersCount", "LayersList", "LayerTypeCounts", "Arrays", "ArraysCount",
                     "ArraysDimensions", "ArraysTotalElementCount", "ArraysTotalByteCount",
                     "InputPorts", "OutputPorts", "InputPortNames", "OutputPortNames", "LayersGraph",
                     "SummaryGraphic", "TopologyHash", "Properties"):
        assert required in names
    with pytest.raises(ng.SpecificationError) as err:
        Information(readme_graph(), "LayerCount")
    message = str(err.value)
    assert "'LayerCount' is not a known property" in message
    assert "LayersCount" in message and "TopologyHash" in message


def test_summary_graphic_is_svg_text():
    import xml.etree.ElementTree as ET

    svg = Information(readme_graph(), "SummaryGraphic")
    assert ET.fromstring(svg).tag.endswith("svg")


# ----------------------------------------------------------------------- layers graph
def test_layers_graph_flows_through_nested_graphs_and_maps():
    g = Information(nested_model(), "LayersGraph")
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    seq, ctx, scores = ng.NetPort("Sequence"), ng.NetPort("Context"), ng.NetPort("Scores")
    assert g.nodes[seq]["kind"] == "input" and g.nodes[scores]["kind"] == "output"
    layers = [n for n, d in g.nodes(data=True) if d["kind"] == "layer"]
    assert layers == list(Information(nested_model(), "Layers"))
    assert set(g.successors(seq)) == {("encoder", "proj", "Net"), ("encoder", "gate", "Net", "0")}
    assert g.edges[("encoder", "gate", "Net", "1"), ("encoder", "mix")]["ports"] == [("Output", "Input2")]
    assert g.has_edge(("encoder", "mix"), ("last",))
    assert set(g.predecessors(("combine",))) == {("last",), ("context",)}
    assert list(g.successors(ctx)) == [("context",)]
    assert list(g.predecessors(scores)) == [("head", "3")]
    assert g.number_of_edges() == 14


def test_layers_graph_routes_keys_and_queries_into_the_scoring_net():
    g = Information(attention_model(), "LayersGraph")
    att, sc = ("attention",), ("attention", "ScoringNet")
    assert nx.is_directed_acyclic_graph(g)
    assert set(g.successors(ng.NetPort("Key"))) == {att, sc + ("key",)}
    assert set(g.successors(ng.NetPort("Query"))) == {att, sc + ("query",)}
    assert list(g.successors(ng.NetPort("Value"))) == [att]
    assert g.edges[sc + ("score",), att]["ports"] == [("Output", "ScoringNet/Output")]
    assert g.edges[att, ng.NetPort("Weights")]["ports"] == [("AttentionWeights", "Weights")]


def test_layers_graph_keeps_parallel_connections():
    net = ng.NetGraph({"a": ng.LinearLayer(3), "sq": ng.ThreadingLayer("Times")},
                      [("a", ng.NetPort("sq", "Input1")), ("a", ng.NetPort("sq", "Input2"))], Input=2)
    g = Information(net, "LayersGraph")
    assert g.edges[("a",), ("sq",)]["ports"] == [("Output", "Input1"), ("Output", "Input2")]


# ----------------------------------------------------------------------- topology hash
def test_topology_hash_is_stable_and_ignores_arrays():
    h = Information(readme_graph(), "TopologyHash")
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert Information(readme_graph(), "TopologyHash") == h
    assert Information(ng.NetInitialize(readme_graph(), seed=1), "TopologyHash") == h
    assert Information(ng.NetInitialize(readme_graph(), seed=2), "TopologyHash") == h


def test_topology_hash_changes_with_the_structure():
    base = Information(readme_graph(), "TopologyHash")
    other_size = Information(readme_graph(A=6), "TopologyHash")  # a port shape
    option = ng.NetGraph(
        {"a": ng.LinearLayer(8), "b": ng.LinearLayer(ng.Automatic), "plus": ng.ThreadingLayer("Times"),
         "out": ng.LinearLayer(2)},
        [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "plus", "out")], A=4, B=5)
    swapped = ng.NetGraph(  # the same layers, the inputs of "plus" in the other order
        {"a": ng.LinearLayer(8), "b": ng.LinearLayer(ng.Automatic), "plus": ng.ThreadingLayer("Plus"),
         "out": ng.LinearLayer(2)},
        [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["b", "a"], "plus", "out")], A=4, B=5)
    no_bias = ng.NetGraph(
        {"a": ng.LinearLayer(8, Biases=None), "b": ng.LinearLayer(ng.Automatic),
         "plus": ng.ThreadingLayer("Plus"), "out": ng.LinearLayer(2)},
        [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "plus", "out")], A=4, B=5)
    hashes = [base, other_size, Information(option, "TopologyHash"),
              Information(swapped, "TopologyHash"), Information(no_bias, "TopologyHash")]
    assert len(set(hashes)) == len(hashes)


def test_topology_hash_of_nets_holding_python_functions():
    h = Information(attention_model(), "TopologyHash")
    assert Information(attention_model(), "TopologyHash") == h  # a new but identical lambda
    other = ng.NetGraph(
        {"key": ng.LinearLayer(10, Biases=None), "query": ng.LinearLayer(10, Biases=None),
         "tanh": ng.ThreadingLayer(lambda a, b: jnp.tanh(a * b)),
         "score": ng.LinearLayer((), Biases=None)},
        [(ng.NetPort("Input"), "key"), (ng.NetPort("Query"), "query"),
         (["key", "query"], "tanh", "score")])
    assert Information(attention_model(other), "TopologyHash") != h
    assert Information(attention_model(scoring_net(hidden=12)), "TopologyHash") != h


# --------------------------------------------------------------------------- summary
def test_summary_of_the_readme_graph():
    net = readme_graph()
    text = summary(net)
    assert repr(net) == text
    assert text.splitlines() == [
        "NetGraph[4 layers]  A {4}, B {5}  ->  Output {2}",
        "  path  type                    inputs              outputs     params",
        "  a     LinearLayer[8]          Input {4}           Output {8}      40*",
        "  b     LinearLayer[Automatic]  Input {5}           Output {8}      48*",
        "  plus  ThreadingLayer[Plus]    Input1, Input2 {8}  Output {8}       0",
        "  out   LinearLayer[2]          Input {8}           Output {2}      18*",
        "  4 layers, 6 arrays (6 uninitialized), 106 parameters, 424 bytes",
        "  * arrays not initialized yet (NetInitialize)",
    ]
    init = summary(ng.NetInitialize(net, seed=0))
    assert "*" not in init and init.splitlines()[-1] == "  4 layers, 6 arrays, 106 parameters, 424 bytes"


def test_summary_indents_nested_nets_and_aligns_columns():
    lines = summary(nested_model()).splitlines()
    rows = {line.split()[0]: line for line in lines[2:-2]}
    expected = [path for path, _ in iter_layers(nested_model())]
    assert list(rows) == ["/".join(p) for p in expected]
    assert rows["encoder/gate/Net/0"].startswith("        encoder/gate/Net/0")  # depth 3
    assert "NetMapOperator[NetChain[2 layers]]" in rows["encoder/gate"]
    assert 'Input {"Varying", 6}' in rows["encoder/proj"] and "Input {6}" in rows["encoder/proj/Net"]
    assert rows["head"].rstrip().endswith("1,188*")
    type_column = {line.index(line.split()[1]) for line in lines[1:-2]}
    assert len(type_column) == 1  # every type starts in the same column
    assert lines[-2] == "  11 layers, 10 arrays (10 uninitialized), 1,476 parameters, 5,904 bytes (5.9 kB)"


def test_summary_shows_scoring_nets_element_types_and_unknowns():
    text = summary(attention_model())
    assert "    attention/ScoringNet/tanh" in text and "ThreadingLayer[<lambda>]" in text
    assert "Output scalar" in text
    emb = ng.NetChain([ng.EmbeddingLayer(8, 10), ng.SequenceLastLayer()],
                      Input=("Varying", ng.Restricted("Integer", 10)))
    assert 'Input {"Varying"} of Integer in [0, 10)' in summary(emb)
    unknown = summary(ng.NetChain([ng.LinearLayer(3), "Tanh"]))
    assert "Input array of unknown rank" in unknown and "? parameters, ? bytes" in unknown


def test_summary_stays_readable_for_wide_and_long_nets():
    many = ng.NetGraph({"cat": ng.CatenateLayer(), **{f"l{i}": ng.LinearLayer(4 + i % 2) for i in range(12)}},
                       [([f"l{i}" for i in range(12)], "cat")], Input=3)
    row = next(line for line in summary(many).splitlines() if line.lstrip().startswith("cat "))
    assert "more" in row and len(row) < 140
    chain = ng.NetChain([ng.LinearLayer(8) if i % 2 == 0 else "Tanh" for i in range(100)], Input=8)
    lines = summary(chain).splitlines()
    assert len(lines) == 1 + 1 + 100 + 2
    assert max(map(len, lines[:-2])) < 100
    assert lines[-2].startswith("  100 layers, 100 arrays")
