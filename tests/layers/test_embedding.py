"""EmbeddingLayer: 0-based integer indices to rows of a learned matrix."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def _lookup(i, a):
    w = a["Weights"]
    idx = i["Input"]
    out = np.empty(idx.shape + (w.shape[1],))
    for pos in np.ndindex(*idx.shape):
        out[pos] = w[int(idx[pos])]
    return out


def test_explicit_n(rng):
    x = rng.integers(0, 5, 4)
    x[0], x[1] = 0, 4  # both ends of the range [0, n)
    check = check_layer(ng.EmbeddingLayer(3, 5), {"Input": x}, _lookup)
    assert ng.NetExtract(check.net, "Weights").shape == (5, 3)
    assert check.net.output_ports == {"Output": (4, 3)}


def test_n_inferred_from_restricted_input(rng):
    layer = ng.EmbeddingLayer(3, Input=ng.Restricted("Integer", 6))
    check = check_layer(layer, {"Input": rng.integers(0, 6, 5)}, _lookup)
    assert ng.NetExtract(check.net, "Weights").shape == (6, 3)


def test_scalar_index(rng):
    check = check_layer(ng.EmbeddingLayer(4, 3), {"Input": np.int32(2)}, _lookup)
    assert check.net.output_ports == {"Output": (4,)}


def test_matrix_of_indices(rng):
    check = check_layer(ng.EmbeddingLayer(2, 4), {"Input": rng.integers(0, 4, (2, 3))}, _lookup)
    assert check.net.output_ports == {"Output": (2, 3, 2)}


def test_varying_sequences(rng):
    check = check_layer(ng.EmbeddingLayer(3, 5), {"Input": rng.integers(0, 5, 4)}, _lookup,
                        varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3)}


def test_varying_restricted(rng):
    layer = ng.EmbeddingLayer(2, Input=("Varying", ng.Restricted("Integer", 7)))
    check = check_layer(layer, {"Input": rng.integers(0, 7, 3)}, _lookup, varying=True)
    assert ng.NetExtract(check.net, "Weights").shape == (7, 2)


def test_given_weights_infer_size_and_n(rng):
    w = rng.standard_normal((5, 3)).astype(np.float32)
    layer = ng.EmbeddingLayer(Weights=w)
    check = check_layer(layer, {"Input": rng.integers(0, 5, 4)}, _lookup)
    np.testing.assert_array_equal(ng.NetExtract(check.net, "Weights"), w)
    types = check.net.port_types()
    assert types["Output"].dims[-1].size == 3
    assert types["Input"].element.n.size == 5


def test_weights_initialised_standard_normal():
    net = ng.NetInitialize(ng.EmbeddingLayer(64, 50), seed=0)
    w = ng.NetExtract(net, "Weights")
    assert w.shape == (50, 64)
    assert abs(w.mean()) < 0.05 and abs(w.std() - 1.0) < 0.05


def test_per_example_lengths(rng):
    net = ng.NetInitialize(ng.EmbeddingLayer(2, 4, Input="Varying"), seed=0)
    w = ng.NetExtract(net, "Weights")
    for length in (1, 3, 6):
        x = rng.integers(0, 4, length)
        np.testing.assert_array_equal(net(x), w[x])


# ------------------------------------------------------------------------ errors
def test_index_out_of_range():
    net = ng.NetInitialize(ng.EmbeddingLayer(3, 5), seed=0)
    with pytest.raises(ng.InputDataError, match=r"\[0, 5\)"):
        net(np.array([0, 5]))


def test_negative_index():
    net = ng.NetInitialize(ng.EmbeddingLayer(3, 5), seed=0)
    with pytest.raises(ng.InputDataError):
        net(np.array([-1, 2]))


def test_real_data_rejected():
    net = ng.NetInitialize(ng.EmbeddingLayer(3, 5), seed=0)
    with pytest.raises(ng.InputDataError, match="integers"):
        net(np.array([0.0, 1.0]))


def test_n_conflicts_with_restricted_input():
    with pytest.raises(ng.ShapeMismatchError):
        ng.EmbeddingLayer(3, 5, Input=ng.Restricted("Integer", 4)).output_ports


def test_size_conflicts_with_weights():
    with pytest.raises(ng.ShapeMismatchError):
        ng.EmbeddingLayer(4, Weights=np.zeros((5, 3))).output_ports


def test_real_input_declaration_rejected():
    with pytest.raises(ng.ElementTypeError):
        ng.EmbeddingLayer(3, 5, Input=(4, "Real")).output_ports


def test_n_unknown_cannot_initialise():
    with pytest.raises(ng.AmbiguousShapeError):
        ng.NetInitialize(ng.EmbeddingLayer(3, Input=4), seed=0)
