"""``check_layer``: the shared test harness for layers and nets (testing tiers b and c).

Usage, in any test module (``tests/`` is on ``sys.path``, see ``tests/conftest.py``)::

    from harness import check_layer

    def test_linear():
        x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)

        def reference(inputs, arrays):           # one example, plain NumPy (float64)
            y = arrays["Weights"] @ inputs["Input"].reshape(-1) + arrays["Biases"]
            return {"Output": y}

        check_layer(ng.LinearLayer(3), {"Input": x}, reference)

What ``check_layer(layer, inputs, reference, varying=..., atol=...)`` asserts:

1. **Initialisation.** The layer's input ports are declared with the shapes of ``inputs``
   (one example, no batch axis); any element type the layer already declares on a port
   (``"Integer"``, ``Restricted("Integer", n)``) is kept. If arrays are missing, the layer is
   initialised with ``ng.NetInitialize(layer, seed=0)``; arrays given by the test are kept.
2. **Shapes, three ways.** For each declaration of the inputs

   * *fixed*: the exact sizes of the data;
   * *Automatic*: the input ports left undeclared; where the layer's own arrays or options
     then infer a shape that does not fit the data, the port is declared with its rank
     only (``(Automatic, Automatic)``), and as a last resort with the fixed sizes;
   * *varying* (``varying=True``, or a collection of port names): the first dimension of
     those ports declared ``"Varying"``;

   the inferred ``output_ports`` must agree with ``jax.eval_shape`` of ``ng.lower(net)`` and
   with the shapes of the eager result ``net(inputs)``. A varying output dimension must be
   as long as the input dimension that carries the same symbol. For *Automatic*, whatever
   the undeclared net already infers must be consistent with the fixed result, and its
   eager result must equal the fixed net's.
3. **Numbers.** ``net(inputs)`` equals ``reference(inputs, arrays)``; a batch of 3 examples
   (``inputs`` and two perturbed copies, stacked) gives per example what ``net`` gives on
   that example alone, and what ``reference`` gives. With ``varying``, the varying net is
   also checked on inputs one element longer along the varying axis, and ``ng.lower(net)``
   on inputs padded with junk along the varying axis, given the true ``lengths``, must
   give the unpadded results (cut to the true lengths; outputs whose varying axis is a
   length the layer makes itself are not compared).
4. **Transforms.** ``ng.lower(net)`` run op by op (``jax.disable_jit``) equals
   ``jax.jit`` of it and ``net(inputs)``; ``jax.vmap`` of it over the batch equals
   ``net(batch)``.

The reference: ``reference(inputs, arrays) -> {port: array}`` (or one array when the net has
one output port) computes ONE example with an independent NumPy implementation.

* ``inputs``: ``{port: np.ndarray}``; real data as float64, integer data unchanged;
* ``arrays``: an :class:`Arrays` view of the initialised net: ``arrays["Weights"]``,
  ``arrays["enc", "proj", "Weights"]`` (any ``ng.NetExtract`` part spec), as float64;
  ``arrays.get("Biases")`` is None when the array was removed (``Biases=None``);
  ``arrays.net`` is the initialised net itself (for options: ``arrays.option("size")``).

Pass ``reference=None`` to check shapes and transforms only. ``check_layer`` returns a
:class:`LayerCheck` (the initialised net and its outputs) for further assertions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping

import jax
import jax.numpy as jnp
import numpy as np

import netgraph as ng
from netgraph.shapes import Auto, Known, Real, Varying

Reference = Callable[[dict[str, np.ndarray], "Arrays"], Any]

BATCH = 3


class Arrays:
    """Read access to the arrays (and options) of an initialised net, for references."""

    def __init__(self, net: Any) -> None:
        self.net = net

    def __getitem__(self, spec: Any) -> np.ndarray:
        value = ng.NetExtract(self.net, spec)
        if not isinstance(value, np.ndarray):
            raise KeyError(f"{spec!r} is not an array of {self.net.describe()}: {value!r}")
        return value.astype(np.float64)

    def get(self, spec: Any, default: Any = None) -> Any:
        """The array at ``spec``, or ``default`` when there is no such (or a removed) array."""
        parts = tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)
        owner = ng.NetExtract(self.net, parts[:-1]) if len(parts) > 1 else self.net
        if parts[-1] not in owner.array_specs():
            return default
        return self[spec]

    def __contains__(self, spec: Any) -> bool:
        return self.get(spec) is not None

    def option(self, spec: Any) -> Any:
        """An option value, e.g. ``arrays.option("size")`` or ``arrays.option(("a", "size"))``."""
        parts = tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)
        owner = ng.NetExtract(self.net, parts[:-1]) if len(parts) > 1 else self.net
        return getattr(owner.options, parts[-1])


@dataclass
class LayerCheck:
    """What :func:`check_layer` built and computed, for further assertions in a test."""

    net: Any  # initialised, inputs declared with the fixed sizes of the data
    outputs: dict[str, np.ndarray]  # net(inputs), per output port
    variants: dict[str, Any] = field(default_factory=dict)  # "fixed" | "automatic" | "varying"


# ------------------------------------------------------------------------ helpers
def _element_spec(layer: Any, port: str) -> Any:
    spec = layer.port_specs.get(port)
    return None if spec is None else spec.element


def _declare(layer: Any, port: str, dims: tuple) -> Any:
    element = _element_spec(layer, port)
    return tuple(dims) + ((element,) if element is not None else ())


def _as_output_dict(net: Any, result: Any) -> dict[str, np.ndarray]:
    if isinstance(result, Mapping):
        assert set(result) == set(net.output_names), (
            f"outputs {sorted(result)} != output ports {list(net.output_names)}"
        )
        return {k: np.asarray(v) for k, v in result.items()}
    assert len(net.output_names) == 1, f"one array returned for ports {net.output_names}"
    return {net.output_names[0]: np.asarray(result)}


def _data_dtype(net: Any, port: str) -> Any:
    element = net.inference.port((), port).element
    return jnp.float32 if isinstance(element, Real) else jnp.int32


def _jax_inputs(net: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
    return {n: jnp.asarray(v, _data_dtype(net, n)) for n, v in inputs.items()}


def _for_reference(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        n: (v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v.copy())
        for n, v in inputs.items()
    }


def _perturbed(inputs: Mapping[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Example ``k`` of a batch: example 0 is ``inputs``; real data gets noise, integer data
    (indices) is rolled so that it stays in range."""
    if k == 0:
        return dict(inputs)
    rng = np.random.default_rng(1000 + k)
    out = {}
    for name, value in inputs.items():
        if np.issubdtype(value.dtype, np.floating):
            out[name] = (value + 0.5 * rng.standard_normal(value.shape)).astype(value.dtype)
        else:
            out[name] = np.roll(value.reshape(-1), k).reshape(value.shape)
    return out


