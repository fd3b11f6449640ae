"""Threaded evaluation: ``net({port: [example, ...]})`` on lists of examples of different lengths.

What is checked:

* **Equivalence** (hypothesis): for random lists of lengths that always include 0 and 1, every
  threaded result equals the net evaluated on that example alone (to 1e-6), for nets that use
  every sequence-aware layer (attention in all its forms, softmax, aggregation, summation,
  last element, convolution at the sequence edges, NetMapOperator, catenation of two
  independently varying inputs, a dot product over a varying axis, embeddings) and chains
  mixing them. An example with a zero length is compared with the result its layers document
  (zeros, or an empty array); evaluating it alone is checked separately. Varying outputs come
  back cut to each example's own lengths.
* single example / batch / list: what comes back;
* compilation bound: 1,000 random lengths in 1..512 compile at most ~10 shapes, and a second
  list of new lengths compiles nothing (``ng.compile_stats``);
* options: ``batch_size``, ``train`` + ``seed`` (dropout), ``target_device``, ``progress``;
* data errors name the example index and the port.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netgraph as ng
from netgraph.shapes import Varying

V = "Varying"
ATOL = RTOL = 1e-6


# ============================================================================ helpers
def all_array_paths(layer: Any, prefix: tuple = ()) -> list[tuple]:
    """Every array of ``layer`` at any depth, as a NetExtract path."""
    paths = [prefix + (name,) for name in layer.arrays]
    for name, child in layer.children().items():
        paths += all_array_paths(child, prefix + (name,))
    return paths


def randomized(net: Any, seed: int = 0) -> Any:
    """``net`` initialised, with EVERY array (biases included) replaced by random values, so
    that no zero bias hides a mistake at a sequence edge."""
    net = ng.NetInitialize(net, seed=seed)
    rng = np.random.default_rng(seed + 1)
    new = {}
    for path in all_array_paths(net):
        old = ng.NetExtract(net, path)
        new[path] = (0.5 * rng.standard_normal(old.shape)).astype(np.float32)
    return ng.NetReplacePart(net, new)


def as_dict(net: Any, result: Any) -> dict[str, np.ndarray]:
    if isinstance(result, dict):
        assert set(result) == set(net.output_names)
        return {k: np.asarray(v) for k, v in result.items()}
    assert len(net.output_names) == 1, f"one array returned for ports {net.output_names}"
    return {net.output_names[0]: np.asarray(result)}


def assert_same(actual: Any, expected: Any, what: str, atol: float = ATOL, rtol: float = RTOL) -> None:
    assert set(actual) == set(expected), f"{what}: ports {sorted(actual)} != {sorted(expected)}"
    for port in expected:
        a, e = np.asarray(actual[port]), np.asarray(expected[port])
        assert a.shape == e.shape, f"{what}, port {port!r}: shape {a.shape} != expected {e.shape}"
        assert a.dtype == e.dtype, f"{what}, port {port!r}: dtype {a.dtype} != expected {e.dtype}"
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=f"{what}, port {port!r}")


def symbol_lengths(net: Any, example: dict[str, np.ndarray]) -> dict[str, int]:
    """The length of every varying symbol of the input ports, read off one example."""
    found: dict[str, int] = {}
    for name in net.input_names:
        for axis, dim in enumerate(net.inference.port((), name).dims):
            if isinstance(dim, Varying):
                found.setdefault(dim.symbol, example[name].shape[axis])
    return found


def check_cut_to_length(net: Any, example: dict, result: dict[str, np.ndarray], what: str) -> None:
    """Every output axis carrying an input's varying symbol is exactly that example's length;
    fixed axes have their fixed size."""
    lengths = symbol_lengths(net, example)
    for name in net.output_names:
        dims = net.inference.port((), name).dims
        assert result[name].ndim == len(dims), f"{what}: port {name!r} rank {result[name].shape}"
        for axis, dim in enumerate(dims):
            size = result[name].shape[axis]
            if isinstance(dim, Varying):
                if dim.symbol in lengths:
                    assert size == lengths[dim.symbol], (
                        f"{what}: output {name!r} axis {axis} has {size} rows; the example's "
                        f"length is {lengths[dim.symbol]}"
                    )
            else:
                assert size == dim.size, f"{what}: output {name!r} shape {result[name].shape}"


def stacked(examples: list[dict]) -> dict[str, list]:
    return {k: [e[k] for e in examples] for k in examples[0]}


# ============================================================================ the nets
@dataclass(frozen=True)
class Port:
    symbol: int                  # which of the case's independent lengths this port's first axis has
    trailing: tuple[int, ...]    # the fixed dims after it
    index: int | None = None     # integer data in [0, index); None: real data


@dataclass(frozen=True)
class Case:
    """A net for the equivalence test.

    ``empty(example, lengths, net)``: the documented result of an example with some zero
    length (it is never evaluated alone in the property test); None: the case is only run
    with lengths >= 1."""

    name: str
    build: Callable[[], Any]
    ports: dict[str, Port]
    empty: Callable[[dict, tuple, Any], dict] | None
    symbols: int = 1


def zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


def additive_scorer(hidden: int = 5) -> Any:
    """Bahdanau scoring, a sub-graph: s = w . tanh(Wk k + Wq q)."""
    return ng.NetGraph(
        {"key": ng.LinearLayer(hidden, Biases=None), "query": ng.LinearLayer(hidden, Biases=None),
         "tanh": ng.ThreadingLayer(lambda a, b: jnp.tanh(a + b)),
         "score": ng.LinearLayer((), Biases=None)},
        [(ng.NetPort("Input"), "key"), (ng.NetPort("Query"), "query"), (["key", "query"], "tanh", "score")])


def attention_empty(heads: int, value: int, weights: bool) -> Callable:
    """Keys of length 0: every query sees nothing, so zero outputs and weights; queries of
    length 0: empty outputs."""
    h = (heads,) if heads else ()

    def empty(example: dict, lengths: tuple, net: Any) -> dict:
        nk, nq = lengths
        out = {"Output": zeros(nq, *h, value)}
        if weights:
            out["AttentionWeights"] = zeros(nq, *h, nk)
        return out

    return empty


def self_attention(size: int, heads: int, d: int, **attention: Any) -> Any:
    """Multi-head self-attention, Wolfram style (see examples/self_attention.py)."""
    return ng.NetGraph(
        {"query": ng.NetMapOperator(ng.LinearLayer((heads, d))),
         "key": ng.NetMapOperator(ng.LinearLayer((heads, d))),
         "value": ng.NetMapOperator(ng.LinearLayer((heads, d))),
         "attention": ng.AttentionLayer("Dot", multi_head=True, **attention),
         "merge": ng.NetMapOperator(ng.LinearLayer(size))},
        [("query", ng.NetPort("attention", "Query")), ("key", ng.NetPort("attention", "Key")),
         ("value", ng.NetPort("attention", "Value")), ("attention", "merge")],
        Input=(V, size))


def conv(channels: int, kernel: int, **options: Any) -> Any:
    return ng.ConvolutionLayer(channels, kernel, **options)


def conv_output_length(n: int, kernel: int, stride: int = 1, dilation: int = 1, pad: Any = "Same") -> int:
    if pad == "Same":
        return -(-n // stride)
    span = dilation * (kernel - 1) + 1
    return max((n + pad[0] + pad[1] - span) // stride + 1, 0)


def conv_empty(channels: int, kernel: int, stride: int = 1, dilation: int = 1, pad: Any = "Same",
               path: tuple = ("0", "Biases")) -> Callable:
    """A length-0 input is all zero padding: each output position is the bias."""
    def empty(example: dict, lengths: tuple, net: Any) -> dict:
        n = conv_output_length(0, kernel, stride, dilation, pad)
        bias = ng.NetExtract(net, path)
        return {"Output": np.broadcast_to(bias, (n, channels)).astype(np.float32).copy()}

    return empty


def catenate_graph(tail: list) -> Any:
    return ng.NetGraph({"cat": ng.CatenateLayer(0), "tail": ng.NetChain(tail)},
                       [([ng.NetPort("A"), ng.NetPort("B")], "cat", "tail")], A=(V, 2), B=(V, 2))


def catenate_empty(out: tuple) -> Callable:
    """Either part may be empty: the result is the tail of the joined true parts."""
    def empty(example: dict, lengths: tuple, net: Any) -> dict:
        joined = np.concatenate([example["A"], example["B"]])
        if len(joined) == 0:
            return {"Output": zeros(*out)}
        return as_dict(net, ng.NetExtract(net, "tail")(joined))

    return empty


def dot_graph() -> Any:
    """A (n x 2) transposed, dotted with B (n x 3): the contraction runs over the varying n."""
    return ng.NetGraph({"t": ng.TransposeLayer(), "dot": ng.DotLayer()},
                       [(ng.NetPort("A"), "t", ng.NetPort("dot", "Input1")),
                        (ng.NetPort("B"), ng.NetPort("dot", "Input2"))],
                       A=(V, 2), B=(V, 3))


def keras_cross_attention() -> Any:
    mha = ng.keras.MultiHeadAttention(num_heads=2, key_dim=2, query_dim=3, use_key=False)
    return ng.NetGraph({"mha": mha},
                       [(ng.NetPort("Query"), ng.NetPort("mha", "Query")),
                        (ng.NetPort("Value"), ng.NetPort("mha", "Value"))],
                       Query=(V, 3), Value=(V, 4))


def keras_empty(example: dict, lengths: tuple, net: Any) -> dict:
    """No values: every head's attention output is zero, so each query row is the output
    projection's bias."""
    bias = ng.NetExtract(net, ("mha", "output", "Net", "Biases"))
    return {"Output": np.broadcast_to(bias, (lengths[1], 3)).astype(np.float32).copy()}


