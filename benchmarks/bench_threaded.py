"""Threaded evaluation benchmark: 1,000 sequences of random lengths through a self-attention net.

Run from the repository root::

    python benchmarks/bench_threaded.py            # full run (about 3 minutes on 2 CPU cores)
    python benchmarks/bench_threaded.py --quick    # 200 sequences, a smaller subset (smoke test, ~45 s)
    python benchmarks/bench_threaded.py --json results.json

The workload: ``N`` sequences (1,000; lengths uniform in 1..512, seed 0) of 16-vectors through a
small single-head self-attention net (NetMapOperator projections for query, key and value,
``AttentionLayer("Dot", score_rescaling="DimensionSqrt")``, a NetMapOperator output projection).
What is measured (see benchmarks/README.md for the details and the targets):

(a) ``net(xs)``: netgraph's threaded evaluation of the whole list, from a fresh net (its
    compilations included: "cold") and again on the same net ("warm"); compilations from
    ``ng.compile_stats``.
(b) one ``jax.jit(ng.lower(net))`` call per example at its exact shape, as one would write it
    without padding; each new length compiles. Timed on a SUBSET (200 examples) and
    extrapolated to all ``N`` (every distinct length of the full list compiles once, the
    rest are cache hits); the output says so.
(c) power-of-two padding by hand: every example padded to the next power of two, grouped by
    that length, chunks of 32 rows (the last chunk of a group padded with empty rows), one
    ``jax.jit(jax.vmap(lower(net)))`` per group shape, true lengths passed in ``lengths=``.
(d) two devices against one: a subprocess with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` times warm ``net(xs,
    target_device=("CPU", 2))`` against ``("CPU", 1)``.

Padded work: for netgraph's batching plan and for (c), the sum over batches of
``rows * padded_len**2`` (attention scores) and of ``rows * padded_len`` (tokens), divided by the
exact sums over the examples (``len**2`` and ``len``).

Every implementation's outputs are checked against (a) before anything is timed.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import jax
import numpy as np

import netgraph as ng
from netgraph.batching import DEFAULT_BATCH_SIZE, Example, batch_bucket, bucket, plan

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import arguments, write_json  # noqa: E402

# ----------------------------------------------------------------------------- settings
FEATURES = 16
MAX_LEN = 512
SEED = 0
TARGETS = {"compilations_max": 10, "speedup_vs_per_example_min": 10.0,
           "padded_work_max": 1.7, "two_devices_speedup_min": 1.15}

FULL = {"n": 1000, "subset": 200, "cold_reps": 2, "warm_reps": 6, "device_reps": 6}
QUICK = {"n": 200, "subset": 30, "cold_reps": 1, "warm_reps": 2, "device_reps": 2}


# ---------------------------------------------------------------------------- the net
def build_net(seed: int = 0) -> Any:
    """Single-head self-attention: project, attend (Dot, DimensionSqrt), project."""
    net = ng.NetGraph(
        {"query": ng.NetMapOperator(ng.LinearLayer(FEATURES)),
         "key": ng.NetMapOperator(ng.LinearLayer(FEATURES)),
         "value": ng.NetMapOperator(ng.LinearLayer(FEATURES)),
         "attention": ng.AttentionLayer("Dot", score_rescaling="DimensionSqrt"),
         "output": ng.NetMapOperator(ng.LinearLayer(FEATURES))},
        [("query", ng.NetPort("attention", "Query")), ("key", ng.NetPort("attention", "Key")),
         ("value", ng.NetPort("attention", "Value")), ("attention", "output")],
        Input=("Varying", FEATURES))
    return ng.NetInitialize(net, seed=seed)


def workload(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    lengths = rng.integers(1, MAX_LEN + 1, n)
    return [rng.standard_normal((int(k), FEATURES)).astype(np.float32) for k in lengths]


def block(tree: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = block(fn())
    return time.perf_counter() - t0, out


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b)
    worst = 0.0
    for x, y in zip(a, b):
        assert x.shape == y.shape, (x.shape, y.shape)
        worst = max(worst, float(np.max(np.abs(np.asarray(x) - np.asarray(y)))))
    return worst


# --------------------------------------------------------------------- padded work
def padded_work(batches: list[tuple[int, int]], lengths: list[int]) -> dict[str, float]:
    """``batches``: (padded rows, padded length) of every compiled call."""
    exact_sq = float(sum(k * k for k in lengths))
    exact_tok = float(sum(lengths))
    return {"attention": sum(r * p * p for r, p in batches) / exact_sq,
            "tokens": sum(r * p for r, p in batches) / exact_tok,
            "batches": len(batches), "shapes": len(set(batches))}


def netgraph_batches(lengths: list[int], batch_size: int = DEFAULT_BATCH_SIZE) -> list[tuple[int, int]]:
    """The (rows, length) of every call netgraph's plan makes (netgraph/batching.py)."""
    examples = [Example({}, {"n": k}) for k in lengths]
    return [(batch_bucket(len(idx), batch_size), bucket(max(lengths[i] for i in idx)))
            for idx in plan(examples, batch_size)]


