"""Evaluating a net on data: ``net(inputs, ...)``.

Inputs are a dict port -> data, or the data alone for a one-input net. Per port, data is

* an array with the port's rank: **one example** (one result comes back);
* an array with one more leading axis: **a batch** (a batch of results comes back);
* a **list of examples** that may differ in every varying dimension (a list of results comes
  back, each cut to its example's own lengths) - Wolfram's threading.

Data is checked against the inferred port types before anything is traced (missing or extra
ports, ranks, fixed sizes, numeric and element types, index ranges, equal lengths where ports
share a varying dimension), and a mistake names the port and, in a list, the example index.
The compiled function (``jit(vmap(apply))`` with per-example lengths) is cached on the net:
see :func:`compile_stats`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .layers.base import Layer
from .layers.tree import iter_layers
from .layers.lowering import BATCH_AXIS
from .shapes import Auto, Automatic, Index, Known, Real, Varying
from .errors import InputDataError, NetGraphError
from .shapes.porttype import PortType

from .batching import DEFAULT_BATCH_SIZE, Example, Progress, pad_batch, plan, resolve_devices, unpad
from .initialize import check_seed
from .compiler import cast_floats, lower, params_of, port_dict, precision_dtype, precision_scope, require_initialized, run
from .distributed import put, to_host
from .ports import coders_of, evaluate_coded
from .scan_blocks import stack_runs


# ------------------------------------------------------------------ the evaluation cache
@dataclass
class EvaluationCache:
    """What evaluating one net keeps between calls (its one owner; the net itself stays an
    immutable value): compiled functions by mode, params placed per device set, nets fitted
    to data shapes, padded shapes already compiled, and the counters of
    :func:`compile_stats` (shared with the fitted nets)."""

    stats: dict[str, int] = field(default_factory=lambda: {"compilations": 0, "calls": 0})
    compiled: dict[tuple, Any] = field(default_factory=dict)
    placed_params: dict[tuple, Any] = field(default_factory=dict)
    fitted: dict[tuple, Layer] = field(default_factory=dict)
    padded_shapes: set = field(default_factory=set)
    initialized: bool = False
    fast: dict[tuple, Any] = field(default_factory=dict)  # input signature -> prepared call
    uncoded: bool = False  # the net has no coders: evaluate() may take a prepared call at once
    produced: frozenset | None = None  # see produced_input_lengths


def evaluation_cache(net: Layer) -> EvaluationCache:
    """The evaluation cache of ``net`` (made on first use; dropped with the net)."""
    cache = net.__dict__.get("_evaluation")
    if cache is None:
        cache = EvaluationCache()
        object.__setattr__(net, "_evaluation", cache)
    return cache


# ------------------------------------------------------------------ checking data
def as_numeric(where: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as err:
        raise InputDataError(
            f"{where} is not a rectangular array ({err}).",
            hint="examples of different lengths go in a list, one array per example.",
        ) from err
    if arr.dtype == object:
        raise InputDataError(
            f"{where} is an object array (dtype object), not a numeric array: a ragged array of "
            "examples of different lengths?",
            hint="pass a list of arrays, one per example: net([x1, x2, ...]).",
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputDataError(f"Input to network is not a numeric array: {where} got dtype {arr.dtype}.")
    return arr


def check_float_range(where: str, arr: np.ndarray, real: Any = np.float32) -> None:
    """Wider floats must fit the working precision's type ``real``: no silent inf."""
    limit = float(jnp.finfo(real).max)
    if arr.dtype.itemsize > np.dtype(real).itemsize and arr.size:
        finite = np.abs(arr[np.isfinite(arr)])
        if finite.size and finite.max() > limit:
            raise InputDataError(
                f"{where} holds {arr.dtype} values beyond the {np.dtype(real).name} range (largest "
                f"magnitude {finite.max():.4g} > {limit:.4g}), which would become inf.",
                hint="rescale the data, or evaluate in a wider precision (precision=\"Real64\").",
            )


def is_mask_port(name: str, ptype: PortType) -> bool:
    """A mask port: named ``...Mask`` (KeyMask, QueryMask, ValueMask, AttentionMask) and
    holding 0/1 integers. Its data may also be booleans or floats (non-zero: visible, as
    Keras reads masks), and a batch's ports may share one mask (given without the batch axis)."""
    element = ptype.element
    return (name.endswith("Mask") and isinstance(element, Index) and isinstance(element.n, Known)
            and element.n.size == 2)


