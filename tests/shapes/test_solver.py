"""Tier (a): the constraint solver's merge rules and the reusable rules of shapes/rules.py.

Tables for each merge rule, and hypothesis properties checking the solver against a plain
union-find model: whatever the order of the unifications, the outcome is the same.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netgraph.shapes import Auto, Index, Integer, Known, Real, Varying, rules
from netgraph.errors import ElementTypeError, NetGraphError, ShapeMismatchError
from netgraph.shapes.solver import Origin, Solver, Sym

A = Origin('port "Output" of a (LinearLayer[3])', "model.py:10")
B = Origin('declared port "Input" of b (LinearLayer[2])', "model.py:11")


# ------------------------------------------------------------------ dimension cells
def test_new_cells():
    s = Solver()
    assert s.dim(s.new_dim(3, A)) == 3
    assert s.dim(s.new_dim()) is None
    assert isinstance(s.dim(s.new_varying()), Sym)
    assert s.dim_origin(s.new_dim(3, A)) == A
    assert s.dim_origin(s.new_dim(None, A)) is None  # an unknown has no origin


def test_known_vs_known_conflict_names_both_values_and_origins():
    s = Solver()
    a, b = s.new_dim(3, A), s.new_dim(4, B)
    with pytest.raises(ShapeMismatchError) as info:
        s.unify_dims(a, b, "dimension 1 of the thing")
    message = str(info.value)
    assert "inconsistent size for dimension 1 of the thing" in message
    assert "expected 3" in message and "got      4" in message
    assert 'port "Output" of a (LinearLayer[3])  (model.py:10)' in message
    assert 'declared port "Input" of b (LinearLayer[2])  (model.py:11)' in message
    assert message.index("expected 3") < message.index("model.py:10") < message.index("got")
    assert "hint:" in message
    assert isinstance(info.value, NetGraphError)


def test_conflict_without_origin_says_so():
    s = Solver()
    with pytest.raises(ShapeMismatchError, match="an earlier constraint"):
        s.unify_dims(s.new_dim(3), s.new_dim(4), "here")


def test_where_may_be_lazy():
    s = Solver()
    calls = []

    def where():
        calls.append(1)
        return "lazily described"

    s.unify_dims(s.new_dim(3), s.new_dim(3), where)
    s.unify_dims(s.new_dim(), s.new_dim(3), where)
    assert not calls  # only an error formats the description
    with pytest.raises(ShapeMismatchError, match="lazily described"):
        s.unify_dims(s.new_dim(3), s.new_dim(5), where)


@pytest.mark.parametrize("known_first", [True, False])
def test_known_beats_varying(known_first):
    s = Solver()
    k, v = s.new_dim(5, A), s.new_varying(B)
    s.unify_dims(*((k, v) if known_first else (v, k)), "w")
    assert s.dim(v) == 5 and s.dim(k) == 5
    assert s.resolve_dim(v) == Known(5)
    assert s.dim_origin(v) == A  # the known value keeps its origin


def test_varying_plus_varying_merge():
    s = Solver()
    v1, v2, v3 = s.new_varying(), s.new_varying(), s.new_varying()
    assert s.dim(v1) is not s.dim(v2)
    assert s.resolve_dim(v1) != s.resolve_dim(v2)  # two varying lengths differ ...
    s.unify_dims(v1, v2, "w")  # ... unless a constraint ties them
    assert s.same_dim(v1, v2)
    assert s.resolve_dim(v1) == s.resolve_dim(v2)
    assert isinstance(s.resolve_dim(v1), Varying)
    assert s.resolve_dim(v3) != s.resolve_dim(v1)


@pytest.mark.parametrize("other", [None, 7, "varying"])
def test_unknown_takes_the_other_value(other):
    s = Solver()
    u = s.new_dim()
    o = s.new_varying() if other == "varying" else s.new_dim(other)
    s.unify_dims(u, o, "w")
    assert s.same_dim(u, o)
    if other is None:
        assert isinstance(s.resolve_dim(u), Auto)
        assert s.resolve_dim(u) == s.resolve_dim(o)
    elif other == 7:
        assert s.resolve_dim(u) == Known(7)
    else:
        assert isinstance(s.resolve_dim(u), Varying)


def test_unrelated_unknowns_stay_distinct():
    s = Solver()
    a, b = s.new_dim(), s.new_dim()
    assert s.resolve_dim(a) != s.resolve_dim(b)
    assert not s.same_dim(a, b)


def test_bind_dim():
    s = Solver()
    d = s.new_dim()
    s.bind_dim(d, 4, A, "w")
    assert s.dim(d) == 4 and s.dim_origin(d) == A
    s.bind_dim(d, 4, B, "w")  # same value: no conflict
    with pytest.raises(ShapeMismatchError, match="expected 4"):
        s.bind_dim(d, 5, B, "w")
    v = s.new_varying()
    s.bind_dim(v, 6, A, "w")  # binding a varying dimension: known beats varying
    assert s.dim(v) == 6


# ---------------------------------------------------------------------- shape cells
def test_shapes_unify_rank_and_dims():
    s = Solver()
    a = s.shape_of_dims([s.new_dim(2), s.new_dim()])
    b = s.shape_of_dims([s.new_dim(), s.new_dim(5)])
    s.unify_shapes(a, b, "p")
    assert s.resolve_shape(a) == (Known(2), Known(5)) == s.resolve_shape(b)


def test_unbound_shape_takes_the_other_rank():
    s = Solver()
    a, b = s.new_shape(), s.new_shape()
    assert s.dims(a) is None and s.resolve_shape(a) is None
    s.unify_shapes(a, b, "p")
    s.set_rank(b, 2, A, "p")
    assert s.dims(a) is not None and len(s.dims(a)) == 2


def test_rank_mismatch():
    s = Solver()
    a, b = s.new_shape(2, A), s.new_shape(3, B)
    with pytest.raises(ShapeMismatchError) as info:
        s.unify_shapes(a, b, 'port "Input" of b')
    message = str(info.value)
    assert 'inconsistent ranks for port "Input" of b' in message
    assert "rank-2" in message and "rank-3" in message
    assert "model.py:10" in message and "model.py:11" in message


def test_set_rank_checks_an_existing_rank():
    s = Solver()
    a = s.new_shape(2, A)
    assert len(s.set_rank(a, 2, B, "p")) == 2
    with pytest.raises(ShapeMismatchError, match="rank-1"):
        s.set_rank(a, 1, B, "p")


def test_dimension_conflict_inside_shapes_names_the_axis():
    s = Solver()
    a = s.shape_of_dims([s.new_dim(2, A), s.new_dim(3, A)])
    b = s.shape_of_dims([s.new_dim(2, B), s.new_dim(4, B)])
    with pytest.raises(ShapeMismatchError, match='dimension 2 of port "X"'):
        s.unify_shapes(a, b, 'port "X"')


# -------------------------------------------------------------------- element cells
def test_real_vs_integer_is_an_element_type_error():
    s = Solver()
    with pytest.raises(ElementTypeError) as info:
        s.unify_elems(s.new_elem("Real", A), s.new_elem("Integer", B), 'port "Input"')
    message = str(info.value)
    assert "Real" in message and "Integer" in message
    assert "model.py:10" in message and "model.py:11" in message
    assert isinstance(info.value, ShapeMismatchError)


@pytest.mark.parametrize("index_first", [True, False])
def test_integer_plus_index_is_index(index_first):
    s = Solver()
    idx = s.new_elem(("Index", s.new_dim(7)), A)
    integer = s.new_elem("Integer", B)
    s.unify_elems(*((idx, integer) if index_first else (integer, idx)), "w")
    assert s.resolve_elem(integer) == Index(Known(7))
    assert s.resolve_elem(idx) == Index(Known(7))


def test_index_ranges_unify():
    s = Solver()
    n1, n2 = s.new_dim(), s.new_dim(9)
    e1, e2 = s.new_elem(("Index", n1)), s.new_elem(("Index", n2))
    s.unify_elems(e1, e2, "w")
    assert s.dim(n1) == 9
    assert s.resolve_elem(e1) == Index(Known(9))


def test_index_range_conflict():
    s = Solver()
    e1 = s.new_elem(("Index", s.new_dim(3, A)), A)
    e2 = s.new_elem(("Index", s.new_dim(4, B)), B)
    with pytest.raises(ShapeMismatchError, match="index range") as info:
        s.unify_elems(e1, e2, "emb")
    assert "3" in str(info.value) and "4" in str(info.value)


def test_index_vs_real_is_an_error():
    s = Solver()
    with pytest.raises(ElementTypeError):
        s.unify_elems(s.new_elem(("Index", s.new_dim(3)), A), s.new_elem("Real", B), "w")


def test_unknown_element_resolves_to_real_and_takes_the_other():
    s = Solver()
    u = s.new_elem()
    assert s.resolve_elem(u) == Real()
    s.unify_elems(u, s.new_elem("Integer"), "w")
    assert s.resolve_elem(u) == Integer()


# ---------------------------------------------------------------------------- rules
def _product(factors, target, **kw):
    s = Solver()
    cells = [s.new_varying() if f == "V" else s.new_dim(f, A if f is not None else None) for f in factors]
    shape = s.shape_of_dims(cells)
    t = s.new_dim(target, B if target is not None else None)
    rules.product(s, shape, t, Origin("product"), "the product", varying_hint="no sequences", **kw)
    s.solve()
    return s, cells, t


@pytest.mark.parametrize(
    "factors, target, solved, result",
    [
        ([2, 3, 4], None, [2, 3, 4], 24),  # forwards
        ([2, None, 4], 24, [2, 3, 4], 24),  # backwards
        ([None], 5, [5], 5),
        ([], None, [], 1),  # a scalar has one element
        ([3, None], None, [3, None], None),  # not enough to go either way
        ([None, None], 6, [None, None], 6),  # two unknowns: ambiguous
        ([0, None], 0, [0, None], 0),  # zero elements: no factor can be solved
    ],
)
def test_product_table(factors, target, solved, result):
    s, cells, t = _product(factors, target)
    assert [s.dim(c) for c in cells] == solved
    assert s.dim(t) == result


def test_product_indivisible():
    with pytest.raises(ShapeMismatchError, match="12 elements cannot be split") as info:
        _product([5, None], 12)
    assert "[5]" in str(info.value)


def test_product_forward_conflict():
    with pytest.raises(ShapeMismatchError, match="expected 7"):
        _product([2, 3], 7)


def test_product_varying_factor_is_an_error_with_the_hint():
    with pytest.raises(ShapeMismatchError) as info:
        _product(["V", 3], None)
    assert "the product cannot take a varying-length dimension" in str(info.value)
    assert "hint: no sequences" in str(info.value)


@pytest.mark.parametrize("default_vector, expected", [(True, (Known(12),)), (False, None)])
def test_product_default_vector(default_vector, expected):
    s = Solver()
    shape, t = s.new_shape(), s.new_dim(12)
    rules.product(s, shape, t, A, "w", varying_hint="", default_vector=default_vector)
    s.solve()
    assert s.resolve_shape(shape) == expected


def test_product_default_waits_for_other_constraints():
    """The default applies only at a fixed point, so a rank set by another constraint wins."""
    s = Solver()
    shape, t = s.new_shape(), s.new_dim(12)
    rules.product(s, shape, t, A, "w", varying_hint="", default_vector=True)
    other = s.shape_of_dims([s.new_dim(3), s.new_dim()])
    s.unify_shapes(shape, other, "w")
    s.solve()
    assert s.resolve_shape(shape) == (Known(3), Known(4))


def test_product_wakes_when_a_factor_is_solved_later():
    s = Solver()
    shape, t = s.new_shape(), s.new_dim()
    rules.product(s, shape, t, A, "w", varying_hint="")
    s.solve()
    assert s.dim(t) is None
    s.unify_shapes(shape, s.shape_of_dims([s.new_dim(2), s.new_dim(5)]), "w")
    s.solve()
    assert s.dim(t) == 10


@pytest.mark.parametrize(
    "parts, whole, solved, result",
    [
        ([2, 3, 5], None, [2, 3, 5], 10),
        ([2, None, 5], 10, [2, 3, 5], 10),
        ([None, 4], 4, [0, 4], 4),
        ([2, None, None], 10, [2, None, None], 10),
    ],
)
def test_total_table(parts, whole, solved, result):
    s = Solver()
    cells = [s.new_dim(p) for p in parts]
    r = s.new_dim(whole)
    rules.total(s, cells, r, A, "cat")
    s.solve()
    assert [s.dim(c) for c in cells] == solved
    assert s.dim(r) == result


def test_total_too_many_elements():
    s = Solver()
    r = s.new_dim(5)
    with pytest.raises(ShapeMismatchError, match="8 elements, more than the 5"):
        rules.total(s, [s.new_dim(8), s.new_dim()], r, A, "cat")
        s.solve()


def test_total_with_a_varying_part_is_a_new_varying_length():
    s = Solver()
    v = s.new_varying()
    r = s.new_dim()
    rules.total(s, [s.new_dim(2), v], r, A, "cat")
    s.solve()
    assert isinstance(s.resolve_dim(r), Varying)
    assert not s.same_dim(r, v)  # L + 2 is not L


def test_mapped_forward_and_negative():
    s = Solver()
    a, b = s.new_dim(), s.new_dim()
    rules.mapped(s, a, b, lambda n: n - 2, A, "conv")
    s.solve()
    assert s.dim(b) is None
    s.bind_dim(a, 5, B, "w")
    s.solve()
    assert s.dim(b) == 3
    s2 = Solver()
    with pytest.raises(ShapeMismatchError, match="size 1 gives an empty or negative output size"):
        rules.mapped(s2, s2.new_dim(1), s2.new_dim(), lambda n: n - 2, A, "conv")
        s2.solve()


@pytest.mark.parametrize("same", [True, False])
def test_mapped_varying(same):
    s = Solver()
    a, b = s.new_varying(), s.new_dim()
    rules.mapped(s, a, b, lambda n: n, A, "w", same_when_varying=same)
    s.solve()
    assert isinstance(s.resolve_dim(b), Varying)
    assert s.same_dim(a, b) is same


@pytest.mark.parametrize(
    "inputs, after, result",
    [
        ([3, 1], [3, 1], 3),
        ([1, 3], [1, 3], 3),
        ([1, 1], [1, 1], 1),
        ([1, 3, 3], [1, 3, 3], 3),
        ([None, 3], [3, 3], 3),  # an unknown input is taken equal to the result
        ([1, None], [1, None], None),
    ],
)
def test_broadcast_table(inputs, after, result):
    s = Solver()
    cells = [s.new_dim(v) for v in inputs]
    r = s.new_dim()
    rules.broadcast(s, cells, r, A, "axis 1")
    s.solve()
    assert [s.dim(c) for c in cells] == after
    assert s.dim(r) == result


def test_broadcast_conflict():
    s = Solver()
    with pytest.raises(ShapeMismatchError) as info:
        rules.broadcast(s, [s.new_dim(3, A), s.new_dim(4, B)], s.new_dim(), Origin("bc"), "axis 1")
        s.solve()
    assert "3" in str(info.value) and "4" in str(info.value)
    assert "model.py:10" in str(info.value) and "model.py:11" in str(info.value)


def test_broadcast_varying():
    s = Solver()
    v = s.new_varying()
    r = s.new_dim()
    rules.broadcast(s, [v, s.new_dim(1)], r, A, "axis 1")
    s.solve()
    assert s.same_dim(r, v)


# ------------------------------------------------------------------ property tests
# A dimension cell's initial value: a size, "V" (a fresh varying symbol) or None.
dim_values = st.one_of(st.none(), st.integers(1, 3), st.just("V"))


class _UnionFind:
    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, i):
        while self.parent[i] != i:
            i = self.parent[i]
        return i

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)


def _components(values, pairs):
    """The union-find of ``pairs`` over the cells, and each component's values by root."""
    uf = _UnionFind(len(values))
    for a, b in pairs:
        uf.union(a, b)
    comps = {}
    for i, v in enumerate(values):
        comps.setdefault(uf.find(i), []).append(v)
    return uf, comps


