"""The graph IR and the one walker over it.

A :class:`GraphIR` is a frozen edge table over named nodes:

* ``nodes``: node name -> layer, in declaration order;
* ``edges``: destination :class:`PortRef` -> source :class:`PortRef` (an input port has
  exactly one producer). ``PortRef(None, "x")`` is the graph's own port ``x``: a source for
  a graph input, a destination for a graph output;
* ``muted``: layer outputs that are deliberately not graph outputs;
* ``inputs`` / ``outputs``: the graph's port names, in order;
* ``order``: a topological order of the nodes (declaration order breaks ties), and ``dag``
  the networkx node graph (built on first use: most nets are declared in topological order,
  which a single pass over the edges confirms, and never need it).

:meth:`GraphIR.from_edges` is the public constructor: it checks an edge table against the
nodes' ports, completes it (a dangling input becomes a graph input named after its port, a
dangling output a graph output, clashes suffixed ``Output1``, ``Output2``, ...) and orders it.
Everything that follows edges - inference constraints, lowering, the attention fast-path
transform, information, drawing, surgery - goes through :func:`walk` (values flow along the
edges in topological order) or reads the table directly; reachability is networkx's.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence, TypeVar

import networkx as nx

from .errors import CycleError, NetConnectionError
from .layers.base import Layer

V = TypeVar("V")


class PortRef(NamedTuple):
    """A port in a graph: ``node`` None means the graph's own port. (A named tuple: hashed
    and compared in C, millions of times in a big net.)"""

    node: str | None
    port: str

    def show(self) -> str:
        return f'graph port "{self.port}"' if self.node is None else f'"{self.node}" port "{self.port}"'


@dataclass(frozen=True, eq=False)
class GraphIR:
    """A checked, completed and ordered edge table (see the module docstring)."""

    nodes: Mapping[str, Layer]
    edges: Mapping[PortRef, PortRef]
    muted: frozenset
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    order: tuple[str, ...]

    @classmethod
    def from_edges(cls, nodes: Mapping[str, Layer], edges: Mapping[PortRef, PortRef],
                   muted: Iterable[PortRef] = (), *, checked: bool = False) -> "GraphIR":
        """The IR of ``nodes`` wired by ``edges`` (destination -> source), completed with
        graph ports for dangling inputs and outputs. ``checked``: the caller built every
        edge from the nodes' own port names (NetGraph's and NetChain's parsers do) and hands
        both tables over (the IR keeps and completes them), so the check that the ports exist
        and the copies are skipped."""
        muted = frozenset(muted)
        if not checked:
            nodes, edges = dict(nodes), dict(edges)
            _check_edges(nodes, edges, muted)
        table = _Completion(nodes, edges, muted)
        order, dag = _topological_order(nodes, edges, table.position, table.forward)  # a
        # cycle is reported before missing outputs
        outputs = _name_outputs(table.dangling, edges, table.inputs)
        ir = cls(nodes, edges, muted, table.inputs, outputs, order)
        ir.__dict__["fed_by"] = table.fed_by
        if dag is not None:
            ir.__dict__["dag"] = dag
        return ir

    @cached_property
    def fed_by(self) -> dict[str, tuple[tuple[str, str | None, str], ...]]:
        """Node -> its (input port, producer node, producer port) triples in input-port
        order: the walker's table (read only). Plain tuples of strings, which Python's
        garbage collector stops tracking: a 100,000-layer net holds 170,000 of them."""
        edges = self.edges
        return {name: tuple((p, *edges[(name, p)]) for p in layer.input_names)
                for name, layer in self.nodes.items()}

    @cached_property
    def dag(self) -> nx.DiGraph:
        """The node graph: an edge from each producer to each consumer."""
        return _node_graph(self.nodes, self.edges)

    def with_nodes(self, nodes: Mapping[str, Layer]) -> "GraphIR":
        """The same wiring over other layers (ports are checked again)."""
        return GraphIR.from_edges(nodes, self.edges, self.muted)

    def source(self, node: str | None, port: str) -> PortRef:
        """The producer feeding a layer's input port, or a graph output port."""
        return self.edges[PortRef(node, port)]

    def feeds(self, name: str) -> dict[str, PortRef]:
        """Input port -> producer, for one node."""
        return {port: PortRef(node, src_port) for port, node, src_port in self.fed_by[name]}

    def upstream(self, names: Iterable[str]) -> set[str]:
        """``names`` and every node they depend on."""
        found = set(names)
        for name in list(found):
            found |= nx.ancestors(self.dag, name)
        return found

    def downstream(self, names: Iterable[str]) -> set[str]:
        """``names`` and every node that depends on them."""
        found = set(names)
        for name in list(found):
            found |= nx.descendants(self.dag, name)
        return found