def fixed(result: dict) -> Callable:
    return lambda example, lengths, net: {k: np.array(v, np.float32) for k, v in result.items()}


def varying_empty(*trailing: int) -> Callable:
    return lambda example, lengths, net: {"Output": zeros(0, *trailing)}


KV = {"Key": Port(0, (3,)), "Value": Port(0, (2,)), "Query": Port(1, (3,))}

CASES = [
    # ---------------------------------------------------------------- attention
    Case("attention_dot", lambda: ng.AttentionLayer("Dot", Key=(V, 3), Value=(V, 2), Query=(V, 3)),
         KV, attention_empty(0, 2, False), symbols=2),
    Case("attention_dot_weights_dimensionsqrt",
         lambda: ng.AttentionLayer("Dot", score_rescaling="DimensionSqrt", attention_weights=True,
                                   Key=(V, 3), Value=(V, 2), Query=(V, 3)),
         KV, attention_empty(0, 2, True), symbols=2),
    Case("attention_bilinear_lengthsqrt",
         lambda: ng.AttentionLayer("Bilinear", score_rescaling="LengthSqrt", attention_weights=True,
                                   Key=(V, 3), Value=(V, 2), Query=(V, 4)),
         {"Key": Port(0, (3,)), "Value": Port(0, (2,)), "Query": Port(1, (4,))},
         attention_empty(0, 2, True), symbols=2),
    Case("attention_additive_subgraph",
         lambda: ng.AttentionLayer(additive_scorer(), attention_weights=True,
                                   Key=(V, 3), Value=(V, 2), Query=(V, 4)),
         {"Key": Port(0, (3,)), "Value": Port(0, (2,)), "Query": Port(1, (4,))},
         attention_empty(0, 2, True), symbols=2),
    Case("attention_additive_causal_lengthsqrt",
         lambda: ng.AttentionLayer(additive_scorer(), mask="TopLeftCausal", score_rescaling="LengthSqrt",
                                   Key=(V, 3), Value=(V, 2), Query=(V, 4)),
         {"Key": Port(0, (3,)), "Value": Port(0, (2,)), "Query": Port(1, (4,))},
         attention_empty(0, 2, False), symbols=2),
    Case("attention_multihead_causal_lengthsqrt",
         lambda: ng.AttentionLayer("Dot", multi_head=True, mask="TopLeftCausal", score_rescaling="LengthSqrt",
                                   attention_weights=True, Key=(V, 2, 3), Value=(V, 2, 2), Query=(V, 2, 3)),
         {"Key": Port(0, (2, 3)), "Value": Port(0, (2, 2)), "Query": Port(1, (2, 3))},
         attention_empty(2, 2, True), symbols=2),
    Case("attention_bilinear_causal_window_keymask",
         lambda: ng.AttentionLayer("Bilinear", mask=("TopLeftCausal", 2), key_mask=True, multi_head=True,
                                   score_rescaling="DimensionSqrt", Key=(V, 2, 3), Value=(V, 2, 2),
                                   Query=(V, 2, 4)),
         {"Key": Port(0, (2, 3)), "Value": Port(0, (2, 2)), "Query": Port(1, (2, 4)),
          "KeyMask": Port(0, (), index=2)},
         attention_empty(2, 2, False), symbols=2),
    Case("self_attention_causal", lambda: self_attention(4, 2, 2, mask="Causal", score_rescaling="LengthSqrt"),
         {"Input": Port(0, (4,))}, varying_empty(4)),
    Case("keras_mha_cross", keras_cross_attention,
         {"Query": Port(1, (3,)), "Value": Port(0, (4,))}, keras_empty, symbols=2),
    # ------------------------------------------------------- softmax, aggregation
    Case("softmax_varying_level",
         lambda: ng.NetChain([ng.NetMapOperator(ng.LinearLayer(3)), ng.SoftmaxLayer(0)], Input=(V, 2)),
         {"Input": Port(0, (2,))}, varying_empty(3)),
    Case("softmax_varying_level_rank3", lambda: ng.NetChain([ng.SoftmaxLayer(0)], Input=(V, 2, 3)),
         {"Input": Port(0, (2, 3))}, varying_empty(2, 3)),
    *[Case(f"aggregation_{f.lower()}",
           lambda f=f: ng.NetChain([ng.AggregationLayer(f, (0, 2))], Input=(V, 3, 2)),
           {"Input": Port(0, (3, 2))}, fixed({"Output": np.zeros(3)}))
      for f in ("Mean", "Max", "Min", "Total")],
    Case("summation", lambda: ng.NetChain([ng.NetMapOperator(ng.LinearLayer(3)), ng.SummationLayer()],
                                          Input=(V, 2)),
         {"Input": Port(0, (2,))}, fixed({"Output": 0.0})),
    Case("sequence_last", lambda: ng.NetChain([ng.NetMapOperator(ng.LinearLayer(3)), ng.SequenceLastLayer()],
                                              Input=(V, 2)),
         {"Input": Port(0, (2,))}, fixed({"Output": np.zeros(3)})),
    # ----------------------------------------------------------------- convolution
    Case("conv_same_stride1", lambda: ng.NetChain([conv(3, 3, padding="Same", interleaving=True)], Input=(V, 2)),
         {"Input": Port(0, (2,))}, varying_empty(3)),
    Case("conv_same_stride2_even_kernel",
         lambda: ng.NetChain([conv(3, 4, stride=2, padding="Same", interleaving=True)], Input=(V, 2)),
         {"Input": Port(0, (2,))}, varying_empty(3)),
    Case("conv_explicit_padding",
         lambda: ng.NetChain([conv(3, 3, padding=2, interleaving=True)], Input=(V, 2)),
         {"Input": Port(0, (2,))}, conv_empty(3, 3, pad=(2, 2))),
    Case("conv_dilation_stride2_asymmetric_padding",
         lambda: ng.NetChain([conv(3, 3, dilation=2, stride=2, padding=((2, 1),), interleaving=True)],
                             Input=(V, 2)),
         {"Input": Port(0, (2,))}, conv_empty(3, 3, 2, 2, (2, 1))),
    Case("conv_channels_first_same_stride2",
         lambda: ng.NetChain([ng.TransposeLayer(), conv(3, 3, stride=2, padding="Same"), ng.TransposeLayer()],
                             Input=(V, 2)),
         {"Input": Port(0, (2,))}, varying_empty(3)),
    Case("conv_channels_first_dilated_padding",
         lambda: ng.NetChain([ng.TransposeLayer(), conv(3, 2, dilation=2, padding=1), ng.TransposeLayer()],
                             Input=(V, 2)),
         {"Input": Port(0, (2,))}, varying_empty(3)),
    Case("conv_2d_interleaved_same",
         lambda: ng.NetChain([conv(2, (3, 2), padding="Same", interleaving=True)], Input=(V, 3, 2)),
         {"Input": Port(0, (3, 2))}, varying_empty(3, 2)),
    # ------------------------------------------------------- map, catenate, dot, embed
    Case("netmap_chain",
         lambda: ng.NetChain([ng.NetMapOperator(ng.NetChain([ng.LinearLayer(4), "Tanh", ng.LinearLayer(2)]))],
                             Input=(V, 3)),
         {"Input": Port(0, (3,))}, varying_empty(2)),
    Case("catenate_conv_softmax",
         lambda: catenate_graph([conv(2, 3, padding="Same", interleaving=True), ng.SoftmaxLayer(0)]),
         {"A": Port(0, (2,)), "B": Port(1, (2,))}, catenate_empty((0, 2)), symbols=2),
    Case("catenate_last",
         lambda: catenate_graph([ng.NetMapOperator(ng.LinearLayer(3)), ng.SequenceLastLayer()]),
         {"A": Port(0, (2,)), "B": Port(1, (2,))}, catenate_empty((3,)), symbols=2),
    Case("dot_over_varying_axis", dot_graph, {"A": Port(0, (2,)), "B": Port(0, (3,))},
         fixed({"Output": np.zeros((2, 3))})),
    Case("embedding_conv_mean",
         lambda: ng.NetChain([ng.EmbeddingLayer(4, 7), conv(3, 3, padding="Same", interleaving=True),
                              ng.AggregationLayer("Mean", 0)], Input=(V,)),
         {"Input": Port(0, (), index=7)}, fixed({"Output": np.zeros(3)})),
    # ------------------------------------------------------------------ chains
    Case("chain_embed_attention_conv_softmax_last",
         lambda: ng.NetChain([ng.EmbeddingLayer(4, 9), ng.NetMapOperator(ng.LinearLayer(4)),
                              self_attention(4, 2, 2, mask="Causal", score_rescaling="LengthSqrt"),
                              conv(4, 3, stride=2, padding="Same", interleaving=True), "Tanh",
                              ng.SoftmaxLayer(0), ng.SequenceLastLayer()], Input=(V,)),
         {"Input": Port(0, (), index=9)}, fixed({"Output": np.zeros(4)})),
    Case("chain_attention_catenate_max",
         lambda: ng.NetGraph(
             {"att": ng.AttentionLayer("Bilinear", score_rescaling="LengthSqrt"),
              "cat": ng.CatenateLayer(0), "conv": conv(2, 3, padding=1, interleaving=True),
              "max": ng.AggregationLayer("Max", 0)},
             [(ng.NetPort("Query"), ng.NetPort("att", "Query")), (ng.NetPort("Key"), ng.NetPort("att", "Key")),
              (ng.NetPort("Value"), ng.NetPort("att", "Value")),
              (["att", ng.NetPort("Value")], "cat", "conv", "max")],
             Key=(V, 3), Value=(V, 2), Query=(V, 3)),
         KV, None, symbols=2),
]
CASE_BY_NAME = {c.name: c for c in CASES}
assert len(CASE_BY_NAME) == len(CASES)


