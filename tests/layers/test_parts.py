"""Part layers: PartLayer, PaddingLayer, AppendLayer, PrependLayer, UnitVectorLayer,
OrderingLayer - NumPy references, varying lengths (padding never changes a result), shape
inference both ways, save/load and errors."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from harness import check_layer
from netgraph.layers.parts import PartSpan
from netgraph.shapes import Varying

JUNK = 7.0


def through_padding(layer, data, pad=3):
    """``ng.lower(layer)`` on ``data`` (one example) padded with junk along the first axis
    of every port whose first dimension varies, given the true lengths."""
    lengths, padded = {}, {}
    for name, value in data.items():
        dims = layer.inference.port((), name).dims
        if dims and isinstance(dims[0], Varying):
            lengths[dims[0].symbol] = jnp.asarray(value.shape[0], jnp.int32)
            fill = JUNK if np.issubdtype(value.dtype, np.floating) else 0
            value = np.concatenate([value, np.full((pad, *value.shape[1:]), fill, value.dtype)])
        padded[name] = jnp.asarray(value)
    return {k: np.asarray(v) for k, v in
            ng.lower(layer)(ng.params_of(layer), padded, lengths=lengths).items()}


def _f(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------- PartLayer
PARTS = [0, -1, 2, slice(1, None), slice(None, -1), slice(None, None, -1), slice(3, 0, -2),
         slice(-3, None), [0, 3, 1], [-1, 0], ng.All, (ng.All, 1), (slice(0, 2), -1),
         (1, [2, 0]), (-2, slice(None, None, 2))]


def _numpy_part(part):
    if part is ng.All:
        return slice(None)
    if isinstance(part, tuple):
        return tuple(_numpy_part(p) for p in part)
    return part


@pytest.mark.parametrize("part", PARTS, ids=repr)
def test_part_fixed(part, rng):
    x = _f(rng, 4, 3)
    expected = x[_numpy_part(part)]
    layer = ng.PartLayer(part, Input=x.shape)
    assert layer.output_ports["Output"] == expected.shape
    np.testing.assert_array_equal(layer(x), expected)


@pytest.mark.parametrize("part", [slice(1, None), (slice(None, None, -1), [0, -1])], ids=repr)
def test_part_check_layer(part, rng):
    check_layer(ng.PartLayer(part), {"Input": _f(rng, 4, 3)},
                lambda i, a: i["Input"][_numpy_part(part)], varying=True)


VARYING_PARTS = [p for p in PARTS if p not in (2, (slice(0, 2), -1), (-2, slice(None, None, 2)))]


@pytest.mark.parametrize("part", VARYING_PARTS, ids=repr)
def test_part_varying_padding_never_changes_a_result(part, rng):
    """Every part of a varying level, counted within the true length: padded == exact, and
    a list of examples of different lengths gives each its own part."""
    layer = ng.PartLayer(part, Input=("Varying", 3))
    examples = [_f(rng, n, 3) for n in (4, 6)]
    for x, out in zip(examples, layer(examples)):
        np.testing.assert_array_equal(out, x[_numpy_part(part)])
    expected = examples[0][_numpy_part(part)]
    got = through_padding(layer, {"Input": examples[0]})["Output"]
    np.testing.assert_array_equal(got[tuple(slice(0, n) for n in expected.shape)], expected)


def test_part_varying_index_past_the_true_end_gives_zeros():
    layer = ng.PartLayer(3, Input=("Varying", 2))
    np.testing.assert_array_equal(layer(np.ones((2, 2), np.float32)), np.zeros(2, np.float32))
    np.testing.assert_array_equal(layer(np.ones((4, 2), np.float32)), np.ones(2, np.float32))


def test_part_span_counts_match_python():
    """The traced slice arithmetic equals Python's slice rules for every length."""
    for start in (None, -4, -1, 0, 2, 5):
        for stop in (None, -5, -1, 0, 1, 3, 7):
            for step in (1, 2, -1, -3):
                span = PartSpan(start=start, stop=stop, step=step)
                for n in range(7):
                    first, count = span.start_and_count(jnp.asarray(n, jnp.int32))
                    expected = list(range(n))[span.as_slice()]
                    assert int(count) == len(expected), (span, n)
                    if expected:
                        assert int(first) == expected[0], (span, n)


