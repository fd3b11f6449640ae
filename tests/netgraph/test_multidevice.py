"""Threaded evaluation sharded over several devices equals one device.

The host CPU is split into 4 XLA devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``),
which must be set before JAX starts, so the check runs in a subprocess: it evaluates the same
list of examples with ``target_device=("CPU", 4)`` (each batch sharded over the 4 devices) and
with one device, and prints a JSON summary that this test checks.
"""
from __future__ import annotations

import textwrap

import pytest
from harness import run_on_cpu_devices

CHILD = textwrap.dedent(
    """
    import json
    import jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import numpy as np
    import netgraph as ng

    V = "Varying"
    net = ng.NetInitialize(ng.NetChain([
        ng.NetMapOperator(ng.LinearLayer(4)),
        ng.NetGraph(
            {"q": ng.NetMapOperator(ng.LinearLayer(4)), "k": ng.NetMapOperator(ng.LinearLayer(4)),
             "v": ng.NetMapOperator(ng.LinearLayer(4)),
             "att": ng.AttentionLayer("Dot", mask="Causal", score_rescaling="LengthSqrt", dropout=0.2)},
            [("q", ng.NetPort("att", "Query")), ("k", ng.NetPort("att", "Key")),
             ("v", ng.NetPort("att", "Value"))]),
        ng.DropoutLayer(0.3),
        ng.ConvolutionLayer(3, 3, stride=2, padding="Same", interleaving=True),
        ng.SoftmaxLayer(0)], Input=(V, 3)), seed=0)

    rng = np.random.default_rng(0)
    lengths = [0, 1] + [int(n) for n in rng.integers(0, 60, 39)]   # 41 examples: a last batch of 1
    xs = [rng.standard_normal((n, 3)).astype(np.float32) for n in lengths]

    def diff(a, b):
        assert len(a) == len(b)
        worst = 0.0
        for x, y in zip(a, b):
            assert x.shape == y.shape, (x.shape, y.shape)
            if x.size:
                worst = max(worst, float(np.max(np.abs(x - y))))
        return worst

    report = {"devices": len(jax.devices("cpu")), "count": len(xs), "errors": {}}

    def check(name, fn):
        try:
            report[name] = fn()
        except Exception as err:  # recorded, so that one failure does not hide the others
            report["errors"][name] = f"{type(err).__name__}: {str(err)[:300]}"

    one = net(xs, target_device=("CPU", 1), batch_size=8)
    four = net(xs, target_device=("CPU", 4), batch_size=8)
    report["eval_max_diff"] = diff(four, one)
    report["shapes_ok"] = [r.shape for r in four] == [(-(-n // 2), 3) for n in lengths]
    # batch_size 6 is rounded up to a multiple of the 4 devices
    check("eval_bs6_max_diff", lambda: diff(net(xs, target_device=("CPU", 4), batch_size=6), one))
    check("all_max_diff", lambda: diff(net(xs, target_device=("CPU", "All"), batch_size=8), one))
    check("list_max_diff", lambda: diff(net(xs, target_device=jax.devices("cpu")[:2], batch_size=8), one))
    # one example (an array), and a batch array of 3 rows, on 4 devices
    check("single_max_diff", lambda: diff([net(xs[5], target_device=("CPU", 4))], [one[5]]))
    batch = rng.standard_normal((3, 7, 3)).astype(np.float32)
    check("batch3_max_diff", lambda: diff(list(net(batch, target_device=("CPU", 4))),
                                          list(net(batch, target_device=("CPU", 1)))))
    t4 = net(xs, train=True, seed=3, target_device=("CPU", 4), batch_size=8)
    t1 = net(xs, train=True, seed=3, target_device=("CPU", 1), batch_size=8)
    report["train_max_diff"] = diff(t4, t1)
    report["train_changes_something"] = diff(t4, one) > 1e-3
    print("RESULT " + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report() -> dict:
    """Run the child once; its JSON summary."""
    result = run_on_cpu_devices(CHILD)
    assert result["devices"] == 4 and result["count"] == 41, result
    return result


def test_list_on_four_devices_equals_one_device(report: dict) -> None:
    assert report["shapes_ok"]
    assert report["eval_max_diff"] <= 1e-6, report


@pytest.mark.parametrize("key", ["eval_bs6_max_diff", "all_max_diff", "list_max_diff"])
def test_other_device_choices_equal_one_device(report: dict, key: str) -> None:
    """batch_size 6 (rounded up to 8 for 4 devices), ("CPU", "All"), a list of 2 devices."""
    assert key not in report["errors"], report["errors"][key]
    assert report[key] <= 1e-6, report


def test_train_mode_on_four_devices_equals_one_device(report: dict) -> None:
    """The same seed gives the same dropout whether a batch is sharded or not."""
    assert report["train_max_diff"] <= 1e-6, report
    assert report["train_changes_something"]


@pytest.mark.parametrize("key", ["single_max_diff", "batch3_max_diff"])
def test_arrays_on_four_devices(report: dict, key: str) -> None:
    """One example (an array) and a batch array of 3 rows with target_device=("CPU", 4):
    rows that do not divide among the devices must still work."""
    assert key not in report["errors"], report["errors"][key]
    assert report[key] <= 1e-6, report
