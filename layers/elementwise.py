"""ElementwiseLayer: a scalar function applied to every element.

====== ========== ============
port   shape      notes
====== ========== ============
Input  any        any rank, may vary
Output = Input
====== ========== ============

``function``: a name or a callable on JAX arrays (a callable cannot be saved to a file).
The names are Wolfram's (see :data:`ELEMENTWISE_FUNCTIONS`), with Wolfram's formulas:

* the named activations "RectifiedLinearUnit" / "ReLU" (Ramp), "ExponentialLinearUnit" /
  "ELU", "ScaledExponentialLinearUnit" / "SELU", "GaussianErrorLinearUnit" / "GELU" (the exact
  form ``0.5 x (1 + erf(x / sqrt 2))``), "Swish", "HardSwish" (``x min(max(x+3, 0), 6) / 6``),
  "Mish", "SoftSign", "SoftPlus", "HardTanh" (``clip(x, -1, 1)``), "HardSigmoid"
  (``clip((x + 1) / 2, 0, 1)`` - Keras's ``hard_sigmoid`` is ``relu6(x + 3) / 6`` instead),
  "Sigmoid";
* the functions f of ``ElementwiseLayer[f]``: Ramp, LogisticSigmoid, the trigonometric and
  hyperbolic functions and their inverses (Tan .. ArcSech, with Cot, Csc, Sec), Haversine,
  InverseHaversine, Gudermannian, InverseGudermannian, Log, Exp, Sqrt, CubeRoot, Abs, Gamma,
  LogGamma, Erf, InverseErf, Erfc, InverseErfc, Round (halves to even), Floor, Ceiling, Sign,
  FractionalPart, IntegerPart, Unitize, KroneckerDelta - real-valued: outside a function's
  real domain the result is NaN;
* netgraph's shorthands "Square" (x^2) and "Negative" (-x; not Wolfram's predicate).
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Callable, Union

import jax
import jax.numpy as jnp
import pydantic

from ..errors import NetGraphError, ShapeMismatchError, SpecificationError
from ..shapes import Known

from .base import Layer, LayerOptions
from .lowering import lower_layer
from .scope import show_path


_HALF_PI = math.pi / 2


def _arc_cot(x: jax.Array) -> jax.Array:
    """Wolfram's ArcCot: ArcTan[1/x], in (-pi/2, pi/2], with ArcCot[0] = pi/2."""
    return jnp.where(x >= 0, _HALF_PI, -_HALF_PI) - jnp.arctan(x)


def _step(condition: jax.Array, x: jax.Array) -> jax.Array:
    return condition.astype(x.dtype)


# Wolfram's named functions ("name" -> its formula in Wolfram's documentation), then the
# functions f that ElementwiseLayer[f] accepts, spelled as strings. Wolfram's symbols are
# real-valued here: outside a function's real domain the result is NaN (Log of -1).
_NAMED: dict[str, Callable[[jax.Array], jax.Array]] = {
    "RectifiedLinearUnit": jax.nn.relu,                            # Ramp[x]
    "ExponentialLinearUnit": jax.nn.elu,                           # x >= 0: x; x < 0: Exp[x]-1
    "ScaledExponentialLinearUnit": jax.nn.selu,                    # 1.0507 x; 1.7581 (Exp[x]-1)
    "GaussianErrorLinearUnit": lambda x: jax.nn.gelu(x, approximate=False),  # 0.5x(1+Erf[x/Sqrt[2]])
    "Swish": jax.nn.swish,                                         # x LogisticSigmoid[x]
    "HardSwish": jax.nn.hard_swish,                                # x Min[Max[x+3,0],6]/6
    "Mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),            # x Tanh[Log[1+Exp[x]]]
    "SoftSign": jax.nn.soft_sign,                                  # x/(1+Abs[x])
    "SoftPlus": jax.nn.softplus,                                   # Log[Exp[x]+1]
    "HardTanh": lambda x: jnp.clip(x, -1.0, 1.0),                  # Clip[x, {-1, 1}]
    "HardSigmoid": lambda x: jnp.clip((x + 1.0) / 2.0, 0.0, 1.0),  # Clip[(x+1)/2, {0, 1}]
    "Sigmoid": jax.nn.sigmoid,                                     # LogisticSigmoid[x]
}
_ALIASES = {"ReLU": "RectifiedLinearUnit", "ELU": "ExponentialLinearUnit",
            "SELU": "ScaledExponentialLinearUnit", "GELU": "GaussianErrorLinearUnit"}
