"""Text display of layers and nets: every layer with its inferred port shapes."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .scope import Path, show_path

if TYPE_CHECKING:
    from .base import Layer


def _ports(layer: "Layer", inference: Any, path: Path, names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {inference.port(path, name)}")
        except KeyError:
            parts.append(f"{name} ?")
    return ", ".join(parts) or "-"


def array_count(layer: "Layer", inference: Any, path: Path) -> int | None:
    """Number of learnable elements of ``layer`` and its sub-nets (None if a shape is unknown)."""
    total = 0
    for name, child in layer.children().items():
        count = array_count(child, inference, path + (name,))
        if count is None:
            return None
        total += count
    for name in layer.array_specs():
        arr = layer.arrays.get(name)
        if arr is not None:
            total += arr.size
            continue
        dims = inference.array(path, name)
        if dims is None or not all(hasattr(d, "size") for d in dims):
            return None
        total += math.prod(d.size for d in dims)
    return total


def summary_lines(layer: "Layer", inference: Any, path: Path = (), depth: int = 0) -> list[str]:
    """One line per layer, nested nets indented, with inferred input -> output shapes."""
    lines = []
    for name, child in layer.children().items():
        cpath = path + (name,)
        count = array_count(child, inference, cpath)
        shown = "?" if count is None else str(count)
        label = f"{'  ' * depth}{name}"
        lines.append(
            f"{label:<14} {child.describe():<30} "
            f"{_ports(child, inference, cpath, child.input_names)}  ->  "
            f"{_ports(child, inference, cpath, child.output_names)}   params: {shown}"
        )
        lines += summary_lines(child, inference, cpath, depth + 1)
    return lines


def layer_repr(layer: "Layer") -> str:
    try:
        inference = layer.inference
    except Exception as err:  # a repr must never raise
        return f"{layer.describe()} (inference failed: {type(err).__name__})"
    head = (
        f"{layer.describe()}  {_ports(layer, inference, (), layer.input_names)}  ->  "
        f"{_ports(layer, inference, (), layer.output_names)}"
    )
    missing = [n for n, a in layer.arrays.items() if a is None]
    lines = [head]
    if missing:
        lines[0] += f"   (uninitialized: {', '.join(missing)})"
    lines += ["  " + line for line in summary_lines(layer, inference)]
    if layer.children():
        count = array_count(layer, inference, ())
        lines.append(f"  total params: {'?' if count is None else count}")
    return "\n".join(lines)


__all__ = ["array_count", "layer_repr", "show_path", "summary_lines"]
