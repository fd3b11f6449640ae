"""The structure every pass builds on: the graph IR and its walker, the sub-net traversal,
the layer registry, ``lengths=`` keyed by port, and the one installed package."""
from __future__ import annotations

import importlib
import importlib.metadata

import numpy as np
import pytest

import netgraph as ng
from netgraph.ir import GraphIR, PortRef, walk
from netgraph.layers.base import Layer
from netgraph.layers.tree import iter_layers, leaf_layers, map_layers


def _diamond():
    return ng.NetGraph({"a": ng.LinearLayer(3), "b": "Tanh", "c": "Ramp", "plus": "Plus", "d": 2},
                       [("a", ["b", "c"]), (["b", "c"], "plus", "d")], Input=4)


# --------------------------------------------------------------------------- the IR
def test_ir_from_an_edge_table_completes_dangling_ports_and_orders():
    nodes = {"x": ng.LinearLayer(2), "y": ng.LinearLayer(2), "z": ng.ThreadingLayer("Plus")}
    edges = {PortRef("z", "Input1"): PortRef("x", "Output"),
             PortRef("z", "Input2"): PortRef("y", "Output")}
    ir = GraphIR.from_edges(nodes, edges)
    assert ir.inputs == ("Input",)           # x and y's inputs merge into one graph input
    assert ir.outputs == ("Output",)
    assert ir.source(None, "Output") == PortRef("z", "Output")
    assert ir.order.index("z") == 2
    assert ir.upstream(["z"]) == {"x", "y", "z"}
    assert ir.downstream(["x"]) == {"x", "z"}
    net = ng.NetGraph.from_ir(ir, {"Input": 5})
    assert net.input_ports == {"Input": (5,)} and net.output_ports == {"Output": (2,)}


def test_ir_checks_the_table():
    nodes = {"x": ng.LinearLayer(2)}
    with pytest.raises(ng.NetConnectionError, match="unknown layer 'nope'"):
        GraphIR.from_edges(nodes, {PortRef("x", "Input"): PortRef("nope", "Output")})
    with pytest.raises(ng.NetConnectionError, match="port 'Bad' of layer 'x'"):
        GraphIR.from_edges(nodes, {PortRef("x", "Bad"): PortRef(None, "Input")})
    with pytest.raises(ng.CycleError, match="'x' -> 'x'"):
        GraphIR.from_edges(nodes, {PortRef("x", "Input"): PortRef("x", "Output")})


def test_walk_visits_in_topological_order_and_can_restrict_to_a_subset():
    ir = _diamond().ir
    seen = []

    def visit(name, layer, fed):
        seen.append(name)
        return {p: (name, tuple(sorted(fed.values()))) for p in layer.output_names}

    out = walk(ir, visit, {"Input": "in"})
    assert seen.index("a") < seen.index("b") < seen.index("plus") < seen.index("d")
    assert out["Output"][0] == "d"
    seen.clear()
    part = walk(ir, visit, {"Input": "in"}, nodes=ir.upstream(["b"]), outputs=[PortRef("b", "Output")])
    assert seen == ["a", "b"] and part[PortRef("b", "Output")][0] == "b"


def test_walk_positional_feeds_the_same_values_as_a_list_in_input_port_order():
    ir = _diamond().ir
    by_port, by_position = {}, {}

    def keyed(name, layer, fed):
        by_port[name] = [fed[p] for p in layer.input_names]
        return {p: f"{name}.{p}" for p in layer.output_names}

    def positional(name, layer, fed):
        by_position[name] = fed
        return {p: f"{name}.{p}" for p in layer.output_names}

    assert walk(ir, keyed, {"Input": "in"}) == walk(ir, positional, {"Input": "in"}, positional=True)
    assert by_position == by_port
    assert by_position["plus"] == ["b.Output", "c.Output"]  # Input1, Input2

def test_rebuilt_graph_keeps_its_wiring_without_reparsing():
    net = ng.NetInitialize(_diamond(), seed=0)
    replaced = ng.NetReplacePart(net, {"b": ng.ElementwiseLayer("Sin")})
    assert replaced.edges == net.edges and replaced.order == net.order
    x = np.ones(4, np.float32)
    w, bias = ng.NetExtract(net, ("a", "Weights")), ng.NetExtract(net, ("a", "Biases"))
    h = w @ x + bias
    inner = np.sin(h) + np.maximum(h, 0)
    expected = ng.NetExtract(net, ("d", "Weights")) @ inner + ng.NetExtract(net, ("d", "Biases"))
    np.testing.assert_allclose(replaced(x), expected, rtol=1e-5)