def test_part_infers_backwards():
    assert ng.PartLayer(0, Output=(3,)).input_ports == {"Input": (ng.Automatic, 3)}
    assert ng.PartLayer((ng.All, slice(0, 2)), Output=(5, 2, 4)).input_ports == {
        "Input": (5, ng.Automatic, 4)}


def test_part_keeps_integers():
    layer = ng.PartLayer(slice(1, None), Input=("Varying", "Integer"))
    np.testing.assert_array_equal(layer(np.array([4, 5, 6])), [5, 6])


def test_part_saves_and_loads(tmp_path, rng):
    layer = ng.PartLayer((slice(None, None, -1), [1, 0], -1), Input=(3, 2, 2))
    ng.save(layer, tmp_path / "p.npz")
    loaded = ng.load(tmp_path / "p.npz")
    x = _f(rng, 3, 2, 2)
    np.testing.assert_array_equal(loaded(x), layer(x))
    assert loaded.describe() == layer.describe() == "PartLayer[::-1, [1, 0], -1]"


@pytest.mark.parametrize("part, shape, match", [
    (3, (3, 2), "position 3"), (-4, (3,), "position -4"), ([0, 5], (3,), "position 5"),
    ((0, 0, 0), (3, 2), "names 3 level"), (slice(2, 1), (3,), "selects nothing")], ids=repr)
def test_part_errors(part, shape, match):
    with pytest.raises(ng.ShapeMismatchError, match=match):
        ng.PartLayer(part, Input=shape).output_ports


@pytest.mark.parametrize("part", [slice(0, 2, 0), [], (), "first", 1.5], ids=repr)
def test_part_bad_specs(part):
    with pytest.raises(ng.SpecificationError):
        ng.PartLayer(part)


# ----------------------------------------------------------------------- PaddingLayer
METHODS = [0.0, -2.5, "Fixed", "Reflected", "Periodic"]
_NUMPY = {"Fixed": "edge", "Reflected": "reflect", "Periodic": "wrap"}


def _numpy_pad(x, sizes, method):
    widths = list(sizes) + [(0, 0)] * (x.ndim - len(sizes))
    if isinstance(method, str):
        return np.pad(x, widths, mode=_NUMPY[method])
    return np.pad(x, widths, constant_values=method)


@pytest.mark.parametrize("method", METHODS, ids=repr)
def test_padding_fixed(method, rng):
    x = _f(rng, 3, 4)
    for sizes in [((1, 2),), ((0, 1), (2, 0)), ((4, 5), (1, 1))]:
        layer = ng.PaddingLayer(sizes, padding=method, Input=x.shape)
        expected = _numpy_pad(x, sizes, method)
        assert layer.output_ports["Output"] == expected.shape
        np.testing.assert_allclose(layer(x), expected)


@pytest.mark.parametrize("method", METHODS, ids=repr)
def test_padding_varying_level(method, rng):
    """Padding a varying level surrounds the true elements (large pads reflect or wrap more
    than once): padded inputs give the exact result, for each length of a list."""
    sizes = ((2, 5), (1, 0))
    layer = ng.PaddingLayer(sizes, padding=method, Input=("Varying", 3))
    assert layer.output_ports == {"Output": ("Varying", 4)}
    examples = [_f(rng, n, 3) for n in (1, 2, 4)]
    for x, out in zip(examples, layer(examples)):
        expected = _numpy_pad(x, sizes, method)
        np.testing.assert_allclose(out, expected)
        np.testing.assert_allclose(through_padding(layer, {"Input": x})["Output"][:len(expected)],
                                   expected)


def test_padding_check_layer(rng):
    check_layer(ng.PaddingLayer(((0, 0), (1, 2)), padding="Reflected"), {"Input": _f(rng, 4, 3)},
                lambda i, a: np.pad(i["Input"], ((0, 0), (1, 2)), mode="reflect"), varying=True)


