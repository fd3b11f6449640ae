"""Structural layers: ReshapeLayer, FlattenLayer, TransposeLayer, ReplicateLayer.

Shape legend: ``d1..dr`` input dims.

=================== ============================ ==============================================
layer               Output                       rule
=================== ============================ ==============================================
ReshapeLayer(dims)  dims                         same element count; one Automatic entry is
                                                 solved; Inherited keeps the input dim there
                                                 (a varying input needs Inherited first)
FlattenLayer(n)     merged dims                  All: a vector; n >= 0: the first n+1 dims
                                                 merged; n < 0: the last |n|+1 dims merged
TransposeLayer(p)   d_p[0] x d_p[1] x ...        NumPy permutation; default swaps dims 1, 2
ReplicateLayer(n,l) n inserted at level l        l 0-based; -1 appends at the end
=================== ============================ ==============================================
"""
from __future__ import annotations

from typing import Any, Optional, Union

import jax.numpy as jnp
import pydantic

from ..shapes import Automatic
from ..errors import ShapeMismatchError, SpecificationError
from ..shapes import rules

from .base import Layer, LayerOptions
from .lowering import lower_layer
from .options import All, AllT, AutomaticT, Inherited, InheritedT, Size, as_tuple

_FLATTEN_HINT = "a varying dimension cannot be merged with others; keep it separate (Inherited)."


def _check_rank(scope: Any, dims: tuple, minimum: int, what: str) -> None:
    if len(dims) < minimum:
        raise ShapeMismatchError(
            f"{scope.where('Input')}: {what} needs an input of rank >= {minimum}; "
            f"found rank {len(dims)}."
        )


class ReshapeLayer(Layer):
    """Rearranges the elements into ``dims`` (entries: int, Automatic, Inherited)."""

    class Options(LayerOptions):
        dims: tuple[Union[Size, AutomaticT, InheritedT], ...]

        @pydantic.field_validator("dims", mode="before")
        @classmethod
        def _sequence(cls, dims: Any) -> Any:
            return (dims,) if isinstance(dims, int) else as_tuple(dims)

        @pydantic.field_validator("dims")
        @classmethod
        def _one_automatic(cls, dims: tuple) -> tuple:
            if sum(d is Automatic for d in dims) > 1:
                raise ValueError("at most one dimension can be Automatic")
            return dims

    positional = ("dims",)

    def describe(self) -> str:
        return f"ReshapeLayer[{self.options.dims}]"

    def template(self, scope: Any) -> None:
        s = scope.solver
        spec = self.options.dims
        out = scope.dims("Output", len(spec))
        for cell, entry in zip(out, spec):
            if isinstance(entry, int):
                scope.fix(cell, entry, "Output")
        scope.same_element("Input", "Output")

        def install(rank: int) -> None:
            dims = scope.dims("Input", rank)
            inherited = [i for i, e in enumerate(spec) if e is Inherited]
            if inherited:
                _check_rank(scope, dims, max(inherited) + 1, "Inherited")
            for i in inherited:
                scope.same_dim(out[i], dims[i], "Output")
            lead = 1 if spec and spec[0] is Inherited else 0
            whole = s.new_dim()
            origin, where = scope.origin("Output"), scope.where("Input")
            for cells in (dims[lead:], [c for i, c in enumerate(out) if i >= lead]):
                rules.product(s, s.shape_of_dims(cells), whole, origin, where,
                              varying_hint="put Inherited first to keep a varying dimension.")

        scope.once_ranked(("Input",), install)


