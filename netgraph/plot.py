"""Pictures of nets: ``plot(net, "net.svg")`` or ``plot(net, "net.png")``.

Every graph is drawn top to bottom in layers: the rows are networkx's topological
generations, with the graph's inputs (green) in the first row and its outputs (orange) in the
last. A layer is a box with its name, type and inferred shapes; an edge is labelled with the
shape it carries (and its ports, where a layer has several). A net inside a net (a nested
graph or chain, a NetMapOperator's "Net", an AttentionLayer's "ScoringNet") is a cluster: a
dashed box with its own inputs, outputs and layers inside.

Edges spanning several rows pass through narrow placeholder slots in the rows between, so they
never cross a box; the order inside a row comes from a few barycentre sweeps (fewer
crossings) and the horizontal positions from an isotonic fit that keeps boxes apart while
pulling each one under the layers that feed it.

The layout is computed once as a list of shapes (rectangles, text, polylines) and then
written as SVG (pure Python) or painted into a PNG with Pillow (``pip install pillow``,
imported only for PNG).
"""
from __future__ import annotations

import abc
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence
from xml.sax.saxutils import escape, quoteattr

import networkx as nx

from .layers.base import Layer
from .layers.scope import Path, show_path
from .layers.tree import leaf_layers, ordered_children
from .errors import SpecificationError

from .coders import port_coders
from .graph import NetGraph
from .summary import array_table, port_items, port_list, total

# ------------------------------------------------------------------------ geometry
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
CHAR = 0.602          # advance of a monospace character, in ems (DejaVu Sans Mono)
NAME_SIZE, BODY_SIZE, LABEL_SIZE, TITLE_SIZE = 12, 11, 10, 14
LINE = 15             # distance between text lines in a box
PAD = 8               # inside boxes and clusters
MARKER_H = 24         # height of a graph input / output marker
ROW_GAP = 46          # vertical room between rows (edge labels live there)
COL_GAP = 24          # horizontal room between boxes
SLOT_W = 8            # width of the slot a long edge takes in a row it crosses
SLOT_GAP = 6
MAX_CHARS = 46        # longest text line in a box
MARGIN = 16
ARROW = 7

COLORS = {
    "layer": ("#e8f0fb", "#4a6fa5"),
    "input": ("#dcf2dc", "#3c8c3c"),
    "output": ("#fde3cf", "#c0652b"),
    "edge": "#59616b",
    "label": "#4d5560",
    "text": "#1d232b",
    "muted": "#5a6270",
}
CLUSTER_FILLS = ("#f4f5f7", "#eef5ec", "#f8f1e7", "#f0ecf6", "#e9f3f5")
CLUSTER_STROKE = "#8a8f98"


def text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR


Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# -------------------------------------------------------------------------- shapes
@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str
    radius: float = 4
    dashed: bool = False
    kind: str = ""
    title: str = ""


@dataclass
class Text:
    x: float
    y: float  # baseline
    text: str
    size: float = BODY_SIZE
    bold: bool = False
    color: str = COLORS["text"]
    anchor: str = "start"  # or "middle"
    kind: str = ""


@dataclass
class Wire:
    points: list[tuple[float, float]]
    color: str = COLORS["edge"]


@dataclass
class Scene:
    """Everything to draw, in pixels (before any PNG scaling); painted in order."""

    width: float
    height: float
    items: list[Any] = field(default_factory=list)


# -------------------------------------------------------------------------- blocks
def shape_text(inference: Any, path: Path, port: str) -> str:
    """An inferred shape as drawn: ``{Varying, 6}``, ``scalar``, ``{5} of Integer in [0, 10)``."""
    try:
        return _shape(inference.port(path, port))
    except KeyError:
        return "?"


def _shape(port_type: Any) -> str:
    return str(port_type).replace('"', "")


def port_lines(layer: Layer, inference: Any, path: Path, width: int = MAX_CHARS) -> list[str]:
    """The shapes line(s) of a box: ``{4} -> {8}`` for plain Input -> Output layers, port
    names otherwise; two lines (``in:``, ``out:``) when one would be too long."""
    plain = tuple(layer.input_names) == ("Input",) and tuple(layer.output_names) == ("Output",)
    ins = port_items(inference, path, layer.input_names, show_names=not plain, shape=_shape)
    outs = port_items(inference, path, layer.output_names, show_names=not plain, shape=_shape)
    one = f"{port_list(ins, width)} → {port_list(outs, width)}"
    if len(one) <= width:
        return [one]
    return [f"in:  {port_list(ins, width - 5)}", f"out: {port_list(outs, width - 5)}"]


