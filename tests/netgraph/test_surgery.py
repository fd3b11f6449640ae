"""NetTake, NetDrop and NetFlatten on chains, graphs and nested nets.

Every cut net is checked three ways: its structure (layers, port names), its shapes (the
inferred types of the original are kept, declared on the new graph ports) and its numbers
(a taken sub-net computes the original's intermediate values, obtained here by running the
original's layers one at a time through ``ng.lower``; a flattened net computes exactly the
original's outputs).
"""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from netgraph.surgery import NetDrop, NetFlatten, NetTake

L = ng.LinearLayer


# ------------------------------------------------------------------------ helpers
def run(net, inputs):
    """``net`` on one example through the lowered function (a dict of outputs)."""
    return ng.lower(net)(ng.params_of(net), inputs)


def run_layer(net, path, inputs):
    """One layer of ``net`` (by NetExtract path), evaluated on its own."""
    return run(ng.NetExtract(net, path), inputs)


def close(actual, expected, atol=1e-5):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=1e-5)


def same_arrays(a, b):
    """Every array of ``a`` equals the array of ``b`` (params pytrees by path)."""
    pa, pb = ng.params_of(a), ng.params_of(b)

    def walk(x, y, path):
        if isinstance(x, dict):
            assert set(x) == set(y), path
            for k in x:
                walk(x[k], y[k], path + (k,))
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=str(path))

    walk(pa, pb, ())


@pytest.fixture
def chain():
    """Input {4} -> 5 -> Tanh -> 3 -> Tanh -> 2, initialised."""
    net = ng.NetChain([L(5), "Tanh", L(3), "Tanh", L(2)], Input=4)
    return ng.NetInitialize(net, seed=1)


@pytest.fixture
def graph():
    """The README graph: b's output size is inferred backwards from "plus"."""
    g = ng.NetGraph(
        {"a": L(8), "b": L(ng.Automatic), "plus": "Plus", "out": L(2)},
        [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "plus", "out")],
        A=4, B=5)
    return ng.NetInitialize(g, seed=0)


def chain_values(net, x):
    """The values after each layer of a chain, layer by layer."""
    values = []
    for name in net.nodes:
        x = run_layer(net, name, {"Input": x})["Output"]
        values.append(x)
    return values


# ------------------------------------------------------------------ NetTake, chains
@pytest.mark.parametrize("spec, kept", [
    (2, [0, 1, 2]), (0, [0]), (-1, [0, 1, 2, 3, 4]), (-2, [0, 1, 2, 3]),
    ((1, 3), [1, 2, 3]), ((2, 2), [2]), ((-3, -1), [2, 3, 4]), (("1", "3"), [1, 2, 3]),
])
def test_take_chain_keeps_the_inclusive_range(chain, randn, spec, kept):
    taken = NetTake(chain, spec)
    assert type(taken) is ng.NetChain
    assert list(taken.nodes) == [str(i) for i in range(len(kept))]  # unnamed: renumbered
    for i, k in enumerate(kept):
        assert taken.nodes[str(i)] is chain.nodes[str(k)]  # the very layers, arrays included
    x = randn(4)
    values = chain_values(chain, x)
    start_value = x if kept[0] == 0 else values[kept[0] - 1]
    close(run(taken, {"Input": start_value})["Output"], values[kept[-1]])
    # shapes: the ports are declared as inferred in the original
    assert taken.input_ports == {"Input": ng.NetExtract(chain, str(kept[0])).input_ports["Input"]}
    assert taken.output_ports == {"Output": ng.NetExtract(chain, str(kept[-1])).output_ports["Output"]}


def test_take_named_chain_keeps_names_and_batches(randn):
    net = ng.NetInitialize(ng.NetChain({"enc": L(6), "act": "Ramp", "dec": L(3)}, Input=2), seed=0)
    taken = NetTake(net, ("act", "dec"))
    assert list(taken.nodes) == ["act", "dec"]
    assert taken.input_ports == {"Input": (6,)}
    x = randn(7, 2)
    hidden = NetTake(net, "enc")(x)
    close(taken(hidden), net(x))


def test_take_keeps_sizes_inferred_from_removed_layers():
    # the first layer's size is Automatic, fixed only by the chain's declared output
    net = ng.NetChain([L(ng.Automatic), "Tanh"], Input=3, Output=6)
    taken = NetTake(net, 0)
    assert taken.output_ports == {"Output": (6,)}
    assert ng.NetExtract(ng.NetInitialize(taken), (0, "Weights")).shape == (6, 3)


