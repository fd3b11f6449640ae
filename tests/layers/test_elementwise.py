"""ElementwiseLayer: every named function against a NumPy formula, plus callables."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

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

_relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
_elu = lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))  # noqa: E731
_selu = lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))  # noqa: E731
_gelu = lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))  # noqa: E731

# Independent NumPy / SciPy formulas (float64) for every name, as Wolfram's documentation
# states them, each with the interval its test data comes from (its real domain).
LINE = (-6.0, 6.0)
REFERENCES = {
    "RectifiedLinearUnit": (_relu, LINE), "ReLU": (_relu, LINE), "Ramp": (_relu, LINE),
    "ExponentialLinearUnit": (_elu, LINE), "ELU": (_elu, LINE),
    "ScaledExponentialLinearUnit": (_selu, LINE), "SELU": (_selu, LINE),
    "GaussianErrorLinearUnit": (_gelu, LINE), "GELU": (_gelu, LINE),
    "Swish": (lambda x: x * _sigmoid(x), LINE),
    "HardSwish": (lambda x: x * _relu6(x + 3.0) / 6.0, LINE),
    "Mish": (lambda x: x * np.tanh(_softplus(x)), LINE),
    "SoftSign": (lambda x: x / (1.0 + np.abs(x)), LINE),
    "SoftPlus": (_softplus, LINE),
    "HardTanh": (lambda x: np.clip(x, -1.0, 1.0), LINE),
    "HardSigmoid": (lambda x: np.clip((x + 1.0) / 2.0, 0.0, 1.0), LINE),
    "Sigmoid": (_sigmoid, LINE), "LogisticSigmoid": (_sigmoid, LINE),
    "Tan": (np.tan, (-1.3, 1.3)), "Tanh": (np.tanh, LINE),
    "ArcTan": (np.arctan, LINE), "ArcTanh": (np.arctanh, (-0.9, 0.9)),
    "Sin": (np.sin, LINE), "Sinh": (np.sinh, (-4.0, 4.0)),
    "ArcSin": (np.arcsin, (-0.95, 0.95)), "ArcSinh": (np.arcsinh, LINE),
    "Cos": (np.cos, LINE), "Cosh": (np.cosh, (-4.0, 4.0)),
    "ArcCos": (np.arccos, (-0.95, 0.95)), "ArcCosh": (np.arccosh, (1.1, 6.0)),
    "Cot": (lambda x: np.cos(x) / np.sin(x), (0.2, 2.9)),
    "Coth": (lambda x: np.cosh(x) / np.sinh(x), (0.2, 4.0)),
    "ArcCot": (lambda x: np.arctan(1.0 / x), LINE),
    "ArcCoth": (lambda x: 0.5 * np.log((x + 1.0) / (x - 1.0)), (1.2, 6.0)),
    "Csc": (lambda x: 1.0 / np.sin(x), (0.2, 2.9)), "Csch": (lambda x: 1.0 / np.sinh(x), (0.2, 4.0)),
    "ArcCsc": (lambda x: np.arcsin(1.0 / x), (1.2, 6.0)),
    "ArcCsch": (lambda x: np.arcsinh(1.0 / x), (0.2, 6.0)),
    "Sec": (lambda x: 1.0 / np.cos(x), (-1.3, 1.3)), "Sech": (lambda x: 1.0 / np.cosh(x), LINE),
    "ArcSec": (lambda x: np.arccos(1.0 / x), (1.2, 6.0)),
    "ArcSech": (lambda x: np.arccosh(1.0 / x), (0.1, 0.9)),
    "Haversine": (lambda x: np.sin(x / 2.0) ** 2, LINE),
    "InverseHaversine": (lambda x: 2.0 * np.arcsin(np.sqrt(x)), (0.05, 0.95)),
    "Gudermannian": (lambda x: np.arctan(np.sinh(x)), LINE),
    "InverseGudermannian": (lambda x: np.arcsinh(np.tan(x)), (-1.3, 1.3)),
    "Log": (np.log, (0.1, 6.0)), "Exp": (np.exp, (-4.0, 4.0)), "Sqrt": (np.sqrt, (0.1, 6.0)),
    "CubeRoot": (np.cbrt, LINE), "Abs": (np.abs, LINE),
    "Gamma": (scipy.special.gamma, (0.3, 5.0)), "LogGamma": (scipy.special.gammaln, (0.3, 6.0)),
    "Erf": (_erf, LINE), "InverseErf": (scipy.special.erfinv, (-0.95, 0.95)),
    "Erfc": (scipy.special.erfc, LINE), "InverseErfc": (scipy.special.erfcinv, (0.05, 1.95)),
    "Round": (np.round, LINE), "Floor": (np.floor, LINE), "Ceiling": (np.ceil, LINE),
    "Sign": (np.sign, LINE),
    "FractionalPart": (lambda x: np.sign(x) * (np.abs(x) % 1.0), LINE),
    "IntegerPart": (lambda x: np.sign(x) * np.floor(np.abs(x)), LINE),
    "Unitize": (lambda x: (x != 0).astype(np.float64), LINE),
    "KroneckerDelta": (lambda x: (x == 0).astype(np.float64), LINE),
    "Square": (lambda x: x * x, LINE), "Negative": (lambda x: -x, LINE),
}
WHOLE_LINE = sorted(n for n, (_, domain) in REFERENCES.items() if domain == LINE)


def test_every_named_function_has_a_reference():
    assert set(REFERENCES) == set(ELEMENTWISE_FUNCTIONS)


def _reference(name, x):
    with np.errstate(all="ignore"):
        return REFERENCES[name][0](np.asarray(x, np.float64))


def _data(name: str, rng: np.random.Generator, shape=(2, 5)) -> np.ndarray:
    low, high = REFERENCES[name][1]
    return rng.uniform(low, high, shape).astype(np.float32)


def _all_functions_graph(names):
    """One graph with an ElementwiseLayer per function, all fed by the one "Input"."""
    return ng.NetGraph({n: ng.ElementwiseLayer(n) for n in names},
                       [(n, ng.NetPort(n)) for n in names])


CHECKED = ["ELU", "GELU", "HardSigmoid", "HardSwish", "Mish", "Round", "SELU", "SoftPlus",
           "Swish", "Unitize"]


def test_named_functions_check_layer(rng):
    """check_layer (shapes, batch, jit == no-jit, vmap) on a set of whole-line functions at
    once (the harness perturbs the batch, so no domain is needed); the numbers of every
    name are checked on its domain below."""
    graph = _all_functions_graph(CHECKED)
    x = (2.5 * rng.standard_normal((2, 3))).astype(np.float32)
    check_layer(graph, {"Input": x}, lambda i, a: {n: _reference(n, i["Input"]) for n in CHECKED},
                atol=2e-5, rtol=2e-5)


DOMAINS = sorted({domain for _, domain in REFERENCES.values()})


@pytest.mark.parametrize("domain", DOMAINS, ids=repr)
def test_each_function_on_its_domain(domain, rng):
    """Every name against its formula on data from its real domain (one graph per domain)."""
    names = sorted(n for n, (_, d) in REFERENCES.items() if d == domain)
    x = rng.uniform(*domain, 16).astype(np.float32)
    out = _all_functions_graph(names).evolve(port_specs={"Input": 16})(x)
    out = out if isinstance(out, dict) else {names[0]: out}
    for name in names:
        np.testing.assert_allclose(out[name], _reference(name, x), atol=1e-5, rtol=1e-4,
                                   err_msg=name)


def test_special_points():
    """Values at the kinks and saturation points, where formulas differ most (all functions
    defined on the real line, in one graph); HardSigmoid is Wolfram's Clip[(x+1)/2, {0,1}]."""
    x = np.array([-7.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.5, 3.0, 7.0], np.float32)
    names = [n for n in WHOLE_LINE if n != "ArcCot"]
    out = _all_functions_graph(names).evolve(port_specs={"Input": x.size})(x)
    for name in names:
        np.testing.assert_allclose(out[name], _reference(name, x), atol=2e-6, rtol=2e-6,
                                   err_msg=name)
    np.testing.assert_array_equal(out["HardSigmoid"][[1, 2, 4, 6, 9]], [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(out["Round"][[3, 5, 7, 8]], [-0.0, 0.0, 2.0, 2.0])  # to even


def test_arc_cot_at_zero():
    """Wolfram: ArcCot[0] = Pi/2 (and ArcCot is odd elsewhere)."""
    out = ng.ElementwiseLayer("ArcCot", Input=3)(np.array([0.0, 1.0, -1.0], np.float32))
    np.testing.assert_allclose(out, [math.pi / 2, math.pi / 4, -math.pi / 4], rtol=1e-6)


def test_aliases_are_the_same_function():
    for alias, name in [("ReLU", "RectifiedLinearUnit"), ("ELU", "ExponentialLinearUnit"),
                        ("SELU", "ScaledExponentialLinearUnit"), ("GELU", "GaussianErrorLinearUnit"),
                        ("Ramp", "RectifiedLinearUnit"), ("Sigmoid", "LogisticSigmoid")]:
        assert ELEMENTWISE_FUNCTIONS[alias] is ELEMENTWISE_FUNCTIONS[name] or np.allclose(
            ELEMENTWISE_FUNCTIONS[alias](np.linspace(-3, 3, 7)),
            ELEMENTWISE_FUNCTIONS[name](np.linspace(-3, 3, 7)))


def test_named_function_saves_and_loads(tmp_path):
    layer = ng.ElementwiseLayer("InverseGudermannian", Input=3)
    ng.save(layer, tmp_path / "f.npz")
    loaded = ng.load(tmp_path / "f.npz")
    x = np.array([-0.5, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(loaded(x), layer(x))


def test_names_in_graph_shortcut():
    """A function name is also a layer shortcut in a NetChain."""
    chain = ng.NetChain(["Tanh", "Square"], Input=3)
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    np.testing.assert_allclose(chain(x), np.tanh(x.astype(np.float64)) ** 2, rtol=1e-6)


@pytest.mark.parametrize("name", ["Tanh", "Ramp"])
def test_varying(name, rng):
    check = check_layer(ng.ElementwiseLayer(name), {"Input": _data(name, rng, (4, 3))},
                        lambda i, a: _reference(name, i["Input"]), varying=True)
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
    assert "Tanhh" in message and "did you mean 'Tanh'?" in message
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
