"""Fidelity to Wolfram's documented behaviour and Keras's, and nothing silently wrong
(issue 13). One test (or a small group) per numbered item of the issue; the Keras numbers
themselves are in ``tests/parity/test_keras_fidelity.py``, the property-based checks in
``test_fuzz.py``."""
from __future__ import annotations

import io
import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from netgraph.keras import QueryMaskLayer

L = ng.LinearLayer


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------- 2. NetReplacePart at once
@pytest.mark.parametrize("order", ["layer first", "port first"])
def test_2_replace_part_is_simultaneous(order):
    chain = ng.NetChain({"a": L(4), "b": L(3)}, Input=2)
    items = [("b", L(5)), ("Output", 5)]
    replacements = dict(items if order == "layer first" else items[::-1])
    new = ng.NetReplacePart(chain, replacements)
    assert new.output_ports == {"Output": (5,)}
    assert ng.NetExtract(new, ("b", "size")) == 5
    # several edits inside one sub-net, and a size that does not fit, still fail clearly
    nested = ng.NetChain({"enc": ng.NetChain({"p": L(4), "q": L(3)}), "out": L(2)}, Input=2)
    both = ng.NetReplacePart(nested, {("enc", "q"): L(6), ("enc", "Output"): 6})
    assert ng.NetExtract(both, ("enc", "q", "size")) == 6
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetReplacePart(chain, {"b": L(5), "Output": 4})
    with pytest.raises(ng.PartSpecError):
        ng.NetReplacePart(chain, [("b", L(5))])


# ------------------------------------------------------------- 3. NetFlatten operators
def test_3_flatten_inside_a_map(rng):
    inner = ng.NetChain({"enc": ng.NetChain([L(3), "Tanh"]), "out": L(2)})
    net = ng.NetInitialize(ng.NetChain({"map": ng.NetMapOperator(inner)}, Input=(4, 2)), seed=0)
    flat = ng.NetFlatten(net)
    assert list(flat.nodes["map"].net.nodes) == ["enc/0", "enc/1", "out"]
    x = randn(rng, 4, 2)
    np.testing.assert_array_equal(flat(x), net(x))
    # an operator alone is flattened inside too; a flat one is returned as it is
    alone = ng.NetFlatten(ng.NetMapOperator(inner))
    assert list(alone.net.nodes) == ["enc/0", "enc/1", "out"]
    assert ng.NetFlatten(alone) is alone


# -------------------------------------------------------------------- 4. NetExtract
def test_4_extract_inferred_options_ports_and_lists():
    chain = ng.NetChain([L(), "Tanh"], Input=3, Output=2)
    assert ng.NetExtract(chain, (0, "size")) == 2  # inferred, not Automatic
    assert ng.NetExtract(ng.NetChain([L()]), (0, "size")) is ng.Automatic  # not inferred
    assert ng.NetExtract(chain, "Input") == (3,)
    assert ng.NetExtract(chain, (1, "Output")) == (2,)
    first, second = ng.NetExtract(chain, [0, (1, "function")])
    assert isinstance(first, ng.LinearLayer) and second == "Tanh"
    emb = ng.NetChain([ng.EmbeddingLayer()], Input=("Varying", ng.Restricted("Integer", 7)))
    emb = ng.NetReplacePart(emb, {"Output": ("Varying", 5)})
    assert ng.NetExtract(emb, [(0, "size"), (0, "n")]) == [5, 7]
    conv = ng.NetChain([ng.ConvolutionLayer(kernel=2, interleaving=True), L(1)], Input=(6, 3))
    conv = ng.NetReplacePart(conv, {(0, "Output"): (5, 4)})
    assert ng.NetExtract(conv, (0, "channels")) == 4
    for bad in ({"a": 1}, (0, 1.5), True):
        with pytest.raises(ng.PartSpecError):
            ng.NetExtract(chain, bad)