def test_take_chain_of_sequences(randn):
    net = ng.NetInitialize(ng.NetChain(
        [ng.NetMapOperator(L(4)), ng.SequenceLastLayer(), L(2)], Input=("Varying", 3)), seed=0)
    taken = NetTake(net, 1)
    assert taken.input_ports == {"Input": ("Varying", 3)}
    assert taken.output_ports == {"Output": (4,)}
    x = randn(5, 3)
    close(taken(x), run_layer(net, 1, {"Input": run_layer(net, 0, {"Input": x})["Output"]})["Output"])
    rest = NetTake(net, (-1, -1))
    close(rest(taken(x)), net(x))


# ------------------------------------------------------------------ NetTake, graphs
def test_take_graph_up_to_a_layer(graph, randn):
    taken = NetTake(graph, "plus")
    assert type(taken) is ng.NetGraph
    assert list(taken.nodes) == ["a", "b", "plus"]
    assert taken.input_names == ("A", "B") and taken.output_names == ("Output",)
    assert taken.output_ports == {"Output": (8,)}
    a, b = randn(4), randn(5)
    expected = run_layer(graph, "a", {"Input": a})["Output"] + run_layer(graph, "b", {"Input": b})["Output"]
    close(taken({"A": a, "B": b}), expected)
    np.testing.assert_array_equal(ng.NetExtract(taken, ("b", "Weights")), ng.NetExtract(graph, ("b", "Weights")))


def test_take_graph_keeps_backward_inferred_sizes_uninitialized():
    g = ng.NetGraph({"a": L(8), "b": L(ng.Automatic), "plus": "Plus"},
                    [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "plus")], A=4, B=5)
    only_b = NetTake(g, "b")
    assert only_b.input_ports == {"B": (5,)} and only_b.output_ports == {"Output": (8,)}
    assert ng.NetExtract(ng.NetInitialize(only_b), ("b", "Weights")).shape == (8, 5)


def test_take_graph_between_start_and_end(graph, randn):
    taken = NetTake(graph, ("a", "out"))
    assert list(taken.nodes) == ["a", "plus", "out"]
    # plus.Input2 was fed by the left-out "b": a new graph input named after the port
    assert taken.input_names == ("A", "Input2")
    assert taken.input_ports == {"A": (4,), "Input2": (8,)}
    a, hb = randn(4), randn(8)
    ha = run_layer(graph, "a", {"Input": a})["Output"]
    close(taken({"A": a, "Input2": hb}), run_layer(graph, "out", {"Input": ha + hb})["Output"])


def test_take_graph_from_a_graph_input(graph):
    taken = NetTake(graph, (ng.NetPort("B"), "plus"))
    assert list(taken.nodes) == ["b", "plus"]
    assert taken.input_names == ("B", "Input1")


def test_take_graph_named_output_ports_and_unions(randn):
    g = ng.NetInitialize(ng.NetGraph(
        {"x": L(3), "y": L(2), "z": L(4)},
        [(ng.NetPort("In"), "x", "y", ng.NetPort("Small")), ("x", "z", ng.NetPort("Big"))], In=5), seed=3)
    assert g.output_names == ("Small", "Big")
    by_port = NetTake(g, ng.NetPort("Big"))
    assert list(by_port.nodes) == ["x", "z"] and by_port.output_names == ("Big",)
    both = NetTake(g, [ng.NetPort("Big"), "x", ng.NetPort("y", "Output")])
    assert both.output_names == ("Big", "Output1", "Output2")  # two layer "Output"s
    assert both.output_ports == {"Big": (4,), "Output1": (3,), "Output2": (2,)}
    v = randn(5)
    out, ref = both({"In": v}), g({"In": v})
    close(out["Big"], ref["Big"])
    close(out["Output1"], run_layer(g, "x", {"Input": v})["Output"])
    close(out["Output2"], ref["Small"])
    assert NetTake(g, ng.All).output_names == ("Small", "Big")


