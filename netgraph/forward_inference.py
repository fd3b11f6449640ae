"""Shape inference by one forward pass, for nets whose types only flow forward.

The constraint solver (``layers/scope.py``) is the definition of a net's types; this module is
a fast path that gives the same :class:`Inference` without it when that is certain:

* the net is a NetGraph (or NetChain) of leaf layers (no sub-nets, no shared arrays), its
  input ports are declared, no output port is declared and no port has a NetEncoder /
  NetDecoder;
* walking the graph in order (the one walker, ``netgraph.ir.walk``), every node, solved on its
  own with its inputs declared as the types fed to it, comes out fully known - fixed sizes,
  known element types, known array shapes - and keeps the fed types unchanged.

Then every edge joins two equal, fully known types, so the joint solution is the union of the
nodes' own solutions: exactly what the solver would find. A node solved on its own with given
input types is cached by (layer constraints, input types): a 100,000-layer chain of two kinds
of layer solves two small problems and looks the rest up. Anything else - a Varying length, an
Automatic size fixed from downstream, a conflict (whose message needs the whole net's
provenance) - returns None, and the solver runs as before.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping, NamedTuple, Optional

from .errors import NetGraphError
from .ir import walk
from .layers.base import Layer
from .layers.scope import Inference, memoised_id
from .shapes import Index, Known
from .shapes.porttype import PortType

ENABLED = True
"""Whether :func:`forward_inference` is tried (tests switch it off to exercise the solver)."""

_NODES: dict[tuple, tuple] = {}
"""(layer constraints id, ids of the fed types) -> (the fed types, kept alive so that their
ids stay theirs; the node's :class:`_Solved` or None)."""
_CANONICAL: dict[Any, Any] = {}
"""One object per type value, so that a cache key can hold ids."""
_LIMIT = 10_000  # bounded; forgetting only costs small solves


def forward_inference(graph: Any) -> Optional[Inference]:
    """The inference of ``graph`` by one forward pass, or None when the solver is needed."""
    if not ENABLED or any(spec.coder is not None for spec in graph.port_specs.values()):
        return None
    ir = graph.ir
    if any(name in graph.port_specs for name in ir.outputs):
        return None
    declared = {}
    for name in ir.inputs:
        spec = graph.port_specs.get(name)
        if spec is None or spec.dims is None:
            return None
        declared[name] = _GraphInput(name, _canonical(spec))
    ports: dict[str, dict[str, PortType]] = {}  # node -> its port types
    arrays: dict[str, dict[str, tuple]] = {}  # node -> its array shapes (nodes with arrays)
    read: dict[str, PortType] = {}  # graph input -> the type its readers solve it to
    readers = {dst[0] for dst, src in ir.edges.items() if src[0] is None and dst[0] is not None}

    def visit(name: str, layer: Layer, fed: list) -> dict:  # fed: in input-port order
        reads = name in readers
        if reads:  # solved with the declared specs of the graph inputs it reads
            node = _node(layer, [v.spec if type(v) is _GraphInput else v for v in fed])
        else:
            node = _node(layer, fed)
        if node is None:
            raise _Bail
        ports[name] = node.ports
        if node.arrays:
            arrays[name] = node.arrays
        if reads:
            for port, value in zip(layer.input_names, fed):
                if type(value) is _GraphInput and read.setdefault(value.name, node.ports[port]) != node.ports[port]:
                    raise _Bail  # two readers solve one input to different types
        return node.outputs

    try:
        outputs = walk(ir, visit, declared, positional=True)
    except _Bail:
        return None
    if set(read) != set(ir.inputs):  # an input no node reads
        return None
    graph_ports = {name: read[name] for name in ir.inputs}
    for name, value in outputs.items():
        graph_ports[name] = read[value.name] if type(value) is _GraphInput else value
    return Inference(_Table(graph_ports, ports), _Table({}, arrays))


class _GraphInput(NamedTuple):
    name: str
    spec: Any


class _Bail(Exception):
    """The forward pass cannot decide; the solver runs."""


class _Solved(NamedTuple):
    """One node solved on its own: its port types, array shapes, and output types."""

    ports: dict[str, PortType]
    arrays: dict[str, tuple]
    outputs: dict[str, PortType]


class _Table(Mapping):
    """``(path, name) -> value`` over the graph's own ports and its nodes' tables, without
    building 400,000 keys for a 100,000-layer net."""

    def __init__(self, root: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> None:
        self._root, self._nodes = root, nodes

    def __getitem__(self, key: tuple) -> Any:
        path, name = key
        if not path:
            return self._root[name]
        if len(path) != 1:
            raise KeyError(key)
        return self._nodes[path[0]][name]

    def __iter__(self) -> Iterator[tuple]:
        for name in self._root:
            yield (), name
        for node, table in self._nodes.items():
            for name in table:
                yield (node,), name

    def __len__(self) -> int:
        return len(self._root) + sum(len(t) for t in self._nodes.values())


def _canonical(value: Any) -> Any:
    try:
        found = _CANONICAL.get(value)
    except TypeError:  # unhashable: used as it is (its key then misses)
        return value
    if found is None:
        if len(_CANONICAL) >= _LIMIT:
            _CANONICAL.clear()
            _NODES.clear()  # the keys' ids refer to the canonical objects
        found = _CANONICAL[value] = value
    return found


def _node(layer: Layer, fed: list) -> Optional[_Solved]:
    """``layer`` solved with its inputs of the types (or declared specs) ``fed``; None
    unless everything is fully known and ``fed`` is kept."""
    key_id = memoised_id(layer)
    if key_id is None:
        return None
    key = (key_id, id(fed[0])) if len(fed) == 1 else (key_id, *map(id, fed))
    found = _NODES.get(key)
    if found is None:
        if len(_NODES) >= _LIMIT:
            _NODES.clear()
        found = _NODES[key] = (fed, None if layer.children() else _solve_node(layer, fed))
    return found[1]


def _solve_node(layer: Layer, fed: list) -> Optional[_Solved]:
    names = layer.input_names
    if any(n in layer.port_specs and not isinstance(f, PortType) for n, f in zip(names, fed)):
        return None  # the net's declared input and the layer's own spec: the solver joins them
    given = {n: (f.to_user() if isinstance(f, PortType) else f)
             for n, f in zip(names, fed) if n not in layer.port_specs}
    try:
        inference = (layer.evolve(port_specs=given) if given else layer).inference
    except NetGraphError:
        return None  # the solver says what is wrong, with the whole net's provenance
    if inference.shares_arrays:
        return None
    ports = {p: _canonical(inference.port((), p)) for p in (*names, *layer.output_names)}
    if not all(_known(t) for t in ports.values()):
        return None
    if any(isinstance(f, PortType) and ports[p] != f for p, f in zip(names, fed)):
        return None  # the node refines what it is fed: the producer's type would change too
    arrays = {a: inference.array((), a) for (path, a) in inference.arrays if path == ()}
    if not all(shape is not None and all(isinstance(d, Known) for d in shape) for shape in arrays.values()):
        return None
    return _Solved(ports, arrays, {p: ports[p] for p in layer.output_names})


def _known(ptype: PortType) -> bool:
    if ptype.dims is None or not all(isinstance(d, Known) for d in ptype.dims):
        return False
    element = ptype.element
    return not isinstance(element, Index) or isinstance(element.n, Known)
