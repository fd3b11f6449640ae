"""Quickstart: declare nets, look at the inferred shapes, initialise, evaluate, extract.

Run: python examples/quickstart.py
"""
import numpy as np

import netgraph as ng

# A chain: only the input size is declared; every other size is inferred.
chain = ng.NetChain([ng.LinearLayer(16), ng.ElementwiseLayer("Tanh"), ng.LinearLayer(3)], Input=8)
print("chain ports:", chain.input_ports, "->", chain.output_ports)

# The same chain mapped over sequences of any length.
seq = ng.NetMapOperator(chain, Input=("Varying", 8))
print("mapped:     ", seq.input_ports, "->", seq.output_ports)

# A graph with two inputs. b's sizes are inferred backwards from the Plus it feeds.
graph = ng.NetGraph(
    {"a": ng.LinearLayer(8), "b": ng.LinearLayer(ng.Automatic), "plus": ng.ThreadingLayer("Plus"),
     "out": ng.LinearLayer(2)},
    [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "plus", "out")],
    A=4, B=5)
print("\nThe graph, with every layer's inferred port shapes:")
print(graph)

net = ng.NetInitialize(graph, seed=0)
rng = np.random.default_rng(0)
a, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(5).astype(np.float32)
print("\none example:", net({"A": a, "B": b}))
batch = net({"A": np.stack([a, a, a]), "B": np.stack([b, b, b])})
print("a batch of 3:", batch.shape)

print("\nNetExtract(net, 'a'):", ng.NetExtract(net, "a"))
print("weights of a:", ng.NetExtract(net, ("a", "Weights")).shape, "(out, in) as in Wolfram")
net2 = ng.NetReplacePart(net, {("a", "Weights"): np.zeros((8, 4), np.float32)})
print("after zeroing a's weights:", net2({"A": a, "B": b}))
print("compilations so far:", ng.compile_stats(net))
