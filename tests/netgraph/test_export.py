"""``ng.export``: one StableHLO artifact for every batch size and length, equal to netgraph's
own evaluation, loadable with plain JAX."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import netgraph as ng


def _padded(seqs, width, dtype):
    x = np.zeros((len(seqs), width, *seqs[0].shape[1:]), dtype)
    for row, s in enumerate(seqs):
        x[row, :len(s)] = s
    return x, np.array([len(s) for s in seqs], np.int32)


@pytest.fixture
def classifier():
    return ng.NetInitialize(ng.NetChain(
        [ng.EmbeddingLayer(8, 20), ng.ConvolutionLayer(8, 3, padding="Same", interleaving=True), "Ramp",
         ng.AggregationLayer("Max", 0), ng.LinearLayer(3), ng.SoftmaxLayer()],
        Input=("Varying", ng.Restricted("Integer", 20))), seed=0)


def test_one_artifact_serves_every_batch_and_length(classifier, tmp_path):
    signature = ng.export(classifier, tmp_path / "net.stablehlo")
    assert signature == {"inputs": [("Input", ("B", "L0"), "int32")],
                         "lengths": {"L0": ("Input", 0)}, "outputs": ["Output"]}
    exported = ng.load_exported(tmp_path / "net.stablehlo")
    rng = np.random.default_rng(0)
    for count, width in ((3, 8), (5, 17)):
        seqs = [rng.integers(0, 20, n) for n in rng.integers(1, width + 1, count)]
        x, n = _padded(seqs, width, np.int32)
        (out,) = exported.call(x, n)
        np.testing.assert_allclose(np.asarray(out), np.stack(classifier(seqs)), rtol=1e-5, atol=1e-6)


def test_custom_scoring_attention_with_two_lengths(tmp_path):
    scorer = ng.NetGraph({"c": ng.CatenateLayer(), "l": ng.LinearLayer(4), "t": "Tanh", "o": ng.LinearLayer(())},
                         [([ng.NetPort("Input"), ng.NetPort("Query")], "c", "l", "t", "o")])
    att = ng.NetInitialize(ng.AttentionLayer(scorer, Key=("Varying", 3), Value=("Varying", 2),
                                             Query=("Varying", 3)), seed=1)
    signature = ng.export(att, tmp_path / "att.bin")
    assert signature["lengths"] == {"L0": ("Key", 0), "L1": ("Query", 0)}
    rng = np.random.default_rng(1)
    keys = [rng.standard_normal((n, 3)).astype(np.float32) for n in (6, 4)]
    values = [k[:, :2].copy() for k in keys]
    queries = [rng.standard_normal((n, 3)).astype(np.float32) for n in (5, 6)]
    (k, nk), (v, _), (q, nq) = _padded(keys, 6, np.float32), _padded(values, 6, np.float32), \
        _padded(queries, 6, np.float32)
    (out,) = ng.load_exported(tmp_path / "att.bin").call(k, v, q, nk, nq)
    expected = att({"Key": keys, "Value": values, "Query": queries})
    for row, e in enumerate(expected):
        np.testing.assert_allclose(np.asarray(out)[row, :len(e)], e, rtol=1e-5, atol=1e-6)


def test_plain_jax_runs_it_without_netgraph(classifier, tmp_path):
    path = tmp_path / "net.bin"
    ng.export(classifier, path)
    x = np.array([[1, 2, 3, 0], [4, 5, 6, 7]], np.int32)
    n = np.array([3, 4], np.int32)
    expected = np.stack(classifier([x[0, :3], x[1]]))
    script = textwrap.dedent(f"""
        import pathlib, sys, numpy as np, jax
        exported = jax.export.deserialize(bytearray(pathlib.Path({str(path)!r}).read_bytes()))
        (out,) = exported.call(np.array({x.tolist()}, np.int32), np.array({n.tolist()}, np.int32))
        assert "netgraph" not in sys.modules
        np.save(sys.argv[1], np.asarray(out))
    """)
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "out.npy")], check=True,
                   cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)


def test_export_refuses_what_it_cannot_serve(tmp_path):
    with pytest.raises(ng.UninitializedError):
        ng.export(ng.NetChain([ng.LinearLayer(2)], Input=3), tmp_path / "x.bin")
    with pytest.raises(ng.SpecificationError, match='rank of input port "Input" is not known'):
        ng.export(ng.NetInitialize(ng.ElementwiseLayer("Tanh")), tmp_path / "x.bin")
    with pytest.raises(ng.SpecificationError, match="dimension 2 of input port"):
        ng.export(ng.NetInitialize(ng.ElementwiseLayer("Tanh", Input=(3, ng.Automatic))),
                  tmp_path / "x.bin")