def test_padding_empty_varying_example_gives_the_constant_or_zeros():
    x = np.zeros((0, 2), np.float32)
    out = ng.PaddingLayer(((1, 1),), padding=3.0, Input=("Varying", 2))(x)
    np.testing.assert_array_equal(out, np.full((2, 2), 3.0, np.float32))
    out = ng.PaddingLayer(((1, 1),), padding="Periodic", Input=("Varying", 2))(x)
    np.testing.assert_array_equal(out, np.zeros((2, 2), np.float32))


def test_padding_infers_backwards_and_keeps_integers():
    assert ng.PaddingLayer(((1, 2),), Output=(6, 3)).input_ports == {"Input": (3, 3)}
    layer = ng.PaddingLayer(((1, 0),), padding=9, Input=(2, "Integer"))
    np.testing.assert_array_equal(layer(np.array([4, 5])), [9, 4, 5])


def test_padding_saves_and_loads(tmp_path, rng):
    layer = ng.PaddingLayer([[1, 2], [0, 1]], padding="Periodic", Input=(3, 2))
    ng.save(layer, tmp_path / "p.npz")
    x = _f(rng, 3, 2)
    np.testing.assert_array_equal(ng.load(tmp_path / "p.npz")(x), layer(x))


@pytest.mark.parametrize("sizes, padding", [(((1, -1),), 0), ((), 0), (((1, 2, 3),), 0),
                                            (((1, 1),), "Mirror")], ids=repr)
def test_padding_bad_options(sizes, padding):
    with pytest.raises(ng.SpecificationError):
        ng.PaddingLayer(sizes, padding=padding)


def test_padding_output_smaller_than_the_padding():
    with pytest.raises(ng.ShapeMismatchError, match="input of size -1"):
        ng.PaddingLayer(((1, 2),), Output=2).input_ports


def test_padding_rank_too_small():
    with pytest.raises(ng.ShapeMismatchError, match="rank >= 2"):
        ng.PaddingLayer(((1, 1), (1, 1)), Input=3).output_ports


# -------------------------------------------------------------- Append, Prepend
@pytest.mark.parametrize("cls, join", [(ng.AppendLayer, lambda x, e: np.concatenate([x, e[None]])),
                                       (ng.PrependLayer, lambda x, e: np.concatenate([e[None], x]))])
def test_append_prepend(cls, join, rng):
    data = {"Input": _f(rng, 3, 2), "Element": _f(rng, 2)}
    check = check_layer(cls(), data, lambda i, a: join(i["Input"], i["Element"]), varying={"Input"})
    assert check.net.output_ports == {"Output": (4, 2)}
    var = check.variants["varying"]
    assert var.output_ports == {"Output": ("Varying", 2)}
    for n in (0, 1, 3):  # padding never changes a result; an empty input gives the element
        x = _f(rng, n, 2)
        expected = join(x, data["Element"])
        got = through_padding(var, {"Input": x, "Element": data["Element"]})["Output"]
        np.testing.assert_array_equal(got[:n + 1], expected)
    outs = var({"Input": [_f(rng, 1, 2), _f(rng, 4, 2)], "Element": [data["Element"]] * 2})
    assert [o.shape for o in outs] == [(2, 2), (5, 2)]


def test_append_scalar_element_and_integers():
    layer = ng.AppendLayer(Input=(3, "Integer"))
    assert layer.input_ports == {"Input": (3, "Integer"), "Element": ("Integer",)}
    np.testing.assert_array_equal(layer({"Input": np.array([1, 2, 3]), "Element": np.array(9)}),
                                  [1, 2, 3, 9])


def test_append_infers_backwards():
    assert ng.PrependLayer(Output=(5, 2)).input_ports == {"Input": (4, 2), "Element": (2,)}