@functools.lru_cache(maxsize=None)
def built(name: str) -> Any:
    return randomized(CASE_BY_NAME[name].build())


def make_example(case: Case, lengths: tuple, rng: np.random.Generator) -> dict[str, np.ndarray]:
    example = {}
    for port, spec in case.ports.items():
        shape = (lengths[spec.symbol], *spec.trailing)
        if spec.index is None:
            example[port] = rng.standard_normal(shape).astype(np.float32)
        else:
            example[port] = rng.integers(0, spec.index, shape).astype(np.int32)
    return example


# Lengths come from small pools (bucket edges and their neighbours), so that evaluating each
# example alone compiles a bounded number of shapes; lists always hold 0 and 1 in every length.
POOLS = {1: [(0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17)],
         2: [(0, 1, 2, 4, 5, 9, 17), (0, 1, 3, 8)]}


@st.composite
def length_lists(draw: Any, symbols: int) -> list[tuple]:
    pools = POOLS[symbols]
    drawn = draw(st.lists(st.tuples(*(st.sampled_from(p) for p in pools)), min_size=0, max_size=5))
    forced = []
    for s in range(symbols):
        for value in (0, 1):
            others = draw(st.tuples(*(st.sampled_from(p) for p in pools)))
            forced.append(tuple(value if i == s else o for i, o in enumerate(others)))
    return draw(st.permutations(drawn + forced))


