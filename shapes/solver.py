"""One constraint solver for all shape inference, with provenance.

Three kinds of cells live in union-find tables:

* dimension cells: a known size, a varying symbol, or unknown;
* shape cells: a tuple of dimension cells, or unbound (rank not known yet);
* element cells: "Real", "Integer", ("Index", dim cell), or unknown.

Constraints are unifications (edges, shared template variables) and *rules*: propagators
re-run whenever a cell they watch changes, until a fixed point. A rule may also have a
*default*, tried only at a fixed point (for example "a LinearLayer whose input rank is still
unknown takes a vector"); defaults run one at a time, each followed by a new fixed point.

Every bound value remembers its :class:`Origin` (which port, which user line), so a conflict
is reported with both sides.

Merging rules (as in ONNX shape inference): two different known sizes conflict; a known size
beats a varying symbol; a symbol beats unknown; two symbols merge into one.
"""
from __future__ import annotations

from collections import deque
from itertools import repeat
from dataclasses import dataclass
from typing import Callable, Iterable, Union

from .dims import Auto, Dim, Known, Varying
from .elements import Element, Index, Integer, Real
from ..errors import ElementTypeError, ShapeMismatchError

Where = Union[str, Callable[[], str]]


def _text(where: Where) -> str:
    return where() if callable(where) else where


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a description and the user's ``file:line`` if known."""

    what: str
    site: str | None = None

    def __str__(self) -> str:
        return f"{self.what}  ({self.site})" if self.site else self.what


class Sym:
    """A varying-length symbol (identity matters, the name is for display)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Sym({self.name})"


def _show_elem(value: object) -> str:
    if isinstance(value, tuple):
        return "an index (Integer in a range)"
    return "Automatic" if value is None else str(value)


class _Table:
    """A union-find table whose roots carry a value, an origin and the rules watching them.

    One table holds the dimension, shape and element cells alike (one id space), so that the
    cells of a layer are one contiguous range (see :meth:`Solver.snapshot`). A cell watched
    by no rule has ``watch`` None. ``owner`` is the copy (an index into
    ``Solver._contexts``) whose template origin the cell still holds, or -1: a copied cell,
    or one given an origin by a copied rule, shares its template's origin object, re-stated
    for the copy only when a message shows it.
    """

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.value: list[object] = []
        self.origin: list[Origin | None] = []
        self.owner: list[int] = []
        self.watch: list[set[int] | None] = []

    def new(self, value: object, origin: Origin | None, owner: int = -1) -> int:
        i = len(self.parent)
        self.parent.append(i)
        self.value.append(value)
        self.origin.append(origin)
        self.owner.append(owner)
        self.watch.append(None)
        return i

    def find(self, i: int) -> int:
        parent = self.parent
        root = parent[i]
        if root == i:
            return i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    def set_origin(self, r: int, origin: Origin | None, owner: int) -> None:
        self.origin[r] = origin
        self.owner[r] = owner

    def link(self, keep: int, drop: int) -> None:
        """Make ``keep`` the root of ``drop``'s class, watched by the rules of both."""
        self.parent[drop] = keep
        big, small = self.watch[keep], self.watch[drop]
        if small is None:
            return
        if big is None:
            big = small
        else:
            if len(big) < len(small):  # grow the larger set: linear overall
                big, small = small, big
            big |= small
        self.watch[keep] = big
        self.watch[drop] = None


@dataclass(frozen=True, slots=True)
class _Rule:
    """``run(solver, base, *args)``. A copied template's copies share its rules: the solver
    keeps, per rule id, the ``base`` added to the cell ids among ``args`` (0 for a rule
    installed directly, the offset of the copy) and the copy whose rule it is (its
    ``owner``): while it runs, the provenance among ``args`` stands for that copy (see
    :meth:`Solver.text`)."""

    run: Callable[..., None]
    default: Callable[..., None] | None
    args: tuple
    watched: tuple[int, ...]


def _call_run(solver: "Solver", base: int, run: Callable[[], None], default: object) -> None:
    run()


def _call_default(solver: "Solver", base: int, run: object, default: Callable[[], None]) -> None:
    default()


def movable(value: object) -> bool:
    """Whether ``value`` is provenance that a copied template re-states for its copy (it has
    a ``moved(context)`` method, as the lazy descriptions of :mod:`layers.scope` do)."""
    return hasattr(type(value), "moved")