def check_element(where: str, ptype: PortType, arr: np.ndarray, real: Any = np.float32,
                  mask: bool = False) -> np.ndarray:
    """``arr`` checked against the element type of a port, as the array the net computes
    on: ``real`` (the working precision's type) for real ports, int32 for integer ones;
    ``mask``: a mask port's data (booleans, 0/1 integers, or floats: non-zero is visible)."""
    element = ptype.element
    if mask and np.issubdtype(arr.dtype, np.floating):
        return (arr != 0).astype(np.int32)  # Keras: a non-zero mask entry is visible
    if mask and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise InputDataError(f"{where} is a mask: booleans, 0/1 integers or floats (non-zero = "
                             f"visible); found {arr.dtype} data.")
    if isinstance(element, Real):
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise InputDataError(
                f"{where} should be real numbers; found complex data ({arr.dtype}), whose "
                "imaginary part would be lost.",
                hint="pass x.real (or split real and imaginary parts into two ports).",
            )
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputDataError(
                f"{where} should be real numbers; found {arr.dtype} data.",
                hint='convert with x.astype(np.float32); integer ports are declared "Integer".',
            )
        check_float_range(where, arr, real)
        return arr.astype(real, copy=False)
    if arr.dtype == bool:
        arr = arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputDataError(
            f"{where} should be integers ({element}); found {arr.dtype} data.",
            hint="indices (token ids, classes) are integers: convert with x.astype(np.int32).",
        )
    if isinstance(element, Index) and isinstance(element.n, Known) and arr.size:
        n = element.n.size
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= n:
            bad = np.argwhere((arr < 0) | (arr >= n))
            first = tuple(int(i) for i in bad[0])
            at = f" at index {first}" if first else ""
            more = f" and {len(bad) - 1} more out of range" if len(bad) > 1 else ""
            raise InputDataError(
                f"{where} should be integers in [0, {n}); found {int(arr[first])}{at}{more}"
                + (f" (values from {low} to {high})." if arr.size > 1 else "."),
                hint=f"the valid values are 0 .. {n - 1}: indices count from 0 (subtract 1 from "
                "1-based indices).",
            )
    return arr.astype(np.int32, copy=False)


def check_fixed_sizes(where: str, ptype: PortType, shape: tuple[int, ...]) -> None:
    expected = tuple(d.size if isinstance(d, Known) else None for d in ptype.dims)
    if any(e is not None and e != s for e, s in zip(expected, shape)):
        shown = tuple("Varying" if e is None else e for e in expected)
        raise InputDataError(f"{where} has the wrong dimensions ({shape} instead of {shown}).")


def example_lengths(ports: Mapping[str, PortType], arrays: Mapping[str, np.ndarray], offset: int,
             prefix: str) -> dict[str, int]:
    """Lengths of the varying symbols, checked equal where ports share one."""
    seen: dict[str, tuple[str, int]] = {}
    for name, arr in arrays.items():
        for axis, dim in enumerate(ports[name].dims):
            if isinstance(dim, Varying):
                size = arr.shape[axis + offset]
                other = seen.setdefault(dim.symbol, (name, size))
                if other[1] != size:
                    raise InputDataError(
                        f'{prefix}ports "{other[0]}" and "{name}" must have the same length; '
                        f"found {other[1]} and {size}."
                    )
    return {s: n for s, (_, n) in seen.items()}


def needs_data_shapes(net: Layer) -> bool:
    for ptype in (net.inference.port((), n) for n in net.input_names):
        if ptype.dims is None or any(isinstance(d, Auto) for d in ptype.dims):
            return True
    return False