def expected_result(case: Case, net: Any, example: dict, lengths: tuple) -> dict:
    if min(lengths) == 0:
        assert case.empty is not None, f"{case.name} is not run with zero lengths"
        return case.empty(example, lengths, net)
    return as_dict(net, net(example))


def check_equivalence(case: Case, lengths_list: list[tuple], seed: int, batch_size: int) -> None:
    net = built(case.name)
    rng = np.random.default_rng(seed)
    examples = [make_example(case, lengths, rng) for lengths in lengths_list]
    results = net(stacked(examples), batch_size=batch_size)
    assert isinstance(results, list) and len(results) == len(examples)
    for i, (example, lengths, result) in enumerate(zip(examples, lengths_list, results)):
        what = f"{case.name}: example #{i} with lengths {lengths}"
        result = as_dict(net, result)
        check_cut_to_length(net, example, result, what)
        assert_same(result, expected_result(case, net, example, lengths), what)


PROPERTY_CASES = [c for c in CASES if c.empty is not None]


@pytest.mark.parametrize("case", PROPERTY_CASES, ids=lambda c: c.name)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_threaded_equals_one_by_one(case: Case, data: Any) -> None:
    lengths_list = data.draw(length_lists(case.symbols), label="lengths")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    batch_size = data.draw(st.sampled_from([4, 32]), label="batch_size")
    check_equivalence(case, lengths_list, seed, batch_size)


