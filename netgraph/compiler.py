"""Lowering a whole net to one pure JAX function over a single example.

``apply(params, inputs, *, lengths=None, rng=None, train=False) -> outputs``

* ``params``: the nested dict of arrays keyed by path (see :func:`params_of`);
* ``inputs``: a dict port name -> array for ONE example (use ``jax.vmap`` for a batch);
* ``lengths``: true lengths when the inputs are padded, keyed by input port name
  (``{"Input": 5}``; a port with several varying axes takes one length per axis); by default
  the sizes of the input arrays;
* ``rng``: a PRNG key for training-mode randomness (dropout);
* ``return_state``: also return the new values of non-trainable arrays (BatchNormalization's
  moving statistics) as a params-shaped dict - ``(outputs, state)``; in evaluation mode it is
  empty.

The function is pure, so ``jax.jit``, ``jax.grad`` and ``jax.vmap`` all accept it.

``lower(net, precision=...)`` picks the working precision (Wolfram's WorkingPrecision):
"Real32", "Real16" (float16), "BFloat16" or "Real64" - params and real inputs are cast to
that type and everything is computed in it (softmax statistics of 16-bit data in float32);
by default nothing is cast: the function computes in the types of the arrays it is given. "Real64" needs JAX's 64-bit types: call the function inside ``with
jax.enable_x64():`` (``net(x, precision="Real64")`` and ``NetTrain`` do that themselves).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .layers.attention import key_transform, pair_score
from .layers.catenate import CatenateLayer
from .layers.base import Layer, shared_values
from .layers.dot import DotLayer
from .layers.linear import LinearLayer
from .layers.lowering import LowerContext, lower_layer
from .layers.scope import Path, show_path
from .layers.tree import iter_layers, map_layers
from .shapes import Known, Real, Varying
from .errors import InputDataError, ShapeMismatchError, SpecificationError, UninitializedError

from .graph import NetGraph
from .ir import PortRef, walk
from .scan_blocks import STACKED, RunLowering, find_runs, unstack_others


PRECISIONS = {"Real32": jnp.float32, "Real16": jnp.float16, "BFloat16": jnp.bfloat16, "Real64": jnp.float64}
"""The working precisions and their element types."""


def precision_dtype(precision: Any) -> np.dtype:
    """The element type of a working precision ("Real32", "Real16", "BFloat16", "Real64")."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise SpecificationError(f"precision must be one of {list(PRECISIONS)}; found {precision!r}.",
                                 hint='"Real32" (float32) is the default; "Real16" is float16.')
    return np.dtype(PRECISIONS[precision])


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """JAX's 64-bit types switched on for "Real64", for this thread and this block only."""
    if precision == "Real64":
        with jax.enable_x64(True):
            yield
    else:
        yield


def cast_floats(tree: Any, dtype: Any) -> Any:
    """``tree`` with every floating-point leaf cast to ``dtype`` (integers untouched)."""
    def cast(a: Any) -> Any:
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) and a.dtype != dtype else a

    return jax.tree.map(cast, tree)


def require_x64(precision: str) -> None:
    if precision == "Real64" and not jax.config.jax_enable_x64:
        raise SpecificationError(
            'precision="Real64" needs JAX\'s 64-bit types, which are off.',
            hint="call the lowered function inside `with jax.enable_x64():` (or set "
            'jax.config.update("jax_enable_x64", True) at start-up).')


@lower_layer.register(NetGraph)
def _lower_graph(graph: NetGraph, ctx: LowerContext, inputs: dict) -> dict:
    runs = find_runs(graph.ir, ctx.inference, ctx.path, ctx.taps) if ctx.scan_blocks else []
    if STACKED in ctx.params:  # params stacked ahead for runs this lowering leaves unrolled
        ctx = ctx.replace(params=unstack_others(ctx.params, graph.ir, ctx.inference, ctx.path, runs))
    if runs:  # repeated blocks: one lax.scan each (see netgraph.scan_blocks)
        return walk(graph.ir, RunLowering(ctx, graph.ir, runs, _lower_node).visit, inputs)
    return walk(graph.ir, lambda name, layer, fed: _lower_node(ctx, name, layer, fed), inputs)


