"""Training a net with optax: the lowered function is pure, so jax.grad and optax just work.

A small sequence classifier (embedding -> convolution -> attention pooling -> linear) learns
to tell whether token 7 occurs in a variable-length sequence. Parameters live in a pytree
(``ng.params_of``); after training, ``ng.with_params`` puts them back into the net.

Run: python examples/train_optax.py
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

import netgraph as ng

VOCAB, LENGTH = 10, 12
model = ng.NetGraph(
    {"embed": ng.EmbeddingLayer(16, VOCAB),
     "conv": ng.ConvolutionLayer(16, 3, padding="Same", interleaving=True),
     "relu": ng.ElementwiseLayer("Ramp"),
     "query": ng.NetArrayLayer(Output=(1, 16)),
     "pool": ng.AttentionLayer("Dot"),
     "flat": ng.FlattenLayer(),
     "out": ng.LinearLayer(2),
     "probs": ng.SoftmaxLayer()},
    [(ng.NetPort("Tokens"), "embed", "conv", "relu", ng.NetPort("pool", "Key")),
     ("relu", ng.NetPort("pool", "Value")),
     ("query", ng.NetPort("pool", "Query")),
     ("pool", "flat", "out", "probs")],
    Tokens=("Varying", ng.Restricted("Integer", VOCAB)))
print(model)

rng = np.random.default_rng(0)
tokens = rng.integers(0, VOCAB, (512, LENGTH)).astype(np.int32)
labels = (tokens == 7).any(axis=1).astype(np.int32)

net = ng.NetInitialize(model, seed=0)
apply = jax.vmap(ng.lower(net), in_axes=(None, 0))


def loss_fn(params, x, y):
    probs = apply(params, {"Tokens": x})["Output"]
    return -jnp.mean(jnp.log(jnp.take_along_axis(probs, y[:, None], axis=1) + 1e-9))


optimizer = optax.adam(1e-2)
params = ng.params_of(net)
state = optimizer.init(params)


@jax.jit
def step(params, state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, state = optimizer.update(grads, state)
    return optax.apply_updates(params, updates), state, loss


for epoch in range(60):
    params, state, loss = step(params, state, tokens, labels)
    if epoch % 15 == 0 or epoch == 59:
        print(f"epoch {epoch:2d}  loss {float(loss):.4f}")

trained = ng.with_params(net, params)
test = [np.array([1, 2, 7, 3]), np.array([4, 5, 6]), np.array([7]), np.array([0, 1, 2, 3, 4, 5, 6, 8, 9])]
for seq, probs in zip(test, trained({"Tokens": test})):
    print(f"{seq} -> P(contains 7) = {probs[1]:.3f}")
