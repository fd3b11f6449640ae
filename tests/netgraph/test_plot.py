"""plot(net, path): real SVG and PNG files of the example nets, and the layout's geometry."""
from __future__ import annotations

import importlib.util
import itertools
import pathlib
import struct
import xml.etree.ElementTree as ET

import pytest

import netgraph as ng
from netgraph.layers.tree import iter_layers
from netgraph.plot import Rect, Text, Wire, layout, plot, to_svg

# the example nets are built in test_information.py (tests are not a package: load by path)
_spec = importlib.util.spec_from_file_location(
    "_information_nets", pathlib.Path(__file__).with_name("test_information.py"))
_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_nets)
attention_model, nested_model, readme_graph = _nets.attention_model, _nets.nested_model, _nets.readme_graph

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [el.text or "" for el in root.iter(f"{SVG}text")]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def names_of(net) -> set[str]:
    return {path[-1] for path, _ in iter_layers(net)} | set(net.input_names) | set(net.output_names)


# ------------------------------------------------------------------------------- SVG
@pytest.mark.parametrize("make", [readme_graph, nested_model, attention_model])
def test_svg_file_parses_and_names_every_layer(make, tmp_path):
    net = make()
    target = tmp_path / "net.svg"
    assert plot(net, target) == str(target)
    texts = svg_texts(target.read_text(encoding="utf-8"))
    joined = "\n".join(texts)
    for name in names_of(net):
        assert name in joined, name
    assert any(net.describe() in t for t in texts)  # the title


def test_svg_marks_inputs_outputs_clusters_and_labels_edges():
    svg = to_svg(nested_model())
    root = ET.fromstring(svg)
    kinds = [el.get("class") for el in root.iter(f"{SVG}rect")]
    # graph ports of the net, of the encoder, of both maps' inner nets and of the head
    assert kinds.count("input") == 2 + 1 + 1 + 1 + 1
    assert kinds.count("output") == 1 + 1 + 1 + 1 + 1
    # clusters: encoder, proj (a map), gate (a map; its chain is drawn inside it), head
    assert kinds.count("cluster") == 4
    assert kinds.count("layer") == 11  # leaf layers, as Information's LayersCount
    labels = [el.text for el in root.iter(f"{SVG}text") if el.get("class") == "label"]
    assert "{Varying, 6}" in labels and "Input2 {16}" in labels and "{32}" in labels
    titles = {el.text for el in root.iter(f"{SVG}title")}
    assert "encoder/gate/Net/1: ElementwiseLayer[LogisticSigmoid]" in titles


def test_svg_draws_the_scoring_net_inside_the_attention_layer():
    scene = layout(attention_model())
    cluster = next(i for i in scene.items if isinstance(i, Rect) and i.kind == "cluster")
    assert cluster.title == "attention: AttentionLayer[NetGraph[4 layers]]"
    inner = [i for i in scene.items if isinstance(i, Rect) and i.kind == "layer"]
    assert {r.title.split(":")[0] for r in inner} == {
        "attention/ScoringNet/key", "attention/ScoringNet/query", "attention/ScoringNet/tanh",
        "attention/ScoringNet/score"}
    for r in inner:  # inside the cluster
        assert cluster.x < r.x and r.x + r.w < cluster.x + cluster.w
        assert cluster.y < r.y and r.y + r.h < cluster.y + cluster.h
    texts = [t.text for t in scene.items if isinstance(t, Text)]
    assert "ScoringNet: NetGraph[4 layers]" in texts


@pytest.mark.parametrize("make", [readme_graph, nested_model, attention_model])
def test_layout_geometry(make):
    """Boxes never overlap unless one holds the other; everything lies on the canvas;
    every edge ends on the top side of the box it enters."""
    scene = layout(make())
    rects = [i for i in scene.items if isinstance(i, Rect)]

    def inside(a, b):
        return b.x <= a.x and a.x + a.w <= b.x + b.w and b.y <= a.y and a.y + a.h <= b.y + b.h

    for a, b in itertools.combinations(rects, 2):
        apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
        assert apart or inside(a, b) or inside(b, a), (a.title, b.title)
    for item in scene.items:
        if isinstance(item, Rect):
            assert 0 <= item.x and item.x + item.w <= scene.width + 0.01
            assert 0 <= item.y and item.y + item.h <= scene.height + 0.01
        elif isinstance(item, Text):
            left = item.x - (len(item.text) * item.size * 0.602 / 2 if item.anchor == "middle" else 0)
            assert -0.01 <= left and left + len(item.text) * item.size * 0.602 <= scene.width + 0.01
        elif isinstance(item, Wire):
            x, y = item.points[-1]
            assert any(abs(r.y - y) < 0.01 and r.x <= x <= r.x + r.w for r in rects)
            assert all(b[1] >= a[1] - 0.01 for a, b in zip(item.points, item.points[1:]))  # downwards


def test_single_layers_and_operators_plot(tmp_path):
    for i, net in enumerate([
        ng.LinearLayer(3, Input=4),
        ng.NetMapOperator(ng.NetChain([ng.LinearLayer(16), "Tanh"]), Input=("Varying", 6)),
        ng.AttentionLayer("Dot", Key=("Varying", 5), Value=("Varying", 4), Query=5),
    ]):
        texts = "\n".join(svg_texts(to_svg(net)))
        assert net.describe() in texts
        plot(net, tmp_path / f"{i}.svg")


def test_plot_rejects_other_file_types(tmp_path):
    with pytest.raises(ng.SpecificationError, match=r"\.svg or \.png"):
        plot(readme_graph(), tmp_path / "net.pdf")


def test_a_long_chain_plots_quickly():
    chain = ng.NetChain([ng.LinearLayer(8) if i % 2 == 0 else "Tanh" for i in range(100)], Input=8)
    scene = layout(chain)
    assert sum(isinstance(i, Rect) and i.kind == "layer" for i in scene.items) == 100
    assert scene.width < 600 and scene.height > 100 * 50


# ------------------------------------------------------------------------------- PNG
@pytest.mark.parametrize("make", [nested_model, attention_model])
def test_png_file_decodes_with_a_sane_size(make, tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    net = make()
    target = tmp_path / "net.png"
    plot(net, target, scale=1.5)
    data = target.read_bytes()
    width, height = png_size(data)
    scene = layout(net)
    assert (width, height) == (pytest.approx(scene.width * 1.5, abs=1), pytest.approx(scene.height * 1.5, abs=1))
    assert 300 < width < 5000 and 300 < height < 10000
    with Image.open(target) as image:
        image.load()
        assert image.size == (width, height)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors and len(colors) > 20  # boxes, text and edges, not a blank page


def test_png_without_pillow_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)  # "import PIL" now fails
    with pytest.raises(ImportError, match="pip install pillow"):
        plot(readme_graph(), tmp_path / "net.png")
    assert not (tmp_path / "net.png").exists()
    plot(readme_graph(), tmp_path / "net.svg")  # SVG needs nothing
