"""NetGraph, NetChain and NetPort: declaring nets (Wolfram's construction rules).

Connections, in Python spelling of Wolfram's rules::

    ("a", "b", "c")                   a -> b -> c
    (["a", "b"], "plus")              {a, b} -> plus   (ordered: Input1, Input2)
    ("a", ["b", "c"])                 a -> {b, c}      (fan out)
    (NetPort("x"), "a")               graph input x -> a
    ("a", NetPort("y"))               a -> graph output y
    (NetPort("a", "Output"), None)    mute an output
    (NetPort("att", "Key"), ...)      a named port of a layer (as source or destination)

``a -> b`` joins a's first output to b's first input. Layers are named by dict keys, or
"0", "1", ... for a list; an int in a connection is the node of that name if any, else the
node at that (0-based) position. Dangling inputs become graph inputs named after the port
(same-named ones merge); dangling outputs become graph outputs (clashes: Output1, Output2...).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple

from .layers.base import Layer, LayerOptions, shared_values, user_site
from .layers.elementwise import ELEMENTWISE_FUNCTIONS, ElementwiseLayer
from .layers.linear import LinearLayer
from .layers.scope import Scope, collector_paused, constrain, show_path
from .layers.tree import child_name
from .layers.threading import THREADING_FUNCTIONS, ThreadingLayer, VariadicLayer
from .shapes import parse_port_spec
from .coders import check_placement, port_coders_of, with_coder_notes
from .errors import NetConnectionError, ShapeMismatchError, SpecificationError
from .forward_inference import forward_inference
from .ir import GraphIR, PortRef, walk


class NetPort:
    """``NetPort("x")``: a graph port. ``NetPort("layer", "port")``: a port of a layer."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Any) -> None:
        if len(parts) == 1 and isinstance(parts[0], (tuple, list)):
            parts = tuple(parts[0])
        if not 1 <= len(parts) <= 2:
            raise SpecificationError(
                f"NetPort takes a port name or (layer, port); found {len(parts)} parts {parts!r}."
            )
        object.__setattr__(self, "parts", tuple(parts))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("NetPort is immutable")

    def __repr__(self) -> str:
        return f"NetPort({', '.join(map(repr, self.parts))})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetPort) and other.parts == self.parts

    def __hash__(self) -> int:
        return hash(("NetPort", self.parts))


# --------------------------------------------------------------------------- layer specs
def as_layer(spec: Any, where: str) -> Layer:
    """Layer shortcuts: an int n is LinearLayer(n), a function name an Elementwise or
    Threading layer, a list a NetChain."""
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool):
        return LinearLayer(spec)
    if isinstance(spec, str) and spec in ELEMENTWISE_FUNCTIONS:
        return ElementwiseLayer(spec)
    if isinstance(spec, str) and spec in THREADING_FUNCTIONS:
        return ThreadingLayer(spec)
    if isinstance(spec, list):
        return NetChain(spec)
    raise SpecificationError(
        f"{where}: {spec!r} is not a layer, a net, or a valid specification for one.",
        hint="give a layer (LinearLayer(8)), an int (a LinearLayer), a function name "
        '("Tanh", "Plus") or a list (a NetChain).',
    )


def _named_layers(layers: Any) -> dict[str, Layer]:
    if isinstance(layers, Mapping):
        items = layers.items()
    elif isinstance(layers, (list, tuple)):
        items = enumerate(layers)
    else:
        raise SpecificationError(
            f"the layers of a net must be a list or a dict; found {type(layers).__name__}."
        )
    named = {}  # (one loop: names made strings, shortcuts made layers)
    for key, spec in items:
        name = key if type(key) is str else str(key)
        if Layer not in type(spec).__mro__:  # (isinstance on an ABC is slower, per layer)
            spec = as_layer(spec, f'layer "{name}"')
        named[name] = spec
    if not named:
        raise SpecificationError("NetGraph objects must contain at least one layer.")
    if "SharedArrays" in named:
        raise SpecificationError('"SharedArrays" is reserved (the params of shared arrays); '
                                 "give the layer another name.")
    return named