# ------------------------------------------------------------------- 5. Information
def test_5_information_sizes_sharing_input_form_and_full_graphic():
    w = ng.NetArray("w")
    net = ng.NetChain({"a": L(4, Weights=w, Biases=None), "b": L(4, Weights=w, Biases=None),
                       "out": ng.NetMapOperator(ng.NetChain({"inner": ng.NetChain([L(2)])}))}, Input=4)
    sizes = ng.Information(net, "ArraysSizes")
    assert sizes[("a", "Weights")] == "64 bytes" and sizes[("out", "Net", "inner", "0", "Biases")] == "8 bytes"
    assert ng.Information(net, "ArraysTotalSize") == "80 bytes"  # 16 shared + 2 + 2 floats
    assert ng.Information(net, "SharedArraysCount") == 1
    default = ng.Information(net)
    assert default["SharedArraysCount"] == 1 and "ArraysTotalSize" in default
    text = ng.Information(net, "InputForm")
    assert text.startswith("NetChain(") and "NetArray('w')" in text
    rebuilt = eval(text, vars(ng))  # noqa: S307 - our own text
    assert ng.to_config(rebuilt) == ng.to_config(net)
    full, top = ng.Information(net, "FullSummaryGraphic"), ng.Information(net, "SummaryGraphic")
    assert full.count('class="cluster"') > top.count('class="cluster"')
    assert ng.Information(ng.NetInitialize(ng.NetChain([L(3)], Input=2)), "ArraysTotalSize") == "36 bytes"


# ------------------------------------------------- 11. lengths keyed by port name
def test_11_lengths_by_port_name_and_unknown_keys(rng):
    net = ng.NetInitialize(ng.NetChain([ng.AggregationLayer("Mean", 0)], Input=("Varying", 2)))
    apply = ng.lower(net)
    x = randn(rng, 5, 2)
    padded = np.concatenate([x[:3], np.full((2, 2), 1e6, np.float32)])
    np.testing.assert_allclose(apply({}, padded, lengths={"Input": 3})["Output"], x[:3].mean(0), rtol=1e-6)
    symbol = net.port_types()["Input"].dims[0].symbol
    np.testing.assert_allclose(apply({}, padded, lengths={symbol: 3})["Output"], x[:3].mean(0), rtol=1e-6)
    for key in ("input", "Output", 0):
        with pytest.raises(ng.InputDataError, match="lengths"):
            apply({}, padded, lengths={key: 3})


# ----------------------------------------------------------- 12. net(x) inside jit
def test_12_net_call_inside_jit_and_grad(rng):
    net = ng.NetInitialize(L(2, Input=3), seed=0)
    x = randn(rng, 4, 3)
    np.testing.assert_allclose(jax.jit(lambda v: net(v))(x), net(x), rtol=1e-6)
    assert jax.grad(lambda v: net(v).sum())(x).shape == (4, 3)
    with pytest.raises(ng.InputDataError, match="seed"):
        jax.jit(lambda v: net(v, train=True))(x)


# ----------------------------------------------------------- 13. hints for newcomers
def test_13_hints():
    net = ng.NetInitialize(ng.NetChain([ng.AggregationLayer("Mean", 0)], Input=("Varying", 2)))
    ragged = np.empty(2, object)
    ragged[0], ragged[1] = np.ones((2, 2), np.float32), np.ones((3, 2), np.float32)
    with pytest.raises(ng.InputDataError, match="one per example"):
        net(ragged)
    with pytest.raises(ng.ShapeMismatchError, match="interleaving=True"):
        ng.NetChain([ng.ConvolutionLayer(4, 3)], Input=("Varying", 3))
    emb = ng.NetInitialize(ng.NetChain([ng.EmbeddingLayer(4, 10)], Input="Varying"))
    with pytest.raises(ng.InputDataError, match=r"astype\(np.int32\)"):
        emb(np.array([1.0, 2.0]))


# ------------------------------------------------------------------------ 14. summary
def test_14_summary_text_and_sharing_shown_once(capsys, tmp_path):
    w = ng.NetArray("emb")
    net = ng.NetInitialize(ng.NetChain({"a": L(4, Weights=w, Biases=None),
                                        "b": L(4, Weights=w, Biases=None)}, Input=4), seed=0)
    printed = net.summary()  # documented: the text (print(net) prints it)
    assert printed == str(net)
    assert net.summary(print_fn=print) is None
    assert capsys.readouterr().out.strip() == printed.strip()
    rows = {line.split()[0]: line.split()[-1] for line in printed.splitlines()[2:4]}
    assert rows == {"a": "16", "b": "0"}  # the shared array counts once, at its first user
    assert 'shared array "emb" {4, 4}: a/Weights, b/Weights' in printed
    collected = []
    net.summary(print_fn=collected.append)
    assert collected == [str(net)]
    with open(net.plot(tmp_path / "n.svg")) as handle:
        svg = handle.read()
    assert svg.count('Weights: shared "emb"') == 2


