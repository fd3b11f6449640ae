"""Property-based checks (hypothesis) that keep the fuzzer's classes of findings fixed
(issue 13, item 15):

* random valid nets (chains of maps, convolutions, elementwise functions, softmax and an
  aggregation over ``"Varying"``, ``("Varying", Automatic)``, ``Automatic``-length or fixed
  inputs): the inferred output shape == ``jax.eval_shape`` of the lowered function == the
  eager result's; a list of examples == each example alone; ``save``/``load`` gives the
  same structure and exactly the same outputs;
* random invalid inputs (data of any dtype, rank and size, bad option values, part specs,
  seeds, damaged files): only :class:`NetGraphError` subclasses, never another exception.

Few examples each (the suite runs on 2 cores; every new net compiles): the module stays
well under a minute.
"""
from __future__ import annotations

import io
import zipfile

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netgraph as ng

FAST = settings(max_examples=6, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CHEAP = settings(max_examples=30, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

CHANNELS = 3


# ------------------------------------------------------------------ random valid nets
@st.composite
def layers(draw):
    kind = draw(st.sampled_from(["map", "conv", "elementwise", "softmax"]))
    if kind == "map":
        return ng.NetMapOperator(ng.LinearLayer(draw(st.integers(1, 4))))
    if kind == "conv":
        return ng.ConvolutionLayer(draw(st.integers(1, 4)), draw(st.integers(1, 3)), padding="Same",
                                   stride=draw(st.sampled_from([1, 2])), interleaving=True)
    if kind == "elementwise":
        return ng.ElementwiseLayer(draw(st.sampled_from(["Tanh", "Ramp", "LogisticSigmoid", "Sin"])))
    return ng.SoftmaxLayer()


INPUTS = {"varying": ("Varying", CHANNELS), "varying automatic": ("Varying", ng.Automatic),
          "automatic length": (ng.Automatic, CHANNELS), "fixed": (4, CHANNELS)}


@st.composite
def nets(draw):
    body = draw(st.lists(layers(), min_size=1, max_size=3))
    if draw(st.booleans()):
        body.append(ng.AggregationLayer(draw(st.sampled_from(["Mean", "Total", "Max"])), 0))
    spec = draw(st.sampled_from(sorted(INPUTS)))
    net = ng.NetChain(body, Input=INPUTS[spec])
    if any(isinstance(layer, (ng.NetMapOperator, ng.ConvolutionLayer)) for layer in body) and spec == "varying automatic":
        net = ng.NetReplacePart(net, {"Input": ("Varying", CHANNELS)})  # arrays need the size
    return ng.NetInitialize(net, seed=draw(st.integers(0, 2**31))), spec


def _examples(rng, spec, lengths):
    if spec == "fixed":
        lengths = [4] * len(lengths)
    return [rng.standard_normal((n, CHANNELS)).astype(np.float32) for n in lengths]


@FAST
@given(case=nets(), lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 99))
def test_random_valid_nets(case, lengths, seed, tmp_path_factory):
    net, spec = case
    xs = _examples(np.random.default_rng(seed), spec, lengths)
    # inferred == jax.eval_shape == eager, on one example at its exact size
    fitted = net if spec not in ("varying automatic", "automatic length") else \
        ng.NetReplacePart(net, {"Input": ("Varying", CHANNELS)})
    inferred = fitted.output_ports["Output"]
    traced = jax.eval_shape(lambda x: ng.lower(fitted)(ng.params_of(fitted), x)["Output"], xs[0])
    eager = net(xs[0])
    assert traced.shape == eager.shape
    assert len(inferred) == eager.ndim
    assert all(d == n for d, n in zip(inferred, eager.shape) if isinstance(d, int))
    # a list == one by one
    alone = [net(x) for x in xs]
    together = net(xs)
    for a, b in zip(alone, together):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-6)
    # save / load: the same structure, exactly the same numbers
    path = tmp_path_factory.mktemp("fuzz") / "net.npz"
    ng.save(net, path)
    back = ng.load(path)
    assert ng.to_config(back) == ng.to_config(net)
    np.testing.assert_array_equal(back(xs[0]), eager)