def _longer(inputs: Mapping[str, np.ndarray], ports: Collection[str]) -> dict[str, np.ndarray]:
    """``inputs`` with the varying ports one element longer (their first row appended)."""
    return {
        n: (np.concatenate([v, v[:1]], axis=0) if n in ports else v) for n, v in inputs.items()
    }


PAD = 2


def _padded(inputs: Mapping[str, np.ndarray], ports: Collection[str]) -> dict[str, np.ndarray]:
    """``inputs`` with the varying ports padded by ``PAD`` rows of junk (7.0 for real data,
    index 0 for integer data), which a correct lowering must ignore given the true lengths."""
    out = {}
    for name, value in inputs.items():
        if name not in ports:
            out[name] = value
            continue
        junk = np.full((PAD, *value.shape[1:]), 7.0 if np.issubdtype(value.dtype, np.floating) else 0,
                       value.dtype)
        out[name] = np.concatenate([value, junk], axis=0)
    return out


def _unpad(net: Any, outputs: Mapping[str, Any], lengths: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Outputs cut back to the true lengths along axes that carry an input's varying symbol;
    ports with a varying axis of another (layer-made) symbol are left out."""
    cut = {}
    for name, value in outputs.items():
        value = np.asarray(value)
        index = []
        for dim in net.inference.port((), name).dims:
            if isinstance(dim, Varying) and dim.symbol not in lengths:
                break
            index.append(slice(0, lengths[dim.symbol]) if isinstance(dim, Varying) else slice(None))
        else:
            cut[name] = value[tuple(index)]
    return cut


def _assert_close(actual: dict, expected: dict, what: str, atol: float, rtol: float) -> None:
    assert set(actual) == set(expected), f"{what}: ports {sorted(actual)} != {sorted(expected)}"
    for port in expected:
        a, e = np.asarray(actual[port]), np.asarray(expected[port])
        assert a.shape == e.shape, f"{what}, port {port!r}: shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(
            a, e, atol=atol, rtol=rtol, err_msg=f"{what}, port {port!r}"
        )


def _symbol_lengths(net: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, int]:
    lengths: dict[str, int] = {}
    for name in net.input_names:
        for axis, dim in enumerate(net.inference.port((), name).dims or ()):
            if isinstance(dim, Varying):
                lengths.setdefault(dim.symbol, inputs[name].shape[axis])
    return lengths


def _check_shapes(net: Any, inputs: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """Inferred output shapes == eval_shape of the lowered function == eager shapes.
    Returns the eager outputs."""
    lengths = _symbol_lengths(net, inputs)
    expected: dict[str, tuple[int | None, ...]] = {}
    user = net.output_ports
    for name in net.output_names:
        ptype = net.inference.port((), name)
        assert ptype.dims is not None and not any(isinstance(d, Auto) for d in ptype.dims), (
            f"{what}: output {name!r} not fully inferred: {user[name]!r}"
        )
        sizes = []
        for dim, shown in zip(ptype.dims, user[name]):
            if isinstance(dim, Known):
                assert shown == dim.size, f"{what}: output_ports {user[name]!r} vs {ptype}"
                sizes.append(dim.size)
            else:
                assert shown == "Varying", f"{what}: output_ports {user[name]!r} vs {ptype}"
                sizes.append(lengths.get(dim.symbol))  # None: a symbol the net creates
        expected[name] = tuple(sizes)

    def fits(shape: tuple[int, ...], sizes: tuple[int | None, ...]) -> bool:
        return len(shape) == len(sizes) and all(s is None or s == n for n, s in zip(shape, sizes))

    apply = ng.lower(net)
    specs = {n: jax.ShapeDtypeStruct(v.shape, _data_dtype(net, n)) for n, v in inputs.items()}
    abstract = jax.eval_shape(apply, ng.params_of(net), specs)
    assert set(abstract) == set(net.output_names), f"{what}: eval_shape ports {sorted(abstract)}"
    eager = _as_output_dict(net, net(dict(inputs)))
    for name, sizes in expected.items():
        assert fits(abstract[name].shape, sizes), (
            f"{what}: port {name!r} inferred {user[name]!r} (sizes {sizes}) but "
            f"jax.eval_shape gives {abstract[name].shape}"
        )
        assert eager[name].shape == abstract[name].shape, (
            f"{what}: port {name!r}: eager shape {eager[name].shape} != eval_shape "
            f"{abstract[name].shape}"
        )
        assert eager[name].dtype == abstract[name].dtype, (
            f"{what}: port {name!r}: eager dtype {eager[name].dtype} != eval_shape "
            f"{abstract[name].dtype}"
        )
    return eager


def _compatible(user_shape: Any, shape: tuple[int, ...]) -> bool:
    """Is an inferred user-form shape (``(3, Automatic)``, ``Automatic``...) satisfiable by
    an array of ``shape``?"""
    if user_shape is ng.Automatic:
        return True
    if user_shape and (user_shape[-1] == "Integer" or isinstance(user_shape[-1], ng.Restricted)):
        user_shape = user_shape[:-1]  # an integer port's spelling ends with its element type
    if len(user_shape) != len(shape):
        return False
    return all(not isinstance(d, int) or d == n for d, n in zip(user_shape, shape))


def _automatic_variant(net: Any, inputs: Mapping[str, np.ndarray]) -> Any:
    """``net`` with its input ports undeclared where the data still fits: each port is tried
    undeclared, then with its rank only, then with the data's sizes."""
    stages = (
        lambda n: None,
        lambda n: _declare(net, n, (ng.Automatic,) * inputs[n].ndim),
        lambda n: _declare(net, n, inputs[n].shape),
    )
    # a declared element type ("Integer") must survive: such ports start at the rank-only step
    stage = {n: 0 if _element_spec(net, n) is None else 1 for n in inputs}
    while True:
        plan = {n: stages[stage[n]](n) for n in inputs}
        try:
            candidate = net.evolve(port_specs=plan)
            ports = candidate.input_ports
        except ng.NetGraphError as err:
            bad, why = [n for n in inputs if stage[n] < len(stages) - 1], err
        else:
            bad = [n for n in inputs if not _compatible(ports[n], inputs[n].shape)]
            why = ports
            if not bad:
                return candidate
        assert bad and all(stage[n] < len(stages) - 1 for n in bad), (
            f"no declaration of the inputs {plan} fits the data: {why}"
        )
        for n in bad:
            stage[n] += 1


def _missing_arrays(net: Any) -> bool:
    return any(a is None for a in net.arrays.values()) or any(
        _missing_arrays(child) for child in net.children().values()
    )


# ---------------------------------------------------------------------------- API
def check_layer(
    layer: Any,
    inputs: Mapping[str, Any],
    reference: Reference | None = None,
    *,
    varying: bool | Collection[str] = False,
    atol: float = 1e-5,
    rtol: float = 1e-5,
) -> LayerCheck:
    """Check shapes, numbers and JAX transforms of ``layer`` on one example ``inputs``.

    Args:
        layer: a layer or net (its input ports may be undeclared).
        inputs: ``{port: array}`` for ONE example (no batch axis), one entry per input port.
        reference: ``reference(inputs, arrays)`` computing the outputs of one example in
            NumPy (see the module docstring), or None.
        varying: True to declare the first dimension of every input port ``"Varying"``, or
            the names of the ports to declare so.
        atol, rtol: tolerances of every numerical comparison.

    Returns:
        a :class:`LayerCheck` with the initialised net and its outputs on ``inputs``.
    """
    data = {}
    for name, value in inputs.items():
        arr = np.asarray(value)
        data[name] = arr.astype(np.float32) if arr.dtype == np.float64 else arr
    assert set(data) == set(layer.input_names), (
        f"check_layer: give data for exactly the input ports {list(layer.input_names)}; "
        f"got {sorted(data)}"
    )

    # 1. declare the fixed sizes, initialise
    fixed = layer.evolve(port_specs={n: _declare(layer, n, v.shape) for n, v in data.items()})
    if _missing_arrays(fixed):
        fixed = ng.NetInitialize(fixed, seed=0)
    net = fixed
    check = LayerCheck(net=net, outputs={}, variants={"fixed": net})

    # 2a. shapes with the fixed sizes of the data
    outputs = _check_shapes(net, data, "fixed sizes")
    check.outputs = outputs
    for name, value in outputs.items():
        if isinstance(net.inference.port((), name).element, Real):
            assert value.dtype == np.float32, f"port {name!r}: real output of dtype {value.dtype}"

    # 3. numbers: one example, batch
    arrays = Arrays(net)

    def ref(example: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _as_output_dict(net, reference(_for_reference(example), arrays))  # type: ignore[misc]

    if reference is not None:
        _assert_close(outputs, ref(data), "net(inputs) vs reference", atol, rtol)
    if not data:  # a net without inputs (NetArrayLayer): no batch, map or declarations
        return check
    examples = [_perturbed(data, k) for k in range(BATCH)]
    batch = {n: np.stack([e[n] for e in examples]) for n in data}
    batched = _as_output_dict(net, net(batch))
    for k, example in enumerate(examples):
        single = outputs if k == 0 else _as_output_dict(net, net(example))
        row = {n: v[k] for n, v in batched.items()}
        _assert_close(row, single, f"net(batch)[{k}] vs net(example {k})", atol, rtol)
        if reference is not None:
            _assert_close(row, ref(example), f"net(batch)[{k}] vs reference", atol, rtol)

    # 4. transforms
    apply = ng.lower(net)
    params = ng.params_of(net)
    with jax.disable_jit():
        plain = apply(params, _jax_inputs(net, data))
    jitted = jax.jit(apply)(params, _jax_inputs(net, data))
    _assert_close(plain, outputs, "lower(net) without jit vs net(inputs)", atol, rtol)
    _assert_close(jitted, plain, "jax.jit(lower(net)) vs without jit", atol, rtol)
    mapped = jax.vmap(apply, in_axes=(None, 0))(params, _jax_inputs(net, batch))
    _assert_close(mapped, batched, "jax.vmap(lower(net)) vs net(batch)", atol, rtol)

    # 2b. shapes and numbers with the inputs left Automatic
    auto = _automatic_variant(net, data)
    check.variants["automatic"] = auto
    for name, shown in auto.output_ports.items():
        assert _compatible(shown, outputs[name].shape), (
            f"Automatic inputs: output {name!r} inferred {shown!r}, but with the data's sizes "
            f"it is {outputs[name].shape}"
        )
    _assert_close(_as_output_dict(auto, auto(dict(data))), outputs,
                  "Automatic inputs vs fixed sizes", atol, rtol)

    # 2c. shapes and numbers with a varying first dimension (also longer and padded)
    if varying:
        ports = set(data) if varying is True else set(varying)
        assert ports <= set(data), f"varying names unknown ports: {sorted(ports - set(data))}"
        for n in ports:
            assert data[n].ndim >= 1, f"port {n!r}: a scalar cannot vary"
        var = net.evolve(port_specs={
            n: _declare(net, n, ("Varying", *data[n].shape[1:])) for n in ports
        })
        check.variants["varying"] = var
        for n in ports:
            shown = var.input_ports[n]
            assert shown != ng.Automatic and shown[0] == "Varying", (
                f'port {n!r} declared "Varying" is inferred as {shown!r}'
            )
        var_out = _check_shapes(var, data, "varying first dimension")
        _assert_close(var_out, outputs, "varying declaration vs fixed sizes", atol, rtol)
        longer = _longer(data, ports)
        long_out = _check_shapes(var, longer, "varying first dimension, longer inputs")
        if reference is not None:
            _assert_close(long_out, ref(longer), "longer varying inputs vs reference", atol, rtol)
        var_batch = _as_output_dict(var, var(batch))
        _assert_close(var_batch, batched, "varying declaration, batch", atol, rtol)
        # padded inputs with their true lengths give the unpadded results
        lengths = _symbol_lengths(var, data)
        padded = _jax_inputs(var, _padded(data, ports))
        apply_var = ng.lower(var)
        through_pad = apply_var(
            ng.params_of(var), padded,
            lengths={k: jnp.asarray(v, jnp.int32) for k, v in lengths.items()},
        )
        expected = _unpad(var, outputs, lengths)
        _assert_close(_unpad(var, through_pad, lengths), expected,
                      f"inputs padded by {PAD} along the varying axis, with lengths", atol, rtol)
    return check


__all__ = ["Arrays", "LayerCheck", "check_layer"]


def run_on_cpu_devices(child: str, devices: int = 4) -> dict:
    """Run the Python code ``child`` in a fresh interpreter that sees ``devices`` CPU devices
    (``XLA_FLAGS`` must be set before JAX starts); it prints ``RESULT <json>``, returned here."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", child], cwd=tempfile.gettempdir(),
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"the subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line in:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("RESULT "):])
