"""ElementwiseLayer: a scalar function applied to every element.

====== ========== ============
port   shape      notes
====== ========== ============
Input  any        any rank, may vary
Output = Input
====== ========== ============

``function``: a name (see :data:`ELEMENTWISE_FUNCTIONS`) or a callable on JAX arrays
(a callable cannot be saved to a file).
"""
from __future__ import annotations

from typing import Any, Callable, Union

import jax
import jax.numpy as jnp
import pydantic

from ..errors import NetGraphError, ShapeMismatchError, SpecificationError
from ..shapes import Known

from .base import Layer, LayerOptions
from .lowering import lower_layer
from .scope import show_path


def _hard_tanh(x: jax.Array) -> jax.Array:
    return jnp.clip(x, -1.0, 1.0)


ELEMENTWISE_FUNCTIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "Tanh": jnp.tanh,
    "Ramp": jax.nn.relu,
    "ReLU": jax.nn.relu,
    "LogisticSigmoid": jax.nn.sigmoid,
    "Sigmoid": jax.nn.sigmoid,
    "GELU": lambda x: jax.nn.gelu(x, approximate=False),
    "Swish": jax.nn.swish,
    "SoftPlus": jax.nn.softplus,
    "SoftSign": jax.nn.soft_sign,
    "ELU": jax.nn.elu,
    "SELU": jax.nn.selu,
    "Mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
    "HardTanh": _hard_tanh,
    "HardSigmoid": jax.nn.hard_sigmoid,
    "HardSwish": jax.nn.hard_swish,
    "Exp": jnp.exp,
    "Log": jnp.log,
    "Sqrt": jnp.sqrt,
    "Square": jnp.square,
    "Abs": jnp.abs,
    "Sin": jnp.sin,
    "Cos": jnp.cos,
    "Erf": jax.scipy.special.erf,
    "Negative": jnp.negative,
    "Sign": jnp.sign,
}


def _check_function(value: object) -> object:
    if callable(value):
        return value
    if value not in ELEMENTWISE_FUNCTIONS:
        raise ValueError(
            f"unknown function {value!r}; expected a callable or one of: "
            + ", ".join(ELEMENTWISE_FUNCTIONS)
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
