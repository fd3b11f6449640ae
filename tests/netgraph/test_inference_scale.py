"""Shape inference at scale: linear work, and provenance kept in copied templates.

Layers that are equal values share one template: the first runs its ``template``, the others
copy the cells and rules it created (``layers.scope.constrain``). The tests count instead of
timing: templates run (``Inference.templates_run``) stay constant as a net grows, and rule
runs (``Inference.steps``) grow by the same amount for every added block.
"""
from __future__ import annotations

import sys

import pytest

import netgraph as ng

L, Tanh = ng.LinearLayer, ng.ElementwiseLayer


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


def test_a_chain_runs_each_distinct_template_once_and_its_rules_linearly():
    nets = {n: chain(n) for n in (1000, 2000, 3000)}
    # the chain itself, one LinearLayer(8) and one Tanh: however long the chain
    assert {net.inference.templates_run for net in nets.values()} == {3}
    steps = [nets[n].inference.steps for n in (1000, 2000, 3000)]
    assert steps[2] - steps[1] == steps[1] - steps[0] <= 4 * 1000  # a constant per layer
    last = nets[3000]
    assert last.inference.port(("2998",), "Output").to_user() == (8,)
    assert last.inference.array(("2998",), "Weights") == (ng.shapes.Known(8), ng.shapes.Known(8))
    assert last.output_ports == {"Output": (8,)}


def test_a_wide_dag_is_linear_too():
    nets = {b: wide(b) for b in (100, 200, 300)}
    runs = [nets[b].inference.templates_run for b in (100, 200, 300)]
    # the threading layer's template (a rule per axis once ranked) is run for every block
    assert runs[2] - runs[1] == runs[1] - runs[0] == 100
    steps = [nets[b].inference.steps for b in (100, 200, 300)]
    assert steps[2] - steps[1] == steps[1] - steps[0]
    assert nets[300].output_ports == {"Output": (8,)}


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


def test_copies_of_a_template_keep_their_own_varying_lengths():
    seq = Tanh("Tanh", Input=("Varying", 3))
    net = ng.NetGraph({"a": seq, "b": Tanh("Tanh", Input=("Varying", 3))},
                      [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")])
    assert net.inference.templates_run == 2  # the graph, and one template for both
    a, b = (net.inference.port((name,), "Output").dims[0] for name in "ab")
    assert isinstance(a, ng.shapes.Varying) and isinstance(b, ng.shapes.Varying)
    assert a != b  # two independent lengths, as two separately written layers have
