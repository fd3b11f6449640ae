"""Lowering a whole net to one pure JAX function over a single example.

``apply(params, inputs, *, lengths=None, rng=None, train=False) -> outputs``

* ``params``: the nested dict of arrays keyed by path (see :func:`params_of`);
* ``inputs``: a dict port name -> array for ONE example (use ``jax.vmap`` for a batch);
* ``lengths``: true lengths of varying symbols, when the inputs are padded; by default the
  sizes of the input arrays;
* ``rng``: a PRNG key for training-mode randomness (dropout).

The function is pure, so ``jax.jit``, ``jax.grad`` and ``jax.vmap`` all accept it.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from layers.attention import key_transform
from layers.base import Layer, shared_values
from layers.dot import DotLayer
from layers.lowering import LowerContext, lower_layer, register
from layers.scope import Path, show_path
from shapes import InputDataError, Known, ShapeMismatchError, UninitializedError, Varying

from .graph import NetGraph, PortRef


@register(NetGraph)
def _lower_graph(graph: NetGraph, ctx: LowerContext, inputs: dict) -> dict:
    values: dict[PortRef, jax.Array] = {PortRef(None, n): inputs[n] for n in graph.input_names}
    for name in graph.order:
        layer = graph.nodes[name]
        layer_inputs = {p: values[graph.edges[PortRef(name, p)]] for p in layer.input_names}
        with jax.named_scope(name):
            outputs = lower_layer(layer, ctx.child(name), layer_inputs)
        for port, value in outputs.items():
            values[PortRef(name, port)] = value
    return {n: values[graph.edges[PortRef(None, n)]] for n in graph.output_names}


def _ancestors(graph: NetGraph, ref: PortRef) -> set[str]:
    """The nodes whose outputs ``ref`` depends on (``ref``'s node included)."""
    found: set[str] = set()
    todo = [ref]
    while todo:
        current = todo.pop()
        if current.node is None or current.node in found:
            continue
        found.add(current.node)
        todo += [graph.edges[PortRef(current.node, p)] for p in graph.nodes[current.node].input_names]
    return found


def _depends_on_query(graph: NetGraph, nodes: set[str]) -> bool:
    return any(
        graph.edges[PortRef(n, p)] == PortRef(None, "Query")
        for n in nodes for p in graph.nodes[n].input_names
    )


@key_transform.register(NetGraph)
def _graph_key_transform(graph: NetGraph, ctx: LowerContext) -> Callable | None:
    """A scoring graph of the form ``Dot(Query, f(Input))`` factors as ``q . f(k)``."""
    final = graph.edges.get(PortRef(None, "Output"))
    if final is None or final.node is None or not isinstance(graph.nodes[final.node], DotLayer):
        return None
    first, second = (graph.edges[PortRef(final.node, p)] for p in ("Input1", "Input2"))
    query = PortRef(None, "Query")
    if query not in (first, second) or first == second:
        return None
    key_side = second if first == query else first
    nodes = _ancestors(graph, key_side)
    if _depends_on_query(graph, nodes):
        return None
    order = [n for n in graph.order if n in nodes]

    def transform(key: jax.Array) -> jax.Array:
        values: dict[PortRef, jax.Array] = {PortRef(None, "Input"): key}
        for name in order:
            layer = graph.nodes[name]
            ins = {p: values[graph.edges[PortRef(name, p)]] for p in layer.input_names}
            for port, value in lower_layer(layer, ctx.child(name), ins).items():
                values[PortRef(name, port)] = value
        return values[key_side]

    return transform


def _own_params(layer: Layer) -> dict[str, Any]:
    tree: dict[str, Any] = {n: a for n, a in layer.arrays.items() if n not in layer.shared}
    for name, child in layer.children().items():
        tree[name] = _own_params(child)
    return tree


def params_of(layer: Layer) -> dict[str, Any]:
    """The params pytree of ``layer``: its arrays and its sub-nets' params by name; shared
    arrays appear once, under ``"SharedArrays"``."""
    tree = _own_params(layer)
    shared = shared_values(layer)
    if shared:
        tree["SharedArrays"] = shared
    return tree


def expand_shared(net: Layer, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` with each shared array placed at every layer that uses it (the same
    value, so gradients from all users add up)."""
    shared = params.get("SharedArrays")
    if not shared:
        return params

    def fill(layer: Layer, tree: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(tree)
        for local, name in layer.shared.items():
            out[local] = shared[name]
        for child_name, child in layer.children().items():
            out[child_name] = fill(child, tree.get(child_name, {}))
        return out

    return fill(net, params)


def with_params(net: Layer, params: Mapping[str, Any]) -> Layer:
    """A copy of ``net`` holding the arrays of a params pytree (e.g. after training)."""
    shared = params.get("SharedArrays", {})

    def put(layer: Layer, tree: Mapping[str, Any]) -> Layer:
        arrays = {n: np.asarray(tree[n]) for n in layer.arrays if n not in layer.shared and n in tree}
        arrays.update({local: np.asarray(shared[name]) for local, name in layer.shared.items() if name in shared})
        children = {c: put(child, tree.get(c, {})) for c, child in layer.children().items()}
        if children:
            layer = layer.with_children(children)
        return layer.evolve(arrays=arrays) if arrays else layer

    return put(net, params)


def missing_arrays(layer: Layer, path: Path = ()) -> list[str]:
    """Paths of the arrays of ``layer`` that are not initialised."""
    found = [show_path(path + (n,)) for n, a in layer.arrays.items() if a is None]
    for name, child in layer.children().items():
        found += missing_arrays(child, path + (name,))
    return found


def require_initialized(net: Layer) -> None:
    missing = missing_arrays(net)
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise UninitializedError(
            f"the net has uninitialized arrays: {shown}.",
            hint="call NetInitialize(net) first, or give the arrays at construction.",
        )


def input_lengths(net: Layer, inputs: Mapping[str, jax.Array]) -> dict[str, int]:
    """Lengths of the varying symbols of the input ports, read off the array sizes (Python
    ints: an exact-size example needs no masks)."""
    lengths: dict[str, jax.Array] = {}
    for name in net.input_names:
        dims = net.inference.port((), name).dims or ()
        for axis, dim in enumerate(dims):
            if isinstance(dim, Varying) and dim.symbol not in lengths:
                lengths[dim.symbol] = int(jnp.shape(inputs[name])[axis])  # static: no masks
    return lengths


def run(
    net: Layer,
    params: Mapping[str, Any],
    inputs: Mapping[str, jax.Array],
    lengths: Mapping[str, jax.Array] | None,
    rng: jax.Array | None,
    train: bool,
    example: jax.Array | None = None,
    seeded: bool = True,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """Outputs and the lengths of every varying symbol, for one example (``example``: its
    row in a batch; ``seeded``: whether ``rng`` comes from a seed the caller chose - if
    not, layers with a seed of their own use it alone)."""
    lens = input_lengths(net, inputs)
    lens.update(lengths or {})
    ctx = LowerContext(net.inference, (), expand_shared(net, params), lens, rng, train, example,
                       seeded)
    return lower_layer(net, ctx, dict(inputs)), lens


def check_example(net: Layer, inputs: Any) -> dict[str, Any]:
    """``inputs`` as a dict, checked against the input ports (one example; static shapes, so
    this runs at trace time and costs nothing in a compiled function)."""
    if not isinstance(inputs, Mapping):
        if len(net.input_names) != 1:
            raise InputDataError(f"{net.describe()} has input ports {list(net.input_names)}; pass a dict.")
        inputs = {net.input_names[0]: inputs}
    missing = [n for n in net.input_names if n not in inputs]
    extra = [k for k in inputs if k not in net.input_names]
    if missing or extra:
        raise InputDataError(
            f"{net.describe()}: missing port(s) {missing}, unknown port(s) {extra}; the input "
            f"ports are {list(net.input_names)}."
        )
    for name in net.input_names:
        ptype = net.inference.port((), name)
        shape = tuple(jnp.shape(inputs[name]))
        if ptype.dims is None:
            continue
        expected = tuple(d.size if isinstance(d, Known) else None for d in ptype.dims)
        if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
            shown = tuple("Varying" if isinstance(d, Varying) else getattr(d, "size", "Automatic")
                          for d in ptype.dims)
            raise InputDataError(
                f'Data provided to port "{name}" has the wrong dimensions ({shape} instead of '
                f"{shown}); the lowered function takes ONE example (use jax.vmap for a batch)."
            )
    return dict(inputs)


def lower(net: Layer) -> Callable[..., dict[str, jax.Array]]:
    """The pure function of ``net`` (see the module docstring)."""

    def apply(params: Mapping[str, Any], inputs: Any, *, lengths: Mapping[str, Any] | None = None,
              rng: jax.Array | None = None, train: bool = False) -> dict[str, jax.Array]:
        return run(net, params, check_example(net, inputs), lengths, rng, train)[0]

    apply.__doc__ = f"The lowered function of {net.describe()}; see netgraph.compiler."
    return apply