def test_attention_then_catenate_with_its_own_value() -> None:
    """Attention output (query length) joined with the Value (key length), then a padded
    convolution (it makes a new length) and a Max over it; no example has a zero length."""
    case = CASE_BY_NAME["chain_attention_catenate_max"]
    rng = np.random.default_rng(3)
    lengths = [(int(a), int(b)) for a, b in rng.integers(2, 12, (3, 2))] + [(1, 1), (1, 7), (9, 1)]
    check_equivalence(case, lengths, seed=4, batch_size=4)


def test_catenate_joins_true_parts() -> None:
    """Catenating two independently varying inputs equals the tail net on the joined arrays."""
    net = built("catenate_conv_softmax")
    tail = ng.NetExtract(net, "tail")
    rng = np.random.default_rng(5)
    examples = [{"A": rng.standard_normal((a, 2)).astype(np.float32),
                 "B": rng.standard_normal((b, 2)).astype(np.float32)}
                for a, b in [(3, 5), (1, 0), (0, 4), (7, 1), (2, 2), (16, 9), (5, 17)]]
    for i, (example, result) in enumerate(zip(examples, net(stacked(examples), batch_size=4))):
        joined = np.concatenate([example["A"], example["B"]])
        assert result.shape == (len(joined), 2)
        assert_same({"Output": result}, {"Output": tail(joined)}, f"example #{i}")


# ---------------------------------------------------------------- zero lengths alone
ZERO_ALONE = ["attention_dot", "attention_multihead_causal_lengthsqrt", "softmax_varying_level",
              "aggregation_max", "aggregation_min", "aggregation_mean", "summation", "sequence_last",
              "conv_same_stride1", "conv_explicit_padding", "netmap_chain", "dot_over_varying_axis",
              "embedding_conv_mean", "self_attention_causal"]


@pytest.mark.parametrize("name", ZERO_ALONE)
def test_zero_length_example_alone(name: str) -> None:
    """An example with a zero length, evaluated on its own (an array, not a list), gives the
    documented result that threading gives (or, at the very least, an InputDataError; a raw
    JAX/NumPy error is a bug)."""
    case = CASE_BY_NAME[name]
    net = built(name)
    lengths = (0,) + (2,) * (case.symbols - 1)
    example = make_example(case, lengths, np.random.default_rng(0))
    expected = case.empty(example, lengths, net)
    assert_same(as_dict(net, net(stacked([example]))[0]), expected, "threaded")
    try:
        alone = net(example)
    except ng.InputDataError:
        return
    assert_same(as_dict(net, alone), expected, "evaluated alone")


# ================================================================ single / batch / list
@pytest.fixture(scope="module")
def seq_net() -> Any:
    return randomized(ng.NetChain([ng.NetMapOperator(ng.LinearLayer(3)), ng.SoftmaxLayer(0)], Input=(V, 2)))


def test_single_example_batch_and_list(seq_net: Any) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2)).astype(np.float32)
    one = seq_net(x)
    assert isinstance(one, np.ndarray) and one.shape == (5, 3)
    batch = seq_net(np.stack([x, x[::-1]]))
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 5, 3)
    assert_same({"o": batch[0]}, {"o": one}, "batch row 0")
    listed = seq_net([x])
    assert isinstance(listed, list) and len(listed) == 1
    assert_same({"o": listed[0]}, {"o": one}, "a list of one example")
    assert seq_net([]) == []
    as_tuple = seq_net((x, x[:2]))
    assert [r.shape for r in as_tuple] == [(5, 3), (2, 3)]