def _lower_node(ctx: LowerContext, name: str, layer: Layer, fed: dict,
                lowering: Callable = lower_layer) -> dict:
    child = ctx.child(name)
    with jax.named_scope(name):
        outputs = lowering(layer, child, fed)
    if ctx.taps is not None and child.path in ctx.taps:
        ctx.taps[child.path] = outputs  # a requested inner output (see LowerContext.taps)
    return outputs


@key_transform.register(NetGraph)
def _graph_key_transform(graph: NetGraph, ctx: LowerContext) -> Callable | None:
    """A scoring graph of the form ``Dot(Query, f(Input))`` factors as ``q . f(k)``: the
    nodes upstream of the key side are walked alone, on the key."""
    ir = graph.ir
    final = ir.edges.get(PortRef(None, "Output"))
    if final is None or final.node is None or not isinstance(ir.nodes[final.node], DotLayer):
        return None
    first, second = (ir.source(final.node, p) for p in ("Input1", "Input2"))
    query = PortRef(None, "Query")
    if query not in (first, second) or first == second:
        return None
    key_side = second if first == query else first
    nodes = ir.upstream([key_side.node]) if key_side.node is not None else set()
    if any(src == query for n in nodes for src in ir.feeds(n).values()):
        return None

    def transform(key: jax.Array) -> jax.Array:
        if key_side.node is None:  # Dot(Query, Input): the key itself
            return key
        values = walk(ir, lambda name, layer, fed: _lower_node(ctx, name, layer, fed),
                      {"Input": key}, nodes=nodes, outputs=[key_side])
        return values[key_side]

    return transform


@pair_score.register(NetGraph)
def _graph_pair_score(graph: NetGraph, ctx: LowerContext) -> Callable | None:
    """A scoring graph with a LinearLayer reading a CatenateLayer of vectors (Bahdanau's
    ``w . tanh(W [k; q] + b)``, the MLP scorer) applies the Linear to each catenated part on
    its own: ``W [a; b] = W_a a + W_b b``. Under the pair ``vmap`` a key-side part is then
    multiplied once per key and a query-side part once per query, and only the sum is formed
    per (query, key) pair - the catenated pair vector is never built."""
    split = _linear_of_catenate(graph.ir, ctx)
    if not split or (ctx.scan_blocks and find_runs(graph.ir, ctx.inference, ctx.path, ctx.taps)):
        return None
    consumers = set(split.values())

    def visit(name: str, layer: Layer, fed: dict) -> dict:
        if name in split and all(jnp.ndim(x) == 1 for x in fed.values()):
            return {"Output": _Parts(tuple(fed[p] for p in layer.input_names))}
        if name in consumers and isinstance(fed["Input"], _Parts):
            return _lower_node(ctx, name, layer, fed, lowering=_split_linear)
        return _lower_node(ctx, name, layer, fed)

    return lambda key, query: walk(graph.ir, visit, {"Input": key, "Query": query})["Output"]


class _Parts(tuple):
    """The parts of a catenated vector, not yet catenated (see :func:`_graph_pair_score`)."""


def _linear_of_catenate(ir: Any, ctx: LowerContext) -> dict[str, str]:
    """CatenateLayer node -> the LinearLayer node that is the only reader of its output
    (and the output is neither a graph output nor requested by a tap)."""
    readers: dict[PortRef, list[PortRef]] = {}
    for dst, src in ir.edges.items():
        readers.setdefault(src, []).append(dst)
    found = {}
    for name, layer in ir.nodes.items():
        read = readers.get(PortRef(name, "Output"), [])
        if (isinstance(layer, CatenateLayer) and len(read) == 1 and read[0].node is not None
                and read[0].port == "Input" and isinstance(ir.nodes[read[0].node], LinearLayer)
                and not (ctx.taps and ctx.path + (name,) in ctx.taps)):
            found[name] = read[0].node
    return found


