"""SoftmaxLayer: a softmax along one level, masked on varying lengths.

====== ========== ==========================================
port   shape      notes
====== ========== ==========================================
Input  any        rank >= 1; ``level`` (default -1) may vary
Output = Input    padded positions of a varying level get 0
====== ========== ==========================================

16-bit inputs (float16, bfloat16) are normalised in float32 (the maximum, the exponentials
and their sum), and the result cast back: the sum of many small terms keeps its precision.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .base import Layer, LayerOptions
from .lowering import lower_layer, masked_softmax, normalize_axis, valid_positions


class SoftmaxLayer(Layer):
    """Softmax along ``level`` (0-based; negative counts from the end)."""

    class Options(LayerOptions):
        level: int = -1

    positional = ("level",)

    def template(self, scope: Any) -> None:
        scope.same_shape("Input", "Output")
        scope.real("Input")
        scope.once_ranked(("Input",), lambda rank: normalize_axis(self.options.level, rank,
                                                                  scope.where("Input")))


@lower_layer.register(SoftmaxLayer)
def _lower_softmax(layer: SoftmaxLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    axis = layer.options.level % x.ndim
    mask = valid_positions(ctx, "Input", x, (axis,))
    if jnp.finfo(x.dtype).bits < 32:  # statistics of 16-bit data accumulated in float32
        return {"Output": masked_softmax(x.astype(jnp.float32), axis, mask).astype(x.dtype)}
    return {"Output": masked_softmax(x, axis, mask)}