def test_take_one_output_of_a_multi_output_layer(randn):
    scoring = ng.NetGraph({"k": L(6, Biases=None), "dot": ng.DotLayer()},
                          [(ng.NetPort("Input"), "k"), (["k", ng.NetPort("Query")], "dot")])
    att = ng.AttentionLayer(scoring, attention_weights=True)
    g = ng.NetInitialize(ng.NetGraph(
        {"q": L(6), "att": att, "after": L(2)},
        [(ng.NetPort("Q"), "q", ng.NetPort("att", "Query")), (ng.NetPort("att", "Output"), "after")],
        Q=3, Key=("Varying", 4), Value=("Varying", 5)), seed=0)
    taken = NetTake(g, ng.NetPort("att", "AttentionWeights"))
    assert taken.output_names == ("AttentionWeights",)
    assert taken.output_ports == {"AttentionWeights": ("Varying",)}
    # att's other output was consumed by the left-out "after": muted, declared as inferred
    assert ng.NetExtract(taken, "att").port_specs["Output"].to_user() == (5,)
    data = {"Q": randn(3), "Key": randn(7, 4), "Value": randn(7, 5)}
    weights = taken(data)
    assert weights.shape == (7,)
    q = run_layer(g, "q", {"Input": data["Q"]})["Output"]
    ref = run_layer(g, "att", {"Query": q, "Key": data["Key"], "Value": data["Value"]})
    close(weights, ref["AttentionWeights"])
    both = NetTake(g, "att")
    assert both.output_names == ("Output", "AttentionWeights")


# --------------------------------------------------------------------- NetTake errors
@pytest.mark.parametrize("spec, error, words", [
    ("nope", ng.PartSpecError, ["no layer 'nope'", "'a', 'b', 'plus', 'out'"]),
    (9, ng.PartSpecError, ["no layer 9"]),
    (ng.NetPort("plus", "Input1"), ng.PartSpecError, ['"Input1" is an input port of layer "plus"']),
    (ng.NetPort("plus", "Foo"), ng.PartSpecError, ['"Foo" is not a port of layer "plus"']),
    (ng.NetPort("Nope"), ng.PartSpecError, ["no port 'Nope'"]),
    (ng.NetPort("A"), ng.SpecificationError, ["NetPort('A') is an input"]),
    (("out", "a"), ng.SpecificationError, ['end layer "a" does not depend on the start']),
    (("a", "b"), ng.SpecificationError, ['end layer "b" does not depend']),
    ((ng.NetPort("a", "Output"), "out"), ng.PartSpecError, ['"Output" is an output port of layer "a"']),
    ((1, 2, 3), ng.SpecificationError, ["not a valid specification"]),
    ([], ng.SpecificationError, ["empty list"]),
])
def test_take_errors(graph, spec, error, words):
    with pytest.raises(error) as info:
        NetTake(graph, spec)
    assert isinstance(info.value, ng.NetGraphError)
    for word in words:
        assert word in str(info.value)


def test_take_needs_a_net():
    with pytest.raises(ng.SpecificationError, match="NetGraph or a NetChain; found LinearLayer"):
        NetTake(L(3), 0)


# ----------------------------------------------------------------------- NetDrop
@pytest.mark.parametrize("spec, kept", [
    (2, [2, 3, 4]), (-2, [0, 1, 2]), (0, [0, 1, 2, 3, 4]), ((0, 1), [2, 3, 4]),
    ((3, -1), [0, 1, 2]), ((1, 1), [0, 2, 3, 4]), ("3", [0, 1, 2, 4]),
])
def test_drop_chain(chain, randn, spec, kept):
    dropped = NetDrop(chain, spec)
    assert type(dropped) is ng.NetChain
    assert [dropped.nodes[str(i)] for i in range(len(kept))] == [chain.nodes[str(k)] for k in kept]
    x = randn(4) if kept[0] == 0 else chain_values(chain, randn(4))[kept[0] - 1]
    ref = x
    for k in kept:
        ref = run_layer(chain, str(k), {"Input": ref})["Output"]
    close(dropped(x), ref)


def test_drop_interior_of_a_chain_joins_the_gap(randn):
    net = ng.NetInitialize(ng.NetChain({"in": L(4), "mid": L(4), "act": "Tanh", "out": L(2)}, Input=3), seed=0)
    dropped = NetDrop(net, ("mid", "act"))
    assert list(dropped.nodes) == ["in", "out"]
    assert dropped.input_ports == {"Input": (3,)} and dropped.output_ports == {"Output": (2,)}
    x = randn(3)
    close(dropped(x), run_layer(net, "out", {"Input": run_layer(net, "in", {"Input": x})["Output"]})["Output"])


