"""ElementwiseLayer: every named function against a NumPy formula, plus callables."""
from __future__ import annotations

import math

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer
from netgraph.layers.elementwise import ELEMENTWISE_FUNCTIONS

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _relu6(x):
    return np.minimum(np.maximum(x, 0.0), 6.0)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Independent NumPy formulas (float64) for every named function.
REFERENCES = {
    "Tanh": np.tanh,
    "Ramp": lambda x: np.maximum(x, 0.0),
    "ReLU": lambda x: np.maximum(x, 0.0),
    "LogisticSigmoid": _sigmoid,
    "Sigmoid": _sigmoid,
    "GELU": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "Swish": lambda x: x * _sigmoid(x),
    "SoftPlus": _softplus,
    "SoftSign": lambda x: x / (1.0 + np.abs(x)),
    "ELU": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "SELU": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    "Mish": lambda x: x * np.tanh(_softplus(x)),
    "HardTanh": lambda x: np.clip(x, -1.0, 1.0),
    "HardSigmoid": lambda x: _relu6(x + 3.0) / 6.0,
    "HardSwish": lambda x: x * _relu6(x + 3.0) / 6.0,
    "Exp": np.exp,
    "Log": np.log,
    "Sqrt": np.sqrt,
    "Square": lambda x: x * x,
    "Abs": np.abs,
    "Sin": np.sin,
    "Cos": np.cos,
    "Erf": _erf,
    "Negative": lambda x: -x,
    "Sign": np.sign,
}
POSITIVE_ONLY = {"Log", "Sqrt"}


def test_every_named_function_has_a_reference():
    assert set(REFERENCES) == set(ELEMENTWISE_FUNCTIONS)


def _data(name: str, rng: np.random.Generator, shape=(2, 5)) -> np.ndarray:
    x = 2.5 * rng.standard_normal(shape)
    if name in POSITIVE_ONLY:
        # far enough from 0 that the harness's perturbed batch copies stay positive
        x = np.abs(x) + 4.0
    return x.astype(np.float32)


def _all_functions_graph(names):
    """One graph with an ElementwiseLayer per function, all fed by the one "Input"."""
    return ng.NetGraph({n: ng.ElementwiseLayer(n) for n in names},
                       [(n, ng.NetPort(n)) for n in names])


@pytest.mark.parametrize("positive", [False, True], ids=["real-line", "positive"])
def test_all_named_functions_check_layer(positive, rng):
    """check_layer (shapes, batch, jit == no-jit, vmap) on every named function at once;
    Log and Sqrt are also checked on the real line's positive part only."""
    names = sorted(ELEMENTWISE_FUNCTIONS)
    if not positive:
        names = [n for n in names if n not in POSITIVE_ONLY]
    graph = _all_functions_graph(names)
    assert set(graph.output_names) == set(names)
    x = _data("Log" if positive else "Tanh", rng, (2, 3))
    check_layer(graph, {"Input": x},
                lambda i, a: {n: REFERENCES[n](i["Input"]) for n in names}, atol=2e-5, rtol=2e-5)


def test_special_points():
    """Values at the kinks and saturation points, where formulas differ most (all functions
    defined on the real line, in one graph)."""
    x = np.array([-7.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 7.0], np.float32)
    names = [n for n in sorted(ELEMENTWISE_FUNCTIONS) if n not in POSITIVE_ONLY]
    out = _all_functions_graph(names).evolve(port_specs={"Input": 9})(x)
    for name in names:
        np.testing.assert_allclose(out[name], REFERENCES[name](x.astype(np.float64)),
                                   atol=2e-6, rtol=2e-6, err_msg=name)


def test_names_in_graph_shortcut():
    """A function name is also a layer shortcut in a NetChain."""
    chain = ng.NetChain(["Tanh", "Square"], Input=3)
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    np.testing.assert_allclose(chain(x), np.tanh(x.astype(np.float64)) ** 2, rtol=1e-6)


@pytest.mark.parametrize("name", ["Tanh", "Ramp"])
def test_varying(name, rng):
    check = check_layer(ng.ElementwiseLayer(name), {"Input": _data(name, rng, (4, 3))},
                        lambda i, a: REFERENCES[name](i["Input"]), varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3)}


def test_scalar_and_rank3(rng):
    check_layer(ng.ElementwiseLayer("Sin"), {"Input": np.float32(0.3)},
                lambda i, a: np.sin(i["Input"]))
    check_layer(ng.ElementwiseLayer("Cos"), {"Input": _data("Cos", rng, (2, 3, 2))},
                lambda i, a: np.cos(i["Input"]))


def test_callable(randn):
    check_layer(ng.ElementwiseLayer(lambda x: 2.0 * x * x - x + 1.0), {"Input": randn(3, 2)},
                lambda i, a: 2.0 * i["Input"] ** 2 - i["Input"] + 1.0, varying=True)


def test_callable_describe():
    def my_function(x):
        return x

    assert "my_function" in ng.ElementwiseLayer(my_function).describe()


# ------------------------------------------------------------------------ errors
def test_unknown_function_lists_allowed_names():
    with pytest.raises(ng.SpecificationError) as info:
        ng.ElementwiseLayer("Tanhh")
    message = str(info.value)
    assert "Tanhh" in message
    for name in ELEMENTWISE_FUNCTIONS:
        assert name in message


def test_non_function_is_rejected():
    with pytest.raises(ng.SpecificationError):
        ng.ElementwiseLayer(3)


def test_integer_input_is_an_element_error():
    with pytest.raises(ng.ElementTypeError):
        ng.ElementwiseLayer("Tanh", Input=(3, "Integer")).output_ports


def test_integer_data_is_an_input_error():
    with pytest.raises(ng.InputDataError):
        ng.ElementwiseLayer("Tanh", Input=3)(np.arange(3))


def test_shape_mismatch_between_ports():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ElementwiseLayer("Tanh", Input=3, Output=4).output_ports
