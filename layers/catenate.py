"""CatenateLayer: join arrays along one level.

Shape legend: every input has rank r; ``level`` (0-based, default 0) is the joined axis.

========= ============================ ==============================================
port      shape                        notes
========= ============================ ==============================================
Input<i>  d1 x .. x n_i x .. x dr      off-level dims equal across inputs
Output    d1 x .. x (n_1+..+n_k) x ..  a varying part makes a new varying length
========= ============================ ==============================================

Along a varying level the parts are joined at their true lengths (no padding in between);
the output's length is the sum of the inputs' lengths.
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

        def install(rank: int) -> None:
            axis = normalize_axis(self.options.level, rank, scope.where("Output"))
            out = scope.dims("Output", rank)
            parts = [scope.dims(n, rank) for n in names]
            for i in range(rank):
                if i != axis:
                    for name, dims in zip(names, parts):
                        scope.same_dim(out[i], dims[i], name)
            rules.total(s, [dims[axis] for dims in parts], out[axis], scope.origin("Output"),
                        scope.where("Output"))

        scope.once_ranked((*names, "Output"), install)


@lower_layer.register(CatenateLayer)
def _lower_catenate(layer: CatenateLayer, ctx: Any, inputs: dict) -> dict:
    xs = [inputs[n] for n in layer.input_names]
    axis = layer.options.level % xs[0].ndim
    lengths = [ctx.length(n, axis) for n in layer.input_names]
    joined = jnp.concatenate(xs, axis=axis)
    if all(length is None for length in lengths):
        return {"Output": joined}
    sizes = [x.shape[axis] for x in xs]
    true = jnp.stack([jnp.asarray(size if n is None else n, jnp.int32) for n, size in zip(lengths, sizes)])
    ends = jnp.cumsum(true)
    starts = ends - true
    padded_starts = jnp.asarray([sum(sizes[:i]) for i in range(len(sizes))], jnp.int32)
    j = jnp.arange(joined.shape[axis])
    part = jnp.minimum(jnp.sum(j[:, None] >= ends[None, :], axis=1), len(xs) - 1)
    source = jnp.clip(padded_starts[part] + j - starts[part], 0, joined.shape[axis] - 1)
    out = jnp.take(joined, source, axis=axis)
    ctx.set_length("Output", axis, ends[-1])
    return {"Output": masked_along(out, axis, valid_mask(ends[-1], out.shape[axis]), 0.0)}