def _dim_model(values, pairs):
    """Expected outcome: None for a conflict, else per cell ("K", n) | ("V", comp) | ("A", comp)."""
    uf, comps = _components(values, pairs)
    out = []
    for i in range(len(values)):
        vs = comps[uf.find(i)]
        known = {v for v in vs if isinstance(v, int)}
        if len(known) > 1:
            return None
        if known:
            out.append(("K", known.pop()))
        elif "V" in vs:
            out.append(("V", uf.find(i)))
        else:
            out.append(("A", uf.find(i)))
    return out


def _dim_solver(values, pairs):
    s = Solver()
    cells = [s.new_varying() if v == "V" else s.new_dim(v, A if v else None) for v in values]
    try:
        for a, b in pairs:
            s.unify_dims(cells[a], cells[b], "w")
    except ShapeMismatchError:
        return None
    return [s.resolve_dim(c) for c in cells]


def _same_partition(resolved, expected):
    """Known sizes agree; varying/unknown cells are grouped exactly as in the model."""
    for r, (kind, value) in zip(resolved, expected):
        if kind == "K":
            assert r == Known(value)
        else:
            assert isinstance(r, Varying if kind == "V" else Auto)
    for i in range(len(resolved)):
        for j in range(len(resolved)):
            if expected[i][0] != "K" and expected[j][0] != "K":
                assert (resolved[i] == resolved[j]) == (expected[i] == expected[j])


