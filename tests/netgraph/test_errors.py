"""Golden tests of the main error messages.

Each test asserts the exception type and the key parts of the message: the layer path, the
port, expected and found values, and the user's ``file:line`` where a layer was created. The
last section asserts that user mistakes raise a ``ng.NetGraphError``, never a raw JAX,
NumPy, pydantic or Python error.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

import netgraph as ng

L = ng.LinearLayer
HERE = "test_errors.py"


def line() -> int:
    """The caller's line number (layers record the line that created them)."""
    return sys._getframe(1).f_lineno


def message_of(info) -> str:
    return str(info.value)


# ------------------------------------------------------------------- connections
def test_unknown_layer_in_a_connection():
    with pytest.raises(ng.NetConnectionError) as info:
        ng.NetGraph({"enc": L(3), "dec": L(2)}, [("enc", "decoder")])
    message = message_of(info)
    assert "'decoder'" in message and "does not exist" in message
    assert "'enc' -> 'decoder'" in message  # the rule it appeared in
    assert "'enc', 'dec'" in message  # the layers that do exist


def test_unknown_layer_index_in_a_connection():
    with pytest.raises(ng.NetConnectionError, match="The vertex 7"):
        ng.NetGraph([L(3), L(2)], [(0, 7)])


@pytest.mark.parametrize(
    "connection, kind, port, existing",
    [
        ((ng.NetPort("enc", "Out"), "dec"), "output", "Out", "'Output'"),
        (("enc", ng.NetPort("dec", "Inputt")), "input", "Inputt", "'Input'"),
    ],
)
def test_unknown_port(connection, kind, port, existing):
    with pytest.raises(ng.NetConnectionError) as info:
        ng.NetGraph({"enc": L(3), "dec": L(2)}, [connection])
    message = message_of(info)
    assert f"the {kind} port '{port}'" in message
    layer = "enc" if kind == "output" else "dec"
    assert f"of layer '{layer}'" in message and "does not exist" in message
    assert f"its {kind} ports are: {existing}" in message


def test_two_producers_into_one_named_input():
    with pytest.raises(ng.NetConnectionError) as info:
        ng.NetGraph({"a": L(3), "b": L(3), "c": L(2)},
                    [("a", ng.NetPort("c", "Input")), ("b", ng.NetPort("c", "Input"))])
    message = message_of(info)
    assert '"c" port "Input"' in message
    assert '"a" port "Output"' in message and '"b" port "Output"' in message
    assert "ThreadingLayer" in message  # the hint says how to combine them


def test_two_producers_into_a_one_input_layer():
    # a -> c and b -> c fill c's inputs in order (Wolfram); c has only one
    with pytest.raises(ng.NetConnectionError) as info:
        ng.NetGraph({"a": L(3), "b": L(3), "c": L(2)}, [("a", "c"), ("b", "c")])
    message = message_of(info)
    assert "'a' -> 'c'" in message and "'b' -> 'c'" in message
    assert "2 sources connected to 'c'" in message and "(Input)" in message


def test_too_many_sources_for_a_layer():
    with pytest.raises(ng.NetConnectionError) as info:
        ng.NetGraph({"a": L(2), "b": L(2), "c": L(2)}, [(["a", "b"], "c")])
    assert "2 sources connected to 'c'" in message_of(info)
    assert "1 input port(s) (Input)" in message_of(info)


def test_cycle_names_its_layers():
    with pytest.raises(ng.CycleError) as info:
        ng.NetGraph({"a": L(3), "b": L(3), "c": L(3), "out": L(2)},
                    [("a", "b", "c", "a"), ("c", "out")])
    message = message_of(info)
    assert "acyclic" in message
    assert "'a' -> 'b' -> 'c' -> 'a'" in message


def test_self_loop_is_a_cycle():
    with pytest.raises(ng.CycleError, match="'a' -> 'a'"):
        ng.NetGraph({"a": L(3), "b": L(2)}, [("a", "a")])


def test_closed_cycle_is_reported_as_a_cycle():
    """A cycle that consumes every output must still be reported as the cycle it is, not as
    "the net has no output port" (the cycle check has to run before output collection)."""
    with pytest.raises(ng.CycleError) as info:
        ng.NetGraph({"a": L(3), "b": L(3)}, [("a", "b"), ("b", "a")])
    assert "'a' -> 'b' -> 'a'" in message_of(info) or "'b' -> 'a' -> 'b'" in message_of(info)


@pytest.mark.parametrize(
    "connections, needle",
    [
        (["a"], "must be a tuple"),
        ("a", "list of connections"),
        ([("a",)], "needs at least a source and a destination"),
        ([(ng.NetPort("x"), None)], "only layer outputs can be muted"),
    ],
)
def test_malformed_connections(connections, needle):
    with pytest.raises(ng.NetConnectionError, match=needle):
        ng.NetGraph({"a": L(2)}, connections)


