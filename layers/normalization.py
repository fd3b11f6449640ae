"""Normalisation layers: NormalizationLayer (the Transformer's LayerNorm; Wolfram's
NormalizationLayer) and BatchNormalizationLayer (batch statistics in training, moving
estimates of them in evaluation).

Shape legend: ``d1..dr`` the input's dimensions (any rank >= 1, may vary); ``c`` channels,
``a`` the aggregation levels, ``s`` the scaling levels (0-based).

======================= ======= =========================================================
layer                   port    shape
======================= ======= =========================================================
NormalizationLayer      Input   d1 x ... x dr
                        Output  same as Input
BatchNormalizationLayer Input   c x d1 x ... x dk (``interleaving=True``: d1 x ... x c)
                        Output  same as Input
======================= ======= =========================================================

**NormalizationLayer(levels=-1, scaling_levels="Same", epsilon=0.001, method="Standardize")**:
``y = (x - mean) / sqrt(var + epsilon) * Scaling + Biases`` with ``mean`` and the (biased)
``var`` taken over the aggregation ``levels``, separately at every position of the other
levels (``method="RMS"``: ``y = x / sqrt(mean(x^2) + epsilon) * Scaling + Biases``).
``levels``: an int, a tuple of ints, ``All`` or a slice (``slice(1, None)`` is Wolfram's
``2;;All``). ``Scaling`` (ones) and ``Biases`` (zeros) have the input's dimensions at the
``scaling_levels``: "Same" (the aggregation levels), "Complement" (all the others), or
levels of their own; either may be removed (``Biases=None``: Keras's ``center=False``).
The default, ``NormalizationLayer()``, normalises each vector of the last level and scales it
per feature: the Transformer's LayerNorm, Keras's ``LayerNormalization()``. (Wolfram's
default is ``slice(1, None)`` with "Complement" scaling - instance normalisation of a
channels-first array - written ``NormalizationLayer(slice(1, None), "Complement")`` here.)
Over a varying aggregation level only each example's real positions count; a scaling level
cannot vary (a learned array has a fixed size).

**BatchNormalizationLayer(momentum=0.9, epsilon=0.001, interleaving=False)**: arrays, each of
length ``c``: ``Scaling`` (ones) and ``Biases`` (zeros), learned; ``MovingMean`` (zeros) and
``MovingVariance`` (ones), layer state: not trainable, updated by each training step as
``moving = momentum * moving + (1 - momentum) * batch_statistic``.
``y = (x - mean) / sqrt(var + epsilon) * Scaling + Biases`` per channel. In training mode
``mean`` and ``var`` (biased) are taken over the batch and every other dimension, counting
only real positions (padding of a varying dimension and padding rows of a batch never
count); in evaluation mode they are the moving estimates. Wolfram's defaults: momentum 0.9,
epsilon 0.001.

Both compute their statistics in float32 for 16-bit inputs (float16, bfloat16), as Keras
does, and give the input's dtype back.
"""
from __future__ import annotations

from typing import Any, Literal, Union

import jax
import jax.numpy as jnp
import pydantic

from ..errors import ShapeMismatchError
from ..shapes import Sym

from .aggregation import AggregationLayer, Levels, resolve_levels
from .base import ArraySpec, Layer, LayerOptions
from .lowering import lower_layer, valid_positions

_STATE = ("MovingMean", "MovingVariance")
_HALF = (jnp.float16, jnp.bfloat16)


def _compute_dtype(x: jax.Array) -> Any:
    """float32 for 16-bit inputs (statistics in half precision lose too much), else x's own."""
    return jnp.float32 if x.dtype in _HALF else x.dtype


