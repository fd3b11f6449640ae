"""NetTrain's data: checking, shuffling, bucketing and padding training and validation data.

Three forms (ports are the training net's inputs: the net's own inputs and the targets):

* a **dict of arrays**, one example per leading index: ``{"Input": x, "Target": y}`` (or a
  pair ``(x, y)`` for a net with one input and one target);
* a **dict of lists** of examples that may differ in their varying dimensions (ragged
  sequences); arrays and lists may be mixed. Examples are sorted by length and cut into
  batches that are padded to a few bucket lengths exactly as threaded evaluation does
  (:func:`netgraph.batching.plan` and :func:`~netgraph.batching.pad_batch`); every epoch
  shuffles which same-length examples share a batch and the order of the batches, never the
  set of padded shapes, so the whole run compiles once per bucket shape;
* an **iterable of batches** (each a dict of arrays or lists), for data that does not fit in
  memory: a function returning a fresh iterable is called every epoch, a re-iterable (a list)
  is iterated every epoch, a one-shot iterator (a generator) needs ``steps_per_epoch`` (or
  ``max_epochs=1``).

In-memory data is checked completely before anything is compiled; a mistake (missing port,
wrong rank or size, mismatched example counts, a label out of range) is an
:class:`~netgraph.errors.InputDataError` naming the port and the example index. Generated
batches are checked one by one as they arrive.

Shape legend of a :class:`Batch`: R rows (a bucket of the batch size), ``...`` a port's dims
padded along its varying axes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .batching import Example, batch_bucket, pad_batch, plan
from .errors import InputDataError
from .compiler import port_mismatch
from .evaluate import as_numeric, check_element, check_fixed_sizes, example_lengths
from .shapes import Index, Known, Real, Varying
from .shapes.porttype import PortType


@dataclass(frozen=True)
class Batch:
    """One padded batch: ``inputs`` port -> R x ..., ``lengths`` varying symbol -> R true
    lengths (empty when every row has its arrays' exact sizes), ``weights`` R (1 for a real
    example, 0 for a padding row, which repeats row 0), ``count`` the real examples."""

    inputs: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    weights: np.ndarray
    count: int


def _varying_axes(types: Mapping[str, PortType]) -> dict[str, list[tuple[int, str]]]:
    return {name: [(axis, d.symbol) for axis, d in enumerate(t.dims or ()) if isinstance(d, Varying)]
            for name, t in types.items()}


class Checker:
    """Checks data against the training net's input ports (see the module docstring)."""

    def __init__(self, types: Mapping[str, PortType], targets: Sequence[str],
                 describe_target: Callable[[str], str | None], where: str,
                 encoders: Mapping[str, Callable[[Any], Any]] | None = None) -> None:
        self.types = dict(types)
        self.targets = set(targets)
        self.describe_target = describe_target
        self.where = where
        self.encoders = dict(encoders or {})  # port -> its NetEncoder / target decoder, read
        # backwards (see netgraph.ports.training_encoders)
        self.real: Any = np.float32  # the type real data is cast to (the working precision)

    # ------------------------------------------------------------------ ports
    def ports(self, data: Mapping[str, Any]) -> dict[str, Any]:
        given = {str(k): v for k, v in data.items()}
        names = list(self.types)
        mismatch = port_mismatch(given, names, "no data for port(s)")
        if mismatch:
            notes = [self.describe_target(n) for n in names if n not in given and self.describe_target(n)]
            raise InputDataError(
                f"{self.where}: {mismatch}; the training net's inputs are {names}."
                + "".join(f"\n  note: {n}" for n in notes),
                hint="give one entry per input port and per target, e.g. "
                + "{" + ", ".join(f'"{n}": ...' for n in names) + "}.")
        return {n: self.encoders[n](v) if n in self.encoders else v for n, v in given.items()}

    def pair(self, data: tuple) -> dict[str, Any]:
        inputs = [n for n in self.types if n not in self.targets]
        targets = [n for n in self.types if n in self.targets]
        if len(inputs) != 1 or len(targets) != 1:
            raise InputDataError(
                f"{self.where}: a pair (inputs, targets) needs a net with one input and one target; "
                f"the training net's inputs are {list(self.types)}.",
                hint="give a dict {port: data}.")
        return {inputs[0]: data[0], targets[0]: data[1]}

    # -------------------------------------------------------------- examples
    def _cast(self, name: str, arr: np.ndarray) -> np.ndarray:
        """Targets of a real port may be given as integers or booleans (0/1 labels)."""
        if (name in self.targets and isinstance(self.types[name].element, Real)
                and (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool)):
            return arr.astype(np.float32)
        return arr

    def _shown(self, name: str) -> str:
        return str(self.types[name])

    def array(self, name: str, value: Any, where: str) -> np.ndarray:
        """A port's examples stacked along the leading axis, checked."""
        ptype = self.types[name]
        arr = self._cast(name, as_numeric(f'{where}: port "{name}"', value))
        rank = len(ptype.dims)
        if arr.ndim != rank + 1:
            raise InputDataError(
                f'{where}: port "{name}" takes examples of shape {self._shown(name)} stacked along a '
                f"leading example axis (a rank-{rank + 1} array); found an array of shape {arr.shape}.",
                hint="examples of different lengths go in a list, one array per example.")
        check_fixed_sizes(f'{where}: port "{name}" (examples along the first axis)', ptype, arr.shape[1:])
        self._index_range(name, arr, where)
        return check_element(f'{where}: port "{name}"', ptype, arr, self.real)

    def _index_range(self, name: str, arr: np.ndarray, where: str, example: int | None = None) -> None:
        element = self.types[name].element
        if not (isinstance(element, Index) and isinstance(element.n, Known)) or not arr.size:
            return
        if not np.issubdtype(arr.dtype, np.integer):
            return  # _element names the wrong element type
        n = element.n.size
        bad = (arr < 0) | (arr >= n)
        if not bad.any():
            return
        if example is None:
            rows = bad.reshape(len(arr), -1).any(axis=1)
            example = int(np.argmax(rows))
            value = int(arr[example][bad[example]].flat[0])
        else:
            value = int(arr[bad].flat[0])
        note = self.describe_target(name)
        raise InputDataError(
            f'{where}: port "{name}", example #{example}, holds the value {value}; it takes integers '
            f"in [0, {n})." + (f"\n  note: {note}" if note else ""),
            hint="labels are 0-based class indices." if name in self.targets else None)

    def example(self, name: str, value: Any, where: str, i: int) -> np.ndarray:
        ptype = self.types[name]
        at = f'{where}: port "{name}", example #{i}'
        arr = self._cast(name, as_numeric(at, value))
        if arr.ndim != len(ptype.dims):
            raise InputDataError(f"{at}, should be a rank-{len(ptype.dims)} array {ptype}; found shape {arr.shape}.")
        check_fixed_sizes(at, ptype, arr.shape)
        self._index_range(name, arr, where, i)
        return check_element(at, ptype, arr, self.real)

    def columns(self, given: Mapping[str, Any], where: str) -> tuple[int, dict[str, np.ndarray] | None, list[Example] | None]:
        """(count, stacked arrays, None) when every port stacks, else (count, None, examples)."""
        counts = {}
        for name, value in given.items():
            if isinstance(value, (list, tuple)):
                counts[name] = len(value)
            else:
                arr = np.asarray(value) if not hasattr(value, "shape") else value
                if np.ndim(arr) == 0:
                    raise InputDataError(
                        f'{where}: port "{name}" got a single value; give one entry per example '
                        "(an array with a leading example axis, or a list).")
                counts[name] = int(np.shape(arr)[0])
        if len(set(counts.values())) > 1:
            raise InputDataError(f"{where}: the ports have different numbers of examples: {counts}.")
        count = next(iter(counts.values()), 0)
        if count == 0:
            raise InputDataError(f"{where}: no examples.")
        stacked: dict[str, np.ndarray] = {}
        for name, value in given.items():
            if isinstance(value, (list, tuple)):
                items = [np.asarray(v) for v in value]
                if len({a.shape for a in items}) == 1 and all(a.dtype != object for a in items):
                    value = np.stack(items)
                else:
                    stacked = {}
                    break
            stacked[name] = value
        if len(stacked) == len(given):
            arrays = {n: self.array(n, v, where) for n, v in stacked.items()}
            example_lengths(self.types, arrays, 1, "")
            return count, arrays, None
        examples = []
        for i in range(count):
            arrays = {n: self.example(n, v[i], where, i) for n, v in given.items()}
            examples.append(Example(arrays, example_lengths(self.types, arrays, 0, f"{where}: example #{i}: ")))
        return count, None, examples


