"""Timing helpers shared by the side-by-side benchmarks.

Every benchmark compares implementations measured in the same run: warm-up, then
interleaved rounds whose order rotates and flips (a heavy call can slow down the call right
after it), ``block_until_ready`` on every result, the garbage collector paused, medians.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from typing import Any, Callable

import jax
import numpy as np


def block(tree: Any) -> Any:
    """Wait for every array in ``tree``."""
    return jax.tree_util.tree_map(
        lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree
    )


def timed_rounds(fns: dict[str, Callable[[], Any]], reps: int, warmup: int, *,
                 self_timed: bool = False) -> dict[str, Any]:
    """Median seconds per call of each zero-argument function over ``reps`` interleaved
    rounds, after ``warmup`` untimed rounds. ``self_timed``: each function returns a list of
    the seconds it timed itself (a training run's epoch times, say): those are its samples."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            block(fns[name]())
    samples: dict[str, list[float]] = {n: [] for n in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rep in range(reps):
            k = rep % len(names)
            order = names[k:] + names[:k]
            if (rep // len(names)) % 2:
                order = order[::-1]
            for name in order:
                if self_timed:
                    samples[name] += fns[name]()
                    continue
                t = time.perf_counter()
                block(fns[name]())
                samples[name].append(time.perf_counter() - t)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {
        n: {"median_s": statistics.median(s), "min_s": min(s),
            "p90_s": float(np.percentile(s, 90)), "reps": len(s), "warmup": warmup, "samples": s}
        for n, s in samples.items()
    }


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of a[i] / b[i] (a robust ratio for interleaved samples)."""
    return statistics.median(x / y for x, y in zip(a, b))


def arguments(description: str, *, samples: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick``, ``--json PATH`` (and ``--samples``)."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    if samples:
        parser.add_argument("--samples", action="store_true",
                            help="keep every timing sample in the JSON (omitted by default)")
    return parser


def write_json(path: str | None, results: Any) -> None:
    """Write ``results`` as JSON to ``path`` (when one is given) and say so."""
    if path:
        with open(path, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
        print(f"results written to {path}")