def test_drop_interior_needs_equal_shapes(chain):
    with pytest.raises(ng.ShapeMismatchError) as info:
        NetDrop(chain, (1, 2))
    message = str(info.value)
    for word in ['"1" (ElementwiseLayer[Tanh]) takes {5}', '"2" (LinearLayer[3]) gives {3}',
                 "cannot be joined"]:
        assert word in message


@pytest.mark.parametrize("spec, error, words", [
    (6, ng.PartSpecError, ["cannot drop 6 layers", "5 layers"]),
    (-6, ng.PartSpecError, ["cannot drop 6 layers"]),
    (5, ng.SpecificationError, ["every layer"]),
    ((3, 1), ng.SpecificationError, ["range ('3', '1') is empty"]),
    ((1, 9), ng.PartSpecError, ["no layer 9"]),
    ([1, 2], ng.SpecificationError, ["not a valid specification for a NetChain"]),
])
def test_drop_chain_errors(chain, spec, error, words):
    with pytest.raises(error) as info:
        NetDrop(chain, spec)
    for word in words:
        assert word in str(info.value)


def test_drop_graph_layers(graph, randn):
    no_out = NetDrop(graph, "out")
    assert type(no_out) is ng.NetGraph
    assert list(no_out.nodes) == ["a", "b", "plus"]
    assert no_out.output_names == ("Output",) and no_out.output_ports == {"Output": (8,)}
    a, b = randn(4), randn(5)
    close(no_out({"A": a, "B": b}), run(NetTake(graph, "plus"), {"A": a, "B": b})["Output"])

    no_a = NetDrop(graph, ["a"])
    assert no_a.input_names == ("B", "Input1")  # plus.Input1 was fed by "a"
    assert no_a.input_ports == {"B": (5,), "Input1": (8,)}
    h = randn(8)
    hb = run_layer(graph, "b", {"Input": b})["Output"]
    close(no_a({"B": b, "Input1": h}), run_layer(graph, "out", {"Input": h + hb})["Output"])
    assert NetDrop(graph, [ng.NetPort("a", "Output"), -1]).output_names == ("Output",)


def test_drop_graph_names_new_ports_without_clashes(randn):
    g = ng.NetInitialize(ng.NetGraph(
        {"p": L(3), "q": L(3), "u": L(2), "v": L(2), "w": L(2)},
        [(ng.NetPort("Input"), "p", "u"), ("q", "v"), ("q", "w")], Input=4), seed=0)
    # u's and v's inputs lose their producers p and q; w shares q's value with v
    dropped = NetDrop(g, ["p", "q"])
    assert list(dropped.nodes) == ["u", "v", "w"]
    assert dropped.input_names == ("Input1", "Input2")
    assert dropped.input_ports == {"Input1": (3,), "Input2": (3,)}
    x, y = randn(3), randn(3)
    out = dropped({"Input1": x, "Input2": y})
    close(out["Output1"], run_layer(g, "u", {"Input": x})["Output"])
    close(out["Output2"], run_layer(g, "v", {"Input": y})["Output"])
    close(out["Output3"], run_layer(g, "w", {"Input": y})["Output"])


@pytest.mark.parametrize("spec, error, words", [
    (1, ng.SpecificationError, ["ambiguous", "NetDrop(graph, [1])"]),
    ("zz", ng.PartSpecError, ["no layer 'zz'"]),
    (["a", "b", "plus", "out"], ng.SpecificationError, ["every layer"]),
    (("a", "b"), ng.SpecificationError, ["not a layer"]),
])
def test_drop_graph_errors(graph, spec, error, words):
    with pytest.raises(error) as info:
        NetDrop(graph, spec)
    for word in words:
        assert word in str(info.value)


# -------------------------------------------------------------------- NetFlatten
def leaf_ports(net, path=()):
    """{path: {port: (shape, element)}} of every non-graph layer, path joined with "/"."""
    found = {}
    for name, layer in net.children().items() if isinstance(net, ng.NetGraph) else ():
        p = path + (name,)
        if isinstance(layer, ng.NetGraph):
            found.update(leaf_ports(layer, p))
        else:
            found["/".join(p)] = p
    return found


def port_types_by_leaf(top, paths):
    inference = top.inference
    return {
        flat: {port: (str(inference.port(path, port)))
               for port in ng.NetExtract(top, path).input_names + ng.NetExtract(top, path).output_names}
        for flat, path in paths.items()
    }


