"""Constraint collection: the view of the solver a layer gets, and the inference driver.

Every port and array of every layer, at any depth, is a cell keyed by its path::

    (("enc", "proj"), "Input")      port "Input" of layer enc/proj
    (("enc", "proj"), "#Weights")   array "Weights" of the same layer

so a nested graph's ports are the very cells its parent connects to: inference over a whole
nested net is one solver run.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import count, islice
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ..shapes import PortSpec, Restricted, Solver
from ..errors import NetGraphError, ShapeMismatchError
from ..shapes.porttype import PortType
from ..shapes.solver import Origin, Snapshot

if TYPE_CHECKING:
    from .base import Layer

Path = tuple[str, ...]


def show_path(path: Path) -> str:
    return "/".join(path) if path else "net"


class At:
    """A place in a net, spelled only when a message needs it (``str(at)`` or ``at()``):

    * ``At(scope, port, what)``: ``port "Input" of enc/proj (LinearLayer[8])``;
    * ``At(scope)``: ``enc/proj (LinearLayer[8])``;
    * ``At(scope, name, "given array")``: ``the given array "Weights" of enc/proj``.

    Building messages eagerly for every port of every layer was most of the time of shape
    inference; an ``At`` costs one small object. ``moved`` re-states it for another scope
    (a copied template, see :func:`constrain`).
    """

    __slots__ = ("scope", "port", "what")

    def __init__(self, scope: "Scope", port: str | None = None, what: str = "port") -> None:
        self.scope, self.port, self.what = scope, port, what

    def __call__(self) -> str:
        path = show_path(self.scope.path)
        if self.port is None:
            return f"{path} ({self.scope.layer.describe()})"
        if self.what == "given array":
            return f'the given array "{self.port}" of {path}'
        return f'{self.what} "{self.port}" of {path} ({self.scope.layer.describe()})'

    __str__ = __call__

    def __format__(self, spec: str) -> str:
        return format(self(), spec)

    def moved(self, scope: "Scope") -> "At":
        return At(scope, self.port, self.what)


class AtDimension:
    """``dimension 2 of port "Output" of plus (ThreadingLayer[Plus])``: an axis of the port
    ``at`` names, spelled when a message needs it; ``moved`` as :meth:`At.moved`."""

    __slots__ = ("at", "axis")

    def __init__(self, at: At, axis: int) -> None:
        self.at, self.axis = at, axis

    def __call__(self) -> str:
        return f"dimension {self.axis + 1} of {self.at()}"

    __str__ = __call__

    def moved(self, scope: "Scope") -> "AtDimension":
        return AtDimension(self.at.moved(scope), self.axis)


class ScopeOrigin:
    """An :class:`~shapes.solver.Origin` spelled on demand: ``what`` is the :class:`At` of a
    port of the layer at ``scope``, ``site`` that layer's ``file:line``."""

    __slots__ = ("at",)

    def __init__(self, at: At) -> None:
        self.at = at

    @property
    def what(self) -> At:
        return self.at

    @property
    def site(self) -> str | None:
        return self.at.scope.layer.origin

    def __str__(self) -> str:
        return str(Origin(str(self.at), self.site))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Origin, ScopeOrigin)) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def moved(self, scope: "Scope") -> "ScopeOrigin":
        at = self.at
        return ScopeOrigin(At(scope, at.port, at.what))


@dataclass(frozen=True)
class _Template:
    """What collecting one layer's constraints created (see :func:`constrain`)."""

    snapshot: Snapshot
    ports: tuple[tuple[str, int], ...]  # (name, shape cell)
    arrays: tuple[tuple[str, int], ...]


@dataclass
class _Cells:
    solver: Solver = field(default_factory=Solver)
    ports: dict[tuple[Path, str], int] = field(default_factory=dict)
    """The shape cell of every port; its element cell is the next one (see Scope.port)."""
    arrays: dict[tuple[Path, str], int] = field(default_factory=dict)
    shared_users: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    templates: dict[tuple, _Template | None] = field(default_factory=dict)
    templates_run: int = 0  # templates run (not copied): what the scale tests count

    def close(self) -> None:
        """Drop the solver's rules and provenance and the templates, once solved (or
        failed): they refer to the scopes, which refer to the cells - a cycle that would
        otherwise wait for the garbage collector (a pass over every object of a big net)."""
        self.solver.close()
        self.templates.clear()


