"""Repeated blocks of a graph lowered as one ``lax.scan`` (depth-independent compiles).

A *run* is a stretch of a graph's topological order made of ``count >= 2`` consecutive
*segments* of ``period`` nodes each, where

* the segments are structurally identical: node by node the same :func:`structural_key`
  (layer class, options, solved port types, array shapes, and the same of everything nested
  inside), different arrays;
* they are wired identically: inside a segment the same edges, and every input that comes
  from outside a segment (after the first) is an output of the segment just before - the
  *carry*, the same ports of the previous segment every time; the first segment takes the
  carry's initial values from wherever its inputs come from;
* nothing else reads a segment's outputs: only the segment itself and the next one (the last
  segment's carried outputs are what the rest of the graph sees).

A NetChain of K (LinearLayer(64), Tanh) pairs is one run of period 2 and count K; a chain of
K identical sub-nets (Transformer blocks) one run of period 1. The run is lowered as one
``jax.lax.scan`` over its segments, with each node's params stacked along a new leading
axis: the traced and compiled program holds one segment, whatever the count.

Results equal the unrolled lowering: the body is the same per-node lowering under the first
segment's paths (shapes are looked up there: they are the same), randomness is keyed by each
segment's own paths (:meth:`~layers.lowering.LowerContext.key` reads ``ctx.renames``), and new
layer state (BatchNormalization's moving statistics, ``put_state``) comes out of the scan
stacked and is written back under each segment's own paths. A node whose outputs are
requested as taps (activity regularizers) is never part of a run: those stay unrolled.

``lower(net, scan_blocks=False)`` (``LowerContext.scan_blocks``) turns this off.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .ir import GraphIR, PortRef
from .layers.base import Layer
from .layers.lowering import LowerContext
from .layers.scope import memoised_id
from .layers.tree import iter_layers

MAX_PERIOD = 32
"""The longest segment (in nodes) looked for."""

STACKED = "<scan>"
"""The key, in a graph's params, of its runs' params stacked ahead of time (by first node)."""


def structural_key(layer: Layer, inference: Any, path: tuple) -> tuple:
    """What must agree for two nodes to share one lowering: for the layer and everything
    nested in it, the class, options, solved port types, array shapes and shared-array
    names, and a container's wiring."""
    if not layer.children():  # a leaf: itself alone
        return (_own_key((), layer, inference, path),)
    return tuple(_own_key(rel, sub, inference, path) for rel, sub in iter_layers(layer, include_root=True))


def _own_key(rel: tuple, sub: Layer, inference: Any, path: tuple) -> tuple:
    ports = tuple(inference.port(path + rel, n) for n in (*sub.input_names, *sub.output_names))
    same = memoised_id(sub)  # class, options, port specs and array shapes as one number, for
    if same is not None:  # a layer holding no sub-nets nor shared arrays (most of them)
        return (rel, same, ports)
    options: Any = (type(sub.options), tuple(vars(sub.options).items()))  # cheaper than the model's ==
    try:
        hash(options)
    except TypeError:  # an option holding an array: this layer is like no other
        options = ("unhashable", id(sub))
    arrays = tuple((n, None if a is None else a.shape) for n, a in sub.arrays.items())
    ir = getattr(sub, "ir", None)
    wiring = None if ir is None else (ir.order, frozenset(ir.edges.items()))
    return (rel, type(sub), options, ports, arrays, tuple(sorted(sub.shared.items())), wiring)


@dataclass
class Run:
    """``names[j][k]``: node ``k`` of segment ``j``. ``feeds[k]``: input port -> ("in", k',
    port) for an edge inside the segment or ("carry", c) for carry slot ``c``; ``slots``:
    the carried outputs (k', port) of a segment."""

    names: list[tuple[str, ...]]
    feeds: list[dict[str, tuple]]
    slots: list[tuple[int, str]]


def find_runs(ir: GraphIR, inference: Any, path: tuple, taps: Any = None) -> list[Run]:
    """The runs of repeated blocks in the graph at ``path`` of a net solved by ``inference``
    (see the module docstring); nodes with requested ``taps`` at or below them take part in
    none."""
    if not taps:
        cached = _CACHE.get(ir, {}).get(path)
        if cached is not None and cached[0] is inference:
            return cached[1]
    runs = _find_runs(ir, inference, path, taps or {})
    if not taps:
        _CACHE.setdefault(ir, {})[path] = (inference, runs)
    return runs


_CACHE: "weakref.WeakKeyDictionary[GraphIR, dict]" = weakref.WeakKeyDictionary()
"""Runs already found: graph IR -> path -> (inference, runs) (lowering and stack_runs ask
for the same ones)."""