# --------------------------------------------------------------------- shapes
def test_size_mismatch_between_two_linear_layers():
    first, first_line = L(3, Input=5), line()
    second, second_line = L(2, Input=4), line()
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetGraph({"enc": first, "dec": second}, [("enc", "dec")])
    message = message_of(info)
    assert 'port "Input" of dec (LinearLayer[2])' in message
    assert 'port "Output" of enc (LinearLayer[3])' in message
    expected, got = message.split("expected")[1].split("got")
    assert "4" in expected and 'declared port "Input" of dec' in expected
    assert f"{HERE}:{second_line}" in expected
    assert "3" in got and 'port "Output" of enc' in got
    assert f"{HERE}:{first_line}" in got
    assert "hint:" in message


def test_size_mismatch_inside_a_nested_graph_shows_the_path():
    inner, inner_line = ng.NetGraph({"proj": L(3, Input=4)}, []), line()
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetChain({"pre": L(5), "mid": inner})
    message = message_of(info)
    assert 'declared port "Input" of mid/proj' in message
    assert 'port "Output" of pre' in message
    assert "expected 4" in message and "got      5" in message
    assert f"{HERE}:{inner_line}" in message


def test_rank_mismatch():
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetChain({"a": L((2, 3), Input=5), "t": ng.ElementwiseLayer("Tanh", Input=6)})
    message = message_of(info)
    assert "inconsistent ranks" in message
    assert 'port "Input" of t' in message
    assert "rank-1" in message and "rank-2" in message


def test_given_array_of_wrong_size():
    with pytest.raises(ng.ShapeMismatchError) as info:
        L(2, Weights=np.zeros((3, 4), np.float32))
    message = message_of(info)
    assert 'port "Output"' in message
    assert 'expected 3 - set by the given array "Weights"' in message
    assert "got      2" in message


def test_varying_input_into_a_linear_layer():
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetChain({"a": L(3)}, Input=("Varying", 2))
    message = message_of(info)
    assert 'port "Input" of a (LinearLayer[3])' in message
    assert "varying" in message
    assert "hint:" in message


def test_element_type_mismatch():
    with pytest.raises(ng.ElementTypeError) as info:
        ng.NetChain({"t": "Tanh"}, Input=(2, "Integer"))
    message = message_of(info)
    assert 'port "Input" of t' in message
    assert "Real" in message and "Integer" in message


# -------------------------------------------------------------------- options
def test_unknown_option_lists_the_allowed_ones():
    with pytest.raises(ng.SpecificationError) as info:
        L(3, levels=2)
    message = message_of(info)
    assert '"levels" is not a known parameter for LinearLayer' in message
    for allowed in ("'size'", "'Weights'", "'Biases'", "'Input'", "'Output'"):
        assert allowed in message


def test_unknown_capitalised_parameter():
    with pytest.raises(ng.SpecificationError, match='"Inputs" is not a known parameter'):
        L(3, Inputs=2)


def test_unknown_graph_port_shape():
    with pytest.raises(ng.SpecificationError) as info:
        ng.NetGraph({"a": L(2)}, [], Inptu=3)
    assert '"Inptu"' in message_of(info) and "['Input']" in message_of(info)


@pytest.mark.parametrize(
    "make, needles",
    [
        (lambda: L(-3), ["LinearLayer", "size", "-3"]),
        (lambda: L(2.5), ["LinearLayer", "size", "2.5"]),
        (lambda: ng.ElementwiseLayer("Tanhh"), ["'Tanhh'", "Tanh", "Received: function='Tanhh'"]),
        (lambda: ng.ThreadingLayer("Tanh"), ["'Tanh'", "Plus"]),
        (lambda: ng.ThreadingLayer("Subtract", inputs=3), ["Subtract takes exactly 2 inputs"]),
        (lambda: L(2, Weights=[["a"]]), ['"Weights" must be numeric']),
        (lambda: L(2, Weights=None), ['"Weights" cannot be removed']),
        (lambda: L(2, Input=(3, "Varying")), ['only the first dimension can be "Varying"']),
    ],
)
def test_bad_option_value(make, needles):
    with pytest.raises(ng.SpecificationError) as info:
        make()
    for needle in needles:
        assert needle in message_of(info)


def test_bad_option_value_names_the_option_as_the_user_wrote_it():
    """'Received: arg=value' (the Keras convention) with the user's option name, not
    pydantic's internal union tag ('size.constrained-int')."""
    with pytest.raises(ng.SpecificationError) as info:
        L(-3)
    assert "Received: size=-3" in message_of(info)
    assert "constrained-int" not in message_of(info)


