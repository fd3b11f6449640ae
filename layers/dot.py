"""DotLayer: the tensor dot product of two arrays (Wolfram's ``Dot``).

====== ================== ==================================================
port   shape              notes
====== ================== ==================================================
Input1 a1 x ... x ap x n  rank >= 1
Input2 n x b1 x ... x bq  rank >= 1; its first dim equals Input1's last
Output a1..ap x b1..bq    two vectors give a scalar
====== ================== ==================================================
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ..errors import ShapeMismatchError

from .base import Layer
from .lowering import lower_layer, masked_along, valid_mask


class DotLayer(Layer):
    """``Output = Input1 . Input2`` contracting Input1's last and Input2's first axis."""

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input1", "Input2")

    def template(self, scope: Any) -> None:
        s = scope.solver
        scope.real("Input1", "Input2", "Output")
        a, b = scope.port("Input1"), scope.port("Input2")

        def run() -> None:
            da, db = s.dims(a), s.dims(b)
            if da is None or db is None:
                return
            for name, dims in (("Input1", da), ("Input2", db)):
                if not dims:
                    raise ShapeMismatchError(
                        f"{scope.where(name)}: DotLayer cannot take the dot product of a scalar.",
                        hint="both inputs must be arrays of rank >= 1.",
                    )
            s.unify_dims(da[-1], db[0], lambda: f"Type inconsistency in {scope.where('Input2')}: "
                         "cannot take the dot product (Input1's last dimension must equal "
                         "Input2's first)")
            out = scope.dims("Output", len(da) + len(db) - 2)
            for x, y in zip(out, (*da[:-1], *db[1:])):
                scope.same_dim(x, y, "Output")

        s.rule(run, shapes=(a, b))


@lower_layer.register(DotLayer)
def _lower_dot(layer: DotLayer, ctx: Any, inputs: dict) -> dict:
    x, y = inputs["Input1"], inputs["Input2"]
    length = ctx.length("Input1", x.ndim - 1)
    if length is None:
        length = ctx.length("Input2", 0)
    mask = valid_mask(length, x.shape[-1])
    x = masked_along(x, x.ndim - 1, mask, 0.0)
    y = masked_along(y, 0, mask, 0.0)
    return {"Output": jnp.tensordot(x, y, axes=1)}
