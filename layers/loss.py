"""Loss layers: MeanSquaredLossLayer, MeanAbsoluteLossLayer, CrossEntropyLossLayer.

Every loss layer has Wolfram's ports "Input" (the net's prediction) and "Target" and one
scalar output "Loss": the mean of a per-position loss over every position of ONE example.
Along a varying axis the mean is taken over the example's true length only, so a padded
example gives exactly the loss of the unpadded one (an empty example gives 0).

Shape legend: ``...`` any dims (each may vary), c the number of classes.

======================================= ======= ================ ===============================
layer                                   port    shape            notes
======================================= ======= ================ ===============================
MeanSquaredLossLayer                    Input   ...              real
                                        Target  = Input          real
                                        Loss    scalar           mean of (Input - Target)^2
MeanAbsoluteLossLayer                   Input   ...              real
                                        Target  = Input          real
                                        Loss    scalar           mean of abs(Input - Target)
CrossEntropyLossLayer("Index")          Input   ... x c          class probabilities
                                        Target  ...              integers in [0, c)
                                        Loss    scalar           mean of -log p[target]
CrossEntropyLossLayer("Probabilities")  Input   ... x c          class probabilities
                                        Target  ... x c          target probabilities
                                        Loss    scalar           mean of -sum_c t log p
CrossEntropyLossLayer("Binary")         Input   ...              probabilities of "true"
                                        Target  = Input          in [0, 1]
                                        Loss    scalar           mean of -t log p - (1-t) log(1-p)
======================================= ======= ================ ===============================

Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` before the logarithm, as Keras does, so a
probability of exactly 0 gives a large but finite loss (never NaN).
"""
from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp

from .base import Layer, LayerOptions
from .lowering import LowerContext, lower_layer, valid_positions

EPSILON = 1e-7
"""Probabilities are clipped to [EPSILON, 1 - EPSILON] before a logarithm (Keras's value)."""

LOSS_PORT = "Loss"
TARGET_PORT = "Target"


class _LossLayer(Layer):
    """Base of the loss layers: ports "Input", "Target" -> scalar "Loss"."""

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input", TARGET_PORT)

    @property
    def output_names(self) -> tuple[str, ...]:
        return (LOSS_PORT,)

    def template(self, scope: Any) -> None:
        scope.dims(LOSS_PORT, 0)
        scope.real("Input", LOSS_PORT)
        self.target_rule(scope)

    def target_rule(self, scope: Any) -> None:
        """Target has the shape and element type of Input (overridden for index targets)."""
        scope.same_shape("Input", TARGET_PORT)


class MeanSquaredLossLayer(_LossLayer):
    """The mean of ``(Input - Target)^2`` over all (true) positions of an example."""


class MeanAbsoluteLossLayer(_LossLayer):
    """The mean of ``abs(Input - Target)`` over all (true) positions of an example."""


class CrossEntropyLossLayer(_LossLayer):
    """Cross-entropy of predicted probabilities against a target in ``target_form``:
    "Index" (class indices), "Probabilities" (a distribution per position) or "Binary"
    (the probability of "true" per element). See the module docstring for shapes."""

    class Options(LayerOptions):
        target_form: Literal["Index", "Probabilities", "Binary"]

    positional = ("target_form",)

    def describe(self) -> str:
        return f'CrossEntropyLossLayer["{self.options.target_form}"]'

    def target_rule(self, scope: Any) -> None:
        if self.options.target_form != "Index":
            scope.same_shape("Input", TARGET_PORT)
            return
        cells = scope.shapes(
            Input=("*a", "c"), **{TARGET_PORT: ("*a",)},
            needs='CrossEntropyLossLayer["Index"] needs a vector of class probabilities (rank >= 1)',
            hint='for one probability per example use CrossEntropyLossLayer("Binary").')
        scope.element(TARGET_PORT, ("Index", cells["c"]))


def mean_over_positions(ctx: LowerContext, port: str, values: jax.Array) -> jax.Array:
    """The mean of ``values`` (one entry per position of ``port``'s leading axes) over the
    true positions: padding along a varying axis never counts; no position gives 0."""
    if values.ndim == 0:
        return values
    mask = valid_positions(ctx, port, values, tuple(range(values.ndim)))
    if mask is None:
        return jnp.mean(values)
    total = jnp.sum(jnp.where(mask, values, jnp.zeros((), values.dtype)))
    count = jnp.maximum(jnp.sum(mask), 1).astype(values.dtype)
    return total / count


def _log(p: jax.Array) -> jax.Array:
    return jnp.log(jnp.clip(p, EPSILON, 1.0 - EPSILON))


@lower_layer.register(MeanSquaredLossLayer)
def _lower_mean_squared(layer: Layer, ctx: LowerContext, inputs: dict) -> dict:
    return {LOSS_PORT: mean_over_positions(ctx, "Input", jnp.square(inputs["Input"] - inputs[TARGET_PORT]))}


@lower_layer.register(MeanAbsoluteLossLayer)
def _lower_mean_absolute(layer: Layer, ctx: LowerContext, inputs: dict) -> dict:
    return {LOSS_PORT: mean_over_positions(ctx, "Input", jnp.abs(inputs["Input"] - inputs[TARGET_PORT]))}


@lower_layer.register(CrossEntropyLossLayer)
def _lower_cross_entropy(layer: CrossEntropyLossLayer, ctx: LowerContext, inputs: dict) -> dict:
    p, t = inputs["Input"], inputs[TARGET_PORT]
    form = layer.options.target_form
    if form == "Index":
        picked = jnp.take_along_axis(p, t[..., None].astype(jnp.int32), axis=-1)[..., 0]
        per_position = -_log(picked)
    elif form == "Probabilities":
        per_position = -jnp.sum(t * _log(p), axis=-1)
    else:
        per_position = -(t * _log(p) + (1.0 - t) * _log(1.0 - p))
    return {LOSS_PORT: mean_over_positions(ctx, "Input", per_position)}


__all__ = ["CrossEntropyLossLayer", "MeanAbsoluteLossLayer", "MeanSquaredLossLayer"]
