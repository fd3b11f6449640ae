"""Lowering to JAX: a registry from layer types to functions over one example.

Every lowering sees a single example with exactly its ports' solved shapes (no batch axis;
the evaluator batches with ``jax.vmap``). A port with varying dimensions carries an array
padded along those axes; the true length of each varying symbol is in ``ctx.lengths`` as an
int32 scalar. Layers that mix values along a varying axis (softmax, aggregation, last
element, convolution, catenation) mask with it; pointwise layers ignore it.

Layers whose training-mode result depends on the whole batch (BatchNormalizationLayer) reduce
over the vmapped batch axis named ``ctx.batch_axis`` (``jax.vmap(..., axis_name=BATCH_AXIS)``)
with :meth:`LowerContext.batch_sum`, counting only real rows (``ctx.row_valid``), and report new
values of their non-trainable arrays with :meth:`LowerContext.put_state`.

``ctx.taps`` (optional) asks for the outputs of inner layers: a dict whose keys are the paths
of graph nodes; lowering a NetGraph fills each requested path with that node's outputs
(``{port: array}``) - NetTrain's activity regularizers read them so.
"""
from __future__ import annotations

import copy
import functools
import itertools
import zlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputDataError
from ..shapes import Varying
from ..shapes.porttype import PortType

from .scope import Inference, Path, show_path


BATCH_AXIS = "batch"
"""The axis name netgraph gives ``jax.vmap`` over a batch of examples."""