@st.composite
def unification_problems(draw):
    values = draw(st.lists(dim_values, min_size=1, max_size=7))
    n = len(values)
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=10))
    order = draw(st.permutations(range(len(pairs))))
    flips = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    shuffled = [(b, a) if f else (a, b) for (a, b), f in zip((pairs[k] for k in order), flips)]
    return values, pairs, shuffled


@given(unification_problems())
def test_dim_unification_is_order_independent(problem):
    values, pairs, shuffled = problem
    expected = _dim_model(values, pairs)
    for sequence in (pairs, shuffled):
        resolved = _dim_solver(values, sequence)
        if expected is None:
            assert resolved is None
        else:
            assert resolved is not None
            _same_partition(resolved, expected)


elem_values = st.one_of(
    st.none(),
    st.just("Real"),
    st.just("Integer"),
    st.tuples(st.just("Index"), st.one_of(st.none(), st.integers(2, 3))),
)


def _elem_model(values, pairs):
    uf, comps = _components(values, pairs)
    out = []
    for i in range(len(values)):
        vs = [v for v in comps[uf.find(i)] if v is not None]
        real = "Real" in vs
        index = [v for v in vs if isinstance(v, tuple)]
        ints = "Integer" in vs or index
        if real and ints:
            return None
        ranges = {n for _, n in index if n is not None}
        if len(ranges) > 1:
            return None
        if index:
            out.append(("Index", ranges.pop() if ranges else None))
        elif ints:
            out.append("Integer")
        else:
            out.append("Real")  # unknown resolves to Real
    return out


