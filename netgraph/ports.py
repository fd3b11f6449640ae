"""Calling a net through its port coders, and reading the value of any port of a net.

===================================================== =======================================
``net(data)``                                          encoders encode the data of their input
                                                       ports, decoders decode their outputs
``net(data, "Output")``                                one output (decoded) of a net
``net(data, "Probabilities")``, ``("TopDecisions", 2)`` a property of the net's decoder
``net(data, NetPort("att", "AttentionWeights"))``      the value of an inner port
``net(data, NetPort(("enc", "proj"), "Output"))``      ... of a layer nested in sub-nets
``net(data, [NetPort(...), NetPort(...)]) ``           a dict NetPort -> value
===================================================== =======================================

An inner port is read by the same compiled evaluation as the net's outputs (the lowering's
``taps``: the walker records the outputs of the requested graph nodes), for one example, a
batch or a list of examples alike; nothing about the net changes. An input port of a layer
reads the value of the output (or graph input) that feeds it. Ports inside a layer that
evaluates its sub-net per element or per pair (NetMapOperator's "Net", an attention layer's
"ScoringNet") have no single value and are refused. Values read through NetPort are the raw
arrays (decoders apply to ``net(data)`` and to properties).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .coders import Coder, NetDecoder, NetEncoder, check_placement, port_coders
from .compiler import port_dict
from .errors import InputDataError, PartSpecError, SpecificationError
from .graph import NetGraph, NetPort
from .ir import PortRef
from .layers.base import Layer
from .layers.scope import Path, show_path
from .layers.tree import child_name

Tap = tuple[Path, str]


# --------------------------------------------------------------------- NetPort
def _shown(port: NetPort) -> str:
    return repr(port)


def _port_names(layer: Layer) -> str:
    return (f"inputs {list(layer.input_names)}, outputs {list(layer.output_names)}")


def resolve_port(net: Layer, port: NetPort) -> Tap:
    """``(node path, output port)`` whose value is ``port``'s (``()`` and a port name for
    the net's own inputs and outputs)."""
    if not isinstance(port, NetPort):
        raise SpecificationError(f"{port!r} is not a NetPort.")
    if len(port.parts) == 1:
        name = str(port.parts[0])
        if name not in (*net.input_names, *net.output_names):
            raise PartSpecError(f"{_shown(port)}: {net.describe()} has no port {name!r}.",
                                hint=f"its ports are: {_port_names(net)}; for a layer's port write "
                                "NetPort(layer, port).")
        return (), name
    ref, name = port.parts
    refs = tuple(ref) if isinstance(ref, (tuple, list)) else (ref,)
    layer, path = net, ()
    for item in refs:
        if not isinstance(layer, NetGraph):
            raise PartSpecError(
                f"{_shown(port)}: {show_path(path)} ({layer.describe()}) evaluates its sub-net "
                "per element or per pair, so a port inside it has no single value.",
                hint=f"read a port of {show_path(path)} itself: {_port_names(layer)}.")
        found = child_name(layer.nodes, item)
        if found is None:
            where = show_path(path) if path else net.describe()
            raise PartSpecError(f"{_shown(port)}: {where} has no layer {item!r}.",
                                hint=f"its layers are {', '.join(map(repr, layer.nodes))}.")
        layer, path = layer.nodes[found], path + (found,)
    name = str(name)
    if name in layer.output_names:
        return path, name
    if name in layer.input_names:
        return _source(net, path, name)
    raise PartSpecError(f"{_shown(port)}: layer {show_path(path)} ({layer.describe()}) has no "
                        f"port {name!r}.", hint=f"its ports are: {_port_names(layer)}.")


def _source(net: Layer, path: Path, port: str) -> Tap:
    """What feeds input ``port`` of the node at ``path``: an output, or a net input."""
    parent: Any = net
    for name in path[:-1]:
        parent = parent.nodes[name]
    src = parent.edges[PortRef(path[-1], port)]
    if src.node is not None:
        return path[:-1] + (src.node,), src.port
    if len(path) == 1:
        return (), src.port
    return _source(net, path[:-1], src.port)


# --------------------------------------------------------------------- coders
def coders_of(net: Layer) -> dict[str, Coder]:
    coders = port_coders(net)
    if coders:
        check_placement(coders, net.input_names, net.describe())
    return coders


def encode_inputs(net: Layer, data: Any, coders: Mapping[str, Coder]) -> Any:
    """``data`` with the values of encoded ports encoded; when one port becomes a list of
    examples (ragged), the stacked encodings of the others become lists too."""
    encoders = {n: c for n, c in coders.items() if isinstance(c, NetEncoder)}
    if not encoders:
        return data
    given = port_dict(net, data)
    forms = {n: encoders[n].encode(v, n) for n, v in given.items() if n in encoders}
    if any(form == "list" for form, _ in forms.values()):
        forms = {n: (("list", list(v)) if form == "batch" else (form, v)) for n, (form, v) in forms.items()}
    return {**given, **{n: v for n, (_, v) in forms.items()}}


