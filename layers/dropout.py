"""DropoutLayer: zero elements with probability p in training mode, scale the rest by 1/(1-p).

====== ========== =======================================
port   shape      notes
====== ========== =======================================
Input  any        may vary
Output = Input    the identity in evaluation mode
====== ========== =======================================
"""
from __future__ import annotations

from typing import Annotated, Any

import jax
import jax.numpy as jnp
import pydantic

from .base import Layer, LayerOptions
from .lowering import lower_layer


class DropoutLayer(Layer):
    """Dropout with probability ``probability`` (only when evaluated with ``train=True``)."""

    class Options(LayerOptions):
        probability: Annotated[float, pydantic.Field(ge=0.0, lt=1.0)] = 0.5

    positional = ("probability",)

    def describe(self) -> str:
        return f"DropoutLayer[{self.options.probability}]"

    def template(self, scope: Any) -> None:
        scope.same_shape("Input", "Output")
        scope.real("Input")


def dropout(x: jax.Array, rate: float, key: jax.Array) -> jax.Array:
    """Inverted dropout: keep with probability ``1 - rate`` and divide kept entries by it."""
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))


@lower_layer.register(DropoutLayer)
def _lower_dropout(layer: DropoutLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    rate = layer.options.probability
    if not ctx.train or rate == 0.0:
        return {"Output": x}
    return {"Output": dropout(x, rate, ctx.key())}
