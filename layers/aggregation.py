"""AggregationLayer and SummationLayer: reduce an array over some of its levels.

Shape legend: the Input has rank r; ``levels`` picks the reduced axes (0-based).

====== ================== =================================================
port   shape              notes
====== ================== =================================================
Input  d1 x ... x dr      reduced levels may vary (padding is ignored)
Output the kept dims      ``SummationLayer``: a scalar (all levels totalled)
====== ================== =================================================

``function``: "Mean", "Total", "Max", "Min", "Times", "Median", "Variance",
"StandardDeviation", "MeanDeviation" or "InterquartileRange" (Wolfram's functions). ``levels``: an int, a tuple of
ints, ``All``, or a slice; the default ``slice(1, None)`` keeps the first dimension (as
Wolfram's ``2;;All``). Over a varying level only the example's real positions count.

* "Median": the middle element, or the mean of the two middle ones for an even count;
* "Variance": Wolfram's (and NumPy's ``ddof=1``) *unbiased* estimate,
  ``sum((x - mean)^2) / (n - 1)``; "StandardDeviation" its square root;
* "MeanDeviation": ``mean(|x - mean|)``;
* "InterquartileRange": Q(3/4) - Q(1/4) with Wolfram's default quantile (linear
  interpolation at the 0-based position ``n q - 1/2``, clamped; NumPy's ``method="hazen"``).

An empty selection along a varying level gives 0 (1 for "Times", the empty product); the
variance and standard deviation of a single element are 0.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

import jax.numpy as jnp
import pydantic

from ..errors import ShapeMismatchError

from .base import Layer, LayerOptions
from .lowering import lower_layer, valid_positions
from .options import All, AllT, as_tuple


class Span(pydantic.BaseModel):
    """A range of levels, from ``start`` to ``stop`` (exclusive; None for the end)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    start: int = 0
    stop: Optional[int] = None


Levels = Union[int, tuple[int, ...], AllT, Span]
Function = Literal["Mean", "Total", "Max", "Min", "Times", "Median", "Variance",
                   "StandardDeviation", "MeanDeviation", "InterquartileRange"]
_FILL = {"Total": 0.0, "Mean": 0.0, "Times": 1.0}


def resolve_levels(levels: Levels, rank: int, where: str) -> tuple[int, ...]:
    """The sorted 0-based axes named by ``levels`` in a rank-``rank`` array."""
    if levels is All:
        return tuple(range(rank))
    if isinstance(levels, Span):
        return tuple(range(rank))[levels.start:levels.stop]
    chosen = (levels,) if isinstance(levels, int) else levels
    for level in chosen:
        if not -rank <= level < rank:
            raise ShapeMismatchError(
                f"{where}: level {level} does not exist in a rank-{rank} array.",
                hint="levels are 0-based; negative levels count from the end.",
            )
    return tuple(sorted({level % rank for level in chosen}))


class AggregationLayer(Layer):
    """Reduces ``levels`` of the input with ``function``."""

    class Options(LayerOptions):
        function: Function
        levels: Levels = Span(start=1)

        @pydantic.field_validator("levels", mode="before")
        @classmethod
        def _span(cls, levels: Any) -> Any:
            """A slice of levels (``slice(1, None)``: Wolfram's ``2;;All``) as a Span."""
            if isinstance(levels, slice):
                if levels.step not in (None, 1):
                    raise ValueError(f"level slices take no step; found {levels!r}")
                return Span(start=levels.start or 0, stop=levels.stop)
            return as_tuple(levels)

    positional = ("function", "levels")

    def describe(self) -> str:
        return f"{self.type_name}[{self.options.function}]"

    def template(self, scope: Any) -> None:
        scope.real("Input", "Output")

        def install(rank: int) -> None:  # which levels are reduced depends on the rank
            axes = resolve_levels(self.options.levels, rank, scope.where("Input"))
            kept = [d for i, d in enumerate(scope.dims("Input", rank)) if i not in axes]
            for a, b in zip(scope.dims("Output", len(kept)), kept):
                scope.same_dim(a, b, "Output")

        scope.once_ranked(("Input",), install)


class SummationLayer(AggregationLayer):
    """The total of all elements: a scalar."""

    class Options(AggregationLayer.Options):
        function: Function = "Total"
        levels: Levels = All

    positional = ()

    def describe(self) -> str:
        return self.type_name


