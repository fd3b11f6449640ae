"""BatchNormalizationLayer: normalise each channel by batch statistics (training) or by
moving estimates of them (evaluation).

Shape legend: ``c`` channels, ``d1..dk`` the other dimensions (any rank >= 0, may vary).

====== =============================== ============================================
port   shape (``interleaving=False``)  with ``interleaving=True``
====== =============================== ============================================
Input  c x d1 x ... x dk               d1 x ... x dk x c
Output same as Input                   same as Input
====== =============================== ============================================

Arrays, each of length ``c``: ``Scaling`` (ones) and ``Biases`` (zeros), learned;
``MovingMean`` (zeros) and ``MovingVariance`` (ones), layer state: not trainable, updated by
each training step as ``moving = momentum * moving + (1 - momentum) * batch_statistic``.

``y = (x - mean) / sqrt(var + epsilon) * Scaling + Biases`` per channel. In training mode
``mean`` and ``var`` (biased) are taken over the batch and every other dimension, counting
only real positions (padding of a varying dimension and padding rows of a batch never
count); in evaluation mode they are the moving estimates. Wolfram's defaults: momentum 0.9,
epsilon 0.001.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pydantic

from .base import ArraySpec, Layer, LayerOptions
from .lowering import lower_layer, valid_positions

_STATE = ("MovingMean", "MovingVariance")


class BatchNormalizationLayer(Layer):
    """Batch normalisation over all axes but the channel axis; see the module docstring."""

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
    channel = x.ndim - 1 if o.interleaving else 0
    other = tuple(a for a in range(x.ndim) if a != channel)
    shape = [1] * x.ndim
    shape[channel] = x.shape[channel]
    params = ctx.params
    if ctx.train:
        mask = valid_positions(ctx, "Input", x, other)
        weight = (jnp.ones(x.shape, x.dtype) if mask is None else mask.astype(x.dtype))
        count = ctx.batch_sum(jnp.sum(weight, axis=other))
        count = jnp.maximum(count, jnp.ones((), x.dtype))
        mean = ctx.batch_sum(jnp.sum(x * weight, axis=other)) / count
        centred = x - mean.reshape(shape)
        var = ctx.batch_sum(jnp.sum(centred * centred * weight, axis=other)) / count
        keep = jnp.asarray(o.momentum, x.dtype)
        for name, value in zip(_STATE, (mean, var)):
            old = jax.lax.stop_gradient(params[name])
            ctx.put_state(name, keep * old + (1 - keep) * jax.lax.stop_gradient(value))
    else:
        mean, var = params["MovingMean"], params["MovingVariance"]
        centred = x - mean.reshape(shape)
    scale = params["Scaling"] * jax.lax.rsqrt(var + jnp.asarray(o.epsilon, x.dtype))
    return {"Output": centred * scale.reshape(shape) + params["Biases"].reshape(shape)}


__all__ = ["BatchNormalizationLayer"]