class Scope:
    """The cells of one layer at ``path``, by local port and array names."""

    __slots__ = ("_cells", "path", "layer", "solver")

    def __init__(self, cells: _Cells, path: Path, layer: "Layer") -> None:
        self._cells = cells
        self.path = path
        self.layer = layer
        self.solver = cells.solver

    def child(self, name: str, layer: "Layer") -> "Scope":
        return Scope(self._cells, self.path + (name,), layer)

    # ------------------------------------------------------------------------ cells
    def port(self, name: str) -> int:
        """The shape cell of port ``name``; its element-type cell is the next one."""
        ports, key = self._cells.ports, (self.path, name)
        shape = ports.get(key)
        if shape is None:
            shape = ports[key] = self.solver.new_shape()
            self.solver.new_elem()  # shape + 1
        return shape

    def elem(self, name: str) -> int:
        """The element-type cell of port ``name``."""
        return self.port(name) + 1

    def array(self, name: str) -> int:
        """The shape cell of array ``name``."""
        key = (self.path, name)
        if key not in self._cells.arrays:
            self._cells.arrays[key] = self.solver.new_shape()
        return self._cells.arrays[key]

    # ------------------------------------------------------------------ descriptions
    def where(self, port: str, what: str = "port") -> At:
        """``port "Input" of enc (LinearLayer[8])``, spelled when an error needs it."""
        return At(self, port, what)

    def origin(self, port: str | None = None, what: str = "port") -> Origin:
        return ScopeOrigin(At(self, port, what))

    # ------------------------------------------------------------------- constraints
    def dims(self, port: str, rank: int) -> tuple[int, ...]:
        """Give port ``port`` rank ``rank`` (or check it) and return its dimension cells."""
        return self.solver.set_rank(self.port(port), rank, self.origin(port), self.where(port))

    def array_dims(self, name: str, rank: int) -> tuple[int, ...]:
        return self.solver.set_rank(
            self.array(name), rank, self.origin(name, "array"), self.where(name, "array")
        )

    def fix(self, dim: int, size: int, port: str) -> None:
        self.solver.bind_dim(dim, size, self.origin(port), self.where(port))

    def same_dim(self, a: int, b: int, port: str) -> None:
        self.solver.unify_dims(a, b, self.where(port))

    def where_dim(self, port: str, axis: int) -> AtDimension:
        """``dimension {axis + 1} of port "Output" of ...``, spelled when an error needs it."""
        return AtDimension(At(self, port), axis)

    def when_ranked(self, ports: Sequence[str], install: Callable[["Scope", int], None]) -> None:
        """Call ``install(scope, rank)`` once, as soon as any of ``ports`` has a known rank,
        as :meth:`once_ranked` does; ``install`` holds no scope nor cell (a module-level
        function, or a ``functools.partial`` of one over plain values) and gets the scope
        to install in. The rule is data, so a template using it is copied (see
        :func:`constrain`): each copy installs in its own scope when its rank is known."""
        cells = tuple(self.port(p) for p in ports)
        installed = self.solver.new_dim()  # 1 once installed: each copy has its own cell
        at = self.where(ports[0])
        self.solver.propagator(_install_when_ranked, (cells, installed, install, at),
                               shapes=cells, provenance=(at,))

    def once_ranked(self, ports: Sequence[str], install: Callable[[int], None]) -> None:
        """Call ``install(rank)`` once, as soon as any of ``ports`` has a known rank (for
        rules that need the rank, e.g. per-axis rules of threading or catenation)."""
        cells = [self.port(p) for p in ports]
        done: list[bool] = []

        def run() -> None:
            if done:
                return
            for cell in cells:
                dims = self.solver.dims(cell)
                if dims is not None:
                    done.append(True)
                    install(len(dims))
                    return

        self.solver.rule(run, shapes=cells)

    def shapes(self, *, needs: str | None = None, hint: str | None = None,
               **patterns: Sequence[str | int]) -> dict[str, int]:
        """Declare port (or array) shapes as patterns over named variables, the way the
        docstring tables read: ``scope.shapes(Input=("*a", "n"), Output=("*a",))``.

        An entry is a dimension variable (a name: equal names are one dimension), a fixed
        size (an int), or a *rank variable* ``"*name"``: a run of dimensions of any length,
        the same run wherever the name appears (penzai's ``*var``); at most one a pattern.
        A pattern's rank is solved from whichever of its shapes is known first, in either
        direction. Returns the cell of every dimension variable (for further rules).
        ``needs`` (and ``hint``) word the error for a shape of too small a rank
        ("SequenceLastLayer needs a sequence (rank >= 1)").
        """
        s = self.solver
        names = {e for p in patterns.values() for e in p if isinstance(e, str) and not e.startswith("*")}
        cells = {name: s.new_dim() for name in sorted(names)}
        runs: dict[str, list[tuple[str, tuple]]] = {}

        def cell_of(key: str) -> int:
            return self.array(key) if key in self.layer.array_specs() else self.port(key)

        def what(key: str) -> str:
            return "array" if key in self.layer.array_specs() else "port"

        def bind(key: str, pattern: Sequence[str | int], run: Sequence[int] = ()) -> None:
            entries = [d for e in pattern for d in  # a run's cells are tagged ("run", cell)
                       ([("run", c) for c in run] if isinstance(e, str) and e.startswith("*") else [e])]
            dims = s.set_rank(cell_of(key), len(entries), self.origin(key, what(key)),
                              self.where(key, what(key)))
            for i, (dim, entry) in enumerate(zip(dims, entries)):
                where = lambda i=i: f"dimension {i + 1} of {self.where(key, what(key))}"  # noqa: E731
                if isinstance(entry, str):
                    s.unify_dims(dim, cells[entry], where)
                elif isinstance(entry, tuple):
                    s.unify_dims(dim, entry[1], where)
                else:
                    s.bind_dim(dim, entry, self.origin(key, what(key)), where)

        for key, pattern in patterns.items():
            rest = [e for e in pattern if isinstance(e, str) and e.startswith("*")]
            if not rest:
                bind(key, pattern)
            else:
                runs.setdefault(rest[0], []).append((key, tuple(pattern)))
        for users in runs.values():
            self._install_run(users, cell_of, bind, needs, hint)
        return cells

    def _install_run(self, users: list[tuple[str, tuple]], cell_of: Callable[[str], int],
                     bind: Callable[..., None], needs: str | None, hint: str | None) -> None:
        """One rank variable shared by ``users`` ((key, pattern) pairs): once any of their
        ranks is known, the run's length follows and every user gets its rank."""
        s = self.solver
        cells = [cell_of(key) for key, _ in users]
        done: list[bool] = []

        def run() -> None:
            if done:
                return
            for (key, pattern), cell in zip(users, cells):
                dims = s.dims(cell)
                if dims is None:
                    continue
                fixed = len(pattern) - 1
                if len(dims) < fixed and needs is not None:
                    found = f"rank {len(dims)}" if dims else "a scalar"
                    raise ShapeMismatchError(f"{self.where(key)}: {needs}; found {found}.", hint=hint)
                if len(dims) < fixed:
                    raise ShapeMismatchError(
                        f"{self.where(key)} should have at least {fixed} dimension(s); found "
                        f"rank {len(dims)}.")
                start = next(i for i, e in enumerate(pattern) if isinstance(e, str) and e.startswith("*"))
                shared = dims[start:start + len(dims) - fixed]
                done.append(True)
                for other, other_pattern in users:
                    bind(other, other_pattern, shared)
                return

        s.rule(run, shapes=cells)

    def same_element(self, a: str, b: str, at: str | None = None) -> None:
        """Ports ``a`` and ``b`` have the same element type (an error names port ``at``,
        by default ``b``)."""
        self.solver.unify_elems(self.elem(a), self.elem(b), self.where(b if at is None else at))

    def same_shape(self, a: str, b: str) -> None:
        """Ports ``a`` and ``b`` have the same shape and element type."""
        self.solver.unify_shapes(self.port(a), self.port(b), self.where(b))
        self.solver.unify_elems(self.elem(a), self.elem(b), self.where(b))

    def element(self, port: str, value: str | tuple) -> None:
        """Fix the element type of ``port``: "Real", "Integer" or ("Index", dim cell)."""
        s = self.solver
        s.unify_elems(self.elem(port), s.new_elem(value, self.origin(port)), self.where(port))

    def real(self, *ports: str) -> None:
        for port in ports:
            self.element(port, "Real")

    def declare(self, port: str, spec: PortSpec, origin: Origin) -> None:
        """Apply a user's port specification."""
        s = self.solver
        where = self.where(port)
        if spec.dims is not None:
            dims = s.set_rank(self.port(port), len(spec.dims), origin, where)
            for i, (cell, entry) in enumerate(zip(dims, spec.dims)):
                if isinstance(entry, int):
                    s.bind_dim(cell, entry, origin, f"dimension {i + 1} of {where}")
                elif entry == "Varying":
                    s.unify_dims(cell, s.new_varying(origin), f"dimension {i + 1} of {where}")
        if isinstance(spec.element, Restricted):
            value: object = ("Index", s.new_dim(spec.element.n, origin))
        else:
            value = spec.element
        if value is not None:
            s.unify_elems(self.elem(port), s.new_elem(value, origin), where)


