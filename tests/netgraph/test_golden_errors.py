"""Golden error messages (penzai style): the full text of the error for the most common user
mistakes, compared to a literal string, so that the texts cannot drift unnoticed.

``test_errors.py`` checks the key parts of many more messages; this file pins the whole text
(type name, what, where, expected versus found, hint) of a few. When a message is improved on
purpose, update its literal here.

A message that records where a layer was created names the test file relative to the working
directory, as the library does (``os.path.relpath``); ``site(n)`` spells it for line ``n``, and
``line()`` gives the line a layer was built on, so the literals stay right when lines move.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np
import pytest

import netgraph as ng

L = ng.LinearLayer


def line() -> int:
    """The caller's line number (a layer records the line that created it)."""
    return sys._getframe(1).f_lineno


def site(lineno: int) -> str:
    """``file:line`` of this test file, spelled as the library spells a user's call site."""
    return f"{os.path.relpath(__file__)}:{lineno}"


def error_text(make: Callable[[], Any]) -> str:
    """``"TypeName: message"`` of the NetGraphError that ``make()`` raises."""
    with pytest.raises(ng.NetGraphError) as info:
        make()
    assert type(info.value).__module__ == "netgraph.errors"
    return f"{type(info.value).__name__}: {info.value}"


@pytest.fixture(scope="module")
def net():
    """One-input net: Input {3} -> Output {2}."""
    return ng.NetInitialize(L(2, Input=3), seed=0)


# ------------------------------------------------------------------- construction
def test_size_mismatch_between_two_connected_layers():
    enc, enc_line = L(3, Input=5), line()
    dec, dec_line = L(2, Input=4), line()
    assert error_text(lambda: ng.NetGraph({"enc": enc, "dec": dec}, [("enc", "dec")])) == (
        'ShapeMismatchError: inconsistent size for dimension 1 of port "Input" of dec '
        '(LinearLayer[2]), connected from port "Output" of enc (LinearLayer[3])\n'
        f'  expected 4 - set by declared port "Input" of dec (LinearLayer[2])  ({site(dec_line)})\n'
        f'  got      3 - set by port "Output" of enc (LinearLayer[3])  ({site(enc_line)})\n'
        "  hint: make the two sizes agree, or leave one of them Automatic."
    )


def test_size_mismatch_inside_a_nested_graph():
    pre, pre_line = L(5), line()
    inner, inner_line = ng.NetGraph({"proj": L(3, Input=4)}, []), line()
    assert error_text(lambda: ng.NetChain({"pre": pre, "mid": inner})) == (
        'ShapeMismatchError: inconsistent size for dimension 1 of port "Input" of mid '
        '(NetGraph[1 layer]), connected from port "Output" of pre (LinearLayer[5])\n'
        '  expected 4 - set by declared port "Input" of mid/proj (LinearLayer[3])  '
        f"({site(inner_line)})\n"
        f'  got      5 - set by port "Output" of pre (LinearLayer[5])  ({site(pre_line)})\n'
        "  hint: make the two sizes agree, or leave one of them Automatic."
    )


def test_unknown_layer_name_in_a_connection():
    assert error_text(lambda: ng.NetGraph({"enc": L(3), "dec": L(2)}, [("enc", "decoder")])) == (
        "NetConnectionError: The vertex 'decoder', specified in the edge 'enc' -> 'decoder', "
        "does not exist.\n"
        "  hint: the layers are: 'enc', 'dec'."
    )


@pytest.mark.parametrize(
    "connection, expected",
    [
        pytest.param(
            ("enc", ng.NetPort("dec", "Inputt")),
            "NetConnectionError: 'enc' -> NetPort('dec', 'Inputt'): the input port 'Inputt' of "
            "layer 'dec' (LinearLayer[2]) does not exist.\n"
            "  hint: its input ports are: 'Input'.",
            id="input",
        ),
        pytest.param(
            (ng.NetPort("enc", "Out"), "dec"),
            "NetConnectionError: NetPort('enc', 'Out') -> 'dec': the output port 'Out' of "
            "layer 'enc' (LinearLayer[3]) does not exist.\n"
            "  hint: its output ports are: 'Output'.",
            id="output",
        ),
    ],
)
def test_unknown_port(connection, expected):
    assert error_text(lambda: ng.NetGraph({"enc": L(3), "dec": L(2)}, [connection])) == expected


