"""Two local processes (jax.distributed, gloo CPU collectives) evaluate and train over one
global mesh and get the results of one process with as many devices."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import netgraph as ng
from netgraph.errors import SpecificationError

CHILD = r"""
import json, sys
import numpy as np
import netgraph as ng
process, count, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if count > 1:
    ng.distributed.initialize(f"127.0.0.1:{port}", count, process, initialization_timeout=60)
import jax
rng = np.random.default_rng(0)
x = rng.normal(size=(24, 4)).astype(np.float32)
labels = (x[:, 0] > x[:, 1]).astype(np.int32)
net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(8), "Tanh", ng.LinearLayer(2), ng.SoftmaxLayer()],
                                   Input=4), seed=0)
where = ("CPU", "All")
out = net(x, target_device=where)
listed = net([x[i] for i in range(6)], target_device=where, batch_size=4)
result = ng.NetTrain(net, {"Input": x, "Target": labels}, max_epochs=2, batch_size=8, target_device=where,
                     validation_set={"Input": x[:8], "Target": labels[:8]})
print("RESULT " + json.dumps({
    "out": out.tolist(), "listed": np.stack(listed).tolist(), "loss": result.history["loss"],
    "validation": result.history["validation_loss"],
    "weights": result.net.nodes["0"].arrays["Weights"].tolist(),
    "devices": jax.device_count(), "local": jax.local_device_count()}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(process: int, count: int, port: int, devices: int) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, "-c", CHILD, str(process), str(count), str(port)],
                            cwd=tempfile.gettempdir(), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"a process timed out:\n{out}\n{err}")
    assert proc.returncode == 0, f"the process failed:\n{out}\n{err}"
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line in:\n{out}\n{err}"
    return json.loads(lines[-1][len("RESULT "):])


def test_two_processes_give_the_results_of_one():
    port = _free_port()
    procs = [_start(0, 2, port, 2), _start(1, 2, port, 2), _start(0, 1, 0, 4)]  # all at once
    first, second, alone = (_result(p) for p in procs)
    assert (first["devices"], first["local"]) == (4, 2)  # a global mesh over both processes
    assert (alone["devices"], alone["local"]) == (4, 4)
    for key in ("out", "listed", "loss", "validation", "weights"):
        np.testing.assert_allclose(first[key], second[key], rtol=1e-6, atol=1e-7)  # every process: all results
        np.testing.assert_allclose(first[key], alone[key], rtol=1e-5, atol=1e-6)


def test_initialize_checks_its_arguments():
    with pytest.raises(SpecificationError, match="num_processes"):
        ng.distributed.initialize("127.0.0.1:1", 0, 0)
    with pytest.raises(SpecificationError, match="process_id 2 is not below"):
        ng.distributed.initialize("127.0.0.1:1", 2, 2)