class NormalizationLayer(Layer):
    """Normalises over ``levels``, then scales and shifts over ``scaling_levels``."""

    class Options(LayerOptions):
        levels: Levels = -1
        scaling_levels: Union[Literal["Same", "Complement"], Levels] = "Same"
        epsilon: pydantic.confloat(gt=0.0) = 0.001  # type: ignore[valid-type]
        method: Literal["Standardize", "RMS"] = "Standardize"

        @pydantic.field_validator("levels", "scaling_levels", mode="before")
        @classmethod
        def _levels(cls, levels: Any) -> Any:
            return levels if levels in ("Same", "Complement") else AggregationLayer.Options._span(levels)

    positional = ("levels", "scaling_levels")
    arrays_declared = {"Scaling": ArraySpec("ones", optional=True),
                       "Biases": ArraySpec("zeros", optional=True)}

    def axes(self, rank: int, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The aggregated axes and the scaled axes of a rank-``rank`` input."""
        o = self.options
        aggregated = resolve_levels(o.levels, rank, where)
        if not aggregated:
            raise ShapeMismatchError(
                f"{where}: levels={o.levels!r} selects no level of a rank-{rank} input; "
                "NormalizationLayer needs at least one level to normalise over.")
        if o.scaling_levels == "Same":
            return aggregated, aggregated
        if o.scaling_levels == "Complement":
            return aggregated, tuple(a for a in range(rank) if a not in aggregated)
        return aggregated, resolve_levels(o.scaling_levels, rank, where)

    def template(self, scope: Any) -> None:
        s = scope.solver
        scope.same_shape("Input", "Output")
        scope.real("Input")

        def install(rank: int) -> None:
            _, scaled = self.axes(rank, scope.where("Input"))
            dims = scope.dims("Input", rank)
            for name in self.array_specs():
                for cell, axis in zip(scope.array_dims(name, len(scaled)), scaled):
                    scope.same_dim(cell, dims[axis], name)
            scaled_dims = [dims[axis] for axis in scaled]

            def fixed() -> None:
                for axis, cell in zip(scaled, scaled_dims):
                    if isinstance(s.dim(cell), Sym):
                        raise ShapeMismatchError(
                            f"{scope.where('Input')}: scaling level {axis} varies, but Scaling "
                            "and Biases need a fixed size there.",
                            hint="scale over fixed levels only (the default scales the "
                            "normalised levels: scaling_levels=\"Same\").")

            s.rule(fixed, dims=scaled_dims)

        scope.once_ranked(("Input",), install)


@lower_layer.register(NormalizationLayer)
def _lower_normalization(layer: NormalizationLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    o = layer.options
    axes, scaled = layer.axes(x.ndim, "NormalizationLayer")
    dtype = _compute_dtype(x)
    mask = valid_positions(ctx, "Input", x, axes)
    xc = x.astype(dtype) if mask is None else jnp.where(mask, x.astype(dtype), jnp.zeros((), dtype))
    weight = jnp.ones(x.shape, dtype) if mask is None else mask.astype(dtype)
    count = jnp.maximum(jnp.sum(weight, axis=axes, keepdims=True), jnp.ones((), dtype))
    eps = jnp.asarray(o.epsilon, dtype)
    if o.method == "RMS":
        y = xc * jax.lax.rsqrt(jnp.sum(xc * xc, axis=axes, keepdims=True) / count + eps)
    else:
        centred = xc - jnp.sum(xc, axis=axes, keepdims=True) / count
        var = jnp.sum(centred * centred * weight, axis=axes, keepdims=True) / count
        y = centred * jax.lax.rsqrt(var + eps)
    shape = tuple(x.shape[a] if a in scaled else 1 for a in range(x.ndim))
    if "Scaling" in ctx.params:
        y = y * ctx.params["Scaling"].astype(dtype).reshape(shape)
    if "Biases" in ctx.params:
        y = y + ctx.params["Biases"].astype(dtype).reshape(shape)
    return {"Output": y.astype(x.dtype)}


class BatchNormalizationLayer(Layer):
    """Batch normalisation over all axes but the channel axis."""

    class Options(LayerOptions):
        momentum: pydantic.confloat(ge=0.0, le=1.0) = 0.9  # type: ignore[valid-type]
        epsilon: pydantic.confloat(gt=0.0) = 0.001  # type: ignore[valid-type]
        interleaving: bool = False

    positional = ("momentum", "epsilon", "interleaving")
    arrays_declared = {"Scaling": ArraySpec("ones"), "Biases": ArraySpec("zeros"),
                       "MovingMean": ArraySpec("zeros", trainable=False),
                       "MovingVariance": ArraySpec("ones", trainable=False)}

    def template(self, scope: Any) -> None:
        scope.same_shape("Input", "Output")
        scope.real("Input")
        scope.shapes(Input=("*d", "c") if self.options.interleaving else ("c", "*d"),
                     **{name: ("c",) for name in self.array_specs()})


@lower_layer.register(BatchNormalizationLayer)
def _lower_batch_normalization(layer: BatchNormalizationLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    o = layer.options
    dtype = _compute_dtype(x)
    channel = x.ndim - 1 if o.interleaving else 0
    other = tuple(a for a in range(x.ndim) if a != channel)
    shape = [1] * x.ndim
    shape[channel] = x.shape[channel]
    params = {name: value.astype(dtype) for name, value in ctx.params.items()}
    xc = x.astype(dtype)
    if ctx.train:
        mask = valid_positions(ctx, "Input", x, other)
        weight = jnp.ones(x.shape, dtype) if mask is None else mask.astype(dtype)
        if mask is not None:
            xc = jnp.where(mask, xc, jnp.zeros((), dtype))
        count = ctx.batch_sum(jnp.sum(weight, axis=other))
        count = jnp.maximum(count, jnp.ones((), dtype))
        mean = ctx.batch_sum(jnp.sum(xc, axis=other)) / count
        centred = xc - mean.reshape(shape)
        var = ctx.batch_sum(jnp.sum(centred * centred * weight, axis=other)) / count
        keep = jnp.asarray(o.momentum, dtype)
        for name, value in zip(_STATE, (mean, var)):
            old = jax.lax.stop_gradient(params[name])
            new = keep * old + (1 - keep) * jax.lax.stop_gradient(value)
            ctx.put_state(name, new.astype(ctx.params[name].dtype))
    else:
        mean, var = params["MovingMean"], params["MovingVariance"]
        centred = xc - mean.reshape(shape)
    scale = params["Scaling"] * jax.lax.rsqrt(var + jnp.asarray(o.epsilon, dtype))
    y = centred * scale.reshape(shape) + params["Biases"].reshape(shape)
    return {"Output": y.astype(x.dtype)}


__all__ = ["BatchNormalizationLayer", "NormalizationLayer"]