def _clip(text: str, width: int = MAX_CHARS) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Block(abc.ABC):
    """Something placed in a graph layout: a size, and where edges attach."""

    kind = "layer"
    w: float = 0.0
    h: float = 0.0
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def entry(self, port: str) -> float:
        """x offset (from the left side) where an edge into ``port`` ends."""
        return _spread(self.w, self.inputs, port)

    def exit(self, port: str) -> float:
        return _spread(self.w, self.outputs, port)

    @abc.abstractmethod
    def draw(self, scene: Scene, x: float, y: float) -> None:
        """Draw this block with its top-left corner at (x, y)."""


def _spread(width: float, ports: Sequence[str], port: str) -> float:
    if port not in ports or len(ports) < 2:
        return width / 2
    i = list(ports).index(port)
    margin = min(width * 0.2, 30.0)
    return margin + (width - 2 * margin) * i / (len(ports) - 1)


class LeafBlock(Block):
    """A layer: its name (bold), type and shapes."""

    def __init__(self, name: str, path: Path, layer: Layer, inference: Any) -> None:
        self.path, self.layer = path, layer
        self.inputs, self.outputs = tuple(layer.input_names), tuple(layer.output_names)
        self.lines = [(_clip(name), NAME_SIZE, True), (_clip(layer.describe()), BODY_SIZE, False)]
        self.lines += [(_clip(t), BODY_SIZE, False) for t in port_lines(layer, inference, path)]
        self.lines += [(_clip(f'{local}: shared "{name}"'), BODY_SIZE, False)  # tied arrays
                       for local, name in layer.shared.items()]
        self.w = max(90.0, max(text_width(t, s) for t, s, _ in self.lines) + 2 * PAD)
        self.h = len(self.lines) * LINE + 2 * PAD - 3

    def draw(self, scene: Scene, x: float, y: float) -> None:
        fill, stroke = COLORS["layer"]
        scene.items.append(Rect(x, y, self.w, self.h, fill, stroke, kind="layer",
                                title=f"{show_path(self.path)}: {self.layer.describe()}"))
        for i, (text, size, bold) in enumerate(self.lines):
            scene.items.append(Text(x + self.w / 2, y + PAD + (i + 1) * LINE - 4, text, size, bold,
                                    COLORS["text"] if i == 0 else COLORS["muted"], "middle",
                                    kind="name" if i == 0 else ""))


class MarkerBlock(Block):
    """A graph input or output port: a pill with its name and shape (and a second line
    naming its NetEncoder / NetDecoder, if it has one)."""

    def __init__(self, kind: str, name: str, shape: str, path: Path, coder: Any = None) -> None:
        self.kind, self.name, self.path = kind, name, path
        self.inputs = (name,) if kind == "output" else ()
        self.outputs = (name,) if kind == "input" else ()
        self.text = _clip(f"{name}  {shape}")
        self.note = _clip(coder.describe()) if coder is not None else ""
        self.w = max(60.0, *(text_width(t, BODY_SIZE) + 2 * PAD + 8 for t in (self.text, self.note)))
        self.h = MARKER_H + (LINE if self.note else 0)

    def draw(self, scene: Scene, x: float, y: float) -> None:
        fill, stroke = COLORS[self.kind]
        where = show_path(self.path) if self.path else "net"
        scene.items.append(Rect(x, y, self.w, self.h, fill, stroke, radius=self.h / 2,
                                kind=self.kind, title=f"{self.kind} {self.name} of {where}"))
        top = y + MARKER_H / 2 + BODY_SIZE * 0.35
        scene.items.append(Text(x + self.w / 2, top, self.text,
                                BODY_SIZE, False, COLORS["text"], "middle", kind=self.kind))
        if self.note:
            scene.items.append(Text(x + self.w / 2, top + LINE, self.note, BODY_SIZE, False,
                                    COLORS["muted"], "middle", kind=self.kind))


class SlotBlock(Block):
    """The slot a long edge takes in a row it crosses."""

    kind = "slot"

    def __init__(self) -> None:
        self.w, self.h = SLOT_W, 0.0

    def draw(self, scene: Scene, x: float, y: float) -> None:
        pass


