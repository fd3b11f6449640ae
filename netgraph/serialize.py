"""Saving and loading nets: structure as versioned JSON, arrays in one ``.npz``, no pickle.

``to_config(net)`` gives the structure as plain data (layer type names, options, declared
port shapes, sub-nets, and for graphs the resolved connections); ``from_config`` inverts it.
``save(net, path)`` writes one ``.npz`` file holding that JSON (as bytes) and every array by
path; ``load(path)`` reads it with ``allow_pickle=False``, validates the JSON with pydantic
models, rebuilds the net (running inference, so arrays of the wrong shape are caught) and
returns it whole or raises :class:`~netgraph.errors.SerializationError` - never half a net.
Loading runs no code from the file: layer types are looked up in the layer registry.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import zipfile
from typing import Annotated, Any, Mapping, Optional

import numpy as np
import pydantic

from .layers.base import Layer, NetArray, shared_values
from .layers.tree import iter_layers
from .layers.options import All, Inherited
from .shapes import Automatic, Restricted
from .errors import NetGraphError, SerializationError
from .coders import coder_from_json, coder_of, coder_to_json, is_coder_json

from .graph import NetGraph

FORMAT = "netgraph"
VERSION = 1
MAX_JSON_BYTES = 16 * 2**20
MAX_ARRAY_ELEMENTS = 2**31 - 1
MAX_DEPTH = 64
_MARKERS = {"Automatic": Automatic, "All": All, "Inherited": Inherited}


class LayerConfig(pydantic.BaseModel):
    """One layer (or net) of a saved structure."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    type: str
    options: dict[str, Any] = {}
    ports: dict[str, Any] = {}
    removed: list[str] = []
    initializers: dict[str, Any] = {}
    regularizers: dict[str, Any] = {}
    constraints: dict[str, Any] = {}
    activity_regularizer: Any = None
    shared: dict[str, str] = {}
    children: dict[str, "LayerConfig"] = {}
    edges: Optional[list[tuple[Optional[str], str, Optional[str], str]]] = None
    muted: list[tuple[str, str]] = []


