"""SoftmaxLayer: softmax along a level, masked along a varying level."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize(
    "level, shape",
    [(-1, (2, 4)), (0, (3, 2)), (1, (2, 3, 2)), (-2, (2, 3, 2))],
)
def test_levels(level, shape, rng):
    x = 2.0 * rng.standard_normal(shape).astype(np.float32)
    check = check_layer(ng.SoftmaxLayer(level), {"Input": x},
                        lambda i, a: softmax(i["Input"], level))
    assert check.net.output_ports == {"Output": shape}
    np.testing.assert_allclose(check.outputs["Output"].sum(axis=level), 1.0, atol=1e-5)


def test_default_level_is_last():
    assert ng.SoftmaxLayer().options.level == -1


def test_large_values_are_stable():
    x = np.array([1000.0, 1001.0, 1002.0], np.float32)
    out = ng.SoftmaxLayer(Input=3)(x)
    np.testing.assert_allclose(out, softmax(x.astype(np.float64), -1), atol=1e-6)


def test_varying_softmax_level(rng):
    """Softmax over the varying level: the junk padding must get no weight."""
    x = rng.standard_normal((4, 2)).astype(np.float32)
    check = check_layer(ng.SoftmaxLayer(0), {"Input": x}, lambda i, a: softmax(i["Input"], 0),
                        varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 2)}


def test_varying_other_level(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check_layer(ng.SoftmaxLayer(-1), {"Input": x}, lambda i, a: softmax(i["Input"], -1),
                varying=True)


def test_varying_per_example_lengths(rng):
    layer = ng.SoftmaxLayer(Input="Varying")
    for length in (1, 3, 6):
        x = rng.standard_normal(length).astype(np.float32)
        np.testing.assert_allclose(layer(x), softmax(x.astype(np.float64), 0), atol=1e-6)


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("level", [2, -3])
def test_level_out_of_range(level):
    with pytest.raises(ng.ShapeMismatchError, match="level"):
        ng.SoftmaxLayer(level, Input=(2, 3)).output_ports


def test_scalar_input():
    with pytest.raises(ng.ShapeMismatchError):
        ng.SoftmaxLayer(Input=()).output_ports


def test_shape_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.SoftmaxLayer(Input=3, Output=4).output_ports


def test_empty_varying_level():
    """A length-0 example along the softmax level gives an empty result, not an error."""
    layer = ng.SoftmaxLayer(0, Input=("Varying", 2))
    out = layer(np.zeros((0, 2), np.float32))
    assert out.shape == (0, 2)
