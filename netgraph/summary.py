"""The text summary of layers and nets, and the array tables behind it.

``summary(net)`` is the text summary (what ``repr`` shows for a net): every layer at every
depth with its path, type, inferred input and output shapes and parameter count, nested nets
indented under their parent (a graph's nodes, a map's "Net", an attention layer's
"ScoringNet"), then the totals. Example::

    NetGraph[4 layers]  A {4}, B {5}  ->  Output {2}
      path  type                    inputs              outputs     params
      a     LinearLayer[8]          Input {4}           Output {8}      40*
      b     LinearLayer[Automatic]  Input {5}           Output {8}      48*
      plus  ThreadingLayer[Plus]    Input1, Input2 {8}  Output {8}       0
      out   LinearLayer[2]          Input {8}           Output {2}      18*
      4 layers, 6 arrays (6 uninitialized), 106 parameters, 424 bytes
      * arrays not initialized yet (NetInitialize)

A ``*`` after a parameter count marks a layer (or a net holding one) whose arrays are not
initialised yet. Consecutive ports of one shape share it (``Input1, Input2 {8}``); cells too
wide for their column are cut (``+3 more`` ports, a path keeps its end).

The array table (:func:`array_table`) is shared with ``netgraph.information``
(``Information[net, prop]``) and the picture, so the summary and the properties count the same
way (leaf layers: :func:`netgraph.layers.tree.leaf_layers`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .layers.scope import Path, show_path
from .layers.tree import iter_layers, leaf_layers
from .shapes import Automatic
from .shapes.dims import Known

if TYPE_CHECKING:
    from .layers.base import Layer

DEFAULT_DTYPE = np.dtype(np.float32)
"""The dtype of every array netgraph creates (used for byte counts of missing arrays)."""


# ----------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class ArrayEntry:
    """One learnable array of a net.

    ``position`` is the array's part spec (layer path + array name), as in NetExtract.
    ``key`` identifies the storage: ``position``, or ("SharedArrays", name) for a shared
    array (NetArray), so every total below counts a shared array once.
    """

    position: Path
    layer_path: Path
    name: str
    array: np.ndarray | None
    dims: Any  # tuple of int / Automatic, or Automatic when even the rank is unknown
    key: Any

    @property
    def initialized(self) -> bool:
        return self.array is not None

    @property
    def element_count(self) -> int | None:
        if self.array is not None:
            return int(self.array.size)
        if not isinstance(self.dims, tuple) or any(d is Automatic for d in self.dims):
            return None
        return math.prod(self.dims)

    @property
    def byte_count(self) -> int | None:
        count = self.element_count
        if count is None:
            return None
        dtype = self.array.dtype if self.array is not None else DEFAULT_DTYPE
        return count * dtype.itemsize


def _array_dims(layer: "Layer", inference: Any, path: Path, name: str) -> Any:
    arr = layer.arrays.get(name)
    if arr is not None:
        return tuple(int(n) for n in arr.shape)
    dims = inference.array(path, name) if inference is not None else None
    if dims is None:
        return Automatic
    return tuple(d.size if isinstance(d, Known) else Automatic for d in dims)


def array_table(net: "Layer", inference: Any = None, path: Path = ()) -> list[ArrayEntry]:
    """Every learnable array of ``net`` at any depth, in display order. ``path``: where
    ``net`` sits in the net that ``inference`` describes (default: it is that net)."""
    if inference is None:
        inference = net.inference
    entries = []
    for path, layer in iter_layers(net, path, include_root=True):
        for name in layer.array_specs():
            entries.append(ArrayEntry(
                position=path + (name,), layer_path=path, name=name,
                array=layer.arrays.get(name), dims=_array_dims(layer, inference, path, name),
                key=("SharedArrays", layer.shared[name]) if name in getattr(layer, "shared", {})
                else path + (name,),
            ))
    return entries


def unique_arrays(entries: list[ArrayEntry]) -> list[ArrayEntry]:
    """One entry per storage key (shared arrays counted once)."""
    return list({e.key: e for e in entries}.values())


def total(entries: list[ArrayEntry], what: str) -> int | None:
    """Sum of ``element_count`` or ``byte_count`` over distinct arrays; None if one is unknown."""
    values = [getattr(e, what) for e in unique_arrays(entries)]
    return None if any(v is None for v in values) else sum(values)



def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in "..." when cut."""
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def clip_left(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters from the left (paths: keep the leaf name)."""
    return text if len(text) <= width else "..." + text[len(text) - width + 3:]


def port_list(items: list[str], width: int) -> str:
    """Comma-separated ``items`` within ``width``: as many whole items as fit, then
    ``+k more``; ``-`` when there are none."""
    if not items:
        return "-"
    joined = ", ".join(items)
    if len(joined) <= width:
        return joined
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = f", +{len(items) - i - 1} more" if i < len(items) - 1 else ""
        candidate = ", ".join(shown + [item]) + rest
        if len(candidate) > width:
            break
        shown.append(item)
    if not shown:
        more = f", +{len(items) - 1} more" if len(items) > 1 else ""
        return clip(items[0], width - len(more)) + more
    hidden = len(items) - len(shown)
    return ", ".join(shown) + (f", +{hidden} more" if hidden else "")


def port_items(inference: Any, path: Path, names: Sequence[str], *, show_names: bool = True,
               shape: Callable[[Any], str] = str) -> list[str]:
    """``Name {shape}`` per port; consecutive ports of one type share it
    (``Input1, Input2 {"Varying", 16}``; four or more: ``Input1..Input12 {4}``).
    ``shape`` spells a PortType; without names, the shapes alone."""
    items: list[tuple[list[str], str]] = []
    for name in names:
        try:
            shown = shape(inference.port(path, name))
        except KeyError:
            shown = "?"
        if items and items[-1][1] == shown:
            items[-1][0].append(name)
        else:
            items.append(([name], shown))
    if not show_names:
        return [shown for _, shown in items]
    return [f"{', '.join(group) if len(group) < 4 else f'{group[0]}..{group[-1]}'} {shown}"
            for group, shown in items]


def _ports(inference: Any, path: Path, names: tuple[str, ...], width: int = 10**6) -> str:
    return port_list(port_items(inference, path, names), width)


def byte_text(count: int) -> str:
    """``424 bytes``; ``5,904 bytes (5.9 kB)`` (decimal units, as Wolfram)."""
    text = f"{count:,} bytes"
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{text} ({count / size:.3g} {unit})"
    return text


# column caps (characters); longer cells are cut so that 100-layer nets stay readable
PATH_WIDTH, TYPE_WIDTH, INPUTS_WIDTH, OUTPUTS_WIDTH = 44, 36, 48, 40


def _rows(net: "Layer", inference: Any, entries: list[ArrayEntry]) -> list[tuple[str, ...]]:
    by_layer: dict[Path, list[ArrayEntry]] = {}
    for entry in entries:
        by_layer.setdefault(entry.layer_path, []).append(entry)
    rows = []
    counted: set = set()  # shared arrays already counted by a layer above in the table
    for path, layer in iter_layers(net):
        depth = len(path) - 1
        below = [e for p, es in by_layer.items() if p[: len(path)] == path for e in es]
        if not layer.children():  # a shared array counts at its first user only
            mine = [e for e in below if e.key == e.position or e.key not in counted]
            counted |= {e.key for e in below if e.key != e.position}
            below = mine
        count = total(below, "element_count")
        params = "?" if count is None else f"{count:,}"
        if any(not e.initialized for e in below):
            params += "*"
        rows.append((
            clip_left("  " * depth + show_path(path), PATH_WIDTH),
            clip(layer.describe(), TYPE_WIDTH),
            _ports(inference, path, layer.input_names, INPUTS_WIDTH),
            _ports(inference, path, layer.output_names, OUTPUTS_WIDTH),
            params,
        ))
    return rows


def summary_lines(layer: "Layer", inference: Any, path: Path = (), depth: int = 0) -> list[str]:
    """The table of :func:`summary`: a header row, then one aligned row per layer below
    ``layer`` (nested nets indented). ``path`` and ``depth`` are accepted for compatibility;
    ``layer`` must be the net ``inference`` describes."""
    entries = array_table(layer, inference)
    rows = _rows(layer, inference, entries)
    if not rows:
        return []
    header = ("path", "type", "inputs", "outputs", "params")
    marked = any(r[4].endswith("*") for r in rows)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    number_width = max(len(r[4].rstrip("*")) for r in [header, *rows])

    def line(row: tuple[str, ...]) -> str:
        # the count is right-aligned; a "*" mark hangs just after it
        count = row[4].rstrip("*")
        mark = "*" if row[4].endswith("*") else (" " if marked else "")
        cells = [cell.ljust(w) for cell, w in zip(row[:4], widths)]
        return "  ".join([*cells, count.rjust(number_width) + mark]).rstrip()

    return [line(header)] + [line(r) for r in rows]


def totals_line(net: "Layer", entries: list[ArrayEntry]) -> str:
    """``11 layers, 8 arrays (8 uninitialized), 1,476 parameters, 5,904 bytes (5.9 kB)``."""
    layers = len(leaf_layers(net))
    arrays = unique_arrays(entries)
    missing = sum(not e.initialized for e in arrays)
    params, nbytes = total(entries, "element_count"), total(entries, "byte_count")
    text = f"{layers} layer{'s' * (layers != 1)}, {len(arrays)} array{'s' * (len(arrays) != 1)}"
    if missing:
        text += f" ({missing} uninitialized)"
    text += f", {'?' if params is None else f'{params:,}'} parameter{'s' * (params != 1)}"
    text += f", {'? bytes' if nbytes is None else byte_text(nbytes)}"
    return text


def shared_lines(entries: list[ArrayEntry]) -> list[str]:
    """``shared array "emb" {10, 4}: a/Weights, b/Weights (counted once, at a)``."""
    users: dict[Any, list[ArrayEntry]] = {}
    for e in entries:
        if e.key != e.position:
            users.setdefault(e.key, []).append(e)
    lines = []
    for key, found in users.items():
        dims = found[0].dims
        shown = "{" + ", ".join(map(str, dims)) + "}" if isinstance(dims, tuple) else str(dims)
        lines.append(f'shared array "{key[1]}" {shown}: '
                     + ", ".join(show_path(e.position) for e in found)
                     + f" (counted once, at {show_path(found[0].layer_path)})")
    return lines


def _head(layer: "Layer", inference: Any) -> str:
    return (f"{layer.describe()}  {_ports(inference, (), layer.input_names)}  ->  "
            f"{_ports(inference, (), layer.output_names)}")


def coder_lines(layer: "Layer") -> list[str]:
    """``encoder  Input  NetEncoder["Tokens", 12 tokens]`` per coded port of ``layer``."""
    from .coders import NetEncoder, port_coders

    coders = port_coders(layer)
    width = max((len(n) for n in coders), default=0)
    return [f"{'encoder' if isinstance(c, NetEncoder) else 'decoder'}  {n.ljust(width)}  {c.describe()}"
            for n, c in coders.items()]


def summary(net: "Layer") -> str:
    """A text summary of ``net``: a head line (type and graph ports), one aligned row per
    layer at any depth (path, type, inferred input and output shapes, parameters; nested
    nets indented), and the totals (leaf layers, arrays, parameters, bytes). ``*`` marks
    parameters whose arrays are not initialised yet."""
    inference = net.inference
    entries = array_table(net, inference)
    lines = [_head(net, inference)] + ["  " + line for line in coder_lines(net)]
    table = summary_lines(net, inference)
    lines += ["  " + line for line in table]
    if not table:
        own = [e.name for e in entries if not e.initialized]
        if own:
            lines[0] += f"   (uninitialized: {', '.join(own)})"
    lines.append("  " + totals_line(net, entries))
    lines += ["  " + line for line in shared_lines(entries)]
    if table and any(not e.initialized for e in entries):
        lines.append("  * arrays not initialized yet (NetInitialize)")
    return "\n".join(lines)


def layer_repr(layer: "Layer") -> str:
    """``repr`` of a layer or net: one line for a single layer, the summary for a net."""
    try:
        inference = layer.inference
    except Exception as err:  # a repr must never raise
        return f"{layer.describe()} (inference failed: {type(err).__name__})"
    if not layer.children():
        missing = [n for n, a in layer.arrays.items() if a is None]
        head = _head(layer, inference) + (f"   (uninitialized: {', '.join(missing)})" if missing else "")
        return "\n".join([head] + ["  " + line for line in coder_lines(layer)])
    try:
        return summary(layer)
    except Exception as err:  # a repr must never raise
        return f"{_head(layer, inference)}   (summary failed: {type(err).__name__}: {err})"
