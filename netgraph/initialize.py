"""NetInitialize: seeded, reproducible initialisation of every array from the solved shapes.

Each array gets its own NumPy generator seeded by ``(seed, crc32(path))``, so adding a layer
never changes the initial values of another. Methods (Wolfram's): "Kaiming" (default) and
"Xavier", with a "Normal" (default) or "Uniform" distribution; "Random" (a normal, or uniform,
distribution of mean 0 and standard deviation ``std``, 1 by default); "Orthogonal" (each
weight array, seen as a matrix of its first dimension by the rest, has orthonormal rows or
columns); "Identity" (the identity matrix - for a convolution kernel, the identity at its
centre - plus normal noise of standard deviation ``std``, 0.01 by default). A method only
decides the learned "weights" arrays: biases start at 0, scalings at 1, embeddings from a
standard normal.

Per array, ``layer.with_initializers({"Weights": spec})`` (or ``NetArrayLayer(initializer=
spec)``) chooses the initializer. A spec is one of netgraph's own, plain data that saves with
the net:

================================================ ==========================================
spec                                             values
================================================ ==========================================
"Zeros", "Ones", "Normal"                        0, 1, standard normal
("Kaiming" | "Xavier", "Normal" | "Uniform")     as the NetInitialize methods
("Constant", v)                                  v
("RandomNormal", mean, std)                      normal
("RandomUniform", low, high)                     uniform
("TruncatedNormal", mean, std)                   normal, redrawn beyond 2 std (as Keras)
("VarianceScaling", scale, mode, distribution)   Keras's: std = sqrt(scale / n), n the fan
                                                 of ``mode`` ("fan_in", "fan_out",
                                                 "fan_avg"); distribution
                                                 "truncated_normal", "untruncated_normal"
                                                 or "uniform"
("Orthogonal", gain), ("Identity", gain, noise)  as the NetInitialize methods, times gain
================================================ ==========================================

or a Keras initializer, converted to one of those: a name (``"glorot_uniform"``,
``"he_normal"``, ``"lecun_uniform"``, ``"truncated_normal"``, ``"orthogonal"``, ...; the
class names too), an object (``keras.initializers.TruncatedNormal(stddev=0.02)``, read
through its ``get_config()``; netgraph never imports keras for it) or its serialised dict.
A Keras object's ``seed`` is not used: NetInitialize's seed decides every array. Fans follow
netgraph's array layouts (``Weights`` is out x in [x kernel]): fan_in is the product of all
dimensions but the first, fan_out the first times the kernel's (Keras's kernels are in x
out: the same numbers for dense and convolution kernels).
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


_METHODS = ("Kaiming", "Xavier", "Random", "Orthogonal", "Identity")
_DISTRIBUTIONS = ("Normal", "Uniform")
_MODES = ("fan_in", "fan_out", "fan_avg")
_VS_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
_TRUNCATED_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]

# Keras's initializers by name: the netgraph spec of each, from its Keras config
_VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"), "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"), "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"), "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}
_KERAS: dict[str, Any] = {
    "zeros": lambda c: "Zeros",
    "ones": lambda c: "Ones",
    "constant": lambda c: ("Constant", float(c.get("value", 0.0))),
    "random_normal": lambda c: ("RandomNormal", float(c.get("mean", 0.0)), float(c.get("stddev", 0.05))),
    "random_uniform": lambda c: ("RandomUniform", float(c.get("minval", -0.05)), float(c.get("maxval", 0.05))),
    "truncated_normal": lambda c: ("TruncatedNormal", float(c.get("mean", 0.0)), float(c.get("stddev", 0.05))),
    "variance_scaling": lambda c: ("VarianceScaling", float(c.get("scale", 1.0)), c.get("mode", "fan_in"),
                                   c.get("distribution", "truncated_normal")),
    "orthogonal": lambda c: ("Orthogonal", float(c.get("gain", 1.0))),
    "identity": lambda c: ("Identity", float(c.get("gain", 1.0)), 0.0),
    **{name: (lambda c, v=v: ("VarianceScaling", *v)) for name, v in _VARIANCE_SCALING.items()},
}
_KERAS_CLASSES = {"".join(w.capitalize() for w in name.split("_")): name for name in _KERAS}
_KERAS_CLASSES.update(IdentityInitializer="identity", OrthogonalInitializer="orthogonal")
_ARITY = {"Constant": 1, "RandomNormal": 2, "RandomUniform": 2, "TruncatedNormal": 2,
          "VarianceScaling": 3, "Orthogonal": 1, "Identity": 2}
_NAMED = ("Zeros", "Ones", "Normal")


def _bad(spec: Any, where: str, why: str = "") -> SpecificationError:
    return SpecificationError(
        f"{where}: unknown initializer {spec!r}{why}.",
        hint='use "Zeros", "Ones", "Normal", ("Kaiming" | "Xavier", "Normal" | "Uniform"), '
        '("RandomNormal", mean, std), ("TruncatedNormal", mean, std), ("Orthogonal", gain), ... '
        '(see netgraph.initialize), or a Keras initializer name or object ("glorot_uniform", '
        '"he_normal", keras.initializers.TruncatedNormal(stddev=0.02)).')


def _from_keras_config(name: str, config: dict, spec: Any, where: str) -> Any:
    key = _KERAS_CLASSES.get(name, name)
    if key not in _KERAS:
        raise _bad(spec, where, " (a Keras initializer without a netgraph counterpart)")
    if config.get("input_axes") is not None or config.get("output_axes") is not None:
        raise SpecificationError(
            f"{where}: {name}(input_axes=..., output_axes=...) is not supported; netgraph "
            "takes the fans from its own array layout.", hint="leave input_axes and output_axes unset.")
    try:
        converted = _KERAS[key](config)
    except (TypeError, ValueError) as err:
        raise _bad(spec, where, f" (its config {config!r} does not convert)") from err
    return initializer_spec(converted, where)


def initializer_spec(spec: Any, where: str = "initializer") -> Any:
    """``spec`` (a netgraph spec or a Keras initializer name, object or serialised dict) as
    a netgraph spec: plain, hashable data. A bad spec is a SpecificationError."""
    if isinstance(spec, str):
        if spec in _NAMED:
            return spec
        if spec in _KERAS or spec in _KERAS_CLASSES:
            return _from_keras_config(spec, {}, spec, where)
        raise _bad(spec, where)
    if isinstance(spec, (tuple, list)) and spec:
        spec = tuple(spec)
        kind, args = spec[0], spec[1:]
        if kind in ("Kaiming", "Xavier") and len(args) == 1 and args[0] in _DISTRIBUTIONS:
            return spec
        if kind not in _ARITY or len(args) != _ARITY[kind]:
            raise _bad(spec, where)
        if kind == "VarianceScaling":
            scale, mode, distribution = args
            if mode not in _MODES or distribution not in _VS_DISTRIBUTIONS:
                raise _bad(spec, where, f" (mode one of {_MODES}, distribution one of {_VS_DISTRIBUTIONS})")
            args = (scale,)
        numbers = [a for a in args if not isinstance(a, bool) and isinstance(a, (int, float, np.number))]
        if len(numbers) != len(args) or not all(math.isfinite(float(a)) for a in numbers):
            raise _bad(spec, where, " (its parameters must be finite numbers)")
        if kind in ("RandomNormal", "TruncatedNormal") and float(args[1]) < 0:
            raise _bad(spec, where, " (a negative standard deviation)")
        if kind == "RandomUniform" and float(args[0]) > float(args[1]):
            raise _bad(spec, where, " (low above high)")
        if kind == "VarianceScaling":
            return ("VarianceScaling", float(scale), mode, distribution)
        return (kind, *(float(a) for a in args))
    if isinstance(spec, dict) and "class_name" in spec:  # a serialised Keras initializer
        return _from_keras_config(spec["class_name"], dict(spec.get("config") or {}), spec, where)
    if hasattr(spec, "get_config") and callable(spec.get_config):  # a Keras initializer object
        return _from_keras_config(type(spec).__name__, dict(spec.get_config()), spec, where)
    raise _bad(spec, where)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = math.prod(shape[2:])
    fan_in = max(math.prod(shape[1:]), 1)
    fan_out = max(shape[0] * receptive if shape else 1, 1)
    return fan_in, fan_out


def _normal(rng: np.random.Generator, shape: tuple[int, ...], truncated: bool) -> np.ndarray:
    """Standard normal values; ``truncated``: redrawn until within 2 (Keras's truncation)."""
    values = rng.standard_normal(shape)
    if truncated:
        outside = np.abs(values) > 2
        while outside.any():
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2
    return values


def _orthogonal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    rows, cols = (shape[0], math.prod(shape[1:])) if shape else (1, 1)
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))  # a uniformly distributed orthogonal matrix (Mezzadri)
    return (q if rows >= cols else q.T).reshape(shape)