class ClusterBlock(Block):
    """A net inside a net: a dashed box with a header and the inner graph laid out."""

    kind = "cluster"

    def __init__(self, name: str, path: Path, layer: Layer, inference: Any, depth: int,
                 levels: int | None = None) -> None:
        self.path, self.layer, self.depth = path, layer, depth
        self.inputs, self.outputs = tuple(layer.input_names), tuple(layer.output_names)
        view, caption = inner_view(layer, path, inference, depth + 1, levels)
        self.inner = GraphLayout(view)
        width = max(2 * MAX_CHARS, int(self.inner.w / (BODY_SIZE * CHAR)))
        self.lines = [(_clip(f"{name}  {layer.describe()}", width), NAME_SIZE, True)]
        self.lines += [(_clip(t, width), BODY_SIZE, False)
                       for t in port_lines(layer, inference, path, width)]
        if caption:
            self.lines.append((_clip(caption, width), BODY_SIZE, False))
        header = max(text_width(t, s) for t, s, _ in self.lines)
        self.w = max(header, self.inner.w) + 2 * PAD + 4
        self.header_h = len(self.lines) * LINE + PAD
        self.h = self.header_h + self.inner.h + 2 * PAD

    def draw(self, scene: Scene, x: float, y: float) -> None:
        fill = CLUSTER_FILLS[self.depth % len(CLUSTER_FILLS)]
        scene.items.append(Rect(x, y, self.w, self.h, fill, CLUSTER_STROKE, radius=6, dashed=True,
                                kind="cluster",
                                title=f"{show_path(self.path)}: {self.layer.describe()}"))
        for i, (text, size, bold) in enumerate(self.lines):
            scene.items.append(Text(x + PAD, y + PAD + (i + 1) * LINE - 4, text, size, bold,
                                    COLORS["text"] if i == 0 else COLORS["muted"],
                                    kind="name" if i == 0 else ""))
        self.inner.draw(scene, x + (self.w - self.inner.w) / 2, y + self.header_h + PAD)


def block_for(name: str, path: Path, layer: Layer, inference: Any, depth: int,
              levels: int | None = None) -> Block:
    """A cluster for a layer holding sub-nets (down to ``levels`` of nesting; None: all),
    else a box."""
    if layer.children() and (levels is None or depth < levels):
        return ClusterBlock(name, path, layer, inference, depth, levels)
    return LeafBlock(name, path, layer, inference)


# --------------------------------------------------------------------------- views
@dataclass
class Edge:
    src: Any
    src_port: str
    dst: Any
    dst_port: str
    label: str


@dataclass
class View:
    """One graph level: blocks by key (in a stable order) and the edges between them."""

    blocks: dict[Any, Block]
    edges: list[Edge]


def _label(src: Block, src_port: str, dst: Block, dst_port: str, shape: str) -> str:
    names = []
    if isinstance(src, (LeafBlock, ClusterBlock)) and len(src.outputs) > 1:
        names.append(src_port)
    if isinstance(dst, (LeafBlock, ClusterBlock)) and len(dst.inputs) > 1:
        names.append(dst_port)
    return f"{'→'.join(names)} {shape}".strip()


def graph_view(graph: Any, path: Path, inference: Any, depth: int, levels: int | None = None) -> View:
    """A NetGraph (or NetChain): its input markers, its layers, its output markers."""
    blocks: dict[Any, Block] = {}
    coders = port_coders(graph)
    for name in graph.input_names:
        blocks[("in", name)] = MarkerBlock("input", name, shape_text(inference, path, name), path,
                                           coders.get(name))
    for name in graph.order:
        layer = graph.nodes[name]
        blocks[("node", name)] = block_for(name, path + (name,), layer, inference, depth, levels)
    for name in graph.output_names:
        blocks[("out", name)] = MarkerBlock("output", name, shape_text(inference, path, name), path,
                                            coders.get(name))
    edges = []
    for dst, src in graph.edges.items():
        skey = ("in", src.port) if src.node is None else ("node", src.node)
        dkey = ("out", dst.port) if dst.node is None else ("node", dst.node)
        spath = path if src.node is None else path + (src.node,)
        label = _label(blocks[skey], src.port, blocks[dkey], dst.port,
                       shape_text(inference, spath, src.port))
        edges.append(Edge(skey, src.port, dkey, dst.port, label))
    order = {key: i for i, key in enumerate(blocks)}

    def by_destination(e: Edge) -> tuple[int, int]:
        ports = blocks[e.dst].inputs
        return order[e.dst], ports.index(e.dst_port) if e.dst_port in ports else 0

    edges.sort(key=by_destination)
    return View(blocks, edges)


