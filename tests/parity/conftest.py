"""Keras 3 parity tests: Keras on the JAX backend as a numerical oracle for netgraph.keras.

``KERAS_BACKEND`` must be set before keras is first imported (it defaults to TensorFlow,
which is not installed); netgraph itself imports keras only inside ``from_keras``.

Keras breaks the suite's strict ``jax_numpy_rank_promotion="raise"`` (it relies on implicit
rank promotion internally), so every Keras call goes through the ``keras_call`` fixture,
which allows it for that call only. netgraph's own code keeps running under "raise".

Measured parity errors are collected with the ``record_error`` fixture and printed in the
terminal summary ("Keras parity: max abs error per layer family").
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras  # noqa: E402

if keras.backend.backend() != "jax":  # pragma: no cover - environment problem
    raise pytest.UsageError(
        f"the parity tests need KERAS_BACKEND=jax; keras runs on {keras.backend.backend()!r}."
    )

_MAX_ERRORS: dict[str, float] = {}


@pytest.fixture(autouse=True)
def _keras_seed():
    """Fixed Keras initialisation per test (weights are random-initialised by Keras)."""
    keras.utils.set_random_seed(1234)


@pytest.fixture
def keras_call():
    """``keras_call(fn, *args, **kwargs)``: call Keras with implicit rank promotion allowed;
    results come back as NumPy arrays (tuples stay tuples)."""

    def call(fn, *args, **kwargs):
        with jax.numpy_rank_promotion("allow"):
            result = fn(*args, **kwargs)
        if isinstance(result, (tuple, list)):
            return tuple(np.asarray(r) for r in result)
        return np.asarray(result)

    return call


@pytest.fixture
def record_error():
    """``record_error(family, ours, theirs, where=None)``: max |ours - theirs| (over the
    boolean selection ``where`` of leading positions, if given), recorded per family and
    returned."""

    def record(family: str, ours, theirs, where=None) -> float:
        ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
        assert ours.shape == theirs.shape, f"{family}: shape {ours.shape} != Keras {theirs.shape}"
        if where is not None:
            ours, theirs = ours[where], theirs[where]
        error = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
        _MAX_ERRORS[family] = max(_MAX_ERRORS.get(family, 0.0), error)
        return error

    return record


def pytest_terminal_summary(terminalreporter):
    if _MAX_ERRORS:
        terminalreporter.section("Keras parity: max abs error per layer family")
        for family, error in sorted(_MAX_ERRORS.items()):
            terminalreporter.write_line(f"{family:40s} {error:.3e}")