def _flattened(x: Any, axes: tuple[int, ...]) -> Any:
    """``x`` with ``axes`` moved to the end and merged into one."""
    moved = jnp.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    return moved.reshape(moved.shape[:x.ndim - len(axes)] + (-1,))


def _quantile(ordered: Any, count: Any, q: float) -> Any:
    """Wolfram's default quantile (parameters {{1/2, 0}, {0, 1}}: linear interpolation at the
    0-based position ``count * q - 1/2``, clamped to the ends; NumPy's "hazen") of the first
    ``count`` elements of each sorted row of ``ordered``."""
    n = count[..., None]
    position = jnp.clip(n.astype(ordered.dtype) * q - 0.5, 0, jnp.maximum(n - 1, 0).astype(ordered.dtype))
    low = jnp.floor(position)
    below = jnp.take_along_axis(ordered, low.astype(jnp.int32), axis=-1)
    above = jnp.take_along_axis(ordered, jnp.ceil(position).astype(jnp.int32), axis=-1)
    return (below + (above - below) * (position - low))[..., 0]


def _order_statistic(function: str, x: Any, axes: tuple[int, ...], mask: Any, count: Any) -> Any:
    """Median or InterquartileRange over the real positions: padding sorts last (as +inf)."""
    top = jnp.asarray(jnp.inf, x.dtype)
    ordered = jnp.sort(_flattened(jnp.where(mask, x, top), axes), axis=-1)
    if function == "Median":
        result = _quantile(ordered, count, 0.5)
    else:
        result = _quantile(ordered, count, 0.75) - _quantile(ordered, count, 0.25)
    return jnp.where(count > 0, result, jnp.zeros((), x.dtype))


def _spread(function: str, x: Any, axes: tuple[int, ...], mask: Any, count: Any) -> Any:
    """Variance, StandardDeviation or MeanDeviation over the real positions."""
    zero = jnp.zeros((), x.dtype)
    n = count.astype(x.dtype)
    mean = jnp.sum(jnp.where(mask, x, zero), axis=axes, keepdims=True) / jnp.maximum(
        jnp.expand_dims(n, axes), 1)
    deviation = jnp.where(mask, x - mean, zero)
    if function == "MeanDeviation":
        return jnp.sum(jnp.abs(deviation), axis=axes) / jnp.maximum(n, 1)
    variance = jnp.sum(deviation * deviation, axis=axes) / jnp.maximum(n - 1, 1)
    if function == "Variance":
        return variance
    positive = variance > 0  # sqrt's gradient at 0 is infinite: keep it out of the graph
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, variance, jnp.ones((), x.dtype))), zero)


def aggregate(function: str, x: Any, axes: tuple[int, ...], mask: Any) -> Any:
    """Reduce ``x`` over ``axes`` ignoring positions where ``mask`` is False."""
    if mask is None:
        mask = jnp.ones(x.shape, bool)
    count = jnp.sum(mask, axis=axes)
    if function in ("Median", "InterquartileRange"):
        return _order_statistic(function, x, axes, mask, count)
    if function in ("Variance", "StandardDeviation", "MeanDeviation"):
        return _spread(function, x, axes, mask, count)
    if function in _FILL:
        filled = jnp.where(mask, x, jnp.asarray(_FILL[function], x.dtype))
        if function == "Times":
            return jnp.prod(filled, axis=axes)
        total = jnp.sum(filled, axis=axes)
        if function == "Total":
            return total
        return total / jnp.maximum(count, 1).astype(x.dtype)
    reduce = jnp.max if function == "Max" else jnp.min
    extreme = jnp.finfo(x.dtype).min if function == "Max" else jnp.finfo(x.dtype).max
    result = reduce(jnp.where(mask, x, jnp.asarray(extreme, x.dtype)), axis=axes, initial=extreme)
    return jnp.where(count > 0, result, jnp.zeros((), x.dtype))


@lower_layer.register(AggregationLayer)
def _lower_aggregation(layer: AggregationLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    axes = resolve_levels(layer.options.levels, x.ndim, "AggregationLayer")
    return {"Output": aggregate(layer.options.function, x, axes, valid_positions(ctx, "Input", x, axes))}