# -------------------------------------------------------------- initialisation
def test_uninitialized_evaluation():
    g = ng.NetGraph({"enc": L(3), "dec": L(2)}, [("enc", "dec")], Input=4)
    with pytest.raises(ng.UninitializedError) as info:
        g(np.zeros(4, np.float32))
    message = message_of(info)
    assert "enc/Weights" in message and "dec/Biases" in message
    assert "NetInitialize" in message


def test_initialize_with_an_unresolved_shape():
    layer, layer_line = L(3), line()
    with pytest.raises(ng.AmbiguousShapeError) as info:
        ng.NetInitialize(ng.NetChain({"proj": layer, "act": "Tanh"}))
    message = message_of(info)
    assert 'array "Weights" of proj (LinearLayer[3])' in message
    assert '"Input" is array of unknown rank' in message
    assert '"Output" is {3}' in message
    assert "hint:" in message


def test_unresolved_shape_message_uses_user_spelling():
    """The array's partial shape is shown as the user writes shapes ({3, Automatic}), not as
    the internal dimension objects (Known(size=3), Auto(id=3))."""
    with pytest.raises(ng.AmbiguousShapeError) as info:
        ng.NetInitialize(L(3))
    message = message_of(info)
    assert "Known(" not in message and "Auto(" not in message


@pytest.mark.parametrize(
    "kwargs, needle",
    [({"seed": -1}, "seed"), ({"method": "Foo"}, "'Foo'"), ({"distribution": "Cauchy"}, "'Cauchy'")],
)
def test_initialize_bad_arguments(kwargs, needle):
    with pytest.raises(ng.SpecificationError, match=needle):
        ng.NetInitialize(L(2, Input=2), **kwargs)


# --------------------------------------------------------------- call-time data
@pytest.fixture(scope="module")
def net():
    return ng.NetInitialize(L(2, Input=3), seed=0)


@pytest.fixture(scope="module")
def two_inputs():
    return ng.NetInitialize(
        ng.NetGraph({"a": L(2), "b": L(2), "p": "Plus"},
                    [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "p")],
                    A=3, B=3),
        seed=0,
    )


X3 = np.ones(3, np.float32)


def test_missing_port(two_inputs):
    with pytest.raises(ng.InputDataError) as info:
        two_inputs({"A": X3})
    assert "missing port(s) ['B']" in message_of(info)
    assert "['A', 'B']" in message_of(info)


def test_extra_port(net):
    with pytest.raises(ng.InputDataError) as info:
        net({"Input": X3, "Extra": X3})
    assert "unknown port(s) ['Extra']" in message_of(info)


def test_one_array_for_a_two_input_net(two_inputs):
    with pytest.raises(ng.InputDataError, match="pass a dict"):
        two_inputs(X3)


def test_wrong_rank(net):
    with pytest.raises(ng.InputDataError) as info:
        net(np.ones((2, 2, 3), np.float32))
    message = message_of(info)
    assert 'port "Input"' in message and "wrong rank" in message
    assert "rank-1" in message and "(2, 2, 3)" in message


@pytest.mark.parametrize("data", [np.ones(5, np.float32), np.ones((4, 5), np.float32)])
def test_wrong_trailing_size(net, data):
    with pytest.raises(ng.InputDataError) as info:
        net(data)
    message = message_of(info)
    assert 'port "Input"' in message
    assert "(5,)" in message and "(3,)" in message


def test_wrong_trailing_size_of_a_varying_port():
    v = ng.NetChain(["Tanh"], Input=("Varying", 2))
    with pytest.raises(ng.InputDataError) as info:
        v(np.zeros((4, 3), np.float32))
    assert "(4, 3)" in message_of(info) and "'Varying', 2" in message_of(info)


@pytest.mark.parametrize("data", [np.array(["a", "b", "c"]), "abc", None, object()])
def test_non_numeric_data(net, data):
    with pytest.raises(ng.InputDataError) as info:
        net(data)
    assert "not a numeric array" in message_of(info) and '"Input"' in message_of(info)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, bool, np.complex64])
def test_integer_data_for_a_real_port(net, dtype):
    with pytest.raises(ng.InputDataError) as info:
        net(np.ones(3, dtype))
    message = message_of(info)
    assert 'port "Input"' in message and "real numbers" in message
    assert np.dtype(dtype).name in message


def test_ragged_list_of_examples(net):
    """A list is a list of examples (threaded evaluation): the short one is reported."""
    with pytest.raises(ng.InputDataError) as info:
        net([[1.0, 2.0, 3.0], [1.0, 2.0]])
    message = message_of(info)
    assert 'port "Input"' in message and "element #1" in message
    assert "(2,)" in message and "(3,)" in message


def test_ragged_example():
    matrix = ng.NetInitialize(L(2, Input=(2, 3)), seed=0)
    with pytest.raises(ng.InputDataError) as info:
        matrix([[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0], [1.0]]])
    message = message_of(info)
    assert 'port "Input"' in message and "element #1" in message
    assert "not a rectangular array" in message
    assert isinstance(info.value.__cause__, ValueError)  # the cause is kept


