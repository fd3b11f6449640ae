"""The layer abstraction: an immutable value with named ports, learnable arrays and options.

A layer class declares

* ``Options``: a frozen pydantic model of its options, defaults and conversions included
  (validated at construction), and ``positional``: the options given by position;
* ``input_names`` / ``output_names``: its ports (may depend on the options);
* ``arrays_declared``: its learnable arrays and how to initialise them;
* ``template(scope)``: its shape rules, stated on the cells of :class:`~layers.scope.Scope`;
* a lowering, registered with :func:`layers.lowering.lower_layer`.

Instances are never mutated: every edit (``evolve``) returns a new layer. The fields of an
instance are the annotations of its class, set through ``Layer._set`` only. Keyword arguments
whose names are capitalised are ports (``Input=8``) or arrays (``Weights=W``, ``Biases=None``);
the others are options.
"""
from __future__ import annotations

import abc
import functools
import inspect
import os
import sys
import typing
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import pydantic

from ..shapes import Automatic, PortSpec, Restricted, parse_port_spec
from ..errors import ShapeMismatchError, SpecificationError
from .scope import infer, show_path
from .tree import iter_layers

# netgraph, netgraph.layers and netgraph.shapes: separate folders in an editable install.
_ROOT_PACKAGE = __name__.split(".")[0]
_PACKAGE_DIRS = tuple(
    os.path.dirname(os.path.abspath(sys.modules[name].__file__)) + os.sep
    for name in (_ROOT_PACKAGE, f"{_ROOT_PACKAGE}.layers", f"{_ROOT_PACKAGE}.shapes")
)


class Site:
    """A user's ``file:line``: where a layer was made. The file is spelled relative to the
    working directory (``os.path.relpath``) when a message shows it, not when the layer is
    made (a net of 100,000 layers records 100,000 sites and shows at most a few)."""

    __slots__ = ("filename", "lineno")

    def __init__(self, filename: str, lineno: int) -> None:
        self.filename, self.lineno = filename, lineno

    def __str__(self) -> str:
        try:
            shown = os.path.relpath(self.filename)
        except ValueError:
            shown = self.filename
        return f"{shown}:{self.lineno}"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Site) and (self.filename, self.lineno) == (other.filename, other.lineno)

    def __hash__(self) -> int:
        return hash((self.filename, self.lineno))

    def __reduce__(self) -> tuple:
        return Site, (self.filename, self.lineno)


_LIBRARY_FILES: dict[str, bool] = {}  # code file name -> whether it is netgraph's (or pydantic's)


def _library_file(filename: str) -> bool:
    known = _LIBRARY_FILES.get(filename)
    if known is None:
        known = _LIBRARY_FILES[filename] = (os.path.abspath(filename).startswith(_PACKAGE_DIRS)
                                            or "pydantic" in filename)
    return known


def user_site() -> Site | None:
    """The :class:`Site` of the innermost stack frame outside netgraph's own packages."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _library_file(filename):
            return Site(filename, frame.f_lineno)
        frame = frame.f_back
    return None


@dataclass(frozen=True, eq=False)
class NetArray:
    """A shared array: every array given ``NetArray(name)`` is the same array (tied
    embeddings, ...). ``value`` optionally gives its contents."""

    name: str
    value: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecificationError(f"NetArray needs a non-empty name; found {self.name!r}.")

    def __repr__(self) -> str:
        return f"NetArray({self.name!r})"


@dataclass(frozen=True)
class ArraySpec:
    """A learnable array: how to initialise it and whether ``Name=None`` may remove it.

    ``init``: "weights" (NetInitialize's method: Kaiming, Xavier, ...; fan-in the product of
    all dimensions but the first), "zeros", "ones", "normal" (standard normal, as
    embeddings), or an initializer spec of :mod:`netgraph.initialize`. ``trainable`` False marks
    layer state (moving statistics): an ordinary array of the net that gets no gradient and
    is updated by the training step from the values the lowering reports.
    """

    init: Any = "weights"
    optional: bool = False
    trainable: bool = True


class LayerOptions(pydantic.BaseModel):
    """Base of every layer's options model: frozen, unknown fields forbidden."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


