"""One module per backend measured by benchmarks/run.py.

Each module exposes NAME, LABEL, setup_threads(n), available() -> (ok, reason), versions() -> dict
and build(spec, layers, data) -> a runner with run(n, start), sync() and check(k).
common.py holds the workloads, the shared initial weights and the data.
"""
# run.py order: pybackprop's two columns first, then the peers.
MODULES = {
    "pb_eager": "pybackprop_eager",
    "pb_compiled": "pybackprop_compiled",
    "numpy": "numpy_by_hand",
    "torch": "torch_eager",
    "jax": "jax_jit",
}
PYBACKPROP = ("pb_eager", "pb_compiled")
PEERS = ("numpy", "torch", "jax")
