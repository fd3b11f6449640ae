"""Scale: the fixed cost of ``net(x)``, shape inference per layer, first-call compile time of
deep chains, and the export round trip - each against its reference in the same run.

Rows (issue "Scale"):

1. ``net(x)`` on an already-seen input signature vs the jitted lowered function with NumPy in
   and out (the reference): the overhead in microseconds (goal <= 10 us).
2. Shape inference: building a net (construction + shape inference) of 1k / 10k / 100k
   layers, in microseconds per layer (goal <= 10 us at 100k, linear), for a NetChain of
   alternating LinearLayer(8) / Tanh and for a wide DAG of blocks (one input fanned out to 8
   LinearLayer(8), joined by a ThreadingLayer("Plus"), then a Tanh), from layers made before
   the clock starts; making the chain's layers themselves (``LinearLayer(8)``, ...), and the
   total a user pays (make the layers, then the NetChain); and the first ``net(x)`` (build,
   initialise, lower, compile, run) of the 1k and 10k chains (the 100k nets measure
   inference only).
3. First call (trace + compile + run) of a chain of K identical (Linear(64), Tanh) blocks:
   compile(K) / compile(10) (goal <= 2 at K = 1000); the blocks are one lax.scan, and the
   reference is the same chain lowered unrolled (``ng.lower(net, scan_blocks=False)``).
4. Export: ``ng.export`` + ``jax.export.deserialize`` + first call, vs the first call of
   ``net(x)`` on the same data.

Run: ``python benchmarks/bench_scale.py [--quick] [--inference]`` (``--inference``: row 2's
building times only, which use the public API alone and so also run on older versions); the
numbers go into benchmarks/README.md by hand (section "Scale").
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


def python_speed() -> float:
    """Seconds of CPU for a fixed pure-Python loop (10 million additions): the machine's
    speed, printed with the results, for comparing rows measured on different machines."""
    best = float("inf")
    for _ in range(3):
        t, total = time.process_time(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.process_time() - t)
    return best


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


def chain_layers(n: int) -> list:
    return [ng.LinearLayer(8) if i % 2 == 0 else ng.ElementwiseLayer("Tanh") for i in range(n)]


def wide_dag(n: int, width: int = 8) -> tuple[dict, list]:
    """About ``n`` layers: blocks of ``width`` parallel LinearLayer(8) fed by one port and
    summed by a ThreadingLayer("Plus"), then a Tanh; the blocks follow one another."""
    layers, connections, previous = {}, [], ng.NetPort("Input")
    for b in range(max(1, n // (width + 2))):
        branches = [f"b{b}.{j}" for j in range(width)]
        layers.update({name: ng.LinearLayer(8) for name in branches})
        layers[f"b{b}.plus"], layers[f"b{b}.tanh"] = ng.ThreadingLayer("Plus"), ng.ElementwiseLayer("Tanh")
        connections += [(previous, branches), (branches, f"b{b}.plus"), (f"b{b}.plus", f"b{b}.tanh")]
        previous = f"b{b}.tanh"
    return layers, connections


def inference_per_layer(sizes: list[int], repeats: int) -> dict:
    """(kind, n) -> (wall, CPU) microseconds per layer, the best of ``repeats``: "layers"
    makes the chain's layers, "chain" and "wide DAG" build the nets (construction and
    inference) from layers made before the clock starts, "total" makes the layers and then
    the chain. CPU time is the steadier figure on a shared machine."""
    out = {}
    for n in sizes:
        out["layers", n] = _per_layer(lambda: chain_layers(n), n, repeats)
        layers = chain_layers(n)
        out["chain", n] = _per_layer(lambda: ng.NetChain(layers, Input=8), n, repeats)
        out["total", n] = _per_layer(lambda: ng.NetChain(chain_layers(n), Input=8), n, repeats)
        del layers
        nodes, connections = wide_dag(n)
        out["wide DAG", n] = _per_layer(lambda: ng.NetGraph(nodes, connections, Input=8),
                                        len(nodes), repeats)
    return out


def _per_layer(build, n: int, repeats: int) -> tuple[float, float]:
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        made = build()  # freed after the clock stops
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        del made
        best = min(best, (wall / n * 1e6, cpu / n * 1e6), key=lambda t: t[1])
    return best


def print_inference(inference: dict) -> None:
    names = {"layers": "making the layers", "chain": "NetChain", "total": "total",
             "wide DAG": "wide DAG"}
    for kind, label in names.items():
        print(f"   {label}: " + ", ".join(
            f"{n // 1000}k {wall:.1f} us/layer (CPU {cpu:.1f})"
            for (k, n), (wall, cpu) in inference.items() if k == kind))


def first_call(sizes: list[int]) -> dict:
    """n -> seconds of build + NetInitialize + the first ``net(x)`` of the n-layer chain
    (its repeated blocks are one ``lax.scan``: row 3)."""
    out = {}
    x = np.ones(8, np.float32)
    for n in sizes:
        layers = chain_layers(n)
        t = time.perf_counter()
        np.asarray(ng.NetInitialize(ng.NetChain(layers, Input=8), seed=0)(x))
        out[n] = time.perf_counter() - t
    return out


def _pairs_chain(k: int) -> ng.Layer:
    layers = []
    for _ in range(k):
        layers += [ng.LinearLayer(64), ng.ElementwiseLayer("Tanh")]
    return ng.NetInitialize(ng.NetChain(layers, Input=64), seed=0)


def compile_time(blocks: list[int], unrolled: list[int]) -> dict:
    """First call of ``net(x)`` (repeated blocks lowered as one lax.scan) per block count
    (the median of three),
    and the same net lowered unrolled (``ng.lower(net, scan_blocks=False)``, jitted) for
    the counts in ``unrolled`` - the reference."""
    x = np.ones(64, np.float32)
    out: dict = {"scan": {}, "unrolled": {}}
    _pairs_chain(2)(x)  # JAX's own first-compile costs are no block's
    for k in blocks:  # the median of three first calls (of three equal nets)
        times = []
        for _ in range(3):
            net = _pairs_chain(k)
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
        out["scan"][k] = float(np.median(times))
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
    parser.add_argument("--inference", action="store_true", help="row 2's building times only")
    args = parser.parse_args()
    quick = args.quick
    print(f"0. machine: a 10-million-addition Python loop takes {python_speed():.2f} s of CPU")
    sizes = [1000, 10000] if quick else [1000, 10000, 100000]
    if args.inference:
        print("2. building a net, per layer:")
        print_inference(inference_per_layer(sizes, 2 if quick else 3))
        return
    calls = call_overhead(5 if quick else 15)
    print(f"1. net(x) {calls['net_us']:.1f} us, jit(lower(net)) with NumPy in/out "
          f"{calls['jit_us']:.1f} us: overhead {calls['overhead_us']:.1f} us (ratio {calls['ratio']:.2f})")
    print("2. building a net, per layer:")
    print_inference(inference_per_layer(sizes, 2 if quick else 3))
    firsts = first_call([1000] if quick else [1000, 10000])
    print("   first net(x) of the chain: " + ", ".join(f"{n // 1000}k layers {s:.1f} s"
                                                     for n, s in firsts.items()))
    compiles = compile_time([10, 100, 1000], [10, 100] if quick else [10, 100, 400])
    base = compiles["scan"][10]
    print("3. first call: " + ", ".join(f"K={k} {s:.2f} s ({s / base:.2f}x K=10)" for k, s in compiles["scan"].items())
          + "; unrolled: " + ", ".join(f"K={k} {s:.2f} s" for k, s in compiles["unrolled"].items()))
    exported = export_round_trip()
    print(f"4. export + deserialize + first call {exported['round_trip_s']:.2f} s "
          f"({exported['bytes'] / 1024:.0f} KiB) vs first net(x) {exported['first_net_call_s']:.2f} s")


if __name__ == "__main__":
    main()
