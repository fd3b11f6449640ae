"""A small 2-D CNN with pooling, trained briefly with ``ng.NetTrain`` on generated images.

Each 12 x 12 grey image holds one bar, horizontal or vertical, at a random place, in noise;
the net says which. Channels are interleaved (height x width x channels), as in Keras:

    ConvolutionLayer(8, 3, padding="Same", interleaving=True)   Keras Conv2D(8, 3, padding="same")
    PoolingLayer(2, 2, interleaving=True)                       MaxPooling2D(2)
    PoolingLayer(2, 2, function="Mean", interleaving=True)      AveragePooling2D(2)
    AggregationLayer("Mean", (0, 1))                            GlobalAveragePooling2D()

Run: python examples/cnn_pooling.py
"""
import numpy as np

import netgraph as ng

SIZE = 12


def make_images(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Images SIZE x SIZE x 1 with one bar each; label 0 = horizontal, 1 = vertical."""
    labels = rng.integers(0, 2, count)
    images = 0.3 * rng.standard_normal((count, SIZE, SIZE, 1))
    for image, label in zip(images, labels):
        row, start = rng.integers(0, SIZE), rng.integers(0, SIZE - 5)
        if label == 0:
            image[row, start:start + 6, 0] += 1.0
        else:
            image[start:start + 6, row, 0] += 1.0
    return images.astype(np.float32), labels


cnn = ng.NetChain([
    ng.ConvolutionLayer(8, 3, padding="Same", interleaving=True), "ReLU",
    ng.PoolingLayer(2, 2, interleaving=True),                       # 12 x 12 -> 6 x 6
    ng.ConvolutionLayer(16, 3, padding="Same", interleaving=True), "ReLU",
    ng.PoolingLayer(2, 2, function="Mean", interleaving=True),      # 6 x 6 -> 3 x 3
    ng.AggregationLayer("Mean", (0, 1)),                            # global average: 16
    ng.LinearLayer(2), ng.SoftmaxLayer(),
], Input=(SIZE, SIZE, 1))
print(cnn)

rng = np.random.default_rng(0)
images, labels = make_images(512, rng)
test_images, test_labels = make_images(128, rng)
result = ng.NetTrain(cnn, {"Input": images, "Target": labels}, optimizer="Adam",
                     learning_rate=1e-2, batch_size=32, max_epochs=8, seed=0)
trained = result.net
accuracy = float(np.mean(np.argmax(trained(test_images), axis=-1) == test_labels))
print(f"loss per epoch: {np.round(result.history['loss'], 3).tolist()}")
print(f"test accuracy: {accuracy:.2f}")
assert result.history["loss"][-1] < result.history["loss"][0]
assert accuracy > 0.8