# ---------------------------------------------------------------- connection parsing
class _Term(NamedTuple):
    """A connection endpoint other than a whole layer (which is its name, a str): a layer's
    port, a graph port, or None (mute)."""

    kind: str  # "port" | "graph" | "mute"
    node: str | None = None
    port: str | None = None

    def show(self) -> str:
        if self.kind == "port":
            return f"NetPort({self.node!r}, {self.port!r})"
        return "None" if self.kind == "mute" else f"NetPort({self.port!r})"


class _Parser:
    """Turns the connection list into ordered (sources, destination) groups. Edges into the
    same layer (port unnamed) form one group, its sources in order, as in Wolfram:
    ``1 -> 3`` and ``2 -> 3`` fill layer 3's inputs in that order. (Source lists are shared
    between groups, never changed.)"""

    def __init__(self, nodes: Mapping[str, Layer]) -> None:
        self.nodes = nodes
        self.groups: list[tuple[list[str | _Term], str | _Term, _Rule]] = []
        self.group_of: dict[str, int] = {}  # layer -> its group (for edges into the layer)

    def node(self, ref: Any, rule: _Rule) -> str:
        name = child_name(self.nodes, ref)
        if name is not None:
            return name
        raise NetConnectionError(
            f"The vertex {ref!r}, specified in the edge {rule}, does not exist.",
            hint=f"the layers are: {', '.join(map(repr, self.nodes))}.",
        )

    def term(self, item: Any, rule: _Rule) -> str | _Term:
        if item is None:
            return _Term("mute")
        if isinstance(item, NetPort):
            if len(item.parts) == 1:
                return _Term("graph", port=str(item.parts[0]))
            return _Term("port", self.node(item.parts[0], rule), str(item.parts[1]))
        return self.node(item, rule)

    def walk(self, item: Any, rule: _Rule) -> tuple[list[str | _Term], list[str | _Term]]:
        """Heads (where data enters ``item``) and tails (where it leaves), in order."""
        nodes = self.nodes
        if type(item) is str and item in nodes:  # the common case: a layer by its name
            return [item], [item]
        if isinstance(item, tuple):
            if len(item) < 2:
                raise NetConnectionError(
                    f"the connection {item!r} needs at least a source and a destination."
                )
            groups, group_of = self.groups, self.group_of
            heads, tails = self.walk(item[0], rule)
            for nxt in item[1:]:
                h, t = ([nxt], [nxt]) if type(nxt) is str and nxt in nodes else self.walk(nxt, rule)
                for dst in h:
                    i = group_of.get(dst) if type(dst) is str else None
                    if i is not None:  # more edges into one layer: its sources, in order
                        before, _, first_rule = groups[i]
                        groups[i] = (before + tails, dst, first_rule + rule)
                        continue
                    if type(dst) is str:
                        group_of[dst] = len(groups)
                    groups.append((tails, dst, rule))
                tails = t
            return heads, tails
        if isinstance(item, list):
            heads, tails = [], []
            for sub in item:
                if type(sub) is str and sub in nodes:  # (a layer: no call)
                    heads.append(sub)
                    tails.append(sub)
                    continue
                h, t = self.walk(sub, rule)
                heads += h
                tails += t
            return heads, tails
        term = self.term(item, rule)
        return [term], [term]


class _Rule(tuple):
    """The connection(s) an edge came from, spelled (``"a" -> "b"``) only when a message
    shows it; ``+`` joins the rules of edges merged into one layer's inputs."""

    def __str__(self) -> str:
        return "; ".join(_rule_text(item) for item in self)

    def __add__(self, other: "_Rule") -> "_Rule":
        return _Rule(tuple(self) + tuple(other))


def _rule_text(item: Any) -> str:
    if isinstance(item, tuple):
        return " -> ".join(_rule_text(x) for x in item)
    if isinstance(item, list):
        return "[" + ", ".join(_rule_text(x) for x in item) + "]"
    return "None" if item is None else repr(item)