def test_batch_sizes_differ(two_inputs):
    with pytest.raises(ng.InputDataError, match="batch sizes"):
        two_inputs({"A": np.ones((2, 3), np.float32), "B": np.ones((3, 3), np.float32)})


def test_batch_and_single_example_mixed(two_inputs):
    with pytest.raises(ng.InputDataError, match="one example and others a batch"):
        two_inputs({"A": np.ones((2, 3), np.float32), "B": X3})


def test_varying_ports_of_one_length_must_agree():
    g = ng.NetGraph({"p": "Plus"}, [], Input1="Varying", Input2="Varying")
    with pytest.raises(ng.InputDataError) as info:
        g({"Input1": np.ones(3, np.float32), "Input2": np.ones(4, np.float32)})
    assert "same length" in message_of(info)
    assert "3" in message_of(info) and "4" in message_of(info)


# ------------------------------------------------- every mistake is a NetGraphError
def _lowered():
    net = ng.NetInitialize(L(2, Input=3), seed=0)
    return ng.lower(net), ng.params_of(net)


MISTAKES = {
    "unknown layer": lambda: ng.NetGraph({"a": L(2)}, [("a", "b")]),
    "unknown port": lambda: ng.NetGraph({"a": L(2), "b": L(2)}, [(ng.NetPort("a", "X"), "b")]),
    "two producers": lambda: ng.NetGraph({"a": L(2), "b": L(2), "c": L(2)}, [("a", "c"), ("b", "c")]),
    "cycle": lambda: ng.NetGraph({"a": L(2), "b": L(2), "c": L(2)}, [("a", "b", "a"), ("b", "c")]),
    "size mismatch": lambda: ng.NetChain([L(3, Input=5), L(2, Input=4)]),
    "rank mismatch": lambda: ng.NetChain([L(3, Input=5), L(2, Input=(3, 1))]),
    "broadcast mismatch": lambda: ng.NetGraph({"p": ng.ThreadingLayer("Plus", Input1=3, Input2=4)}, []),
    "unknown option": lambda: L(3, foo=1),
    "bad option": lambda: L("x"),
    "bad spec": lambda: L(3, Input="Foo"),
    "bad Restricted": lambda: ng.Restricted("Integer", 0),
    "bad NetPort": lambda: ng.NetPort("a", "b", "c"),
    "chain with two-input layer": lambda: ng.NetChain([L(2), ng.ThreadingLayer("Plus")]),
    "ambiguous init": lambda: ng.NetInitialize(L(3)),
    "uninitialized": lambda: L(3, Input=2)(np.ones(2, np.float32)),
    "wrong size": lambda: ng.NetInitialize(L(3, Input=2))(np.ones(5, np.float32)),
    "wrong rank": lambda: ng.NetInitialize(L(3, Input=2))(np.ones((2, 2, 2), np.float32)),
    "string data": lambda: ng.NetInitialize(L(3, Input=2))("ab"),
    "ragged data": lambda: ng.NetInitialize(L(3, Input=2))([[1.0], [1.0, 2.0]]),
    "integer data": lambda: ng.NetInitialize(L(3, Input=2))(np.ones(2, np.int64)),
    "extract missing part": lambda: ng.NetExtract(ng.NetChain([L(2)]), "nope"),
    "replace missing part": lambda: ng.NetReplacePart(ng.NetChain([L(2)]), {"nope": 1}),
    "replace wrong array": lambda: ng.NetReplacePart(
        ng.NetInitialize(ng.NetChain([L(2)], Input=3)), {(0, "Weights"): np.zeros((5, 5))}),
    "lowered: missing input": lambda: (lambda f, p: f(p, {}))(*_lowered()),
    "lowered: wrong size": lambda: (lambda f, p: f(p, {"Input": np.ones(5, np.float32)}))(*_lowered()),
    "lowered: wrong rank": lambda: (lambda f, p: f(p, {"Input": np.ones((2, 3), np.float32)}))(*_lowered()),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_every_user_mistake_is_a_netgraph_error(mistake):
    with pytest.raises(ng.NetGraphError) as info:
        MISTAKES[mistake]()
    assert type(info.value).__module__ == "netgraph.errors"
    assert str(info.value).strip()


def test_error_hierarchy():
    assert issubclass(ng.CycleError, ng.NetConnectionError)
    assert issubclass(ng.ElementTypeError, ng.ShapeMismatchError)
    for cls in (ng.SpecificationError, ng.NetConnectionError, ng.ShapeMismatchError,
                ng.AmbiguousShapeError, ng.UninitializedError, ng.InputDataError,
                ng.PartSpecError):
        assert issubclass(cls, ng.NetGraphError)
