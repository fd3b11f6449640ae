"""Shape inference at scale: linear work, and provenance kept in copied templates.

Layers that are equal values share one template: the first runs its ``template``, the others
copy the cells and rules it created (``layers.scope.constrain``); making a layer equal to one
made before solves nothing again (``layers.scope.infer``, ``Layer._build``). The tests count
instead of timing: templates run (``Inference.templates_run``) stay constant as a net grows,
rule runs (``Inference.steps``) grow by the same amount for every added block, and layers
solved on their own (``inference_runs``) do not grow with the number of equal layers made.

A net whose types only flow forward skips the solver (``netgraph.forward_inference``): the
tests of the solver's own scaling switch that pass off (``solver_only``), and the forward
pass is tested equal to the solver.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import netgraph as ng
from netgraph import forward_inference
from netgraph.layers.scope import inference_runs
from netgraph.shapes import Automatic

L, Tanh = ng.LinearLayer, ng.ElementwiseLayer


@pytest.fixture
def solver_only(monkeypatch):
    monkeypatch.setattr(forward_inference, "ENABLED", False)


def chain(n: int) -> ng.NetChain:
    return ng.NetChain([L(8) if i % 2 == 0 else Tanh("Tanh") for i in range(n)], Input=8)


def wide(blocks: int, width: int = 4) -> ng.NetGraph:
    """Blocks of ``width`` parallel LinearLayer(8), summed, then a Tanh."""
    layers, connections, previous = {}, [], ng.NetPort("Input")
    for b in range(blocks):
        branches = [f"b{b}.{j}" for j in range(width)]
        layers.update({name: L(8) for name in branches})
        layers[f"b{b}.plus"], layers[f"b{b}.tanh"] = ng.ThreadingLayer("Plus"), Tanh("Tanh")
        connections += [(previous, branches), (branches, f"b{b}.plus"), (f"b{b}.plus", f"b{b}.tanh")]
        previous = f"b{b}.tanh"
    return ng.NetGraph(layers, connections, Input=8)


def test_a_chain_runs_each_distinct_template_once_and_its_rules_linearly(solver_only):
    nets = {n: chain(n) for n in (1000, 2000, 3000)}
    # the chain itself, one LinearLayer(8) and one Tanh: however long the chain
    assert {net.inference.templates_run for net in nets.values()} == {3}
    steps = [nets[n].inference.steps for n in (1000, 2000, 3000)]
    assert steps[2] - steps[1] == steps[1] - steps[0] <= 4 * 1000  # a constant per layer
    last = nets[3000]
    assert last.inference.port(("2998",), "Output").to_user() == (8,)
    assert last.inference.array(("2998",), "Weights") == (ng.shapes.Known(8), ng.shapes.Known(8))
    assert last.output_ports == {"Output": (8,)}


def test_a_wide_dag_is_linear_too(solver_only):
    nets = {b: wide(b) for b in (100, 200, 300)}
    # the graph, LinearLayer(8), the Plus of 4 inputs (its per-axis rules installed by each
    # copy once its rank is known) and Tanh
    assert {nets[b].inference.templates_run for b in (100, 200, 300)} == {4}
    steps = [nets[b].inference.steps for b in (100, 200, 300)]
    assert steps[2] - steps[1] == steps[1] - steps[0]
    assert nets[300].output_ports == {"Output": (8,)}


def test_making_equal_layers_checks_them_once():
    L(8), Tanh("Tanh")  # made before in this process or not: now they are
    before = inference_runs()
    layers, line = [L(8) if i % 2 == 0 else Tanh("Tanh") for i in range(2000)], sys._getframe().f_lineno
    assert inference_runs()["solved"] == before["solved"]  # no layer solved again
    assert all(layer.inference is layers[0].inference for layer in layers[::2])
    assert all(layer.options is layers[0].options for layer in layers[::2])
    assert layers[0].output_ports == {"Output": (8,)} and layers[1].output_ports == {"Output": Automatic}
    assert str(layers[1999].origin) == f"{os.path.relpath(__file__)}:{line}"
    # a layer given other arguments, or arrays, is validated and solved on its own
    other = L(8, Input=3, Weights=np.zeros((8, 3)))
    assert inference_runs()["solved"] == before["solved"] + 1
    assert other.arrays["Weights"].shape == (8, 3) and layers[0].arrays == {"Weights": None, "Biases": None}


def test_a_layer_given_port_shapes_is_made_once_too():
    L(8, Input=3)
    before = inference_runs()
    a, b = L(8, Input=3), L(8, Input=3)
    assert inference_runs()["solved"] == before["solved"]
    assert a.port_specs == b.port_specs and a.port_specs is not b.port_specs
    assert a.input_ports == {"Input": (3,)} and b.output_ports == {"Output": (8,)}
    assert L(8, Input=4).input_ports == {"Input": (4,)}  # other port shapes: another layer


def test_resizing_a_variadic_layer_made_before_validates_it_once():
    ng.ThreadingLayer("Plus").with_input_count(3)
    before = inference_runs()
    plus, line = ng.ThreadingLayer("Plus"), sys._getframe().f_lineno
    resized = [plus.with_input_count(3) for _ in range(3)]
    assert inference_runs()["solved"] == before["solved"]
    assert len({id(r) for r in resized}) == 3 and all(r.inference is resized[0].inference for r in resized)
    assert resized[0].input_names == ("Input1", "Input2", "Input3") and resized[0].options.inputs == 3
    assert str(resized[2].origin) == f"{os.path.relpath(__file__)}:{line}"  # where its source was made
    assert plus.with_input_count(4).input_names[-1] == "Input4"  # another count: another layer
    with pytest.raises(ng.SpecificationError):
        plus.evolve(options={"inputs": 0})


def test_arguments_equal_as_values_but_of_other_types_are_validated_again():
    assert L(1).options.size == 1
    for size in (True, 1.0):  # 1 == True == 1.0, but a size must be an int
        with pytest.raises(ng.SpecificationError, match="a size must be an int"):
            L(size)


def test_an_equal_bad_layer_fails_every_time_with_its_own_line():
    for _ in range(2):
        line = sys._getframe().f_lineno + 2
        with pytest.raises(ng.ElementTypeError) as info:
            L(8, Input="Integer")
        assert f'declared port "Input" of net (LinearLayer[8])  ({os.path.relpath(__file__)}:{line})' in str(info.value)


def test_an_error_in_a_copied_layer_names_that_layer_and_its_line():
    layers = [L(8) if i % 2 == 0 else Tanh("Tanh") for i in range(300)]
    layers[201], line = L(3, Input=5), sys._getframe().f_lineno
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetChain(layers, Input=8)
    message = str(info.value)
    assert 'port "Input" of 201 (LinearLayer[3]), connected from port "Output" of 200' in message
    assert f'declared port "Input" of 201 (LinearLayer[3])  (' in message
    assert f"test_inference_scale.py:{line})" in message
    assert 'got      8 - set by port "Output" of 200 (LinearLayer[8])' in message


def test_a_rule_of_a_copied_layer_reports_the_copy():
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetGraph({"a": L(8), "b": L(8)}, [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")],
                    x=3, y=("Varying", 3))
    assert str(info.value).startswith(
        'port "Input" of b (LinearLayer[8]) cannot take a varying-length dimension here.')


def test_copies_of_a_template_keep_their_own_varying_lengths(solver_only):
    seq = Tanh("Tanh", Input=("Varying", 3))
    net = ng.NetGraph({"a": seq, "b": Tanh("Tanh", Input=("Varying", 3))},
                      [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")])
    assert net.inference.templates_run == 2  # the graph, and one template for both
    a, b = (net.inference.port((name,), "Output").dims[0] for name in "ab")
    assert isinstance(a, ng.shapes.Varying) and isinstance(b, ng.shapes.Varying)
    assert a != b  # two independent lengths, as two separately written layers have


def test_a_broadcast_error_in_a_copied_threading_layer_names_that_layer():
    plus = ng.ThreadingLayer
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetGraph({"a": L(3), "b": L(3), "p1": plus("Plus"), "c": L(3), "d": L(4), "p2": plus("Plus")},
                    [(["a", "b"], "p1"), (["c", "d"], "p2")], Input=2)
    assert str(info.value).startswith(
        'inconsistent size for dimension 1 of port "Output" of p2 (ThreadingLayer[Plus])\n'
        '  expected 3 - set by port "Output" of c (LinearLayer[3])')


# ----------------------------------------------------------------- the forward pass
def solved(make, monkeypatch):
    """(forward pass, solver) inference of the net ``make()``, as plain dicts."""
    def tables(net):
        inf = net.inference
        return {k: inf.ports[k] for k in inf.ports}, {k: inf.arrays[k] for k in inf.arrays}, inf.templates_run

    forward = tables(make())
    monkeypatch.setattr(forward_inference, "ENABLED", False)
    solver = tables(make())
    monkeypatch.setattr(forward_inference, "ENABLED", True)
    return forward, solver


FORWARD = {
    "chain": lambda: chain(6),
    "wide": lambda: wide(3),
    "embedding, one input read twice": lambda: ng.NetGraph(
        {"e": ng.EmbeddingLayer(4, 10), "f": ng.EmbeddingLayer(3, 10), "cat": ng.CatenateLayer(1)},
        [(ng.NetPort("Input"), ["e", "f"]), (["e", "f"], "cat")], Input=5),
    "index bound from the declared port": lambda: ng.NetChain(
        [ng.EmbeddingLayer(4), ng.AggregationLayer("Mean", 0), L(2)], Input=(5, ng.Restricted("Integer", 7))),
    "a layer's own port spec fed by a layer": lambda: ng.NetChain(
        [Tanh("Tanh"), L(3, Input=4), Tanh("Tanh", Input=3)], Input=4),
}


@pytest.mark.parametrize("name", list(FORWARD))
def test_the_forward_pass_gives_the_solvers_types(name, monkeypatch):
    (ports, arrays, templates), (ports_solver, arrays_solver, _) = solved(FORWARD[name], monkeypatch)
    assert templates == 0  # the solver did not run on the net (it runs at least the graph's)
    assert ports == ports_solver and arrays == arrays_solver


BACKWARD = {  # nets whose types are not decided by a forward pass: the solver runs
    "varying length": lambda: ng.NetChain([Tanh("Tanh"), Tanh("Tanh")], Input=("Varying", 2)),
    "input left to inference": lambda: ng.NetChain([L(3), Tanh("Tanh")]),
    "size set from downstream": lambda: ng.NetChain([Tanh("Tanh"), L(2, Input=3)]),
    "a declared output": lambda: ng.NetChain([Tanh("Tanh")], Input=3, Output=3),
    "a sub-net": lambda: ng.NetChain([ng.NetChain([L(3)]), Tanh("Tanh")], Input=2),
    "a declared input read by a layer with its own spec": lambda: ng.NetChain([L(3, Input=4)], Input=4),
}


@pytest.mark.parametrize("name", list(BACKWARD))
def test_nets_the_forward_pass_cannot_decide_go_to_the_solver(name, monkeypatch):
    (ports, arrays, templates), (ports_solver, arrays_solver, _) = solved(BACKWARD[name], monkeypatch)
    assert templates > 0
    assert ports == ports_solver and arrays == arrays_solver


def test_the_forward_pass_solves_each_kind_of_node_once():
    forward_inference._NODES.clear()
    for n in (1000, 3000):
        net = chain(n)
        assert net.inference.templates_run == 0 and net.output_ports == {"Output": (8,)}
    # Linear(8) fed the declared input, Linear(8) fed a Tanh's output, Tanh: however long
    assert len(forward_inference._NODES) == 3
    assert net.inference.array(("2998",), "Weights") == (ng.shapes.Known(8), ng.shapes.Known(8))


def test_a_declared_input_conflicting_with_a_layers_own_spec_is_an_error():
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetChain([L(3, Input=4), Tanh("Tanh")], Input=5)


def test_a_conflict_is_reported_by_the_solver_with_its_provenance():
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetChain([L(3), Tanh("Tanh"), L(2, Input=4)], Input=2)
    assert 'port "Input" of 2 (LinearLayer[2])' in str(info.value)
    assert 'set by port "Output" of 0 (LinearLayer[3])' in str(info.value)
