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

from ..shapes import Automatic, Known

from .base import ArraySpec, Layer, LayerOptions
from .lowering import lower_layer
from .options import SizeOrAuto


class EmbeddingLayer(Layer):
    """Looks up row ``i`` of ``Weights`` for each index ``i``."""

    class Options(LayerOptions):
        size: SizeOrAuto = Automatic
        n: SizeOrAuto = Automatic

    positional = ("size", "n")
    arrays_declared = {"Weights": ArraySpec("normal")}

    def describe(self) -> str:
        return f"EmbeddingLayer[{self.options.size}, {self.options.n}]"

    def inferred_options(self, port: Any) -> dict[str, Any]:
        out, element = port("Output").dims, port("Input").element
        size = out[-1] if out else None
        n = getattr(element, "n", None)
        return {"size": size.size if isinstance(size, Known) else None,
                "n": n.size if isinstance(n, Known) else None}

    def template(self, scope: Any) -> None:
        cells = scope.shapes(Input=("*a",), Output=("*a", "size"), Weights=("n", "size"))
        for name in ("n", "size"):
            if getattr(self.options, name) is not Automatic:
                scope.fix(cells[name], getattr(self.options, name), "Weights")
        scope.element("Input", ("Index", cells["n"]))
        scope.real("Output")


@lower_layer.register(EmbeddingLayer)
def _lower_embedding(layer: EmbeddingLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": jnp.take(ctx.params["Weights"], inputs["Input"], axis=0)}