@lower_layer.register(ReshapeLayer)
def _lower_reshape(layer: ReshapeLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    shape = tuple(x.shape[i] if size is None else size for i, size in enumerate(ctx.shape("Output")))
    return {"Output": x.reshape(shape)}


def flatten_span(level: Any, rank: int) -> tuple[int, int]:
    """The ``[start, stop)`` axes merged by FlattenLayer(level) on a rank-``rank`` input."""
    if level is All:
        return 0, rank
    if level >= 0:
        return 0, min(level + 1, rank)
    return max(rank + level - 1, 0), rank


class FlattenLayer(Layer):
    """Merges consecutive dimensions (see the module docstring)."""

    class Options(LayerOptions):
        level: Union[int, AllT] = All

    positional = ("level",)

    def template(self, scope: Any) -> None:
        s = scope.solver
        scope.same_element("Input", "Output")

        def install(rank: int) -> None:
            dims = scope.dims("Input", rank)
            _check_rank(scope, dims, 1, "FlattenLayer")
            start, stop = flatten_span(self.options.level, len(dims))
            out = scope.dims("Output", len(dims) - (stop - start) + 1)
            for a, b in zip(out[:start], dims[:start]):
                scope.same_dim(a, b, "Output")
            for a, b in zip(out[start + 1:], dims[stop:]):
                scope.same_dim(a, b, "Output")
            merged = dims[start:stop]
            if len(merged) == 1:
                scope.same_dim(out[start], merged[0], "Output")
            else:
                rules.product(s, s.shape_of_dims(merged), out[start], scope.origin("Output"),
                              scope.where("Input"), varying_hint=_FLATTEN_HINT)

        scope.once_ranked(("Input",), install)


@lower_layer.register(FlattenLayer)
def _lower_flatten(layer: FlattenLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    start, stop = flatten_span(layer.options.level, x.ndim)
    return {"Output": x.reshape(x.shape[:start] + (-1,) + x.shape[stop:])}


class TransposeLayer(Layer):
    """Permutes dimensions: output axis i is input axis ``perm[i]`` (NumPy's convention);
    the default swaps the first two dimensions."""

    class Options(LayerOptions):
        perm: Optional[tuple[pydantic.NonNegativeInt, ...]] = None

        @pydantic.field_validator("perm", mode="before")
        @classmethod
        def _sequence(cls, perm: Any) -> Any:
            return as_tuple(perm)

        @pydantic.field_validator("perm")
        @classmethod
        def _permutation(cls, perm: Optional[tuple]) -> Optional[tuple]:
            if perm is not None and sorted(perm) != list(range(len(perm))):
                raise ValueError(f"{perm} is not a permutation of 0..{len(perm) - 1}")
            return perm

    positional = ("perm",)

    def permutation(self, rank: int) -> tuple[int, ...]:
        perm = self.options.perm
        if perm is None:
            return (1, 0, *range(2, rank))
        return perm

    def template(self, scope: Any) -> None:
        scope.same_element("Input", "Output")
        perm = self.options.perm
        if perm is None:  # the default: the first two dimensions swapped
            scope.shapes(Input=("d1", "d2", "*r"), Output=("d2", "d1", "*r"),
                         needs="TransposeLayer needs an input of rank >= 2")
        else:
            dims = [f"d{i + 1}" for i in range(len(perm))]
            scope.shapes(Input=dims, Output=[dims[j] for j in perm])


@lower_layer.register(TransposeLayer)
def _lower_transpose(layer: TransposeLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    return {"Output": jnp.transpose(x, layer.permutation(x.ndim))}


class ReplicateLayer(Layer):
    """Repeats the input ``size`` times along new dimension(s) inserted at ``level``."""

    class Options(LayerOptions):
        size: Union[Size, tuple[Size, ...], AutomaticT] = Automatic
        level: int = 0

    positional = ("size", "level")

    def describe(self) -> str:
        return f"ReplicateLayer[{self.options.size}]"

    def new_dims(self) -> tuple:
        size = self.options.size
        return (size,) if not isinstance(size, tuple) else size

    def position(self, rank: int) -> int:
        level = self.options.level
        position = level if level >= 0 else rank + 1 + level
        if not 0 <= position <= rank:
            raise SpecificationError(
                f"ReplicateLayer: level {level} is outside a rank-{rank} input."
            )
        return position

    def template(self, scope: Any) -> None:
        s = scope.solver
        scope.same_element("Input", "Output")
        new = self.new_dims()

        def run() -> None:
            din, dout = s.dims(scope.port("Input")), s.dims(scope.port("Output"))
            if din is None and dout is not None:
                din = scope.dims("Input", len(dout) - len(new))
            if din is None:
                return
            out = scope.dims("Output", len(din) + len(new))
            p = self.position(len(din))
            for cell, size in zip(out[p:p + len(new)], new):
                if isinstance(size, int):
                    scope.fix(cell, size, "Output")
            for a, b in zip(out[:p] + out[p + len(new):], din):
                scope.same_dim(a, b, "Output")

        s.rule(run, shapes=(scope.port("Input"), scope.port("Output")))


@lower_layer.register(ReplicateLayer)
def _lower_replicate(layer: ReplicateLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    p = layer.position(x.ndim)
    k = len(layer.new_dims())
    sizes = ctx.shape("Output")[p:p + k]
    expanded = x.reshape(x.shape[:p] + (1,) * k + x.shape[p:])
    return {"Output": jnp.broadcast_to(expanded, x.shape[:p] + tuple(sizes) + x.shape[p:])}
