"""NetExtract and NetReplacePart: addressing the parts of a net by path.

A part spec is a layer name, an int (0-based position; negative from the end), a tuple path
reaching through sub-nets to any depth (``("enc", "proj", "Weights")``), or ``All``. The last
element of a path may name an array (a NumPy array comes back, or None if uninitialised) or
an option.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .layers.base import Layer, NetArray, shared_values
from .layers.options import All
from .layers.scope import Inference, Path, show_path
from .layers.tree import child_name, map_layers
from .shapes import Automatic, Known
from .errors import PartSpecError, ShapeMismatchError
from .coders import Coder, coder_of
from .shapes import parse_port_spec

from .graph import as_layer


def _no_part(layer: Layer, part: Any, path: Path) -> PartSpecError:
    parts = list(layer.children()) + list(layer.array_specs()) + list(type(layer.options).model_fields)
    return PartSpecError(
        f"{show_path(path)} ({layer.describe()}) has no part {part!r}.",
        hint=f"its parts are: {', '.join(map(repr, parts)) or 'none'}.",
    )


def specialized(layer: Layer, inference: Inference, path: Path) -> Layer:
    """``layer`` (found at ``path``) with its ports declared as inferred there."""
    specs = {}
    for port in (*layer.input_names, *layer.output_names):
        ptype = inference.ports.get((path, port))
        if ptype is not None and ptype.dims is not None and port not in layer.port_specs:
            user = ptype.to_user()  # only a first dimension can be declared "Varying"
            specs[port] = tuple(Automatic if i > 0 and d == "Varying" else d for i, d in enumerate(user))
    return layer.evolve(port_specs=specs) if specs else layer


def _parts(spec: Any) -> tuple:
    return tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)


def _set_shared(layer: Layer, name: str, value: Any) -> Layer:
    """``layer`` with every use of the shared array ``name`` set to ``value``."""
    def put(path: Path, sub: Layer) -> Layer:
        arrays = {local: value for local, shared in sub.shared.items() if shared == name}
        return sub.evolve(arrays=arrays) if arrays else sub

    return map_layers(put, layer)


def NetExtract(net: Layer, spec: Any) -> Any:
    """A layer, sub-net, array (NumPy) or option of ``net``; ``All`` gives every layer;
    ``NetArray(name)`` a shared array; a port its NetEncoder / NetDecoder (or its inferred
    type); on a coder, an option of the coder (``NetExtract(encoder, "vocabulary")``)."""
    if isinstance(net, Coder):
        if not isinstance(spec, str) or spec not in type(net.options).model_fields:
            raise PartSpecError(f"{net.describe()} has no part {spec!r}.",
                                hint=f"its parts are: {', '.join(map(repr, type(net.options).model_fields))}.")
        return getattr(net.options, spec)
    if isinstance(spec, NetArray):
        values = shared_values(net)
        if spec.name not in values:
            raise PartSpecError(f"the net has no shared array NetArray({spec.name!r}).",
                                hint=f"its shared arrays are: {sorted(values) or 'none'}.")
        value = values[spec.name]
        return None if value is None else np.array(value)
    if spec is All:
        children = net.children()
        if not children:
            return {n: (None if a is None else np.array(a)) for n, a in net.arrays.items()}
        return {n: NetExtract(net, n) for n in children}
    layer, path = net, ()
    parts = _parts(spec)
    for i, part in enumerate(parts):
        name = child_name(layer.children(), part)
        if name is not None:
            layer, path = layer.children()[name], path + (name,)
            continue
        if i == len(parts) - 1 and part in layer.array_specs():
            arr = layer.arrays.get(part)
            return None if arr is None else np.array(arr)
        if i == len(parts) - 1 and isinstance(part, str) and part in type(layer.options).model_fields:
            return getattr(layer.options, part)
        if i == len(parts) - 1 and isinstance(part, str) and part in (*layer.input_names, *layer.output_names):
            coder = coder_of(layer.port_specs.get(part))  # a port: its coder, or its type
            return coder if coder is not None else net.inference.port(path, part).to_user()
        raise _no_part(layer, part, path)
    return specialized(layer, net.inference, path) if path else net


class _SharedTarget(Exception):
    """Raised inside _replace when the target is a shared array (replaced everywhere)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _replace(layer: Layer, parts: tuple, value: Any, path: Path, inference: Inference) -> Layer:
    part = parts[0]
    name = child_name(layer.children(), part)
    if name is not None:
        child = layer.children()[name]
        new = (as_layer(value, f"NetReplacePart {show_path(path + (name,))}") if len(parts) == 1
               else _replace(child, parts[1:], value, path + (name,), inference))
        return layer.with_children({name: new})
    if len(parts) > 1:
        raise _no_part(layer, part, path)
    if part in layer.array_specs():
        if part in layer.shared:
            raise _SharedTarget(layer.shared[part])
        arr = np.asarray(value)
        dims = inference.array(path, part)
        expected = tuple(d.size for d in dims) if dims and all(isinstance(d, Known) for d in dims) else None
        if expected is not None and arr.shape != expected:
            raise ShapeMismatchError(
                f'NetReplacePart: array "{part}" of {show_path(path)} ({layer.describe()}) has '
                f"dimensions {expected}; found an array of dimensions {arr.shape}.",
                hint="replace the layer itself to change the sizes of its arrays.",
            )
        return layer.evolve(arrays={part: value})
    if isinstance(part, str) and part in (*layer.input_names, *layer.output_names):
        coder = coder_of(layer.port_specs.get(part))
        if value is None and coder is not None:  # strip the coder, keep the port's type
            value = parse_port_spec(coder.port_spec())
        return layer.evolve(port_specs={part: value})
    if isinstance(part, str) and part in type(layer.options).model_fields:
        return layer.evolve(options={part: value})
    raise _no_part(layer, part, path)


def NetReplacePart(net: Layer, replacements: Mapping[Any, Any]) -> Layer:
    """A copy of ``net`` with arrays, layers, port shapes or options replaced; inference runs
    again, so a replacement of incompatible size is an error."""
    new = net
    for spec, value in replacements.items():
        try:
            if isinstance(spec, NetArray):
                raise _SharedTarget(spec.name)
            new = _replace(new, _parts(spec), value, (), new.inference)
        except _SharedTarget as target:
            if target.name not in shared_values(new):
                raise PartSpecError(f"the net has no shared array NetArray({target.name!r}).") from None
            new = _set_shared(new, target.name, value)
    new.inference  # re-run inference on the result
    return new
