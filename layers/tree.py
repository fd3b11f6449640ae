"""The one traversal of sub-nets: :func:`iter_layers` to visit, :func:`map_layers` to rebuild.

A layer's sub-nets are its ``children()`` (a graph's nodes, a map's "Net", an attention
layer's "ScoringNet"), addressed by name; a *path* is the tuple of names from the root.
Every walk over sub-nets in netgraph (params, initialisation, shared arrays, summaries,
information, drawing, surgery) is one of these two, so a new kind of container only has to
declare ``children`` / ``with_children`` (and ``is_container``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from .scope import Path

if TYPE_CHECKING:
    from .base import Layer


def child_name(children: Mapping[str, Any], ref: Any) -> str | None:
    """The sub-net a reference names: its name, or a 0-based index (negative from the end;
    an int that is itself a name, as a list's "0", "1", ..., names that one). None if none."""
    if isinstance(ref, str) and ref in children:
        return ref
    if isinstance(ref, int) and not isinstance(ref, bool):
        if str(ref) in children:
            return str(ref)
        names = list(children)
        if -len(names) <= ref < len(names):
            return names[ref]
    return None


def ordered_children(layer: "Layer") -> dict[str, "Layer"]:
    """A layer's sub-nets; a graph's nodes in topological order."""
    children = layer.children()
    order = getattr(layer, "order", None)
    if order is not None and set(order) == set(children):
        return {name: children[name] for name in order}
    return children


def iter_layers(net: "Layer", path: Path = (), *, include_root: bool = False
                ) -> Iterator[tuple[Path, "Layer"]]:
    """``(path, layer)`` for every layer below ``net`` (and ``net`` itself at ``path`` when
    ``include_root``), parents before their sub-nets."""
    if include_root:
        yield path, net
    for name, child in ordered_children(net).items():
        yield from iter_layers(child, path + (name,), include_root=True)


def map_layers(fn: Callable[[Path, "Layer"], "Layer"], net: "Layer", path: Path = ()) -> "Layer":
    """Rebuild ``net`` bottom-up: sub-nets are mapped first, then ``fn(path, layer)`` gets
    the layer holding its mapped sub-nets. Only what changed is rebuilt: a layer whose
    sub-nets and ``fn`` result are all the same objects comes back as itself."""
    children = net.children()
    mapped = {name: map_layers(fn, child, path + (name,)) for name, child in children.items()}
    changed = {name: child for name, child in mapped.items() if child is not children[name]}
    if changed:
        net = net.with_children(changed)
    return fn(path, net)


def leaf_layers(net: "Layer") -> dict[Path, "Layer"]:
    """Path -> layer for every layer that is not a pure container (``{(): net}`` when ``net``
    is one layer): counts go into containers and operators, as in Wolfram."""
    return {path: layer for path, layer in iter_layers(net, include_root=True)
            if not layer.is_container}
