"""ThreadingLayer and TotalLayer: element-by-element combination, with size-1 broadcasting."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer

NUMPY = {
    "Plus": lambda *xs: functools.reduce(np.add, xs),
    "Times": lambda *xs: functools.reduce(np.multiply, xs),
    "Max": lambda *xs: functools.reduce(np.maximum, xs),
    "Min": lambda *xs: functools.reduce(np.minimum, xs),
    "Subtract": np.subtract,
    "Divide": np.divide,
    "Power": np.power,
}


def _inputs(rng, shapes, positive=False):
    out = {}
    for k, shape in enumerate(shapes):
        x = rng.standard_normal(shape)
        if positive:
            x = np.abs(x) + 3.0  # bases and denominators away from 0 under the batch noise
        out[f"Input{k + 1}"] = x.astype(np.float32)
    return out


def _reference(function, count):
    f = NUMPY[function]
    return lambda i, a: f(*(i[f"Input{k + 1}"] for k in range(count)))


@pytest.mark.parametrize("function", sorted(NUMPY))
def test_binary(function, rng):
    data = _inputs(rng, [(2, 3), (2, 3)], positive=function in ("Divide", "Power"))
    check = check_layer(ng.ThreadingLayer(function), data, _reference(function, 2),
                        atol=1e-4, rtol=1e-5)
    assert check.net.output_ports == {"Output": (2, 3)}


@pytest.mark.parametrize("function", ["Plus", "Times", "Max", "Min"])
def test_three_inputs(function, rng):
    layer = ng.ThreadingLayer(function, inputs=3)
    assert layer.input_names == ("Input1", "Input2", "Input3")
    check_layer(layer, _inputs(rng, [(4,), (4,), (4,)]), _reference(function, 3))


@pytest.mark.parametrize(
    "function, shapes, out",
    [
        ("Plus", [(3, 1), (1, 4)], (3, 4)),
        ("Subtract", [(1, 4), (3, 4)], (3, 4)),
        ("Times", [(2, 1, 3), (2, 4, 1)], (2, 4, 3)),
        ("Max", [(1,), (5,)], (5,)),
    ],
)
def test_size_one_broadcasting(function, shapes, out, rng):
    check = check_layer(ng.ThreadingLayer(function), _inputs(rng, shapes), _reference(function, 2))
    assert check.net.output_ports == {"Output": out}


def test_three_inputs_broadcasting(rng):
    check = check_layer(ng.ThreadingLayer("Plus", inputs=3),
                        _inputs(rng, [(2, 1), (1, 3), (2, 3)]), _reference("Plus", 3))
    assert check.net.output_ports == {"Output": (2, 3)}


def test_broadcasting_false(rng):
    check = check_layer(ng.ThreadingLayer("Times", broadcasting=False),
                        _inputs(rng, [(2, 3), (2, 3)]), _reference("Times", 2))
    assert check.net.output_ports == {"Output": (2, 3)}


def test_broadcasting_false_infers_equal_shapes():
    layer = ng.ThreadingLayer("Plus", broadcasting=False, Input1=(2, 3))
    assert layer.input_ports == {"Input1": (2, 3), "Input2": (2, 3)}
    assert layer.output_ports == {"Output": (2, 3)}


def test_callable(rng):
    check_layer(ng.ThreadingLayer(lambda a, b: a * b + a), _inputs(rng, [(2, 3), (2, 3)]),
                lambda i, a: i["Input1"] * i["Input2"] + i["Input1"])


def test_varying(rng):
    check = check_layer(ng.ThreadingLayer("Plus"), _inputs(rng, [(4, 3), (4, 3)]),
                        _reference("Plus", 2), varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3)}


def test_varying_with_broadcast_partner(rng):
    check = check_layer(ng.ThreadingLayer("Subtract"), _inputs(rng, [(4, 3), (1, 3)]),
                        _reference("Subtract", 2), varying={"Input1"})
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3)}


def test_scalars(rng):
    data = {"Input1": np.float32(1.5), "Input2": np.float32(-0.25)}
    check_layer(ng.ThreadingLayer("Times"), data, _reference("Times", 2))


# ------------------------------------------------------------------------ TotalLayer
def test_total_two(rng):
    check = check_layer(ng.TotalLayer(), _inputs(rng, [(2, 3), (2, 3)]), _reference("Plus", 2))
    assert check.net.output_ports == {"Output": (2, 3)}


def test_total_three_varying(rng):
    check = check_layer(ng.TotalLayer(inputs=3), _inputs(rng, [(4, 2), (4, 2), (4, 2)]),
                        _reference("Plus", 3), varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 2)}


def test_total_infers_shapes_from_one_input():
    layer = ng.TotalLayer(inputs=3, Input2=(2, 5))
    assert layer.input_ports == {"Input1": (2, 5), "Input2": (2, 5), "Input3": (2, 5)}


def test_total_does_not_broadcast():
    with pytest.raises(ng.ShapeMismatchError):
        ng.TotalLayer(Input1=(3, 1), Input2=(3, 4)).output_ports


# ------------------------------------------------------------------------ errors
def test_rank_mismatch():
    with pytest.raises(ng.ShapeMismatchError, match="rank"):
        ng.ThreadingLayer("Plus", Input1=3, Input2=(3, 4)).output_ports


def test_incompatible_sizes():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ThreadingLayer("Plus", Input1=3, Input2=4).output_ports


def test_broadcasting_false_rejects_size_one():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ThreadingLayer("Plus", broadcasting=False, Input1=(3, 1), Input2=(3, 4)).output_ports


@pytest.mark.parametrize("function", ["Subtract", "Divide", "Power"])
def test_binary_functions_take_two_inputs(function):
    with pytest.raises(ng.SpecificationError, match="2 inputs"):
        ng.ThreadingLayer(function, inputs=3)


def test_unknown_function_lists_allowed_names():
    with pytest.raises(ng.SpecificationError) as info:
        ng.ThreadingLayer("Foo")
    for name in NUMPY:
        assert name in str(info.value)


def test_integer_input_is_an_element_error():
    with pytest.raises(ng.ElementTypeError):
        ng.ThreadingLayer("Plus", Input1=(3, "Integer"), Input2=3).output_ports