# ---------------------------------------------------------------- 15. fuzzer findings
def test_15_varying_automatic_port_takes_lists(rng):
    net = ng.NetChain(["Tanh", ng.AggregationLayer("Mean", 0)], Input=("Varying", ng.Automatic))
    xs = [randn(rng, n, 3) for n in (2, 5, 1, 0)]
    outs = net(xs)
    for x, out in zip(xs, outs):
        np.testing.assert_allclose(out, net(x), rtol=1e-6, atol=1e-7)


def test_15_automatic_length_is_as_varying(rng):
    conv = ng.ConvolutionLayer(2, 2, interleaving=True)
    auto = ng.NetInitialize(ng.NetChain([conv, ng.AggregationLayer("Mean", 0)], Input=(ng.Automatic, 3)), seed=0)
    varying = ng.NetInitialize(ng.NetChain([conv, ng.AggregationLayer("Mean", 0)], Input=("Varying", 3)), seed=0)
    for lengths in ((2,), (2, 6), (1,), (5, 0, 3)):
        xs = [randn(rng, n, 3) for n in lengths]
        for a, b in zip(auto(xs), varying(xs)):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_15_data_safety_paths(tmp_path):
    net = ng.NetInitialize(L(2, Input=3), seed=0)
    for bad in (True, 0, 1, None, b"net.npz", io.BytesIO()):
        with pytest.raises(ng.SerializationError, match="str or an os.PathLike"):
            ng.load(bad)
        with pytest.raises(ng.SerializationError, match="str or an os.PathLike"):
            ng.save(net, bad)
    ng.save(net, str(tmp_path / "ok.npz"))
    assert isinstance(ng.load(tmp_path / "ok.npz"), ng.LinearLayer)


def _member(name, array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return name, buffer.getvalue()


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def _record(arrays):
    header = {"format": "netgraph", "version": 1,
              "net": {"type": "LinearLayer", "options": {"size": 2}, "ports": {"Input": [3]}},
              "arrays": arrays}
    return np.frombuffer(json.dumps(header).encode(), np.uint8)


def test_15_data_safety_declared_sizes(tmp_path):
    from netgraph import serialize

    record = _member("__netgraph__.npy", _record({"Weights": [2, 3], "Biases": [2]}))
    # a small file whose member inflates far beyond what the record declares: refused
    # before it is read
    bomb = _zip(tmp_path / "bomb.npz", [record, _member("array:Weights.npy", np.zeros((2, 3), np.float32)),
                                        ("array:Biases.npy", b"\0" * (2**22))], zipfile.ZIP_DEFLATED)
    assert os.path.getsize(bomb) < 2**16
    with pytest.raises(ng.SerializationError, match="too large"):
        ng.load(bomb)
    # a header declaring 2**40 floats: a SerializationError, not a MemoryError
    huge = _record({"Weights": [2**20, 2**20], "Biases": [2]})
    path = _zip(tmp_path / "huge.npz", [_member("__netgraph__.npy", huge),
                                        _member("array:Weights.npy", np.zeros((2, 3), np.float32)),
                                        _member("array:Biases.npy", np.zeros(2, np.float32))])
    with pytest.raises(ng.SerializationError, match="elements"):
        ng.load(path)
    # the npy header of a member declaring more than the record: refused
    header = b"\x93NUMPY\x01\x00" + b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }".ljust(118) + b"\n"
    path = _zip(tmp_path / "npy.npz", [record, _member("array:Weights.npy", np.zeros((2, 3), np.float32)),
                                       ("array:Biases.npy", header + b"\0" * 8)])
    with pytest.raises(ng.SerializationError):
        ng.load(path)
    # "version": true is not version 1
    blob = json.loads(_record({}).tobytes())
    blob["version"] = True
    path = _zip(tmp_path / "v.npz", [_member("__netgraph__.npy", np.frombuffer(json.dumps(blob).encode(), np.uint8))])
    with pytest.raises(ng.SerializationError):
        ng.load(path)
    assert serialize.MAX_ARRAY_ELEMENTS < 2**40


