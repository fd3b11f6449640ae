"""NetTake, NetDrop and NetFlatten: cutting nets apart and inlining nested nets.

Wolfram's net surgery, in Python spelling (0-based layer indices, negative from the end):

=============================== ==========================================================
``NetTake(chain, end)``          layers 0..end (inclusive) of a NetChain
``NetTake(chain, (start, end))`` layers start..end (inclusive)
``NetTake(graph, end)``          every layer ``end`` depends on; the outputs are ``end``'s
``NetTake(graph, (start, end))`` the layers reachable from ``start`` that ``end`` depends on
``NetDrop(chain, n)``            without the first n layers (``-n``: the last n)
``NetDrop(chain, (start, end))`` without layers start..end (inclusive), the gap joined
``NetDrop(graph, layers)``       without those layers (a name, or a list of names/indices)
``NetFlatten(net, depth=None)``  nested NetGraph / NetChain nodes inlined as ``"enc/proj"``
=============================== ==========================================================

An *end* is a layer (name or index: all its outputs), ``NetPort(layer, port)`` (one output
of a layer), ``NetPort("port")`` (an output port of the graph), ``All`` (every graph output)
or a list of these (their union). A *start* is a layer, ``NetPort(layer, input_port)`` (that
layer), ``NetPort("port")`` (the layers fed by that graph input), ``All`` or a list.

Cutting a graph follows the construction rules of :class:`~netgraph.graph.NetGraph`: an
input whose producer was cut off becomes a graph input named after the consuming port (one
input per cut-off producer; ports fed by the same producer share it), a kept output nobody
consumes any more becomes a graph output named after its port; a name already in use, or
wanted by several ports, gets the suffixes 1, 2, ... (``Input1``, ``Input2``). Every new
graph port is declared with the type inferred for it in the original net, and kept layers
are the very same values, arrays included, so the result is as specified as the original.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Mapping, Sequence

from .layers.base import Layer
from .layers.options import All
from .layers.tree import child_name
from .errors import PartSpecError, ShapeMismatchError, SpecificationError
from .shapes.elements import Index, Integer, Restricted
from .shapes.dims import Known, dim_to_user
from .shapes.porttype import PortType

from .coders import port_coders
from .graph import NetChain, NetGraph, NetPort
from .ir import GraphIR, PortRef

# ------------------------------------------------------------------------ helpers


def _require_graph(net: Any, fn: str) -> NetGraph:
    if not isinstance(net, NetGraph):
        shown = net.describe() if isinstance(net, Layer) else repr(net)
        raise SpecificationError(
            f"{fn}: the first argument must be a NetGraph or a NetChain; found {shown}.",
            hint=f"{fn} cuts a net into layers; a single layer has no layers to cut.",
        )
    return net


def _layer_list(graph: NetGraph) -> str:
    return ", ".join(map(repr, graph.nodes))


def _node(graph: NetGraph, ref: Any, fn: str) -> str:
    """The node a layer reference names: a name, or a 0-based (negative: from the end) index."""
    name = child_name(graph.nodes, ref)
    if name is not None:
        return name
    raise PartSpecError(
        f"{fn}: {graph.describe()} has no layer {ref!r}.",
        hint=f"its layers are {_layer_list(graph)}; give a name or a 0-based index "
        "(negative from the end).",
    )


def _port_spec(ptype: PortType) -> Any:
    """The user spelling of an inferred port type, element type included (None: unknown rank)."""
    if ptype.dims is None:
        return None
    spec: tuple = tuple(dim_to_user(d) for d in ptype.dims)
    element = ptype.element
    if isinstance(element, Index) and isinstance(element.n, Known):
        spec += (Restricted("Integer", element.n.size),)
    elif isinstance(element, Integer):
        spec += ("Integer",)
    return spec


def _kept_coders(graph: NetGraph, kept: Sequence[str]) -> dict[str, Any]:
    """The coders of the ports of ``graph`` that the cut net keeps as they were."""
    return {name: coder for name, coder in port_coders(graph).items() if name in kept}


def _unique_names(fixed: Iterable[str], wanted: Sequence[tuple[Hashable, str]]) -> dict[Hashable, str]:
    """Names for ``wanted`` (key, preferred name) pairs, avoiding ``fixed`` names and each
    other: a preferred name free and wanted once is kept, otherwise ``name1``, ``name2``, ..."""
    taken = set(fixed)
    counts: dict[str, int] = {}
    for _, name in wanted:
        counts[name] = counts.get(name, 0) + 1
    result: dict[Hashable, str] = {}
    next_suffix: dict[str, int] = {}
    for key, name in wanted:
        if counts[name] == 1 and name not in taken:
            chosen = name
        else:
            i = next_suffix.get(name, 1)
            while f"{name}{i}" in taken:
                i += 1
            chosen = f"{name}{i}"
            next_suffix[name] = i + 1
        taken.add(chosen)
        result[key] = chosen
    return result


def _build_graph(nodes: Mapping[str, Layer], edges: Sequence[tuple[PortRef, PortRef]],
                 port_specs: Mapping[str, Any]) -> NetGraph:
    """A NetGraph over ``nodes`` from an edge list (dst, src) in which every graph port is
    explicit; outputs nobody consumes are muted."""
    consumed = {src for _, src in edges}
    muted = [PortRef(name, port) for name, layer in nodes.items() for port in layer.output_names
             if PortRef(name, port) not in consumed]
    return NetGraph.from_ir(GraphIR.from_edges(nodes, dict(edges), muted),
                            {k: v for k, v in port_specs.items() if v is not None})


def _as_chain(graph: NetGraph, renumber: bool) -> NetChain | None:
    """``graph`` as the NetChain it is, or None: layers in a line (each one's first output
    feeding the next one's only input), graph ports named as the first layer's inputs and
    the last layer's outputs, nothing muted. ``renumber`` names the layers "0", "1", ..."""
    names = list(graph.order)
    if graph.muted:
        return None
    for i, name in enumerate(names):
        layer = graph.nodes[name]
        if i > 0:
            prev = graph.nodes[names[i - 1]]
            if len(layer.input_names) != 1 or len(prev.output_names) != 1:
                return None
            fed_by = graph.edges[PortRef(name, layer.input_names[0])]
            if fed_by != PortRef(names[i - 1], prev.output_names[0]):
                return None
    first, last = graph.nodes[names[0]], graph.nodes[names[-1]]
    if graph.input_names != first.input_names or graph.output_names != last.output_names:
        return None
    if any(graph.edges[PortRef(names[0], p)] != PortRef(None, p) for p in first.input_names):
        return None
    if any(graph.edges[PortRef(None, p)] != PortRef(names[-1], p) for p in last.output_names):
        return None
    layers = {(str(i) if renumber else name): graph.nodes[name] for i, name in enumerate(names)}
    return NetChain(layers, **{k: v.to_user() for k, v in graph.port_specs.items()})


def _positional(graph: NetGraph) -> bool:
    return list(graph.nodes) == [str(i) for i in range(len(graph.nodes))]


def _finish(net: NetGraph, result: NetGraph) -> NetGraph:
    """A chain cut from a chain stays a chain (renumbered if its layers were unnamed)."""
    if isinstance(net, NetChain):
        chain = _as_chain(result, renumber=_positional(net))
        if chain is not None:
            return chain
    return result


# ---------------------------------------------------------------- the common cut


def _cut(graph: NetGraph, keep: set[str], ends: list[tuple[str, PortRef, bool]] | None,
         fn: str) -> NetGraph:
    """The sub-graph of ``graph`` over the layers ``keep``.

    ``ends``: the outputs, as (preferred name, source, whether the name is a graph port's
    and so kept as is); None keeps the graph outputs whose producers are kept and makes
    every kept output nobody consumes any more an output (NetDrop).
    """
    if not keep:
        raise SpecificationError(f"{fn}: the specification selects no layer of {graph.describe()}.")
    inference = graph.inference
    order = [n for n in graph.order if n in keep]

    # the kept layers' inputs; a producer that was cut off will become a graph input
    node_edges: list[tuple[PortRef, PortRef]] = []
    cut_sources: dict[PortRef, str] = {}
    for name in order:
        for port in graph.nodes[name].input_names:
            dst = PortRef(name, port)
            src = graph.edges[dst]
            if src.node is not None and src.node not in keep:
                cut_sources.setdefault(src, port)
            node_edges.append((dst, src))

    # outputs with fixed names (graph ports), and outputs named after their port
    if ends is None:
        fixed = [(n, graph.edges[PortRef(None, n)]) for n in graph.output_names
                 if graph.edges[PortRef(None, n)].node in keep]
        consumed = {s for _, s in node_edges} | {s for _, s in fixed}
        wanted = [(PortRef(name, port), port) for name in order
                  for port in graph.nodes[name].output_names
                  if PortRef(name, port) not in consumed and PortRef(name, port) not in graph.muted]
    else:
        fixed = [(n, s) for n, s, is_graph_port in ends if is_graph_port]
        wanted = [(s, n) for n, s, is_graph_port in ends if not is_graph_port]

    # names: kept graph inputs and fixed outputs first, then new inputs, then new outputs
    old_inputs = [n for n in graph.input_names
                  if any(s == PortRef(None, n) for _, s in (*node_edges, *fixed))]
    new_inputs = _unique_names([*old_inputs, *(n for n, _ in fixed)], list(cut_sources.items()))
    renamed = {src: PortRef(None, new_inputs[src]) for src in cut_sources}
    node_edges = [(dst, renamed.get(src, src)) for dst, src in node_edges]
    new_outputs = _unique_names([*old_inputs, *new_inputs.values(), *(n for n, _ in fixed)], wanted)
    outputs = fixed + [(new_outputs[s], s) for s, _ in wanted]
    if ends is not None:  # the order in which the ends were given
        position = {s: i for i, (_, s, _) in enumerate(ends)}
        outputs.sort(key=lambda item: position[item[1]])
    if not outputs:
        raise SpecificationError(
            f"{fn}: the result would have no output port.",
            hint="keep at least one layer whose output is not consumed by a removed layer.",
        )

    # every graph port declared with the type inferred for it in the original net
    specs: dict[str, Any] = {n: _port_spec(inference.port((), n)) for n in old_inputs}
    for src, new in renamed.items():
        specs[new.port] = _port_spec(inference.port((src.node,), src.port))
    for name, src in outputs:
        specs[name] = _port_spec(inference.port(() if src.node is None else (src.node,), src.port))
    specs.update(_kept_coders(graph, [*old_inputs, *(n for n, s in outputs if n in graph.output_names
                                                     and graph.edges[PortRef(None, n)] == s)]))

    # kept outputs no longer consumed or given out are muted; declare them as inferred, so
    # that sizes inferred backwards from a removed consumer stay known
    used = {s for _, s in node_edges} | {s for _, s in outputs}
    nodes: dict[str, Layer] = {}
    for name in graph.nodes:
        if name not in keep:
            continue
        layer = graph.nodes[name]
        boundary = {}
        for port in layer.output_names:
            ref = PortRef(name, port)
            if ref not in used and ref not in graph.muted and port not in layer.port_specs:
                spec = _port_spec(inference.port((name,), port))
                if spec is not None:
                    boundary[port] = spec
        nodes[name] = layer.evolve(port_specs=boundary) if boundary else layer

    # graph inputs: the kept ones in their original order, then the new ones
    rank = {n: i for i, n in enumerate(old_inputs)}
    rank.update({new.port: len(rank) + i for i, new in enumerate(renamed.values())})
    node_edges.sort(key=lambda e: rank[e[1].port] if e[1].node is None else len(rank))
    edges = node_edges + [(PortRef(None, name), src) for name, src in outputs]
    return _build_graph(nodes, edges, specs)


# ----------------------------------------------------------------------- NetTake


def _layer_port(graph: NetGraph, ref: NetPort, fn: str, kind: str, rule: str) -> tuple[str, str]:
    """(layer, port) of ``NetPort(layer, port)``, the port being an ``kind`` ("input" or
    "output") port of that layer."""
    name = _node(graph, ref.parts[0], fn)
    port = str(ref.parts[1])
    layer = graph.nodes[name]
    wanted, other = ((layer.input_names, layer.output_names) if kind == "input"
                     else (layer.output_names, layer.input_names))
    if port not in wanted:
        found = f"an {'output' if kind == 'input' else 'input'} port" if port in other else "not a port"
        raise PartSpecError(f'{fn}: "{port}" is {found} of layer "{name}" ({layer.describe()}); {rule}.',
                            hint=f"its {kind} ports are {list(wanted)}.")
    return name, port


def _ends(graph: NetGraph, spec: Any, fn: str) -> list[tuple[str, PortRef, bool]]:
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise SpecificationError(f"{fn}: an empty list of ends selects nothing.")
    ends: list[tuple[str, PortRef, bool]] = []
    for item in items:
        if item is All:
            ends += [(n, graph.edges[PortRef(None, n)], True) for n in graph.output_names]
        elif isinstance(item, NetPort) and len(item.parts) == 1:
            port = str(item.parts[0])
            if port in graph.output_names:
                ends.append((port, graph.edges[PortRef(None, port)], True))
            elif port in graph.input_names:
                raise SpecificationError(
                    f"{fn}: NetPort({port!r}) is an input of {graph.describe()}; an end must "
                    "be an output.",
                    hint=f"its outputs are {list(graph.output_names)}.",
                )
            else:
                raise PartSpecError(
                    f"{fn}: {graph.describe()} has no port {port!r}.",
                    hint=f"its outputs are {list(graph.output_names)}; for a layer's port "
                    "write NetPort(layer, port).",
                )
        elif isinstance(item, NetPort):
            name, port = _layer_port(graph, item, fn, "output", "an end must be an output port")
            ends.append((port, PortRef(name, port), False))
        elif isinstance(item, (tuple, list)):
            raise SpecificationError(
                f"{fn}: {item!r} is not a valid end.",
                hint="an end is a layer name or index, NetPort(...), All, or a list of these; "
                "a (start, end) pair may only stand at the top level.",
            )
        else:
            name = _node(graph, item, fn)
            ends += [(p, PortRef(name, p), False) for p in graph.nodes[name].output_names]
    unique: dict[PortRef, tuple[str, PortRef, bool]] = {}
    for end in ends:
        unique.setdefault(end[1], end)
    return list(unique.values())


def _starts(graph: NetGraph, spec: Any, fn: str) -> set[str] | None:
    """The start layers named by ``spec`` (None: All, no restriction)."""
    items = spec if isinstance(spec, list) else [spec]
    starts: set[str] = set()
    for item in items:
        if item is All:
            return None
        if isinstance(item, NetPort) and len(item.parts) == 1:
            port = str(item.parts[0])
            if port not in graph.input_names:
                raise PartSpecError(
                    f"{fn}: {graph.describe()} has no input port {port!r} to start from.",
                    hint=f"its inputs are {list(graph.input_names)}.",
                )
            starts |= {d.node for d, s in graph.edges.items()
                       if s == PortRef(None, port) and d.node is not None}
        elif isinstance(item, NetPort):
            name, _ = _layer_port(graph, item, fn, "input",
                                  "a start must be a layer or one of its input ports")
            starts.add(name)
        elif isinstance(item, (tuple, list)):
            raise SpecificationError(f"{fn}: {item!r} is not a valid start.")
        else:
            starts.add(_node(graph, item, fn))
    return starts


def NetTake(net: NetGraph, spec: Any) -> NetGraph:
    """The part of ``net`` up to ``end``, or between ``start`` and ``end``.

    ``spec`` is an end, or a ``(start, end)`` tuple (see the module docstring for ends and
    starts). On a NetChain, ``NetTake(chain, end)`` keeps layers 0..end and
    ``NetTake(chain, (start, end))`` layers start..end, both inclusive and 0-based: ``-1`` is
    the last layer, so ``NetTake(chain, 1)`` is the first *two* layers (Wolfram's
    ``NetTake[chain, 2]``). The result of a chain is a NetChain (renumbered "0", "1", ... if
    the layers were unnamed).

    On a NetGraph the result keeps every layer the ends depend on (and, with a start, that
    is reachable from a start layer); its outputs are exactly the ends' outputs (named after
    the graph port, or after the layer's port), and inputs whose producers were left out
    become graph inputs (see the module docstring for names). Other outputs of the kept
    layers are muted. Arrays and inferred shapes are kept.

    Raises:
        PartSpecError: an unknown layer or port.
        SpecificationError: a malformed spec, or an end that does not depend on the start.
    """
    fn = "NetTake"
    graph = _require_graph(net, fn)
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise SpecificationError(
                f"{fn}: {spec!r} is not a valid specification.",
                hint="give an end, or a (start, end) pair; a list of ends is a list.",
            )
        start_spec, end_spec = spec
    else:
        start_spec, end_spec = All, spec
    ends = _ends(graph, end_spec, fn)
    keep = graph.ir.upstream(s.node for _, s, _ in ends if s.node is not None)
    starts = _starts(graph, start_spec, fn)
    if starts is not None:
        keep &= graph.ir.downstream(starts)
        missing = [s.node for _, s, _ in ends if s.node is not None and s.node not in keep]
        if missing:
            raise SpecificationError(
                f'{fn}: the end layer "{missing[0]}" does not depend on the start '
                f"{start_spec!r} in {graph.describe()}.",
                hint="the start must come before the end; check the order of (start, end).",
            )
    return _finish(graph, _cut(graph, keep, ends, fn))


# ----------------------------------------------------------------------- NetDrop


def _chain_index(chain: NetChain, ref: Any) -> int:
    return list(chain.nodes).index(_node(chain, ref, "NetDrop"))


def _drop_range(chain: NetChain, start: int, end: int) -> NetGraph:
    """``chain`` without its layers start..end (inclusive), the layers around joined."""
    names = list(chain.nodes)
    if start > end:
        raise SpecificationError(
            f'NetDrop: the range ({names[start]!r}, {names[end]!r}) is empty: layer '
            f'"{names[start]}" comes after "{names[end]}".',
            hint="give (start, end) with start before end.",
        )
    if start == 0 and end == len(names) - 1:
        raise SpecificationError(f"NetDrop: dropping every layer of {chain.describe()} leaves nothing.")
    if start == 0 or end == len(names) - 1:
        keep = set(names[:start]) | set(names[end + 1:])
        return _finish(chain, _cut(chain, keep, None, "NetDrop"))
    first, last = chain.nodes[names[start]], chain.nodes[names[end]]
    inference = chain.inference
    t_in = inference.port((names[start],), first.input_names[0])
    t_out = inference.port((names[end],), last.output_names[0])
    if t_in != t_out:
        raise ShapeMismatchError(
            f"NetDrop: cannot remove layers {names[start]!r}..{names[end]!r} from "
            f"{chain.describe()}: the first removed layer \"{names[start]}\" ({first.describe()}) "
            f"takes {t_in}, the last removed layer \"{names[end]}\" ({last.describe()}) gives "
            f"{t_out}, so the layers around the gap cannot be joined.",
            hint="remove a range whose input and output shapes agree, or use NetTake.",
        )
    kept = names[:start] + names[end + 1:]
    renumber = _positional(chain)
    layers = {(str(i) if renumber else n): chain.nodes[n] for i, n in enumerate(kept)}
    specs = {p: _port_spec(t) for p, t in chain.port_types().items()}
    specs.update(_kept_coders(chain, list(specs)))
    return NetChain(layers, **{p: s for p, s in specs.items() if s is not None})


def NetDrop(net: NetGraph, spec: Any) -> NetGraph:
    """``net`` without some of its layers.

    On a NetChain: ``NetDrop(chain, n)`` removes the first n layers, ``NetDrop(chain, -n)``
    the last n, and ``NetDrop(chain, (start, end))`` layers start..end (0-based indices or
    names, inclusive; a single name is ``(name, name)``). Removing interior layers joins the
    layers around the gap, which needs the first removed layer's input type to equal the last
    removed layer's output type. The result is a NetChain.

    On a NetGraph: ``NetDrop(graph, layer)`` or ``NetDrop(graph, [layer, ...])`` (names or
    indices; a bare int is refused, as it would read as "the first n layers") removes those
    layers. Inputs they fed become graph inputs, outputs they consumed become graph outputs
    (named after the port; see the module docstring), and graph outputs they produced go.

    Raises:
        PartSpecError: an unknown layer, or an index out of range.
        ShapeMismatchError: removed interior layers whose input and output types differ.
        SpecificationError: a malformed spec, or nothing left.
    """
    fn = "NetDrop"
    graph = _require_graph(net, fn)
    if isinstance(graph, NetChain):
        names = list(graph.nodes)
        if isinstance(spec, int) and not isinstance(spec, bool):
            if abs(spec) > len(names):
                raise PartSpecError(
                    f"{fn}: cannot drop {abs(spec)} layers from {graph.describe()}.",
                    hint=f"it has {len(names)} layers: {_layer_list(graph)}.",
                )
            if spec == 0:
                return graph
            if spec > 0:
                return _drop_range(graph, 0, spec - 1)
            return _drop_range(graph, len(names) + spec, len(names) - 1)
        if isinstance(spec, str):
            spec = (spec, spec)
        if isinstance(spec, tuple) and len(spec) == 2:
            return _drop_range(graph, _chain_index(graph, spec[0]), _chain_index(graph, spec[1]))
        raise SpecificationError(
            f"{fn}: {spec!r} is not a valid specification for a NetChain.",
            hint="give n (the first n layers), -n (the last n) or a (start, end) pair.",
        )
    if isinstance(spec, int) and not isinstance(spec, bool):
        raise SpecificationError(
            f"{fn}: an int ({spec}) on a NetGraph is ambiguous.",
            hint=f"give a layer name, or a list of layers: NetDrop(graph, [{spec}]) drops the "
            f"layer at index {spec}.",
        )
    items = spec if isinstance(spec, list) else [spec]
    drop = set()
    for item in items:
        if isinstance(item, NetPort) and len(item.parts) == 2:
            item = item.parts[0]
        if isinstance(item, (tuple, list, NetPort)):
            raise SpecificationError(
                f"{fn}: {item!r} is not a layer of a NetGraph.",
                hint="give a layer name or index, or a list of them.",
            )
        drop.add(_node(graph, item, fn))
    if not drop:
        return graph
    keep = set(graph.nodes) - drop
    if not keep:
        raise SpecificationError(f"{fn}: dropping every layer of {graph.describe()} leaves nothing.")
    return _cut(graph, keep, None, fn)


# -------------------------------------------------------------------- NetFlatten


def _flat_parts(graph: NetGraph, depth: int | None, inference: Any, prefix: tuple[str, ...]):
    """Nodes, edges (dst, src) with the graph's own ports, and original paths of ``graph``
    with its nested graphs inlined to ``depth`` levels (None: all)."""
    inline = {name for name, layer in graph.nodes.items()
              if isinstance(layer, NetGraph) and (depth is None or depth > 0)}
    inner_depth = None if depth is None else depth - 1
    nodes: dict[str, Layer] = {}
    paths: dict[str, tuple[str, ...]] = {}
    outputs_of: dict[PortRef, PortRef] = {}  # an inlined node's output -> its flat source
    inner_edges: dict[str, list[tuple[PortRef, PortRef]]] = {}
    for name, layer in graph.nodes.items():
        if name not in inline:
            nodes[name] = _flatten_inside(layer, depth)
            paths[name] = prefix + (name,)
            continue
        sub_nodes, sub_edges, sub_paths = _flat_parts(layer, inner_depth, inference, prefix + (name,))
        sub_nodes = _push_port_specs(layer, sub_nodes, sub_edges, sub_paths, inference)
        rename = {n: f"{name}/{n}" for n in sub_nodes}
        for n, flat in rename.items():
            if flat in nodes or (flat in graph.nodes and flat not in inline):
                raise SpecificationError(
                    f'NetFlatten: layer "{n}" of "{name}" would be named "{flat}", which is '
                    f"already the name of a layer of {graph.describe()}.",
                    hint="rename one of the two layers before flattening.",
                )
            nodes[flat] = sub_nodes[n]
            paths[flat] = sub_paths[n]
        moved = []
        for dst, src in sub_edges:
            src = src if src.node is None else PortRef(rename[src.node], src.port)
            if dst.node is None:
                outputs_of[PortRef(name, dst.port)] = src
            else:
                moved.append((PortRef(rename[dst.node], dst.port), src))
        inner_edges[name] = moved

    def resolve(src: PortRef) -> PortRef:
        while src.node in inline:
            inner = outputs_of[src]
            if inner.node is not None:
                return inner
            src = graph.edges[PortRef(src.node, inner.port)]  # passed straight through
        return src

    edges: list[tuple[PortRef, PortRef]] = []
    for name, layer in graph.nodes.items():
        if name in inline:
            for dst, src in inner_edges[name]:
                if src.node is None:  # an input of the inlined graph: what feeds it outside
                    src = resolve(graph.edges[PortRef(name, src.port)])
                edges.append((dst, src))
        else:
            edges += [(PortRef(name, p), resolve(graph.edges[PortRef(name, p)]))
                      for p in layer.input_names]
    edges += [(PortRef(None, n), resolve(graph.edges[PortRef(None, n)]))
              for n in graph.output_names]
    return nodes, edges, paths


def _push_port_specs(sub: NetGraph, nodes: dict[str, Layer], edges: list[tuple[PortRef, PortRef]],
                     paths: dict[str, tuple[str, ...]], inference: Any) -> dict[str, Layer]:
    """Move the port declarations of an inlined graph onto the layers at its ports (the
    graph itself disappears); a layer that declares that port itself gets the type inferred
    in the original net, which satisfies both declarations."""
    nodes = dict(nodes)
    for port, spec in sub.port_specs.items():
        if port in sub.input_names:
            targets = [d for d, s in edges if s == PortRef(None, port) and d.node is not None]
        else:
            targets = [s for d, s in edges if d == PortRef(None, port) and s.node is not None]
        for ref in targets:
            layer = nodes[ref.node]
            value = (_port_spec(inference.port(paths[ref.node], ref.port))
                     if ref.port in layer.port_specs else spec.to_user())
            if value is not None:
                nodes[ref.node] = layer.evolve(port_specs={ref.port: value})
    return nodes


def _nested(net: Layer) -> bool:
    """Whether NetFlatten has anything to inline in ``net``: a graph among a graph's nodes,
    or inside an operator's net."""
    if isinstance(net, NetGraph):
        return any(isinstance(n, NetGraph) or _nested(n) for n in net.nodes.values())
    return net.is_container and any(_nested(c) for c in net.children().values())


def _flatten_inside(layer: Layer, depth: int | None) -> Layer:
    """An operator (NetMapOperator) with the graphs it applies flattened, as Wolfram does;
    any other layer as it is."""
    if not layer.is_container or isinstance(layer, NetGraph):
        return layer
    flat = {name: NetFlatten(child, depth) for name, child in layer.children().items()
            if isinstance(child, NetGraph) or child.is_container}
    changed = {name: child for name, child in flat.items() if child is not layer.children()[name]}
    return layer.with_children(changed) if changed else layer


def NetFlatten(net: Layer, depth: int | None = None) -> Layer:
    """``net`` with its nested NetGraph / NetChain nodes inlined, at every depth or to
    ``depth`` levels (``NetFlatten(net, 1)`` inlines only the top level's sub-nets).

    An inlined layer is named by its path joined with "/": layer "proj" of the node "enc"
    becomes "enc/proj" (and "enc/mid/proj" one level deeper; unnamed chain layers give
    "1/0"), so ``NetExtract(flat, "enc/proj")`` is ``NetExtract(net, ("enc", "proj"))``,
    arrays included. Connections are rewired through the inlined graphs' ports, and a port
    shape declared on an inlined graph moves onto the layers at that port, so the flattened
    net infers the same shapes and computes exactly the same outputs.

    Inside operators, the nets they apply are flattened too, as Wolfram's NetFlatten does:
    ``NetFlatten(NetMapOperator(chain))`` is ``NetMapOperator(NetFlatten(chain))`` (the
    operator stays: it applies its net per element). An AttentionLayer's "ScoringNet" is a
    parameter of the layer (a function of one query-key pair), not an operator's net, and is
    kept as it is.

    A flat result whose layers form a line (each one's output feeding the next one's only
    input, with the ports of the first and last layer) is a NetChain; otherwise a NetGraph.
    A layer that is not a graph is returned unchanged.

    Raises:
        SpecificationError: a bad ``depth``, or a flattened name that is already taken.
    """
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise SpecificationError(
            f"NetFlatten: depth must be None (every level) or an int >= 0; found {depth!r}."
        )
    if depth == 0 or not _nested(net):
        return net
    if not isinstance(net, NetGraph):
        return _flatten_inside(net, depth)
    nodes, edges, _ = _flat_parts(net, depth, net.inference, ())
    rank = {n: i for i, n in enumerate(net.input_names)}
    edges.sort(key=lambda e: (1, 0) if e[0].node is None else
               (0, rank.get(e[1].port, len(rank)) if e[1].node is None else len(rank)))
    flat = _build_graph(nodes, edges, {k: v.to_user() for k, v in net.port_specs.items()})
    return _as_chain(flat, renumber=False) or flat


__all__ = ["NetDrop", "NetFlatten", "NetTake"]
