"""Scale: the fixed cost of ``net(x)``, shape inference per layer, first-call compile time of
deep chains, and the export round trip - each against its reference in the same run.

Rows (issue "Scale"):

1. ``net(x)`` on an already-seen input signature vs the jitted lowered function with NumPy in
   and out (the reference): the overhead in microseconds (goal <= 10 us).
2. Shape inference of a NetChain of (Linear, Tanh) pairs: microseconds per layer at 1k / 4k
   layers (goal <= 10 us at 100k, linear).
3. First call (trace + compile + run) of a chain of K identical (Linear(64), Tanh) blocks:
   compile(K) / compile(10) (goal <= 2 at K = 1000); the blocks are one lax.scan, and the
   reference is the same chain lowered unrolled (``ng.lower(net, scan_blocks=False)``).
4. Export: ``ng.export`` + ``jax.export.deserialize`` + first call, vs the first call of
   ``net(x)`` on the same data.

Run: ``python benchmarks/bench_scale.py [--quick]``; the numbers go into benchmarks/README.md
by hand (section "Scale").
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from timing import paired_ratio, timed_rounds  # noqa: E402

import netgraph as ng  # noqa: E402


def call_overhead(reps: int) -> dict:
    net = ng.NetInitialize(ng.LinearLayer(4, Input=8), seed=0)
    x = np.ones(8, np.float32)
    apply, params = ng.lower(net), ng.params_of(net)
    jitted = jax.jit(lambda p, v: apply(p, {"Input": v})["Output"])
    net(x)
    fns = {"net(x)": lambda: net(x), "jit(lower(net))": lambda: np.asarray(jitted(params, x))}
    # many calls per sample: one call is a few microseconds
    inner = 200
    timed = timed_rounds({k: (lambda f=f: [f() for _ in range(inner)]) for k, f in fns.items()},
                         reps, 3)
    per = {k: v["median_s"] / inner * 1e6 for k, v in timed.items()}
    return {"net_us": per["net(x)"], "jit_us": per["jit(lower(net))"],
            "overhead_us": per["net(x)"] - per["jit(lower(net))"],
            "ratio": paired_ratio(timed["net(x)"]["samples"], timed["jit(lower(net))"]["samples"])}


def inference_per_layer(sizes: list[int]) -> dict:
    out = {}
    for n in sizes:
        layers = [ng.LinearLayer(8) if i % 2 == 0 else ng.ElementwiseLayer("Tanh") for i in range(n)]
        t = time.perf_counter()
        ng.NetChain(layers, Input=8)
        out[n] = (time.perf_counter() - t) / n * 1e6
    return out


def _pairs_chain(k: int) -> ng.Layer:
    layers = []
    for _ in range(k):
        layers += [ng.LinearLayer(64), ng.ElementwiseLayer("Tanh")]
    return ng.NetInitialize(ng.NetChain(layers, Input=64), seed=0)


def compile_time(blocks: list[int], unrolled: list[int]) -> dict:
    """First call of ``net(x)`` (repeated blocks lowered as one lax.scan) per block count,
    and the same net lowered unrolled (``ng.lower(net, scan_blocks=False)``, jitted) for
    the counts in ``unrolled`` - the reference."""
    x = np.ones(64, np.float32)
    out: dict = {"scan": {}, "unrolled": {}}
    _pairs_chain(2)(x)  # JAX's own first-compile costs are no block's
    for k in blocks:
        net = _pairs_chain(k)
        t = time.perf_counter()
        net(x)
        out["scan"][k] = time.perf_counter() - t
    for k in unrolled:
        net = _pairs_chain(k)
        apply = ng.lower(net, scan_blocks=False)
        t = time.perf_counter()
        np.asarray(jax.jit(lambda p, v: apply(p, {"Input": v})["Output"])(ng.params_of(net), x))
        out["unrolled"][k] = time.perf_counter() - t
    return out


def export_round_trip() -> dict:
    net = ng.NetInitialize(ng.NetChain(
        [ng.EmbeddingLayer(16, 50), ng.ConvolutionLayer(16, 3, padding="Same", interleaving=True), "Ramp",
         ng.AggregationLayer("Max", 0), ng.LinearLayer(4), ng.SoftmaxLayer()],
        Input=("Varying", ng.Restricted("Integer", 50))), seed=0)
    x = np.random.default_rng(0).integers(0, 50, (8, 32)).astype(np.int32)
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "net.stablehlo"
        t = time.perf_counter()
        ng.export(net, path)
        exported = jax.export.deserialize(bytearray(path.read_bytes()))
        np.asarray(exported.call(x, np.full(8, 32, np.int32))[0])
        round_trip = time.perf_counter() - t
        size = path.stat().st_size
    fresh = ng.NetReplacePart(net, {})  # a new net object: nothing compiled yet
    t = time.perf_counter()
    fresh(x)
    first_call = time.perf_counter() - t
    return {"round_trip_s": round_trip, "first_net_call_s": first_call, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    calls = call_overhead(5 if quick else 15)
    print(f"1. net(x) {calls['net_us']:.1f} us, jit(lower(net)) with NumPy in/out "
          f"{calls['jit_us']:.1f} us: overhead {calls['overhead_us']:.1f} us (ratio {calls['ratio']:.2f})")
    inference = inference_per_layer([1000] if quick else [1000, 4000])
    print("2. inference: " + ", ".join(f"{n} layers {us:.0f} us/layer" for n, us in inference.items()))
    compiles = compile_time([10, 100, 1000], [10, 100] if quick else [10, 100, 400])
    base = compiles["scan"][10]
    print("3. first call: " + ", ".join(f"K={k} {s:.2f} s ({s / base:.2f}x K=10)" for k, s in compiles["scan"].items())
          + "; unrolled: " + ", ".join(f"K={k} {s:.2f} s" for k, s in compiles["unrolled"].items()))
    exported = export_round_trip()
    print(f"4. export + deserialize + first call {exported['round_trip_s']:.2f} s "
          f"({exported['bytes'] / 1024:.0f} KiB) vs first net(x) {exported['first_net_call_s']:.2f} s")


if __name__ == "__main__":
    main()
