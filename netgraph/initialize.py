"""NetInitialize: seeded, reproducible initialisation of every array from the solved shapes.

Each array gets its own NumPy generator seeded by ``(seed, crc32(path))``, so adding a layer
never changes the initial values of another. Methods: "Kaiming" (default) and "Xavier", with
a "Normal" (default) or "Uniform" distribution; biases start at 0, scalings at 1,
embeddings from a standard normal.
"""
from __future__ import annotations

import math
import zlib
from typing import Any


import numpy as np

from .layers.base import ArraySpec, Layer, shared_values
from .layers.scope import Inference, Path, show_path
from .layers.tree import iter_layers, map_layers
from .shapes import Known
from .errors import AmbiguousShapeError, SpecificationError


_METHODS = ("Kaiming", "Xavier")
_DISTRIBUTIONS = ("Normal", "Uniform")


def _draw(spec: ArraySpec, shape: tuple[int, ...], rng: np.random.Generator,
          method: str, distribution: str, override: object = None) -> np.ndarray:
    if isinstance(override, tuple):
        method, distribution = override
        spec = ArraySpec("weights")
    elif override is not None:
        spec = ArraySpec(str(override).lower())
    if spec.init == "zeros":
        return np.zeros(shape, np.float32)
    if spec.init == "ones":
        return np.ones(shape, np.float32)
    if spec.init == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    receptive = math.prod(shape[2:])
    fan_in = max(math.prod(shape[1:]), 1)
    fan_out = max(shape[0] * receptive if shape else 1, 1)
    std = math.sqrt(2.0 / fan_in) if method == "Kaiming" else math.sqrt(2.0 / (fan_in + fan_out))
    if distribution == "Uniform":
        limit = math.sqrt(3.0) * std
        return rng.uniform(-limit, limit, shape).astype(np.float32)
    return (std * rng.standard_normal(shape)).astype(np.float32)


def _shown(dims: tuple | None) -> str:
    if dims is None:
        return "an array of unknown rank"
    return "{" + ", ".join(str(d) for d in dims) + "}"


def _unresolved(layer: Layer, inference: Inference, path: Path, name: str) -> AmbiguousShapeError:
    ports = []
    for port in (*layer.input_names, *layer.output_names):
        ptype = inference.ports.get((path, port))
        if ptype is not None:
            ports.append(f'"{port}" is {ptype}')
    return AmbiguousShapeError(
        f'Cannot initialize net: unspecified or partially specified shape for array "{name}" '
        f"of {show_path(path)} ({layer.describe()}): {_shown(inference.array(path, name))}. "
        f"Its ports: {'; '.join(ports)}.",
        hint="declare the missing sizes on the net's ports (e.g. NetGraph(..., Input=8)) or on "
        "the layer itself (LinearLayer(3, Input=5)).",
    )


def _initialize(net: Layer, seed: int, method: str, distribution: str, redo: bool,
                shared: dict[str, np.ndarray]) -> Layer:
    inference = net.inference

    def fill(path: Path, layer: Layer) -> Layer:
        fresh = {}
        for name, spec in layer.array_specs().items():
            if name in layer.shared:
                value = shared[layer.shared[name]]
                if value is not layer.arrays.get(name):
                    fresh[name] = value
                continue
            if layer.arrays.get(name) is not None and not redo:
                continue
            dims = inference.array(path, name)
            if dims is None or not all(isinstance(d, Known) for d in dims):
                raise _unresolved(layer, inference, path, name)
            _check_size(dims, f"array {show_path(path + (name,))} ({layer.describe()})")
            key = zlib.crc32("/".join(path + (name,)).encode())
            rng = np.random.default_rng([seed, key])
            fresh[name] = _draw(spec, tuple(d.size for d in dims), rng, method, distribution,
                                layer.initializers.get(name))
        return layer.evolve(arrays=fresh) if fresh else layer

    return map_layers(fill, net)


MAX_SEED = 2**63 - 1
MAX_ELEMENTS = 2**31 - 1
"""The most elements one array may have (JAX indexes arrays with int32)."""


def _check_size(dims: tuple, where: str) -> None:
    count = math.prod(d.size for d in dims)
    if count > MAX_ELEMENTS:
        raise SpecificationError(
            f"NetInitialize: {where} would have {count:,} elements "
            f"{tuple(d.size for d in dims)}; at most {MAX_ELEMENTS:,} are supported.",
            hint="check the sizes given to the layer and its ports.",
        )


def check_seed(seed: Any, where: str) -> int:
    """``seed`` as a Python int in [0, 2**63) (NumPy integers accepted); anything else (a
    bool, a float, a string, a larger int) is a :class:`SpecificationError`."""
    if isinstance(seed, np.integer) and not isinstance(seed, np.bool_):
        seed = int(seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise SpecificationError(f"{where}: seed must be an int in [0, 2**63); found {seed!r}.")
    return seed


def NetInitialize(net: Layer, seed: int = 1234, *, method: str = "Kaiming",
                  distribution: str = "Normal", reinitialize: bool = False) -> Layer:
    """A copy of ``net`` with every uninitialised array filled (all of them with
    ``reinitialize=True``). Same seed, same arrays."""
    if method not in _METHODS:
        raise SpecificationError(f"NetInitialize: unknown method {method!r}; use one of {_METHODS}.")
    if distribution not in _DISTRIBUTIONS:
        raise SpecificationError(
            f"NetInitialize: unknown distribution {distribution!r}; use one of {_DISTRIBUTIONS}."
        )
    seed = check_seed(seed, "NetInitialize")
    return _initialize(net, seed, method, distribution, reinitialize,
                       _shared_arrays(net, seed, method, distribution, reinitialize))


def _first_user(net: Layer, name: str) -> tuple[Layer, Path, str]:
    return next((layer, path, local) for path, layer in iter_layers(net, include_root=True)
                for local, shared in layer.shared.items() if shared == name)


def _shared_arrays(net: Layer, seed: int, method: str, distribution: str,
                   redo: bool) -> dict[str, np.ndarray]:
    """One value per shared array name: kept, or drawn once (seeded by its name)."""
    values = {}
    for name, value in shared_values(net).items():
        if value is not None and not redo:
            values[name] = value
            continue
        layer, path, local = _first_user(net, name)
        dims = net.inference.array((), f"SharedArrays/{name}")
        if dims is None or not all(isinstance(d, Known) for d in dims):
            raise _unresolved(layer, net.inference, path, local)
        _check_size(dims, f"the shared array NetArray({name!r})")
        rng = np.random.default_rng([seed, zlib.crc32(f"SharedArrays/{name}".encode())])
        values[name] = _draw(layer.array_specs()[local], tuple(d.size for d in dims), rng, method,
                             distribution, layer.initializers.get(local))
    return values


__all__ = ["NetInitialize"]
