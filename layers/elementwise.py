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

from .base import Layer, LayerOptions
from .lowering import lower_layer


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


@lower_layer.register(ElementwiseLayer)
def _lower_elementwise(layer: ElementwiseLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": elementwise_function(layer.options.function)(inputs["Input"])}