def _identity(shape: tuple[int, ...]) -> np.ndarray:
    """The identity: 1 at [i, i] (at the kernel's centre for out x in x kernel arrays)."""
    values = np.zeros(shape)
    if len(shape) < 2:
        values[...] = 1.0
        return values
    centre = tuple(k // 2 for k in shape[2:])
    for i in range(min(shape[0], shape[1])):
        values[(i, i, *centre)] = 1.0
    return values


def draw(spec: Any, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values of a netgraph initializer ``spec`` (see :func:`initializer_spec`), float32."""
    if spec in ("Zeros", "Ones"):
        return (np.zeros if spec == "Zeros" else np.ones)(shape, np.float32)
    if spec == "Normal":
        return rng.standard_normal(shape).astype(np.float32)
    kind, *args = spec
    if kind in ("Kaiming", "Xavier"):
        fan_in, fan_out = _fans(shape)
        std = math.sqrt(2.0 / fan_in) if kind == "Kaiming" else math.sqrt(2.0 / (fan_in + fan_out))
        if args[0] == "Uniform":
            limit = math.sqrt(3.0) * std
            return rng.uniform(-limit, limit, shape).astype(np.float32)
        return (std * rng.standard_normal(shape)).astype(np.float32)
    if kind == "Constant":
        values = np.full(shape, args[0])
    elif kind == "RandomNormal":
        values = args[0] + args[1] * rng.standard_normal(shape)
    elif kind == "RandomUniform":
        values = rng.uniform(args[0], args[1], shape)
    elif kind == "TruncatedNormal":
        values = args[0] + args[1] * _normal(rng, shape, truncated=True)
    elif kind == "VarianceScaling":
        scale, mode, distribution = args
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        std = math.sqrt(scale / n)
        if distribution == "uniform":
            values = rng.uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, shape)
        elif distribution == "truncated_normal":
            values = std / _TRUNCATED_STD * _normal(rng, shape, truncated=True)
        else:
            values = std * rng.standard_normal(shape)
    elif kind == "Orthogonal":
        values = args[0] * _orthogonal(rng, shape)
    else:  # Identity
        values = args[0] * _identity(shape) + args[1] * rng.standard_normal(shape)
    return np.asarray(values, np.float32)


def _method_spec(method: str, distribution: str, std: float | None) -> Any:
    """The initializer a NetInitialize method gives to learned "weights" arrays."""
    if method in ("Kaiming", "Xavier"):
        return (method, distribution)
    if method == "Random":
        sigma = 1.0 if std is None else std
        if distribution == "Uniform":
            return ("RandomUniform", -math.sqrt(3.0) * sigma, math.sqrt(3.0) * sigma)
        return ("RandomNormal", 0.0, sigma)
    if method == "Orthogonal":
        return ("Orthogonal", 1.0)
    return ("Identity", 1.0, 0.01 if std is None else std)


def _array_spec(spec: ArraySpec, default: Any, override: Any) -> Any:
    """The initializer of one array: its own (``with_initializers``), else its declared one
    ("zeros", "ones", "normal" or a spec), else the method's (for "weights")."""
    if override is not None:
        return override
    if spec.init == "weights":
        return default
    return {"zeros": "Zeros", "ones": "Ones", "normal": "Normal"}.get(spec.init, spec.init)


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


def _initialize(net: Layer, seed: int, default: Any, redo: bool,
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
            fresh[name] = draw(_array_spec(spec, default, layer.initializers.get(name)),
                               tuple(d.size for d in dims), rng)
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
                  distribution: str = "Normal", std: float | None = None,
                  reinitialize: bool = False) -> Layer:
    """A copy of ``net`` with every uninitialised array filled (all of them with
    ``reinitialize=True``). Same seed, same arrays. ``method``: "Kaiming", "Xavier",
    "Random", "Orthogonal" or "Identity"; ``distribution`` ("Normal", "Uniform") for
    "Kaiming", "Xavier" and "Random"; ``std`` for "Random" (1) and "Identity"'s noise (0.01)."""
    if method not in _METHODS:
        raise SpecificationError(f"NetInitialize: unknown method {method!r}; use one of {_METHODS}.")
    if distribution not in _DISTRIBUTIONS:
        raise SpecificationError(
            f"NetInitialize: unknown distribution {distribution!r}; use one of {_DISTRIBUTIONS}."
        )
    if distribution != "Normal" and method not in ("Kaiming", "Xavier", "Random"):
        raise SpecificationError(f"NetInitialize: method {method!r} takes no distribution; "
                                 f"found distribution={distribution!r}.")
    if std is not None and (method not in ("Random", "Identity") or isinstance(std, bool)
                            or not isinstance(std, (int, float)) or not std >= 0):
        raise SpecificationError(
            f"NetInitialize: std={std!r} is for method \"Random\" or \"Identity\" and must be a "
            f"non-negative number; the method is {method!r}.")
    seed = check_seed(seed, "NetInitialize")
    default = _method_spec(method, distribution, None if std is None else float(std))
    return _initialize(net, seed, default, reinitialize, _shared_arrays(net, seed, default, reinitialize))


def _first_user(net: Layer, name: str) -> tuple[Layer, Path, str]:
    return next((layer, path, local) for path, layer in iter_layers(net, include_root=True)
                for local, shared in layer.shared.items() if shared == name)


def _shared_arrays(net: Layer, seed: int, default: Any, redo: bool) -> dict[str, np.ndarray]:
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
        spec = _array_spec(layer.array_specs()[local], default, layer.initializers.get(local))
        values[name] = draw(spec, tuple(d.size for d in dims), rng)
    return values


__all__ = ["NetInitialize", "draw", "initializer_spec"]