def _static(value: Any) -> int | None:
    """A length known at trace time (exact-size data) as an int; None for a traced one."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer) and value.ndim == 0:
        return int(value)
    return None


class LowerContext:
    """What one layer's lowering may read: its solved ports, params, lengths, rng, mode,
    the batch axis for batch statistics, where to report new layer state, and which inner
    outputs to capture (``taps``: path -> outputs, filled for the requested paths)."""

    def __init__(
        self,
        inference: Inference,
        path: Path,
        params: Mapping[str, Any],
        lengths: dict[str, jax.Array],
        rng: jax.Array | None,
        train: bool,
        example: jax.Array | None = None,
        seeded: bool = True,
        batch_axis: str | None = None,
        row_valid: jax.Array | None = None,
        state: dict[Path, jax.Array] | None = None,
        taps: dict[Path, Any] | None = None,
        scan_blocks: bool = True,
        renames: tuple = (),
    ) -> None:
        self.inference = inference
        self.path = path
        self.params = params
        self.lengths = lengths
        self.rng = rng
        self.train = train
        self.example = example
        self.seeded = seeded
        self.batch_axis = batch_axis
        self.row_valid = row_valid
        self.state = state
        self.taps = taps
        self.scan_blocks = scan_blocks  # lower runs of repeated blocks as one lax.scan
        self.renames = renames  # inside such a scan: (depth, {nominal name: real names}, index)

    def child(self, name: str) -> "LowerContext":
        return self.replace(path=self.path + (name,), params=self.params.get(name, {}))

    def replace(self, **changes: Any) -> "LowerContext":
        """A copy with some attributes replaced (the rest shared)."""
        new = copy.copy(self)
        new.__dict__.update(changes)
        return new

    def _path_hash(self) -> Any:
        """crc32 of this layer's path; inside scans over repeated blocks (``renames``), of
        the path of the block being computed (a traced lookup in a table of them)."""
        levels = [(d, table[self.path[d]], index) for d, table, index in self.renames
                  if d < len(self.path) and self.path[d] in table]
        if not levels:
            return zlib.crc32("/".join(self.path).encode())
        table = []
        for combo in itertools.product(*(names for _, names, _ in levels)):
            path = list(self.path)
            for (d, _, _), name in zip(levels, combo):
                path[d] = name
            table.append(zlib.crc32("/".join(path).encode()))
        shape = tuple(len(names) for _, names, _ in levels)
        grid = jnp.asarray(table, jnp.uint32).reshape(shape)
        return grid[tuple(index for _, _, index in levels)]

    def batch_sum(self, x: jax.Array) -> jax.Array:
        """``x`` summed over the real rows of the batch (``x`` itself when the caller does
        not batch over a named axis: the example is its own batch)."""
        if self.row_valid is not None:
            x = jnp.where(self.row_valid, x, jnp.zeros((), x.dtype))
        if self.batch_axis is None:
            return x
        return jax.lax.psum(x, self.batch_axis)

    def put_state(self, name: str, value: jax.Array) -> None:
        """Report the new value of this layer's non-trainable array ``name`` (training
        mode); the caller collects it (see ``lower(net)(..., return_state=True)``)."""
        if self.state is not None:
            self.state[self.path + (name,)] = value

    def port(self, name: str) -> PortType:
        return self.inference.port(self.path, name)

    def shape(self, name: str) -> tuple[int | None, ...]:
        """The solved sizes of port ``name``; None for a varying axis (read it off the data)."""
        return tuple(getattr(d, "size", None) for d in self.port(name).dims)

    def length(self, port: str, axis: int) -> jax.Array | None:
        """The true length along ``axis`` of ``port`` if that axis varies, else None."""
        dim = self.port(port).dims[axis]
        if isinstance(dim, Varying):
            return self.lengths[dim.symbol]
        return None

    def set_length(self, port: str, axis: int, value: jax.Array) -> None:
        """Record the true length of an output axis whose varying symbol this layer creates."""
        dim = self.port(port).dims[axis]
        if isinstance(dim, Varying):
            given, computed = _static(self.lengths.get(dim.symbol)), _static(value)
            if given is not None and computed is not None and given != computed:
                inputs = [name for (path, name), t in self.inference.ports.items()
                          if path == () and t.dims and dim in t.dims]
                raise InputDataError(
                    f'{show_path(self.path)} port "{port}" has length {computed} along axis {axis}, '
                    f"but the data of input port(s) {inputs}, which must have the same length, "
                    f"has length {given}.",
                    hint="a mask for the output of a layer has that layer's output length.",
                )
            self.lengths.setdefault(dim.symbol, jnp.asarray(value, jnp.int32))

    def key(self, seed: int | None = None) -> jax.Array:
        """A PRNG key for this layer, derived from this layer's path and the call's key; a
        layer ``seed`` in a call without a seed of its own gives a key from the layer seed
        (and the example's row in a batch) alone, so the layer's randomness repeats."""
        path_hash = self._path_hash()
        if seed is not None and (self.rng is None or not self.seeded):
            base = jax.random.key(seed)
            if self.example is not None:
                base = jax.random.fold_in(base, self.example)
            return jax.random.fold_in(base, path_hash)
        if seed is not None:
            return jax.random.fold_in(jax.random.fold_in(self.rng, seed), path_hash)
        if self.rng is None:
            from ..errors import InputDataError

            raise InputDataError(
                f"{show_path(self.path)} needs randomness in training mode, but no rng was given.",
                hint="pass rng=jax.random.key(seed) (or seed=... to net(...)).",
            )
        return jax.random.fold_in(self.rng, path_hash)


@functools.singledispatch
def lower_layer(layer: Any, ctx: LowerContext, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Compute ``layer``'s outputs for one example. Layers register with
    ``@lower_layer.register(LinearLayer)``."""
    from ..errors import NetGraphError

    raise NetGraphError(f"no lowering is registered for {type(layer).__name__}.")


def valid_mask(length: jax.Array | int | None, size: int) -> jax.Array | None:
    """Boolean vector ``[size]``: True before ``length``; None when nothing is masked."""
    if length is None or (isinstance(length, int) and length >= size):
        return None  # a length known to cover the axis masks nothing (and costs nothing)
    return jnp.arange(size, dtype=jnp.int32) < length  # int32 lengths, also with 64-bit types on


def masked_along(x: jax.Array, axis: int, mask: jax.Array | None, fill: float) -> jax.Array:
    """``x`` with positions beyond the mask along ``axis`` replaced by ``fill``."""
    if mask is None:
        return x
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return jnp.where(mask.reshape(shape), x, jnp.asarray(fill, x.dtype))


def valid_positions(ctx: LowerContext, port: str, x: jax.Array, axes: tuple[int, ...]) -> jax.Array | None:
    """Boolean array of ``x``'s shape: True at real (unpadded) positions along ``axes``;
    None when none of those axes varies."""
    mask = None
    for axis in axes:
        m = valid_mask(ctx.length(port, axis), x.shape[axis])
        if m is None:
            continue
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        m = jnp.broadcast_to(m.reshape(shape), x.shape)
        mask = m if mask is None else mask & m
    return mask


def masked_softmax(x: jax.Array, axis: int | tuple[int, ...], mask: jax.Array | None) -> jax.Array:
    """Softmax over ``axis`` giving zero weight where ``mask`` is False. A slice with no
    valid position gives all zeros (never NaN, in any float dtype)."""
    if mask is None:
        return jax.nn.softmax(x, axis=axis)
    low = jnp.asarray(jnp.finfo(x.dtype).min, x.dtype)
    z = jnp.where(mask, x, low)
    top = jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True, initial=low))
    e = jnp.where(mask, jnp.exp(z - top), jnp.zeros((), x.dtype))
    total = jnp.sum(e, axis=axis, keepdims=True)
    return e / jnp.where(total == 0, jnp.ones((), x.dtype), total)


def normalize_axis(axis: int, rank: int, what: str) -> int:
    """``axis`` (negative counts from the end) as a position in ``range(rank)``."""
    from ..errors import ShapeMismatchError

    if not -rank <= axis < rank:
        raise ShapeMismatchError(f"{what}: level {axis} does not exist in a rank-{rank} array.")
    return axis % rank
