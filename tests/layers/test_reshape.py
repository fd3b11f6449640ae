"""Structural layers: ReshapeLayer, FlattenLayer, TransposeLayer, ReplicateLayer."""
from __future__ import annotations

import math

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer

Auto, Inh = ng.Automatic, ng.Inherited


# ------------------------------------------------------------------------ ReshapeLayer
@pytest.mark.parametrize(
    "dims, in_shape, out_shape",
    [
        ((3, 4), (2, 6), (3, 4)),
        ((12,), (2, 3, 2), (12,)),
        ((Auto, 4), (2, 6), (3, 4)),
        ((2, Auto, 2), (12,), (2, 3, 2)),
        ((1, 6, 1), (2, 3), (1, 6, 1)),
    ],
    ids=repr,
)
def test_reshape(dims, in_shape, out_shape, rng):
    x = rng.standard_normal(in_shape).astype(np.float32)
    check = check_layer(ng.ReshapeLayer(dims), {"Input": x},
                        lambda i, a: i["Input"].reshape(out_shape))
    assert check.net.output_ports == {"Output": out_shape}


def test_reshape_int_dims(rng):
    check = check_layer(ng.ReshapeLayer(6), {"Input": rng.standard_normal((2, 3)).astype(np.float32)},
                        lambda i, a: i["Input"].reshape(6))
    assert check.net.output_ports == {"Output": (6,)}


def test_reshape_infers_input_size():
    assert ng.ReshapeLayer((2, 3), Input=(Auto,)).input_ports == {"Input": (6,)}