def _split_linear(layer: LinearLayer, ctx: LowerContext, inputs: dict) -> dict:
    """LinearLayer on the parts of a catenated vector: the sum of each part times its
    columns of the weights (and the biases)."""
    w, start, y = ctx.params["Weights"], 0, None
    for part in inputs["Input"]:
        columns = w[:, start:start + part.shape[0]]
        start += part.shape[0]
        term = jnp.sum(part * columns[0], keepdims=True) if w.shape[0] == 1 else part @ columns.T
        y = term if y is None else y + term
    if "Biases" in ctx.params:
        y = y + ctx.params["Biases"].reshape(-1)
    return {"Output": y.reshape(ctx.shape("Output"))}


def _subtree(tree: dict[str, Any], path: Path) -> dict[str, Any]:
    for name in path:
        tree = tree.setdefault(name, {})
    return tree


def params_of(layer: Layer) -> dict[str, Any]:
    """The params pytree of ``layer``: its arrays and its sub-nets' params by name; shared
    arrays appear once, under ``"SharedArrays"``."""
    tree: dict[str, Any] = {}
    for path, sub in iter_layers(layer, include_root=True):
        _subtree(tree, path).update({n: a for n, a in sub.arrays.items() if n not in sub.shared})
    shared = shared_values(layer)
    if shared:
        tree["SharedArrays"] = shared
    return tree