@pytest.fixture
def nested():
    enc = ng.NetGraph({"proj": L(6), "act": "Tanh", "skip": L(6), "sum": "Plus"},
                      [(ng.NetPort("X"), "proj", "act"), (ng.NetPort("X"), "skip"),
                       (["act", "skip"], "sum", ng.NetPort("Code"))])
    inner = ng.NetChain([L(ng.Automatic), "Ramp"], Output=5)  # its size comes from Output=5
    dec = ng.NetChain({"mid": inner, "out": L(2)})
    net = ng.NetGraph({"enc": enc, "dec": dec, "side": L(3)},
                      [(ng.NetPort("In"), ng.NetPort("enc", "X")), ("enc", "dec"),
                       ("enc", "side", ng.NetPort("Side"))], In=4)
    return ng.NetInitialize(net, seed=2)


def test_flatten_inlines_every_level(nested, randn):
    flat = NetFlatten(nested)
    assert type(flat) is ng.NetGraph
    assert list(flat.nodes) == ["enc/proj", "enc/act", "enc/skip", "enc/sum",
                                "dec/mid/0", "dec/mid/1", "dec/out", "side"]
    assert not any(isinstance(layer, ng.NetGraph) for layer in flat.nodes.values())
    assert flat.input_names == nested.input_names and flat.output_names == nested.output_names
    assert flat.input_ports == nested.input_ports and flat.output_ports == nested.output_ports
    # arrays move with their layers
    for flat_name, path in leaf_ports(nested).items():
        assert flat.nodes[flat_name].arrays.keys() == ng.NetExtract(nested, path).arrays.keys()
        for arr in flat.nodes[flat_name].arrays:
            np.testing.assert_array_equal(ng.NetExtract(flat, (flat_name, arr)),
                                          ng.NetExtract(nested, path + (arr,)))
    np.testing.assert_array_equal(ng.NetExtract(flat, ("enc/proj", "Weights")),
                                  ng.NetExtract(nested, ("enc", "proj", "Weights")))
    # every layer infers the same port types (the inner chain's Output=5 moved onto its layer)
    paths = leaf_ports(nested)
    assert port_types_by_leaf(flat, {k: (k,) for k in paths}) == port_types_by_leaf(nested, paths)
    # the same outputs, exactly
    x = randn(3, 4)
    out, ref = flat({"In": x}), nested({"In": x})
    for port in ref:
        np.testing.assert_array_equal(out[port], ref[port])


def test_flatten_keeps_inner_declarations_uninitialized():
    inner = ng.NetChain([L(ng.Automatic), "Ramp"], Output=5)
    net = ng.NetChain([L(3), inner, L(2)], Input=4)
    flat = NetFlatten(net)
    assert type(flat) is ng.NetChain and list(flat.nodes) == ["0", "1/0", "1/1", "2"]
    assert ng.NetExtract(flat, "1/0").output_ports == {"Output": (5,)}
    assert ng.NetExtract(ng.NetInitialize(flat), ("1/0", "Weights")).shape == (5, 3)


def test_flatten_to_a_depth(nested, randn):
    one = NetFlatten(nested, 1)
    assert list(one.nodes) == ["enc/proj", "enc/act", "enc/skip", "enc/sum", "dec/mid", "dec/out", "side"]
    assert isinstance(one.nodes["dec/mid"], ng.NetChain)
    assert NetFlatten(nested, 0) is nested
    assert list(NetFlatten(one).nodes) == list(NetFlatten(nested).nodes)
    x = randn(4)
    close(one({"In": x})["Output"], nested({"In": x})["Output"])


def test_flatten_linear_graph_becomes_a_chain(randn):
    g = ng.NetInitialize(ng.NetGraph({"first": ng.NetChain([L(3), "Tanh"]), "last": L(2)},
                                     [("first", "last")], Input=4), seed=0)
    flat = NetFlatten(g)
    assert type(flat) is ng.NetChain
    assert list(flat.nodes) == ["first/0", "first/1", "last"]
    x = randn(4)
    np.testing.assert_array_equal(flat(x), g(x))
    # renamed graph ports are kept, so that result stays a graph
    named = ng.NetGraph({"first": ng.NetChain([L(3), "Tanh"]), "last": L(2)},
                        [(ng.NetPort("X"), "first", "last")], X=4)
    assert type(NetFlatten(named)) is ng.NetGraph