@pytest.mark.parametrize(
    "dims, in_shape, out_tail",
    [
        ((Inh, 3, 2), (4, 6), (3, 2)),
        ((Inh, Auto), (4, 2, 3), (6,)),
        ((Inh, 2, Auto), (3, 4, 2), (2, 4)),
    ],
    ids=repr,
)
def test_reshape_inherited_varying_first_dim(dims, in_shape, out_tail, rng):
    x = rng.standard_normal(in_shape).astype(np.float32)
    check = check_layer(ng.ReshapeLayer(dims), {"Input": x},
                        lambda i, a: i["Input"].reshape((i["Input"].shape[0], *out_tail)),
                        varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", *out_tail)}


def test_reshape_inherited_fixed(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    check = check_layer(ng.ReshapeLayer((Inh, Inh, 2, 2)), {"Input": x},
                        lambda i, a: i["Input"].reshape(2, 3, 2, 2))
    assert check.net.output_ports == {"Output": (2, 3, 2, 2)}


def test_reshape_element_count_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ReshapeLayer((5,), Input=(2, 3)).output_ports


def test_reshape_automatic_not_divisible():
    with pytest.raises(ng.ShapeMismatchError, match="cannot be split"):
        ng.ReshapeLayer((Auto, 4), Input=(2, 3)).output_ports


def test_reshape_two_automatics():
    with pytest.raises(ng.SpecificationError, match="Automatic"):
        ng.ReshapeLayer((Auto, Auto))


def test_reshape_varying_without_inherited():
    with pytest.raises(ng.ShapeMismatchError, match="Inherited"):
        ng.ReshapeLayer((6,), Input=("Varying", 3)).output_ports


def test_reshape_inherited_beyond_rank():
    with pytest.raises(ng.ShapeMismatchError, match="rank"):
        ng.ReshapeLayer((Inh, Inh, 2), Input=(4,)).output_ports


# ------------------------------------------------------------------------ FlattenLayer
def _flatten(x, level):
    r = x.ndim
    if level is ng.All:
        return x.reshape(-1)
    k = min(abs(level) + 1, r)
    if level >= 0:
        return x.reshape((math.prod(x.shape[:k]),) + x.shape[k:])
    return x.reshape(x.shape[:r - k] + (math.prod(x.shape[r - k:]),))


@pytest.mark.parametrize(
    "level, out_shape",
    [
        (ng.All, (24,)),
        (0, (2, 3, 4)),    # one dim "merged": unchanged
        (1, (6, 4)),
        (2, (24,)),
        (-1, (2, 12)),
        (-2, (24,)),
    ],
    ids=repr,
)
def test_flatten(level, out_shape, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    check = check_layer(ng.FlattenLayer(level), {"Input": x}, lambda i, a: _flatten(i["Input"], level))
    assert check.net.output_ports == {"Output": out_shape}


def test_flatten_rank4(rng):
    x = rng.standard_normal((2, 1, 3, 2)).astype(np.float32)
    check = check_layer(ng.FlattenLayer(1), {"Input": x}, lambda i, a: _flatten(i["Input"], 1))
    assert check.net.output_ports == {"Output": (2, 3, 2)}


def test_flatten_default_is_all():
    assert ng.FlattenLayer(Input=(2, 3)).output_ports == {"Output": (6,)}


def test_flatten_varying_keeps_first_dim(rng):
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    check = check_layer(ng.FlattenLayer(-1), {"Input": x}, lambda i, a: _flatten(i["Input"], -1),
                        varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 6)}


def test_flatten_varying_cannot_merge():
    with pytest.raises(ng.ShapeMismatchError, match="varying"):
        ng.FlattenLayer(Input=("Varying", 3)).output_ports


def test_flatten_scalar():
    with pytest.raises(ng.ShapeMismatchError, match="rank"):
        ng.FlattenLayer(Input=()).output_ports


# ---------------------------------------------------------------------- TransposeLayer
@pytest.mark.parametrize(
    "perm, shape",
    [
        (None, (3, 4)),
        (None, (2, 3, 4)),          # default: swap the first two dims
        ((2, 0, 1), (2, 3, 4)),
        ((3, 1, 0, 2), (2, 3, 1, 4)),
        ((4, 2, 0, 3, 1), (2, 1, 3, 2, 2)),
    ],
    ids=repr,
)
def test_transpose(perm, shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    p = perm if perm is not None else (1, 0, *range(2, len(shape)))

    def reference(i, a):
        y = i["Input"]
        out = np.empty(tuple(y.shape[j] for j in p))
        for index in np.ndindex(*out.shape):  # output index i_k reads input axis p[k]
            src = [0] * y.ndim
            for k, j in enumerate(p):
                src[j] = index[k]
            out[index] = y[tuple(src)]
        return out

    check = check_layer(ng.TransposeLayer(perm), {"Input": x}, reference)
    assert check.net.output_ports == {"Output": tuple(shape[j] for j in p)}


def test_transpose_varying(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check = check_layer(ng.TransposeLayer(), {"Input": x}, lambda i, a: i["Input"].T, varying=True)
    assert check.variants["varying"].output_ports == {"Output": (3, "Varying")}


def test_transpose_fixes_rank_from_perm():
    assert ng.TransposeLayer((2, 0, 1), Output=(4, 2, 3)).input_ports == {"Input": (2, 3, 4)}


@pytest.mark.parametrize("perm", [(0, 0, 1), (1, 2), (0, 2)])
def test_transpose_invalid_perm(perm):
    with pytest.raises(ng.SpecificationError, match="permutation"):
        ng.TransposeLayer(perm)


def test_transpose_perm_rank_mismatch():
    with pytest.raises(ng.ShapeMismatchError, match="rank"):
        ng.TransposeLayer((1, 0, 2), Input=(2, 3)).output_ports


def test_transpose_rank1_default():
    with pytest.raises(ng.ShapeMismatchError, match="rank"):
        ng.TransposeLayer(Input=(3,)).output_ports


# ---------------------------------------------------------------------- ReplicateLayer
def _replicate(x, sizes, position):
    y = x.reshape(x.shape[:position] + (1,) * len(sizes) + x.shape[position:])
    return np.tile(y, (1,) * position + tuple(sizes) + (1,) * (x.ndim - position))


@pytest.mark.parametrize(
    "size, level, shape, out",
    [
        (3, 0, (4,), (3, 4)),
        (3, -1, (4,), (4, 3)),
        (2, 1, (4, 5), (4, 2, 5)),
        ((2, 3), 1, (4, 5), (4, 2, 3, 5)),
        ((2, 1), -1, (3,), (3, 2, 1)),
        (2, 0, (), (2,)),
    ],
    ids=repr,
)
def test_replicate(size, level, shape, out, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    sizes = size if isinstance(size, tuple) else (size,)
    position = level if level >= 0 else len(shape) + 1 + level
    check = check_layer(ng.ReplicateLayer(size, level), {"Input": x},
                        lambda i, a: _replicate(i["Input"], sizes, position))
    assert check.net.output_ports == {"Output": out}


def test_replicate_size_from_declared_output(rng):
    x = rng.standard_normal(4).astype(np.float32)
    check = check_layer(ng.ReplicateLayer(Output=(3, 4)), {"Input": x},
                        lambda i, a: _replicate(i["Input"], (3,), 0))
    assert check.net.output_ports == {"Output": (3, 4)}


def test_replicate_size_from_declared_output_last_level(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    layer = ng.ReplicateLayer(level=-1, Output=(2, 3, 5))
    assert layer.input_ports == {"Input": (2, 3)}
    check_layer(layer, {"Input": x}, lambda i, a: _replicate(i["Input"], (5,), 2))


def test_replicate_varying(rng):
    x = rng.standard_normal((4, 2)).astype(np.float32)
    check = check_layer(ng.ReplicateLayer(3, -1), {"Input": x},
                        lambda i, a: _replicate(i["Input"], (3,), 2), varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 2, 3)}


def test_replicate_level_outside_rank():
    with pytest.raises(ng.SpecificationError, match="level"):
        ng.ReplicateLayer(2, level=3, Input=(3,)).output_ports


def test_replicate_output_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ReplicateLayer(2, Input=(3,), Output=(3, 3)).output_ports
