"""Suite-wide settings: strict JAX, float32, a modest hypothesis profile, shared fixtures.

``pyproject.toml`` already turns every warning into an error. Here:

* ``jax_numpy_rank_promotion="raise"``: an implicit broadcast between arrays of different
  ranks is an error, so a lowering that relies on one fails loudly in the tests;
* ``jax_enable_x64=False``: float32 is the default dtype, as in production;
* a hypothesis profile with few examples and no deadline (the suite runs on 2 CPU cores,
  and the first call of a jitted function is slow).

The directory of this file is on ``sys.path`` (``pythonpath`` in pyproject.toml), so test
modules in any sub-folder can ``from harness import check_layer``.

The suite tests the *installed* package (``pip install .`` or ``pip install -e .``). The
repository root is taken off ``sys.path`` (``python -m pytest`` puts it there): its
``netgraph/`` folder alone is not the package (``layers/`` and ``shapes/`` install inside it
as ``netgraph.layers`` and ``netgraph.shapes``). And ``netgraph`` is imported before this
folder goes back on the path, so that ``tests/netgraph/`` is never taken for the package (an
editable install finds the package through a path hook that comes after ``sys.path``).
"""
from __future__ import annotations

import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_TESTS = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != _ROOT]
_test_paths = [p for p in sys.path if pathlib.Path(p or ".").resolve() == _TESTS]
sys.path[:] = [p for p in sys.path if p not in _test_paths]

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

try:
    import netgraph  # noqa: E402,F401
except ImportError as error:  # pragma: no cover - a set-up mistake, not a test failure
    raise ImportError("the tests run against the installed package: pip install '.[test]' "
                      "(or pip install -e '.[test]') from the repository root") from error
sys.path[:0] = _test_paths or [str(_TESTS)]  # test helpers: from harness import check_layer

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
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
