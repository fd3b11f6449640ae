"""LinearLayer: shapes, numbers and transforms against a NumPy reference (``check_layer``)."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def affine(inputs, arrays):
    """y = W . flatten(x) + b, reshaped to the Biases / declared output shape."""
    w = arrays["Weights"]
    y = w @ inputs["Input"].reshape(-1)
    b = arrays.get("Biases")
    size = arrays.option("size")
    if size is ng.Automatic:
        shape = (w.shape[0],)
    else:
        shape = (size,) if isinstance(size, int) else tuple(size)
    y = y.reshape(shape)
    return y if b is None else y + b


@pytest.mark.parametrize(
    "size, in_shape, out_shape",
    [
        (3, (4,), (3,)),            # vector input
        (3, (2, 4), (3,)),          # matrix input, flattened
        (5, (2, 3, 2), (5,)),       # rank-3 input, flattened
        ((2, 3), (4,), (2, 3)),     # tuple size
        ((), (4,), ()),             # size () : a scalar output
        (1, (3,), (1,)),
    ],
)
def test_linear_sizes(size, in_shape, out_shape, randn):
    check = check_layer(ng.LinearLayer(size), {"Input": randn(*in_shape)}, affine)
    assert check.net.output_ports == {"Output": out_shape}
    in_count = int(np.prod(in_shape))
    assert ng.NetExtract(check.net, "Weights").shape == (int(np.prod(out_shape)), in_count)
    assert ng.NetExtract(check.net, "Biases").shape == out_shape


def test_linear_no_biases(randn):
    layer = ng.LinearLayer(3, Biases=None)
    check = check_layer(layer, {"Input": randn(2, 2)}, affine)
    assert "Biases" not in check.net.array_specs()
    assert check.net.output_ports == {"Output": (3,)}


def test_linear_given_weights_kept(randn):
    w = randn(3, 4)
    b = randn(3)
    check = check_layer(ng.LinearLayer(3, Weights=w, Biases=b), {"Input": randn(4)},
                        lambda i, a: w.astype(np.float64) @ i["Input"] + b)
    np.testing.assert_array_equal(ng.NetExtract(check.net, "Weights"), w)
    np.testing.assert_array_equal(ng.NetExtract(check.net, "Biases"), b)


def test_linear_given_weights_only_biases_initialised_to_zero(randn):
    w = randn(2, 6)
    check = check_layer(ng.LinearLayer(2, Weights=w), {"Input": randn(2, 3)}, affine)
    np.testing.assert_array_equal(ng.NetExtract(check.net, "Weights"), w)
    np.testing.assert_array_equal(ng.NetExtract(check.net, "Biases"), np.zeros(2, np.float32))


def test_linear_automatic_size_from_weights(randn):
    w = randn(5, 4)
    layer = ng.LinearLayer(Weights=w, Biases=None)
    # the size and the input are inferred from the array alone
    assert layer.output_ports == {"Output": (5,)}
    assert layer.input_ports == {"Input": (4,)}
    check_layer(layer, {"Input": randn(4)}, lambda i, a: w.astype(np.float64) @ i["Input"])


def test_linear_automatic_size_from_weights_with_matrix_input(randn):
    w = randn(3, 6)
    check = check_layer(ng.LinearLayer(Weights=w), {"Input": randn(2, 3)}, affine)
    assert check.net.output_ports == {"Output": (3,)}


def test_linear_declared_ports(randn):
    layer = ng.LinearLayer(3, Input=(2, 5))
    assert layer.input_ports == {"Input": (2, 5)}
    init = ng.NetInitialize(layer, seed=0)
    assert ng.NetExtract(init, "Weights").shape == (3, 10)


def test_linear_initialisation_is_seeded():
    a = ng.NetInitialize(ng.LinearLayer(3, Input=4), seed=0)
    b = ng.NetInitialize(ng.LinearLayer(3, Input=4), seed=0)
    c = ng.NetInitialize(ng.LinearLayer(3, Input=4), seed=1)
    np.testing.assert_array_equal(ng.NetExtract(a, "Weights"), ng.NetExtract(b, "Weights"))
    assert not np.array_equal(ng.NetExtract(a, "Weights"), ng.NetExtract(c, "Weights"))


# ------------------------------------------------------------------------ errors
def test_linear_varying_input_is_an_error():
    with pytest.raises(ng.ShapeMismatchError, match="NetMapOperator"):
        ng.LinearLayer(3, Input=("Varying", 4)).output_ports


def test_linear_weights_mismatch_input():
    with pytest.raises(ng.ShapeMismatchError, match="Weights"):
        ng.LinearLayer(3, Input=5, Weights=np.zeros((3, 4))).output_ports


def test_linear_weights_mismatch_size():
    with pytest.raises(ng.ShapeMismatchError, match="Weights"):
        ng.LinearLayer(2, Weights=np.zeros((3, 4))).output_ports


def test_linear_biases_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.LinearLayer(3, Input=4, Biases=np.zeros(2)).output_ports


def test_linear_unknown_parameter():
    with pytest.raises(ng.SpecificationError, match="size"):
        ng.LinearLayer(3, foo=1)


def test_linear_negative_size():
    with pytest.raises(ng.SpecificationError):
        ng.LinearLayer(-1)


def test_linear_weights_cannot_be_removed():
    with pytest.raises(ng.SpecificationError, match="Weights"):
        ng.LinearLayer(3, Weights=None)


def test_linear_uninitialised_evaluation(randn):
    with pytest.raises(ng.UninitializedError):
        ng.LinearLayer(3, Input=4)(randn(4))
