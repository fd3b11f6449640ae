"""NetEncoder and NetDecoder: turning user data into port values and port values into answers.

A coder is a port spec like any other (``Input=ng.NetEncoder("Tokens", vocabulary)``,
``Output=ng.NetDecoder("Class", labels)``): it declares the type it produces (an encoder, on
an input port) or reads (a decoder, on an output port), so shape inference sees it, and the
net's call encodes the data given to that port and decodes what comes out of it.

==================================== ================================= =======================
coder                                port type                         data / result
==================================== ================================= =======================
``NetEncoder("Tokens", tokens)``     {"Varying"} of Integer in [0, n)  a string (one example)
                                                                       or a list of strings
``NetEncoder("Characters", chars)``  {"Varying"} of Integer in [0, n)  the same
``NetEncoder("Class", labels)``      scalar Integer in [0, n)          a label or a list
``NetEncoder("Boolean")``            scalar (Real 0. / 1.)             True/False or a list
``NetEncoder("Function", f, shape)`` ``shape``                         anything ``f`` takes
``NetDecoder("Class", labels)``      {n} (probabilities)               a label (see below)
``NetDecoder("Boolean")``            scalar (a probability)            True / False
``NetDecoder("Characters", chars)``  {"Varying", n}                    a string (argmax)
``NetDecoder("Tokens", tokens)``     {"Varying", n}                    tokens joined by " "
==================================== ================================= =======================

Legend: n the vocabulary / label count (one more when ``unknown`` names a mark that is not
in the vocabulary). ``output="UnitVector"`` makes the "Tokens", "Characters" and "Class"
encoders produce one-hot vectors ({"Varying", n} or {n}, Real) instead of indices.

``unknown=mark`` (a string): unknown tokens or characters are encoded as the index of
``mark`` (the mark's own position when it is in the vocabulary, else one extra index at the
end), and a decoder spells that index as ``mark``. Without it an unknown token is an
:class:`~netgraph.errors.InputDataError`. ``NetEncoder.from_data(kind, texts)`` builds the
vocabulary from data (tokens or characters in order of first appearance).

The "Class" decoder answers Wolfram's properties (``net(x, prop)``): ``"Decision"`` (the
default: the most probable label), ``"Probabilities"`` (label -> probability),
``"TopProbabilities"`` (the (label, probability) pairs of probability >= 0.01, most probable
first) or ``("TopProbabilities", k)``, ``("TopDecisions", k)`` (the k most probable labels),
``"Entropy"`` (in nats) and ``("Probability", label)``. The "Boolean" decoder answers
``"Decision"``, ``"Probability"``, ``"Probabilities"`` and ``"Entropy"``.

Coders are immutable values validated by pydantic; they save with the net except the
"Function" encoder and a "Tokens" encoder with its own ``splitter`` function (Python
functions: saving such a net is a :class:`~netgraph.errors.SerializationError`).
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable, Literal, Mapping, Optional, Union

import numpy as np
import pydantic

from .errors import InputDataError, SerializationError, SpecificationError
from .shapes import Restricted, parse_port_spec

Label = Union[bool, int, float, str]
TOP_PROBABILITY_CUTOFF = 0.01
"""``"TopProbabilities"`` leaves out the classes less probable than this."""


class _Options(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


def _distinct(values: tuple, what: str) -> tuple:
    if not values:
        raise ValueError(f"give at least one {what}")
    seen = set()
    for v in values:
        if _key(v) in seen:
            raise ValueError(f"the {what} {v!r} appears twice")
        seen.add(_key(v))
    return values


class VocabularyOptions(_Options):
    """Options of the "Tokens" and "Characters" coders."""

    vocabulary: tuple[str, ...]
    unknown: Optional[str] = None
    ignore_case: bool = False
    output: Literal["Index", "UnitVector"] = "Index"
    splitter: Optional[Callable[[str], Any]] = None

    @pydantic.field_validator("vocabulary", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, (str, list, tuple)) else value

    @pydantic.field_validator("vocabulary")
    @classmethod
    def _unique(cls, value: tuple) -> tuple:
        return _distinct(value, "token")


class ClassOptions(_Options):
    labels: tuple[Label, ...]
    output: Literal["Index", "UnitVector"] = "Index"

    @pydantic.field_validator("labels", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        return tuple(value) if isinstance(value, (list, tuple, range)) else value

    @pydantic.field_validator("labels")
    @classmethod
    def _unique(cls, value: tuple) -> tuple:
        return _distinct(value, "label")


class NoOptions(_Options):
    pass


class FunctionOptions(_Options):
    function: Callable[[Any], Any]
    output_shape: Any

    @pydantic.field_validator("output_shape")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        parse_port_spec(value, 'NetEncoder["Function"] output_shape')
        return value


# ----------------------------------------------------------------------- the base
class Coder:
    """The common part of NetEncoder and NetDecoder: a kind and its validated options."""

    role: ClassVar[str]
    kinds: ClassVar[Mapping[str, tuple[type[_Options], tuple[str, ...]]]]

    def __init__(self, kind: str, *args: Any, **options: Any) -> None:
        if kind not in self.kinds:
            raise SpecificationError(
                f"{self.role}: unknown kind {kind!r}.",
                hint=f"the kinds are {', '.join(map(repr, self.kinds))}.")
        model, positional = self.kinds[kind]
        if len(args) > len(positional):
            raise SpecificationError(
                f'{self.role}["{kind}"] takes {len(positional)} positional argument(s) '
                f"({', '.join(positional) or 'none'}); found {len(args)}.")
        values = dict(zip(positional, args))
        for name in values:
            if name in options:
                raise SpecificationError(f'{self.role}["{kind}"]: {name!r} is given twice.')
        values.update(options)
        try:
            parsed = model(**values)
        except pydantic.ValidationError as err:
            first = err.errors()[0]
            field = ".".join(map(str, first["loc"])) or "options"
            raise SpecificationError(
                f'{self.role}["{kind}"]: invalid {field!r}: {first["msg"]}.',
                hint=f"its options are {', '.join(model.model_fields) or 'none'}.") from err
        except SpecificationError as err:
            raise SpecificationError(f'{self.role}["{kind}"]: {err.message}', hint=err.hint) from err
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "options", parsed)
        if isinstance(parsed, VocabularyOptions):
            if kind == "Characters" and any(len(c) != 1 for c in parsed.vocabulary):
                bad = next(c for c in parsed.vocabulary if len(c) != 1)
                raise SpecificationError(f'{self.role}["Characters"]: {bad!r} is not one character.',
                                         hint='for words use NetEncoder("Tokens", ...).')
            if kind == "Characters" and parsed.splitter is not None:
                raise SpecificationError(f'{self.role}["Characters"] takes no splitter.')
            words = list(parsed.vocabulary)
            if parsed.unknown is not None and parsed.unknown not in words:
                words.append(parsed.unknown)
            fold = str.lower if parsed.ignore_case else (lambda t: t)
            object.__setattr__(self, "words", tuple(words))
            object.__setattr__(self, "_index", {fold(w): i for i, w in reversed(list(enumerate(words)))})
        elif isinstance(parsed, ClassOptions):
            object.__setattr__(self, "_index", {_key(v): i for i, v in enumerate(parsed.labels)})

    kind: str
    options: _Options

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self.role} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.kind, other.options) == (self.kind, self.options)

    def __hash__(self) -> int:
        return hash((self.role, self.kind, self.options))

    # ---------------------------------------------------------------- the port type
    @property
    def size(self) -> int | None:
        """Index count / class count / vector size (None for "Boolean" and "Function")."""
        if isinstance(self.options, VocabularyOptions):
            return len(self.words)
        if isinstance(self.options, ClassOptions):
            return len(self.options.labels)
        return None

    def describe(self) -> str:
        o = self.options
        if isinstance(o, VocabularyOptions):
            unit = "characters" if self.kind == "Characters" else "tokens"
            extra = f", unknown {o.unknown!r}" if o.unknown is not None else ""
            extra += ", ignore case" if o.ignore_case else ""
            extra += ", UnitVector" if o.output == "UnitVector" else ""
            return f'{self.role}["{self.kind}", {len(o.vocabulary)} {unit}{extra}]'
        if isinstance(o, ClassOptions):
            shown = ", ".join(map(repr, o.labels[:4])) + (", ..." if len(o.labels) > 4 else "")
            return f'{self.role}["Class", {len(o.labels)} labels: {shown}]'
        if isinstance(o, FunctionOptions):
            return f'{self.role}["Function", {getattr(o.function, "__name__", "function")}]'
        return f'{self.role}["{self.kind}"]'

    __repr__ = describe

    # -------------------------------------------------------------------- files
    def to_config(self) -> dict[str, Any]:
        """The coder as JSON-ready data; a Python function in it cannot be saved."""
        o = self.options
        if isinstance(o, FunctionOptions) or getattr(o, "splitter", None) is not None:
            raise SerializationError(
                f"{self.describe()} holds a Python function, which cannot be saved.",
                hint="rebuild the coder after loading (NetReplacePart(net, {port: coder})), or "
                'use the default whitespace splitting of NetEncoder("Tokens", ...).')
        options = {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in o.model_dump(exclude_defaults=True).items()}
        return {"kind": self.kind, "options": options}

    def where(self, port: str) -> str:
        return f'the {self.describe()} of port "{port}"'


def _key(label: Any) -> Any:
    """Labels compare by value and type (so that True is not the class 1)."""
    return (type(label).__name__ if isinstance(label, bool) else "value", label)


def _is_many(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or isinstance(value, np.ndarray) and value.ndim > 0


def _as_items(value: Any) -> list:
    return value.tolist() if isinstance(value, np.ndarray) else list(value)


# ------------------------------------------------------------------------ encoders
class NetEncoder(Coder):
    """A coder for an input port: ``NetEncoder(kind, ...)`` (see the module docstring).

    Args:
        kind: "Tokens" (``vocabulary``: a list of strings; ``unknown``, ``ignore_case``,
            ``splitter`` - a function from a string to its tokens, default ``str.split``,
            ``output``), "Characters" (``vocabulary``: a string or list of characters;
            ``unknown``, ``ignore_case``, ``output``), "Class" (``labels``; ``output``),
            "Boolean", or "Function" (``function``, ``output_shape``: a port spec). The
            first options may be given by position: ``NetEncoder("Tokens", words)``.
    """

    role = "NetEncoder"
    kinds = {"Tokens": (VocabularyOptions, ("vocabulary",)),
             "Characters": (VocabularyOptions, ("vocabulary",)),
             "Class": (ClassOptions, ("labels",)),
             "Boolean": (NoOptions, ()),
             "Function": (FunctionOptions, ("function", "output_shape"))}

    @classmethod
    def from_data(cls, kind: str, texts: Iterable[str], **options: Any) -> "NetEncoder":
        """A "Tokens" or "Characters" encoder over the tokens (characters) of ``texts``, in
        order of first appearance."""
        if kind not in ("Tokens", "Characters"):
            raise SpecificationError(f'NetEncoder.from_data builds "Tokens" or "Characters" '
                                     f"encoders; found {kind!r}.")
        split = options.get("splitter") or (str.split if kind == "Tokens" else list)
        fold = str.lower if options.get("ignore_case") else (lambda t: t)
        seen: dict[str, None] = {}
        for text in texts:
            for token in split(text):
                seen.setdefault(fold(token), None)
        return cls(kind, tuple(seen), **options)

    def port_spec(self) -> Any:
        o = self.options
        if isinstance(o, (VocabularyOptions, ClassOptions)):
            vector = o.output == "UnitVector"
            body = (self.size,) if vector else (Restricted("Integer", self.size),)
            return (("Varying",) + body) if isinstance(o, VocabularyOptions) else (body if vector else body[0])
        if isinstance(o, FunctionOptions):
            return o.output_shape
        return "Real"

    # ------------------------------------------------------------------ encoding
    def encode(self, value: Any, port: str) -> tuple[str, Any]:
        """("one", array) for one example, ("batch", array) for stacked examples, or
        ("list", [arrays]) for examples of different lengths."""
        o = self.options
        if isinstance(o, VocabularyOptions):
            if isinstance(value, str):
                return "one", self._text(value, port, None)
            if _is_many(value):
                return "list", [self._text(v, port, i) for i, v in enumerate(_as_items(value))]
            raise InputDataError(f"{self.where(port)} takes a string or a list of strings; "
                                 f"found {type(value).__name__}.")
        if isinstance(o, ClassOptions):
            if _is_many(value):
                return "batch", self._labels(_as_items(value), port)
            return "one", self._labels([value], port, single=True)[0]
        if self.kind == "Boolean":
            if _is_many(value):
                return "batch", np.array([self._bool(v, port, i) for i, v in enumerate(_as_items(value))], np.float32)
            return "one", np.float32(self._bool(value, port, None))
        return self._function(value, port)

    def _text(self, text: Any, port: str, example: int | None) -> np.ndarray:
        o = self.options
        at = f"{self.where(port)}" + (f", example #{example}" if example is not None else "")
        if not isinstance(text, str):
            raise InputDataError(f"{at}: expected a string; found {type(text).__name__} {text!r}.")
        pieces = list(text) if self.kind == "Characters" else list((o.splitter or str.split)(text))
        fold = str.lower if o.ignore_case else (lambda t: t)
        unknown = None if o.unknown is None else self._index[fold(o.unknown)]
        indices = []
        for position, piece in enumerate(pieces):
            index = self._index.get(fold(piece), unknown)
            if index is None:
                unit = "character" if self.kind == "Characters" else "token"
                raise InputDataError(
                    f"{at}: the {unit} {piece!r} (#{position} of {text!r}) is not in the "
                    f"vocabulary of {len(o.vocabulary)} {unit}s.",
                    hint=f"add it to the vocabulary, or map unknown {unit}s to one index with "
                    f'NetEncoder("{self.kind}", vocabulary, unknown="<unk>").')
            indices.append(index)
        out = np.array(indices, np.int32)
        if o.output == "UnitVector":
            return np.eye(self.size, dtype=np.float32)[out]
        return out

    def _labels(self, labels: list, port: str, single: bool = False) -> np.ndarray:
        return class_indices(self.options, self._index, labels, self.where(port), single,
                             self.options.output == "UnitVector")

    def _bool(self, value: Any, port: str, example: int | None) -> float:
        if isinstance(value, (bool, np.bool_)):
            return float(value)
        at = self.where(port) + (f", example #{example}" if example is not None else "")
        raise InputDataError(f"{at}: expected True or False; found {value!r}.")

    def _function(self, value: Any, port: str) -> tuple[str, Any]:
        """A list is a list of examples; anything else is one example."""
        fn = self.options.function
        real = parse_port_spec(self.options.output_shape, port).element in (None, "Real")
        if not isinstance(value, list):
            return "one", _numeric(fn(value), self.where(port), real)
        return "list", [_numeric(fn(v), f"{self.where(port)}, example #{i}", real)
                        for i, v in enumerate(value)]


def _numeric(value: Any, where: str, real: bool) -> np.ndarray:
    """A function's result as the port's numbers (float32 for a real port)."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputDataError(f"{where}: the function returned {type(value).__name__} data, not numbers.")
    return arr.astype(np.float32) if real else arr


