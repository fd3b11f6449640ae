"""PoolingLayer: Max, Mean or Total over sliding windows, in 1, 2 or 3 spatial dimensions
(channels first, as Wolfram; or interleaved, as Keras).

Shape legend: c channels, s_i spatial sizes, o_i output sizes, k_i kernel sizes, d the number
of spatial dimensions (1, 2 or 3; from ``kernel`` or the input rank).

======= ================================= =========================================
port    shape (``interleaving=False``)    with ``interleaving=True``
======= ================================= =========================================
Input   c x s1 [x s2 [x s3]]              s1 [x s2 [x s3]] x c
Output  c x o1 [x o2 [x o3]]              o1 [x o2 [x o3]] x c
======= ================================= =========================================

``PoolingLayer(kernel, stride=1, *, padding=0, function="Max", interleaving=False)``:
``kernel`` and ``stride`` are an int (every axis) or one int per axis; ``padding`` as
ConvolutionLayer's (an int, one per axis, (lo, hi) pairs per axis, "Same" or "Valid").
The output sizes follow ConvolutionLayer's rule, ``o = floor((s + lo + hi - k) / stride) + 1``
(``padding="Same"``: ``o = ceil(s / stride)``, the extra padding split low = total // 2).

Padding never enters a result: "Max" takes the largest real value of each window, "Mean"
averages the real positions only (Keras's "same" average pooling), "Total" sums them; a
window with no real position gives 0. (Wolfram documents zero padding.) Every spatial
dimension may vary: a window never reaches past an example's true end (positions beyond it
count as padding), and the output length follows the rule above from the true length, so a
padded batch gives exactly the per-example results. Keras's ``MaxPooling2D(2)`` is
``PoolingLayer(2, 2, interleaving=True)`` (Wolfram's stride defaults to 1, Keras's to the
pool size).
"""
from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ShapeMismatchError

from .base import Layer, LayerOptions
from .convolution import (Padding, PerAxis, dynamic_same_window, output_size, same_padding,
                          spatial_size_rules, window_geometry)
from .lowering import lower_layer, valid_positions


class PoolingLayer(Layer):
    """Max, Mean or Total pooling over windows of ``kernel`` moved by ``stride``."""

    class Options(LayerOptions):
        kernel: PerAxis
        stride: PerAxis = 1
        padding: Padding = 0
        function: Literal["Max", "Mean", "Total"] = "Max"
        interleaving: bool = False

    positional = ("kernel", "stride")

    def describe(self) -> str:
        return f"PoolingLayer[{self.options.function}, {self.options.kernel}]"

    def geometry(self, d: int) -> list[tuple[int, int, int, Any]]:
        """Per spatial axis: (kernel, stride, 1, padding); see ``window_geometry``."""
        o = self.options
        return window_geometry(self.type_name, d, o.kernel, o.stride, 1, o.padding)

    def spatial_rank(self) -> int | None:
        """The number of spatial dimensions, if an option given per axis says it."""
        o = self.options
        return next((len(v) for v in (o.kernel, o.stride, o.padding) if isinstance(v, tuple)), None)

    def template(self, scope: Any) -> None:
        s = scope.solver
        o = self.options
        scope.same_element("Input", "Output")
        scope.real("Input")
        given = self.spatial_rank()
        if given is not None:
            scope.dims("Input", given + 1)

        def install(rank: int) -> None:
            d = rank - 1 if given is None else given
            if d not in (1, 2, 3) or rank != d + 1:
                raise ShapeMismatchError(
                    f"{scope.where('Input')}: PoolingLayer takes a rank-2, rank-3 or rank-4 "
                    f"input (1, 2 or 3 spatial dimensions and a channel dimension); found rank {rank}.")
            inp, out = scope.dims("Input", rank), scope.dims("Output", rank)
            channel = -1 if o.interleaving else 0
            scope.same_dim(inp[channel], out[channel], "Output")
            spatial = slice(0, -1) if o.interleaving else slice(1, None)
            spatial_size_rules(scope, inp[spatial], out[spatial], self.geometry(d))

        def default() -> None:  # an input of unknown rank is a 1-D signal
            if s.dims(scope.port("Input")) is None:
                scope.dims("Input", 2)

        scope.once_ranked(("Input", "Output"), install)
        s.fallback(default)


@lower_layer.register(PoolingLayer)
def _lower_pooling(layer: PoolingLayer, ctx: Any, inputs: dict) -> dict:
    o = layer.options
    x = inputs["Input"]
    d = x.ndim - 1
    axes = tuple(range(d)) if o.interleaving else tuple(range(1, d + 1))
    geometry = layer.geometry(d)
    mask = valid_positions(ctx, "Input", x, axes)
    mask = jnp.ones(x.shape, bool) if mask is None else mask
    padding = [(0, 0)] * x.ndim
    for axis, (kernel, stride, _, pad) in zip(axes, geometry):
        length = ctx.length("Input", axis)
        if pad == "Same" and length is not None:  # "Same" of the true length, not the padded one
            x = dynamic_same_window(x, axis, length, kernel, stride, 1)
            mask = dynamic_same_window(mask, axis, length, kernel, stride, 1)
        elif pad == "Same":
            padding[axis] = same_padding(x.shape[axis], kernel, stride, 1)
        else:
            padding[axis] = pad
        if length is not None:
            ctx.set_length("Output", axis, jnp.maximum(output_size(length, kernel, stride, 1, pad), 0))
    window = [1] * x.ndim
    strides = [1] * x.ndim
    for axis, (kernel, stride, _, _) in zip(axes, geometry):
        window[axis], strides[axis] = kernel, stride

    def pool(values: jax.Array, init: float, op: Any) -> jax.Array:
        # a concrete NumPy init value: JAX then knows the monoid (sum, max) and differentiates it
        return jax.lax.reduce_window(values, np.asarray(init, values.dtype), op, window, strides, padding)

    count = pool(mask.astype(jnp.int32), 0, jax.lax.add)
    zero = jnp.zeros((), x.dtype)
    if o.function == "Max":
        low = jnp.asarray(-jnp.inf, x.dtype)
        y = pool(jnp.where(mask, x, low), -jnp.inf, jax.lax.max)
        return {"Output": jnp.where(count > 0, y, zero)}
    total = pool(jnp.where(mask, x, zero), 0, jax.lax.add)
    if o.function == "Total":
        return {"Output": total}
    return {"Output": total / jnp.maximum(count, 1).astype(x.dtype)}


__all__ = ["PoolingLayer"]
