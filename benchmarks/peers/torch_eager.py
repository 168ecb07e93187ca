"""Peer: PyTorch eager, the loop as a user writes it.

    out = model(x); loss = loss_fn(out, y); loss.backward(); opt.step(); opt.zero_grad()

nn.Sequential of nn.Linear + nn.ReLU/nn.Sigmoid, nn.CrossEntropyLoss/nn.MSELoss, torch.optim with
its defaults. nn.Linear stores its weight as (out, in), so the shared (in, out) weights are
transposed on load. Inference (F) runs under torch.inference_mode(). Benchmark-only: the
package never depends on torch.
"""
NAME = "torch"
LABEL = "torch eager"


def setup_threads(n):
    import torch
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:      # already set (only possible before any parallel work)
        pass


def available():
    try:
        import torch  # noqa: F401
    except Exception as exc:
        return False, f"torch not importable: {exc}"
    return True, ""


def versions():
    import torch
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_blas": _blas(torch)}


def _blas(torch):
    import re
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return m.group(1) if m else "?"


class Runner:
    def __init__(self, spec, layers, data):
        import torch
        from torch import nn
        self.torch = torch
        self.spec = spec
        mods = []
        last = len(layers) - 1
        for l, (W, b) in enumerate(layers):
            lin = nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T.copy()))     # (in, out) -> (out, in)
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            act = spec["hidden"] if l < last else spec["out"]
            if act == "relu":
                mods.append(nn.ReLU())
            elif act == "sigmoid":
                mods.append(nn.Sigmoid())
        self.model = nn.Sequential(*mods)
        self.data = [(torch.from_numpy(x), None if y is None else torch.from_numpy(y)) for x, y in data]
        if spec["kind"] == "train":
            self.loss_fn = nn.CrossEntropyLoss() if spec["loss"] == "ce" else nn.MSELoss()
            name, hp = spec["opt"]
            params = self.model.parameters()
            self.opt = torch.optim.SGD(params, **hp) if name == "sgd" else torch.optim.Adam(params, **hp)

    def run(self, n, start=0):
        data, nb, model = self.data, len(self.data), self.model
        if self.spec["kind"] == "forward":
            with self.torch.inference_mode():
                for i in range(start, start + n):
                    model(data[i % nb][0])
            return
        loss_fn, opt = self.loss_fn, self.opt
        for i in range(start, start + n):
            x, y = data[i % nb]
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()

    def sync(self):
        pass

    def check(self, k):
        data, nb = self.data, len(self.data)
        if self.spec["kind"] == "forward":
            with self.torch.inference_mode():
                return [self.model(data[i % nb][0]).numpy().ravel().tolist() for i in range(k)]
        out = []
        for i in range(k):
            x, y = data[i % nb]
            loss = self.loss_fn(self.model(x), y)
            loss.backward()
            self.opt.step()
            self.opt.zero_grad()
            out.append(loss.item())
        return out


def build(spec, layers, data):
    return Runner(spec, layers, data)