def _rank(net: Layer, name: str) -> int | None:
    return net.inference.port((), name).rank


def _is_batch(net: Layer, name: str, value: Any) -> bool:
    rank = _rank(net, name)
    return rank is not None and np.ndim(value) == rank + 1


def decode_outputs(net: Layer, result: Any, decoders: Mapping[str, NetDecoder], prop: Any,
                   only: str | None) -> Any:
    """Decode a raw result (one example, a batch, or a list of examples); ``only``: return
    that output alone; ``prop``: a property of the decoder on ``only``."""
    names = net.output_names

    def one(outputs: dict[str, Any]) -> Any:
        decoded = {n: decoders[n].decode(v, prop if n == only else None) if n in decoders else v
                   for n, v in outputs.items()}
        return decoded[only] if only is not None else (decoded[names[0]] if len(names) == 1 else decoded)

    def as_dict(value: Any) -> dict[str, Any]:
        return value if len(names) > 1 else {names[0]: value}

    if isinstance(result, list):
        return [one(as_dict(r)) for r in result]
    outputs = as_dict(result)
    probe = next((n for n in names if n in decoders), names[0])
    if _is_batch(net, probe, outputs[probe]):
        rows = len(outputs[probe])
        return [one({n: v[i] for n, v in outputs.items()}) for i in range(rows)]
    return one(outputs)


# ------------------------------------------------------------------------ a call
def evaluate_coded(net: Layer, data: Any, port: Any, coders: Mapping[str, Coder],
                   **options: Any) -> Any:
    """``net(data, port, **options)`` for a net with coders or a port/property argument."""
    from .evaluate import evaluate_raw

    decoders = {n: c for n, c in coders.items() if isinstance(c, NetDecoder)}
    many = isinstance(port, list)
    if isinstance(port, NetPort) or many:
        ports = port if many else [port]
        if not ports:
            raise SpecificationError("an empty list of NetPorts reads nothing.")
        taps = tuple(resolve_port(net, p) for p in ports)
        result = evaluate_raw(net, encode_inputs(net, data, coders), taps=taps, **options)
        if not many:
            return result
        keyed = (lambda r: {p: r[f"tap{i}"] for i, p in enumerate(ports)}) if len(ports) > 1 \
            else (lambda r: {ports[0]: r})
        return [keyed(r) for r in result] if isinstance(result, list) else keyed(result)
    only, prop = None, None
    if isinstance(port, str) and port in net.output_names:
        only = port
    elif port is not None:
        if not decoders:
            raise SpecificationError(
                f"{port!r} is neither an output port of {net.describe()} nor a property of a "
                "decoder: the net has no NetDecoder.",
                hint=f"its outputs are {list(net.output_names)}; read an inner port with NetPort(layer, port).")
        if len(decoders) > 1:
            raise SpecificationError(
                f"the property {port!r} is ambiguous: outputs {list(decoders)} have decoders.",
                hint="read one output first: net(data, output_name).")
        (only, decoder), = decoders.items()
        decoder.check_property(port)
        prop = port
    result = evaluate_raw(net, encode_inputs(net, data, coders), **options)
    if not decoders:
        return result if only is None or len(net.output_names) == 1 else _pick(result, only)
    return decode_outputs(net, result, decoders, prop, only)


def _pick(result: Any, name: str) -> Any:
    return [r[name] for r in result] if isinstance(result, list) else result[name]


# --------------------------------------------------------------------- training
def training_encoders(net: Layer, terms: Sequence[Any], types: Mapping[str, Any]) -> dict[str, Any]:
    """Per port of the training net, a function encoding its training data: the net's input
    encoders, and for a target whose output has a decoder, that decoder read backwards
    (labels to class indices or one-hot rows, strings to index sequences)."""
    coders = coders_of(net)
    found: dict[str, Any] = {}
    for name, coder in coders.items():
        if isinstance(coder, NetEncoder):
            found[name] = lambda value, coder=coder, name=name: _many(coder, value, name)
    for term in terms:
        decoder = coders.get(term.output) if term.output is not None else None
        if isinstance(decoder, NetDecoder) and term.target is not None:
            found[term.target] = (lambda value, d=decoder, t=term.target:
                                  d.encode_target(value, t, types[t]))
    return found


def _many(coder: NetEncoder, value: Any, name: str) -> Any:
    form, encoded = coder.encode(value, name)
    if form == "one":
        raise InputDataError(f'training data: port "{name}" ({coder.describe()}) got a single '
                             "example; give one entry per example (a list).")
    return encoded


__all__ = ["decode_outputs", "encode_inputs", "evaluate_coded", "resolve_port", "training_encoders"]