def _install_when_ranked(solver: Solver, base: int, cells: tuple[int, ...], installed: int,
                         install: Callable[[Scope, int], None], at: At) -> None:
    if solver.dim(installed + base) is not None:
        return
    for cell in cells:
        dims = solver.dims(cell + base)
        if dims is not None:
            solver.bind_dim(installed + base, 1, None, "")
            install(solver.restated(at).scope, len(dims))
            return


def constrain(layer: "Layer", scope: Scope) -> None:
    """Collect all constraints of ``layer``: its declared ports, given arrays and template.

    Layers that are equal values (same type, options, port specs, array shapes; see
    :func:`template_key`) state the same constraints: the first one runs its template, the
    others copy the cells and rules it created (:meth:`Solver.instantiate`), with their own
    paths and sites as provenance. That keeps inference linear and cheap on nets of
    thousands of repeated layers.
    """
    cells = scope._cells
    key = _memoised_id(layer)
    template = cells.templates.get(key) if key is not None else None
    if template is not None:
        offset = cells.solver.instantiate(template.snapshot, scope)
        path = scope.path
        ports = cells.ports
        for name, shape in template.ports:
            ports[(path, name)] = shape + offset
        for name, shape in template.arrays:
            cells.arrays[(path, name)] = shape + offset
        return
    if key is None or key in cells.templates:  # not cacheable, or not copyable
        _collect(layer, scope)
        return
    mark = cells.solver.mark()
    ports, arrays = len(cells.ports), len(cells.arrays)
    _collect(layer, scope)
    cells.templates[key] = _template(scope, mark, ports, arrays)