def walk(ir: GraphIR, visit: Callable[[str, Layer, dict[str, V]], Mapping[str, V]],
         inputs: Mapping[str, V], *, nodes: Iterable[str] | None = None,
         outputs: Sequence[PortRef] | None = None, positional: bool = False) -> dict[Any, V]:
    """Push values along the edges of ``ir`` in topological order.

    ``visit(name, layer, fed)`` gets one node's input values (port -> value; with
    ``positional``, a list of them in input-port order) and returns its output values
    (port -> value). ``inputs`` gives the graph inputs' values. ``nodes`` restricts the walk
    to a subset (it must contain everything the wanted outputs need). Returns graph output
    name -> value, or, when ``outputs`` names ports, PortRef -> value (a graph output ref
    gives the value of its producer).
    """
    results: dict[Any, Mapping[str, V]] = {None: dict(inputs)}  # node -> its outputs
    subset = None if nodes is None else set(nodes)
    fed_by, table = ir.fed_by, ir.nodes
    for name in ir.order:
        if subset is not None and name not in subset:
            continue
        if positional:
            fed = []  # (a loop: a comprehension is a call of its own, per node)
            for _, node, src_port in fed_by[name]:
                fed.append(results[node][src_port])
        else:
            fed = {}
            for port, node, src_port in fed_by[name]:
                fed[port] = results[node][src_port]
        results[name] = visit(name, table[name], fed)
    edges = ir.edges

    def value(src: PortRef) -> V:
        return results[src[0]][src[1]]

    if outputs is None:
        return {n: value(edges[(None, n)]) for n in ir.outputs}
    return {ref: value(edges[ref] if ref[0] is None else ref) for ref in outputs}


# ------------------------------------------------------------------------- building
def _check_edges(nodes: Mapping[str, Layer], edges: Mapping[PortRef, PortRef],
                 muted: frozenset) -> None:
    """Check that every edge and muted output names an existing port."""

    def check(ref: PortRef, kind: str) -> None:
        if ref.node is None:
            return
        layer = nodes.get(ref.node)
        if layer is None:
            raise NetConnectionError(f"the connections name the unknown layer {ref.node!r}.",
                                     hint=f"the layers are: {', '.join(map(repr, nodes))}.")
        names = layer.input_names if kind == "input" else layer.output_names
        if ref.port not in names:
            raise NetConnectionError(
                f"the {kind} port {ref.port!r} of layer {ref.node!r} ({layer.describe()}) does not exist.",
                hint=f"its {kind} ports are: {', '.join(map(repr, names)) or 'none'}.",
            )

    for dst, src in edges.items():  # a graph port has node None
        d, s = nodes.get(dst[0]), nodes.get(src[0])
        if ((dst[0] is not None and (d is None or dst[1] not in d.input_names))
                or (src[0] is not None and (s is None or src[1] not in s.output_names))):
            check(dst, "input")  # one of the two raises, saying which
            check(src, "output")
    for ref in muted:
        check(ref, "output")


