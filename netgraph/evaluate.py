"""Evaluating a net on data: ``net(inputs)``.

Inputs are a dict port -> array, or one array for a one-input net. An array with the port's
rank is one example; one more leading axis is a batch. Data is checked against the inferred
port types before anything is traced; the compiled function (``jit(vmap(apply))``) is cached on
the net, so calling twice with the same shapes compiles once (``net.compile_stats()``).
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from layers.base import Layer
from layers.scope import Inference
from shapes import Auto, Index, InputDataError, Integer, Known, Real, Varying
from shapes.porttype import PortType

from .lower import params_of, require_initialized, run


def _as_dict(net: Layer, data: Any) -> dict[str, Any]:
    names = net.input_names
    if isinstance(data, Mapping):
        given = {str(k): v for k, v in data.items()}
        missing = [n for n in names if n not in given]
        extra = [k for k in given if k not in names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing port(s) {missing}")
            if extra:
                parts.append(f"unknown port(s) {extra}")
            raise InputDataError(
                f"{net.describe()}: {' and '.join(parts)}; the input ports are {list(names)}.",
            )
        return given
    if len(names) != 1:
        raise InputDataError(
            f"{net.describe()} has input ports {list(names)}; pass a dict of arrays.",
        )
    return {names[0]: data}


def _numeric(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as err:
        raise InputDataError(
            f'Data provided to port "{name}" is not a rectangular array ({err}).',
            hint="pass one array per port; examples of different lengths go in a list "
            "(threaded evaluation).",
        ) from err
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputDataError(f'Input to network is not a numeric array: port "{name}" got dtype {arr.dtype}.')
    return arr


def _check_element(name: str, ptype: PortType, arr: np.ndarray) -> np.ndarray:
    element = ptype.element
    if isinstance(element, Real):
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputDataError(
                f'Data provided to port "{name}" should be real numbers; found {arr.dtype} data.',
                hint="convert with x.astype(np.float32); integer ports are declared \"Integer\".",
            )
        return arr.astype(np.float32, copy=False)
    if arr.dtype == bool:
        arr = arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputDataError(
            f'Data provided to port "{name}" should be integers ({element}); found {arr.dtype} data.'
        )
    if isinstance(element, Index) and isinstance(element.n, Known) and arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= element.n.size:
            raise InputDataError(
                f'Data provided to port "{name}" should be integers in [0, {element.n.size}); '
                f"found values from {low} to {high}."
            )
    return arr.astype(np.int32, copy=False)


def _batched(name: str, ptype: PortType, arr: np.ndarray) -> bool:
    rank = len(ptype.dims)
    if arr.ndim == rank:
        return False
    if arr.ndim == rank + 1:
        return True
    raise InputDataError(
        f'Data provided to port "{name}" has the wrong rank: expected a rank-{rank} array '
        f"{ptype} (one example) or a rank-{rank + 1} batch of them; found shape {arr.shape}."
    )


def _check_dims(name: str, ptype: PortType, shape: tuple[int, ...], seen: dict[str, tuple[str, int]]) -> None:
    expected = tuple(d.size if isinstance(d, Known) else None for d in ptype.dims)
    if any(e is not None and e != s for e, s in zip(expected, shape)):
        shown = tuple("Varying" if e is None else e for e in expected)
        raise InputDataError(
            f'Data provided to port "{name}" has the wrong dimensions ({shape} instead of {shown}).'
        )
    for dim, size in zip(ptype.dims, shape):
        if isinstance(dim, Varying):
            other = seen.setdefault(dim.symbol, (name, size))
            if other[1] != size:
                raise InputDataError(
                    f'ports "{other[0]}" and "{name}" must have the same length; found '
                    f"{other[1]} and {size}."
                )


def _needs_data_shapes(net: Layer) -> bool:
    for ptype in (net.inference.port((), n) for n in net.input_names):
        if ptype.dims is None or any(isinstance(d, Auto) for d in ptype.dims):
            return True
    return False


def _fit_to_data(net: Layer, data: dict[str, np.ndarray]) -> Layer:
    """``net`` with under-specified input ports declared from the data (one example each)."""
    specs = {}
    for name in net.input_names:
        ptype = net.inference.port((), name)
        arr = data[name]
        if ptype.dims is None:
            specs[name] = tuple(arr.shape)
        elif any(isinstance(d, Auto) for d in ptype.dims):
            shape = arr.shape[-len(ptype.dims):] if ptype.dims else ()
            specs[name] = tuple(
                s if isinstance(d, Auto) else (d.size if isinstance(d, Known) else "Varying")
                for d, s in zip(ptype.dims, shape)
            )
    key = ("fitted", tuple(sorted((k, v) for k, v in specs.items())))
    if key not in net._cache:
        fitted = net.evolve(port_specs=specs)
        fitted._cache["stats"] = net._cache.setdefault("stats", {"compilations": 0, "calls": 0})
        net._cache[key] = fitted
    return net._cache[key]


def _compiled(net: Layer, train: bool) -> Any:
    key = ("jit", train)
    if key not in net._cache:
        stats = net._cache.setdefault("stats", {"compilations": 0, "calls": 0})

        def batch_apply(params: Any, inputs: Any, rngs: Any) -> Any:
            stats["compilations"] += 1  # runs once per trace, i.e. per compilation

            def one(x: Any, r: Any) -> Any:
                return run(net, params, x, None, r if train else None, train)[0]

            return jax.vmap(one)(inputs, rngs)

        net._cache[key] = jax.jit(batch_apply)
    return net._cache[key]


def _device_params(net: Layer) -> Any:
    if "device_params" not in net._cache:
        net._cache["device_params"] = jax.tree_util.tree_map(jnp.asarray, params_of(net))
    return net._cache["device_params"]


def evaluate(net: Layer, data: Any, *, train: bool = False, seed: int | None = None) -> Any:
    """Evaluate ``net``: one example gives one result, a batch a batch of results; one output
    port gives an array, several a dict."""
    if "initialized" not in net._cache:
        require_initialized(net)
        net._cache["initialized"] = True
    given = {k: _numeric(k, v) for k, v in _as_dict(net, data).items()}
    if _needs_data_shapes(net):
        net = _fit_to_data(net, given)
    inference: Inference = net.inference
    types = {n: inference.port((), n) for n in net.input_names}
    arrays = {n: _check_element(n, types[n], given[n]) for n in net.input_names}
    batched = {n: _batched(n, types[n], arrays[n]) for n in net.input_names}
    if len(set(batched.values())) > 1:
        raise InputDataError(
            "some ports got one example and others a batch: "
            + ", ".join(f"{n}: {'batch' if b else 'one example'}" for n, b in batched.items())
        )
    is_batch = next(iter(batched.values()), False)
    sizes = {n: a.shape[0] for n, a in arrays.items()} if is_batch else {}
    if len(set(sizes.values())) > 1:
        raise InputDataError(f"the batch sizes of the ports differ: {sizes}.")
    seen: dict[str, tuple[str, int]] = {}
    for n, arr in arrays.items():
        _check_dims(n, types[n], arr.shape[1:] if is_batch else arr.shape, seen)
    if not is_batch:
        arrays = {n: a[None] for n, a in arrays.items()}
    count = next(iter(arrays.values())).shape[0] if arrays else 1
    if train:
        seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else seed
        rngs = jax.random.split(jax.random.key(seed), count)
    else:
        rngs = np.zeros((count,), np.uint32)  # unused in evaluation mode; no eager JAX op
    fn = _compiled(net, train)
    net._cache["stats"]["calls"] += 1
    outputs = fn(_device_params(net), arrays, rngs)
    outputs = {k: np.asarray(v) for k, v in outputs.items()}
    if not is_batch:
        outputs = {k: v[0] for k, v in outputs.items()}
    return outputs[net.output_names[0]] if len(outputs) == 1 else outputs


def compile_stats(net: Layer) -> dict[str, int]:
    """How many times the net's evaluation function was compiled and called."""
    return dict(net._cache.get("stats", {"compilations": 0, "calls": 0}))
