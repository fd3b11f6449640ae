"""PoolingLayer against an independent NumPy reference (explicit windows): Max, Mean and Total;
1-D, 2-D and 3-D; padding, "Same" and strides; channels first or interleaved; varying
lengths (padding never changes a result); errors and save/load."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def _pads(padding, sizes, kernel, stride):
    d = len(sizes)
    if padding == "Same":
        out = [-(-s // st) for s, st in zip(sizes, stride)]
        total = [max((o - 1) * st + k - s, 0) for o, st, k, s in zip(out, stride, kernel, sizes)]
        return [(t // 2, t - t // 2) for t in total]
    if isinstance(padding, int):
        return [(padding, padding)] * d
    return [p if isinstance(p, tuple) else (p, p) for p in padding]


def pool_reference(x, kernel, stride=1, padding=0, function="Max", interleaving=False):
    """One example: every output position's window, cut to the real positions, reduced."""
    x = np.moveaxis(x, -1, 0) if interleaving else x
    sizes = x.shape[1:]
    d = len(sizes)
    kernel = (kernel,) * d if isinstance(kernel, int) else kernel
    stride = (stride,) * d if isinstance(stride, int) else stride
    pads = _pads(padding, sizes, kernel, stride)
    out = [(s + lo + hi - k) // st + 1 for s, (lo, hi), k, st in zip(sizes, pads, kernel, stride)]
    y = np.zeros((x.shape[0], *out))
    for index in itertools.product(*(range(o) for o in out)):
        ranges = []
        for i, (o, (lo, _), k, st) in enumerate(zip(index, pads, kernel, stride)):
            start = o * st - lo
            ranges.append([p for p in range(start, start + k) if 0 <= p < sizes[i]])
        cells = [x[(slice(None), *pos)] for pos in itertools.product(*ranges)]
        if not cells:
            continue
        cells = np.stack(cells, axis=-1)
        y[(slice(None), *index)] = {"Max": np.max, "Mean": np.mean, "Total": np.sum}[function](cells, axis=-1)
    return np.moveaxis(y, 0, -1) if interleaving else y


def _check(rng, shape, varying=False, **options):
    layer = ng.PoolingLayer(**options)
    x = rng.standard_normal(shape).astype(np.float32)
    return check_layer(layer, {"Input": x}, lambda i, a: pool_reference(i["Input"], **options),
                       varying=varying)


@pytest.mark.parametrize("function, kernel, stride, padding", [
    ("Max", 3, 2, 0), ("Mean", 3, 2, "Same"), ("Total", 2, 1, "Same"), ("Max", 2, 3, "Same"),
    ("Mean", 3, 1, (0, 2)), ("Max", 2, 3, 1)])
def test_1d_interleaved_with_varying_length(rng, function, kernel, stride, padding):
    padding = (padding,) if isinstance(padding, tuple) else padding
    _check(rng, (7, 3), varying=True, kernel=kernel, stride=stride, padding=padding,
           function=function, interleaving=True)


@pytest.mark.parametrize("function, padding", [("Max", 0), ("Mean", "Same"), ("Max", ((1, 0), (0, 1)))])
def test_2d_interleaved_with_varying_rows(rng, function, padding):
    check = _check(rng, (5, 6, 2), varying=True, kernel=(2, 3), stride=2, padding=padding,
                   function=function, interleaving=True)
    assert check.variants["varying"].output_ports["Output"][0] == "Varying"


@pytest.mark.parametrize("function", ["Max", "Total"])
def test_channels_first_2d_and_3d(rng, function):
    _check(rng, (2, 5, 4), kernel=2, stride=(1, 2), function=function)
    _check(rng, (2, 4, 3, 5), kernel=(2, 2, 3), stride=2, padding="Same", function=function)


def test_output_size_rule_and_default_stride():
    assert ng.PoolingLayer(2, Input=(3, 6)).output_ports == {"Output": (3, 5)}  # stride 1
    assert ng.PoolingLayer(3, 2, padding="Same", Input=(3, 7)).output_ports == {"Output": (3, 4)}
    assert ng.PoolingLayer((2, 2), 2, interleaving=True, Output=(3, 4, 5)).output_ports == {"Output": (3, 4, 5)}
    stride_1_same = ng.PoolingLayer(3, padding="Same", interleaving=True, Input=("Varying", 4))
    assert stride_1_same.output_ports == {"Output": ("Varying", 4)}


def test_a_list_of_sequences_equals_each_alone(rng):
    net = ng.PoolingLayer(3, 2, padding="Same", function="Mean", interleaving=True, Input=("Varying", 2))
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (5, 1, 8)]
    for out, seq in zip(net(seqs), seqs):
        np.testing.assert_allclose(out, pool_reference(seq, 3, 2, "Same", "Mean", True), rtol=1e-6, atol=1e-6)


def test_channels_first_over_a_varying_axis_made_by_a_transpose(rng):
    net = ng.NetChain([ng.TransposeLayer((1, 0)), ng.PoolingLayer(3, 2, padding="Same", function="Mean")],
                      Input=("Varying", 3))
    assert net.output_ports == {"Output": (3, "Varying")}
    seqs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (6, 1, 3)]
    for out, seq in zip(net(seqs), seqs):
        np.testing.assert_allclose(out, pool_reference(seq.T, 3, 2, "Same", "Mean"), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("function", ["Max", "Mean", "Total"])
def test_gradients_flow_to_real_positions_only(rng, function):
    net = ng.PoolingLayer(3, 2, padding="Same", function=function, interleaving=True, Input=("Varying", 2))
    apply = ng.lower(net)
    x = jnp.asarray(rng.standard_normal((7, 2)), jnp.float32)

    def total(x):
        return jnp.sum(apply({}, {"Input": x}, lengths={"Input": jnp.int32(5)})["Output"][:3])

    grad = jax.jit(jax.grad(total))(x)
    np.testing.assert_array_equal(grad[5:], 0)  # padding gets no gradient
    jax.test_util.check_grads(lambda v: total(jnp.concatenate([v, x[5:]])), (x[:5],), order=1,
                              modes=["rev"], eps=1e-2, atol=2e-2, rtol=2e-2)


def test_pooling_errors():
    with pytest.raises(ng.ShapeMismatchError, match="rank-2, rank-3 or rank-4"):
        ng.PoolingLayer(2, Input=(2, 3, 3, 3, 3))
    with pytest.raises(ng.ShapeMismatchError, match="inconsistent ranks"):
        ng.PoolingLayer((2, 2), Input=(3, 4))
    with pytest.raises(ng.ShapeMismatchError, match="empty or negative"):
        ng.PoolingLayer(5, Input=(2, 3))
    with pytest.raises(ng.ShapeMismatchError, match="stride"):
        ng.PoolingLayer((2, 2), (1, 2, 3), Input=(2, 5, 5))
    with pytest.raises(ng.SpecificationError, match="function"):
        ng.PoolingLayer(2, function="Median")
    with pytest.raises(ng.SpecificationError, match="kernel"):
        ng.PoolingLayer(0)


def test_pooling_saved_and_loaded(tmp_path, rng):
    net = ng.PoolingLayer((2, 2), 2, padding="Same", function="Mean", interleaving=True, Input=(5, 5, 2))
    ng.save(net, tmp_path / "pool.npz")
    back = ng.load(tmp_path / "pool.npz")
    assert back.options == net.options
    x = rng.standard_normal((5, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(back(x), net(x))
