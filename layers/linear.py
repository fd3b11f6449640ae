"""LinearLayer: a dense affine map of any input array.

Shape legend: ``d1..dk`` input dims (flattened, fixed sizes), ``n1..nm`` output dims.

====== ================== =========================================
port   shape              notes
====== ================== =========================================
Input  d1 x ... x dk      any rank; flattened to ``in = d1*...*dk``
Output n1 x ... x nm      ``size``: an int n, a tuple, () for a scalar
====== ================== =========================================

Arrays: ``Weights`` (out, in) with ``out = n1*...*nm`` (Wolfram's orientation), ``Biases``
n1 x ... x nm (``Biases=None`` removes them). ``y = Weights . flatten(x) + Biases``.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp


from ..shapes import Automatic, Known
from ..shapes import rules

from .base import ArraySpec, Layer, LayerOptions
from .lowering import lower_layer
from .options import Dims


class LinearLayer(Layer):
    """Dense layer ``y = W . flatten(x) + b``; see the module docstring for shapes."""

    class Options(LayerOptions):
        size: Dims = Automatic

    positional = ("size",)
    arrays_declared = {"Weights": ArraySpec("weights"), "Biases": ArraySpec("zeros", optional=True)}

    def describe(self) -> str:
        size = self.options.size
        return f"LinearLayer[{'Automatic' if size is Automatic else size}]"

    def inferred_options(self, port: Any) -> dict[str, Any]:
        dims = port("Output").dims
        if dims is None or not all(isinstance(d, Known) for d in dims):
            return {"size": None}
        sizes = tuple(d.size for d in dims)
        return {"size": sizes[0] if len(sizes) == 1 else sizes}

    def template(self, scope: Any) -> None:
        s = scope.solver
        size = self.options.size
        if size is not Automatic:
            out = (size,) if isinstance(size, int) else tuple(size)
            for cell, n in zip(scope.dims("Output", len(out)), out):
                scope.fix(cell, n, "Output")
        w_out, w_in = scope.array_dims("Weights", 2)
        hint = "a LinearLayer needs a fixed-size input; wrap it in NetMapOperator for sequences."
        rules.product(s, scope.port("Output"), w_out, scope.origin("Output"),
                      scope.where("Output"), varying_hint=hint, default_vector=True)
        rules.product(s, scope.port("Input"), w_in, scope.origin("Input"),
                      scope.where("Input"), varying_hint=hint, default_vector=True)
        if "Biases" in self.array_specs():
            s.unify_shapes(scope.port("Output"), scope.array("Biases"),
                           scope.where("Biases", "array"))
        scope.real("Input", "Output")


@lower_layer.register(LinearLayer)
def _lower_linear(layer: LinearLayer, ctx: Any, inputs: dict) -> dict:
    out_shape = ctx.shape("Output")
    # x @ W.T (not W @ x): under vmap this keeps the batch axis first, which XLA's CPU
    # backend turns into the same kernels as a hand-written batched matmul (forward and grad).
    x, w = inputs["Input"].reshape(-1), ctx.params["Weights"]
    # one output (a score): an elementwise product and a sum fuses with its producers into
    # one kernel (attention scoring nets); otherwise a matrix product
    y = jnp.sum(x * w[0], keepdims=True) if w.shape[0] == 1 else x @ w.T
    if "Biases" in ctx.params:
        y = y + ctx.params["Biases"].reshape(-1)
    return {"Output": y.reshape(out_shape)}


__all__ = ["LinearLayer"]
