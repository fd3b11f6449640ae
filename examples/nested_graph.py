"""A multi-input NetGraph with a nested sub-graph, and NetExtract of the sub-net.

A small "gated feature mixer": an encoder sub-graph (itself a NetGraph) encodes a sequence,
its last element is combined with a context vector, and a head produces scores.

Run: python examples/nested_graph.py
"""
import numpy as np

import netgraph as ng

# The encoder: a gated projection applied to every element of a sequence.
encoder = ng.NetGraph(
    {"proj": ng.NetMapOperator(ng.LinearLayer(16)),
     "gate": ng.NetMapOperator(ng.NetChain([ng.LinearLayer(16), ng.ElementwiseLayer("LogisticSigmoid")])),
     "mix": ng.ThreadingLayer("Times")},
    [(["proj", "gate"], "mix")],
    Input=("Varying", 6))
print("encoder:", encoder.input_ports, "->", encoder.output_ports)

model = ng.NetGraph(
    {"encoder": encoder,
     "last": ng.SequenceLastLayer(),
     "context": ng.LinearLayer(16),
     "combine": ng.CatenateLayer(),
     "head": ng.NetChain([ng.LinearLayer(32), "Ramp", ng.LinearLayer(4), ng.SoftmaxLayer()])},
    [(ng.NetPort("Sequence"), "encoder", "last"),
     (ng.NetPort("Context"), "context"),
     (["last", "context"], "combine", "head", ng.NetPort("Scores"))],
    Context=3)
print("\nThe model (nested graphs indented):")
print(model)

net = ng.NetInitialize(model, seed=7)
rng = np.random.default_rng(1)
sequence = rng.standard_normal((5, 6)).astype(np.float32)
context = rng.standard_normal(3).astype(np.float32)
scores = net({"Sequence": sequence, "Context": context})
print("\nscores:", np.round(scores, 4), "sum =", float(scores.sum()))

# Pull the encoder out, with its trained arrays, and use it on its own.
sub = ng.NetExtract(net, "encoder")
print("\nextracted encoder:", sub.input_ports, "->", sub.output_ports)
print("encoded sequence shape:", sub(sequence).shape)
print("a weight deep inside:", ng.NetExtract(net, ("encoder", "gate", "Net", 0, "Weights")).shape)