def _memoised_id(layer: "Layer") -> int | None:
    """:func:`constraints_id` of ``layer``, memoised on it: a layer is immutable
    (``Layer._set`` forgets it); a copy made by pickle or deepcopy holds another marker and
    computes it again."""
    memo = layer.__dict__.get("_constraints_id")
    if memo is not None and memo[0] is _PROCESS:
        return memo[1]
    key = constraints_id(layer)
    object.__setattr__(layer, "_constraints_id", (_PROCESS, key))
    return key


def _template(scope: Scope, mark: tuple[int, int, int], ports: int, arrays: int) -> _Template | None:
    """The template of the layer at ``scope`` whose constraints were collected since ``mark``
    (the dict sizes ``ports`` and ``arrays`` before), or None if it cannot be copied."""
    cells, path = scope._cells, scope.path
    new_ports = _last(cells.ports, len(cells.ports) - ports)
    new_arrays = _last(cells.arrays, len(cells.arrays) - arrays)
    if any(p != path for (p, _), _ in (*new_ports, *new_arrays)):
        return None
    ids = [c for _, shape in new_ports for c in (shape, shape + 1)] + [c for _, c in new_arrays]
    snapshot = cells.solver.snapshot(mark, ids)
    if snapshot is None:
        return None
    return _Template(snapshot, tuple((n, shape) for (_, n), shape in new_ports),
                     tuple((n, c) for (_, n), c in new_arrays))