def single_view(name: str, path: Path, layer: Layer, inference: Any, depth: int,
                view: View | None = None, levels: int | None = None) -> View:
    """One layer between markers for its ports (added to ``view`` when given)."""
    view = view or View({}, [])
    node = ("node", name)
    shapes = {port: shape_text(inference, path, port)
              for port in (*layer.input_names, *layer.output_names)}
    coders = port_coders(layer)
    for port in layer.input_names:
        view.blocks[("in", name, port)] = MarkerBlock("input", port, shapes[port], path, coders.get(port))
    view.blocks[node] = block = block_for(name, path, layer, inference, depth, levels)
    for port in layer.output_names:
        view.blocks[("out", name, port)] = MarkerBlock("output", port, shapes[port], path, coders.get(port))
    for port in layer.input_names:
        marker = ("in", name, port)
        label = _label(view.blocks[marker], port, block, port, shapes[port])
        view.edges.append(Edge(marker, port, node, port, label))
    for port in layer.output_names:
        marker = ("out", name, port)
        label = _label(block, port, view.blocks[marker], port, shapes[port])
        view.edges.append(Edge(node, port, marker, port, label))
    return view


def inner_view(layer: Layer, path: Path, inference: Any, depth: int,
               levels: int | None = None) -> tuple[View, str]:
    """What a cluster contains, and a caption naming the sub-net when it is not the layer."""
    if isinstance(layer, NetGraph):
        return graph_view(layer, path, inference, depth, levels), ""
    children = ordered_children(layer)
    if len(children) == 1:
        (name, child), = children.items()
        caption = f'{name}: {child.describe()}{layer.child_caption}'
        if isinstance(child, NetGraph):
            return graph_view(child, path + (name,), inference, depth, levels), caption
        return single_view(name, path + (name,), child, inference, depth, levels=levels), caption
    view = View({}, [])
    for name, child in children.items():
        single_view(name, path + (name,), child, inference, depth, view, levels)
    return view, ""