def test_cycle():
    layers = {"a": L(3), "b": L(3), "c": L(3), "out": L(2)}
    assert error_text(lambda: ng.NetGraph(layers, [("a", "b", "c", "a"), ("c", "out")])) == (
        "CycleError: The connectivity of layers within a NetGraph must be acyclic; found the "
        "cycle 'a' -> 'b' -> 'c' -> 'a'.\n"
        "  hint: remove one of the connections of this cycle."
    )


def test_bad_option_value():
    assert error_text(lambda: L("x")) == (
        "SpecificationError: LinearLayer: invalid value for option 'size': the value should be "
        "a valid integer, unable to parse string as an integer; or the value should be a valid "
        "tuple; or expected Automatic. Received: size='x'"
    )


def test_ambiguous_shape_at_initialize():
    assert error_text(lambda: ng.NetInitialize(ng.NetChain({"proj": L(3), "act": "Tanh"}))) == (
        'AmbiguousShapeError: Cannot initialize net: unspecified or partially specified shape '
        'for array "Weights" of proj (LinearLayer[3]): {3, Automatic}. Its ports: "Input" is '
        'array of unknown rank; "Output" is {3}.\n'
        "  hint: declare the missing sizes on the net's ports (e.g. NetGraph(..., Input=8)) or "
        "on the layer itself (LinearLayer(3, Input=5))."
    )


# ------------------------------------------------------------------------ call time
def test_uninitialized_net_evaluated():
    g = ng.NetGraph({"enc": L(3), "dec": L(2)}, [("enc", "dec")], Input=4)
    assert error_text(lambda: g(np.zeros(4, np.float32))) == (
        "UninitializedError: the net has uninitialized arrays: enc/Weights, enc/Biases, "
        "dec/Weights, dec/Biases.\n"
        "  hint: call NetInitialize(net) first, or give the arrays at construction."
    )


def test_missing_input_at_call_time():
    g = ng.NetInitialize(
        ng.NetGraph({"a": L(2), "b": L(2), "p": "Plus"},
                    [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "p")], A=3, B=3),
        seed=0,
    )
    assert error_text(lambda: g({"A": np.ones(3, np.float32)})) == (
        "InputDataError: NetGraph[3 layers]: missing port(s) ['B']; the input ports are "
        "['A', 'B'].\n"
        "  hint: pass a dict with one array (or list of examples) per input port: "
        "{'A': ..., 'B': ...}."
    )


def test_wrong_input_rank(net):
    assert error_text(lambda: net(np.ones((2, 2, 3), np.float32))) == (
        'InputDataError: Data provided to port "Input" has the wrong rank: expected a rank-1 '
        "array {3} (one example) or a rank-2 batch of them; found shape (2, 2, 3)."
    )


@pytest.mark.parametrize("shape", [(5,), (4, 5)], ids=["example", "batch"])
def test_wrong_input_size(net, shape):
    assert error_text(lambda: net(np.ones(shape, np.float32))) == (
        'InputDataError: Data provided to port "Input" has the wrong dimensions ((5,) instead '
        "of (3,))."
    )


def test_wrong_input_size_for_the_lowered_function(net):
    apply, params = ng.lower(net), ng.params_of(net)
    assert error_text(lambda: apply(params, {"Input": np.ones((4, 3), np.float32)})) == (
        'InputDataError: Data provided to port "Input" has the wrong dimensions ((4, 3) instead '
        "of (3,)); the lowered function takes ONE example (use jax.vmap for a batch)."
    )


def test_embedding_index_out_of_range():
    emb = ng.NetInitialize(ng.EmbeddingLayer(2, 5), seed=0)
    assert error_text(lambda: emb(np.array([1, 7, 5]))) == (
        'InputDataError: Data provided to port "Input" should be integers in [0, 5); found 7 at '
        "index (1,) and 1 more out of range (values from 1 to 7).\n"
        "  hint: the valid values are 0 .. 4: indices count from 0 (subtract 1 from 1-based "
        "indices)."
    )