def test_flatten_does_not_enter_map_or_attention(randn):
    scoring = ng.NetGraph({"k": L(6, Biases=None), "dot": ng.DotLayer()},
                          [(ng.NetPort("Input"), "k"), (["k", ng.NetPort("Query")], "dot")])
    enc = ng.NetChain([ng.NetMapOperator(ng.NetChain([L(6), "Tanh"]))])
    net = ng.NetInitialize(ng.NetGraph(
        {"enc": enc, "att": ng.AttentionLayer(scoring)},
        [(ng.NetPort("X"), "enc", [ng.NetPort("att", "Key"), ng.NetPort("att", "Value")]),
         (ng.NetPort("Q"), ng.NetPort("att", "Query"))],
        X=("Varying", 3), Q=6), seed=0)
    flat = NetFlatten(net)
    assert list(flat.nodes) == ["enc/0", "att"]
    assert flat.nodes["enc/0"] is net.nodes["enc"].nodes["0"]  # the map's net is flat already
    assert isinstance(flat.nodes["enc/0"].net, ng.NetChain)
    assert flat.nodes["att"] is net.nodes["att"]  # so is the attention layer's scoring net
    data = {"X": randn(5, 3), "Q": randn(6)}
    np.testing.assert_array_equal(flat(data), net(data))


def test_flatten_muted_and_pass_through_ports(randn):
    two = ng.NetGraph({"l": L(3), "r": L(2)},
                      [(ng.NetPort("In"), "l", ng.NetPort("A")), (ng.NetPort("In"), "r", ng.NetPort("B"))])
    g = ng.NetInitialize(ng.NetGraph({"two": two, "after": L(4)},
                                     [(ng.NetPort("two", "A"), "after"), (ng.NetPort("two", "B"), None)],
                                     In=5), seed=0)
    flat = NetFlatten(g)
    assert flat.output_names == ("Output",) and flat.muted == {ng.graph.PortRef("two/r", "Output")}
    x = randn(5)
    np.testing.assert_array_equal(flat(x), g(x))


def test_flatten_errors_and_plain_layers():
    layer = L(3)
    assert NetFlatten(layer) is layer
    with pytest.raises(ng.SpecificationError, match="depth"):
        NetFlatten(ng.NetChain([L(3)]), -1)
    clash = ng.NetGraph({"a": ng.NetChain({"b": L(3)}), "a/b": L(3)}, [("a", "a/b")], Input=2)
    with pytest.raises(ng.SpecificationError, match='"a/b"'):
        NetFlatten(clash)


def test_flatten_moves_inner_port_declarations(randn):
    # X is declared both by the inner graph and by its layer "p"; S only by the inner graph
    enc = ng.NetGraph({"p": L(3, Input=4), "q": ng.NetMapOperator(L(2))},
                      [(ng.NetPort("X"), "p"), (ng.NetPort("S"), "q")], X=4, S=("Varying", 5))
    net = ng.NetInitialize(ng.NetGraph({"enc": enc, "post": L(2)},
                                       [(ng.NetPort("enc", "Output1"), "post")]), seed=0)
    flat = NetFlatten(net)
    assert flat.nodes["enc/p"].port_specs["Input"].to_user() == (4,)
    assert flat.nodes["enc/q"].port_specs["Input"].to_user() == ("Varying", 5)
    assert flat.input_ports == net.input_ports and flat.output_ports == net.output_ports
    data = {"X": randn(4), "S": randn(6, 5)}
    out, ref = flat(data), net(data)
    for port in ref:
        np.testing.assert_array_equal(out[port], ref[port])


def test_cut_keeps_index_element_types(randn):
    g = ng.NetInitialize(ng.NetGraph(
        {"emb": ng.EmbeddingLayer(4), "last": ng.SequenceLastLayer(), "lin": L(2)},
        [(ng.NetPort("Tokens"), "emb", "last", "lin")],
        Tokens=("Varying", ng.Restricted("Integer", 10))), seed=0)
    head = NetDrop(g, ["lin"])
    assert str(head.port_types()["Tokens"]) == str(g.port_types()["Tokens"])
    assert head.output_ports == {"Output": (4,)}
    tokens = np.array([3, 1, 9])
    close(run(NetDrop(g, ["emb", "last"]), {"Input": head(tokens)})["Output"], g(tokens))
    with pytest.raises(ng.InputDataError):
        head(np.array([3, 10]))  # still restricted to 0..9
