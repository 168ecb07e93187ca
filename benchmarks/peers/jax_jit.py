"""Peer: JAX, one jitted function for the whole training step.

    params, opt_state, loss = step(params, opt_state, x, y)     # jax.jit, donate_argnums=(0, 1)

The step holds forward, loss, jax.value_and_grad and the optimiser update (written out with
PyTorch's maths, no optax), so XLA sees and fuses all of it, and the donated parameter and
optimiser buffers are updated in place. Dispatch is asynchronous: the timer stops only after
block_until_ready on the parameters; inference (F) blocks on every call, as a latency must.

Threads cannot be changed inside a JAX process. The harness starts one process per setting:
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" for 1 thread, and
(because jaxlib 0.10's thunk runtime sizes its intra-op pool from the CPU affinity mask and
ignores those flags) the process is also started under `taskset -c <one cpu>`.
Benchmark-only: the package never depends on JAX.
"""
import os
import warnings

NAME = "jax"
LABEL = "jax jit"


def setup_threads(n):
    # Nothing to do in-process: XLA_FLAGS and the affinity mask were set by the harness
    # before this interpreter started.
    pass


def available():
    try:
        import jax  # noqa: F401
    except Exception as exc:
        return False, f"jax not importable: {exc}"
    return True, ""


def versions():
    import jax
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": getattr(jaxlib, "__version__", "?"),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def _make_fns(spec):
    import jax
    import jax.numpy as jnp

    hidden, out_act, loss_kind = spec["hidden"], spec["out"], spec["loss"]

    def act(z, kind):
        if kind == "relu":
            return jax.nn.relu(z)
        if kind == "sigmoid":
            return jax.nn.sigmoid(z)
        return z

    def forward(params, x):
        h = x
        for l, (W, b) in enumerate(params):
            h = act(h @ W + b, hidden if l < len(params) - 1 else out_act)
        return h

    def loss_fn(params, x, y):
        out = forward(params, x)
        if loss_kind == "ce":
            logp = jax.nn.log_softmax(out, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return jnp.mean((out - y) ** 2)

    if spec["kind"] == "forward":
        return jax.jit(forward), None, None

    name, hp = spec["opt"]
    lr = hp["lr"]
    mom = hp.get("momentum", 0.0)
    tmap = jax.tree_util.tree_map

    if name == "sgd" and not mom:
        def init_state(params):
            return ()

        def update(params, grads, state):
            return tmap(lambda p, g: p - lr * g, params, grads), state
    elif name == "sgd":
        def init_state(params):
            return tmap(jnp.zeros_like, params)     # μ·0 + g = g: PyTorch's first-step buffer

        def update(params, grads, state):
            bufs = tmap(lambda b, g: mom * b + g, state, grads)
            return tmap(lambda p, b: p - lr * b, params, bufs), bufs
    else:
        b1, b2, eps = 0.9, 0.999, 1e-8

        def init_state(params):
            return (jnp.zeros((), jnp.float32), tmap(jnp.zeros_like, params), tmap(jnp.zeros_like, params))

        def update(params, grads, state):
            t, m, v = state
            t = t + 1
            m = tmap(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
            v = tmap(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
            step_size = lr / (1 - b1 ** t)
            bc2_sqrt = jnp.sqrt(1 - b2 ** t)
            new = tmap(lambda p, m_, v_: p - step_size * m_ / (jnp.sqrt(v_) / bc2_sqrt + eps), params, m, v)
            return new, (t, m, v)

    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        params, state = update(params, grads, state)
        return params, state, loss

    return jax.jit(step, donate_argnums=(0, 1)), init_state, forward


class Runner:
    def __init__(self, spec, layers, data):
        import jax
        import jax.numpy as jnp
        warnings.filterwarnings("ignore", message=".*donated buffers.*")
        self.jax, self.spec = jax, spec
        self.params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in layers]
        self.data = [(jax.device_put(x), None if y is None else
                      jax.device_put(y.astype("int32") if y.dtype.kind == "i" else y)) for x, y in data]
        self.fn, init_state, _ = _make_fns(spec)
        self.state = init_state(self.params) if init_state else None

    def run(self, n, start=0):
        data, nb, fn = self.data, len(self.data), self.fn
        if self.spec["kind"] == "forward":
            params = self.params
            for i in range(start, start + n):
                fn(params, data[i % nb][0]).block_until_ready()
            return
        params, state = self.params, self.state
        for i in range(start, start + n):
            x, y = data[i % nb]
            params, state, loss = fn(params, state, x, y)
        self.params, self.state = params, state

    def sync(self):
        self.jax.block_until_ready(self.params)

    def check(self, k):
        data, nb = self.data, len(self.data)
        if self.spec["kind"] == "forward":
            import numpy as np
            return [np.asarray(self.fn(self.params, data[i % nb][0])).ravel().tolist() for i in range(k)]
        out = []
        for i in range(k):
            x, y = data[i % nb]
            self.params, self.state, loss = self.fn(self.params, self.state, x, y)
            out.append(float(loss))
        return out


def build(spec, layers, data):
    return Runner(spec, layers, data)
