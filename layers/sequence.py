"""Sequence layers: SequenceLastLayer, NetMapOperator, SequenceMostLayer,
SequenceRestLayer, SequenceReverseLayer and SequenceIndicesLayer.

Shape legend: L sequence length (fixed or varying), ``...`` the element's dims.

==================== ======= =============== ===============================================
layer                port    shape           notes
==================== ======= =============== ===============================================
SequenceLastLayer    Input   L x ...         the last *real* element (true length, not pad)
                     Output  ...             an empty sequence gives zeros
NetMapOperator       <in>    L x <net's in>  ``net`` applied to every element, weights shared
                     <out>   L x <net's out> all ports share the same L
SequenceMostLayer    Input   L x ...         all but the last real element
                     Output  (L-1) x ...     a fixed L must be >= 2; a varying L gives a new
SequenceRestLayer    Input   L x ...         all but the first element    length, L - 1
                     Output  (L-1) x ...     (0 for an empty sequence)
SequenceReverseLayer Input   L x ...         reversed within the true length (the padding
                     Output  L x ...         stays behind the real elements)
SequenceIndicesLayer Input   L x ...         any element type
                     Output  L integers      0, 1, .., L-1 (0-based); ``maximum=m`` caps them
                                             at m-1: Restricted("Integer", m), for an
                                             EmbeddingLayer(size, m) of positions
==================== ======= =============== ===============================================
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import pydantic

from ..errors import ShapeMismatchError, SpecificationError

from .base import Layer, LayerOptions
from .lowering import lower_layer
from .parts import shifted
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


# --------------------------------------------- SequenceMost, SequenceRest, SequenceReverse
class _SequenceDrop(Layer):
    """Shared template of SequenceMostLayer and SequenceRestLayer: one element fewer."""

    def template(self, scope: Any) -> None:
        scope.same_element("Input", "Output")
        cells = scope.shapes(Input=("L", "*a"), Output=("M", "*a"),
                             needs=f"{self.type_name} needs a sequence (rank >= 1)")
        shifted(scope, cells["L"], cells["M"], "Output", -1, minimum=2,
                what=f"{self.type_name} (a sequence of two or more elements)")


class SequenceMostLayer(_SequenceDrop):
    """The sequence without its last (real) element."""


class SequenceRestLayer(_SequenceDrop):
    """The sequence without its first element."""


@lower_layer.register(SequenceMostLayer)
def _lower_sequence_most(layer: SequenceMostLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    length = ctx.length("Input", 0)
    if length is not None:  # the padded rows follow the real ones: the last real one goes
        ctx.set_length("Output", 0, jnp.maximum(length - 1, 0))
    return {"Output": x[:max(x.shape[0] - 1, 0)]}


@lower_layer.register(SequenceRestLayer)
def _lower_sequence_rest(layer: SequenceRestLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    length = ctx.length("Input", 0)
    if length is not None:
        ctx.set_length("Output", 0, jnp.maximum(length - 1, 0))
    return {"Output": x[1:]}


class SequenceReverseLayer(Layer):
    """The sequence in reverse order (within each example's true length)."""

    def template(self, scope: Any) -> None:
        scope.same_shape("Input", "Output")
        scope.shapes(Input=("L", "*a"), needs="SequenceReverseLayer needs a sequence (rank >= 1)")


def reverse_within(x: jax.Array, length: Any) -> jax.Array:
    """``x`` with its first ``length`` elements (along axis 0) reversed and the padding after
    them left in place; ``length`` None reverses the whole axis."""
    if length is None or (isinstance(length, int) and length >= x.shape[0]):
        return x[::-1]  # an exact-size example: nothing to keep in place
    t = jnp.arange(x.shape[0], dtype=jnp.int32)
    return x[jnp.where(t < length, length - 1 - t, t)]


@lower_layer.register(SequenceReverseLayer)
def _lower_sequence_reverse(layer: SequenceReverseLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": reverse_within(inputs["Input"], ctx.length("Input", 0))}


# ------------------------------------------------------------------ SequenceIndicesLayer
class SequenceIndicesLayer(Layer):
    """The positions 0, 1, .., L-1 of a sequence's elements (Wolfram's 1..L, 0-based), for
    positional embeddings. ``maximum=m`` (Wolfram's "Maximum") caps them at m - 1 and makes
    the output ``Restricted("Integer", m)``, so a following ``EmbeddingLayer(size)`` infers
    its m rows."""

    class Options(LayerOptions):
        maximum: Optional[pydantic.PositiveInt] = None

    def describe(self) -> str:
        maximum = self.options.maximum
        return self.type_name if maximum is None else f"SequenceIndicesLayer[maximum={maximum}]"

    def template(self, scope: Any) -> None:
        scope.shapes(Input=("L", "*a"), Output=("L",),
                     needs="SequenceIndicesLayer needs a sequence (rank >= 1)")
        maximum = self.options.maximum
        if maximum is None:
            scope.element("Output", "Integer")
        else:
            range_cell = scope.solver.new_dim(maximum, scope.origin("Output"))
            scope.element("Output", ("Index", range_cell))


@lower_layer.register(SequenceIndicesLayer)
def _lower_sequence_indices(layer: SequenceIndicesLayer, ctx: Any, inputs: dict) -> dict:
    positions = jnp.arange(inputs["Input"].shape[0], dtype=jnp.int32)
    maximum = layer.options.maximum
    return {"Output": positions if maximum is None else jnp.minimum(positions, maximum - 1)}