_MADE: dict[tuple, tuple[dict[str, Any], Any]] = {}
"""What building a layer from plain arguments gave (its fields but the site, and the
memoised template number; see ``Layer._build``), by :func:`_made_key`: making the 100,000th
LinearLayer(8) validates nothing again. Only layers holding no sub-nets nor shared arrays
(whose template can be copied) are kept."""
_MADE_LIMIT = 10_000  # bounded; forgetting only costs a validation
_PLAIN_TYPES = frozenset({int, float, bool, str, type(None), type(Automatic)})


def _made_key(cls: type, options: Mapping[str, Any], kwargs: Mapping[str, Any]) -> tuple | None:
    """A key for the arguments of a layer, or None unless every one is plain data: a key
    tells 1, 1.0 and True apart (validation may not), at any depth of a tuple."""
    parts: list[Any] = [cls]
    for group in (options, kwargs):
        for name, value in group.items():
            frozen = _frozen(value)
            if frozen is None:
                return None
            parts.append((name, frozen))
        parts.append(None)  # options by position, then by keyword
    return tuple(parts)


def _frozen(value: Any) -> tuple | None:
    kind = type(value)
    if kind is float:  # (-0.0 == 0.0, but they are two values)
        return kind, value.hex()
    if kind in _PLAIN_TYPES:
        return kind, value
    if kind is tuple:
        items = tuple(map(_frozen, value))
        return None if None in items else (tuple, items)
    if kind is Restricted:
        kind_key, n_key = _frozen(value.kind), _frozen(value.n)
        return None if kind_key is None or n_key is None else (Restricted, kind_key, n_key)
    return None


@functools.cache
def _evaluate_function() -> Callable[..., Any]:
    """:func:`netgraph.evaluate.evaluate`, imported once (an import statement in
    ``Layer.__call__`` would cost more than a prepared call)."""
    from ..evaluate import evaluate

    return evaluate


@functools.lru_cache(maxsize=None)
def _required(options: type[LayerOptions]) -> tuple[str, ...]:
    """The options a layer must be given (those without a default)."""
    return tuple(name for name, field in options.model_fields.items() if field.is_required())


def _signature(cls: type) -> inspect.Signature:
    """``cls(positional..., *, other options, **ports_and_arrays)`` from its Options model."""
    fields = cls.Options.model_fields
    P = inspect.Parameter
    params = [P(name, P.POSITIONAL_OR_KEYWORD if name in cls.positional else P.KEYWORD_ONLY,
                default=P.empty if fields[name].is_required() else fields[name].default)
              for name in (*cls.positional, *(n for n in fields if n not in cls.positional))]
    # ConvolutionLayer(channels=Automatic, kernel): a required option may follow a default
    return inspect.Signature([*params, P("ports_and_arrays", P.VAR_KEYWORD)],
                             __validate_parameters__=False)


def _option_line(name: str, field: Any, positional: tuple[str, ...]) -> str:
    spelled = name if field.is_required() else f"{name}={field.default!r}"
    notes = []
    if typing.get_origin(field.annotation) is typing.Literal:
        notes.append(" | ".join(repr(a) for a in typing.get_args(field.annotation)))
    if field.is_required():
        notes.append("required")
    if name in positional:
        notes.append(f"positional {positional.index(name) + 1}")
    return f"    {spelled}" + (f"  ({'; '.join(notes)})" if notes else "")


def _array_line(name: str, spec: ArraySpec) -> str:
    start = {"weights": "drawn by NetInitialize's method", "zeros": "starts at 0",
             "ones": "starts at 1", "normal": "drawn from a standard normal"}
    notes = [start.get(spec.init, f"initialised by {spec.init!r}")]
    if spec.optional:
        notes.append(f"{name}=None removes it")
    if not spec.trainable:
        notes.append("layer state, not trained")
    return f"    {name}: {'; '.join(notes)}"


def class_docstring(cls: type) -> str:
    """A layer class's help text: its own docstring, its options (defaults, choices, which
    are positional), its arrays, and its module's docstring (the port/shape table)."""
    parts = [inspect.cleandoc(cls.__dict__.get("__doc__") or "")]
    fields = cls.Options.model_fields
    if fields:
        parts.append("Options:\n" + "\n".join(_option_line(n, f, cls.positional) for n, f in fields.items()))
    if cls.arrays_declared:
        parts.append("Arrays:\n" + "\n".join(_array_line(n, a) for n, a in cls.arrays_declared.items()))
    module = inspect.cleandoc(getattr(sys.modules.get(cls.__module__), "__doc__", None) or "")
    if module:
        parts.append(f"From {cls.__module__}:\n\n{module}")
    return "\n\n".join(p for p in parts if p)


