"""Layers made of one learnable array: ConstantTimesLayer and NetArrayLayer.

====================== ======= ==========================================================
layer                  port    shape
====================== ======= ==========================================================
ConstantTimesLayer     Input   d1 x ... x dr (any; may vary)
                       Output  = Input; ``Output = Scaling * Input``
NetArrayLayer          Output  the dims of "Array" (no input)
====================== ======= ==========================================================

``Scaling`` spans the trailing dimensions of the input: by default all of them after the
last varying one; a given array (a scalar, a vector of channel scales, ...) fixes its rank.
It starts at 1. ``NetArrayLayer(Output=dims)`` is a learned constant, initialised as
NetInitialize's method says, or by ``initializer`` (any spec of :mod:`netgraph.initialize`,
Keras names and objects included): ``NetArrayLayer(initializer="Zeros", Output=8)`` is a
bias.
"""
from __future__ import annotations

from typing import Any, Optional

import jax.numpy as jnp
import pydantic

from ..shapes import Sym
from ..errors import ShapeMismatchError

from .base import ArraySpec, Layer, LayerOptions
from .lowering import lower_layer


class ConstantTimesLayer(Layer):
    """Multiplies its input by a learnable ``Scaling`` array (broadcast over leading dims)."""

    arrays_declared = {"Scaling": ArraySpec("ones")}

    def template(self, scope: Any) -> None:
        s = scope.solver
        scope.same_shape("Input", "Output")
        scope.real("Input")
        x, w = scope.port("Input"), scope.array("Scaling")

        def run() -> None:
            dx, dw = s.dims(x), s.dims(w)
            if dx is None or dw is None:
                return
            if len(dw) > len(dx):
                raise ShapeMismatchError(
                    f'{scope.where("Scaling", "array")} has rank {len(dw)}, more than the '
                    f"rank-{len(dx)} input it scales."
                )
            for i, (a, b) in enumerate(zip(dw, dx[len(dx) - len(dw):])):
                if isinstance(s.dim(b), Sym):
                    raise ShapeMismatchError(
                        f'{scope.where("Scaling", "array")} cannot span the varying dimension '
                        f"{len(dx) - len(dw) + i + 1} of the input.",
                        hint="give a Scaling array of the trailing (fixed) sizes only.",
                    )
                scope.same_dim(a, b, "Scaling")

        def default() -> None:
            dx = s.dims(x)
            if dx is None or s.dims(w) is not None:
                return
            varying = [i for i, d in enumerate(dx) if isinstance(s.dim(d), Sym)]
            start = varying[-1] + 1 if varying else 0
            scope.array_dims("Scaling", len(dx) - start)

        s.rule(run, shapes=(x, w), default=default)


@lower_layer.register(ConstantTimesLayer)
def _lower_constant_times(layer: ConstantTimesLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    w = ctx.params["Scaling"]
    w = w.reshape((1,) * (x.ndim - w.ndim) + w.shape)
    return {"Output": x * jnp.broadcast_to(w, x.shape)}


class NetArrayLayer(Layer):
    """A learned constant: no input, ``Output`` is the array ``Array``."""

    class Options(LayerOptions):
        initializer: Optional[Any] = None

        @pydantic.field_validator("initializer", mode="before")
        @classmethod
        def _spec(cls, spec: Any) -> Any:
            from ..initialize import initializer_spec

            return None if spec is None else initializer_spec(spec, "NetArrayLayer initializer")

    @property
    def input_names(self) -> tuple[str, ...]:
        return ()

    arrays_declared = {"Array": ArraySpec("weights")}

    def array_specs(self) -> dict[str, ArraySpec]:
        given = self.options.initializer
        return {name: ArraySpec(given) if given is not None else spec
                for name, spec in super().array_specs().items()}

    def template(self, scope: Any) -> None:
        scope.solver.unify_shapes(scope.port("Output"), scope.array("Array"), scope.where("Output"))
        scope.real("Output")


@lower_layer.register(NetArrayLayer)
def _lower_net_array(layer: NetArrayLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": ctx.params["Array"]}