def fit_to_data(net: Layer, first: dict[str, np.ndarray], varying: set[str] = frozenset()) -> Layer:
    """``net`` with under-specified input ports declared from one example of the data (the
    first axis "Varying" for the ``varying`` ports, whose examples differ in length)."""
    specs = {}
    for name in net.input_names:
        ptype = net.inference.port((), name)
        shape = first[name].shape
        element = ptype.to_user()[len(ptype.dims):] if ptype.dims is not None else ()
        if ptype.dims is None:
            declared = net.port_specs.get(name)
            dims = tuple("Varying" if i == 0 and name in varying else n for i, n in enumerate(shape))
            specs[name] = dims + ((declared.element,) if declared and declared.element else ())
        elif any(isinstance(d, Auto) for d in ptype.dims):
            shape = shape[len(shape) - len(ptype.dims):] if ptype.dims else ()
            specs[name] = tuple(  # a varying first axis stays varying (only it can be declared so;
                # a later one stays as the net says): only unknown sizes are fitted
                ("Varying" if i == 0 and name in varying else s) if isinstance(d, Auto)
                else (d.size if isinstance(d, Known) else ("Varying" if i == 0 else Automatic))
                for i, (d, s) in enumerate(zip(ptype.dims, shape))
            ) + tuple(element)
    key = tuple(sorted(specs.items()))
    cache = evaluation_cache(net)
    if key not in cache.fitted:
        fitted = net.evolve(port_specs=specs)
        evaluation_cache(fitted).stats = cache.stats
        cache.fitted[key] = fitted
    return cache.fitted[key]


def _fit_list(net: Layer, given: dict[str, list]) -> Layer:
    """``net`` fitted to a list of examples: an unknown first axis is a varying length (as
    if declared "Varying", so that any list the "Varying" net takes is taken the same way),
    or, where the net cannot take a varying length there, the examples' common length."""
    first = {n: v[0] for n, v in given.items()}
    differ = {n for n, v in given.items() if len({np.shape(x)[:1] for x in v}) > 1}
    unknown = set()
    for name in net.input_names:
        dims = net.inference.port((), name).dims
        if dims is None or (dims and isinstance(dims[0], Auto)):
            unknown.add(name)
    if unknown - differ:
        try:
            fitted = fit_to_data(net, first, unknown | differ)
            fitted.inference
            return fitted
        except NetGraphError:
            pass  # e.g. a LinearLayer needs the fixed size: take the one of the data
    return fit_to_data(net, first, differ)


def _split(name: str, value: Any, rank: int | None) -> tuple[str, Any]:
    """("list", [arrays]) for a list of examples, else ("array", array)."""
    if isinstance(value, (list, tuple)):
        items = [as_numeric(f'Data provided to port "{name}", element #{i}', v) for i, v in enumerate(value)]
        if not items:
            return "list", []
        shapes = {a.shape for a in items}
        if rank is None and (len(shapes) > 1 or items[0].ndim > 0):
            return ("list", items) if len(shapes) > 1 else ("array", np.stack(items))
        if rank is not None and all(a.ndim == rank for a in items):
            return "list", items
        if rank is not None and len(shapes) == 1 and items[0].ndim in (rank - 1, rank):
            return "array", np.stack(items)  # one example (or a batch) written as nested lists
        want = items[0].ndim if rank is None else rank
        ranks = {a.ndim for a in items}
        if len(ranks) > 1 or rank is not None and items[0].ndim != rank + 1:
            bad = next(i for i, a in enumerate(items) if a.ndim != want)
            raise InputDataError(
                f'Data provided to port "{name}" should be a list of rank-{want} arrays, but '
                f"element #{bad} has shape {items[bad].shape}."
            )
    return "array", as_numeric(f'Data provided to port "{name}"', value)


# ------------------------------------------------------------------ compiled function
def _compiled(net: Layer, train: bool, seeded: bool, taps: tuple = ()) -> Any:
    """``taps``: inner ports ``(node path, port)`` returned instead of the outputs, as
    ``"tap0"``, ``"tap1"``, ... (see :mod:`netgraph.ports`)."""
    key = (train, seeded, taps)
    cache = evaluation_cache(net)
    if key not in cache.compiled:
        stats = cache.stats
        symbols = _output_axes(net, taps)

        def batch_apply(params: Any, inputs: Any, lengths: Any, *rows: Any) -> Any:
            """``rows``, in training (and for a net without inputs): each row's rng, example
            number and whether it is a real example (evaluation uses none of them: fewer
            arguments to pass)."""
            stats["compilations"] += 1  # runs once per trace, i.e. per compilation

            def one(x: Any, n: Any, *row: Any) -> Any:
                r, example, real = row if train else (None, None, None)
                tapped = {path: None for path, _ in taps if path} if taps else None
                outputs, lens = run(net, params, x, n, r, train, example=example,
                                    seeded=seeded, batch_axis=BATCH_AXIS, row_valid=real, taps=tapped)
                if taps:
                    outputs = {f"tap{i}": tapped[path][port] if path else {**x, **outputs}[port]
                               for i, (path, port) in enumerate(taps)}
                needed = {s for axes in symbols.values() for _, s in axes}
                return outputs, {s: lens[s] for s in needed}

            return jax.vmap(one, axis_name=BATCH_AXIS)(inputs, lengths, *rows)

        cache.compiled[key] = jax.jit(batch_apply)
    return cache.compiled[key]


