"""Batching examples of different lengths: buckets, padding, devices, unpadding.

Examples are sorted by length and cut into batches of ``batch_size``; each batch is padded
along every varying axis to a *bucket* length (powers of two up to 64, then steps of 1.5x:
64, 96, 128, 192, 256, ...), and the true lengths travel into the lowered function, where every
sequence-aware layer masks with them. Only a batch's padded shape reaches the compiler, so
1,000 examples with lengths 1..512 compile at most about ten shapes, and a second list of
new lengths reuses them. The last, partial batch is padded to a power of two.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Sequence

import jax
import numpy as np

from .errors import InputDataError

DEFAULT_BATCH_SIZE = 32


def bucket(length: int) -> int:
    """The padded size for a true ``length``: the next of 1, 2, 4, .., 64, 96, 128, 192, ..."""
    size = 1
    while size < length:
        size = size * 2 if size < 64 else (size * 3 // 2 if (size & (size - 1)) == 0 else size * 4 // 3)
    return size


def batch_bucket(count: int, batch_size: int) -> int:
    """The padded batch size: ``batch_size``, or a power of two for a smaller last batch."""
    size = 1
    while size < count:
        size *= 2
    return min(size, batch_size) if count <= batch_size else batch_size


@dataclass(frozen=True)
class Example:
    """One example: its arrays by port and the true length of each varying symbol."""

    arrays: dict[str, np.ndarray]
    lengths: dict[str, int]


def plan(examples: Sequence[Example], batch_size: int) -> list[list[int]]:
    """Example indices grouped into batches of similar lengths (sorted by bucket, length)."""
    def key(i: int) -> tuple:
        lengths = examples[i].lengths
        return tuple(bucket(n) for n in lengths.values()) + tuple(lengths.values())

    order = sorted(range(len(examples)), key=key)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(examples: Sequence[Example], varying_axes: dict[str, list[tuple[int, str]]],
              symbols: Sequence[str], batch_size: int, seen: set) -> tuple[dict, dict, int]:
    """Stack ``examples`` into padded arrays; returns (inputs, lengths, padded batch size).
    ``seen`` holds the padded shapes already compiled: a batch reuses one that is a single
    bucket step longer rather than compiling a new shape (and records what it uses)."""
    rows = batch_bucket(len(examples), batch_size)
    padded = {s: bucket(max(e.lengths[s] for e in examples)) for s in symbols}
    longer = {s: bucket(n + 1) for s, n in padded.items()}
    shape, longer_shape = (rows, *padded.values()), (rows, *longer.values())
    if shape not in seen and longer_shape in seen:
        padded, shape = longer, longer_shape
    seen.add(shape)
    inputs = {}
    for port, first in examples[0].arrays.items():
        shape = list(first.shape)
        for axis, symbol in varying_axes.get(port, []):
            shape[axis] = padded[symbol]
        block = np.zeros([rows, *shape], first.dtype)
        for row, example in enumerate(examples):
            arr = example.arrays[port]
            block[(row, *(slice(0, n) for n in arr.shape))] = arr
        inputs[port] = block
    lengths = {
        s: np.array([e.lengths[s] for e in examples] + [0] * (rows - len(examples)), np.int32)
        for s in symbols
    }
    return inputs, lengths, rows


def unpad(outputs: dict[str, np.ndarray], out_lengths: dict[str, np.ndarray],
          output_axes: dict[str, list[tuple[int, str]]], row: int) -> dict[str, np.ndarray]:
    """Example ``row``'s outputs cut to its own lengths."""
    result = {}
    for port, value in outputs.items():
        cut = [slice(None)] * (value.ndim - 1)
        for axis, symbol in output_axes.get(port, []):
            cut[axis] = slice(0, int(out_lengths[symbol][row]))
        result[port] = value[(row, *cut)]
    return result


def resolve_devices(target_device: Any) -> list[Any]:
    """``"CPU"``, ``"GPU"``, (kind, n | "All"), or a list of JAX devices."""
    if target_device is None:
        return [jax.devices()[0]]
    if isinstance(target_device, list) and target_device and all(isinstance(d, jax.Device) for d in target_device):
        return list(target_device)
    if isinstance(target_device, str):
        kind, count = target_device, 1
    elif isinstance(target_device, tuple) and len(target_device) == 2:
        kind, count = target_device
    else:
        kind, count = None, None
    if kind not in ("CPU", "GPU"):
        raise InputDataError(
            f"target_device={target_device!r}: use \"CPU\", \"GPU\", (kind, n), (kind, \"All\") "
            "or a list of JAX devices."
        )
    try:
        devices = jax.devices(kind.lower())
    except RuntimeError as err:
        raise InputDataError(f"target_device={kind!r}: no {kind} is available here.") from err
    if count == "All":
        return devices
    if not isinstance(count, int) or not 1 <= count <= len(devices):
        raise InputDataError(
            f"target_device={target_device!r}: {len(devices)} {kind} device(s) are available."
        )
    return devices[:count]


class Progress:
    """A one-line progress report on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.done = total, enabled, 0

    def advance(self, count: int) -> None:
        if not self.enabled:
            return
        self.done += count
        width = 30
        filled = width * self.done // max(self.total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} examples")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