@dataclass(frozen=True)
class Snapshot:
    """The cells and rules one constraint collection created, relative to its first cell
    (see :meth:`Solver.snapshot`): what :meth:`Solver.instantiate` copies."""

    first: int
    parent: tuple[int, ...]
    value: tuple[object, ...]
    shapes: tuple[tuple[int, tuple[int, ...]], ...]
    indexes: tuple[tuple[int, int], ...]
    symbols: tuple[int, ...]
    origin: tuple[object, ...]
    watch: tuple[tuple[int, frozenset[int]], ...]
    rules: tuple[_Rule, ...]


class Solver:
    """Collects cells and constraints and solves them to a fixed point."""

    def __init__(self) -> None:
        self._dims = self._shapes = self._elems = _Table()  # one id space (see _Table)
        self._rules: list[_Rule] = []
        self._bases: list[int] = []  # per rule (see _Rule)
        self._owners: list[int] = []  # per rule: the copy it belongs to, or -1
        self._owner = -1  # the copy whose rule is running, or -1
        self._queue: deque[int] = deque()
        self._queued: set[int] = set()
        self._symbols = 0
        self._contexts: list[object] = []  # one per copied template (see _Table.owner)
        self._opaque = 0  # rules that a snapshot cannot copy (closures over cell ids)
        self.changes = 0
        self.steps = 0  # rule runs: linear in the size of a net (see tests)

    # ----------------------------------------------------------------- dimension cells
    def new_dim(self, size: int | None = None, origin: Origin | None = None) -> int:
        return self._dims.new(size, origin if size is not None else None, self._owner)

    def new_varying(self, origin: Origin | None = None) -> int:
        self._symbols += 1
        return self._dims.new(Sym(f"L{self._symbols}"), origin, self._owner)

    def dim(self, d: int) -> object:
        """The current value of a dimension cell: an int, a :class:`Sym`, or None."""
        return self._dims.value[self._dims.find(d)]

    def dim_values(self, dims: Iterable[int]) -> list[object]:
        """The current values of dimension cells (as :meth:`dim` of each)."""
        t = self._dims
        parent, value, find = t.parent, t.value, t.find
        return [value[d] if parent[d] == d else value[find(d)] for d in dims]

    def dim_origin(self, d: int) -> Origin | None:
        return self._origin(self._dims.find(d))

    def _origin(self, r: int) -> Origin | None:
        """The origin of root ``r``, re-stated for the copy that holds its template's."""
        t = self._dims
        owner = t.owner[r]
        origin = t.origin[r]
        return origin if owner < 0 or origin is None else origin.moved(self._contexts[owner])  # type: ignore[union-attr]

    def restated(self, provenance: object) -> object:
        """``provenance`` (an origin or a description given to a rule) as it stands for the
        copy whose rule is running: a copied rule runs on its template's arguments."""
        if self._owner < 0 or not movable(provenance):
            return provenance
        return provenance.moved(self._contexts[self._owner])  # type: ignore[attr-defined]

    def text(self, where: Where) -> str:
        """The text of a description, for the copy whose rule is running (if any)."""
        return _text(self.restated(where))

    def same_dim(self, a: int, b: int) -> bool:
        return self._dims.find(a) == self._dims.find(b)

    def bind_dim(self, d: int, size: int, origin: Origin, where: Where) -> None:
        """Fix dimension ``d`` to ``size`` (as unifying it with a new cell of that size
        would, without the cell)."""
        t = self._dims
        r = t.find(d)
        value = t.value[r]
        if value == size:
            return
        if isinstance(value, int):
            self._size_error(where, value, self._origin(r), size, self.restated(origin))
        t.value[r] = size  # a known size beats a varying symbol and unknown
        t.set_origin(r, origin, self._owner)
        watchers = t.watch[r]
        if watchers:
            self._touch(tuple(watchers))

    def unify_dims(self, a: int, b: int, where: Where) -> None:
        """Make ``a`` and ``b`` the same dimension; ``a``'s value is the "expected" one."""
        t = self._dims
        ra, rb = t.find(a), t.find(b)
        if ra == rb:
            return
        va, vb = t.value[ra], t.value[rb]
        if isinstance(va, int) and isinstance(vb, int) and va != vb:
            self._size_error(where, va, self._origin(ra), vb, self._origin(rb))
        if isinstance(vb, int) or (va is None and vb is not None):
            ra, rb = rb, ra  # keep the more informative value at the root
        self._merge(t, ra, rb)

    def _size_error(self, where: Where, va: int, oa: object, vb: int, ob: object) -> None:
        self._conflict(where, "size", va, oa, vb, ob,
                       "make the two sizes agree, or leave one of them Automatic.")

    def _conflict(self, where: Where, what: str, expected: object, oa: object, got: object,
                  ob: object, hint: str) -> None:
        """Two constraints disagree on ``what`` at ``where``: each value with what set it."""
        raise ShapeMismatchError(
            f"inconsistent {what} for {self.text(where)}\n"
            f"  expected {expected} - set by {oa or 'an earlier constraint'}\n"
            f"  got      {got} - set by {ob or 'an earlier constraint'}",
            hint=hint,
        )

    # --------------------------------------------------------------------- shape cells
    def new_shape(self, rank: int | None = None, origin: Origin | None = None) -> int:
        s = self._shapes.new(None, None)
        if rank is not None:
            self.set_rank(s, rank, origin, "")
        return s

    def shape_of_dims(self, dims: Iterable[int], origin: Origin | None = None) -> int:
        return self._shapes.new(tuple(dims), origin, self._owner)

    def dims(self, s: int) -> tuple[int, ...] | None:
        """The dimension cells of shape ``s``, or None while its rank is unknown."""
        return self._shapes.value[self._shapes.find(s)]

    def shape_origin(self, s: int) -> Origin | None:
        return self._origin(self._shapes.find(s))

    def set_rank(self, s: int, rank: int, origin: Origin | None, where: Where) -> tuple[int, ...]:
        """Give ``s`` rank ``rank`` (fresh unknown dimensions) or check that it has it."""
        dims = self.dims(s)
        if dims is None:
            self._bind_shape(s, tuple(self.new_dim() for _ in range(rank)), origin)
            return self.dims(s)  # type: ignore[return-value]
        if len(dims) != rank:
            self._rank_error(where, rank, self.restated(origin), len(dims), self.shape_origin(s))
        return dims

    def unify_shapes(self, a: int, b: int, where: Where) -> None:
        """Make shapes ``a`` and ``b`` equal (rank and every dimension)."""
        t = self._shapes
        ra, rb = t.find(a), t.find(b)
        if ra == rb:
            return
        va, vb = t.value[ra], t.value[rb]
        if va is None or vb is None:
            keep, drop = (rb, ra) if va is None else (ra, rb)
            dims, watchers = t.value[keep], t.watch[drop]
            if dims is not None and watchers:
                for d in dims:
                    self._watch_dim(d, watchers)
            self._merge(t, keep, drop)
            return
        if len(va) != len(vb):
            self._rank_error(where, len(va), self._origin(ra), len(vb), self._origin(rb))
        t.link(ra, rb)
        for i, (da, db) in enumerate(zip(va, vb)):
            self.unify_dims(da, db, lambda i=i: f"dimension {i + 1} of {self.text(where)}")

    def _merge(self, t: _Table, keep: int, drop: int) -> None:
        """Link ``drop`` under ``keep``; wake the rules of the side whose value changed."""
        watchers = t.watch[drop]
        woken = tuple(watchers) if watchers and t.value[drop] != t.value[keep] else ()
        t.link(keep, drop)
        if woken:
            self._touch(woken)

    def _bind_shape(self, s: int, dims: tuple[int, ...], origin: Origin | None) -> None:
        t = self._shapes
        r = t.find(s)
        t.value[r] = dims
        t.set_origin(r, origin, self._owner)
        watchers = t.watch[r]
        if watchers:
            for d in dims:
                self._watch_dim(d, watchers)
            self._touch(watchers)
        else:
            self.changes += 1

    def _rank_error(self, where: Where, ra: int, oa: object, rb: int, ob: object) -> None:
        self._conflict(where, "ranks", f"a rank-{ra} array", oa, f"a rank-{rb} array", ob,
                       "check the ranks of the ports joined here.")

    # ------------------------------------------------------------------- element cells
    def new_elem(self, value: object = None, origin: Origin | None = None) -> int:
        return self._elems.new(value, origin if value is not None else None, self._owner)

    def elem(self, e: int) -> object:
        return self._elems.value[self._elems.find(e)]

    def unify_elems(self, a: int, b: int, where: Where) -> None:
        t = self._elems
        ra, rb = t.find(a), t.find(b)
        if ra == rb:
            return
        va, vb = t.value[ra], t.value[rb]
        if va is not None and vb is not None:
            index_a, index_b = isinstance(va, tuple), isinstance(vb, tuple)
            if va == "Real" and vb == "Real":
                pass
            elif index_a and index_b:
                self.unify_dims(va[1], vb[1], lambda: f"the index range of {self.text(where)}")
            elif {va, vb} <= {"Integer"} or (index_a and vb == "Integer"):
                pass
            elif index_b and va == "Integer":
                ra, rb = rb, ra
            else:
                raise ElementTypeError(
                    f"inconsistent element types for {self.text(where)}\n"
                    f"  expected {_show_elem(va)} - set by {self._origin(ra) or 'an earlier constraint'}\n"
                    f"  got      {_show_elem(vb)} - set by {self._origin(rb) or 'an earlier constraint'}",
                    hint="integer (index) ports feed EmbeddingLayer; real ports carry numbers.",
                )
        elif va is None:
            ra, rb = rb, ra
        self._merge(t, ra, rb)

    # ------------------------------------------------------------------------- rules
    def rule(
        self,
        run: Callable[[], None],
        *,
        dims: Iterable[int] = (),
        shapes: Iterable[int] = (),
        default: Callable[[], None] | None = None,
    ) -> None:
        """Add a propagator re-run whenever a watched cell changes (and once at the start)."""
        self._opaque += 1
        self._add_rule(_Rule(_call_run, None if default is None else _call_default,
                             (run, default), ()), dims, shapes)

    def fallback(self, default: Callable[[], None]) -> None:
        """A default alone: tried only at a fixed point, like a rule's ``default``."""
        self.rule(lambda: None, default=default)

    def propagator(
        self,
        run: Callable[..., None],
        args: tuple,
        *,
        dims: Iterable[int] = (),
        shapes: Iterable[int] = (),
        default: Callable[..., None] | None = None,
        provenance: Iterable[object] = (),
    ) -> None:
        """A rule as data: ``run(solver, base, *args)`` (and ``default`` alike), where every
        int, or tuple of ints, among ``args`` is a cell id to which ``run`` adds ``base``.
        Unlike a closure, a copied template copies it; ``provenance`` (the origins and
        descriptions among ``args``) must then be :func:`movable`."""
        if not all(movable(p) for p in provenance):
            self._opaque += 1
        dims, shapes = tuple(dims), tuple(shapes)
        self._add_rule(_Rule(run, default, args, dims + shapes), dims, shapes)

    def _add_rule(self, rule: _Rule, dims: Iterable[int], shapes: Iterable[int]) -> None:
        rid = len(self._rules)
        self._rules.append(rule)
        self._bases.append(0)
        self._owners.append(self._owner)  # a rule installed by a copied rule is the copy's
        t, one = self._dims, (rid,)
        for d in dims:
            self._watch_dim(d, one)
        for s in shapes:
            r = t.find(s)
            self._watch_root(r, one)
            for d in t.value[r] or ():
                self._watch_dim(d, one)
        self._touch(one)

    def _watch_dim(self, d: int, rules: Iterable[int]) -> None:
        self._watch_root(self._dims.find(d), rules)

    def _watch_root(self, r: int, rules: Iterable[int]) -> None:
        watch = self._dims.watch
        if watch[r] is None:
            watch[r] = set(rules)
        else:
            watch[r].update(rules)

    def _touch(self, rules: Iterable[int]) -> None:
        self.changes += 1
        for rid in rules:
            if rid not in self._queued:
                self._queued.add(rid)
                self._queue.append(rid)

    def solve(self) -> None:
        """Run rules to a fixed point; then apply defaults one at a time until none applies."""
        rules, bases, owners, queue, queued = (
            self._rules, self._bases, self._owners, self._queue, self._queued)
        steps = 0
        try:
            while True:
                while queue:
                    rid = queue.popleft()
                    queued.discard(rid)
                    rule = rules[rid]
                    steps += 1
                    self._owner = owners[rid]
                    rule.run(self, bases[rid], *rule.args)
                self._owner = -1
                for rid, rule in enumerate(rules):
                    if rule.default is None:
                        continue
                    before = self.changes
                    self._owner = owners[rid]
                    rule.default(self, bases[rid], *rule.args)
                    self._owner = -1
                    if self.changes != before:
                        break
                else:
                    return
        finally:
            self._owner = -1
            self.steps += steps

    # ----------------------------------------------------------- copying templates
    def mark(self) -> tuple[int, int, int]:
        """The current end of the cells and rules (for :meth:`snapshot`)."""
        return len(self._dims.parent), len(self._rules), self._opaque

    def snapshot(self, mark: tuple[int, int, int], cells: Iterable[int] = ()) -> Snapshot | None:
        """The cells and rules created since ``mark``, if they can be copied: they refer to
        no older cell, every rule among them is data (:meth:`propagator`), every origin is
        movable, and ``cells`` (the ones the caller will look up) are among them; else None."""
        first, first_rule, opaque = mark
        t = self._dims
        end, end_rule = len(t.parent), len(self._rules)
        if self._opaque != opaque or any(c < first for c in cells):
            return None
        parent = tuple(p - first for p in t.parent[first:])
        if any(p < 0 for p in parent):
            return None
        values = list(t.value[first:])
        shapes, indexes, symbols = [], [], []
        for i, v in enumerate(values):
            if isinstance(v, tuple) and v and v[0] == "Index":
                indexes.append((i, v[1] - first))
                values[i] = None
            elif isinstance(v, tuple):
                shapes.append((i, tuple(d - first for d in v)))
                values[i] = None
            elif isinstance(v, Sym):
                symbols.append(i)
                values[i] = None
        if any(d < 0 for _, dims in shapes for d in dims) or any(d < 0 for _, d in indexes):
            return None
        origins = tuple(t.origin[first:])
        if not all(o is None or movable(o) for o in origins) or any(
                o >= 0 for o in t.owner[first:]):
            return None
        watch = tuple((i, frozenset(r - first_rule for r in w))
                      for i, w in enumerate(t.watch[first:]) if w)
        if any(r < 0 for _, w in watch for r in w):
            return None
        rules = tuple(self._rules[first_rule:end_rule])
        if any(o >= 0 for o in self._owners[first_rule:end_rule]):
            return None
        for rule in rules:
            ids = [a for a in rule.args if type(a) is int] + [
                d for a in rule.args if isinstance(a, tuple) for d in a if type(d) is int]
            if any(c < first for c in (*ids, *rule.watched)):
                return None
        return Snapshot(first, parent, tuple(values), tuple(shapes), tuple(indexes),
                        tuple(symbols), origins, watch, rules)

    def instantiate(self, snap: Snapshot, context: object) -> int:
        """Copy ``snap``'s cells and rules as new ones, their provenance re-stated for
        ``context`` (lazily: when a message is shown). Returns the offset from the
        snapshot's cell ids to the copy's."""
        t = self._dims
        start, first_rule = len(t.parent), len(self._rules)
        size = len(snap.parent)
        t.parent.extend(map(start.__add__, snap.parent))
        value = t.value
        value.extend(snap.value)
        for i, dims in snap.shapes:
            value[start + i] = tuple(map(start.__add__, dims))
        for i, d in snap.indexes:
            value[start + i] = ("Index", d + start)
        for i in snap.symbols:
            self._symbols += 1
            value[start + i] = Sym(f"L{self._symbols}")
        t.origin.extend(snap.origin)
        owner = len(self._contexts)
        t.owner.extend(repeat(owner, size))
        self._contexts.append(context)
        watch = t.watch
        watch.extend(repeat(None, size))
        for i, w in snap.watch:
            watch[start + i] = set(map(first_rule.__add__, w))
        offset = start - snap.first
        count = len(snap.rules)
        self._rules.extend(snap.rules)
        self._bases.extend(repeat(offset, count))
        self._owners.extend(repeat(owner, count))
        new = range(first_rule, first_rule + count)  # queued as _touch would (none was)
        self._queue.extend(new)
        self._queued.update(new)
        self.changes += 1
        return offset

    # --------------------------------------------------------------------- read-out
    def close(self) -> None:
        """Drop the rules, origins and watchers (keeping the solved values, which
        :meth:`solved` shares): provenance may refer back to whoever owns this solver, and
        a cycle waits for the garbage collector."""
        t = self._dims
        t.origin, t.owner, t.watch = [], [], []
        self._rules, self._bases, self._owners, self._contexts = [], [], [], []
        self._queue.clear()
        self._queued.clear()

    def solved(self) -> "Solver":
        """A solver holding only the solved values, for reading out after :meth:`solve`
        (no rules, origins or watchers: what a net keeps alive with its inference)."""
        done = Solver()
        done._dims.parent, done._dims.value = self._dims.parent, self._dims.value
        done.steps = self.steps
        return done

    def resolve_dim(self, d: int) -> Dim:
        r = self._dims.find(d)
        v = self._dims.value[r]
        if isinstance(v, int):
            return Known(v)
        if isinstance(v, Sym):
            return Varying(v.name)
        return Auto(r)

    def resolve_shape(self, s: int) -> tuple[Dim, ...] | None:
        dims = self.dims(s)
        return None if dims is None else tuple(self.resolve_dim(d) for d in dims)

    def resolve_elem(self, e: int) -> Element:
        v = self.elem(e)
        if isinstance(v, tuple):
            return Index(self.resolve_dim(v[1]))
        return Integer() if v == "Integer" else Real()


__all__ = ["Origin", "Snapshot", "Solver", "Sym", "Where", "movable"]
