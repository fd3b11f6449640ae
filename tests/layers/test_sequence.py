"""SequenceLastLayer and NetMapOperator."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


# -------------------------------------------------------------------- SequenceLastLayer
@pytest.mark.parametrize("shape", [(4,), (4, 3), (3, 2, 2)])
def test_last_fixed(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    check = check_layer(ng.SequenceLastLayer(), {"Input": x}, lambda i, a: i["Input"][-1])
    assert check.net.output_ports == {"Output": shape[1:]}


@pytest.mark.parametrize("shape", [(4,), (4, 3)])
def test_last_varying(shape, rng):
    """The last *real* element: the harness pads with junk that must not be picked."""
    x = rng.standard_normal(shape).astype(np.float32)
    check = check_layer(ng.SequenceLastLayer(), {"Input": x}, lambda i, a: i["Input"][-1],
                        varying=True)
    assert check.variants["varying"].output_ports == {"Output": shape[1:]}


def test_last_per_example_lengths(rng):
    layer = ng.SequenceLastLayer(Input=("Varying", 2))
    for length in (1, 2, 5):
        x = rng.standard_normal((length, 2)).astype(np.float32)
        np.testing.assert_array_equal(layer(x), x[-1])


def test_last_empty_sequence_gives_zeros():
    """Documented: an empty sequence gives zeros (alone, and in a list with a longer one)."""
    layer = ng.SequenceLastLayer(Input=("Varying", 2))
    np.testing.assert_array_equal(layer([np.zeros((0, 2), np.float32), np.ones((2, 2), np.float32)])[0],
                                  np.zeros(2, np.float32))
    np.testing.assert_array_equal(layer(np.zeros((0, 2), np.float32)), np.zeros(2, np.float32))


def test_last_integer_sequence(rng):
    layer = ng.SequenceLastLayer(Input=("Varying", "Integer"))
    out = layer(np.array([3, 1, 4]))
    assert int(out) == 4


def test_last_infers_input_rank_from_output():
    assert ng.SequenceLastLayer(Output=(3,)).input_ports == {"Input": (ng.Automatic, 3)}


def test_last_scalar_input():
    with pytest.raises(ng.ShapeMismatchError, match="sequence"):
        ng.SequenceLastLayer(Input=()).output_ports


def test_last_shape_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.SequenceLastLayer(Input=(4, 3), Output=(2,)).output_ports


# ----------------------------------------------------------------------- NetMapOperator
def _linear_rows(x, w, b):
    return np.stack([w @ row.reshape(-1) + b for row in x])


def test_map_linear_fixed(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check = check_layer(ng.NetMapOperator(ng.LinearLayer(2)), {"Input": x},
                        lambda i, a: _linear_rows(i["Input"], a["Net", "Weights"], a["Net", "Biases"]))
    assert check.net.output_ports == {"Output": (4, 2)}
    assert ng.NetExtract(check.net, ("Net", "Weights")).shape == (2, 3)


def test_map_linear_varying(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check = check_layer(ng.NetMapOperator(ng.LinearLayer(2)), {"Input": x},
                        lambda i, a: _linear_rows(i["Input"], a["Net", "Weights"], a["Net", "Biases"]),
                        varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 2)}


def test_map_linear_matrix_elements(rng):
    x = rng.standard_normal((3, 2, 2)).astype(np.float32)
    check = check_layer(ng.NetMapOperator(ng.LinearLayer(3)), {"Input": x},
                        lambda i, a: _linear_rows(i["Input"], a["Net", "Weights"], a["Net", "Biases"]),
                        varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3)}


def test_map_chain_varying(rng):
    chain = ng.NetChain({"a": ng.LinearLayer(4), "f": ng.ElementwiseLayer("Tanh"),
                         "b": ng.LinearLayer(2)})

    def reference(i, a):
        h = np.tanh(_linear_rows(i["Input"], a["Net", "a", "Weights"], a["Net", "a", "Biases"]))
        return _linear_rows(h, a["Net", "b", "Weights"], a["Net", "b", "Biases"])

    x = rng.standard_normal((5, 3)).astype(np.float32)
    check = check_layer(ng.NetMapOperator(chain), {"Input": x}, reference, varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 2)}


def test_map_two_input_net(rng):
    data = {"Input1": rng.standard_normal((4, 3)).astype(np.float32),
            "Input2": rng.standard_normal((4, 3)).astype(np.float32)}
    layer = ng.NetMapOperator(ng.ThreadingLayer("Times"))
    assert layer.input_names == ("Input1", "Input2")
    check = check_layer(layer, data, lambda i, a: i["Input1"] * i["Input2"], varying=True)
    var = check.variants["varying"]
    # one length shared by both inputs and the output
    types = var.port_types()
    assert types["Input1"].dims[0] == types["Input2"].dims[0] == types["Output"].dims[0]


def test_map_weights_shared_across_elements(rng):
    w = rng.standard_normal((2, 3)).astype(np.float32)
    net = ng.NetMapOperator(ng.LinearLayer(2, Weights=w, Biases=None), Input=("Varying", 3))
    for length in (1, 4):
        x = rng.standard_normal((length, 3)).astype(np.float32)
        np.testing.assert_allclose(net(x), x @ w.T, rtol=1e-5, atol=1e-6)


def test_map_not_a_layer():
    with pytest.raises(ng.SpecificationError, match="not a layer"):
        ng.NetMapOperator(3)


def test_map_scalar_input():
    with pytest.raises(ng.ShapeMismatchError, match="sequence"):
        ng.NetMapOperator(ng.LinearLayer(2), Input=()).output_ports


def test_map_lengths_must_agree():
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetMapOperator(ng.ThreadingLayer("Plus"), Input1=(3, 2), Input2=(4, 2)).output_ports


def test_map_inner_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetMapOperator(ng.LinearLayer(2, Input=4), Input=(5, 3)).output_ports