def _varying_axes(types: Mapping[str, PortType]) -> dict[str, list[tuple[int, str]]]:
    return {
        name: [(axis, d.symbol) for axis, d in enumerate(t.dims or ()) if isinstance(d, Varying)]
        for name, t in types.items()
    }


def _output_axes(net: Layer, taps: tuple = ()) -> dict[str, list[tuple[int, str]]]:
    if taps:
        return _varying_axes({f"tap{i}": net.inference.port(*tap) for i, tap in enumerate(taps)})
    return _varying_axes({n: net.inference.port((), n) for n in net.output_names})


def _placed_params(net: Layer, devices: Sequence[Any], precision: str = "Real32") -> Any:
    key = (tuple(devices), precision)
    cache = evaluation_cache(net).placed_params
    if key not in cache:
        params = stack_runs(net, params_of(net))  # repeated blocks: one array per run
        params = cast_floats(params, precision_dtype(precision))
        if len(devices) == 1:
            placed = jax.device_put(params, devices[0])
        else:
            mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
            placed = put(params, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
        cache[key] = placed
    return cache[key]


def _place(tree: Any, devices: Sequence[Any]) -> Any:
    if len(devices) == 1:
        return jax.device_put(tree, devices[0])
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    # every process holds the same data; each fills its own devices (netgraph.distributed)
    return put(tree, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch")))


def _pad_rows(tree: dict, extra: int) -> dict:
    return {k: np.concatenate([v, np.zeros((extra, *v.shape[1:]), v.dtype)]) for k, v in tree.items()}


def _call(net: Layer, inputs: dict, lengths: dict, index: np.ndarray, train: bool,
          seed: int | None, devices: Sequence[Any], batch_number: int = 0,
          real_rows: int | None = None, taps: tuple = (), precision: str = "Real32") -> tuple[dict, dict]:
    """Run one padded batch; ``index``: each row's example number (seeds layer randomness),
    ``batch_number``: distinguishes the batches of one call for a call seed, ``real_rows``:
    how many leading rows are real examples (the rest is padding; default all)."""
    rows = len(index)
    extra = -rows % len(devices)  # rows divide evenly across devices
    if extra:
        inputs, lengths = _pad_rows(inputs, extra), _pad_rows(lengths, extra)
        index = np.concatenate([index, np.zeros(extra, np.int32)])
    seeded = train and seed is not None
    per_row: tuple = ()  # what training mode needs of each row (see _compiled); a net
    if train or not inputs:  # without inputs takes them too, for their batch axis
        if seeded:
            rngs = jax.random.split(jax.random.fold_in(jax.random.key(seed), batch_number), rows + extra)
        elif train:  # layers with their own seed repeat; the others get fresh randomness
            rngs = jax.random.split(jax.random.key(int(np.random.SeedSequence().entropy % 2**31)), rows + extra)
        else:
            rngs = np.zeros((rows + extra,), np.uint32)  # unused in evaluation mode
        valid = np.arange(rows + extra) < (rows if real_rows is None else real_rows)  # padding
        per_row = (rngs, index.astype(np.int32), valid)  # rows never enter batch statistics
    fn = _compiled(net, train, seeded, taps)
    evaluation_cache(net).stats["calls"] += 1
    placed = _place((inputs, lengths, *per_row), devices)
    outputs, out_lengths = fn(_placed_params(net, devices, precision), *placed)
    return ({k: to_host(v)[:rows] for k, v in outputs.items()},
            {k: to_host(v)[:rows] for k, v in out_lengths.items()})


# ------------------------------------------------------------------------ entry
EVALUATION_OPTIONS = ("batch_size", "train", "seed", "target_device", "progress", "precision")


def evaluate(net: Layer, data: Any = None, port: Any = None, **options: Any) -> Any:
    """Evaluate ``net`` on one example, a batch, or a list of examples (see the module
    docstring). ``port``: one output port by name, a property of the net's decoder
    ("Probabilities", ("TopDecisions", k), ...), or a NetPort (a list of NetPorts) to read
    inner ports (see :mod:`netgraph.ports`). Options: ``batch_size``: examples per compiled
    call for lists (default 32); ``train``: training mode (dropout on); ``seed``: its
    randomness; ``target_device``: "CPU", "GPU", (kind, n | "All") or a list of JAX devices -
    with several, each batch is sharded across them; ``progress``: a progress bar on stderr
    (default: on for long lists); ``precision``: "Real32" (default), "Real16", "BFloat16" or
    "Real64" - arrays, real inputs, computation and results in that type (Real64 switches
    JAX's 64-bit types on for this call only). Data for a port with a NetEncoder is encoded
    first, and an output with a NetDecoder is decoded (see :mod:`netgraph.coders`). Any other
    keyword is an :class:`InputDataError` (never silently ignored).
    """
    cache = net.__dict__.get("_evaluation")
    if cache is not None and cache.uncoded and port is None and not options:
        call = cache.fast.get(_signature(net, data))
        if call is not None:
            return call(data)  # an input signature seen before: only value checks
    unknown = sorted(set(options) - set(EVALUATION_OPTIONS))
    if unknown:
        raise InputDataError(
            f"net(...) got unknown option(s) {unknown}; its options are "
            f"{', '.join(EVALUATION_OPTIONS)} (and the output port).",
            hint="input data goes in the first argument: net({port: array, ...}).",
        )
    coders = coders_of(net) if net.port_specs else None
    if port is not None or coders:
        return evaluate_coded(net, data, port, coders or {}, **options)
    evaluation_cache(net).uncoded = True
    return evaluate_raw(net, data, **options)


def evaluate_raw(net: Layer, data: Any = None, *, batch_size: int | None = None, train: bool = False,
                 seed: int | None = None, target_device: Any = None, progress: bool | None = None,
                 taps: tuple = (), precision: str = "Real32") -> Any:
    """:func:`evaluate` without coders; ``taps`` returns those inner ports instead."""
    if seed is not None:
        seed = check_seed(seed, "net(..., seed=)")
    if precision != "Real32":
        precision_dtype(precision)  # a bad name is an error before anything else
        with precision_scope(precision):
            return _evaluate(net, data, batch_size, train, seed, target_device, progress, taps, precision)
    return _evaluate(net, data, batch_size, train, seed, target_device, progress, taps, precision)


def _evaluate(net: Layer, data: Any, batch_size: int | None, train: bool, seed: int | None,
              target_device: Any, progress: bool | None, taps: tuple, precision: str) -> Any:
    cache = evaluation_cache(net)
    plain = batch_size is None and not train and target_device is None and not taps
    key = _signature(net, data) if plain else None
    if key is not None and precision != "Real32":
        key = (*key, precision)
    if key is not None and key in cache.fast:
        return cache.fast[key](data)  # an input signature seen before: only value checks
    if _traced(data):
        if taps:
            raise InputDataError("reading inner ports (NetPort) needs NumPy data, not traced values.",
                                 hint="call the net outside jax.jit / jax.grad to read them.")
        return _evaluate_traced(net, data, train, seed, precision)
    if not cache.initialized:
        require_initialized(net)
        cache.initialized = True
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                   or batch_size < 1):
        raise InputDataError(f"batch_size must be a positive int; found {batch_size!r}.")
    devices = resolve_devices(target_device)
    given = port_dict(net, data)
    ranks = {n: net.inference.port((), n).rank for n in net.input_names}
    split = {n: _split(n, v, ranks[n]) for n, v in given.items()}
    kinds = {kind for kind, _ in split.values()}
    if len(kinds) > 1:
        raise InputDataError(
            "some ports got a list of examples and others an array: "
            + ", ".join(f"{n}: {k}" for n, (k, _) in split.items())
        )
    if "list" in kinds:
        return _evaluate_list(net, {n: v for n, (_, v) in split.items()}, batch_size or DEFAULT_BATCH_SIZE,
                              train, seed, devices, progress, taps, precision)
    result = _evaluate_arrays(net, {n: v for n, (_, v) in split.items()}, train, seed, devices, taps,
                              precision)
    if key is not None and seed is None:
        cache.fast[key] = _fast_call(net, key, devices, precision)
    return result


# ------------------------------------------------------------- the repeated-call path
def _signature(net: Layer, data: Any) -> tuple | None:
    """What the checks that depend only on shapes and dtypes see: (port, shape, dtype) per
    port, for NumPy data; None for anything else (lists, tracers, Python values)."""
    if isinstance(data, np.ndarray) and len(net.input_names) == 1:
        return ((None, data.shape, data.dtype),)
    if isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values()):
        return tuple(sorted((k, v.shape, v.dtype) for k, v in data.items()))
    return None