# ----------------------------------------------------------------- sub-net traversal
def test_iter_layers_and_leaf_layers():
    net = ng.NetChain([ng.NetMapOperator(ng.LinearLayer(2)), ng.SequenceLastLayer()],
                      Input=("Varying", 3))
    paths = [p for p, _ in iter_layers(net, include_root=True)]
    assert paths == [(), ("0",), ("0", "Net"), ("1",)]
    assert set(leaf_layers(net)) == {("0", "Net"), ("1",)}
    assert net.is_container and net.children()["0"].is_container
    assert not ng.AttentionLayer().is_container


def test_map_layers_rebuilds_only_what_changed():
    net = ng.NetGraph({"left": ng.NetChain([ng.LinearLayer(2), "Tanh"]), "right": ng.LinearLayer(2),
                       "plus": "Plus"}, [(["left", "right"], "plus")], Input=3)

    def zero_right(path, layer):
        if path == ("right",):
            return layer.evolve(arrays={"Biases": np.zeros(2, np.float32)})
        return layer

    new = map_layers(zero_right, net)
    assert new is not net
    assert new.children()["left"] is net.children()["left"]       # untouched sub-net kept
    np.testing.assert_array_equal(ng.NetExtract(new, ("right", "Biases")), np.zeros(2))
    assert map_layers(lambda path, layer: layer, net) is net


# ------------------------------------------------------------------------- registry
def test_a_second_layer_class_with_a_builtin_name_is_refused():
    with pytest.raises(ng.SpecificationError, match="'LinearLayer' is already registered"):
        type("LinearLayer", (Layer,), {"template": lambda self, scope: None})


# ----------------------------------------------------------------- lengths by port
def test_lengths_are_keyed_by_port_name():
    net = ng.NetInitialize(ng.NetChain([ng.AggregationLayer("Mean", 0)], Input=("Varying", 2)))
    apply, params = ng.lower(net), ng.params_of(net)
    x = np.array([[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], np.float32)
    np.testing.assert_allclose(apply(params, {"Input": x}, lengths={"Input": 2})["Output"], [2.0, 3.0])
    with pytest.raises(ng.InputDataError, match="'L9' is not an input port"):
        apply(params, {"Input": x}, lengths={"L9": 2})


def test_lengths_of_several_ports():
    net = ng.NetInitialize(ng.NetGraph({"cat": ng.CatenateLayer(0), "sum": ng.SummationLayer()},
                                       [([ng.NetPort("A"), ng.NetPort("B")], "cat", "sum")],
                                       A=("Varying", 2), B=("Varying", 2)))
    apply, params = ng.lower(net), ng.params_of(net)
    x = np.ones((3, 2), np.float32)
    assert float(apply(params, {"A": x, "B": x}, lengths={"A": 1, "B": 2})["Output"]) == 6.0
    with pytest.raises(ng.InputDataError, match="'Nope' is not an input port"):
        apply(params, {"A": x, "B": x}, lengths={"Nope": 2})


# ---------------------------------------------------------------------- one package
def test_errors_live_in_netgraph_errors():
    assert ng.ShapeMismatchError.__module__ == "netgraph.errors"
    assert importlib.import_module("netgraph.shapes").__name__ == "netgraph.shapes"
    assert importlib.import_module("netgraph.layers").__name__ == "netgraph.layers"


def test_the_installed_distribution_holds_one_top_level_package():
    """What ``pip install .`` put into site-packages: ``netgraph`` and nothing else (an
    editable install adds only its own path hook)."""
    files = importlib.metadata.distribution("netgraph-jax").files
    tops = {f.parts[0] for f in files
            if not f.parts[0].endswith(".dist-info") and not f.name.startswith("__editable__")
            and f.parts[0] != ".."}
    assert tops <= {"netgraph"}
    if tops:  # a regular install: the layer and shape folders sit inside the package
        names = {"/".join(f.parts) for f in files}
        assert {"netgraph/layers/linear.py", "netgraph/shapes/solver.py"} <= names