def test_15_silently_accepted_inputs_are_refused(rng):
    net = ng.NetInitialize(L(2, Input=3), seed=0)
    with pytest.raises(ng.InputDataError, match="imaginary"):
        net(np.ones(3, np.complex64))
    with pytest.raises(ng.InputDataError, match="float32 range"):
        net(np.array([1e300, 0, 0]))
    net(np.ones(3))  # float64 within range is fine, also on the repeated-call path
    with pytest.raises(ng.InputDataError, match="float32 range"):
        net(np.array([0, -1e40, 0]))
    for size in (True, 2.0, -1, 10**12, (2, False)):
        with pytest.raises(ng.SpecificationError, match="size"):
            L(size)
    with pytest.raises(ng.SpecificationError):
        ng.ConvolutionLayer(2, True)
    assert L(np.int64(3)).options.size == 3
    f = ng.ElementwiseLayer(lambda x: x[:2], Input=3)
    with pytest.raises(ng.ShapeMismatchError, match="returns an array of shape"):
        f(np.ones(3, np.float32))
    g = ng.ThreadingLayer(lambda a, b: jnp.concatenate([a, b]), Input1=3, Input2=3)
    with pytest.raises(ng.ShapeMismatchError, match="returns an array of shape"):
        g({"Input1": np.ones(3, np.float32), "Input2": np.ones(3, np.float32)})


def _masked_conv_attention():
    return ng.NetInitialize(ng.NetGraph(
        {"conv": ng.ConvolutionLayer(4, 3, interleaving=True), "att": ng.AttentionLayer("Dot", key_mask=True)},
        [(ng.NetPort("X"), "conv", [ng.NetPort("att", "Key"), ng.NetPort("att", "Value")]),
         (ng.NetPort("Q"), ng.NetPort("att", "Query")), (ng.NetPort("M"), ng.NetPort("att", "KeyMask"))],
        X=("Varying", 3), Q=("Varying", 4)), seed=0)


def test_15_mask_for_a_produced_length(rng):
    net = _masked_conv_attention()
    xs, qs = [randn(rng, n, 3) for n in (6, 5, 3)], [randn(rng, 2, 4) for _ in range(3)]
    ms = [rng.integers(0, 2, n - 2).astype(bool) | (np.arange(n - 2) == 0) for n in (6, 5, 3)]
    outs = net({"X": xs, "Q": qs, "M": ms})
    for x, q, m, out in zip(xs, qs, ms, outs):
        np.testing.assert_allclose(out, net({"X": x, "Q": q, "M": m}), rtol=1e-5, atol=1e-6)
    with pytest.raises(ng.InputDataError, match="same length"):
        net({"X": xs[0], "Q": qs[0], "M": np.ones(5, bool)})
    with pytest.raises(ng.InputDataError, match="same length"):
        net({"X": xs[:1], "Q": qs[:1], "M": [np.ones(5, bool)]})


def test_15_strided_same_convolution_on_an_empty_example(rng):
    net = ng.NetInitialize(ng.NetChain([ng.ConvolutionLayer(2, 3, stride=2, padding="Same", interleaving=True)],
                                       Input=("Varying", 3)), seed=0)
    assert net(np.zeros((0, 3), np.float32)).shape == (0, 2)
    x = randn(rng, 5, 3)
    outs = net([np.zeros((0, 3), np.float32), x, np.zeros((0, 3), np.float32)])
    assert [o.shape for o in outs] == [(0, 2), (3, 2), (0, 2)]
    np.testing.assert_allclose(outs[1], net(x), rtol=1e-5, atol=1e-6)