def test_single_example_as_nested_python_lists() -> None:
    """A single example written as nested Python lists (each element one rank lower than the
    port) is one example, as it was before threading; it cannot be a list of examples."""
    vec = ng.NetInitialize(ng.LinearLayer(3, Input=2), seed=0)
    x = np.array([1.0, 2.0], np.float32)
    np.testing.assert_allclose(vec([1.0, 2.0]), vec(x), rtol=1e-6)
    seq = ng.NetInitialize(ng.NetChain([ng.NetMapOperator(ng.LinearLayer(3))], Input=(V, 2)), seed=0)
    m = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    np.testing.assert_allclose(seq(m), seq(np.array(m, np.float32)), rtol=1e-6)


def test_list_through_a_net_without_varying_ports() -> None:
    """Fixed-size examples in a list: each result equals the example evaluated alone."""
    net = randomized(ng.NetChain([ng.LinearLayer(3), "Tanh"], Input=2))
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal(2).astype(np.float32) for _ in range(7)]
    results = net(xs, batch_size=3)
    for i, (x, r) in enumerate(zip(xs, results)):
        assert_same({"o": r}, {"o": net(x)}, f"example #{i}")


def test_list_through_a_net_with_an_undeclared_length() -> None:
    """A sequence net whose length is left Automatic (its input port is (Automatic, 2)) takes
    one example of any length; a list of examples of different lengths must work too (the
    length differs between examples, so it varies)."""
    net = randomized(ng.NetChain([ng.NetMapOperator(ng.LinearLayer(3, Input=2)), "Tanh"]))
    assert net.input_ports == {"Input": (ng.Automatic, 2)}
    rng = np.random.default_rng(9)
    xs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (2, 5, 1, 5)]
    results = net(xs)
    assert [r.shape for r in results] == [(2, 3), (5, 3), (1, 3), (5, 3)]
    for i, (x, r) in enumerate(zip(xs, results)):
        assert_same({"o": r}, {"o": net(x)}, f"example #{i}")


def test_multi_port_dict_of_lists_returns_list_of_dicts() -> None:
    net = built("attention_additive_subgraph")
    rng = np.random.default_rng(1)
    examples = [make_example(CASE_BY_NAME["attention_additive_subgraph"], (k, q), rng)
                for k, q in [(3, 2), (5, 1), (2, 4)]]
    results = net(stacked(examples))
    assert all(isinstance(r, dict) and set(r) == {"Output", "AttentionWeights"} for r in results)
    assert [r["AttentionWeights"].shape for r in results] == [(2, 3), (1, 5), (4, 2)]
    assert [r["Output"].shape for r in results] == [(2, 2), (1, 2), (4, 2)]
    for r in results:
        np.testing.assert_allclose(r["AttentionWeights"].sum(-1), 1.0, rtol=1e-5)


# ==================================================================== compilations
def small_self_attention(size: int = 4) -> Any:
    return randomized(ng.NetGraph(
        {"query": ng.NetMapOperator(ng.LinearLayer(size)), "key": ng.NetMapOperator(ng.LinearLayer(size)),
         "value": ng.NetMapOperator(ng.LinearLayer(size)),
         "attention": ng.AttentionLayer("Dot", score_rescaling="DimensionSqrt")},
        [("query", ng.NetPort("attention", "Query")), ("key", ng.NetPort("attention", "Key")),
         ("value", ng.NetPort("attention", "Value"))],
        Input=(V, size)))


def test_compilations_are_bounded_and_reused() -> None:
    net = small_self_attention()
    rng = np.random.default_rng(0)
    first = [rng.standard_normal((n, 4)).astype(np.float32) for n in rng.integers(1, 513, 1000)]
    results = net(first)
    compiled = ng.compile_stats(net)["compilations"]
    assert 1 <= compiled <= 11, f"1,000 lengths in 1..512 compiled {compiled} shapes"
    assert [r.shape for r in results] == [x.shape for x in first]
    second = [rng.standard_normal((n, 4)).astype(np.float32) for n in rng.integers(1, 513, 1000)]
    again = net(second)
    assert ng.compile_stats(net)["compilations"] == compiled, "new lengths compiled new shapes"
    assert [r.shape for r in again] == [x.shape for x in second]
    for i in (0, 1, 500, 999):  # spot checks against one-by-one evaluation (after counting)
        np.testing.assert_allclose(again[i], net(second[i]), atol=1e-5, rtol=1e-5)


def test_compile_stats_counts_calls(seq_net: Any) -> None:
    before = ng.compile_stats(seq_net)
    xs = [np.ones((n, 2), np.float32) for n in (3, 3, 3, 3, 3)]
    seq_net(xs, batch_size=2)
    after = ng.compile_stats(seq_net)
    assert after["calls"] - before["calls"] == 3  # batches of 2, 2, 1


# ========================================================================== options
def lists_of(rng: np.random.Generator, lengths: Any, width: int) -> list[np.ndarray]:
    return [rng.standard_normal((int(n), width)).astype(np.float32) for n in lengths]


