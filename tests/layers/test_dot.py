"""DotLayer: tensor dot product (Input1's last axis with Input2's first)."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def _dot(i, a):
    x, y = i["Input1"], i["Input2"]
    # explicit contraction: sum over the shared index
    return np.einsum("...k,k->...", x, y) if y.ndim == 1 else np.tensordot(x, y, axes=([-1], [0]))


@pytest.mark.parametrize(
    "a, b, out",
    [
        ((4,), (4,), ()),              # vector . vector: a scalar
        ((3, 4), (4,), (3,)),          # matrix . vector
        ((4,), (4, 2), (2,)),          # vector . matrix
        ((3, 4), (4, 2), (3, 2)),      # matrix . matrix
        ((2, 3, 4), (4, 5), (2, 3, 5)),  # rank 3 . matrix
        ((3, 4), (4, 2, 3), (3, 2, 3)),  # matrix . rank 3
        ((2, 1, 3), (3, 2, 2), (2, 1, 2, 2)),
    ],
)
def test_dot(a, b, out, rng):
    data = {"Input1": rng.standard_normal(a).astype(np.float32),
            "Input2": rng.standard_normal(b).astype(np.float32)}
    check = check_layer(ng.DotLayer(), data, _dot)
    assert check.net.output_ports == {"Output": out}


def test_explicit_loops(rng):
    """matrix . matrix against explicit sums (not a NumPy matmul)."""
    data = {"Input1": rng.standard_normal((2, 3)).astype(np.float32),
            "Input2": rng.standard_normal((3, 2)).astype(np.float32)}

    def loops(i, a):
        x, y = i["Input1"], i["Input2"]
        out = np.zeros((2, 2))
        for r in range(2):
            for c in range(2):
                out[r, c] = sum(x[r, k] * y[k, c] for k in range(3))
        return out

    check_layer(ng.DotLayer(), data, loops)


def test_varying_rows(rng):
    data = {"Input1": rng.standard_normal((4, 3)).astype(np.float32),
            "Input2": rng.standard_normal((3, 2)).astype(np.float32)}
    check = check_layer(ng.DotLayer(), data, _dot, varying={"Input1"})
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 2)}


def test_varying_contracted_axis(rng):
    """Both vectors vary along the contracted axis: padding must not enter the sum."""
    data = {"Input1": rng.standard_normal(5).astype(np.float32),
            "Input2": rng.standard_normal((5, 2)).astype(np.float32)}
    check = check_layer(ng.DotLayer(), data, _dot, varying=True)
    assert check.variants["varying"].output_ports == {"Output": (2,)}


def test_shape_inference_from_one_side():
    layer = ng.DotLayer(Input1=(3, 4), Input2=(ng.Automatic, 5))
    assert layer.input_ports == {"Input1": (3, 4), "Input2": (4, 5)}
    assert layer.output_ports == {"Output": (3, 5)}


# ------------------------------------------------------------------------ errors
def test_mismatched_sizes():
    with pytest.raises(ng.ShapeMismatchError, match="dot product"):
        ng.DotLayer(Input1=(2, 3), Input2=(4,)).output_ports


def test_mismatched_sizes_matrices():
    with pytest.raises(ng.ShapeMismatchError):
        ng.DotLayer(Input1=(2, 3), Input2=(2, 3)).output_ports


@pytest.mark.parametrize("a, b", [((), (4,)), ((4,), ())])
def test_scalar_input(a, b):
    with pytest.raises(ng.ShapeMismatchError, match="scalar"):
        ng.DotLayer(Input1=a, Input2=b).output_ports


def test_wrong_output_shape():
    with pytest.raises(ng.ShapeMismatchError):
        ng.DotLayer(Input1=(2, 3), Input2=(3,), Output=(3,)).output_ports