class Layer(abc.ABC):
    """Base class of all layers and nets. See the module docstring."""

    Options: ClassVar[type[LayerOptions]] = LayerOptions
    type_name: ClassVar[str]
    registry: ClassVar[dict[str, type["Layer"]]] = {}
    is_container: ClassVar[bool] = False
    """True for pure containers, whose computation is entirely their sub-nets' (graphs,
    chains, NetMapOperator); AttentionLayer holds a sub-net but computes itself."""
    child_feeds: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    """How a layer that computes itself feeds its sub-nets: sub-net -> {sub-net input: the
    layer input whose producer feeds it} (for the data-flow graph of ``Information``)."""
    child_caption: ClassVar[str] = ""
    """Appended to the caption of the sub-net in the picture (", applied to each element")."""

    positional: ClassVar[tuple[str, ...]] = ()
    """The options that may be given by position, in order: ``LinearLayer(8)`` is
    ``LinearLayer(size=8)``. Defaults come from ``Options`` only."""
    arrays_declared: ClassVar[Mapping[str, ArraySpec]] = {}
    """Every learnable array the class can have (removable ones included), by name."""
    _fields: ClassVar[frozenset[str]]

    # The fields of an instance: set at construction (or on a copy) through ``_set`` only.
    options: LayerOptions
    port_specs: Mapping[str, PortSpec]
    origin: Site | None
    arrays: Mapping[str, np.ndarray | None] = MappingProxyType({})
    initializers: Mapping[str, Any] = MappingProxyType({})
    regularizers: Mapping[str, Any] = MappingProxyType({})
    constraints: Mapping[str, Any] = MappingProxyType({})
    activity_regularizer: Any = None
    shared: Mapping[str, str] = MappingProxyType({})
    _removed: frozenset[str] = frozenset()
    _inference: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_name = cls.__name__
        known = Layer.registry.get(cls.__name__)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise SpecificationError(
                f"a layer class named {cls.__name__!r} is already registered "
                f"({known.__module__}.{known.__qualname__}); layer type names are unique, "
                "because saved nets refer to layers by type name.",
                hint=f"give the class {cls.__module__}.{cls.__qualname__} another name.",
            )
        Layer.registry[cls.__name__] = cls
        cls._fields = frozenset(
            name for klass in cls.__mro__ for name, kind in vars(klass).get("__annotations__", {}).items()
            if "ClassVar" not in str(kind).split("[")[0])
        cls.__signature__ = _signature(cls) if cls.__init__ is Layer.__init__ else None
        cls.__doc__ = class_docstring(cls)

    def _set(self, **fields: Any) -> None:
        """Set declared fields (annotations of the class and its bases). Layers are
        immutable to their users; construction and copies (``evolve``) set fields here."""
        if not self._fields.issuperset(fields):
            name = next(n for n in fields if n not in self._fields)
            raise AttributeError(f"{type(self).__name__} has no field {name!r}.")
        values = self.__dict__  # (no field is a descriptor: plain instance attributes)
        values.update(fields)
        if "_inference" not in fields or len(fields) > 1:  # what layers.scope.constrain memoised
            values.pop("_constraints_id", None)
            values.pop("_made_key", None)  # (and what the construction cache knows it by)

    # ------------------------------------------------------------------ construction
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Options by position (``positional``) or keyword; ports and arrays by keyword."""
        if len(args) > len(self.positional):
            takes = (f"at most {len(self.positional)} positional argument(s) "
                     f"({', '.join(self.positional)})" if self.positional else "no positional arguments")
            raise SpecificationError(
                f"{self.type_name} takes {takes}; found {len(args)}: "
                f"{', '.join(map(repr, args))}.",
                hint="give the other options, ports and arrays by keyword.",
            )
        options = dict(zip(self.positional, args))
        for name in options:
            if name in kwargs:
                raise SpecificationError(f"{self.type_name}: option {name!r} is given twice, "
                                         "by position and by keyword.")
        self._build(options, kwargs)

    def _build(self, options: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
        """Validate ``options`` and the keyword ``kwargs`` (ports, arrays, more options).

        A layer made from the same plain arguments (numbers, strings, tuples of them) as one
        made before is built as that one was: the same validated options, port specs and
        inference, with its own site (see :data:`_MADE`)."""
        key = _made_key(type(self), options, kwargs) if not self.__dict__ else None
        made = _MADE.get(key) if key is not None else None
        if made is not None:
            self._take_made(key, made, user_site())
            return
        self._set(origin=user_site())
        option_values = dict(options)
        port_kw, array_kw = {}, {}
        fields = self.Options.model_fields
        for name, value in kwargs.items():
            if name in fields:
                option_values[name] = value
            elif name[:1].isupper():
                (array_kw if name in self.arrays_declared else port_kw)[name] = value
            else:
                self._unknown(name, option_values)
        self._set(options=self._validate(option_values))
        if port_kw:
            ports = {*self.input_names, *self.output_names}
            for name in port_kw:
                if name not in ports:
                    self._unknown(name, option_values)
        self._set(port_specs={k: self._port_spec(k, v) for k, v in port_kw.items()})
        self._set_arrays(array_kw)
        # inconsistent declarations fail at construction, as in Wolfram; a layer equal to
        # one made before reuses its inference (see layers.scope.infer)
        self.inference
        self._remember_made(key)

    def _take_made(self, key: tuple, made: tuple, origin: Site | None) -> None:
        """Become the layer :data:`_MADE` holds under ``key``, made at ``origin``."""
        fields, memo = made
        values = self.__dict__  # (the fields of a layer made before: no check, no _set)
        values.update(fields)
        values.update(origin=origin, port_specs=dict(fields["port_specs"]), arrays=dict(fields["arrays"]),
                      _constraints_id=memo, _made_key=key)

    def _remember_made(self, key: tuple | None) -> None:
        """Keep this layer's fields in :data:`_MADE` under ``key`` (when its inference can
        be reused: see ``layers.scope.memoised_id``)."""
        memo = self.__dict__.get("_constraints_id")
        if key is None or memo is None or memo[1] is None:
            return
        if len(_MADE) >= _MADE_LIMIT:
            _MADE.clear()
        _MADE[key] = ({k: v for k, v in self.__dict__.items()
                       if k in self._fields and k != "origin"}, memo)
        object.__setattr__(self, "_made_key", key)

    def _port_spec(self, port: str, value: Any) -> PortSpec:
        where = f'{self.type_name} port "{port}"'
        if isinstance(value, np.ndarray):
            raise SpecificationError(
                f"{where}: a port shape is an int, a tuple or a string such as \"Varying\"; "
                f"found a NumPy array {value!r}.",
                hint=f"write {port}={tuple(value.tolist()) if value.ndim == 1 else '(...)'}.",
            )
        return parse_port_spec(value, where)

    def _unknown(self, key: str, option_values: Mapping[str, Any]) -> None:
        allowed = list(self.Options.model_fields) + list(self.arrays_declared)
        try:
            opts = self._validate(option_values)
            allowed += [*self._ports_for(opts)]
        except SpecificationError:
            pass
        raise SpecificationError(
            f'"{key}" is not a known parameter for {self.type_name}. Allowed parameters '
            f"include: {', '.join(repr(a) for a in dict.fromkeys(allowed))}.",
            hint="options are snake_case (e.g. level=1); ports and arrays are capitalised.",
        )

    def _ports_for(self, options: LayerOptions) -> tuple[str, ...]:
        previous = getattr(self, "options", None)
        self._set(options=options)
        try:
            return (*self.input_names, *self.output_names)
        finally:
            self._set(options=previous)

    def _validate(self, values: Mapping[str, Any]) -> LayerOptions:
        missing = [name for name in _required(self.Options) if name not in values]
        if missing:
            by_position = [n for n in self.positional if n in missing]
            raise SpecificationError(
                f"{self.type_name}: missing required option {missing[0]!r}.",
                hint=f"give it by keyword ({missing[0]}=...)" + (
                    f" or by position: {self.type_name}({', '.join(self.positional)})"
                    if by_position else "") + ".",
            )
        try:
            return self.Options(**values)
        except pydantic.ValidationError as err:
            errors = err.errors()
            first = errors[0]
            # pydantic says "Input should ..." - but "Input" is a port name here - and
            # "Value error, ..." for a check of ours; a union option (an int, a tuple or
            # Automatic) reports each form it would accept
            reasons = list(dict.fromkeys(
                e["msg"].replace("Input should", "the value should", 1).removeprefix("Value error, ")
                for e in errors if e["loc"][:1] == first["loc"][:1]))
            shown = "; or ".join(reasons[:4]) + ("; ..." if len(reasons) > 4 else "")
            if not first["loc"]:  # a check across options: the options together
                given = ", ".join(f"{k}={v!r}" for k, v in values.items())
                raise SpecificationError(f"{self.type_name}: invalid options: {shown}. "
                                         f"Received: {given}") from err
            field = str(first["loc"][0])
            raise SpecificationError(
                f"{self.type_name}: invalid value for option {field!r}: {shown}. "
                f"Received: {field}={values.get(field)!r}"
            ) from err

    def _set_arrays(self, given: Mapping[str, Any]) -> None:
        if not given:  # nothing to change; a new layer has every declared array, unset
            if "arrays" not in self.__dict__:
                self._set(arrays=dict.fromkeys(self.arrays_declared))
            return
        arrays = dict(self.arrays)
        shared = dict(self.shared)
        removed = set(self._removed)
        for name, value in given.items():
            spec = self.arrays_declared.get(name)
            if isinstance(value, NetArray):
                shared[name] = value.name
                value = Automatic if value.value is None else value.value
            if value is None:
                if spec is None or not spec.optional:
                    raise SpecificationError(
                        f'{self.type_name}: array "{name}" cannot be removed (None).'
                    )
                removed.add(name)
                arrays.pop(name, None)
                continue
            if value is Automatic:
                arrays[name] = None
                continue
            arr = np.asarray(value)
            if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
                raise SpecificationError(
                    f'{self.type_name}: array "{name}" must be numeric; found dtype {arr.dtype}.'
                )
            arr = np.array(arr, dtype=np.float32)
            arr.setflags(write=False)
            removed.discard(name)
            arrays[name] = arr
        kept = [n for n in self.arrays_declared if n not in removed]
        self._set(_removed=frozenset(removed), arrays={n: arrays.get(n) for n in kept},
                  shared={n: s for n, s in shared.items() if n in kept})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use NetReplacePart or evolve.")

    def evolve(self, *, options: Mapping[str, Any] | None = None,
               arrays: Mapping[str, Any] | None = None,
               port_specs: Mapping[str, Any] | None = None) -> "Layer":
        """A copy with some options, arrays or port specs replaced (validated again)."""
        new = object.__new__(type(self))
        base = self.__dict__.get("_made_key")  # made from plain arguments: so is the copy
        key = (_made_key(type(self), {}, options)
               if base is not None and options and arrays is None and port_specs is None else None)
        key = None if key is None else ("evolve", base, key)
        made = _MADE.get(key) if key is not None else None
        if made is not None:
            new._take_made(key, made, self.origin)
            return new
        # every field but the inferred types; what evaluating this net cached
        # (``_evaluation``), inference memoised (``_constraints_id``) and the construction
        # cache's key (``_made_key``), not fields, neither
        new._set(**{**{k: v for k, v in self.__dict__.items()
                       if k not in ("_evaluation", "_constraints_id", "_made_key")}, "_inference": None})
        if options:
            new._set(options=new._validate({**self.options.model_dump(), **options}))
        if port_specs is not None:
            specs = {**self.port_specs}
            for k, v in port_specs.items():
                if v is None:
                    specs.pop(k, None)
                else:
                    specs[k] = self._port_spec(k, v)
            new._set(port_specs=specs)
        new._set_arrays(arrays or {})
        new._after_evolve()
        if key is not None:
            new.inference
            new._remember_made(key)
        return new

    @classmethod
    def restore(cls, options: Mapping[str, Any], port_specs: Mapping[str, Any],
                arrays: Mapping[str, Any], children: Mapping[str, "Layer"],
                structure: Mapping[str, Any]) -> "Layer":
        """Rebuild a layer from its parts (the inverse of :func:`netgraph.serialize.to_config`);
        ``arrays`` maps names to arrays, or None for removed ones."""
        new = object.__new__(cls)
        new._adopt_children(children)
        new._build(options, {**port_specs, **arrays})
        return new

    def _adopt_children(self, children: Mapping[str, "Layer"]) -> None:
        """Hook for layers holding sub-nets: take them before options are validated."""
        if children:
            raise SpecificationError(f"{self.type_name} has no sub-nets; found {sorted(children)}.")

    def with_initializers(self, initializers: Mapping[str, Any]) -> "Layer":
        """A copy whose arrays are initialised by the given specs instead of the defaults:
        "Zeros", "Ones", ("Xavier", "Uniform"), ("TruncatedNormal", 0.0, 0.02), ... or a
        Keras initializer name or object (see :mod:`netgraph.initialize`); kept as
        netgraph's own spec, saved with the net."""
        from ..initialize import initializer_spec

        if not isinstance(initializers, Mapping):
            raise SpecificationError(f"{self.type_name}.with_initializers: give a dict keyed by "
                                     f"array name; found {type(initializers).__name__}.")
        specs = self.array_specs()
        parsed = {}
        for name, init in initializers.items():
            if name not in specs:
                raise SpecificationError(f'{self.type_name} has no array "{name}" to initialise.',
                                         hint=f"its arrays are {list(specs) or 'none'}.")
            parsed[name] = initializer_spec(init, f'{self.type_name} array "{name}"')
        new = self.evolve()
        new._set(initializers={**self.initializers, **parsed})
        return new

    def with_regularizers(self, regularizers: Mapping[str, Any]) -> "Layer":
        """A copy whose arrays carry weight regularizers (Keras's ``kernel_regularizer``):
        ``{"Weights": ("l2", 1e-3)}`` - "l1", "l2", "l1_l2", ("l1", f), ("l2", f),
        ("l1_l2", l1, l2). NetTrain adds them to the loss; they are saved with the net."""
        from ..train_optim import parse_regularizer

        return self._with_rules("regularizers", regularizers,
                                lambda name, spec: parse_regularizer(spec, f'{self.type_name} array "{name}"'))

    def with_constraints(self, constraints: Mapping[str, Any]) -> "Layer":
        """A copy whose arrays carry constraints (Keras's ``kernel_constraint``):
        ``{"Weights": ("max_norm", 3.0)}`` - "max_norm", "non_neg", "unit_norm",
        "min_max_norm"; NetTrain applies them after each update. Saved with the net."""
        from ..train_optim import parse_constraint

        def check(name: str, spec: Any) -> None:  # the axis is checked again on the trained net
            dims = self.inference.array((), name)
            parse_constraint(spec, len(dims) if dims else 2, f'{self.type_name} array "{name}"')

        return self._with_rules("constraints", constraints, check)

    def with_activity_regularizer(self, regularizer: Any) -> "Layer":
        """A copy whose outputs carry an activity regularizer (Keras's
        ``activity_regularizer``), added to the loss by NetTrain; saved with the net."""
        from ..train_optim import parse_regularizer

        parse_regularizer(regularizer, f"{self.type_name} activity regularizer")
        new = self.evolve()
        new._set(activity_regularizer=regularizer)
        return new

    def _with_rules(self, field: str, rules: Mapping[str, Any], check: Any) -> "Layer":
        if not isinstance(rules, Mapping):
            raise SpecificationError(f"{self.type_name}.with_{field}: give a dict keyed by array "
                                     f"name; found {type(rules).__name__}.")
        specs = self.array_specs()
        for name, spec in rules.items():
            if name not in specs:
                raise SpecificationError(f'{self.type_name} has no array "{name}" for {field}.',
                                         hint=f"its arrays are {list(specs) or 'none'}.")
            check(name, spec)
        new = self.evolve()
        new._set(**{field: {**getattr(self, field), **rules}})
        return new

    def _after_evolve(self) -> None:
        """Hook for containers to re-validate after an edit."""

    # ------------------------------------------------------------------- structure
    # The port names, in order: plain class attributes here (read millions of times in a
    # big net); layers whose ports depend on their options override them with properties.
    input_names: tuple[str, ...] = ("Input",)
    output_names: tuple[str, ...] = ("Output",)

    def array_specs(self) -> dict[str, ArraySpec]:
        """The declared arrays this layer has (those removed with ``Name=None`` left out)."""
        return {k: v for k, v in self.arrays_declared.items() if k not in self._removed}

    def inferred_options(self, port: Any) -> dict[str, Any]:
        """The values inference gave options left ``Automatic`` (``NetExtract`` shows them):
        ``port(name)`` is the inferred PortType of one of this layer's ports. None where a
        value is not inferred yet."""
        return {}

    def children(self) -> dict[str, "Layer"]:
        """Sub-nets addressed by name (a graph's nodes, a map's "Net")."""
        return {}

    def with_children(self, children: Mapping[str, "Layer"]) -> "Layer":
        """A copy with some sub-nets replaced (containers override)."""
        raise SpecificationError(f"{self.type_name} has no sub-nets to replace.")

    @abc.abstractmethod
    def template(self, scope: Any) -> None:
        """State this layer's shape rules on ``scope``'s cells (a :class:`layers.scope.Scope`)."""

    # -------------------------------------------------------------- inferred shapes
    def _forward_inference(self) -> Any:
        """This layer's inference without the solver, where that is certain, else None
        (see ``netgraph.forward_inference``; NetGraph has one)."""
        return None

    @property
    def inference(self) -> Any:
        """The solved types of every port and array (a :class:`layers.scope.Inference`)."""
        if self._inference is None:
            self._set(_inference=infer(self))
        return self._inference

    @property
    def input_ports(self) -> dict[str, object]:
        """Inferred input shapes, e.g. ``{"Input": ("Varying", 8)}``."""
        return {n: self.inference.port((), n).to_user() for n in self.input_names}

    @property
    def output_ports(self) -> dict[str, object]:
        """Inferred output shapes, e.g. ``{"Output": (3,)}``."""
        return {n: self.inference.port((), n).to_user() for n in self.output_names}

    def port_types(self) -> dict[str, Any]:
        """Inferred :class:`~shapes.porttype.PortType` of every port of this net."""
        return {n: self.inference.port((), n) for n in (*self.input_names, *self.output_names)}

    # ------------------------------------------- tools of the netgraph package above
    # Evaluation, drawing and the summary live in ``netgraph``, which imports this package;
    # the methods import them when called (as penzai's renderer), so no module cycle exists.
    def __call__(self, data: Any = None, port: Any = None, **options: Any) -> Any:
        """Evaluate on one example, a batch or a list of examples; ``port``: an output, a
        decoder property or NetPort(s) to read (see :func:`netgraph.evaluate.evaluate`)."""
        return _evaluate_function()(self, data, port, **options)

    def plot(self, path: Any, **options: Any) -> str:
        """Draw the net (layers, ports and inferred shapes) to an ``.svg`` or ``.png`` file."""
        from ..plot import plot

        return plot(self, path, **options)

    def summary(self, print_fn: Any = None) -> str | None:
        """The table of every layer (path, type, inferred port shapes, parameter count), as
        text: ``print(net.summary())`` or ``print(net)`` show it. With ``print_fn`` (Keras's
        hook, e.g. ``print`` or a logger's method) it is called with the text instead, and
        None comes back."""
        from ..summary import summary

        text = summary(self)
        if print_fn is None:
            return text
        print_fn(text)
        return None

    # ---------------------------------------------------------------------- display
    def describe(self) -> str:
        """A short spelling for messages: ``LinearLayer[8]``."""
        return self.type_name

    def __repr__(self) -> str:
        from ..summary import layer_repr

        return layer_repr(self)


def shared_values(net: Layer) -> dict[str, Any]:
    """Every shared array (NetArray) name used in ``net`` with its value (None if not set);
    users that disagree on the value are an error."""
    found: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for path, layer in iter_layers(net, include_root=True):
        for local, name in layer.shared.items():
            value = layer.arrays.get(local)
            before = found.get(name)
            if before is None or before[0] is None:
                found[name] = (value, path + (local,))
            elif value is not None and value is not before[0] and not np.array_equal(value, before[0]):
                raise ShapeMismatchError(
                    f'the shared array NetArray("{name}") has different values at '
                    f"{show_path(before[1])} and {show_path(path + (local,))}.",
                    hint="set it once with NetReplacePart(net, {NetArray(name): value}).",
                )
    return {name: value for name, (value, _) in found.items()}