def test_15_raw_tracebacks_on_bad_input_are_netgraph_errors(rng):
    net = ng.NetInitialize(L(2, Input=3), seed=0)
    x = np.ones(3, np.float32)
    cases = {
        "huge array": lambda: ng.NetInitialize(L(10**6, Input=10**6)),
        "seed str": lambda: ng.NetInitialize(net, seed="1"),
        "seed float": lambda: ng.NetInitialize(net, seed=1.0),
        "seed 2**64": lambda: ng.NetInitialize(net, seed=2**64),
        "call seed": lambda: net(x, train=True, seed=-1),
        "port spec array": lambda: L(2, Input=np.array([4, 5])),
        "with_params None": lambda: ng.with_params(net, None),
        "with_params shape": lambda: ng.with_params(net, {"Weights": np.ones((3, 3)), "Biases": np.ones(2)}),
        "extract dict": lambda: ng.NetExtract(ng.NetChain([L(2)]), {"a": 1}),
        "lower no params": lambda: ng.lower(net)({}, x),
        "lower uninitialised": lambda: ng.lower(L(2, Input=3))(ng.params_of(L(2, Input=3)), x),
        "unknown call option": lambda: net(x, foo=1),
        "user function fails": lambda: ng.ElementwiseLayer(lambda v: v.foo, Input=3)(x),
    }
    for name, case in cases.items():
        with pytest.raises(ng.NetGraphError):
            case()
    assert ng.NetInitialize(net, seed=np.int64(3)) is not None  # NumPy integers are ints
    with pytest.raises(ng.SpecificationError, match="failed on inputs"):
        jax.jit(lambda v: ng.ElementwiseLayer(lambda u: u.foo, Input=3)(v))(x)


# -------------------------------------------------------- 6, 9, 10: builder checks
def test_6_query_mask_layer_zeroes_rows_only():
    layer = QueryMaskLayer()
    out = layer({"Input": np.ones((3, 2), np.float32), "Mask": np.array([1, 0, 1])})
    np.testing.assert_array_equal(out, [[1, 1], [0, 0], [1, 1]])
    net = ng.keras.Attention(query_mask=True, return_attention_scores=True)
    assert "QueryMask" not in ng.NetExtract(net, "attention").input_names  # weights untouched


@pytest.mark.parametrize("kwargs, name", [
    (dict(value_dim=0), "value_dim"), (dict(output_shape=8.0), "output_shape"),
    (dict(output_shape=(4, -1)), "output_shape"), (dict(key_dim=2.5), "key_dim"),
    (dict(num_heads=True), "num_heads"), (dict(sliding_window=0), "sliding_window"),
    (dict(dropout=1.0), "dropout"), (dict(attention_mask="yes"), "attention_mask"),
    (dict(seed="x"), "seed"),
])
def test_9_bad_builder_arguments(kwargs, name):
    args = {"num_heads": 2, "key_dim": 3, **kwargs}
    with pytest.raises(ng.SpecificationError, match=name):
        ng.keras.MultiHeadAttention(**args)


def test_9_bad_single_head_arguments():
    with pytest.raises(ng.SpecificationError, match="positions"):
        ng.keras.Attention(positions=0)
    with pytest.raises(ng.SpecificationError, match="dropout"):
        ng.keras.AdditiveAttention(dropout="0.1")


def test_10_float_masks_and_a_mask_shared_by_the_batch(rng):
    net = ng.keras.MultiHeadAttention(2, 3, query_dim=4, use_key=False, attention_mask=True,
                                      value_mask=True)
    net = ng.NetInitialize(net.evolve(port_specs={"Value": ("Varying", 3)}), seed=0)
    q, v = randn(rng, 2, 5, 4), randn(rng, 2, 6, 3)
    mask = rng.integers(0, 2, (5, 6))
    mask[:, 0] = 1
    exact = net({"Query": q, "Value": v, "AttentionMask": np.broadcast_to(mask, (2, 5, 6)).astype(bool),
                 "ValueMask": np.ones((2, 6), bool)})
    for _ in range(2):  # the first call, then the repeated-call path
        floats = net({"Query": q, "Value": v, "AttentionMask": 0.5 * mask, "ValueMask": np.ones((2, 6))})
        np.testing.assert_array_equal(floats, exact)
    with pytest.raises(ng.InputDataError, match="is a mask"):
        net({"Query": q, "Value": v, "AttentionMask": mask.astype(complex), "ValueMask": np.ones((2, 6))})