def _lookup(tree: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    for name in path:
        tree = tree.get(name, {})
    return tree


def expand_shared(net: Layer, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` with each shared array placed at every layer that uses it (the same
    value, so gradients from all users add up)."""
    shared = params.get("SharedArrays")
    if not shared:
        return params
    out: dict[str, Any] = {}
    for path, layer in iter_layers(net, include_root=True):
        own = {k: v for k, v in _lookup(params, path).items() if not isinstance(v, Mapping)}
        own.update({local: shared[name] for local, name in layer.shared.items()})
        _subtree(out, path).update(own)
    out["SharedArrays"] = shared
    return out


def params_shapes(net: Layer) -> dict[str, Any]:
    """The structure :func:`check_params` compares against: :func:`params_of` ``net`` with
    each array replaced by its shape (None where not initialised), and the sub-nets without
    any initialised array left out (they may be left out of a params dict). ``net`` is
    immutable, so :func:`lower` computes this once and checks every call against it."""
    def shapes(tree: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in tree.items():
            if isinstance(value, Mapping):
                if jax.tree_util.tree_leaves(value):
                    out[name] = shapes(value)
            else:
                out[name] = None if value is None else tuple(np.shape(value))
        return out

    return shapes(params_of(net))


def check_params(expected: Mapping[str, Any], params: Any, where: str) -> None:
    """``params`` has every array of ``expected`` (a net's :func:`params_shapes`), none of
    them None (uninitialised), each of the solved shape; else an error naming the first array
    that is missing or wrong (checked on shapes alone: free under ``jax.jit``)."""
    if not isinstance(params, Mapping):
        raise InputDataError(f"{where}: params must be a nested dict as ng.params_of(net) gives; "
                             f"found {type(params).__name__}.")

    def visit(want: Mapping[str, Any], got: Any, path: Path) -> None:
        if not isinstance(got, Mapping):
            raise InputDataError(f"{where}: params at {show_path(path) or 'the top'} must be a dict; "
                                 f"found {type(got).__name__}.")
        for name, shape in want.items():
            if name not in got:
                if STACKED in got:
                    continue  # stacked ahead of time (scan_blocks.stack_runs): the scan reads it
                raise InputDataError(f'{where}: params have no array or sub-net "{show_path(path + (name,))}".',
                                     hint="start from ng.params_of(net) and keep its structure.")
            if isinstance(shape, Mapping):
                visit(shape, got[name], path + (name,))
                continue
            array = got[name]
            if array is None:
                raise UninitializedError(f"{where}: the array {show_path(path + (name,))} is not "
                                         "initialised (None).", hint="call NetInitialize(net) first.")
            if shape is not None and tuple(jnp.shape(array)) != shape:
                raise InputDataError(f"{where}: the array {show_path(path + (name,))} has shape "
                                     f"{tuple(jnp.shape(array))}; the net's has {shape}.")

    visit(expected, params, ())


def with_params(net: Layer, params: Mapping[str, Any]) -> Layer:
    """A copy of ``net`` holding the arrays of a params pytree (e.g. after training)."""
    check_params(params_shapes(net), params, "with_params")
    shared = params.get("SharedArrays", {})

    def put(path: Path, layer: Layer) -> Layer:
        tree = _lookup(params, path)
        arrays = {n: np.asarray(tree[n]) for n in layer.arrays if n not in layer.shared and n in tree}
        arrays.update({local: np.asarray(shared[name]) for local, name in layer.shared.items() if name in shared})
        return layer.evolve(arrays=arrays) if arrays else layer

    return map_layers(put, net)


def missing_arrays(layer: Layer) -> list[str]:
    """Paths of the arrays of ``layer`` that are not initialised."""
    return [show_path(path + (n,)) for path, sub in iter_layers(layer, include_root=True)
            for n, a in sub.arrays.items() if a is None]


def require_initialized(net: Layer) -> None:
    missing = missing_arrays(net)
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise UninitializedError(
            f"the net has uninitialized arrays: {shown}.",
            hint="call NetInitialize(net) first, or give the arrays at construction.",
        )


def input_lengths(net: Layer, inputs: Mapping[str, jax.Array],
                  given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Lengths of the varying symbols of the input ports: those ``given``, the others read
    off the array sizes (Python ints: an exact-size example needs no masks)."""
    lengths: dict[str, Any] = dict(given or {})
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
    **context: Any,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """Outputs and the lengths of every varying symbol, for one example. ``context``: the
    rest of :class:`LowerContext` - ``example`` (its row in a batch), ``seeded`` (whether
    ``rng`` comes from a seed the caller chose; if not, layers with a seed of their own use
    it alone), ``batch_axis`` (the vmap axis name of the batch, for batch statistics),
    ``row_valid`` (whether this row is a real example), ``state`` (a dict that collects new
    layer state by array path, in training mode), ``taps`` (a dict whose keys are paths of
    graph nodes, filled with those nodes' outputs ``{port: array}``)."""
    lens = input_lengths(net, inputs, lengths)
    ctx = LowerContext(net.inference, (), expand_shared(net, params), lens, rng, train, **context)
    return lower_layer(net, ctx, dict(inputs)), lens


def state_tree(collected: Mapping[Path, jax.Array]) -> dict[str, Any]:
    """Collected layer state (array path -> value) as a params-shaped nested dict."""
    tree: dict[str, Any] = {}
    for path, value in collected.items():
        _subtree(tree, path[:-1])[path[-1]] = value
    return tree


def trainable_mask(net: Layer) -> dict[str, Any]:
    """A params-shaped tree of bools: False for non-trainable arrays (moving statistics),
    which never receive gradients (shared arrays are trainable)."""
    tree: dict[str, Any] = {}
    for path, layer in iter_layers(net, include_root=True):
        specs = layer.array_specs()
        _subtree(tree, path).update({n: specs[n].trainable for n in layer.arrays
                                     if n not in layer.shared and n in specs})
    shared = shared_values(net)
    if shared:
        tree["SharedArrays"] = {name: True for name in shared}
    return tree


def port_mismatch(given: Mapping[str, Any], names: Sequence[str],
                  missing: str = "missing port(s)") -> str | None:
    """"missing port(s) [...] and unknown port(s) [...]" for data keyed by port, or None."""
    parts = []
    absent = [n for n in names if n not in given]
    extra = [k for k in given if k not in names]
    if absent:
        parts.append(f"{missing} {absent}")
    if extra:
        parts.append(f"unknown port(s) {extra}")
    return " and ".join(parts) or None


def port_dict(net: Layer, data: Any) -> dict[str, Any]:
    """Input data as a dict port -> value (one value alone for a one-input net), with
    missing and unknown ports named."""
    names = net.input_names
    if isinstance(data, Mapping):
        given = {str(k): v for k, v in data.items()}
        mismatch = port_mismatch(given, names)
        if mismatch:
            raise InputDataError(
                f"{net.describe()}: {mismatch}; the input ports are {list(names)}.",
                hint="pass a dict with one array (or list of examples) per input port: "
                + "{" + ", ".join(f"{n!r}: ..." for n in names) + "}.")
        return given
    if len(names) != 1:
        if not names and data is None:
            return {}
        raise InputDataError(f"{net.describe()} has input ports {list(names)}; pass a dict of arrays.")
    return {names[0]: data}


def check_example(net: Layer, inputs: Any) -> dict[str, Any]:
    """``inputs`` as a dict, checked against the input ports (one example; static shapes, so
    this runs at trace time and costs nothing in a compiled function)."""
    inputs = port_dict(net, inputs)
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


def port_lengths(net: Layer, lengths: Mapping[Any, Any] | None) -> dict[str, Any]:
    """``lengths`` keyed by input port name (a port with one varying axis: its length; with
    several: a sequence, one per varying axis in order) as lengths of varying symbols. The
    symbols themselves (``net.port_types()[port].dims[i].symbol``) are accepted too; any
    other key is an :class:`InputDataError`."""
    if not lengths:
        return {}
    symbols: dict[str, list[str]] = {}
    for name in net.input_names:
        dims = net.inference.port((), name).dims or ()
        symbols[name] = [d.symbol for d in dims if isinstance(d, Varying)]
    known = {sym for syms in symbols.values() for sym in syms}
    out: dict[str, Any] = {}
    for key, value in lengths.items():
        if key in symbols and symbols[key]:
            syms = symbols[key]
            values = [value] if len(syms) == 1 else list(value) if isinstance(value, (list, tuple)) else None
            if values is None or len(values) != len(syms):
                raise InputDataError(
                    f'lengths: port "{key}" has {len(syms)} varying axes; found {value!r}.',
                    hint=f"give one length per varying axis, e.g. lengths={{{key!r}: "
                    f"{tuple(range(2, 2 + len(syms)))}}}.",
                )
            out.update(zip(syms, values))
        elif key in known:
            out[key] = value
        else:
            varying = [n for n, syms in symbols.items() if syms]
            raise InputDataError(
                f"lengths: {key!r} is not an input port with a varying dimension of "
                f"{net.describe()}.",
                hint=f"key lengths by input port name: {varying or 'this net has none'}.",
            )
    return out


def lower(net: Layer, *, batch_axis: str | None = None, scan_blocks: bool = True,
          precision: str | None = None) -> Callable[..., Any]:
    """The pure function of ``net`` (see the module docstring). ``batch_axis``: the
    ``axis_name`` you give ``jax.vmap`` over a batch, so that batch-statistics layers
    (BatchNormalizationLayer) normalise over the batch in training mode; without it each
    example is its own batch. ``scan_blocks``: lower runs of structurally identical
    consecutive blocks as one ``lax.scan`` (compile time independent of depth; same
    results, see :mod:`netgraph.scan_blocks`); False lowers every node unrolled.
    ``precision``: the working precision (see the module docstring); None (the default)
    computes in the types of the arrays given."""
    dtype = None if precision is None else precision_dtype(precision)
    real = {n for n in net.input_names if isinstance(net.inference.port((), n).element, Real)}
    expected = params_shapes(net)

    def apply(params: Mapping[str, Any], inputs: Any, *, lengths: Mapping[str, Any] | None = None,
              rng: jax.Array | None = None, train: bool = False, return_state: bool = False) -> Any:
        collected: dict[Path, jax.Array] | None = {} if return_state else None
        check_params(expected, params, "the lowered function")
        inputs = check_example(net, inputs)
        if dtype is not None:
            require_x64(precision)
            inputs = {n: jnp.asarray(v).astype(dtype) if n in real else v for n, v in inputs.items()}
            params = cast_floats(params, dtype)
        outputs = run(net, params, inputs, port_lengths(net, lengths), rng,
                      train, batch_axis=batch_axis, state=collected, scan_blocks=scan_blocks)[0]
        return (outputs, state_tree(collected)) if return_state else outputs

    apply.__doc__ = f"The lowered function of {net.describe()}; see netgraph.compiler."
    return apply