def test_batch_size_does_not_change_results() -> None:
    net = built("chain_embed_attention_conv_softmax_last")
    rng = np.random.default_rng(2)
    xs = [rng.integers(0, 9, n).astype(np.int32) for n in rng.integers(0, 12, 11)]
    reference = net(xs, batch_size=1)
    for batch_size in (3, 32):
        for i, (a, b) in enumerate(zip(net(xs, batch_size=batch_size), reference)):
            assert_same({"o": a}, {"o": b}, f"batch_size={batch_size}, example #{i}")


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_bad_batch_size(seq_net: Any, bad: Any) -> None:
    with pytest.raises(ng.InputDataError, match="batch_size"):
        seq_net([np.ones((2, 2), np.float32)], batch_size=bad)


def self_attention_with_dropout() -> Any:
    return randomized(ng.NetGraph(
        {"proj": ng.NetMapOperator(ng.LinearLayer(4)), "drop": ng.DropoutLayer(0.5),
         "attention": ng.AttentionLayer("Dot", dropout=0.3)},
        [("proj", "drop"), ("drop", ng.NetPort("attention", "Query")),
         ("drop", ng.NetPort("attention", "Key")), ("drop", ng.NetPort("attention", "Value"))],
        Input=(V, 3)))


def test_train_mode_seed_reproducible() -> None:
    net = self_attention_with_dropout()
    rng = np.random.default_rng(3)
    xs = lists_of(rng, [3, 1, 4, 3, 1, 4, 3, 1, 4], 3)
    a = net(xs, train=True, seed=7, batch_size=4)
    b = net(xs, train=True, seed=7, batch_size=4)
    c = net(xs, train=True, seed=8, batch_size=4)
    evaluation = net(xs, batch_size=4)
    for i in range(len(xs)):
        np.testing.assert_array_equal(a[i], b[i], err_msg=f"same seed, example #{i}")
        assert a[i].shape == xs[i].shape[:1] + (4,)
    assert any(not np.allclose(x, y) for x, y in zip(a, c)), "another seed gave the same dropout"
    assert any(not np.allclose(x, y) for x, y in zip(a, evaluation)), "train=True changed nothing"
    for i, x in enumerate(xs):  # evaluation mode: no dropout, equal to one-by-one
        np.testing.assert_allclose(evaluation[i], net(x), atol=ATOL, rtol=RTOL)


def seeded_attention_dropout() -> Any:
    return randomized(ng.AttentionLayer("Dot", dropout=0.5, seed=1, Key=(V, 4), Value=(V, 4), Query=(V, 4)))


@pytest.mark.parametrize("how", ["call_seed", "layer_seed"])
def test_train_mode_examples_get_independent_dropout(how: str) -> None:
    """Identical examples must not share a dropout mask, also when they fall into different
    batches (rows at the same position in two batches): with a call seed (a DropoutLayer,
    ``seed=0``), and with a layer seed (AttentionLayer(dropout=0.5, seed=1), no call seed)."""
    if how == "call_seed":
        net = randomized(ng.NetChain([ng.DropoutLayer(0.5)], Input=(V, 16)))
        x = np.ones((4, 16), np.float32)
        results = net([x] * 8, train=True, seed=0, batch_size=4)
    else:
        net = seeded_attention_dropout()
        x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
        results = net({"Key": [x] * 8, "Value": [x] * 8, "Query": [x] * 8}, train=True, batch_size=4)
    same = sorted({tuple(j for j in range(8) if np.array_equal(results[i], results[j])) for i in range(8)})
    assert all(len(group) == 1 for group in same), f"examples with identical dropout: {same}"


def test_train_mode_without_seed_is_random() -> None:
    net = randomized(ng.NetChain([ng.DropoutLayer(0.5)], Input=(V, 16)))
    xs = [np.ones((4, 16), np.float32)] * 2
    a, b = net(xs, train=True), net(xs, train=True)
    assert not np.array_equal(a[0], b[0])


def test_target_device_cpu(seq_net: Any) -> None:
    rng = np.random.default_rng(4)
    xs = lists_of(rng, [3, 1, 7, 2], 2)
    default = seq_net(xs)
    for target in ("CPU", ("CPU", 1), ("CPU", "All"), jax.devices("cpu")[:1]):
        for i, (a, b) in enumerate(zip(seq_net(xs, target_device=target), default)):
            assert_same({"o": a}, {"o": b}, f"target_device={target!r}, example #{i}")
    np.testing.assert_allclose(seq_net(xs[0], target_device="CPU"), default[0], atol=ATOL, rtol=RTOL)


BAD_DEVICES = ["TPU", "cpu", ("CPU", 0), ("CPU", 10_000), ("CPU", "all"), ("CPU", 1.5), 42, [],
               ("CPU", 1, 2), ["CPU"]]


@pytest.mark.parametrize("target", BAD_DEVICES, ids=repr)
def test_bad_target_device(seq_net: Any, target: Any) -> None:
    with pytest.raises(ng.InputDataError, match="target_device"):
        seq_net([np.ones((2, 2), np.float32)], target_device=target)