def _elem_solver(values, pairs):
    s = Solver()
    cells = [
        s.new_elem(("Index", s.new_dim(v[1])) if isinstance(v, tuple) else v, A if v else None)
        for v in values
    ]
    try:
        for a, b in pairs:
            s.unify_elems(cells[a], cells[b], "w")
    except ShapeMismatchError:  # ElementTypeError or an index-range conflict
        return None
    out = []
    for c in cells:
        e = s.resolve_elem(c)
        if isinstance(e, Index):
            out.append(("Index", e.n.size if isinstance(e.n, Known) else None))
        else:
            out.append(str(e))
    return out


@st.composite
def element_problems(draw):
    values = draw(st.lists(elem_values, min_size=1, max_size=6))
    n = len(values)
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=8))
    order = draw(st.permutations(range(len(pairs))))
    return values, pairs, [pairs[k][::-1] for k in order]


@given(element_problems())
def test_element_unification_matches_model_in_any_order(problem):
    values, pairs, shuffled = problem
    expected = _elem_model(values, pairs)
    assert _elem_solver(values, pairs) == expected
    assert _elem_solver(values, shuffled) == expected


@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data())
def test_product_solves_the_missing_factor(sizes, data):
    missing = data.draw(st.integers(0, len(sizes) - 1))
    factors = [None if i == missing else n for i, n in enumerate(sizes)]
    s, cells, t = _product(factors, math.prod(sizes))
    assert [s.dim(c) for c in cells] == sizes
    # and forwards
    s, cells, t = _product(sizes, None)
    assert s.dim(t) == math.prod(sizes)


@given(st.lists(st.integers(1, 6), min_size=2, max_size=4), st.data())
def test_product_rejects_a_wrong_total(sizes, data):
    missing = data.draw(st.integers(0, len(sizes) - 1))
    rest = math.prod(n for i, n in enumerate(sizes) if i != missing)
    total = data.draw(st.integers(1, 200).filter(lambda t: t % rest))
    factors = [None if i == missing else n for i, n in enumerate(sizes)]
    with pytest.raises(ShapeMismatchError, match="cannot be split"):
        _product(factors, total)


@given(st.lists(st.integers(0, 9), min_size=1, max_size=4), st.data())
def test_total_solves_the_missing_part(parts, data):
    missing = data.draw(st.integers(0, len(parts) - 1))
    s = Solver()
    cells = [s.new_dim(None if i == missing else n) for i, n in enumerate(parts)]
    r = s.new_dim(sum(parts))
    rules.total(s, cells, r, A, "cat")
    s.solve()
    assert [s.dim(c) for c in cells] == parts