# ------------------------------------------------------------------------- NetGraph
class NetGraph(Layer):
    """A directed acyclic graph of layers; itself a layer, so graphs nest to any depth.

    Args:
        layers: a list (nodes "0", "1", ...) or a dict of named layers.
        connections: see the module docstring.
        **port_shapes: shapes of graph input or output ports, e.g. ``Input=("Varying", 8)``.
    """

    is_container = True

    class Options(LayerOptions):
        pass

    @collector_paused()  # see collector_paused: big nets are many small objects
    def __init__(self, layers: Any, connections: Iterable[Any] = (), **port_shapes: Any) -> None:
        nodes = _named_layers(layers)
        self._assemble(nodes, self._parse(nodes, connections), port_shapes)

    # ---------------------------------------------------------------- assembly
    def _parse(self, nodes: dict[str, Layer], connections: Iterable[Any]) -> list:
        if isinstance(connections, (str, bytes)) or not isinstance(connections, Iterable):
            raise NetConnectionError(
                "Second argument should be a list of connections (tuples such as (\"a\", \"b\"))."
            )
        parser = _Parser(nodes)
        for item in connections:
            if not isinstance(item, tuple):
                raise NetConnectionError(
                    f"each connection must be a tuple like ('a', 'b'); found {item!r}."
                )
            parser.walk(item, _Rule((item,)))
        return parser.groups

    def _assemble(self, nodes: dict[str, Layer], groups: list, port_shapes: Mapping[str, Any]) -> None:
        nodes = dict(nodes)  # (variadic layers are re-sized in it)
        edges, muted = self._resolve(nodes, groups)
        self._set_ir(GraphIR.from_edges(nodes, edges, muted, checked=True), port_shapes)

    ir: GraphIR

    def _set_ir(self, ir: GraphIR, port_shapes: Mapping[str, Any]) -> None:
        self._set(origin=user_site(), options=self.Options(), ir=ir)
        specs = {}
        for name, spec in port_shapes.items():
            if name not in ir.inputs and name not in ir.outputs:
                raise SpecificationError(
                    f'"{name}" is neither a valid input or output port for the given {self.type_name}.',
                    hint=f"its inputs are {list(ir.inputs)} and its outputs {list(ir.outputs)}.",
                )
            specs[name] = parse_port_spec(spec, f'{self.type_name} port "{name}"')
        coders = port_coders_of(specs)
        check_placement(coders, ir.inputs, self.type_name)
        self._set(port_specs=specs)
        try:
            inference = self.inference  # shape inference runs at construction
        except ShapeMismatchError as err:
            raise with_coder_notes(err, coders) from err
        if inference.shares_arrays:
            shared_values(self)  # users of one shared array agree on its value

    # The IR's tables, as the graph's own attributes.
    nodes = property(lambda self: self.ir.nodes)
    edges = property(lambda self: self.ir.edges)
    order = property(lambda self: self.ir.order)
    muted = property(lambda self: self.ir.muted)

    def _resolve(self, nodes: dict[str, Layer], groups: list):
        edges: dict[PortRef, PortRef] = {}
        muted: set[PortRef] = set()
        ref = tuple.__new__  # PortRef(node, port), without its Python-level __new__

        def out_port(term: str | _Term, rule: _Rule) -> PortRef:
            if type(term) is str:
                names = nodes[term].output_names
                if not names:
                    raise NetConnectionError(f"{rule}: layer {term!r} has no output.")
                return ref(PortRef, (term, names[0]))
            if term.kind == "graph":
                return PortRef(None, term.port)
            if term.kind == "mute":
                raise NetConnectionError(f"{rule}: None can only stand last, to mute an output.")
            layer = nodes[term.node]
            if term.port not in layer.output_names:
                raise _missing_port(term, layer, rule, "output")
            return PortRef(term.node, term.port)

        def in_ports(term: str | _Term, count: int, rule: _Rule) -> list[PortRef]:
            if type(term) is not str:  # a named port
                node, layer = term.node, nodes[term.node]
                if term.port not in layer.input_names:
                    raise _missing_port(term, layer, rule, "input")
                if count != 1:
                    raise NetConnectionError(
                        f"{rule}: {count} sources connected to the single port {term.show()}."
                    )
                return [PortRef(node, term.port)]
            node, layer = term, nodes[term]
            names = layer.input_names
            if count > 1 and isinstance(layer, VariadicLayer):
                if layer.variadic:  # sized by its sources
                    try:
                        layer = nodes[node] = layer.with_input_count(count)
                    except SpecificationError as err:  # (Subtract takes two)
                        raise NetConnectionError(
                            f"{rule}: {count} sources connected to {node!r} "
                            f"({layer.describe()}): {err.message}", hint=err.hint) from err
                    names = layer.input_names
                elif len(names) != count:
                    raise NetConnectionError(
                        f"{rule}: {count} sources connected to {node!r}, which has "
                        f"{len(names)} inputs ({', '.join(names)})."
                    )
            if len(names) == count:
                return [ref(PortRef, (node, n)) for n in names]
            raise NetConnectionError(
                f"{rule}: {count} sources connected to {node!r}, which has {len(names)} "
                f"input port(s) ({', '.join(names) or 'none'}).",
                hint="name the port with NetPort(layer, port), or connect as many sources "
                "as the layer has inputs.",
            )

        for sources, dst, rule in groups:
            if len(sources) == 1 and type(dst) is str:  # the common case, inline
                s, names = sources[0], nodes[dst].input_names
                if names:
                    outs = nodes[s].output_names if type(s) is str else None  # (out_port's
                    src = ref(PortRef, (s, outs[0])) if outs else out_port(s, rule)  # first case)
                    target = ref(PortRef, (dst, names[0]))
                    before = edges.setdefault(target, src)
                    if before is not src and before != src:
                        raise _two_producers(target, before, src)
                    continue
            srcs = []  # (a loop: a comprehension is a call of its own, per connection)
            for s in sources:
                srcs.append(out_port(s, rule))
            if type(dst) is str:
                targets = in_ports(dst, len(srcs), rule)
            elif dst.kind == "mute":
                for src in srcs:
                    if src.node is None:
                        raise NetConnectionError(f"{rule}: only layer outputs can be muted.")
                    muted.add(src)
                continue
            elif dst.kind == "graph":
                if len(srcs) != 1:
                    raise NetConnectionError(f"Multiple vertices are connected to NetPort({dst.port!r}).")
                targets = (PortRef(None, dst.port),)
            else:  # a named port
                targets = in_ports(dst, len(srcs), rule)
            for src, target in zip(srcs, targets):
                before = edges.setdefault(target, src)
                if before is not src and before != src:
                    raise _two_producers(target, before, src)
        return edges, muted

    # ----------------------------------------------------------- the Layer interface
    @property
    def input_names(self) -> tuple[str, ...]:
        return self.ir.inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.ir.outputs

    def children(self) -> dict[str, Layer]:
        return dict(self.nodes)

    def with_children(self, children: Mapping[str, Layer]) -> "NetGraph":
        unknown = set(children) - set(self.nodes)
        if unknown:
            raise SpecificationError(f"{self.type_name} has no layer named {sorted(unknown)[0]!r}.")
        return self._rebuild({**self.nodes, **children}, self.port_specs)

    def _rebuild(self, nodes: Mapping[str, Layer], port_specs: Mapping[str, Any]) -> "NetGraph":
        """A graph of the same type and wiring over ``nodes`` (inference runs again)."""
        new = type(self).from_ir(self.ir.with_nodes(nodes),
                                 {k: v.to_user() for k, v in port_specs.items()})
        new._set(activity_regularizer=self.activity_regularizer)  # what sits on the graph itself
        return new

    @classmethod
    def from_ir(cls, ir: GraphIR, port_shapes: Mapping[str, Any] | None = None) -> "NetGraph":
        """A graph over an already built IR (see :meth:`GraphIR.from_edges`), with optional
        port shapes in user spelling."""
        new = object.__new__(cls)
        with collector_paused():
            new._set_ir(ir, port_shapes or {})
        return new

    @classmethod
    def restore(cls, options: Mapping[str, Any], port_specs: Mapping[str, Any],
                arrays: Mapping[str, Any], children: Mapping[str, Layer],
                structure: Mapping[str, Any]) -> "NetGraph":
        """Rebuild from nodes and a resolved edge table (see netgraph.serialize)."""
        if options or arrays:
            raise SpecificationError(f"{cls.__name__} takes no options or arrays.")
        edges = {PortRef(d_node, d_port): PortRef(s_node, s_port)
                 for d_node, d_port, s_node, s_port in structure["edges"]}
        muted = [PortRef(n, p) for n, p in structure["muted"]]
        unknown = {r.node for r in (*edges, *edges.values(), *muted) if r.node is not None} - set(children)
        if unknown:
            raise NetConnectionError(f"the connections name unknown layers: {sorted(unknown)}.")
        return cls.from_ir(GraphIR.from_edges(children, edges, muted), port_specs)

    def _after_evolve(self) -> None:
        self._set_ir(self.ir, {k: v.to_user() for k, v in self.port_specs.items()})

    def template(self, scope: Scope) -> None:
        """Each node's own rules in a child scope; each edge unifies the producer's port
        with the consumer's (one walk over the IR, values are (scope, port) handles)."""
        s = scope.solver
        unify_shapes, unify_elems = s.unify_shapes, s.unify_elems

        def join(dst_scope: Scope, dst: str, src: tuple[Scope, str]) -> None:
            src_scope, src_port = src
            where = (lambda: f"{dst_scope.where(dst)}, connected from {src_scope.where(src_port)}")
            dst_shape, src_shape = dst_scope.port(dst), src_scope.port(src_port)
            unify_shapes(dst_shape, src_shape, where)
            unify_elems(dst_shape + 1, src_shape + 1, where)  # (a port's element cell)

        def visit(name: str, layer: Layer, fed: dict[str, tuple[Scope, str]]) -> dict:
            child = scope.child(name, layer)
            constrain(layer, child)
            for port, src in fed.items():
                join(child, port, src)
            return {port: (child, port) for port in layer.output_names}

        outputs = walk(self.ir, visit, {n: (scope, n) for n in self.input_names})
        for name, src in outputs.items():
            join(scope, name, src)

    def _forward_inference(self) -> Any:
        return forward_inference(self)

    def describe(self) -> str:
        return f"{self.type_name}[{_count(len(self.nodes))}]"