def test_append_errors():
    with pytest.raises(ng.ShapeMismatchError):
        ng.AppendLayer(Input=(3, 2), Element=3).output_ports
    with pytest.raises(ng.ShapeMismatchError, match="rank >= 1"):
        ng.AppendLayer(Input=()).output_ports
    with pytest.raises(ng.ElementTypeError):
        ng.PrependLayer(Input=(3, "Integer"), Element="Real").output_ports


# ------------------------------------------------------------------ UnitVectorLayer
def test_unit_vector(rng):
    layer = ng.UnitVectorLayer(4, Input=("Varying", ng.Restricted("Integer", 4)))
    check_layer(layer, {"Input": rng.integers(0, 4, 5)}, lambda i, a: np.eye(4)[i["Input"]],
                varying=True)


def test_unit_vector_infers_n_and_rank():
    layer = ng.UnitVectorLayer(Input=(2, 3, ng.Restricted("Integer", 5)))
    assert layer.output_ports == {"Output": (2, 3, 5)}
    out = layer(np.array([[0, 4, 2], [1, 1, 3]]))
    np.testing.assert_array_equal(out, np.eye(5, dtype=np.float32)[[[0, 4, 2], [1, 1, 3]]])
    assert ng.UnitVectorLayer(3, Input="Integer")(np.array(1)).tolist() == [0.0, 1.0, 0.0]


def test_unit_vector_errors():
    with pytest.raises(ng.InputDataError):
        ng.UnitVectorLayer(3, Input=2)(np.array([0, 3]))
    with pytest.raises(ng.ElementTypeError):
        ng.UnitVectorLayer(3, Input=(2, "Real")).output_ports
    with pytest.raises(ng.ShapeMismatchError):
        ng.UnitVectorLayer(3, Input=(2, ng.Restricted("Integer", 4))).output_ports


# -------------------------------------------------------------------- OrderingLayer
def _ordering(x, n):
    order = np.argsort(x, kind="stable")
    if n is ng.All:
        return order
    return order[:n] if n > 0 else order[len(order) + n:]


@pytest.mark.parametrize("n", [ng.All, 2, -2, 5, -5], ids=repr)
def test_ordering_fixed(n, rng):
    x = np.array([3.0, -1.0, 2.0, 2.0, 0.5], np.float32)  # a tie: stable order
    layer = ng.OrderingLayer(n, Input=5)
    np.testing.assert_array_equal(layer(x), _ordering(x, n))
    assert layer.output_ports == {"Output": (5 if n is ng.All else abs(n), "Integer")}


def test_ordering_check_layer(rng):
    check_layer(ng.OrderingLayer(-3), {"Input": _f(rng, 6)},
                lambda i, a: _ordering(i["Input"], -3), varying=True)


@pytest.mark.parametrize("n", [ng.All, 2, -2, 4], ids=repr)
def test_ordering_varying(n, rng):
    """Only the real elements are ordered; k beyond the true length gives fewer positions."""
    layer = ng.OrderingLayer(n, Input="Varying")
    examples = [_f(rng, k) for k in (1, 3, 6)]
    for x, out in zip(examples, layer(examples)):
        k = len(x) if n is ng.All else min(abs(n), len(x))
        expected = _ordering(x, n if n is ng.All or abs(n) <= len(x) else np.sign(n) * len(x))
        assert out.shape == (k,)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(through_padding(layer, {"Input": x})["Output"][:k], expected)


def test_ordering_errors():
    with pytest.raises(ng.SpecificationError, match="0"):
        ng.OrderingLayer(0)
    with pytest.raises(ng.ShapeMismatchError, match="4 positions"):
        ng.OrderingLayer(4, Input=3).output_ports
    with pytest.raises(ng.ShapeMismatchError):
        ng.OrderingLayer(Input=(3, 2)).output_ports


def test_ordering_saves_and_loads(tmp_path, rng):
    layer = ng.OrderingLayer(-2, Input="Varying")
    ng.save(layer, tmp_path / "o.npz")
    x = _f(rng, 5)
    np.testing.assert_array_equal(ng.load(tmp_path / "o.npz")(x), layer(x))
