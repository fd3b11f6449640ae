"""A Transformer encoder block, declared in a few lines: self-attention, a residual
connection and LayerNorm, then a position-wise feed-forward net, another residual and
LayerNorm ("Attention Is All You Need", post-norm).

* ``ng.keras.MultiHeadAttention(heads, d_model // heads, query_dim=d_model, use_key=False)``:
  Keras's layer, built as a net; one graph input feeds its Query and Value ports, which makes
  it self-attention.
* ``ng.TotalLayer()`` adds the residual; ``ng.NormalizationLayer()`` is LayerNorm (normalise
  each position's feature vector, then a learned per-feature scale and bias).
* ``ng.NetMapOperator(ng.NetChain([ng.LinearLayer(d_ff), "ReLU", ng.LinearLayer(d_model)]))``
  is the feed-forward net, applied to every position (Keras's Dense over a sequence).

Two blocks are stacked, run on sequences of different lengths (no padding by hand: padded
keys get no weight, so each sequence gives what it gives alone), saved and loaded back.

Run: python examples/transformer_block.py
"""
import pathlib
import tempfile

import numpy as np

import netgraph as ng

D_MODEL, HEADS, D_FF = 32, 4, 64


def encoder_block(d_model: int = D_MODEL, heads: int = HEADS, d_ff: int = D_FF) -> ng.NetGraph:
    feed_forward = ng.NetChain([ng.LinearLayer(d_ff), "ReLU", ng.LinearLayer(d_model)])
    return ng.NetGraph(
        {"attention": ng.keras.MultiHeadAttention(heads, d_model // heads, query_dim=d_model, use_key=False),
         "residual1": ng.TotalLayer(), "norm1": ng.NormalizationLayer(),
         "feed_forward": ng.NetMapOperator(feed_forward),
         "residual2": ng.TotalLayer(), "norm2": ng.NormalizationLayer()},
        [(ng.NetPort("Input"), ng.NetPort("attention", "Query")),
         (ng.NetPort("Input"), ng.NetPort("attention", "Value")),
         ([ng.NetPort("Input"), "attention"], "residual1", "norm1", "feed_forward"),
         (["norm1", "feed_forward"], "residual2", "norm2")],
        Input=("Varying", d_model))


encoder = ng.NetInitialize(ng.NetChain([encoder_block(), encoder_block()]), seed=0)
print(encoder.input_ports, "->", encoder.output_ports)
print(ng.NetExtract(encoder, 0))  # the first block

rng = np.random.default_rng(0)
sequences = [rng.standard_normal((n, D_MODEL)).astype(np.float32) for n in (5, 9, 3)]
outputs = encoder(sequences)                     # a list of examples of different lengths
for seq, out in zip(sequences, outputs):
    alone = encoder(seq)
    assert out.shape == seq.shape and np.allclose(out, alone, atol=1e-5)
    # the last LayerNorm: each position has mean 0 and standard deviation 1 (Scaling 1, Biases 0)
    assert np.allclose(out.mean(-1), 0, atol=1e-5) and np.allclose(out.std(-1), 1, atol=1e-2)
print("lengths", [len(s) for s in sequences], "-> outputs", [o.shape for o in outputs])

with tempfile.TemporaryDirectory() as folder:
    path = pathlib.Path(folder) / "encoder.npz"
    ng.save(encoder, path)
    loaded = ng.load(path)
assert all(np.array_equal(a, b) for a, b in zip(loaded(sequences), outputs))
print("saved, loaded back: the same outputs")
