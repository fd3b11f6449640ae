"""Part layers against the Keras layers that do the same: ZeroPadding1D/2D (PaddingLayer),
Cropping1D/2D (PartLayer with slices), CategoryEncoding "one_hot" (UnitVectorLayer) and
Concatenate (CatenateLayer); outputs to 1e-6 (they move numbers, so they agree exactly)."""
from __future__ import annotations

import keras
import numpy as np

import netgraph as ng


def test_padding_matches_zero_padding(rng, keras_call, record_error):
    x1 = rng.standard_normal((3, 5, 2)).astype(np.float32)
    ours = ng.PaddingLayer(((1, 2),), Input=(5, 2))(x1)
    assert record_error("ZeroPadding1D", ours, keras_call(keras.layers.ZeroPadding1D((1, 2)), x1)) < 1e-6
    x2 = rng.standard_normal((2, 4, 3, 2)).astype(np.float32)
    ours = ng.PaddingLayer(((1, 0), (2, 1)), Input=(4, 3, 2))(x2)
    theirs = keras_call(keras.layers.ZeroPadding2D(((1, 0), (2, 1))), x2)
    assert record_error("ZeroPadding2D", ours, theirs) < 1e-6


def test_part_matches_cropping(rng, keras_call, record_error):
    x1 = rng.standard_normal((3, 6, 2)).astype(np.float32)
    ours = ng.PartLayer(slice(1, -2), Input=(6, 2))(x1)
    assert record_error("Cropping1D", ours, keras_call(keras.layers.Cropping1D((1, 2)), x1)) < 1e-6
    x2 = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    ours = ng.PartLayer((slice(1, None), slice(0, -1)), Input=(5, 4, 3))(x2)
    theirs = keras_call(keras.layers.Cropping2D(((1, 0), (0, 1))), x2)
    assert record_error("Cropping2D", ours, theirs) < 1e-6


def test_unit_vector_matches_one_hot_category_encoding(rng, keras_call, record_error):
    tokens = rng.integers(0, 4, (3, 5)).astype(np.int32)
    ours = ng.UnitVectorLayer(4, Input=5)(tokens)
    theirs = keras_call(keras.layers.CategoryEncoding(num_tokens=4, output_mode="one_hot"), tokens)
    assert record_error("CategoryEncoding (one_hot)", ours, theirs) < 1e-6


def test_catenate_matches_concatenate(rng, keras_call, record_error):
    a = rng.standard_normal((2, 4, 2)).astype(np.float32)
    b = rng.standard_normal((2, 4, 3)).astype(np.float32)
    ours = ng.CatenateLayer(-1, Input1=(4, 2), Input2=(4, 3))({"Input1": a, "Input2": b})
    theirs = keras_call(keras.layers.Concatenate(axis=-1), [a, b])
    assert record_error("Concatenate", ours, theirs) < 1e-6