_SYMBOLS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "Ramp": jax.nn.relu,
    "LogisticSigmoid": jax.nn.sigmoid,
    "Tan": jnp.tan, "Tanh": jnp.tanh, "ArcTan": jnp.arctan, "ArcTanh": jnp.arctanh,
    "Sin": jnp.sin, "Sinh": jnp.sinh, "ArcSin": jnp.arcsin, "ArcSinh": jnp.arcsinh,
    "Cos": jnp.cos, "Cosh": jnp.cosh, "ArcCos": jnp.arccos, "ArcCosh": jnp.arccosh,
    "Cot": lambda x: 1.0 / jnp.tan(x), "Coth": lambda x: 1.0 / jnp.tanh(x),
    "ArcCot": _arc_cot, "ArcCoth": lambda x: jnp.arctanh(1.0 / x),
    "Csc": lambda x: 1.0 / jnp.sin(x), "Csch": lambda x: 1.0 / jnp.sinh(x),
    "ArcCsc": lambda x: jnp.arcsin(1.0 / x), "ArcCsch": lambda x: jnp.arcsinh(1.0 / x),
    "Sec": lambda x: 1.0 / jnp.cos(x), "Sech": lambda x: 1.0 / jnp.cosh(x),
    "ArcSec": lambda x: jnp.arccos(1.0 / x), "ArcSech": lambda x: jnp.arccosh(1.0 / x),
    "Haversine": lambda x: (1.0 - jnp.cos(x)) / 2.0,
    "InverseHaversine": lambda x: 2.0 * jnp.arcsin(jnp.sqrt(x)),
    "Gudermannian": lambda x: 2.0 * jnp.arctan(jnp.tanh(x / 2.0)),
    "InverseGudermannian": lambda x: 2.0 * jnp.arctanh(jnp.tan(x / 2.0)),
    "Log": jnp.log, "Exp": jnp.exp, "Sqrt": jnp.sqrt, "CubeRoot": jnp.cbrt, "Abs": jnp.abs,
    "Gamma": jax.scipy.special.gamma, "LogGamma": jax.scipy.special.gammaln,
    "Erf": jax.scipy.special.erf, "InverseErf": jax.scipy.special.erfinv,
    "Erfc": jax.scipy.special.erfc,
    "InverseErfc": lambda x: -jax.scipy.special.ndtri(x / 2.0) / math.sqrt(2.0),
    "Round": jnp.round,  # halves to even, as Wolfram's Round
    "Floor": jnp.floor, "Ceiling": jnp.ceil, "Sign": jnp.sign,
    "FractionalPart": lambda x: x - jnp.trunc(x), "IntegerPart": jnp.trunc,
    "Unitize": lambda x: _step(x != 0, x), "KroneckerDelta": lambda x: _step(x == 0, x),
}
_EXTRAS: dict[str, Callable[[jax.Array], jax.Array]] = {  # netgraph's own shorthands
    "Square": jnp.square,
    "Negative": jnp.negative,  # -x (Wolfram's Negative is the predicate x < 0)
}

ELEMENTWISE_FUNCTIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    **_NAMED, **{alias: _NAMED[name] for alias, name in _ALIASES.items()}, **_SYMBOLS, **_EXTRAS,
}
"""Every function name ElementwiseLayer accepts, with its JAX implementation."""


def _check_function(value: object) -> object:
    if callable(value):
        return value
    if value not in ELEMENTWISE_FUNCTIONS:
        close = difflib.get_close_matches(str(value), ELEMENTWISE_FUNCTIONS, n=1)
        raise ValueError(
            f"unknown function {value!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            + "; expected a callable or one of: " + ", ".join(ELEMENTWISE_FUNCTIONS)
        )
    return value


class ElementwiseLayer(Layer):
    """Applies ``function`` to every element; see the module docstring."""

    class Options(LayerOptions):
        function: pydantic.SkipValidation[Union[str, Callable]]

        @pydantic.field_validator("function", mode="before")
        @classmethod
        def _known(cls, value: object) -> object:
            return _check_function(value)

    positional = ("function",)

    def describe(self) -> str:
        f = self.options.function
        return f"ElementwiseLayer[{f if isinstance(f, str) else getattr(f, '__name__', 'f')}]"

    def template(self, scope: Any) -> None:
        scope.same_shape("Input", "Output")
        scope.real("Input")


def elementwise_function(function: Union[str, Callable]) -> Callable[[jax.Array], jax.Array]:
    return ELEMENTWISE_FUNCTIONS[function] if isinstance(function, str) else function


def call_user_function(layer: Layer, ctx: Any, function: Callable, *args: jax.Array) -> jax.Array:
    """``function(*args)`` for a layer's Python function, checked at trace time: a failure
    is a :class:`SpecificationError` naming the layer, and a result whose shape differs from
    the inferred "Output" shape (the sizes that are known) a :class:`ShapeMismatchError`."""
    name = getattr(function, "__name__", repr(function))
    where = f"{show_path(ctx.path)} ({layer.describe()})"
    shapes = ", ".join(str(tuple(jnp.shape(a))) for a in args)
    try:
        out = function(*args)
    except NetGraphError:
        raise
    except Exception as err:  # noqa: BLE001 - the user's code: any failure, with its cause
        raise SpecificationError(
            f"the function {name!r} of {where} failed on inputs of shape {shapes}: "
            f"{type(err).__name__}: {err}",
            hint="the function gets JAX arrays (traced: no NumPy conversion, no Python branching "
            "on values); use jax.numpy operations.",
        ) from err
    expected = ctx.port("Output").dims
    found = tuple(jnp.shape(out))
    if expected is not None and (len(found) != len(expected) or any(
            isinstance(d, Known) and d.size != n for d, n in zip(expected, found))):
        raise ShapeMismatchError(
            f"the function {name!r} of {where} returns an array of shape {found} for inputs of "
            f"shape {shapes}; the inferred output is {ctx.port('Output')}.",
            hint=f"{layer.type_name} functions keep the shape (element by element).",
        )
    return out


@lower_layer.register(ElementwiseLayer)
def _lower_elementwise(layer: ElementwiseLayer, ctx: Any, inputs: dict) -> dict:
    function = layer.options.function
    if isinstance(function, str):
        return {"Output": ELEMENTWISE_FUNCTIONS[function](inputs["Input"])}
    return {"Output": call_user_function(layer, ctx, function, inputs["Input"])}
