"""Suite-wide settings: strict JAX, float32, a modest hypothesis profile, shared fixtures.

``pyproject.toml`` already turns every warning into an error. Here:

* ``jax_numpy_rank_promotion="raise"``: an implicit broadcast between arrays of different
  ranks is an error, so a lowering that relies on one fails loudly in the tests;
* ``jax_enable_x64=False``: float32 is the default dtype, as in production;
* a hypothesis profile with few examples and no deadline (the suite runs on 2 CPU cores,
  and the first call of a jitted function is slow).

The directory of this file is on ``sys.path`` (pytest's default "prepend" import mode), so
test modules in any sub-folder can ``from harness import check_layer``.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)

settings.register_profile(
    "netgraph",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("netgraph")


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(0)


@pytest.fixture
def randn(rng: np.random.Generator):
    """``randn(*shape)``: float32 standard-normal data of that shape."""

    def make(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    return make
