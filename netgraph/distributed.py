"""Several processes: evaluation and NetTrain over a global mesh with ``jax.distributed``.

Every process runs the same program (JAX's multi-controller model)::

    import netgraph as ng
    ng.distributed.initialize("host0:1234", num_processes=2, process_id=0)   # 1 on the other
    result = ng.NetTrain(net, data, target_device=("CPU", "All"))            # or ("GPU", "All")
    outputs = result.net(xs, target_device=("CPU", "All"))

After :func:`initialize`, ``jax.devices()`` lists the devices of every process, so
``target_device=(kind, "All")`` is a global mesh with the axis "batch": the rows of every
batch are sharded across all processes' devices, params and optimiser state replicated, and
gradients summed across processes by XLA's collectives (gloo on CPU). Each process passes
the **same data** (it keeps only the rows of its own devices: :func:`put`) and gets the full
results back (:func:`to_host` gathers them). One process with the same devices gives the
same numbers up to float rounding.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from .errors import SpecificationError


def initialize(coordinator_address: str, num_processes: int, process_id: int, *,
               local_device_ids: Sequence[int] | None = None,
               cpu_collectives: str = "gloo", **options: Any) -> None:
    """Join a run of ``num_processes`` processes (``jax.distributed.initialize``); call it
    in every process before anything touches a JAX device. ``coordinator_address``
    ("host:port") is the address of process 0, which serves the rendezvous;
    ``cpu_collectives``: the CPU collectives implementation ("gloo"; "mpi" needs an MPI
    installation). ``options`` go to ``jax.distributed.initialize``
    (``initialization_timeout``, ...)."""
    for name, value, low in (("num_processes", num_processes, 1), ("process_id", process_id, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SpecificationError(f"distributed.initialize: {name} must be an int >= {low}; found {value!r}.")
    if process_id >= num_processes:
        raise SpecificationError(f"distributed.initialize: process_id {process_id} is not below "
                                 f"num_processes={num_processes}.")
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids, **options)


def put(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """``tree`` (host arrays, the same in every process) as global arrays with ``sharding``:
    each process fills only its own devices' shards, without comparing the data across
    processes (``jax.device_put`` would)."""
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(x: Any) -> jax.Array:
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(x), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)


def to_host(x: jax.Array) -> np.ndarray:
    """A (possibly sharded across processes) result as one NumPy array in this process."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


__all__ = ["initialize", "put", "to_host"]
