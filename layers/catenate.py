"""CatenateLayer: join arrays along one level.

Shape legend: the inputs have ranks r_i, r = max r_i; ``level`` (0-based, default 0) is the
joined axis, counted (as in Wolfram) from the first dimension of the lowest-rank input.

========= ============================ ==============================================
port      shape                        notes
========= ============================ ==============================================
Input<i>  d1 x .. x n_i x .. x dr      off-level dims equal across inputs; a lower-rank
                                       input has the trailing dims of the others
Output    d1 x .. x (n_1+..+n_k) x ..  rank r; a varying part makes a new varying length
========= ============================ ==============================================

An input of lower rank is replicated along the leading dimensions it lacks (Wolfram's
rule): ``CatenateLayer(0)`` of a sequence ``L x d`` and a vector ``c`` appends the vector to
every element, giving ``L x (d + c)``. Inputs whose rank is not known take the highest rank
of the others. Along a varying level the parts are joined at their true lengths (no padding
in between); the output's length is the sum of the inputs' lengths.
"""
from __future__ import annotations

from typing import Any, Union

import jax.numpy as jnp
import pydantic

from ..shapes import rules

from .lowering import lower_layer, masked_along, normalize_axis, valid_mask
from .base import LayerOptions
from .threading import VariadicLayer


class CatenateLayer(VariadicLayer):
    """Joins its inputs along ``level``."""

    class Options(LayerOptions):
        level: int = 0
        inputs: Union[pydantic.PositiveInt, None] = None

    positional = ("level",)

    def template(self, scope: Any) -> None:
        s = scope.solver
        names = self.input_names
        for name in names:
            scope.same_element("Output", name)

        def ranks() -> list:
            return [None if (d := s.dims(scope.port(n))) is None else len(d) for n in names]

        def install(rank_of: list) -> None:
            top = max(rank_of)
            out_axis = self.joined_axis(rank_of, scope.where("Output"))
            out = scope.dims("Output", top)
            parts = []
            for name, rank in zip(names, rank_of):
                dims, offset = scope.dims(name, rank), top - rank
                for i, dim in enumerate(dims):
                    if i + offset != out_axis:
                        scope.same_dim(out[i + offset], dim, name)
                parts.append(dims[out_axis - offset])
            rules.total(s, parts, out[out_axis], scope.origin("Output"), scope.where("Output"))

        done: list[bool] = []

        def run() -> None:
            rank_of = ranks()
            if not done and None not in rank_of:
                done.append(True)
                install(rank_of)

        def default() -> None:  # an input of unknown rank takes the highest known rank
            rank_of = ranks()
            out = s.dims(scope.port("Output"))
            known = [r for r in rank_of if r is not None] + ([len(out)] if out is not None else [])
            if done or not known:
                return
            for name, rank in zip(names, rank_of):
                if rank is None:
                    scope.dims(name, max(known))

        s.rule(run, shapes=[scope.port(n) for n in (*names, "Output")], default=default)

    def joined_axis(self, ranks: list, where: str) -> int:
        """The output axis joined, for inputs of ``ranks`` (level counted from the lowest)."""
        low = min(ranks)
        return normalize_axis(self.options.level, low, where) + max(ranks) - low


@lower_layer.register(CatenateLayer)
def _lower_catenate(layer: CatenateLayer, ctx: Any, inputs: dict) -> dict:
    names = layer.input_names
    xs = [inputs[n] for n in names]
    top = max(x.ndim for x in xs)
    axis = layer.joined_axis([x.ndim for x in xs], "CatenateLayer")
    full = next(x for x in xs if x.ndim == top)
    lengths = [ctx.length(n, axis - (top - x.ndim)) for n, x in zip(names, xs)]
    xs = [jnp.broadcast_to(x, full.shape[:top - x.ndim] + x.shape) for x in xs]  # replicated
    joined = jnp.concatenate(xs, axis=axis)
    if all(length is None for length in lengths):
        return {"Output": joined}
    sizes = [x.shape[axis] for x in xs]
    true = jnp.stack([jnp.asarray(size if n is None else n, jnp.int32) for n, size in zip(lengths, sizes)])
    ends = jnp.cumsum(true)
    starts = ends - true
    padded_starts = jnp.asarray([sum(sizes[:i]) for i in range(len(sizes))], jnp.int32)
    j = jnp.arange(joined.shape[axis], dtype=jnp.int32)
    part = jnp.minimum(jnp.sum(j[:, None] >= ends[None, :], axis=1), len(xs) - 1)
    source = jnp.clip(padded_starts[part] + j - starts[part], 0, joined.shape[axis] - 1)
    out = jnp.take(joined, source, axis=axis)
    ctx.set_length("Output", axis, ends[-1])
    return {"Output": masked_along(out, axis, valid_mask(ends[-1], out.shape[axis]), 0.0)}