def _fast_call(net: Layer, key: tuple, devices: Sequence[Any], precision: str = "Real32") -> Any:
    """A call for data of signature ``key``, which passed every check once: it keeps only
    the checks that need values (index ranges, vectorised) and calls the compiled function
    with everything else prepared. A value that fails goes through the full path, for its
    message."""
    key = tuple(k for k in key if k != precision)  # (port, shape, dtype) entries
    single = key[0][0] is None
    names = net.input_names
    shapes = {names[0] if single else n: shape for n, shape, _ in key}
    fitted = fit_to_data(net, {n: np.zeros(shapes[n], dtype) for n, (_, _, dtype) in zip(shapes, key)}) \
        if needs_data_shapes(net) else net
    types = {n: fitted.inference.port((), n) for n in names}
    is_batch = any(len(shapes[n]) == len(types[n].dims) + 1 for n in names)
    masks = [n for n in names if is_mask_port(n, types[n])]
    ranks = {n: len(types[n].dims) for n in names}
    rows = next(shapes[n][0] for n in names if len(shapes[n]) == len(types[n].dims) + 1) if is_batch else 1
    real = precision_dtype(precision)
    dtypes = {n: real if isinstance(types[n].element, Real) else np.int32 for n in names}
    ranges = [(n, types[n].element.n.size) for n in names
              if isinstance(types[n].element, Index) and isinstance(types[n].element.n, Known)]
    wide = [n for n, (_, _, dtype) in zip(shapes, key) if np.dtype(dtype).kind == "f"
            and np.dtype(dtype).itemsize > np.dtype(real).itemsize]  # the range is a value check
    as_given = not masks and all(np.dtype(dtype) == dtypes[n] for n, (_, _, dtype) in zip(shapes, key))
    fn = _compiled(fitted, False, False)
    params = _placed_params(fitted, devices, precision)
    stats = evaluation_cache(fitted).stats
    out_names = fitted.output_names

    def call(data: Any) -> Any:
        given = {names[0]: data} if single else data
        for n, high in ranges:
            a = given[n]
            if a.size and (a.min() < 0 or a.max() >= high):
                return _evaluate_arrays(net, given, False, None, devices, precision=precision)  # raises the message
        for n in wide:
            check_float_range(f'Data provided to port "{n}"', given[n], real)
        if as_given:
            inputs = given if is_batch else {n: a[None] for n, a in given.items()}
        else:
            for n in masks:  # floats and a mask shared by the batch, as the full path takes them
                a = given[n]
                a = (a != 0) if a.dtype.kind == "f" else a
                given = {**given, n: np.broadcast_to(a, (rows, *a.shape)) if is_batch and a.ndim == ranks[n] else a}
            inputs = {n: (a if is_batch else a[None]).astype(dtypes[n], copy=False) for n, a in given.items()}
        stats["calls"] += 1
        outputs, _ = fn(params, inputs, {})
        if len(out_names) == 1:
            value = np.asarray(outputs[out_names[0]])
            return value if is_batch else value[0]
        return {k: (np.asarray(v) if is_batch else np.asarray(v)[0]) for k, v in outputs.items()}

    return call


