"""``Information(net, prop)``: properties of a net, after Wolfram's ``Information[net, prop]``.

Layer counts go into containers and operators and count *leaf* layers only (every layer that
is not a pure container: graphs, chains and NetMapOperator only wire their sub-nets; an
AttentionLayer counts, and so do the layers of its "ScoringNet"). Positions are paths, as in
:func:`netgraph.NetExtract`: ``("encoder", "proj", "Net")`` for a layer,
``("encoder", "proj", "Net", "Weights")`` for an array. Byte counts use the arrays' real dtype
(float32: 4 bytes per element).

With no property, a dict of the headline properties::

    >>> Information(net)
    {"LayersCount": 4, "ArraysCount": 6, "SharedArraysCount": 0, "InputPortNames": ["A", "B"],
     "OutputPortNames": ["Output"], "ArraysTotalElementCount": 106, "ArraysTotalSize": "424 bytes"}
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Optional

import networkx as nx
import numpy as np
import pydantic

from .layers.base import Layer
from .layers.scope import Path
from .layers.tree import leaf_layers, ordered_children
from .shapes import Automatic
from .errors import SerializationError, SpecificationError
from .shapes.dims import Known, Varying
from .shapes.elements import Index
from .shapes.porttype import PortType

from .graph import NetGraph, NetPort
from .ir import walk
from .serialize import to_config
from .summary import array_table, total, unique_arrays


# --------------------------------------------------------------------------- layers
def _type_counts(net: Layer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for layer in leaf_layers(net).values():
        counts[layer.type_name] = counts.get(layer.type_name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# ------------------------------------------------------------------ the layers graph
Endpoint = tuple[Any, str]  # (a node of the layers graph, one of its ports)
Feeds = dict[str, Optional[Endpoint]]  # port name -> its producer


class _Wiring:
    """Builds the data-flow graph of leaf layers through any nesting."""

    def __init__(self) -> None:
        self.graph = nx.DiGraph()

    def edge(self, src: Endpoint | None, dst: Any, dst_port: str) -> None:
        if src is None:
            return
        node, port = src
        if self.graph.has_edge(node, dst):
            self.graph[node][dst]["ports"].append((port, dst_port))
        else:
            self.graph.add_edge(node, dst, ports=[(port, dst_port)])

    def wire(self, layer: Layer, path: Path, inputs: Feeds) -> Feeds:
        """Add ``layer`` (at ``path``, its inputs fed by ``inputs``); return its outputs'
        producers (leaf nodes and their ports)."""
        if isinstance(layer, NetGraph):
            return self._graph(layer, path, inputs)
        if layer.is_container:  # an operator: the sub-nets see the operator's ports
            outputs: dict[str, Endpoint | None] = {}
            for name, child in ordered_children(layer).items():
                outputs.update(self.wire(child, path + (name,),
                                         {p: inputs.get(p) for p in child.input_names}))
            return {p: outputs.get(p) for p in layer.output_names}
        self.graph.add_node(path, kind="layer", layer=layer, type=layer.type_name)
        for port in layer.input_names:
            self.edge(inputs.get(port), path, port)
        feeds = layer.child_feeds
        for name, child in ordered_children(layer).items():
            mapping = feeds.get(name, {})
            child_inputs = {p: inputs.get(mapping.get(p, p)) for p in child.input_names}
            child_outputs = self.wire(child, path + (name,), child_inputs)
            for port, src in child_outputs.items():
                self.edge(src, path, f"{name}/{port}")
        return {p: (path, p) for p in layer.output_names}

    def _graph(self, graph: NetGraph, path: Path, inputs: Feeds) -> Feeds:
        return walk(graph.ir, lambda name, layer, fed: self.wire(layer, path + (name,), fed),
                    {p: inputs.get(p) for p in graph.input_names})


def layers_graph(net: Layer) -> nx.DiGraph:
    """The data flow between leaf layers, through nested graphs, operators and scoring nets.

    Nodes: leaf layer paths (attributes ``kind="layer"``, ``layer``, ``type``), and the net's
    ports as ``NetPort(name)`` (``kind="input"`` or ``"output"``). Edges carry ``ports``, a list
    of (source port, destination port) pairs; a scoring net's output enters its attention
    layer at port ``"ScoringNet/Output"``.
    """
    wiring = _Wiring()
    g = wiring.graph
    inputs: dict[str, Endpoint | None] = {}
    for name in net.input_names:
        g.add_node(NetPort(name), kind="input", port=name)
        inputs[name] = (NetPort(name), name)
    outputs = wiring.wire(net, (), inputs)
    for name in net.output_names:
        g.add_node(NetPort(name), kind="output", port=name)
        wiring.edge(outputs.get(name), NetPort(name), name)
    return g


# ------------------------------------------------------------------------ topology hash
def _canonical(config: Any) -> Any:
    """Edge lists in a fixed order: equal structures give equal JSON."""
    if isinstance(config, dict):
        out = {k: _canonical(v) for k, v in config.items()}
        for key in ("edges", "muted"):
            if isinstance(out.get(key), list):
                out[key] = sorted(out[key], key=lambda e: json.dumps(e))
        return out
    if isinstance(config, list):
        return [_canonical(v) for v in config]
    return config


def _port_types(net: Layer) -> dict[str, Any]:
    """Every inferred port type, with unsolved and varying dimensions numbered in order of
    appearance (so that ties between them are part of the structure, their ids are not)."""
    names: dict[Any, str] = {}

    def dim(d: Any) -> Any:
        if isinstance(d, Known):
            return d.size
        prefix = "Varying" if isinstance(d, Varying) else "Automatic"
        key = (prefix, d.symbol if isinstance(d, Varying) else d.id)
        return names.setdefault(key, f"{prefix}#{len(names)}")

    def port(t: PortType) -> Any:
        element = t.element
        spelled = [str(type(element).__name__)]
        if isinstance(element, Index):
            spelled.append(dim(element.n))
        return {"dims": None if t.dims is None else [dim(d) for d in t.dims], "element": spelled}

    ports = net.inference.ports
    keys = sorted(ports, key=lambda k: ("/".join(k[0]), k[1]))
    return {"/".join(path) + ":" + name: port(ports[(path, name)]) for path, name in keys}


def topology_hash(net: Layer) -> str:
    """A SHA-256 hex digest of the structure: layer types, options, declared and inferred
    port shapes, connections and array shapes; never array values."""
    document = {
        "structure": _canonical(to_config(net, strict=False)),
        "ports": _port_types(net),
        "arrays": {"/".join(e.position): e.dims for e in array_table(net)},  # Automatic: repr
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------ InputForm
def _expr(value: Any) -> str:
    """Python source for an option or port value (a function is spelled by its name)."""
    if isinstance(value, pydantic.BaseModel):  # a structured option (a level Span)
        return _expr(value.model_dump())
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_expr, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(map(_expr, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_expr(k)}: {_expr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, np.generic):
        return repr(value.item())
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__qualname__", repr(value))
    return repr(value)


def _keywords(items: dict[str, Any]) -> list[str]:
    if all(k.isidentifier() for k in items):
        return [f"{k}={v}" for k, v in items.items()]
    return ["**{" + ", ".join(f"{k!r}: {v}" for k, v in items.items()) + "}"]


def _constructor(cls: type) -> str:
    """The name of a layer class in ``vars(netgraph)``: ``LinearLayer``, or a module path
    for one not exported at the top (``keras.QueryMaskLayer``)."""
    import netgraph

    if getattr(netgraph, cls.__name__, None) is cls:
        return cls.__name__
    module = cls.__module__.split(".", 1)[1] if cls.__module__.startswith("netgraph.") else cls.__module__
    return f"{module}.{cls.__qualname__}"


def input_form(net: Layer) -> str:
    """The constructor expression that rebuilds ``net``'s structure: options (those that
    differ from the defaults), declared port shapes, removed and shared arrays, initializers,
    regularizers and constraints, sub-nets and connections. Array values are not part of it
    (``ng.save`` keeps them). ``eval(text, vars(netgraph))`` rebuilds the net."""
    name = _constructor(type(net))
    ports = {k: _expr(v.to_user()) for k, v in net.port_specs.items()}
    if isinstance(net, NetGraph):
        names = list(net.nodes)
        nodes = ("[" + ", ".join(input_form(l) for l in net.nodes.values()) + "]"
                 if names == [str(i) for i in range(len(names))]
                 else "{" + ", ".join(f"{n!r}: {input_form(l)}" for n, l in net.nodes.items()) + "}")
        args = [nodes]
        if type(net) is NetGraph:
            def port(ref: Any) -> str:
                return f"NetPort({ref.port!r})" if ref.node is None else f"NetPort({ref.node!r}, {ref.port!r})"
            edges = [f"({port(src)}, {port(dst)})" for dst, src in net.edges.items()]
            edges += [f"({port(ref)}, None)" for ref in sorted(net.muted)]
            args.append("[" + ", ".join(edges) + "]")
        text = f"{name}({', '.join(args + _keywords(ports))})"
    else:
        fields = type(net.options).model_fields
        values = {k: getattr(net.options, k) for k in fields}
        children = [input_form(c) for c in net.children().values()]  # an operator's net(s) first
        args = children if len(children) <= 1 else ["[" + ", ".join(children) + "]"]
        positional = list(net.positional)
        while positional and fields[positional[-1]].is_required() is False and \
                values[positional[-1]] == fields[positional[-1]].default:
            positional.pop()
        args += [_expr(values[k]) for k in positional]
        keywords = {k: _expr(v) for k, v in values.items()
                    if k not in positional and (fields[k].is_required() or v != fields[k].default)}
        keywords.update(ports)
        keywords.update({a: "None" for a in sorted(set(net.arrays_declared) - set(net.array_specs()))})
        keywords.update({a: f"NetArray({n!r})" for a, n in net.shared.items()})
        text = f"{name}({', '.join(args + _keywords(keywords))})"
    for rules in ("initializers", "regularizers", "constraints"):
        if getattr(net, rules):
            text += f".with_{rules}({_expr(dict(getattr(net, rules)))})"
    if net.activity_regularizer is not None:
        text += f".with_activity_regularizer({_expr(net.activity_regularizer)})"
    return text


# --------------------------------------------------------------------------- arrays
def _arrays(net: Layer) -> dict[Path, Any]:
    return {e.position: e.array for e in array_table(net)}


def _summary_graphic(levels: int | None) -> Callable[[Layer], str]:
    def draw(net: Layer) -> str:
        from .plot import to_svg

        return to_svg(net, levels)

    return draw


def size_text(count: int | None) -> Any:
    """A byte count in decimal units, as Wolfram shows sizes: ``424 bytes``, ``5.9 kB``."""
    if count is None:
        return Automatic
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} bytes"


def _total(what: str) -> Callable[[Layer], Any]:
    def compute(net: Layer) -> Any:
        value = total(array_table(net), what)
        return Automatic if value is None else value

    return compute


def _per_array(what: str) -> Callable[[Layer], dict[Path, Any]]:
    def compute(net: Layer) -> dict[Path, Any]:
        values = {}
        for e in array_table(net):
            value = getattr(e, what)
            values[e.position] = Automatic if value is None else value
        return values

    return compute


PROPERTIES: dict[str, Callable[[Layer], Any]] = {
    "Arrays": _arrays,
    "ArraysByteCounts": _per_array("byte_count"),
    "ArraysCount": lambda net: len(unique_arrays(array_table(net))),
    "ArraysDimensions": lambda net: {e.position: e.dims for e in array_table(net)},
    "ArraysElementCounts": _per_array("element_count"),
    "ArraysList": lambda net: [e.array for e in unique_arrays(array_table(net))],
    "ArraysPositionList": lambda net: [e.position for e in array_table(net)],
    "ArraysTotalByteCount": _total("byte_count"),
    "ArraysTotalElementCount": _total("element_count"),
    "InputPortNames": lambda net: list(net.input_names),
    "InputPorts": lambda net: net.input_ports,
    "Layers": leaf_layers,
    "LayersCount": lambda net: len(leaf_layers(net)),
    "LayersGraph": layers_graph,
    "LayersList": lambda net: list(leaf_layers(net).values()),
    "LayerTypeCounts": _type_counts,
    "OutputPortNames": lambda net: list(net.output_names),
    "OutputPorts": lambda net: net.output_ports,
    "SummaryGraphic": _summary_graphic(1),
    "FullSummaryGraphic": _summary_graphic(None),
    "ArraysSizes": lambda net: {e.position: size_text(e.byte_count) for e in array_table(net)},
    "ArraysTotalSize": lambda net: size_text(total(array_table(net), "byte_count")),
    "SharedArraysCount": lambda net: len({e.key for e in array_table(net) if e.key != e.position}),
    "InputForm": input_form,
    "TopologyHash": topology_hash,
}
PROPERTIES["Properties"] = lambda net: sorted(PROPERTIES)

DEFAULT_PROPERTIES = ("LayersCount", "ArraysCount", "SharedArraysCount", "InputPortNames",
                      "OutputPortNames", "ArraysTotalElementCount", "ArraysTotalSize")


def Information(net: Layer, prop: str | None = None) -> Any:  # noqa: N802 - Wolfram's name
    """A property of ``net`` (see ``Information(net, "Properties")``); with no property, a
    dict of LayersCount, ArraysCount, SharedArraysCount, InputPortNames, OutputPortNames,
    ArraysTotalElementCount and ArraysTotalSize (Wolfram's headline properties).

    Unknown (uninferred or uninitialised) values are :data:`Automatic`: an uninitialised
    array in "Arrays", an unsolved dimension in "ArraysDimensions", a total over an array of
    unknown size.
    """
    if not isinstance(net, Layer):
        raise SpecificationError(
            f"Information expects a layer or a net as its first argument; found "
            f"{type(net).__name__}."
        )
    if prop is None:
        return {name: PROPERTIES[name](net) for name in DEFAULT_PROPERTIES}
    if not isinstance(prop, str) or prop not in PROPERTIES:
        raise SpecificationError(
            f"{prop!r} is not a known property of {net.describe()}. Valid properties are: "
            f"{', '.join(sorted(PROPERTIES))}.",
            hint='Information(net, "Properties") lists them.',
        )
    return PROPERTIES[prop](net)


__all__ = ["DEFAULT_PROPERTIES", "Information", "PROPERTIES", "layers_graph", "topology_hash"]