class FileHeader(pydantic.BaseModel):
    """The JSON document stored in a saved net."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    format: pydantic.StrictStr
    version: pydantic.StrictInt  # "version": true is not version 1
    net: LayerConfig
    arrays: dict[str, tuple[Annotated[pydantic.StrictInt, pydantic.Field(ge=0)], ...]] = {}


# ------------------------------------------------------------------ plain-data values
def _to_json(value: Any, where: str) -> Any:
    if value is Automatic or value is All or value is Inherited:
        return repr(value)
    if isinstance(value, pydantic.BaseModel):  # a structured option value (a level Span):
        return _to_json(value.model_dump(), where)  # the options model validates it back
    if isinstance(value, (tuple, list)):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v, where) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if callable(value):
        raise SerializationError(
            f"{where} holds a Python function ({getattr(value, '__name__', value)!r}), which "
            "cannot be saved.",
            hint='use a named function ("Tanh", "Plus") or rebuild the layer after loading.',
        )
    raise SerializationError(f"{where}: the value {value!r} cannot be saved.")


def _to_json_loose(value: Any, where: str) -> Any:
    """``_to_json``, with a Python function spelled by name and bytecode digest."""
    if isinstance(value, (tuple, list)):
        return [_to_json_loose(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json_loose(v, where) for k, v in value.items()}
    if callable(value) and not isinstance(value, type):
        code = getattr(value, "__code__", None)
        name = getattr(value, "__qualname__", type(value).__qualname__)
        spelled = {"function": f"{getattr(value, '__module__', '')}.{name}"}
        if code is not None:
            spelled["code"] = _code_digest(code)
        return spelled
    try:
        return _to_json(value, where)
    except SerializationError:
        return repr(value)


def _code_digest(code: Any) -> str:
    """A digest of a function's bytecode, constants and names (nested functions included;
    no addresses, so equal source gives equal digests)."""
    consts = [_code_digest(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts]
    spelled = repr((consts, code.co_names, code.co_varnames)).encode()
    return hashlib.sha256(code.co_code + spelled).hexdigest()


def _from_json(value: Any) -> Any:
    if isinstance(value, str) and value in _MARKERS:
        return _MARKERS[value]
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


def element_to_json(entry: Any) -> Any:
    """A port-spec entry as JSON: sizes and names as they are, markers by name."""
    if isinstance(entry, Restricted):
        return {"Restricted": [entry.kind, entry.n]}
    return repr(entry) if entry is Automatic else entry


def element_from_json(entry: Any) -> Any:
    if isinstance(entry, dict) and set(entry) == {"Restricted"}:
        kind, n = entry["Restricted"]
        return Restricted(kind, n)
    return entry


def _port_to_json(spec: Any, where: str, strict: bool = True) -> Any:
    coder = coder_of(spec)
    if coder is not None:  # a function in a coder is spelled by name when not strict
        return coder_to_json(coder) if strict else _to_json_loose({coder.role: {"kind": coder.kind, **dict(coder.options)}}, where)
    user = spec.to_user()
    if isinstance(user, tuple):
        return [element_to_json(e) for e in user]
    return element_to_json(user)


MAX_RANK = 256


def _port_from_json(value: Any) -> Any:
    if is_coder_json(value):
        return coder_from_json(value)
    if isinstance(value, list) and len(value) > MAX_RANK:
        raise SerializationError(f"a port spec of rank {len(value)} exceeds the limit of {MAX_RANK}.")
    if isinstance(value, list):
        return tuple(element_from_json(_from_json(e)) for e in value)
    return element_from_json(_from_json(value))


# ------------------------------------------------------------------ structure <-> config
def to_config(net: Layer, path: str = "net", *, strict: bool = True) -> dict[str, Any]:
    """The structure of ``net`` as plain, JSON-ready data (no arrays). A value that cannot
    be saved (a Python function in an option) is a :class:`SerializationError`; with
    ``strict=False`` it is spelled by its qualified name and a digest of its bytecode
    instead (a description, e.g. for ``Information(net, "TopologyHash")``, not loadable)."""
    spell = _to_json if strict else _to_json_loose
    options = {k: spell(v, f'option "{k}" of {path} ({net.describe()})')
               for k, v in net.options.model_dump().items()}
    config: dict[str, Any] = {"type": net.type_name}
    if options:
        config["options"] = options
    if net.port_specs:
        config["ports"] = {k: _port_to_json(v, path, strict) for k, v in net.port_specs.items()}
    removed = sorted(set(net.arrays_declared) - set(net.array_specs()))
    if removed:
        config["removed"] = removed
    if net.shared:
        config["shared"] = dict(net.shared)
    for rules in ("initializers", "regularizers", "constraints"):
        if getattr(net, rules):
            config[rules] = {k: spell(v, path) for k, v in getattr(net, rules).items()}
    if net.activity_regularizer is not None:
        config["activity_regularizer"] = spell(net.activity_regularizer, path)
    children = net.children()
    if children:
        config["children"] = {k: to_config(c, f"{path}/{k}", strict=strict)
                              for k, c in children.items()}
    if isinstance(net, NetGraph):
        config["edges"] = [[d.node, d.port, s.node, s.port] for d, s in net.edges.items()]
        config["muted"] = sorted([r.node, r.port] for r in net.muted)
    return config


def _build(config: LayerConfig, arrays: Mapping[str, np.ndarray], path: tuple[str, ...] = ()) -> Layer:
    """Rebuild a net from a validated record; any failure is a SerializationError."""
    try:
        return _build_layer(config, arrays, path)
    except SerializationError:
        raise
    except (NetGraphError, KeyError, ValueError, TypeError, RecursionError) as err:
        raise SerializationError(f"cannot rebuild the net: {type(err).__name__}: {err}") from err


def _build_layer(config: LayerConfig, arrays: Mapping[str, np.ndarray], path: tuple[str, ...]) -> Layer:
    cls = Layer.registry.get(config.type)
    shown = "/".join(path) or "net"
    if cls is None or inspect.isabstract(cls):
        raise SerializationError(
            f'unknown layer type "{config.type}" at {shown}.',
            hint="the file was written by a newer netgraph, or names a layer not registered here.",
        )
    children = {k: _build_layer(c, arrays, path + (k,)) for k, c in config.children.items()}
    given: dict[str, Any] = {n: None for n in config.removed}
    prefix = "/".join(path + ("",)) if path else ""
    for key, value in arrays.items():
        if key.startswith(prefix) and "/" not in key[len(prefix):]:
            if key[len(prefix):] in config.removed:
                raise SerializationError(f'array "{key}" is stored, but the record removes it.')
            given[key[len(prefix):]] = value
    for local, name in config.shared.items():
        given[local] = NetArray(name, arrays.get(f"SharedArrays/{name}"))
    structure = {"edges": config.edges or [], "muted": config.muted}
    try:
        layer = cls.restore(
            {k: _from_json(v) for k, v in config.options.items()},
            {k: _port_from_json(v) for k, v in config.ports.items()},
            given, children, structure,
        )
    except SerializationError:
        raise
    except NetGraphError as err:
        raise SerializationError(f"cannot rebuild {shown} ({config.type}): {err}") from err
    if config.initializers:
        layer = layer.with_initializers({k: _from_json(v) for k, v in config.initializers.items()})
    if config.regularizers:
        layer = layer.with_regularizers({k: _from_json(v) for k, v in config.regularizers.items()})
    if config.constraints:
        layer = layer.with_constraints({k: _from_json(v) for k, v in config.constraints.items()})
    if config.activity_regularizer is not None:
        layer = layer.with_activity_regularizer(_from_json(config.activity_regularizer))
    return layer


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
    return deepest


def from_config(config: Mapping[str, Any]) -> Layer:
    """Rebuild a net's structure (uninitialised) from :func:`to_config` data."""
    if _depth(config, MAX_DEPTH) > MAX_DEPTH:
        raise SerializationError(f"the structure is nested deeper than {MAX_DEPTH} levels.")
    try:
        parsed = LayerConfig.model_validate(config)
    except (pydantic.ValidationError, RecursionError) as err:
        raise SerializationError(f"invalid net structure: {err}") from err
    return _build(parsed, {})