# -------------------------------------------------------------------------- layout
def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for t, w in zip(targets, weights):
        blocks.append([t, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for v, _, c in blocks:
        out += [v] * int(c)
    return out


class GraphLayout:
    """A view laid out in rows; positions are relative to the layout's top-left corner."""

    def __init__(self, view: View) -> None:
        self.view = view
        blocks = dict(view.blocks)
        g = nx.DiGraph()
        g.add_nodes_from(blocks)
        g.add_edges_from((e.src, e.dst) for e in view.edges)
        rank = {key: i for i, gen in enumerate(nx.topological_generations(g)) for key in gen}
        inner = [rank[k] for k in blocks if blocks[k].kind != "output"]
        last = max(inner, default=-1) + 1
        for key, block in blocks.items():
            if block.kind == "output":
                rank[key] = last
        n_rows = max(rank.values(), default=-1) + 1

        # long edges get a slot in every row they cross
        self.chains: list[list[Any]] = []
        for i, e in enumerate(view.edges):
            chain = [e.src]
            for r in range(rank[e.src] + 1, rank[e.dst]):
                slot = ("slot", i, r)
                blocks[slot], rank[slot] = SlotBlock(), r
                chain.append(slot)
            self.chains.append(chain + [e.dst])
        self.blocks, self.rank = blocks, rank
        preds: dict[Any, list[tuple[Any, int]]] = {k: [] for k in blocks}
        succs: dict[Any, list[tuple[Any, int]]] = {k: [] for k in blocks}
        for i, chain in enumerate(self.chains):
            for a, b in zip(chain, chain[1:]):
                preds[b].append((a, i))
                succs[a].append((b, i))
        rows: list[list[Any]] = [[] for _ in range(n_rows)]
        for key in blocks:
            rows[rank[key]].append(key)
        self.rows = self._order(rows, preds, succs)
        self.x = self._place(preds, succs)
        self._vertical()
        self._edges()

    # ---- order inside rows: barycentre sweeps
    def _order(self, rows: list[list[Any]], preds: dict, succs: dict) -> list[list[Any]]:
        def self_attach(key: Any, chain: int, outgoing: bool) -> float:
            w = self.blocks[key].w
            return self._attach(key, chain, outgoing) / w if w else 0.0

        for sweep in range(4):
            down = sweep % 2 == 0
            sequence = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
            for r in sequence:
                ref = rows[r - 1] if down else rows[r + 1]
                where = {k: i for i, k in enumerate(ref)}
                neighbours = preds if down else succs

                def bary(item: tuple[int, Any], down: bool = down) -> float:
                    i, key = item
                    # a neighbour's index, nudged by where on it the edge attaches
                    near = [where[n] + 0.9 * self_attach(n, c, down)
                            for n, c in neighbours[key] if n in where]
                    if near:
                        return sum(near) / len(near)
                    return float(i) * len(ref) / max(len(rows[r]), 1)

                ranked = sorted(enumerate(rows[r]), key=lambda it: (bary(it), it[0]))
                rows[r] = [k for _, k in ranked]
        return rows

    # ---- horizontal positions: isotonic fits towards the neighbours, sweeping
    def _attach(self, key: Any, chain: int, outgoing: bool) -> float:
        """x offset of the edge ``chain`` on block ``key`` (relative to its centre)."""
        block = self.blocks[key]
        e = self.view.edges[chain]
        if block.kind == "slot":
            return 0.0
        return (block.exit(e.src_port) if outgoing else block.entry(e.dst_port)) - block.w / 2

    def _place(self, preds: dict, succs: dict) -> dict[Any, float]:
        x: dict[Any, float] = {}
        for row in self.rows:
            cursor = 0.0
            for i, key in enumerate(row):
                if i:
                    cursor += self._sep(row[i - 1], key)
                x[key] = cursor
        for sweep in range(8):
            down = sweep % 2 == 0
            order = self.rows if down else self.rows[::-1]
            for row in order:
                targets, weights = [], []
                for key in row:
                    links = preds[key] if down else succs[key]
                    if links:
                        wanted = [x[n] + self._attach(n, c, down) - self._attach(key, c, not down)
                                  for n, c in links]
                        targets.append(sum(wanted) / len(wanted))
                        weights.append(1.0 if self.blocks[key].kind == "slot" else 2.0)
                    else:
                        targets.append(x[key])
                        weights.append(0.3)
                offsets = [0.0]
                for a, b in zip(row, row[1:]):
                    offsets.append(offsets[-1] + self._sep(a, b))
                fitted = _isotonic([t - o for t, o in zip(targets, offsets)], weights)
                for key, y, o in zip(row, fitted, offsets):
                    x[key] = y + o
        left = min((x[k] - self.blocks[k].w / 2 for k in x), default=0.0)
        return {k: v - left for k, v in x.items()}

    def _sep(self, a: Any, b: Any) -> float:
        ba, bb = self.blocks[a], self.blocks[b]
        gap = SLOT_GAP if "slot" in (ba.kind, bb.kind) else COL_GAP
        return ba.w / 2 + bb.w / 2 + gap

    # ---- vertical positions and size
    def _vertical(self) -> None:
        self.row_top, self.row_h = [], []
        y = 0.0
        for row in self.rows:
            h = max((self.blocks[k].h for k in row), default=0.0)
            self.row_top.append(y)
            self.row_h.append(h)
            y += h + ROW_GAP
        self.h = max(y - ROW_GAP, 0.0)
        self.w = max((self.x[k] + self.blocks[k].w / 2 for k in self.x), default=0.0)

    def top(self, key: Any) -> float:
        r = self.rank[key]
        return self.row_top[r] + (self.row_h[r] - self.blocks[key].h) / 2

    # ---- edges: routes and labels, then the final extent (labels included)
    def _edges(self) -> None:
        self.routes: list[list[tuple[float, float]]] = []
        self.labels: list[tuple[float, float, str]] = []
        placed: list[Box] = []
        for i, chain in enumerate(self.chains):
            points, (a, b) = self._route(i, chain)
            self.routes.append(points)
            text = self.view.edges[i].label
            if text:
                box = _place_label(a, b, text, placed)
                placed.append(box)
                self.labels.append((box[0], box[3] - 3, text))
        left = min([0.0, *(b[0] for b in placed)])
        right = max([self.w, *(b[2] for b in placed)])
        if left < 0:
            self.x = {k: v - left for k, v in self.x.items()}
            self.routes = [[(x - left, y) for x, y in r] for r in self.routes]
            self.labels = [(x - left, y, t) for x, y, t in self.labels]
        self.w = right - left

    # ---- drawing
    def draw(self, scene: Scene, ox: float, oy: float) -> None:
        for row in self.rows:
            for key in row:
                block = self.blocks[key]
                block.draw(scene, ox + self.x[key] - block.w / 2, oy + self.top(key))
        for points in self.routes:
            scene.items.append(Wire([(ox + x, oy + y) for x, y in points]))
        for x, y, text in self.labels:
            scene.items.append(Text(ox + x, oy + y, text, LABEL_SIZE, False, COLORS["label"],
                                    kind="label"))

    def _route(self, i: int, chain: list[Any]) -> tuple[list[tuple[float, float]], tuple]:
        src, dst = chain[0], chain[-1]
        e = self.view.edges[i]
        sx = self.x[src] - self.blocks[src].w / 2 + self.blocks[src].exit(e.src_port)
        tx = self.x[dst] - self.blocks[dst].w / 2 + self.blocks[dst].entry(e.dst_port)
        rs = self.rank[src]
        points = [(sx, self.top(src) + self.blocks[src].h), (sx, self.row_top[rs] + self.row_h[rs])]
        for slot in chain[1:-1]:
            r = self.rank[slot]
            x = self.x[slot]
            points += [(x, self.row_top[r]), (x, self.row_top[r] + self.row_h[r])]
        points += [(tx, self.row_top[self.rank[dst]]), (tx, self.top(dst))]
        gap = (points[-3], points[-2])  # between the last two rows: where the label goes
        deduped = [points[0]]
        for p in points[1:]:
            if abs(p[0] - deduped[-1][0]) > 0.01 or abs(p[1] - deduped[-1][1]) > 0.01:
                deduped.append(p)
        return deduped, gap


def _place_label(a: tuple[float, float], b: tuple[float, float], text: str,
                 placed: list[Box]) -> Box:
    """The box (x0, y0, x1, y1) for ``text`` beside the segment ``a``-``b`` (an edge in the
    gap above its destination's row), clear of the boxes in ``placed`` where possible."""
    (ax, ay), (bx, by) = a, b
    w, h = text_width(text, LABEL_SIZE), LABEL_SIZE + 2
    for t in (0.5, 0.3, 0.7, 0.15, 0.85):
        px, py = ax + (bx - ax) * t, ay + (by - ay) * t
        for side in (1, -1):
            x0 = px + 4 if side == 1 else px - 4 - w
            box = (x0, py - h + 3, x0 + w, py + 3)
            if not any(_overlap(box, other) for other in placed):
                return box
    px, py = ax + (bx - ax) * 0.5, ay + (by - ay) * 0.5
    return (px + 4, py - h + 3, px + 4 + w, py + 3)


# ---------------------------------------------------------------------------- scene
def layout(net: Layer, levels: int | None = None) -> Scene:
    """The picture of ``net`` as positioned shapes; nested nets are expanded down to
    ``levels`` of nesting (None: all; 1: the top level's sub-nets are single boxes)."""
    inference = net.inference
    if isinstance(net, NetGraph):
        view = graph_view(net, (), inference, 0, levels)
    else:
        view = single_view("net", (), net, inference, 0, levels=levels)
    body = GraphLayout(view)
    entries = array_table(net, inference)
    params = total(entries, "element_count")
    layers = len(leaf_layers(net))
    subtitle = (f"{layers} layer{'s' * (layers != 1)}, "
                f"{'?' if params is None else f'{params:,}'} parameters")
    missing = sum(e.array is None for e in entries)
    if missing:
        subtitle += f" ({missing} arrays uninitialized)"
    title = net.describe()
    head_h = TITLE_SIZE + LINE + 14
    width = max(body.w, text_width(title, TITLE_SIZE), text_width(subtitle, BODY_SIZE)) + 2 * MARGIN
    scene = Scene(width, body.h + head_h + 2 * MARGIN)
    scene.items.append(Text(MARGIN, MARGIN + TITLE_SIZE, title, TITLE_SIZE, True, kind="title"))
    scene.items.append(Text(MARGIN, MARGIN + TITLE_SIZE + LINE, subtitle, BODY_SIZE, False,
                            COLORS["muted"], kind="subtitle"))
    body.draw(scene, MARGIN + (width - 2 * MARGIN - body.w) / 2, MARGIN + head_h)
    return scene


# ------------------------------------------------------------------------------ SVG
def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _arrow_head(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    (ax, ay), (bx, by) = points[-2], points[-1]
    length = math.hypot(bx - ax, by - ay) or 1.0
    ux, uy = (bx - ax) / length, (by - ay) / length
    back = (bx - ux * ARROW, by - uy * ARROW)
    return [(bx, by), (back[0] - uy * ARROW * 0.45, back[1] + ux * ARROW * 0.45),
            (back[0] + uy * ARROW * 0.45, back[1] - ux * ARROW * 0.45)]


def scene_svg(scene: Scene) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(scene.width)}" '
        f'height="{_f(scene.height)}" viewBox="0 0 {_f(scene.width)} {_f(scene.height)}" '
        f'font-family={quoteattr(FONT_FAMILY)}>',
        f'<rect x="0" y="0" width="{_f(scene.width)}" height="{_f(scene.height)}" fill="#ffffff"/>',
    ]
    for item in scene.items:
        if isinstance(item, Rect):
            dash = ' stroke-dasharray="5 3"' if item.dashed else ""
            title = f"<title>{escape(item.title)}</title>" if item.title else ""
            out.append(
                f'<rect class="{item.kind}" x="{_f(item.x)}" y="{_f(item.y)}" width="{_f(item.w)}" '
                f'height="{_f(item.h)}" rx="{_f(item.radius)}" fill="{item.fill}" '
                f'stroke="{item.stroke}" stroke-width="1.2"{dash}>{title}</rect>'
            )
        elif isinstance(item, Text):
            anchor = ' text-anchor="middle"' if item.anchor == "middle" else ""
            weight = ' font-weight="bold"' if item.bold else ""
            cls = f' class="{item.kind}"' if item.kind else ""
            out.append(
                f'<text{cls} x="{_f(item.x)}" y="{_f(item.y)}" font-size="{_f(item.size)}" '
                f'fill="{item.color}"{anchor}{weight} xml:space="preserve">'
                f'{escape(item.text)}</text>'
            )
        elif isinstance(item, Wire):
            pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in item.points)
            head = " ".join(f"{_f(x)},{_f(y)}" for x, y in _arrow_head(item.points))
            out.append(f'<g class="edge"><polyline points="{pts}" fill="none" '
                       f'stroke="{item.color}" stroke-width="1.2"/>'
                       f'<polygon points="{head}" fill="{item.color}"/></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_svg(net: Layer, levels: int | None = None) -> str:
    """The picture of ``net`` as SVG text (``levels``: see :func:`layout`)."""
    return scene_svg(layout(net, levels))


# ------------------------------------------------------------------------------ PNG
_FONT_FILES = {  # monospace fonts Pillow can find by name (bold: True); else its own font
    False: ("DejaVuSansMono.ttf", "LiberationMono-Regular.ttf", "Menlo.ttc", "consola.ttf"),
    True: ("DejaVuSansMono-Bold.ttf", "LiberationMono-Bold.ttf", "Menlo.ttc", "consolab.ttf"),
}
MAX_PIXELS = 40_000_000


def _pillow() -> Any:
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as err:
        raise ImportError(
            "writing PNG pictures of nets needs Pillow: pip install pillow (or the netgraph "
            "'plot' extra: pip install 'netgraph[plot]'). SVG needs nothing: plot(net, 'net.svg')."
        ) from err
    return Image, ImageDraw, ImageFont


def _font_loader(ImageFont: Any) -> Any:
    """``font(size, bold) -> (font, monospace)``: a monospace TrueType font when one is
    found (the layout assumes one), else Pillow's own (narrower, so text still fits)."""
    cache: dict[tuple[int, bool], tuple[Any, bool]] = {}

    def font(size: float, bold: bool) -> tuple[Any, bool]:
        key = (max(int(round(size)), 1), bold)
        if key not in cache:
            for name in _FONT_FILES[bold]:
                try:
                    cache[key] = ImageFont.truetype(name, key[0]), True
                    break
                except OSError:
                    continue
            else:
                try:
                    cache[key] = ImageFont.load_default(size=key[0]), False
                except TypeError:  # Pillow < 10.1: a fixed bitmap font
                    cache[key] = ImageFont.load_default(), False
        return cache[key]

    return font


def _dashed(draw: Any, x0: float, y0: float, x1: float, y1: float, color: str, width: int,
            dash: float, gap: float) -> None:
    length = math.hypot(x1 - x0, y1 - y0)
    if not length:
        return
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    pos = 0.0
    while pos < length:
        end = min(pos + dash, length)
        segment = [(x0 + ux * pos, y0 + uy * pos), (x0 + ux * end, y0 + uy * end)]
        draw.line(segment, fill=color, width=width)
        pos = end + gap


def scene_png(scene: Scene, scale: float = 2.0) -> bytes:
    """Paint ``scene`` with Pillow; ``scale`` pixels per layout unit (reduced for huge nets)."""
    import io

    Image, ImageDraw, ImageFont = _pillow()
    pixels = scene.width * scene.height * scale * scale
    if pixels > MAX_PIXELS:
        scale *= math.sqrt(MAX_PIXELS / pixels)
    s = scale
    image = Image.new("RGB", (max(int(math.ceil(scene.width * s)), 1),
                              max(int(math.ceil(scene.height * s)), 1)), "#ffffff")
    draw = ImageDraw.Draw(image)
    font = _font_loader(ImageFont)
    line_w = max(int(round(1.2 * s)), 1)
    for item in scene.items:
        if isinstance(item, Rect):
            box = [item.x * s, item.y * s, (item.x + item.w) * s, (item.y + item.h) * s]
            radius = min(item.radius * s, (box[3] - box[1]) / 2, (box[2] - box[0]) / 2)
            if item.dashed:
                draw.rounded_rectangle(box, radius=radius, fill=item.fill)
                x0, y0, x1, y1 = box
                for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)),
                             ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
                    _dashed(draw, *a, *b, item.stroke, line_w, 5 * s, 3 * s)
            else:
                draw.rounded_rectangle(box, radius=radius, fill=item.fill, outline=item.stroke,
                                       width=line_w)
        elif isinstance(item, Text):
            f, monospace = font(item.size * s, item.bold)
            text = item.text
            if not monospace:  # Pillow's own font may lack these glyphs
                text = text.replace("→", "->").replace("…", "...")
            anchor = "ms" if item.anchor == "middle" else "ls"
            try:
                draw.text((item.x * s, item.y * s), text, font=f, fill=item.color, anchor=anchor)
            except ValueError:  # bitmap fonts take no anchor
                draw.text((item.x * s, (item.y - item.size) * s), text, font=f, fill=item.color)
        elif isinstance(item, Wire):
            pts = [(x * s, y * s) for x, y in item.points]
            draw.line(pts, fill=item.color, width=line_w, joint="curve")
            draw.polygon([(x * s, y * s) for x, y in _arrow_head(item.points)], fill=item.color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def to_png(net: Layer, scale: float = 2.0) -> bytes:
    """The picture of ``net`` as PNG bytes (needs Pillow)."""
    return scene_png(layout(net), scale)


# ------------------------------------------------------------------------------ API
def plot(net: Layer, path: str | os.PathLike, *, scale: float = 2.0) -> str:
    """Draw ``net`` into ``path``: ``.svg`` (pure Python) or ``.png`` (with Pillow, ``scale``
    pixels per unit). Returns the path written."""
    if not isinstance(net, Layer):
        raise SpecificationError(f"plot expects a layer or a net; found {type(net).__name__}.")
    target = os.fspath(path)
    suffix = os.path.splitext(target)[1].lower()
    if suffix == ".svg":
        data = to_svg(net).encode("utf-8")
    elif suffix == ".png":
        data = to_png(net, scale)
    else:
        raise SpecificationError(
            f"plot writes .svg or .png files; found {suffix or 'no extension'} in {target!r}.",
            hint='name the file "net.svg" or "net.png".',
        )
    with open(target, "wb") as handle:
        handle.write(data)
    return target


__all__ = ["layout", "plot", "scene_png", "scene_svg", "to_png", "to_svg"]