def class_indices(options: ClassOptions, index: Mapping[Any, int], labels: list, where: str,
                  single: bool, one_hot: bool) -> np.ndarray:
    """Labels as class indices (or one-hot rows); a label that is not a class is an error."""
    out = np.empty(len(labels), np.int32)
    for i, label in enumerate(labels):
        try:
            found = index.get(_key(label.item() if isinstance(label, np.generic) else label))
        except TypeError:  # an unhashable value
            found = None
        if found is None:
            shown = ", ".join(map(repr, options.labels[:8])) + (", ..." if len(options.labels) > 8 else "")
            raise InputDataError(
                f"{where}: {label!r}" + ("" if single else f" (example #{i})")
                + f" is not one of its {len(options.labels)} classes.",
                hint=f"the classes are {shown}.")
        out[i] = found
    return np.eye(len(options.labels), dtype=np.float32)[out] if one_hot else out


# ------------------------------------------------------------------------ decoders
Property = Union[str, tuple]


class NetDecoder(Coder):
    """A coder for an output port: ``NetDecoder(kind, ...)`` (see the module docstring).

    Args:
        kind: "Class" (``labels``), "Boolean", "Characters" (``vocabulary``: a string or
            list of characters; ``unknown``) or "Tokens" (``vocabulary``; ``unknown``).
    """

    role = "NetDecoder"
    kinds = {"Class": (ClassOptions, ("labels",)),
             "Boolean": (NoOptions, ()),
             "Characters": (VocabularyOptions, ("vocabulary",)),
             "Tokens": (VocabularyOptions, ("vocabulary",))}

    def port_spec(self) -> Any:
        if self.kind == "Class":
            return (self.size,)
        if self.kind == "Boolean":
            return ()
        return ("Varying", self.size)

    def __init__(self, kind: str, *args: Any, **options: Any) -> None:
        super().__init__(kind, *args, **options)
        o = self.options
        if isinstance(o, ClassOptions) and o.output != "Index" or isinstance(o, VocabularyOptions) and (
                o.output != "Index" or o.splitter is not None or o.ignore_case):
            raise SpecificationError(f'NetDecoder["{kind}"] takes no output, splitter or ignore_case option.')

    # ---------------------------------------------------------------- properties
    def check_property(self, prop: Property | None) -> None:
        """A clear error for a property this decoder does not answer, before evaluating."""
        if prop is None or prop == "Decision":
            return
        name, arg = (prop[0], prop[1:]) if isinstance(prop, tuple) and prop else (prop, ())
        allowed = {"Class": {"Probabilities": 0, "TopProbabilities": (0, 1), "TopDecisions": (0, 1),
                             "Entropy": 0, "Probability": 1},
                   "Boolean": {"Probability": 0, "Probabilities": 0, "Entropy": 0}}.get(self.kind, {})
        counts = allowed.get(name) if isinstance(name, str) else None
        ok = counts is not None and len(arg) in (counts if isinstance(counts, tuple) else (counts,))
        if ok and name in ("TopProbabilities", "TopDecisions") and arg:
            ok = isinstance(arg[0], int) and not isinstance(arg[0], bool) and arg[0] >= 1
        if ok and name == "Probability" and self.kind == "Class":
            class_indices(self.options, self._index, [arg[0]], f"{self.describe()} (\"Probability\")", True, False)
        if not ok:
            shown = ['"Decision"'] + [f'("{n}", k)' if n.startswith("Top") else (f'("{n}", label)' if c == 1 else f'"{n}"')
                                      for n, c in allowed.items()]
            raise SpecificationError(
                f"{self.describe()} does not answer the property {prop!r}.",
                hint=f"its properties are {', '.join(shown)}.")

    def decode(self, value: np.ndarray, prop: Property | None = None) -> Any:
        """One example's port value decoded (``prop``: see :meth:`check_property`)."""
        value = np.asarray(value, np.float64)
        if self.kind in ("Characters", "Tokens"):
            words = [self.words[i] for i in np.argmax(value, axis=-1)] if len(value) else []
            return ("" if self.kind == "Characters" else " ").join(words)
        if self.kind == "Boolean":
            p = float(value)
            probs = {True: p, False: 1.0 - p}
            if prop is None or prop == "Decision":
                return p > 0.5
            if prop == "Probability":
                return p
            return probs if prop == "Probabilities" else _entropy(np.array([p, 1 - p]))
        labels = self.options.labels
        if prop is None or prop == "Decision":
            return labels[int(np.argmax(value))]
        name, arg = (prop[0], prop[1:]) if isinstance(prop, tuple) else (prop, ())
        order = sorted(range(len(labels)), key=lambda i: -value[i])  # stable for ties
        if name == "Probabilities":
            return {labels[i]: float(value[i]) for i in range(len(labels))}
        if name == "TopProbabilities":
            chosen = order[:arg[0]] if arg else [i for i in order if value[i] >= TOP_PROBABILITY_CUTOFF]
            return [(labels[i], float(value[i])) for i in chosen]
        if name == "TopDecisions":
            return [labels[i] for i in (order[:arg[0]] if arg else order)]
        if name == "Probability":
            return float(value[self._index[_key(arg[0])]])
        return _entropy(value)

    # ------------------------------------------------------------------ targets
    def encode_target(self, value: Any, port: str, ptype: Any) -> Any:
        """Training targets given in the decoded form (labels, booleans, strings) as the
        values of the target port of type ``ptype`` (indices or one-hot rows)."""
        where = f"training target \"{port}\" (read through {self.describe()})"
        if self.kind == "Class":
            one_hot = bool(ptype.dims)
            return class_indices(self.options, self._index, _as_items(value), where, False, one_hot)
        if self.kind == "Boolean":
            items = _as_items(value)
            if not all(isinstance(v, (bool, np.bool_)) for v in items):
                return value  # 0/1 numbers: the checks of the target port apply
            return np.array(items, np.float32)
        encoder = NetEncoder(self.kind, self.options.vocabulary, unknown=self.options.unknown,
                             output="UnitVector" if len(ptype.dims or ()) > 1 else "Index")
        items = _as_items(value)
        if not all(isinstance(v, str) for v in items):
            return value
        return [encoder._text(v, port, i) for i, v in enumerate(items)]


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-np.sum(p * np.log(p))) if p.size else 0.0


