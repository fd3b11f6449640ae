"""Multi-head self-attention, two ways: Wolfram style, and the Keras-style builder.

1. Wolfram style: project the input to h heads of size d for the query, key and value with
   ``NetMapOperator[LinearLayer[{h, d}]]``, attend with
   ``AttentionLayer["Dot", "MultiHead" -> True, "ScoreRescaling" -> "DimensionSqrt"]`` (the
   heads are the penultimate axis, one softmax per head), and merge the heads with
   ``NetMapOperator[LinearLayer[dModel]]``. The graph declares one input,
   ``"Input" -> {"Varying", dModel}``; the three projections' dangling "Input" ports have the
   same name, so they merge into that one input, which makes it SELF-attention.
2. ``ng.keras.MultiHeadAttention(num_heads=4, key_dim=8, query_dim=32, use_key=False,
   use_causal_mask=True)``: Keras's layer built as a net of the same layers (Query and Value
   ports; with ``use_key=False`` the value is also the key), wrapped in a NetGraph whose one
   input feeds both ports.

With the same arrays, and the causal mask on both, the two give the same result.

Run: python examples/self_attention.py
"""
import numpy as np

import netgraph as ng

D_MODEL, HEADS, D = 32, 4, 8


def wolfram_self_attention(mask=None) -> ng.NetGraph:
    return ng.NetGraph(
        {"query": ng.NetMapOperator(ng.LinearLayer((HEADS, D))),
         "key": ng.NetMapOperator(ng.LinearLayer((HEADS, D))),
         "value": ng.NetMapOperator(ng.LinearLayer((HEADS, D))),
         "attention": ng.AttentionLayer("Dot", multi_head=True, score_rescaling="DimensionSqrt",
                                        mask=mask),
         "merge": ng.NetMapOperator(ng.LinearLayer(D_MODEL))},
        [("query", ng.NetPort("attention", "Query")),
         ("key", ng.NetPort("attention", "Key")),
         ("value", ng.NetPort("attention", "Value")),
         ("attention", "merge")],
        Input=("Varying", D_MODEL))


wolfram = wolfram_self_attention(mask="Causal")
print("Wolfram style (causal), one graph input:", wolfram.input_ports, "->", wolfram.output_ports)
print(wolfram)

keras_mha = ng.keras.MultiHeadAttention(num_heads=HEADS, key_dim=D, query_dim=D_MODEL,
                                        use_key=False, use_causal_mask=True)
print("\nng.keras.MultiHeadAttention(num_heads=4, key_dim=8, query_dim=32, use_key=False, "
      "use_causal_mask=True):")
print(keras_mha)
# query_dim fixes the Query's size only; Keras learns the Value's size at call time. Feeding one
# graph input to both ports makes it self-attention and fixes every size.
keras_self = ng.NetGraph(
    {"mha": keras_mha},
    [(ng.NetPort("Input"), ng.NetPort("mha", "Query")),
     (ng.NetPort("Input"), ng.NetPort("mha", "Value"))],
    Input=("Varying", D_MODEL))
print("\nwrapped as self-attention:", keras_self.input_ports, "->", keras_self.output_ports)
print(keras_self)

# --- initialise the Wolfram-style net; give the Keras-style net the very same arrays
w_net = ng.NetInitialize(wolfram, seed=0)
same = {}
for src, dst in (("query", "query"), ("key", "key"), ("value", "value"), ("merge", "output")):
    for array in ("Weights", "Biases"):
        same[("mha", dst, "Net", array)] = ng.NetExtract(w_net, (src, "Net", array))
k_net = ng.NetReplacePart(ng.NetInitialize(keras_self, seed=0), same)
print("\nquery projection weights:", ng.NetExtract(w_net, ("query", "Net", "Weights")).shape,
      "(heads*d, dModel); biases", ng.NetExtract(w_net, ("query", "Net", "Biases")).shape)

# --- evaluate: a sequence of 6 vectors
rng = np.random.default_rng(0)
x = rng.standard_normal((6, D_MODEL)).astype(np.float32)
y_wolfram = w_net(x)                                   # one input port: pass the array
y_keras = k_net(x)
print("\noutput shape:", y_wolfram.shape, "(length 6 x dModel)")
print("Wolfram style, first row:", np.round(y_wolfram[0, :6], 4), "...")
print("Keras style,   first row:", np.round(y_keras[0, :6], 4), "...")
np.testing.assert_allclose(y_wolfram, y_keras, rtol=1e-5, atol=1e-5)
print("the two nets agree")

# Causal: changing the last element changes only the last output row.
x2 = x.copy()
x2[-1] += 1.0
changed = np.abs(w_net(x2) - y_wolfram).max(axis=-1)
print("\nmax change per output row after editing the last input:", np.round(changed, 4))
assert np.all(changed[:-1] < 1e-5) and changed[-1] > 1e-3

# Without the mask every row sees every element (same arrays).
full = ng.NetReplacePart(ng.NetInitialize(wolfram_self_attention(), seed=0),
                         {k: ng.NetExtract(w_net, k) for k in
                          [(n, "Net", a) for n in ("query", "key", "value", "merge")
                           for a in ("Weights", "Biases")]})
changed = np.abs(full(x2) - full(x)).max(axis=-1)
print("the same without the causal mask:                 ", np.round(changed, 4))

# A batch of 3 sequences of length 5 in one call.
print("\na batch of 3 sequences of length 5 ->", w_net(rng.standard_normal((3, 5, D_MODEL)).astype(np.float32)).shape)
