"""AttentionLayer with a custom (additive, Bahdanau-style) scoring net, Wolfram style.

The scoring net is an ordinary NetGraph with two vector inputs, "Input" (one key) and "Query"
(one query), and a scalar "Output": ``s = w . tanh(Wk k + Wq q)``. This is the "Additive"
parity case of Wolfram's own tests:

    NetGraph[{LinearLayer[10, "Biases" -> None], LinearLayer[10, "Biases" -> None],
              ThreadingLayer[Tanh[#1 + #2] &], LinearLayer[{}, "Biases" -> None]},
             {NetPort["Input"] -> 1 -> 3, NetPort["Query"] -> 2 -> 3 -> 4}]

AttentionLayer evaluates it for every (query, key) pair, softmaxes the scores over the keys
(only the true keys of each example: the keys may have any length), and returns the weighted
sum of the values.

Run: python examples/attention_custom_scoring.py
"""
import jax.numpy as jnp
import numpy as np

import netgraph as ng

# --- the scoring net: key and query -> a number. Its input sizes are left open here; the
# attention layer that uses it fixes them (key size 5, query size 3 below).
scoring = ng.NetGraph(
    {"key": ng.LinearLayer(10, Biases=None),
     "query": ng.LinearLayer(10, Biases=None),
     "tanh": ng.ThreadingLayer(lambda a, b: jnp.tanh(a + b)),  # Tanh[#1 + #2] &
     "score": ng.LinearLayer((), Biases=None)},                 # LinearLayer[{}]: a scalar
    [(ng.NetPort("Input"), "key"),
     (ng.NetPort("Query"), "query"),
     (["key", "query"], "tanh", "score")])
print("scoring net ports (sizes still open):", scoring.input_ports, "->", scoring.output_ports)

# --- the attention layer on its own: keys of any length, a sequence of queries
attention = ng.AttentionLayer(scoring, Key=("Varying", 5), Value=("Varying", 4), Query=("Varying", 3))
print("\nattention ports:", attention.input_ports, "->", attention.output_ports)

# --- inside a graph, with the attention weights exposed as a second output
model = ng.NetGraph(
    {"attention": ng.AttentionLayer(scoring, attention_weights=True)},
    [(ng.NetPort("Key"), ng.NetPort("attention", "Key")),
     (ng.NetPort("Value"), ng.NetPort("attention", "Value")),
     (ng.NetPort("Query"), ng.NetPort("attention", "Query")),
     (ng.NetPort("attention", "Output"), ng.NetPort("Output")),
     (ng.NetPort("attention", "AttentionWeights"), ng.NetPort("Weights"))],
    Key=("Varying", 5), Value=("Varying", 4), Query=("Varying", 3))
print("\nThe model (the scoring net is shown nested, with its inferred sizes):")
print(model)

# --- initialise and evaluate on one example: 6 keys, 2 queries
net = ng.NetInitialize(model, seed=0)
rng = np.random.default_rng(0)
keys = rng.standard_normal((6, 5)).astype(np.float32)
values = rng.standard_normal((6, 4)).astype(np.float32)
queries = rng.standard_normal((2, 3)).astype(np.float32)
out = net({"Key": keys, "Value": values, "Query": queries})
print("\nOutput (2 queries x value size 4):\n", np.round(out["Output"], 4))
print("attention weights (2 queries x 6 keys), rows sum to 1:\n", np.round(out["Weights"], 4))

# A different key length needs no new net: 3 keys this time.
out3 = net({"Key": keys[:3], "Value": values[:3], "Query": queries})
print("\nwith 3 keys, weights:\n", np.round(out3["Weights"], 4))

# --- the scoring net, extracted with its initialised arrays, is a net of its own
sc = ng.NetExtract(net, ("attention", "ScoringNet"))
print("\nNetExtract(net, ('attention', 'ScoringNet')):")
print(sc)
Wk, Wq = ng.NetExtract(sc, ("key", "Weights")), ng.NetExtract(sc, ("query", "Weights"))
w = ng.NetExtract(sc, ("score", "Weights"))
print("key weights  ", Wk.shape, "(out, in), first row:", np.round(Wk[0], 3))
print("query weights", Wq.shape, "first row:", np.round(Wq[0], 3))
print("score weights", w.shape, "(LinearLayer(()) maps 10 -> a scalar):", np.round(w[0], 3))

# --- check against the formula, written out in NumPy
scores = np.tanh((keys @ Wk.T)[None, :, :] + (queries @ Wq.T)[:, None, :]) @ w.reshape(-1)
weights = np.exp(scores - scores.max(-1, keepdims=True))
weights /= weights.sum(-1, keepdims=True)
np.testing.assert_allclose(out["Weights"], weights, rtol=1e-4, atol=1e-6)
np.testing.assert_allclose(out["Output"], weights @ values, rtol=1e-4, atol=1e-5)
print("\nmatches softmax_keys(w . tanh(Wk k + Wq q)) . values, written in NumPy")
print("score of key 0 with query 0, from the extracted net:",
      round(float(sc({"Input": keys[0], "Query": queries[0]})), 5), "; by hand:",
      round(float(scores[0, 0]), 5))