def _count(n: int) -> str:
    return f"{n} layer" if n == 1 else f"{n} layers"


def _two_producers(target: PortRef, before: PortRef, src: PortRef) -> NetConnectionError:
    return NetConnectionError(
        f"Multiple vertices have been connected to {target.show()}: "
        f"{before.show()} and {src.show()}.",
        hint="an input port has exactly one producer; combine values with "
        "ThreadingLayer or CatenateLayer first.",
    )


def _missing_port(term: _Term, layer: Layer, rule: _Rule, kind: str) -> NetConnectionError:
    names = layer.output_names if kind == "output" else layer.input_names
    return NetConnectionError(
        f"{rule}: the {kind} port {term.port!r} of layer {term.node!r} ({layer.describe()}) "
        f"does not exist.",
        hint=f"its {kind} ports are: {', '.join(map(repr, names)) or 'none'}.",
    )


# ------------------------------------------------------------------------- NetChain
class NetChain(NetGraph):
    """Layers applied one after another: each layer's first output feeds the next one's
    first input. Every layer but the first has one input, every layer but the last one
    output. Ports: the first layer's inputs and the last layer's outputs."""

    @collector_paused()
    def __init__(self, layers: Any, **port_shapes: Any) -> None:
        nodes = _named_layers(layers)
        edges: dict[PortRef, PortRef] = {}  # each layer's one input <- the previous one's output
        last, before = len(nodes) - 1, None
        ref = tuple.__new__  # PortRef(node, port), without its Python-level __new__
        for i, (name, layer) in enumerate(nodes.items()):
            inputs, outputs = layer.input_names, layer.output_names
            if i > 0:
                if len(inputs) != 1:
                    raise SpecificationError(
                        f'NetChain layer "{name}" ({layer.describe()}) has {len(inputs)} '
                        "inputs; all layers after the first must have exactly one input port.",
                        hint="use a NetGraph to connect layers with several inputs.",
                    )
                edges[ref(PortRef, (name, inputs[0]))] = before
            if i < last:
                if len(outputs) != 1:
                    raise SpecificationError(
                        f'NetChain layer "{name}" ({layer.describe()}) has {len(outputs)} '
                        "outputs; all layers before the last must have exactly one output port."
                    )
                before = ref(PortRef, (name, outputs[0]))
        self._set_ir(GraphIR.from_edges(nodes, edges, checked=True), port_shapes)

    def describe(self) -> str:
        return f"NetChain[{_count(len(self.nodes))}]"


__all__ = ["NetChain", "NetGraph", "NetPort", "PortRef", "as_layer", "show_path"]
