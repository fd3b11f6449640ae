"""Sequence layers: SequenceLastLayer and NetMapOperator.

Shape legend: L sequence length (fixed or varying), ``...`` the element's dims.

================== ======= =============== =================================================
layer              port    shape           notes
================== ======= =============== =================================================
SequenceLastLayer  Input   L x ...         the last *real* element (true length, not pad)
                   Output  ...             an empty sequence gives zeros
NetMapOperator     <in>    L x <net's in>  ``net`` applied to every element, weights shared
                   <out>   L x <net's out> all ports share the same L
================== ======= =============== =================================================
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from ..errors import ShapeMismatchError, SpecificationError

from .base import Layer, LayerOptions
from .lowering import lower_layer
from .scope import constrain


class SequenceLastLayer(Layer):
    """The last element of a sequence."""

    def template(self, scope: Any) -> None:
        scope.same_element("Input", "Output")
        scope.shapes(Input=("L", "*a"), Output=("*a",),
                     needs="SequenceLastLayer needs a sequence (rank >= 1)")


@lower_layer.register(SequenceLastLayer)
def _lower_sequence_last(layer: SequenceLastLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    length = ctx.length("Input", 0)
    if x.shape[0] == 0:
        return {"Output": jnp.zeros(x.shape[1:], x.dtype)}
    if length is None:
        return {"Output": x[x.shape[0] - 1]}
    last = jax.lax.dynamic_index_in_dim(x, jnp.maximum(length - 1, 0), 0, keepdims=False)
    return {"Output": jnp.where(length > 0, last, jnp.zeros((), x.dtype))}


class NetMapOperator(Layer):
    """Applies ``net`` to each element of sequences (its ports get a leading axis L)."""

    is_container = True
    child_caption = ", applied to each element"

    class Options(LayerOptions):
        pass

    net: Layer

    def __init__(self, net: Layer, **kwargs: Any) -> None:
        """The mapped net by position; ports by keyword."""
        if not isinstance(net, Layer):
            raise SpecificationError(
                f"NetMapOperator: {net!r} is not a layer, a net, or a valid specification for one."
            )
        self._set(net=net)
        super().__init__(**kwargs)

    def _adopt_children(self, children: Mapping[str, Layer]) -> None:
        self._set(net=children["Net"])

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.net.input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.net.output_names

    def children(self) -> dict[str, Layer]:
        return {"Net": self.net}

    def with_children(self, children: Mapping[str, Layer]) -> "NetMapOperator":
        new = object.__new__(type(self))
        new._set(net=children.get("Net", self.net))
        new._build({}, {k: v.to_user() for k, v in self.port_specs.items()})
        new._set(activity_regularizer=self.activity_regularizer)  # what sits on the layer itself
        return new

    def describe(self) -> str:
        return f"NetMapOperator[{self.net.describe()}]"

    def template(self, scope: Any) -> None:
        inner = scope.child("Net", self.net)
        constrain(self.net, inner)
        length = scope.solver.new_dim()
        for name in (*self.input_names, *self.output_names):
            sequence_of(scope, name, inner, name, length, "NetMapOperator")


def sequence_of(scope: Any, name: str, inner: Any, inner_name: str, length: int, what: str) -> None:
    """Port ``name`` of ``scope`` is a sequence (dimension cell ``length`` first) of port
    ``inner_name`` of the sub-net scope ``inner``: the rule of NetMapOperator and of the
    recurrent operators, solved in either direction."""
    s = scope.solver
    outer_cell, inner_cell = scope.port(name), inner.port(inner_name)
    s.unify_elems(scope.elem(name), inner.elem(inner_name), scope.where(name))

    def run() -> None:
        din, dout = s.dims(inner_cell), s.dims(outer_cell)
        if din is None and dout is not None:
            if not dout:
                raise ShapeMismatchError(f"{scope.where(name)}: {what} needs a sequence; found a scalar.")
            din = inner.dims(inner_name, len(dout) - 1)
        if din is None:
            return
        dout = scope.dims(name, len(din) + 1)
        scope.same_dim(dout[0], length, name)
        for a, b in zip(dout[1:], din):
            scope.same_dim(a, b, name)

    s.rule(run, shapes=(outer_cell, inner_cell))


@lower_layer.register(NetMapOperator)
def _lower_map(layer: NetMapOperator, ctx: Any, inputs: dict) -> dict:
    names = layer.input_names
    inner = ctx.child("Net")

    def one(*xs: jax.Array) -> dict:
        return lower_layer(layer.net, inner, dict(zip(names, xs)))

    return jax.vmap(one)(*(inputs[n] for n in names))
