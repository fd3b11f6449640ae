"""SoftmaxLayer: a softmax along one level, masked on varying lengths.

====== ========== ==========================================
port   shape      notes
====== ========== ==========================================
Input  any        rank >= 1; ``level`` (default -1) may vary
Output = Input    padded positions of a varying level get 0
====== ========== ==========================================
"""
from __future__ import annotations

from typing import Any

from .base import Layer, LayerOptions
from .lowering import masked_softmax, normalize_axis, register, valid_positions


class SoftmaxLayer(Layer):
    """Softmax along ``level`` (0-based; negative counts from the end)."""

    class Options(LayerOptions):
        level: int = -1

    def __init__(self, level: int = -1, **kwargs: Any) -> None:
        self._build({"level": level}, kwargs)

    def template(self, scope: Any) -> None:
        scope.same_shape("Input", "Output")
        scope.real("Input")
        s = scope.solver

        def run() -> None:
            dims = s.dims(scope.port("Input"))
            if dims is not None:
                normalize_axis(self.options.level, len(dims), scope.where("Input"))

        s.rule(run, shapes=(scope.port("Input"),))


@register(SoftmaxLayer)
def _lower_softmax(layer: SoftmaxLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    axis = layer.options.level % x.ndim
    return {"Output": masked_softmax(x, axis, valid_positions(ctx, "Input", x, (axis,)))}
