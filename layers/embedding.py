"""EmbeddingLayer: integer indices to learned vectors.

====== ====================== ===============================================
port   shape                  notes
====== ====================== ===============================================
Input  d1 x ... x dk integers each in [0, n) (0-based); may vary
Output d1 x ... x dk x size
====== ====================== ===============================================

Array ``Weights``: n x size (standard normal at initialisation). ``n`` is inferred from the
input's index range (``Restricted("Integer", n)``) when not given.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ..shapes import Automatic

from .base import ArraySpec, Layer, LayerOptions
from .lowering import register
from .options import SizeOrAuto


class EmbeddingLayer(Layer):
    """Looks up row ``i`` of ``Weights`` for each index ``i``."""

    class Options(LayerOptions):
        size: SizeOrAuto = Automatic
        n: SizeOrAuto = Automatic

    def __init__(self, size: Any = Automatic, n: Any = Automatic, **kwargs: Any) -> None:
        self._build({"size": size, "n": n}, kwargs)

    @classmethod
    def array_names(cls) -> tuple[str, ...]:
        return ("Weights",)

    def array_specs_all(self) -> dict[str, ArraySpec]:
        return {"Weights": ArraySpec("normal")}

    def describe(self) -> str:
        return f"EmbeddingLayer[{self.options.size}, {self.options.n}]"

    def template(self, scope: Any) -> None:
        s = scope.solver
        rows, width = scope.array_dims("Weights", 2)
        for cell, value in ((rows, self.options.n), (width, self.options.size)):
            if value is not Automatic:
                scope.fix(cell, value, "Weights")
        scope.element("Input", ("Index", rows))
        scope.real("Output")
        x, y = scope.port("Input"), scope.port("Output")

        def run() -> None:
            dx, dy = s.dims(x), s.dims(y)
            if dx is None and dy is not None:
                dx = scope.dims("Input", len(dy) - 1)
            if dx is None:
                return
            out = scope.dims("Output", len(dx) + 1)
            for a, b in zip(out, dx):
                scope.same_dim(a, b, "Output")
            scope.same_dim(out[-1], width, "Output")

        s.rule(run, shapes=(x, y))


@register(EmbeddingLayer)
def _lower_embedding(layer: EmbeddingLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": jnp.take(ctx.params["Weights"], inputs["Input"], axis=0)}
