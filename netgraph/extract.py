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

from .graph import NetGraph, as_layer


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
    parts = tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)
    for part in parts:
        if not (isinstance(part, str) or part is All or isinstance(part, NetArray)
                or isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_))):
            raise PartSpecError(
                f"{spec!r} is not a part specification: {part!r} is a {type(part).__name__}.",
                hint='a part is a name, a 0-based index, a tuple path ("enc", "proj", "Weights"), '
                "All or NetArray(name); NetExtract takes a list of such parts.",
            )
    return tuple(int(p) if isinstance(p, np.integer) else p for p in parts)


def _set_shared(layer: Layer, name: str, value: Any) -> Layer:
    """``layer`` with every use of the shared array ``name`` set to ``value``."""
    def put(path: Path, sub: Layer) -> Layer:
        arrays = {local: value for local, shared in sub.shared.items() if shared == name}
        return sub.evolve(arrays=arrays) if arrays else sub

    return map_layers(put, layer)


def NetExtract(net: Layer, spec: Any) -> Any:
    """A layer, sub-net, array (NumPy), option or port of ``net``.

    ``spec``: a name or 0-based index, a tuple path through sub-nets (``("enc", "proj",
    "Weights")``) whose last element may name an array, an option or a port (``"Input"``:
    its NetEncoder / NetDecoder, or else its inferred shape, as ``net.input_ports`` spells
    it), ``All`` (every layer), or ``NetArray(name)`` (a shared array); on a coder, an option
    of the coder (``NetExtract(encoder, "vocabulary")``). An option left ``Automatic`` gives
    the value inference found (``NetExtract(chain, (0, "size"))`` is 2 for a LinearLayer
    whose output size was inferred), ``Automatic`` where it is not inferred. A **list** of
    specs gives the list of their parts (Wolfram's ``NetExtract[net, {{...}, {...}}]``).
    """
    if isinstance(spec, list):
        return [NetExtract(net, item) for item in spec]
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
        last = i == len(parts) - 1
        if last and part in layer.array_specs():
            arr = layer.arrays.get(part)
            return None if arr is None else np.array(arr)
        if last and isinstance(part, str) and part in type(layer.options).model_fields:
            value = getattr(layer.options, part)
            if value is Automatic:
                inferred = layer.inferred_options(lambda port: net.inference.port(path, port))
                found = inferred.get(part)
                return Automatic if found is None else found
            return value
        if last and isinstance(part, str) and part in (*layer.input_names, *layer.output_names):
            coder = coder_of(layer.port_specs.get(part))  # a port: its coder, or its type
            return coder if coder is not None else net.inference.port(path, part).to_user()
        raise _no_part(layer, part, path)
    return specialized(layer, net.inference, path) if path else net


def _edit(layer: Layer, edits: list[tuple[tuple, Any]], path: Path, inference: Inference,
          shared: list[tuple[str, Any]]) -> Layer:
    """``layer`` with every edit (a path below it, a value) applied at once: each sub-net is
    rebuilt once with all of its edits, so inference sees them together. An edit of a shared
    array goes to ``shared`` (it is set everywhere, by name)."""
    children = layer.children()
    replaced: dict[str, Layer] = {}
    inner: dict[str, list[tuple[tuple, Any]]] = {}
    options, ports, arrays = {}, {}, {}
    for parts, value in edits:
        part = parts[0]
        name = child_name(children, part)
        if name is not None:
            if len(parts) == 1:
                replaced[name] = as_layer(value, f"NetReplacePart {show_path(path + (name,))}")
            else:
                inner.setdefault(name, []).append((parts[1:], value))
            continue
        if len(parts) > 1:
            raise _no_part(layer, part, path)
        if part in layer.array_specs():
            if part in layer.shared:
                shared.append((layer.shared[part], value))
                continue
            arrays[part] = _checked_array(layer, part, value, path, inference)
        elif isinstance(part, str) and part in (*layer.input_names, *layer.output_names):
            coder = coder_of(layer.port_specs.get(part))
            if value is None and coder is not None:  # strip the coder, keep the port's type
                value = parse_port_spec(coder.port_spec())
            ports[part] = value
        elif isinstance(part, str) and part in type(layer.options).model_fields:
            options[part] = value
        else:
            raise _no_part(layer, part, path)
    new_children = dict(replaced)
    for name, sub_edits in inner.items():
        new_children[name] = _edit(replaced.get(name, children[name]), sub_edits, path + (name,), inference,
                                    shared)
    if isinstance(layer, NetGraph):  # one rebuild: the new nodes and port shapes together
        if not (new_children or ports):
            return layer
        specs = {k: v for k, v in layer.port_specs.items() if k not in ports}
        specs.update({k: layer._port_spec(k, v) for k, v in ports.items() if v is not None})
        return layer._rebuild({**layer.nodes, **new_children}, specs)
    if options or ports or arrays:
        layer = layer.evolve(options=options, port_specs=ports, arrays=arrays)
    return layer.with_children(new_children) if new_children else layer


def _checked_array(layer: Layer, part: str, value: Any, path: Path, inference: Inference) -> Any:
    arr = np.asarray(value)
    dims = inference.array(path, part)
    expected = tuple(d.size for d in dims) if dims and all(isinstance(d, Known) for d in dims) else None
    if expected is not None and arr.shape != expected:
        raise ShapeMismatchError(
            f'NetReplacePart: array "{part}" of {show_path(path)} ({layer.describe()}) has '
            f"dimensions {expected}; found an array of dimensions {arr.shape}.",
            hint="replace the layer itself to change the sizes of its arrays.",
        )
    return value


def NetReplacePart(net: Layer, replacements: Mapping[Any, Any]) -> Layer:
    """A copy of ``net`` with arrays, layers, port shapes or options replaced. The
    replacements are simultaneous (Wolfram's rule): ``{"b": LinearLayer(5), "Output": 5}``
    works in either order, and inference runs once on the result, so a replacement of
    incompatible size is an error."""
    if not isinstance(replacements, Mapping):
        raise PartSpecError(
            f"NetReplacePart takes a dict {{part: value}}; found {type(replacements).__name__}.",
            hint='NetReplacePart(net, {"Weights": w}) or NetReplacePart(net, {("enc", "proj"): layer}).',
        )
    edits, shared = [], []
    for spec, value in replacements.items():
        if isinstance(spec, NetArray):
            shared.append((spec.name, value))
        else:
            edits.append((_parts(spec), value))
    new = _edit(net, edits, (), net.inference, shared) if edits else net
    for name, value in shared:
        if name not in shared_values(new):
            raise PartSpecError(f"the net has no shared array NetArray({name!r}).")
        new = _set_shared(new, name, value)
    new.inference  # re-run inference on the result
    return new