def next_pow2(k: int) -> int:
    return 1 << max(k - 1, 0).bit_length()


def pow2_groups(lengths: list[int], rows: int = DEFAULT_BATCH_SIZE) -> list[tuple[int, list[int]]]:
    """(padded length, example indices) chunks of at most ``rows`` examples."""
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(lengths):
        groups.setdefault(next_pow2(k), []).append(i)
    return [(p, idx[j:j + rows]) for p, idx in sorted(groups.items()) for j in range(0, len(idx), rows)]


# ----------------------------------------------------------------------- (a) netgraph
def bench_netgraph(xs: list[np.ndarray], cfg: dict) -> tuple[dict[str, Any], Any]:
    """Cold runs (each on a fresh net); returns the results and the last (now warm) net."""
    cold, compilations, outputs, net = [], None, None, None
    for rep in range(cfg["cold_reps"]):
        net = build_net()  # a fresh net: nothing compiled yet
        t, out = timed(lambda: net(xs))
        cold.append(t)
        stats = ng.compile_stats(net)
        if outputs is None:
            outputs, compilations = out, stats["compilations"]
        assert stats["compilations"] == compilations, "the cold runs compiled different numbers of shapes"
    calls = ng.compile_stats(net)["calls"]
    return {"cold_s": statistics.median(cold), "cold_samples": cold, "compilations": compilations,
            "calls_per_list": calls, "outputs": outputs}, net


def warm_rounds(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, dict[str, Any]]:
    """Interleaved warm timings (the order flips every round); medians."""
    samples: dict[str, list[float]] = {n: [] for n in fns}
    names = list(fns)
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            samples[name].append(timed(fns[name])[0])
    return {n: {"median_s": statistics.median(s), "min_s": min(s), "samples": s} for n, s in samples.items()}


# ----------------------------------------------------------------- (b) per example
def bench_per_example(xs: list[np.ndarray], reference: list[np.ndarray], cfg: dict) -> dict[str, Any]:
    net = build_net()
    apply = ng.lower(net)
    params = jax.device_put(ng.params_of(net))
    traces = [0]

    def one(p: Any, x: Any) -> Any:
        traces[0] += 1
        return apply(p, {"Input": x})["Output"]

    f = jax.jit(one)
    subset = xs[: cfg["subset"]]
    new_times, hit_times, outputs = [], [], []
    seen: set[int] = set()
    gc.collect()
    t_start = time.perf_counter()
    for x in subset:
        t0 = time.perf_counter()
        y = np.asarray(f(params, x))
        (hit_times if len(x) in seen else new_times).append(time.perf_counter() - t0)
        seen.add(len(x))
        outputs.append(y)
    subset_s = time.perf_counter() - t_start
    assert traces[0] == len(seen)
    diff = max_diff(outputs, reference[: len(subset)])
    assert diff < 1e-4, f"(b) disagrees with netgraph: {diff}"
    # every call again: all cache hits (the cost of a call once its shape is compiled)
    hits = []
    for x in subset:
        t0 = time.perf_counter()
        np.asarray(f(params, x))
        hits.append(time.perf_counter() - t0)
    distinct_full = len({len(x) for x in xs})
    mean_new = statistics.fmean(new_times)
    mean_hit = statistics.fmean(hits)
    estimate = distinct_full * mean_new + (len(xs) - distinct_full) * mean_hit
    return {"subset": len(subset), "subset_s": subset_s, "subset_compilations": traces[0],
            "mean_new_shape_call_s": mean_new, "mean_cached_call_s": mean_hit,
            "full_distinct_lengths": distinct_full, "full_compilations_estimate": distinct_full,
            "full_estimate_s": estimate, "max_abs_diff_vs_netgraph": diff}