def _last(table: dict, count: int) -> list:
    """The last ``count`` items of ``table``, in order (without walking the others)."""
    return list(islice(reversed(table.items()), count))[::-1]


def _collect(layer: "Layer", scope: Scope) -> None:
    scope._cells.templates_run += 1
    for name, spec in layer.port_specs.items():
        scope.declare(name, spec, scope.origin(name, "declared port"))
    for name, arr in layer.arrays.items():
        if arr is not None:
            dims = scope.array_dims(name, arr.ndim)
            origin = scope.origin(name, "given array")
            for i, (cell, size) in enumerate(zip(dims, arr.shape)):
                scope.solver.bind_dim(
                    cell, int(size), origin, f"dimension {i + 1} of {scope.where(name, 'array')}"
                )
    layer.template(scope)
    for name, shared in getattr(layer, "shared", {}).items():
        scope._cells.shared_users.setdefault(shared, []).append(
            (str(scope.where(name, "array")), f"{show_path(scope.path)} ({layer.describe()})"))
        key = ((), f"SharedArrays/{shared}")
        if key not in scope._cells.arrays:
            scope._cells.arrays[key] = scope.solver.new_shape()
        scope.solver.unify_shapes(scope._cells.arrays[key], scope.array(name),
                                  f'the shared array NetArray("{shared}") used as {scope.where(name, "array")}')


# Fields of a layer that do not enter its constraints.
_NOT_CONSTRAINTS = frozenset({"origin", "_inference", "initializers", "regularizers",
                              "constraints", "activity_regularizer"})


_PROCESS = object()  # marks the numbers of this process's _IDS
_IDS: dict[tuple, int] = {}  # template key -> a number (never reused)


def constraints_id(layer: "Layer") -> int | None:
    """A number, the same for layers whose :func:`template_key` is equal (None if none)."""
    key = template_key(layer)
    if key is None:
        return None
    try:
        found = _IDS.get(key)
    except TypeError:  # an unhashable option
        return None
    if found is None:
        if len(_IDS) > 100_000:  # bounded; forgetting only loses sharing
            _IDS.clear()
        found = _IDS[key] = _next_id()
    return found


_counter = count()


def _next_id() -> int:
    return next(_counter)


@lru_cache(maxsize=None)
def _key_fields(cls: type) -> tuple[str, ...]:
    return tuple(sorted(cls._fields - _NOT_CONSTRAINTS))


def template_key(layer: "Layer") -> tuple | None:
    """A hashable value, equal for two layers that state the same constraints (only their
    provenance differs), or None when ``layer``'s cannot be copied: layers holding sub-nets
    or shared arrays, or with an unhashable field."""
    if layer.shared or layer.children():
        return None
    parts: list[Any] = [type(layer)]
    for name in _key_fields(type(layer)):
        value = getattr(layer, name)
        kind = _kind(type(value))
        if name == "arrays":  # only their shapes are constraints
            value = tuple((k, None if a is None else a.shape) for k, a in value.items())
        elif kind == "options":  # its values (a frozen model's hash and == are slower)
            value = (type(value), *value.__dict__.values())
        elif kind == "mapping":
            value = tuple(value.items())
        elif kind == "array":
            return None
        parts.append(value)
    return tuple(parts)


