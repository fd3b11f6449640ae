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


# ------------------------------------------- SequenceMost, SequenceRest, SequenceReverse
def _lowered_padded(layer, x, pad=3):
    """ng.lower(layer) on ``x`` padded with junk rows, given its true length."""
    import jax.numpy as jnp

    symbol = layer.inference.port((), "Input").dims[0].symbol
    padded = np.concatenate([x, np.full((pad, *x.shape[1:]), 7.0, x.dtype)])
    out = ng.lower(layer)(ng.params_of(layer), {"Input": jnp.asarray(padded)},
                          lengths={symbol: jnp.asarray(len(x), jnp.int32)})
    return np.asarray(out["Output"])


DROPS = [(ng.SequenceMostLayer, lambda x: x[:-1]), (ng.SequenceRestLayer, lambda x: x[1:])]


@pytest.mark.parametrize("cls, reference", DROPS)
def test_most_rest(cls, reference, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check = check_layer(cls(), {"Input": x}, lambda i, a: reference(i["Input"]), varying=True)
    assert check.net.output_ports == {"Output": (3, 3)}
    var = check.variants["varying"]
    assert var.output_ports == {"Output": ("Varying", 3)}
    assert var.port_types()["Output"].dims[0] != var.port_types()["Input"].dims[0]  # a new length
    for n in (0, 1, 2, 5):  # padding never changes a result
        x = rng.standard_normal((n, 3)).astype(np.float32)
        np.testing.assert_array_equal(_lowered_padded(var, x)[:max(n - 1, 0)], reference(x))
    outs = var([rng.standard_normal((n, 3)).astype(np.float32) for n in (1, 2, 6)])
    assert [o.shape for o in outs] == [(0, 3), (1, 3), (5, 3)]


@pytest.mark.parametrize("cls", [ng.SequenceMostLayer, ng.SequenceRestLayer])
def test_most_rest_shapes(cls):
    assert cls(Input=5).output_ports == {"Output": (4,)}
    assert cls(Output=(4, 2)).input_ports == {"Input": (5, 2)}
    assert cls(Input=(3, "Integer"))(np.array([1, 2, 3])).dtype.kind == "i"
    with pytest.raises(ng.ShapeMismatchError, match="two or more"):
        cls(Input=(1, 2)).output_ports
    with pytest.raises(ng.ShapeMismatchError, match="sequence"):
        cls(Input=()).output_ports


def test_reverse(rng):
    x = rng.standard_normal((4, 2)).astype(np.float32)
    check = check_layer(ng.SequenceReverseLayer(), {"Input": x}, lambda i, a: i["Input"][::-1],
                        varying=True)
    var = check.variants["varying"]
    types = var.port_types()
    assert types["Input"].dims[0] == types["Output"].dims[0]  # the same length
    for n in (0, 1, 3):
        x = rng.standard_normal((n, 2)).astype(np.float32)
        np.testing.assert_array_equal(_lowered_padded(var, x)[:n], x[::-1])


def test_reverse_errors_and_save(tmp_path):
    with pytest.raises(ng.ShapeMismatchError, match="sequence"):
        ng.SequenceReverseLayer(Input=()).output_ports
    layer = ng.SequenceReverseLayer(Input=("Varying", "Integer"))
    ng.save(layer, tmp_path / "r.npz")
    np.testing.assert_array_equal(ng.load(tmp_path / "r.npz")(np.array([1, 2, 3])), [3, 2, 1])


# ------------------------------------------------------------------ SequenceIndicesLayer
def test_indices(rng):
    x = rng.standard_normal((4, 2)).astype(np.float32)
    check = check_layer(ng.SequenceIndicesLayer(), {"Input": x},
                        lambda i, a: np.arange(len(i["Input"])), varying=True)
    assert check.net.output_ports == {"Output": (4, "Integer")}
    assert check.variants["varying"].output_ports == {"Output": ("Varying", "Integer")}


def test_indices_maximum_feeds_a_positional_embedding(rng):
    """maximum=m caps the positions at m - 1 (Wolfram's Min[max, Range[n]], 0-based) and
    declares them Restricted("Integer", m): the EmbeddingLayer infers its m rows."""
    layer = ng.SequenceIndicesLayer(maximum=3, Input=("Varying", ng.Restricted("Integer", 9)))
    assert layer.output_ports == {"Output": ("Varying", ng.Restricted("Integer", 3))}
    np.testing.assert_array_equal(layer(np.arange(5)), [0, 1, 2, 2, 2])
    positions = ng.NetGraph(
        {"emb": ng.EmbeddingLayer(4, 9), "pos": ng.SequenceIndicesLayer(maximum=6),
         "posemb": ng.EmbeddingLayer(4), "plus": ng.ThreadingLayer("Plus")},
        [(ng.NetPort("Input"), ["emb", "pos"]), ("pos", "posemb"), (["emb", "posemb"], "plus")],
        Input=("Varying", ng.Restricted("Integer", 9)))
    assert ng.NetExtract(positions, "posemb").input_ports == {"Input": ("Varying", ng.Restricted("Integer", 6))}
    net = ng.NetInitialize(positions, seed=0)
    tokens = np.array([3, 1, 4, 1, 5, 8, 2, 6])
    w, p = ng.NetExtract(net, ("emb", "Weights")), ng.NetExtract(net, ("posemb", "Weights"))
    np.testing.assert_allclose(net(tokens), w[tokens] + p[np.minimum(np.arange(8), 5)], atol=1e-6)


def test_indices_errors_and_save(tmp_path):
    with pytest.raises(ng.SpecificationError):
        ng.SequenceIndicesLayer(maximum=0)
    with pytest.raises(ng.ShapeMismatchError, match="sequence"):
        ng.SequenceIndicesLayer(Input=()).output_ports
    layer = ng.SequenceIndicesLayer(maximum=2, Input="Varying")
    ng.save(layer, tmp_path / "i.npz")
    np.testing.assert_array_equal(ng.load(tmp_path / "i.npz")(np.ones(3, np.float32)), [0, 1, 1])
