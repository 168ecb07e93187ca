"""Peer: backpropagation written by hand in numpy, the way the lectures do it.

Forward  h = act(h W + b) layer by layer, logits z;
loss     softmax cross-entropy, G = (p − onehot(y)) / N   (MSE: G = 2 (a − y) / N · a(1 − a));
backward dW = hᵀ G,  db = Σ_rows G,  dh = G Wᵀ  times the activation derivative from the saved
         output (ReLU: h > 0, sigmoid: h (1 − h)), then the optimiser updates W and b in place.
Optimiser maths as PyTorch's: SGD p −= lr·g; momentum buf = μ·buf + g (buf starts at g), p −= lr·buf;
Adam m, v moving averages, p −= lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + eps).

Idiomatic numpy, not a strawman: matmuls go to OpenBLAS, elementwise work is in place where it is
natural. The same code in float64 is the reference the harness checks every backend against.
"""
import numpy as np

NAME = "numpy"
LABEL = "numpy by hand"
_limiter = None


def setup_threads(n):
    """Limit OpenBLAS (numpy's BLAS) to n threads for the life of the process."""
    global _limiter
    from threadpoolctl import threadpool_limits
    _limiter = threadpool_limits(limits=n, user_api="blas")


def available():
    return True, ""


def versions():
    out = {"numpy": np.__version__}
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            if info.get("user_api") == "blas":
                out["blas"] = f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')})"
                out["blas_threads"] = info.get("num_threads")
                break
    except Exception:  # threadpoolctl missing: versions are informative only
        pass
    return out


def _sigmoid(z):
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)
    return z


class SGD:
    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.bufs = [None] * len(params)

    def update(self, i, g):
        p = self.params[i]
        if self.momentum:
            buf = self.bufs[i]
            if buf is None:
                buf = self.bufs[i] = g.copy()
            else:
                buf *= self.momentum
                buf += g
            g = buf * self.lr
        else:
            g *= self.lr
        p -= g


class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.eps = params, lr, eps
        self.b1, self.b2 = betas
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = [0] * len(params)

    def update(self, i, g):
        p, m, v = self.params[i], self.m[i], self.v[i]
        self.t[i] += 1
        t = self.t[i]
        m *= self.b1
        m += (1 - self.b1) * g
        v *= self.b2
        g *= g
        g *= (1 - self.b2)
        v += g
        step_size = self.lr / (1 - self.b1 ** t)
        denom = np.sqrt(v)
        denom /= np.sqrt(1 - self.b2 ** t)
        denom += self.eps
        upd = m / denom
        upd *= step_size
        p -= upd


class Net:
    def __init__(self, spec, layers, dtype=np.float32):
        self.spec = spec
        self.W = [np.array(W, dtype=dtype) for W, _ in layers]
        self.b = [np.array(b, dtype=dtype) for _, b in layers]
        self.dtype = dtype
        self.hidden, self.out = spec["hidden"], spec["out"]
        self.opt = None
        if spec["opt"] is not None:
            name, hp = spec["opt"]
            params = [p for pair in zip(self.W, self.b) for p in pair]   # W0, b0, W1, b1, ...
            self.opt = SGD(params, **hp) if name == "sgd" else Adam(params, **hp)

    def _act(self, z, kind):
        if kind == "relu":
            return np.maximum(z, 0, out=z)
        if kind == "sigmoid":
            return _sigmoid(z)
        return z

    def forward(self, x):
        """Returns the list of layer inputs (x, h1, ...) and the output (logits or activation)."""
        hs = [x]
        h = x
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            z = h @ W
            z += b
            h = self._act(z, self.hidden if l < last else self.out)
            if l < last:
                hs.append(h)
        return hs, h

    def train_step(self, x, y):
        hs, z = self.forward(x)
        n = x.shape[0]
        if self.spec["loss"] == "ce":
            rows = np.arange(n)
            z -= z.max(axis=1, keepdims=True)
            zy = z[rows, y]
            e = np.exp(z, out=z)
            s = e.sum(axis=1, keepdims=True)
            loss = float(np.mean(np.log(s[:, 0]) - zy))
            G = e
            G /= s                       # p
            G[rows, y] -= 1.0            # p − onehot(y)
            G /= n                       # (p − y) / N
        else:                            # MSE on a sigmoid output a = z
            a = z
            diff = a - y
            loss = float(np.mean(diff * diff))
            G = diff * (2.0 / diff.size)
            G *= a * (1.0 - a)
        for l in range(len(self.W) - 1, -1, -1):
            h = hs[l]
            dW = h.T @ G
            db = G.sum(axis=0)
            if l > 0:                    # dh needs W before its update
                dh = G @ self.W[l].T
                if self.hidden == "relu":
                    dh *= h > 0
                else:
                    dh *= h * (1.0 - h)
            self.opt.update(2 * l, dW)
            self.opt.update(2 * l + 1, db)
            if l > 0:
                G = dh
        return loss


class Runner:
    def __init__(self, spec, layers, data, dtype=np.float32):
        self.spec = spec
        self.net = Net(spec, layers, dtype)
        self.data = [(x.astype(dtype), (y.astype(dtype) if (y is not None and y.dtype.kind == "f") else y))
                     for x, y in data]

    def run(self, n, start=0):
        data, nb, net = self.data, len(self.data), self.net
        if self.spec["kind"] == "forward":
            for i in range(start, start + n):
                net.forward(data[i % nb][0])
        else:
            for i in range(start, start + n):
                x, y = data[i % nb]
                net.train_step(x, y)

    def sync(self):
        pass

    def check(self, k):
        """Losses of the first k steps (forward: outputs of the first k inputs)."""
        data, nb = self.data, len(self.data)
        if self.spec["kind"] == "forward":
            return [self.net.forward(data[i % nb][0])[1].ravel().tolist() for i in range(k)]
        return [self.net.train_step(*data[i % nb]) for i in range(k)]


def build(spec, layers, data):
    return Runner(spec, layers, data)