# ------------------------------------------------------------------------- files
def _arrays(net: Layer) -> dict[str, np.ndarray]:
    found = {"/".join(path + (n,)): a for path, layer in iter_layers(net, include_root=True)
             for n, a in layer.arrays.items() if a is not None and n not in layer.shared}
    found.update({f"SharedArrays/{n}": v for n, v in shared_values(net).items() if v is not None})
    return found


def _file_path(path: Any, fn: str) -> Any:
    """A file path is a ``str`` or an ``os.PathLike``; anything else (an int would be a
    file descriptor: ``load(0)`` would read and close stdin) is refused."""
    if isinstance(path, (str, os.PathLike)) and os.fspath(path) != "":
        return path
    raise SerializationError(
        f"{fn}: the path must be a str or an os.PathLike (pathlib.Path); found "
        f"{type(path).__name__} {path!r}.",
        hint=f'{fn}(net, "net.npz")' if fn == "save" else f'{fn}("net.npz")',
    )


def save(net: Layer, path: Any) -> None:
    """Write ``net`` (structure and arrays, initialised or not) to one ``.npz`` file at
    ``path`` (a str or an os.PathLike)."""
    path = _file_path(path, "save")
    arrays = _arrays(net)
    header = {"format": FORMAT, "version": VERSION, "net": to_config(net),
              "arrays": {k: list(a.shape) for k, a in arrays.items()}}
    blob = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as handle:
        np.savez(handle, __netgraph__=blob, **{f"array:{k}": a for k, a in arrays.items()})


MAX_NPY_HEADER = 2**16
MAX_INFLATION = 1000
"""A compressed member may inflate at most this many times (save() stores arrays as they
are; a higher ratio is a zip bomb)."""


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dtype: np.dtype,
                 shape: tuple[int, ...] | None, max_bytes: int, where: str) -> np.ndarray:
    """One ``.npy`` member, checked before its data is read: its declared size in the zip
    directory, its npy header (dtype, shape, no pickle) against what the record says
    (``shape``; None: any 1-D shape within ``max_bytes``)."""
    if info.file_size > max_bytes + MAX_NPY_HEADER:
        raise SerializationError(f"{where} is too large: the member declares {info.file_size:,} bytes; at most "
                                 f"{max_bytes + MAX_NPY_HEADER:,} are expected.")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_INFLATION * max(info.compress_size, 1):
        raise SerializationError(f"{where}: the member inflates {info.file_size:,} bytes from "
                                 f"{info.compress_size:,} (a zip bomb?).")
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise SerializationError(f"{where}: unsupported npy format version {version}.")
        found_shape, fortran, found_dtype = read_header(stream, max_header_size=MAX_NPY_HEADER)
        if found_dtype != dtype:
            raise SerializationError(f"{where} has dtype {found_dtype}; expected {dtype}.")
        if shape is not None and tuple(found_shape) != tuple(shape):
            raise SerializationError(f"{where} has shape {tuple(found_shape)}; the record says {tuple(shape)}.")
        if shape is None and len(found_shape) != 1:
            raise SerializationError(f"{where}: the structure record is malformed.")
        nbytes = math.prod(found_shape) * dtype.itemsize
        if nbytes > max_bytes:
            raise SerializationError(f"{where} is too large: its header declares {nbytes:,} bytes; "
                                     f"at most {max_bytes:,} are expected.")
        if info.file_size != stream.tell() + nbytes:
            raise SerializationError(f"{where} is damaged: the member holds "
                                     f"{info.file_size - stream.tell():,} data bytes; its header "
                                     f"declares {nbytes:,}.")
        data = stream.read(nbytes)
    if len(data) != nbytes:
        raise SerializationError(f"{where} is truncated.")
    return np.frombuffer(data, dtype).reshape(found_shape, order="F" if fortran else "C")