def _find_runs(ir: GraphIR, inference: Any, path: tuple, taps: Any) -> list[Run]:
    order = ir.order
    interned: dict[tuple, int] = {}
    keys = []
    for name in order:
        node = path + (name,)
        if taps and any(p[:len(node)] == node for p in taps):
            keys.append(-1 - len(keys))  # unique: never repeated
            continue
        key = structural_key(ir.nodes[name], inference, node)
        keys.append(interned.setdefault(key, len(interned)))
    position = {name: i for i, name in enumerate(order)}
    consumers: dict[str, list[PortRef]] = {}
    for dst, src in ir.edges.items():
        if src.node is not None:
            consumers.setdefault(src.node, []).append(dst)

    def best_at(start: int) -> Run | None:
        best = None
        for period in range(1, min(MAX_PERIOD, (len(order) - start) // 2) + 1):
            if keys[start] != keys[start + period] or (best and period % len(best.names[0]) == 0):
                continue
            run = _run_at(ir, order, keys, position, consumers, start, period)
            if run is not None and (best is None or _size(run) > _size(best)):
                best = run
        return best

    runs, start, found = [], 0, best_at(0) if order else None
    while start < len(order):
        # greedy, looking one node ahead: [L, L, Tanh, L, Tanh] is L + 2 x (L, Tanh)
        # (a run longer than MAX_PERIOD nodes is kept without looking)
        after = best_at(start + 1) if start + 1 < len(order) and (found is None or _size(found) <= MAX_PERIOD) else None
        if found is None or after is not None and _size(after) > _size(found):
            start, found = start + 1, after
            continue
        runs.append(found)
        start += _size(found)
        found = best_at(start) if start < len(order) else None
    return runs


def _size(run: Run) -> int:
    return len(run.names) * len(run.names[0])


def _run_at(ir: GraphIR, order: tuple, keys: list, position: dict, consumers: dict,
            start: int, period: int) -> Run | None:
    """The longest valid run of segments of ``period`` nodes from ``start``, or None."""

    def segment(j: int) -> range:
        return range(start + j * period, start + (j + 1) * period)

    def signature(j: int) -> list[dict[str, tuple]]:
        here, before = segment(j), segment(j - 1)
        sig = []
        for i in here:
            feeds = {}
            for port, node, src_port in ir.fed_by[order[i]]:
                at = None if node is None else position[node]
                if at in here:
                    feeds[port] = ("in", at - here.start, src_port)
                elif j > 0 and at in before:
                    feeds[port] = ("carry", at - before.start, src_port)
                else:
                    feeds[port] = ("ext", PortRef(node, src_port))
            sig.append(feeds)
        return sig

    pattern = keys[start:start + period]
    if keys[start + period:start + 2 * period] != pattern:
        return None
    first = signature(1)
    if any(f[0] == "ext" for feeds in first for f in feeds.values()):
        return None
    count = 2
    while start + (count + 1) * period <= len(order):
        if keys[start + count * period:start + (count + 1) * period] != pattern or signature(count) != first:
            break
        count += 1
    slots = sorted({(f[1], f[2]) for feeds in first for f in feeds.values() if f[0] == "carry"})
    slot_of = {s: c for c, s in enumerate(slots)}
    # the first segment: carried inputs from outside, the same source for the same slot
    sources: dict[int, PortRef] = {}
    for feeds0, feeds1 in zip(signature(0), first):
        for port, f in feeds1.items():
            g = feeds0[port]
            if f[0] == "in":
                if g != f:
                    return None
                continue
            if g[0] != "ext" or sources.setdefault(slot_of[(f[1], f[2])], g[1]) != g[1]:
                return None

    def readers_ok(j: int, last: bool) -> bool:
        allowed = segment(j) if last else range(segment(j).start, segment(j + 1).stop)
        for i in segment(j):
            for dst in consumers.get(order[i], ()):
                inside = dst.node is not None and position[dst.node] in allowed
                src = ir.edges[dst]
                if not inside and not (last and (i - segment(j).start, src.port) in slot_of):
                    return False
        return True

    valid = 1
    while valid < count and readers_ok(valid - 1, False):
        valid += 1
    while valid >= 2 and not readers_ok(valid - 1, True):
        valid -= 1
    if valid < 2:
        return None
    feeds = [{port: ("carry", slot_of[(f[1], f[2])]) if f[0] == "carry" else f for port, f in fd.items()}
             for fd in first]
    names = [tuple(order[i] for i in segment(j)) for j in range(valid)]
    return Run(names, feeds, slots)


class RunLowering:
    """The per-node visit of :func:`~netgraph.ir.walk` over a graph with runs: a node
    outside every run is lowered by ``lower_node``; the first segment of a run records
    its carried inputs, and its last node lowers the whole run as one scan; the last
    segment hands out the carried results (the other nodes' outputs are never read)."""

    def __init__(self, ctx: LowerContext, ir: GraphIR, runs: list[Run],
                 lower_node: Callable[[LowerContext, str, Layer, dict], dict]) -> None:
        self.ctx, self.ir, self.lower_node = ctx, ir, lower_node
        self.where = {name: (i, run, j, k) for i, run in enumerate(runs) for j, seg in enumerate(run.names)
                      for k, name in enumerate(seg)}
        self.init: list[dict[int, Any]] = [{} for _ in runs]  # carry slot -> first value
        self.result: list[tuple] = [() for _ in runs]

    def visit(self, name: str, layer: Layer, fed: dict) -> dict:
        hit = self.where.get(name)
        if hit is None:
            return self.lower_node(self.ctx, name, layer, fed)
        i, run, j, k = hit
        if j == 0:
            for port, f in run.feeds[k].items():
                if f[0] == "carry":
                    self.init[i][f[1]] = fed[port]
            if k == len(run.names[0]) - 1:
                self.result[i] = self._scan(run, self.init[i])
        if j == len(run.names) - 1:
            slot_of = {s: c for c, s in enumerate(run.slots)}
            return {p: self.result[i][slot_of[(k, p)]] if (k, p) in slot_of else None
                    for p in layer.output_names}
        return dict.fromkeys(layer.output_names)

    def _scan(self, run: Run, first_values: dict[int, Any]) -> tuple:
        ctx, nodes = self.ctx, self.ir.nodes
        first = run.names[0]
        stacked = ctx.params.get(STACKED, {}).get(first[0])  # stacked ahead (stack_runs)
        if stacked is None:
            stacked = jax.tree.map(lambda *xs: jnp.stack(xs),
                                   *[[ctx.params.get(n, {}) for n in seg] for seg in run.names])
        depth = len(ctx.path)
        table = {nominal: tuple(seg[k] for seg in run.names) for k, nominal in enumerate(first)}
        collect = ctx.state is not None

        def body(carry: tuple, xs: tuple) -> tuple:
            params, index = xs
            inner = ctx.replace(params={n: params[k] for k, n in enumerate(first)},
                                lengths=dict(ctx.lengths), state={} if collect else None, taps=None,
                                renames=ctx.renames + ((depth, table, index),))
            values: dict[tuple[int, str], Any] = {}
            for k, name in enumerate(first):
                fed = {port: carry[f[1]] if f[0] == "carry" else values[(f[1], f[2])]
                       for port, f in run.feeds[k].items()}
                for port, value in self.lower_node(inner, name, nodes[name], fed).items():
                    values[(k, port)] = value
            return tuple(values[s] for s in run.slots), inner.state or {}

        init = tuple(first_values[c] for c in range(len(run.slots)))
        with jax.named_scope(f"scan_{first[0]}x{len(run.names)}"):
            final, states = jax.lax.scan(body, init, (stacked, jnp.arange(len(run.names))))
        for path, value in states.items():  # stacked new state, back under each segment's path
            for j, seg in enumerate(run.names):
                real = path[:depth] + (seg[first.index(path[depth])],) + path[depth + 1:]
                ctx.state[real] = value[j]
        return final


def stack_runs(net: Layer, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` (of :func:`~netgraph.compiler.params_of`) with the params of every run's
    nodes stacked ahead of time, on the host, under ``STACKED`` - what the scans read, so a
    compiled function takes one array per run and array name instead of one per block (XLA
    compiles a concatenation of K arguments in time linear in K). Nets with shared arrays
    are returned as they are (the lowering stacks inside the function)."""
    if "SharedArrays" in params:
        return params
    inference = net.inference

    def visit(layer: Layer, path: tuple, tree: Mapping[str, Any]) -> Mapping[str, Any]:
        out = dict(tree)
        if not layer.is_container:  # a layer that lowers its sub-nets itself reads them as they are
            return out
        for name, child in layer.children().items():
            if isinstance(out.get(name), Mapping):
                out[name] = visit(child, path + (name,), out[name])
        ir = getattr(layer, "ir", None)
        if ir is None:
            return out
        for run in find_runs(ir, inference, path):
            members = [[out.pop(n, {}) for n in seg] for seg in run.names]
            out.setdefault(STACKED, {})[run.names[0][0]] = jax.tree.map(
                lambda *xs: np.stack([np.asarray(x) for x in xs]), *members)
        return out

    return visit(net, (), params)


def unstack_others(params: Mapping[str, Any], ir: GraphIR, inference: Any, path: tuple,
                   runs: list[Run]) -> Mapping[str, Any]:
    """A graph's ``params`` with the runs stacked ahead of time (:func:`stack_runs`) that
    are not among ``runs`` (those a lowering with taps keeps unrolled) back under their
    nodes' names, sliced out of the stacks."""
    stacked = params.get(STACKED)
    if not stacked:
        return params
    kept = {tuple(run.names) for run in runs}
    out = dict(params)
    out[STACKED] = dict(stacked)
    for run in find_runs(ir, inference, path):
        first = run.names[0][0]
        if tuple(run.names) in kept or first not in stacked:
            continue
        members = out[STACKED].pop(first)
        for j, seg in enumerate(run.names):
            for k, name in enumerate(seg):
                out[name] = jax.tree.map(lambda a, j=j: a[j], members[k])
    return out
