"""Tier (a): the user-boundary parser of port specifications, as a table."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netgraph.shapes import Automatic, PortSpec, Restricted, parse_port_spec
from netgraph.errors import NetGraphError, SpecificationError

IDX5 = Restricted("Integer", 5)

GOOD = [
    # spec                               dims                        element
    (3, (3,), None),
    (0, (0,), None),
    (np.int64(4), (4,), None),
    ((3,), (3,), None),
    ((3, 4), (3, 4), None),
    ([2, 3], (2, 3), None),
    ((np.int32(2), 5), (2, 5), None),
    ((), (), None),
    ("Varying", ("Varying",), None),
    (("Varying",), ("Varying",), None),
    (("Varying", 3), ("Varying", 3), None),
    (("Varying", 3, 2), ("Varying", 3, 2), None),
    (Automatic, None, None),
    (None, None, None),
    ((Automatic,), (Automatic,), None),
    ((Automatic, 3), (Automatic, 3), None),
    (("Varying", Automatic), ("Varying", Automatic), None),
    ("Real", (), "Real"),
    ("Integer", (), "Integer"),
    (IDX5, (), IDX5),
    ((3, "Integer"), (3,), "Integer"),
    ((3, 4, "Real"), (3, 4), "Real"),
    (("Varying", "Integer"), ("Varying",), "Integer"),
    (("Varying", IDX5), ("Varying",), IDX5),
    (("Varying", 2, IDX5), ("Varying", 2), IDX5),
    (("Real",), (), "Real"),
]


@pytest.mark.parametrize("spec, dims, element", GOOD, ids=[repr(g[0]) for g in GOOD])
def test_parse_good(spec, dims, element):
    parsed = parse_port_spec(spec)
    assert parsed == PortSpec(dims, element)
    # sizes come out as plain ints, never NumPy scalars
    assert all(type(d) is int for d in parsed.dims or () if d not in ("Varying", Automatic))


@pytest.mark.parametrize("spec", [g[0] for g in GOOD], ids=[repr(g[0]) for g in GOOD])
def test_to_user_round_trips(spec):
    parsed = parse_port_spec(spec)
    assert parse_port_spec(parsed.to_user()) == parsed


def test_portspec_passes_through():
    spec = PortSpec((2, 3), "Integer")
    assert parse_port_spec(spec) is spec


BAD = [
    # spec                   substrings the message must contain
    (-1, ["-1", ">= 0"]),
    ((3, -2), ["-2", ">= 0"]),
    ("Foo", ["'Foo'", "not a valid port specification"]),
    ("varying", ["'varying'"]),  # case matters
    ("real", ["'real'"]),
    ((3, "Varying"), ['only the first dimension can be "Varying"']),
    (("Varying", "Varying"), ['only the first dimension can be "Varying"']),
    (2.5, ["2.5", "not a valid dimension"]),
    ((2.5,), ["2.5"]),
    ((3.0, 2), ["3.0"]),
    (True, ["True"]),
    ((True, 3), ["True"]),
    (("Real", 3), ["'Real'"]),  # element type only in trailing position
    ((3, "Integer", 4), ["'Integer'"]),
    (("Integer", "Integer"), ["'Integer'"]),
    ({"a": 1}, ["{'a': 1}"]),
    (b"x", ["b'x'"]),
    (object, ["not a valid dimension"]),
]


@pytest.mark.parametrize("spec, needles", BAD, ids=[repr(b[0]) for b in BAD])
def test_parse_bad(spec, needles):
    with pytest.raises(SpecificationError) as info:
        parse_port_spec(spec, 'LinearLayer port "Input"')
    message = str(info.value)
    assert 'LinearLayer port "Input"' in message  # names where the spec was given
    for needle in needles:
        assert needle in message
    assert isinstance(info.value, NetGraphError)


@pytest.mark.parametrize(
    "args, needle",
    [
        (("Real", 3), "only \"Integer\""),
        (("Integer", 0), "positive integer"),
        (("Integer", -4), "positive integer"),
        (("Integer", True), "positive integer"),
        (("Integer", 2.0), "positive integer"),
    ],
)
def test_restricted_bad(args, needle):
    with pytest.raises(SpecificationError, match=needle):
        Restricted(*args)


def test_restricted_equality_and_use():
    assert Restricted("Integer", 3) == Restricted("Integer", 3)
    assert Restricted("Integer", 3) != Restricted("Integer", 4)
    assert parse_port_spec(("Varying", Restricted("Integer", 3))).element.n == 3


# ------------------------------------------------------------------ property tests
dim_entry = st.one_of(st.integers(0, 64), st.just(Automatic))
element_entry = st.one_of(
    st.none(), st.sampled_from(["Real", "Integer"]), st.integers(1, 50).map(lambda n: Restricted("Integer", n))
)


@st.composite
def specs(draw):
    dims = draw(st.lists(dim_entry, max_size=4))
    if dims and draw(st.booleans()):
        dims[0] = "Varying"
    element = draw(element_entry)
    return tuple(dims) + ((element,) if element is not None else ())


@given(specs())
def test_parse_round_trip_property(spec):
    parsed = parse_port_spec(spec)
    entries = [e for e in spec if not isinstance(e, Restricted) and e not in ("Real", "Integer")]
    assert parsed.dims == tuple(entries)
    assert parse_port_spec(parsed.to_user()) == parsed
    assert parse_port_spec(list(spec)) == parsed


@given(st.lists(dim_entry, min_size=1, max_size=3), st.integers(1, 3))
def test_varying_after_first_always_rejected(dims, position):
    spec = list(dims)
    spec.insert(min(position, len(spec)), "Varying")
    with pytest.raises(SpecificationError):
        parse_port_spec(tuple(spec))


@given(st.integers(max_value=-1))
def test_negative_sizes_rejected(n):
    with pytest.raises(SpecificationError):
        parse_port_spec(n)
    with pytest.raises(SpecificationError):
        parse_port_spec((2, n))
