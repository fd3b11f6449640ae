"""ConstantTimesLayer and NetArrayLayer: layers made of one learnable array."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def _times(i, a):
    s = a["Scaling"]
    return i["Input"] * s.reshape((1,) * (i["Input"].ndim - s.ndim) + s.shape)


# ------------------------------------------------------------------ ConstantTimesLayer
def test_default_full_shape_scaling(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    check = check_layer(ng.ConstantTimesLayer(), {"Input": x}, _times)
    scaling = ng.NetExtract(check.net, "Scaling")
    assert scaling.shape == (2, 3)
    np.testing.assert_array_equal(scaling, np.ones((2, 3), np.float32))  # starts at 1


def test_given_full_shape_scaling(rng):
    s = rng.standard_normal((2, 3)).astype(np.float32)
    check = check_layer(ng.ConstantTimesLayer(Scaling=s), {"Input": rng.standard_normal((2, 3)).astype(np.float32)},
                        lambda i, a: i["Input"] * s.astype(np.float64))
    assert check.net.input_ports == {"Input": (2, 3)}


def test_replaced_scaling(rng):
    """A non-trivial Scaling set after initialisation is used."""
    x = rng.standard_normal((2, 3)).astype(np.float32)
    s = rng.standard_normal((2, 3)).astype(np.float32)
    net = ng.NetReplacePart(ng.NetInitialize(ng.ConstantTimesLayer(Input=(2, 3)), seed=0),
                            {"Scaling": s})
    check_layer(net, {"Input": x}, _times)
    np.testing.assert_allclose(net(x), x * s, rtol=1e-6)


def test_scalar_scaling(rng):
    layer = ng.ConstantTimesLayer(Scaling=2.5)
    check = check_layer(layer, {"Input": rng.standard_normal((2, 3)).astype(np.float32)},
                        lambda i, a: 2.5 * i["Input"])
    assert ng.NetExtract(check.net, "Scaling").shape == ()


def test_vector_scaling_over_trailing_axis(rng):
    s = rng.standard_normal(3).astype(np.float32)
    check_layer(ng.ConstantTimesLayer(Scaling=s), {"Input": rng.standard_normal((2, 2, 3)).astype(np.float32)},
                _times)


def test_vector_scaling_varying_input(rng):
    s = rng.standard_normal(3).astype(np.float32)
    check = check_layer(ng.ConstantTimesLayer(Scaling=s), {"Input": rng.standard_normal((4, 3)).astype(np.float32)},
                        _times, varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3)}


def test_default_scaling_over_varying_input_spans_trailing_dims(rng):
    """Declared varying from the start, the default Scaling covers the fixed trailing dims."""
    net = ng.NetInitialize(ng.ConstantTimesLayer(Input=("Varying", 2, 3)), seed=0)
    assert ng.NetExtract(net, "Scaling").shape == (2, 3)
    s = rng.standard_normal((2, 3)).astype(np.float32)
    net = ng.NetReplacePart(net, {"Scaling": s})
    for length in (1, 4):
        x = rng.standard_normal((length, 2, 3)).astype(np.float32)
        np.testing.assert_allclose(net(x), x * s, rtol=1e-6)


def test_scaling_rank_too_high():
    with pytest.raises(ng.ShapeMismatchError, match="rank"):
        ng.ConstantTimesLayer(Scaling=np.ones((2, 3)), Input=(3,)).output_ports


def test_scaling_size_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ConstantTimesLayer(Scaling=np.ones(4), Input=(2, 3)).output_ports


def test_scaling_cannot_span_varying_dim():
    with pytest.raises(ng.ShapeMismatchError, match="varying"):
        ng.ConstantTimesLayer(Scaling=np.ones((2, 3)), Input=("Varying", 3)).output_ports


def test_scaling_cannot_be_removed():
    with pytest.raises(ng.SpecificationError):
        ng.ConstantTimesLayer(Scaling=None)


# ----------------------------------------------------------------------- NetArrayLayer
def test_net_array_value(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    layer = ng.NetArrayLayer(Array=a)
    assert layer.input_names == ()
    assert layer.output_ports == {"Output": (2, 3)}
    np.testing.assert_array_equal(layer({}), a)
    np.testing.assert_array_equal(layer(), a)


def test_net_array_initialised_from_declared_output():
    net = ng.NetInitialize(ng.NetArrayLayer(Output=(2, 3)), seed=0)
    array = ng.NetExtract(net, "Array")
    assert array.shape == (2, 3)
    np.testing.assert_array_equal(net({}), array)
    out = ng.lower(net)(ng.params_of(net), {})
    np.testing.assert_array_equal(np.asarray(out["Output"]), array)


def test_net_array_check_layer_no_inputs(rng):
    """The harness on a layer without inputs (one example is the empty dict)."""
    a = rng.standard_normal((2, 3)).astype(np.float32)
    check_layer(ng.NetArrayLayer(Array=a), {}, lambda i, arr: arr["Array"])


def test_net_array_in_a_graph(rng):
    """A learned constant added to an input: shapes, batch, jit and vmap via check_layer."""
    a = rng.standard_normal((2, 3)).astype(np.float32)
    graph = ng.NetGraph(
        {"const": ng.NetArrayLayer(Array=a), "plus": ng.ThreadingLayer("Plus")},
        [(ng.NetPort("Input"), ng.NetPort("plus", "Input1")), ("const", ng.NetPort("plus", "Input2"))],
    )
    check_layer(graph, {"Input": rng.standard_normal((2, 3)).astype(np.float32)},
                lambda i, arr: i["Input"] + arr["const", "Array"])


def test_net_array_scalar():
    layer = ng.NetArrayLayer(Array=np.float32(1.5))
    assert layer.output_ports == {"Output": ()}
    assert float(layer({})) == 1.5


def test_net_array_shape_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetArrayLayer(Array=np.ones((2, 3)), Output=(3, 2)).output_ports


def test_net_array_undetermined_shape():
    with pytest.raises(ng.AmbiguousShapeError):
        ng.NetInitialize(ng.NetArrayLayer(), seed=0)
