"""``ng.export(net, path)``: the lowered net and its parameters as one serialised
``jax.export`` artifact (StableHLO) that serves every batch size and every length.

Calling convention of the exported function (``jax.export.deserialize(blob).call``)::

    outputs = exported.call(*inputs, *lengths)

* ``inputs``: one array per input port, in ``net.input_names`` order, each with a leading
  batch axis ``B`` (symbolic: any batch size), then the port's shape; a ``"Varying"`` axis is
  symbolic too (any padded length). Real ports take float32, integer ports int32.
* ``lengths``: only when the net has varying input dimensions - one int32 vector ``[B]``
  per varying symbol, in order of first appearance over the input ports (port order, axis
  order): the true length of each example (positions beyond it are padding and never change
  a result). :func:`exported_signature` says which symbol belongs to which port axis.
* ``outputs``: a tuple with one array per output port, in ``net.output_names`` order, each
  with the leading batch axis (varying output axes padded as the inputs are).

The artifact is evaluation mode (no dropout; BatchNormalization uses its moving statistics)
and needs only JAX to run: ``jax.export.deserialize(open(path, "rb").read()).call(...)``.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .compiler import params_of, require_initialized, run
from .errors import SpecificationError
from .layers.base import Layer
from .layers.lowering import BATCH_AXIS
from .shapes import Index, Integer, Known, Varying


def exported_signature(net: Layer) -> dict[str, Any]:
    """The calling convention of ``export(net, ...)``: ``inputs`` (port, shape, dtype) with
    ``"B"`` the batch axis and ``"L0"``, ``"L1"``, ... the varying axes, ``lengths`` (each
    length argument in order: the port and axis it measures), ``outputs`` (port names)."""
    return _signature(net)[0]


def _signature(net: Layer) -> tuple[dict[str, Any], list[str]]:
    """The signature and the net's varying symbols in argument order."""
    symbols: dict[str, str] = {}
    where: dict[str, tuple[str, int]] = {}
    inputs = []
    for name in net.input_names:
        ptype = net.inference.port((), name)
        if ptype.dims is None:
            raise SpecificationError(f'export: the rank of input port "{name}" is not known.',
                                     hint="declare the port's shape (e.g. Input=(\"Varying\", 8)).")
        shape: list[Any] = ["B"]
        for axis, dim in enumerate(ptype.dims):
            if isinstance(dim, Varying):
                if dim.symbol not in symbols:
                    symbols[dim.symbol] = f"L{len(symbols)}"
                    where[symbols[dim.symbol]] = (name, axis)
                shape.append(symbols[dim.symbol])
            elif isinstance(dim, Known):
                shape.append(dim.size)
            else:
                raise SpecificationError(
                    f'export: dimension {axis + 1} of input port "{name}" is not inferred ({ptype}).',
                    hint="declare the port's sizes before exporting.")
        integer = isinstance(ptype.element, (Integer, Index))
        inputs.append((name, tuple(shape), "int32" if integer else "float32"))
    signature = {"inputs": inputs, "lengths": where, "outputs": list(net.output_names)}
    return signature, list(symbols)


def export(net: Layer, path: Any, *, platforms: Sequence[str] | None = None) -> dict[str, Any]:
    """Write ``net`` (initialised) as a serialised ``jax.export`` artifact to ``path``; returns
    its calling convention (:func:`exported_signature`). ``platforms``: the targets to lower
    for, e.g. ``("cpu", "cuda")`` (default: this machine's)."""
    require_initialized(net)
    signature, symbols = _signature(net)
    names = ["B", *signature["lengths"]]
    dims = dict(zip(names, jax.export.symbolic_shape(", ".join(names))))
    specs = [jax.ShapeDtypeStruct(tuple(dims[d] if isinstance(d, str) else d for d in shape), dtype)
             for _, shape, dtype in signature["inputs"]]
    specs += [jax.ShapeDtypeStruct((dims["B"],), "int32") for _ in symbols]
    params = jax.tree_util.tree_map(jnp.asarray, params_of(net))
    count = len(net.input_names)

    def batch_fn(*args: jax.Array) -> tuple[jax.Array, ...]:
        def one(inputs: Sequence[jax.Array], lengths: Sequence[jax.Array]) -> tuple[jax.Array, ...]:
            outputs, _ = run(net, params, dict(zip(net.input_names, inputs)),
                             dict(zip(symbols, lengths)), None, False, batch_axis=BATCH_AXIS)
            return tuple(outputs[n] for n in net.output_names)

        return jax.vmap(one, axis_name=BATCH_AXIS)(args[:count], args[count:])

    exported = jax.export.export(jax.jit(batch_fn), platforms=platforms)(*specs)
    with open(os.fspath(path), "wb") as handle:
        handle.write(exported.serialize())
    return signature


def load_exported(path: Any) -> Any:
    """The ``jax.export.Exported`` of an artifact written by :func:`export` (call it with
    ``.call(*inputs, *lengths)``; plain JAX does the same: no netgraph needed)."""
    with open(os.fspath(path), "rb") as handle:
        return jax.export.deserialize(bytearray(handle.read()))


__all__ = ["export", "exported_signature", "load_exported"]