def test_gpu_target_runs_or_is_an_input_data_error(seq_net: Any) -> None:
    xs = [np.ones((2, 2), np.float32), np.ones((3, 2), np.float32)]
    try:
        jax.devices("gpu")
    except RuntimeError:  # no GPU here (as in CI): a clear error naming the device kind
        with pytest.raises(ng.InputDataError, match="GPU"):
            seq_net(xs, target_device="GPU")
    else:  # a GPU is present: it gives the CPU's results
        for a, b in zip(seq_net(xs, target_device="GPU"), seq_net(xs, target_device="CPU")):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_progress_bar(seq_net: Any, capsys: Any) -> None:
    xs = [np.ones((n % 5 + 1, 2), np.float32) for n in range(40)]
    seq_net(xs, progress=True, batch_size=8)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "40/40" in captured.err and "#" in captured.err and captured.err.endswith("\n")
    seq_net(xs, progress=False, batch_size=8)
    assert capsys.readouterr() == ("", "")
    seq_net(xs, batch_size=8)  # a short list: no bar by default
    assert capsys.readouterr() == ("", "")


def test_progress_bar_on_by_default_for_long_lists(capsys: Any) -> None:
    net = randomized(ng.NetChain([ng.SequenceLastLayer()], Input=(V, 1)))
    xs = [np.full((n % 3 + 1, 1), n, np.float32) for n in range(2000)]
    out = net(xs, batch_size=500)
    assert [float(o[0]) for o in out[:3]] == [0.0, 1.0, 2.0]
    assert "2000/2000" in capsys.readouterr().err
    net(xs, batch_size=500, progress=False)
    assert capsys.readouterr().err == ""


# =========================================================================== errors
@pytest.fixture(scope="module")
def kv_net() -> Any:
    return built("attention_dot")


def kv_lists(counts: tuple[int, int, int] = (3, 3, 3)) -> dict[str, list]:
    rng = np.random.default_rng(6)
    return {"Key": lists_of(rng, [2, 3, 4][: counts[0]], 3),
            "Value": lists_of(rng, [2, 3, 4][: counts[1]], 2),
            "Query": lists_of(rng, [1, 5, 2][: counts[2]], 3)}


def message(info: Any) -> str:
    return str(info.value)


def test_error_ragged_lists(kv_net: Any) -> None:
    with pytest.raises(ng.InputDataError) as info:
        kv_net(kv_lists((3, 2, 3)))
    text = message(info)
    assert "numbers of examples" in text
    assert "Value" in text and "2" in text and "Key" in text and "3" in text


def test_error_wrong_trailing_size_in_one_example(kv_net: Any) -> None:
    data = kv_lists()
    data["Value"][2] = np.ones((4, 5), np.float32)
    with pytest.raises(ng.InputDataError) as info:
        kv_net(data)
    text = message(info)
    assert 'port "Value"' in text and "element #2" in text and "(4, 5)" in text


def test_error_mixed_ranks(kv_net: Any) -> None:
    data = kv_lists()
    data["Query"][1] = np.ones(3, np.float32)
    with pytest.raises(ng.InputDataError) as info:
        kv_net(data)
    text = message(info)
    assert 'port "Query"' in text and "element #1" in text and "(3,)" in text


def test_error_list_and_array(kv_net: Any) -> None:
    data = kv_lists()
    data["Query"] = np.ones((2, 3), np.float32)
    with pytest.raises(ng.InputDataError) as info:
        kv_net(data)
    text = message(info)
    assert "Query" in text and "Key" in text and "list" in text and "array" in text


def test_error_inconsistent_shared_lengths(kv_net: Any) -> None:
    data = kv_lists()
    data["Value"][1] = np.ones((7, 2), np.float32)
    with pytest.raises(ng.InputDataError) as info:
        kv_net(data)
    text = message(info)
    assert "element #1" in text and '"Key"' in text and '"Value"' in text
    assert "3" in text and "7" in text


def test_error_inconsistent_shared_lengths_across_a_dot() -> None:
    """A and B become one varying length through the DotLayer's contraction."""
    net = built("dot_over_varying_axis")
    rng = np.random.default_rng(7)
    data = {"A": lists_of(rng, [2, 3], 2), "B": lists_of(rng, [2, 4], 3)}
    with pytest.raises(ng.InputDataError) as info:
        net(data)
    text = message(info)
    assert "element #1" in text and '"A"' in text and '"B"' in text


def test_error_index_out_of_range_in_one_example() -> None:
    net = built("embedding_conv_mean")
    xs = [np.array([1, 2], np.int32), np.array([0, 7, 1], np.int32)]
    with pytest.raises(ng.InputDataError) as info:
        net(xs)
    text = message(info)
    assert 'port "Input"' in text and "element #1" in text and "[0, 7)" in text


def test_error_real_data_for_integer_port_in_one_example() -> None:
    net = built("embedding_conv_mean")
    xs = [np.array([1, 2], np.int32), np.array([0.5, 1.0], np.float32)]
    with pytest.raises(ng.InputDataError) as info:
        net(xs)
    assert 'port "Input"' in message(info) and "element #1" in message(info)


def test_error_non_numeric_example(seq_net: Any) -> None:
    with pytest.raises(ng.InputDataError) as info:
        seq_net([np.ones((2, 2), np.float32), "abc"])
    assert 'port "Input"' in message(info) and "element #1" in message(info)


def test_error_missing_port_with_lists(kv_net: Any) -> None:
    data = kv_lists()
    del data["Value"]
    with pytest.raises(ng.InputDataError, match="Value"):
        kv_net(data)