def _traced(data: Any) -> bool:
    values = data.values() if isinstance(data, Mapping) else [data]
    return any(isinstance(v, jax.core.Tracer) for v in values)


def _evaluate_traced(net: Layer, data: Any, train: bool, seed: int | None, precision: str = "Real32") -> Any:
    """``net(x)`` inside ``jax.jit`` / ``jax.grad`` / ``jax.vmap``: the lowered function on
    the traced values (one example, or a batch by its leading axis), no host round trip."""
    require_initialized(net)
    given = port_dict(net, data)
    rank = {n: net.inference.port((), n).rank for n in net.input_names}
    batched = {n: jnp.ndim(v) == rank[n] + 1 for n, v in given.items() if rank[n] is not None}
    if len(set(batched.values())) > 1:
        raise InputDataError("some ports got one example and others a batch: "
                             + ", ".join(f"{n}: {'batch' if b else 'one example'}" for n, b in batched.items()))
    # traced values keep their own types unless a precision is asked for
    apply = lower(net, batch_axis=BATCH_AXIS, precision=None if precision == "Real32" else precision)
    params = params_of(net)
    rng = jax.random.key(seed) if train and seed is not None else None
    if train and rng is None:
        raise InputDataError("net(x, train=True) on traced values needs seed= for its randomness.")

    def one(x: Any) -> Any:
        outputs = apply(params, x, rng=rng, train=train)
        return outputs[net.output_names[0]] if len(outputs) == 1 else outputs

    if any(batched.values()):
        return jax.vmap(one, axis_name=BATCH_AXIS)(given)
    return one(given)