def _record_sizes(path: Any, arrays: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """Bytes each array of the record takes; a record declaring more than an array can hold
    is refused before anything is read."""
    sizes = {}
    for key, shape in arrays.items():
        count = math.prod(shape)
        if count > MAX_ARRAY_ELEMENTS:
            raise SerializationError(f'{path}: the record declares array "{key}" of shape {tuple(shape)} '
                                     f"({count:,} elements); at most {MAX_ARRAY_ELEMENTS:,} are supported.")
        sizes[key] = count * 4
    return sizes


def _read_file(path: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The validated record and the arrays of a saved net."""
    with zipfile.ZipFile(path) as archive:
        members = {}
        for info in archive.infolist():
            if not info.filename.endswith(".npy") or info.filename[:-4] in members:
                raise SerializationError(f"{path}: unexpected member {info.filename!r}.")
            members[info.filename[:-4]] = info
        if "__netgraph__" not in members:
            raise SerializationError(f"{path} is not a netgraph file (no structure record).")
        raw = _read_member(archive, members["__netgraph__"], np.dtype(np.uint8), None, MAX_JSON_BYTES,
                           f"{path}: the structure record")
        document = json.loads(raw.tobytes().decode())
        if _depth(document, MAX_DEPTH + 8) > MAX_DEPTH + 8:
            raise SerializationError(f"{path}: the structure is nested deeper than {MAX_DEPTH} levels.")
        try:
            header = FileHeader.model_validate(document)
        except pydantic.ValidationError as err:
            raise SerializationError(f"{path}: invalid structure record ({err.errors()[0]['msg']}).") from err
        if header.format != FORMAT or header.version != VERSION:
            raise SerializationError(
                f"{path}: format {header.format!r} version {header.version} is not supported "
                f"(this netgraph reads {FORMAT!r} version {VERSION})."
            )
        stored = {k[len("array:"):] for k in members if k.startswith("array:")}
        if stored != set(header.arrays) or len(members) != len(stored) + 1:
            raise SerializationError(f"{path}: the arrays stored do not match the structure record.")
        sizes = _record_sizes(path, header.arrays)
        arrays = {key: _read_member(archive, members[f"array:{key}"], np.dtype("<f4"), header.arrays[key],
                                    sizes[key], f'{path}: array "{key}"')
                  for key in header.arrays}
    return header, arrays


def load(path: Any) -> Layer:
    """Read a net written by :func:`save` from ``path`` (a str or an os.PathLike); a damaged
    or hostile file raises SerializationError (nothing in the file is executed, and the
    sizes its directory and record declare are checked before any data is read)."""
    path = _file_path(path, "load")
    try:
        header, arrays = _read_file(path)
    except SerializationError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, KeyError,
            RecursionError, AttributeError, TypeError, MemoryError, OverflowError) as err:
        # NumPy's own text may suggest unpickling; never pass that advice on
        raise SerializationError(
            f"{path} is truncated, damaged or not a netgraph file ({type(err).__name__})."
        ) from err
    net = _build(header.net, arrays)
    unused = set(arrays) - set(_arrays(net))
    if unused:
        raise SerializationError(f"{path}: arrays stored for no layer of the net: {sorted(unused)}.")
    return net


__all__ = ["from_config", "load", "save", "to_config"]