class _Completion:
    """One pass over the nodes of a checked edge table: each node's position and (port,
    producer node, producer port) triples; dangling inputs completed with graph inputs named
    after their port (into ``edges``); the graph inputs in order (those named by edges
    first); the dangling outputs; and whether every edge between two nodes runs forward in
    declaration order (then that order is topological)."""

    def __init__(self, nodes: Mapping[str, Layer], edges: dict[PortRef, PortRef],
                 muted: frozenset) -> None:
        inputs: dict[str, None] = {}  # an ordered set
        for src in edges.values():
            if src[0] is None:
                inputs[src[1]] = None
        consumed = set(edges.values())
        consumed.update(muted)  # (not dangling either)
        position = dict(zip(nodes, range(len(nodes))))
        fed_by: dict[str, tuple] = {}
        dangling: list[PortRef] = []
        forward = True
        get = edges.get
        ref = tuple.__new__  # PortRef(node, port), without its Python-level __new__
        for name, layer in nodes.items():
            feeds = []
            for port in layer.input_names:
                src = get((name, port))  # (a tuple equals the PortRef)
                if src is None:
                    src = edges[ref(PortRef, (name, port))] = ref(PortRef, (None, port))
                    inputs[port] = None
                elif forward and src[0] is not None and position[src[0]] >= position[name]:
                    forward = False
                feeds.append((port, src[0], src[1]))
            fed_by[name] = tuple(feeds)
            for port in layer.output_names:
                if (name, port) not in consumed:
                    dangling.append(ref(PortRef, (name, port)))
        self.inputs, self.position, self.fed_by = tuple(inputs), position, fed_by
        self.dangling, self.forward = dangling, forward


def _name_outputs(dangling: list[PortRef], edges: dict[PortRef, PortRef],
                  inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The graph outputs: those named by edges, then the dangling outputs named after their
    port (clashes suffixed ``Output1``, ``Output2``, ...; added to ``edges``)."""
    explicit = [dst.port for dst in edges if dst.node is None]
    clash = set(explicit) & set(inputs)
    if clash:
        raise NetConnectionError(
            f"the graph port {sorted(clash)[0]!r} is used both as an input and an output."
        )
    counts: dict[str, int] = {}
    for ref in dangling:
        counts[ref.port] = counts.get(ref.port, 0) + 1
    outputs = dict.fromkeys(explicit)  # an ordered set
    taken = set(inputs)
    seen: dict[str, int] = {}
    for ref in dangling:
        name = ref.port
        if counts[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name}{seen[name]}"
        if name in outputs or name in taken:
            raise NetConnectionError(
                f"Cannot use integer suffix to automatically disambiguate multiple dangling "
                f"output ports with name {ref.port!r} because of existing port with name {name!r}."
                if counts[ref.port] > 1 else
                f"the dangling output {ref.show()} clashes with the graph port {name!r}.",
                hint="connect it to a named NetPort, or mute it with (NetPort(layer, port), None).",
            )
        edges[PortRef(None, name)] = ref
        outputs[name] = None
    if not outputs:
        raise NetConnectionError("the net has no output port: every output is consumed or muted.")
    return tuple(outputs)


def _node_graph(nodes: Mapping[str, Layer], edges: Mapping[PortRef, PortRef]) -> nx.DiGraph:
    dag = nx.DiGraph()
    dag.add_nodes_from(nodes)
    dag.add_edges_from((src.node, dst.node) for dst, src in edges.items()
                       if dst.node is not None and src.node is not None)
    return dag


def _topological_order(nodes: Mapping[str, Layer], edges: Mapping[PortRef, PortRef],
                       position: Mapping[str, int], forward: bool
                       ) -> tuple[tuple[str, ...], nx.DiGraph | None]:
    """The lexicographic topological order (declaration order breaks ties), and the node
    graph if it was needed. When every edge runs ``forward`` in declaration order, that
    order is the answer (the smallest node left is always ready)."""
    if forward:
        return tuple(nodes), None
    dag = _node_graph(nodes, edges)
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return tuple(nx.lexicographical_topological_sort(dag, key=position.__getitem__)), dag
    names = [a for a, _ in cycle] + [cycle[0][0]]
    raise CycleError(
        "The connectivity of layers within a NetGraph must be acyclic; found the cycle "
        + " -> ".join(map(repr, names)) + ".",
        hint="remove one of the connections of this cycle.",
    )