def _share_masks(arrays: dict[str, np.ndarray], types: Mapping[str, PortType], masks: set[str]) -> dict:
    """A mask given once (at the example's rank) for a batch whose other ports have the
    batch axis is shared by every example (Keras broadcasts a (T, S) attention mask)."""
    ranks = {n: len(types[n].dims) for n in arrays}
    rows = {a.shape[0] for n, a in arrays.items() if a.ndim == ranks[n] + 1}
    shared = [n for n in masks if arrays[n].ndim == ranks[n]]
    if len(rows) != 1 or not shared or any(
            arrays[n].ndim == ranks[n] for n in arrays if n not in masks):
        return arrays
    (count,) = rows
    return {**arrays, **{n: np.broadcast_to(arrays[n], (count, *arrays[n].shape)) for n in shared}}


def _evaluate_arrays(net: Layer, given: dict[str, np.ndarray], train: bool, seed: int | None,
                     devices: Sequence[Any], taps: tuple = (), precision: str = "Real32") -> Any:
    if needs_data_shapes(net):
        net = fit_to_data(net, given)
    types = {n: net.inference.port((), n) for n in net.input_names}
    masks = {n for n in types if is_mask_port(n, types[n])}
    real = precision_dtype(precision)
    arrays = {n: check_element(f'Data provided to port "{n}"', types[n], given[n], real, n in masks) for n in types}
    arrays = _share_masks(arrays, types, masks)
    batched = {}
    for n, arr in arrays.items():
        rank = len(types[n].dims)
        if arr.ndim not in (rank, rank + 1):
            raise InputDataError(
                f'Data provided to port "{n}" has the wrong rank: expected a rank-{rank} array '
                f"{types[n]} (one example) or a rank-{rank + 1} batch of them; found shape {arr.shape}."
            )
        batched[n] = arr.ndim == rank + 1
    if len(set(batched.values())) > 1:
        raise InputDataError(
            "some ports got one example and others a batch: "
            + ", ".join(f"{n}: {'batch' if b else 'one example'}" for n, b in batched.items())
        )
    is_batch = next(iter(batched.values()), False)
    sizes = {n: a.shape[0] for n, a in arrays.items()} if is_batch else {}
    if len(set(sizes.values())) > 1:
        raise InputDataError(f"the batch sizes of the ports differ: {sizes}.")
    for n, arr in arrays.items():
        check_fixed_sizes(f'Data provided to port "{n}"', types[n], arr.shape[1:] if is_batch else arr.shape)
    lengths = example_lengths(types, arrays, 1 if is_batch else 0, "")
    if not is_batch:
        arrays = {n: a[None] for n, a in arrays.items()}
    rows = next(iter(arrays.values())).shape[0] if arrays else 1
    # every example has its arrays' exact sizes: lengths stay static (read off the shapes)
    outputs, _ = _call(net, arrays, {}, np.arange(rows, dtype=np.int32), train, seed, devices, taps=taps,
                       precision=precision)
    if not is_batch:
        outputs = {k: v[0] for k, v in outputs.items()}
    return next(iter(outputs.values())) if len(outputs) == 1 else outputs