# ------------------------------------------------------------- (c) pow2 by hand
def bench_pow2(xs: list[np.ndarray], reference: list[np.ndarray], cfg: dict) -> dict[str, Any]:
    net = build_net()
    apply = ng.lower(net)
    params = jax.device_put(ng.params_of(net))
    symbol = net.inference.port((), "Input").dims[0].symbol  # the varying length's name
    traces = [0]

    def batch(p: Any, x: Any, n: Any) -> Any:
        traces[0] += 1
        return jax.vmap(lambda xi, ni: apply(p, {"Input": xi}, lengths={symbol: ni})["Output"])(x, n)

    f = jax.jit(batch)
    lengths = [len(x) for x in xs]
    groups = pow2_groups(lengths)

    def run() -> list[np.ndarray]:
        out: list[Any] = [None] * len(xs)
        for padded, idx in groups:
            block_ = np.zeros((DEFAULT_BATCH_SIZE, padded, FEATURES), np.float32)
            n = np.zeros(DEFAULT_BATCH_SIZE, np.int32)
            for row, i in enumerate(idx):
                block_[row, : lengths[i]] = xs[i]
                n[row] = lengths[i]
            y = np.asarray(f(params, block_, n))
            for row, i in enumerate(idx):
                out[i] = y[row, : lengths[i]]
        return out

    cold, outputs = timed(run)
    compilations = traces[0]
    diff = max_diff(outputs, reference)
    assert diff < 1e-4, f"(c) disagrees with netgraph: {diff}"
    work = padded_work([(DEFAULT_BATCH_SIZE, p) for p, _ in groups], lengths)
    return {"cold_s": cold, "compilations": compilations, "padded_work": work,
            "max_abs_diff_vs_netgraph": diff, "run": run, "traces": traces}


# ----------------------------------------------------------------- (d) devices
def devices_child(n: int, reps: int) -> None:
    """Runs in the subprocess (2 forced host devices): prints one JSON line."""
    xs = workload(n)
    net = build_net()
    one = net(xs, target_device=("CPU", 1))
    two = net(xs, target_device=("CPU", 2))
    diff = max_diff(one, two)
    samples: dict[str, list[float]] = {"one": [], "two": []}
    for rep in range(reps):
        order = [("one", ("CPU", 1)), ("two", ("CPU", 2))]
        for name, target in (order if rep % 2 == 0 else order[::-1]):
            samples[name].append(timed(lambda: net(xs, target_device=target))[0])
    print("DEVICES " + json.dumps({
        "devices": len(jax.devices("cpu")), "max_abs_diff": diff,
        "one_s": statistics.median(samples["one"]), "two_s": statistics.median(samples["two"]),
        "samples": samples, "compilations": ng.compile_stats(net)["compilations"]}))


def bench_devices(cfg: dict) -> dict[str, Any]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--devices-child", str(cfg["n"]), str(cfg["device_reps"])],
        env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the device subprocess failed:\n{proc.stdout}\n{proc.stderr}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("DEVICES "))
    res = json.loads(line[len("DEVICES "):])
    assert res["devices"] == 2 and res["max_abs_diff"] < 1e-5, res
    res["speedup"] = res["one_s"] / res["two_s"]
    return res


# ------------------------------------------------------------------------- report
def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "jax": jax.__version__,
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(), "platform": platform.platform()}