@lru_cache(maxsize=None)
def _kind(cls: type) -> str:
    """How :func:`template_key` takes a field value of type ``cls``."""
    from .base import LayerOptions

    if issubclass(cls, LayerOptions):
        return "options"
    if issubclass(cls, Mapping):
        return "mapping"
    return "array" if issubclass(cls, np.ndarray) else "value"


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a net is built and solved.

    Building a net of 100,000 layers allocates millions of long-lived objects; each
    generational collection would traverse them again (construction time grew faster than
    the net). Reference counting still frees everything; the collector resumes after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Solved(Mapping):
    """Cells read out as solved types on first access (a net of 100,000 layers has 400,000
    ports; most are never looked at one by one)."""

    def __init__(self, cells: Mapping[Any, Any], read: Callable[[Any], Any]) -> None:
        self._cells, self._read, self._done = cells, read, {}

    def __getitem__(self, key: Any) -> Any:
        done = self._done.get(key, self)
        if done is self:
            done = self._done[key] = self._read(self._cells[key])
        return done

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cells)

    def __len__(self) -> int:
        return len(self._cells)


@dataclass(frozen=True)
class Inference:
    """The solved types of every port and array of a net, keyed by path."""

    ports: Mapping[tuple[Path, str], PortType]
    arrays: Mapping[tuple[Path, str], tuple | None]
    steps: int = 0
    templates_run: int = 0
    """Rule runs of the solver and templates run (not copied): linear in a net's size."""
    shares_arrays: bool = False
    """Whether some layer of the net uses a shared array (``NetArray``)."""

    def port(self, path: Path, name: str) -> PortType:
        return self.ports[(path, name)]

    def array(self, path: Path, name: str) -> tuple | None:
        return self.arrays.get((path, name))


_INFERRED: dict[int, Inference] = {}
"""The inference of a layer alone, by :func:`constraints_id`: layers that are equal values
solve to equal types, so making the 100,000th LinearLayer(8) checks nothing again."""
_INFERRED_LIMIT = 10_000  # bounded; forgetting only costs a solver run
_runs = {"solved": 0, "reused": 0}


def inference_runs() -> dict[str, int]:
    """How many inferences of a layer on its own were solved, and how many reused from
    equal layers, in this process (what the scale tests count)."""
    return dict(_runs)


def infer(layer: "Layer") -> Inference:
    """Run shape inference over ``layer`` (and everything nested in it); a layer holding no
    sub-nets nor shared arrays reuses the inference of an equal layer made before."""
    key = _memoised_id(layer)
    if key is None:
        return _solve(layer)
    found = _INFERRED.get(key)
    if found is not None:
        _runs["reused"] += 1
        return found
    found = _solve(layer)  # an error is raised again for every layer, with its own site
    if len(_INFERRED) >= _INFERRED_LIMIT:
        _INFERRED.clear()
    _INFERRED[key] = found
    return found


def _solve(layer: "Layer") -> Inference:
    _runs["solved"] += 1
    cells = _Cells()
    root = Scope(cells, (), layer)
    try:
        with collector_paused():
            constrain(layer, root)
            for name in (*layer.input_names, *layer.output_names):
                root.port(name)
            cells.solver.solve()
            s = cells.solver.solved()
    except NetGraphError as err:
        notes = [  # a conflict between users of one shared array: say which array they share
            f'\n  note: {", ".join(a for a, _ in users)} are one shared array, NetArray("{name}")'
            for name, users in cells.shared_users.items()
            if len(users) > 1 and (any(a in err.message for a, _ in users)
                                   or sum(layer in err.message for _, layer in users) > 1)]
        if not notes:
            raise
        raise type(err)(err.message + "".join(notes), hint=err.hint) from err
    finally:
        cells.close()
    return Inference(_Solved(cells.ports, partial(_port_type, s)),
                     _Solved(cells.arrays, s.resolve_shape), s.steps, cells.templates_run,
                     bool(cells.shared_users))


def _port_type(solver: Solver, shape: int) -> PortType:
    return PortType(solver.resolve_shape(shape), solver.resolve_elem(shape + 1))