def _evaluate_list(net: Layer, given: dict[str, list], batch_size: int, train: bool, seed: int | None,
                   devices: Sequence[Any], progress: bool | None, taps: tuple = (),
                   precision: str = "Real32") -> list:
    counts = {n: len(v) for n, v in given.items()}
    if len(set(counts.values())) > 1:
        raise InputDataError(f"the ports got different numbers of examples: {counts}.")
    count = next(iter(counts.values()), 0)
    if count == 0:
        return []
    if needs_data_shapes(net):
        net = _fit_list(net, given)
    types = {n: net.inference.port((), n) for n in net.input_names}
    examples = []
    for i in range(count):
        arrays = {}
        for n in types:
            where = f'Data provided to port "{n}", element #{i},'
            arr = check_element(where, types[n], given[n][i], precision_dtype(precision), is_mask_port(n, types[n]))
            if arr.ndim != len(types[n].dims):
                raise InputDataError(f"{where} should be a rank-{len(types[n].dims)} array {types[n]}; "
                                     f"found shape {arr.shape}.")
            check_fixed_sizes(where, types[n], arr.shape)
            arrays[n] = arr
        examples.append(Example(arrays, example_lengths(types, arrays, 0, f"element #{i}: ")))
    if produced_input_lengths(net):
        return _evaluate_by_shape(net, examples, batch_size, train, seed, devices)
    symbols = sorted({s for axes in _varying_axes(types).values() for _, s in axes})
    batch_size = -(-batch_size // len(devices)) * len(devices)
    results: list[Any] = [None] * count
    bar = Progress(count, progress if progress is not None else count >= 2000)
    out_axes = _output_axes(net, taps)
    shapes_seen = evaluation_cache(net).padded_shapes
    for number, indices in enumerate(plan(examples, batch_size)):
        batch = [examples[i] for i in indices]
        inputs, lengths, rows = pad_batch(batch, _varying_axes(types), symbols, batch_size, shapes_seen)
        index = np.array(list(indices) + [0] * (rows - len(indices)), np.int32)
        outputs, out_lengths = _call(net, inputs, lengths, index, train, seed, devices, number,
                                     len(indices), taps, precision)
        for row, i in enumerate(indices):
            one = unpad(outputs, out_lengths, out_axes, row)
            results[i] = next(iter(one.values())) if len(one) == 1 else one
        bar.advance(len(indices))
    return results


def produced_input_lengths(net: Layer) -> set[str]:
    """Varying symbols of input ports that a layer produces (a KeyMask for the keys a
    convolution computes): padding cannot know their padded size in advance."""
    cache = evaluation_cache(net)
    if cache.produced is not None:
        return set(cache.produced)
    inference = net.inference
    inputs = {d.symbol for n in net.input_names for d in (inference.port((), n).dims or ())
              if isinstance(d, Varying)}
    def symbols(path: tuple, names: Sequence[str]) -> set[str]:
        types = [inference.ports.get((path, n)) for n in names]
        return {d.symbol for t in types if t is not None for d in (t.dims or ()) if isinstance(d, Varying)}

    produced: set[str] = set()
    for path, layer in iter_layers(net):
        if not layer.is_container:
            produced |= symbols(path, layer.output_names) - symbols(path, layer.input_names)
    cache.produced = frozenset(produced & inputs)
    return set(cache.produced)


def _evaluate_by_shape(net: Layer, examples: list[Example], batch_size: int, train: bool,
                       seed: int | None, devices: Sequence[Any]) -> list:
    """A list evaluated in batches of examples of equal shapes, unpadded (for nets whose
    inputs include a length a layer produces): each example at its exact sizes, checked."""
    groups: dict[tuple, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(tuple((n, a.shape) for n, a in example.arrays.items()), []).append(i)
    results: list[Any] = [None] * len(examples)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            stacked = {n: np.stack([examples[i].arrays[n] for i in chunk]) for n in examples[0].arrays}
            out = _evaluate_arrays(net, stacked, train, seed, devices)
            for row, i in enumerate(chunk):
                results[i] = ({k: v[row] for k, v in out.items()} if isinstance(out, dict) else out[row])
    return results


def compile_stats(net: Layer) -> dict[str, int]:
    """How many times the net's evaluation function was compiled and called."""
    return dict(evaluation_cache(net).stats)