# ----------------------------------------------------------------------- batching
def _fill_rows(tree: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """Padding rows repeat row 0 (so no degenerate row, such as an empty sequence, is ever
    computed; their weight is 0)."""
    for value in tree.values():
        value[count:] = value[0]
    return tree


def _weights(rows: int, count: int) -> np.ndarray:
    return (np.arange(rows) < count).astype(np.float32)


def array_batch(arrays: Mapping[str, np.ndarray], index: np.ndarray, batch_size: int) -> Batch:
    count = len(index)
    rows = batch_bucket(count, max(batch_size, count))
    if rows > count:
        index = np.concatenate([index, np.full(rows - count, index[0])])
    return Batch({n: a[index] for n, a in arrays.items()}, {}, _weights(rows, count), count)


def example_batch(examples: Sequence[Example], types: Mapping[str, PortType], batch_size: int,
                  seen: set) -> Batch:
    symbols = sorted({s for axes in _varying_axes(types).values() for _, s in axes})
    count = len(examples)
    inputs, lengths, rows = pad_batch(examples, _varying_axes(types), symbols, max(batch_size, count), seen)
    if rows > count:
        _fill_rows(inputs, count)
        _fill_rows(lengths, count)
    return Batch(inputs, lengths, _weights(rows, count), count)


class Dataset:
    """Batches of one data set, epoch after epoch (see the module docstring)."""

    count: int | None = None          # examples per epoch, when known
    batches_per_epoch: int | None = None

    def batches(self, epoch: int, rng: np.random.Generator | None) -> Iterator[Batch]:
        raise InputDataError("an empty data set has no batches.")  # overridden by every form


class ArrayData(Dataset):
    def __init__(self, arrays: dict[str, np.ndarray], count: int, batch_size: int) -> None:
        self.arrays, self.count, self.batch_size = arrays, count, batch_size
        self.batches_per_epoch = -(-count // batch_size)

    def batches(self, epoch: int, rng: np.random.Generator | None) -> Iterator[Batch]:
        order = rng.permutation(self.count) if rng is not None else np.arange(self.count)
        for start in range(0, self.count, self.batch_size):
            yield array_batch(self.arrays, order[start:start + self.batch_size], self.batch_size)


class ExampleData(Dataset):
    def __init__(self, examples: list[Example], types: Mapping[str, PortType], batch_size: int,
                 seen: set) -> None:
        self.examples, self.types, self.batch_size, self.seen = examples, types, batch_size, seen
        self.count = len(examples)
        self.batches_per_epoch = -(-self.count // batch_size)

    def batches(self, epoch: int, rng: np.random.Generator | None) -> Iterator[Batch]:
        examples = self.examples
        if rng is not None:  # plan() sorts stably: the permutation only reorders equal lengths
            examples = [examples[i] for i in rng.permutation(len(examples))]
        groups = plan(examples, self.batch_size)
        if rng is not None:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        for group in groups:
            yield example_batch([examples[i] for i in group], self.types, self.batch_size, self.seen)


_END = object()


class StreamData(Dataset):
    def __init__(self, source: Any, checker: Checker, batch_size: int, seen: set,
                 steps_per_epoch: int | None, max_epochs: int) -> None:
        self.checker, self.batch_size, self.seen = checker, batch_size, seen
        self.steps = steps_per_epoch
        self.batches_per_epoch = steps_per_epoch
        self.exhausted = False
        self.peeked = False
        self.number = 0
        if callable(source) and not isinstance(source, Iterable):
            self.fresh: Callable[[], Iterable] | None = source
            self.iterator: Iterator | None = None
        elif iter(source) is not source:
            self.fresh, self.iterator = (lambda: source), None
        else:
            if steps_per_epoch is None and max_epochs > 1:
                raise InputDataError(
                    f"{checker.where}: a generator (one-shot iterator) of batches can be read once, "
                    f"but max_epochs={max_epochs}.",
                    hint="pass a function returning a fresh generator (data=lambda: batches()), "
                    "steps_per_epoch=n to read n batches per epoch, or max_epochs=1.")
            self.fresh, self.iterator = None, source

    def peek(self) -> Mapping[str, Any]:
        """The first batch (for fitting the net's input shapes), left in place."""
        if self.iterator is None:
            self.iterator = iter(self.fresh())  # type: ignore[misc]
        first = next(self.iterator, _END)
        if first is _END:
            raise InputDataError(f"{self.checker.where}: the iterable of batches is empty.")
        self.iterator = itertools.chain([first], self.iterator)
        self.peeked = True
        return first

    def batches(self, epoch: int, rng: np.random.Generator | None) -> Iterator[Batch]:
        """One epoch: the whole iterable, or ``steps_per_epoch`` batches of a stream that
        continues across epochs (a function or re-iterable starts over when it ends; a
        one-shot iterator that ends sets ``exhausted``)."""
        if self.fresh is not None and (self.iterator is None or self.steps is None and not self.peeked):
            self.iterator = iter(self.fresh())
        self.peeked = False
        taken = since_start = 0
        while self.steps is None or taken < self.steps:
            item = next(self.iterator, _END)  # type: ignore[arg-type]
            if item is _END:
                if self.fresh is not None and self.steps is not None and since_start > 0:
                    self.iterator, since_start = iter(self.fresh()), 0
                    continue
                self.exhausted = self.steps is not None or self.fresh is None
                return
            taken += 1
            since_start += 1
            yield self.batch(item)

    def batch(self, item: Any) -> Batch:
        where = f"{self.checker.where}, batch #{self.number}"
        self.number += 1
        if isinstance(item, tuple) and len(item) == 2:
            item = self.checker.pair(item)
        if not isinstance(item, Mapping):
            raise InputDataError(f"{where}: a batch must be a dict {{port: data}}; found {type(item).__name__}.")
        count, arrays, examples = self.checker.columns(self.checker.ports(item), where)
        if arrays is not None:
            return array_batch(arrays, np.arange(count), self.batch_size)
        return example_batch(examples, self.checker.types, self.batch_size, self.seen)


def as_source(data: Any, checker: Checker) -> Any:
    """``data`` as a dict of ports, or unchanged (an iterable / function of batches)."""
    if isinstance(data, Mapping):
        return checker.ports(data)
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], Mapping):
        return checker.ports(checker.pair(data))
    if callable(data) or isinstance(data, Iterable) and not isinstance(data, (str, bytes, np.ndarray)):
        return data
    raise InputDataError(
        f"{checker.where}: {type(data).__name__} is not training data.",
        hint='give a dict {"Input": x, "Target": y} of arrays or lists of examples, a pair '
        "(x, y), or an iterable of such dicts (one per batch).")


def dataset(source: Any, checker: Checker, *, batch_size: int, seen: set,
            steps_per_epoch: int | None = None, max_epochs: int = 1) -> Dataset:
    """A :class:`Dataset` over checked data (in-memory data is checked here, completely)."""
    if isinstance(source, Mapping):
        count, arrays, examples = checker.columns(source, checker.where)
        if arrays is not None:
            return ArrayData(arrays, count, batch_size)
        return ExampleData(examples, checker.types, batch_size, seen)
    return StreamData(source, checker, batch_size, seen, steps_per_epoch, max_epochs)


def first_example(source: Any, ports: Sequence[str]) -> tuple[dict[str, np.ndarray], set[str]]:
    """One example of ``ports`` (to fit under-specified input shapes) and the ports whose
    examples differ in length along their first axis."""
    first, varying = {}, set()
    for name in ports:
        value = source[name]
        if isinstance(value, (list, tuple)):
            first[name] = np.asarray(value[0])
            if len({np.shape(v)[:1] for v in value}) > 1:
                varying.add(name)
        else:
            first[name] = np.asarray(value)[0]
    return first, varying


__all__ = ["ArrayData", "Batch", "Checker", "Dataset", "ExampleData", "StreamData", "as_source",
           "dataset", "first_example"]