def print_report(res: dict) -> None:
    m, a, b, c, d = res["machine"], res["netgraph"], res["per_example"], res["pow2"], res["devices"]
    w = res["padded_work"]
    print(f"\nthreaded evaluation benchmark ({'quick' if res['quick'] else 'full'} run; JAX {m['jax']} "
          f"on {m['backend']}, {m['cpu_count']} CPU cores)")
    print(f"{res['n']} sequences, lengths uniform in 1..{MAX_LEN} (seed {SEED}), features {FEATURES}; "
          f"{res['distinct_lengths']} distinct lengths; self-attention (Dot, DimensionSqrt)\n")
    header = f"{'implementation':<48}{'wall s':>10}{'compilations':>14}"
    print(header)
    print("-" * len(header))
    print(f"{'(a) netgraph net(xs), cold (fresh net)':<48}{a['cold_s']:10.2f}{a['compilations']:14d}")
    print(f"{'(a) netgraph net(xs), warm':<48}{a['warm_s']:10.2f}{0:14d}")
    print(f"{'(b) jit per example, exact shapes (estimate)':<48}{b['full_estimate_s']:10.2f}"
          f"{b['full_compilations_estimate']:14d}")
    print(f"{'    measured on the first ' + str(b['subset']) + ' examples':<48}{b['subset_s']:10.2f}"
          f"{b['subset_compilations']:14d}")
    print(f"{'(c) pow2 padding by hand, jit per bucket, cold':<48}{c['cold_s']:10.2f}{c['compilations']:14d}")
    print(f"{'(c) pow2 padding by hand, warm':<48}{c['warm_s']:10.2f}{0:14d}")
    print(f"\n(b) is EXTRAPOLATED from {b['subset']} examples: {b['full_distinct_lengths']} distinct lengths x "
          f"{b['mean_new_shape_call_s'] * 1e3:.1f} ms (a call that compiles) + "
          f"{res['n'] - b['full_distinct_lengths']} repeats x {b['mean_cached_call_s'] * 1e3:.2f} ms (cached)")
    print(f"\nspeedup of (a) cold over (b): {res['speedup_vs_per_example']:.1f}x;  (a) cold vs (c) cold: "
          f"{c['cold_s'] / a['cold_s']:.2f}x;  (a) warm vs (c) warm: {c['warm_s'] / a['warm_s']:.2f}x")
    print(f"padded work / exact     attention (rows*len^2)   tokens (rows*len)   batches  shapes")
    for label, r in (("netgraph plan", w), ("pow2 by hand", c["padded_work"])):
        print(f"  {label:<22}{r['attention']:>15.3f}{r['tokens']:>20.3f}{r['batches']:>10d}{r['shapes']:>8d}")
    print(f"\n(d) {d['devices']} forced host devices, warm net(xs): one device {d['one_s']:.2f} s, "
          f"two devices {d['two_s']:.2f} s -> {d['speedup']:.2f}x  (max |diff| {d['max_abs_diff']:.1e})")
    print("\ntargets:")
    for key, ok in res["meets_targets"].items():
        print(f"  {key:<34}{'OK' if ok else 'MISSED'}")
    print(f"\ntotal wall time {res['wall_s']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--devices-child":
        devices_child(int(argv[1]), int(argv[2]))
        return 0
    parser = arguments(__doc__, samples=False)
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    xs = workload(cfg["n"])
    lengths = [len(x) for x in xs]
    res: dict[str, Any] = {"quick": args.quick, "config": cfg, "machine": machine(), "n": len(xs),
                           "distinct_lengths": len(set(lengths))}
    a, warm_net = bench_netgraph(xs, cfg)
    reference = a.pop("outputs")
    res["netgraph"] = a
    res["per_example"] = bench_per_example(xs, reference, cfg)
    c = bench_pow2(xs, reference, cfg)
    run_pow2, traces = c.pop("run"), c.pop("traces")
    warm = warm_rounds({"netgraph": lambda: warm_net(xs), "pow2": run_pow2}, cfg["warm_reps"])
    assert ng.compile_stats(warm_net)["compilations"] == a["compilations"], "a warm call compiled"
    assert traces[0] == c["compilations"]
    a["warm_s"], a["warm_samples"] = warm["netgraph"]["median_s"], warm["netgraph"]["samples"]
    c["warm_s"], c["warm_samples"] = warm["pow2"]["median_s"], warm["pow2"]["samples"]
    res["pow2"] = c
    res["padded_work"] = padded_work(netgraph_batches(lengths), lengths)
    res["devices"] = bench_devices(cfg)
    res["speedup_vs_per_example"] = res["per_example"]["full_estimate_s"] / a["cold_s"]
    res["wall_s"] = time.perf_counter() - t0
    res["targets"] = TARGETS
    res["meets_targets"] = {
        f"compilations <= {TARGETS['compilations_max']}": a["compilations"] <= TARGETS["compilations_max"],
        f"(a) >= {TARGETS['speedup_vs_per_example_min']:g}x faster than (b)":
            res["speedup_vs_per_example"] >= TARGETS["speedup_vs_per_example_min"],
        f"padded attention work <= {TARGETS['padded_work_max']}x":
            res["padded_work"]["attention"] <= TARGETS["padded_work_max"],
        f"2 devices >= {TARGETS['two_devices_speedup_min']}x one":
            res["devices"]["speedup"] >= TARGETS["two_devices_speedup_min"],
    }
    print_report(res)
    write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