# ------------------------------------------------------------------------- files
def coder_to_json(coder: Coder) -> dict[str, Any]:
    return {coder.role: coder.to_config()}


def coder_from_json(value: Mapping[str, Any]) -> Coder:
    (role, config), = value.items()
    cls = {"NetEncoder": NetEncoder, "NetDecoder": NetDecoder}[role]
    if not isinstance(config, Mapping) or set(config) - {"kind", "options"}:
        raise SerializationError(f"invalid {role} record {config!r}.")
    return cls(config.get("kind"), **dict(config.get("options", {})))


def is_coder_json(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("NetEncoder", "NetDecoder")


def coder_of(spec: Any) -> Coder | None:
    """The coder of a parsed port spec (None for a plain shape)."""
    coder = getattr(spec, "coder", None)
    return coder if isinstance(coder, Coder) else None


def port_coders_of(specs: Mapping[str, Any]) -> dict[str, Coder]:
    """The coders among parsed port specs, by port."""
    return {name: spec.coder for name, spec in specs.items() if isinstance(spec.coder, Coder)}


def port_coders(layer: Any) -> dict[str, Coder]:
    """The coders declared on ``layer``'s own ports (those of inner layers only declare
    their ports' types: a net encodes and decodes at its own ports)."""
    return port_coders_of(layer.port_specs)


def check_placement(coders: Mapping[str, Coder], inputs: Iterable[str], where: str) -> None:
    """Encoders sit on input ports, decoders on output ports."""
    inputs = set(inputs)
    for name, coder in coders.items():
        if isinstance(coder, NetEncoder) != (name in inputs):
            kind = "an input" if name in inputs else "an output"
            raise SpecificationError(
                f'{where}: port "{name}" is {kind} port; {coder.describe()} cannot go there.',
                hint="NetEncoder goes on input ports, NetDecoder on output ports.")


def with_coder_notes(err: Exception, coders: Mapping[str, Coder]) -> Exception:
    """A shape conflict at a coded port of a net, with a note saying what the coder
    produces or reads there (the error itself when no coded port is involved)."""
    involved = {n: c for n, c in coders.items() if f'port "{n}" of net' in getattr(err, "message", "")}
    notes = [f'\n  note: port "{n}" carries {c.describe()}, which '
             f"{'produces' if isinstance(c, NetEncoder) else 'reads'} {_spelled(c.port_spec())}"
             for n, c in involved.items()]
    if not notes:
        return err
    hint = ("a decoder's size is its number of classes (tokens, characters); change the net's "
            "last layer or the decoder's labels." if any(isinstance(c, NetDecoder) for c in involved.values())
            else "an encoder fixes its port's type; change the first layer (or leave its sizes "
            "Automatic) or the encoder.")
    return type(err)(err.message + "".join(notes), hint=hint)


def _spelled(spec: Any) -> str:
    return "a scalar" if spec in ((), "Real") else repr(spec)


__all__ = ["NetDecoder", "NetEncoder", "coder_of", "port_coders"]