# ------------------------------------------------------------- random invalid inputs
def _only_netgraph_errors(call):
    try:
        call()
    except ng.NetGraphError:
        pass


DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool", "complex64", "object", "U3"]


@st.composite
def data(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    values = draw(st.sampled_from([0.0, 1.0, -7.0, 1e300, float("nan"), float("inf")]))
    if dtype in ("object", "U3"):
        return np.full(shape, "x", dtype=dtype)
    with np.errstate(all="ignore"):
        return np.full(shape, values).astype(dtype)


@pytest.fixture(scope="module")
def target():
    return ng.NetInitialize(ng.NetChain([ng.EmbeddingLayer(3, 5), ng.NetMapOperator(ng.LinearLayer(2)),
                                         ng.AggregationLayer("Mean", 0)],
                                        Input=("Varying", ng.Restricted("Integer", 5))), seed=0)


@CHEAP
@given(value=st.one_of(data(), st.lists(data(), max_size=3), st.dictionaries(st.sampled_from(["Input", "X"]), data(), max_size=2),
                       st.none(), st.text(max_size=3), st.integers(), st.floats()))
def test_invalid_data_raises_only_netgraph_errors(target, value):
    _only_netgraph_errors(lambda: target(value))


ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**70), st.floats(allow_nan=True),
                st.text(max_size=4), st.lists(st.integers(-2, 5), max_size=3).map(tuple),
                st.just(np.array([4, 5])), st.just(np.int64(3)), st.just({"a": 1}), st.just(object()))


@CHEAP
@given(value=ANY)
def test_invalid_options_specs_and_seeds_raise_only_netgraph_errors(target, value):
    _only_netgraph_errors(lambda: ng.LinearLayer(value))
    _only_netgraph_errors(lambda: ng.LinearLayer(2, Input=value))
    _only_netgraph_errors(lambda: ng.ConvolutionLayer(2, value))
    _only_netgraph_errors(lambda: ng.NetExtract(target, value))
    _only_netgraph_errors(lambda: ng.NetReplacePart(target, value))
    _only_netgraph_errors(lambda: ng.NetInitialize(target, seed=value))
    _only_netgraph_errors(lambda: ng.with_params(target, value))
    _only_netgraph_errors(lambda: ng.keras.MultiHeadAttention(2, value))
    _only_netgraph_errors(lambda: ng.load(value) if not isinstance(value, str) else None)


@pytest.fixture(scope="module")
def saved(target, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "net.npz"
    ng.save(target, path)
    return path.read_bytes()


@CHEAP
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_damaged_files_raise_only_serialization_errors(saved, edits, cut, tmp_path_factory):
    blob = bytearray(saved)
    for position, value in edits:
        blob[position % len(blob)] = value
    if cut is not None:
        blob = blob[: cut % len(blob)]
    path = tmp_path_factory.mktemp("damaged") / "net.npz"
    path.write_bytes(bytes(blob))
    try:
        ng.load(path)
    except ng.SerializationError:
        pass


@CHEAP
@given(shape=st.lists(st.integers(0, 2**21), min_size=1, max_size=3), declared=st.booleans())
def test_hostile_array_headers_raise_only_serialization_errors(saved, shape, declared, tmp_path_factory):
    """A member whose npy header (and maybe the record) declares a huge array: refused from
    the declared sizes, before anything is allocated."""
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    name = next(n for n in members if n.startswith("array:"))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})
    members[name] = header.getvalue() + b"\0" * 64
    path = tmp_path_factory.mktemp("hostile") / "net.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for member, payload in members.items():
            archive.writestr(member, payload)
    try:
        ng.load(path)
    except ng.SerializationError:
        pass
