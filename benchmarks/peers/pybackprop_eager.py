"""pybackprop, eager: the ordinary API exactly as a user writes it.

    model = pb.nn.Sequential(pb.nn.Linear(784, 128), pb.nn.ReLU(), pb.nn.Linear(128, 10))
    loss = loss_fn(model(x), y); loss.backward(); opt.step(); opt.zero_grad()

Batches are the numpy arrays a pb.data.DataLoader yields (x float32, y int64 class indices or
float32 targets). Inference (F) runs under pb.no_grad().
"""
import numpy as np

NAME = "pb_eager"
LABEL = "pybackprop eager"


def setup_threads(n):
    import pybackprop as pb
    pb.set_num_threads(n)


def _missing():
    try:
        import pybackprop as pb
    except Exception as exc:
        return f"pybackprop not importable: {exc}"
    for name in ("nn.Sequential", "nn.Linear", "nn.CrossEntropyLoss", "optim.SGD", "optim.Adam", "no_grad"):
        obj = pb
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return f"pb.{name} not implemented yet"
    return ""


def available():
    why = _missing()
    return (not why), why


def versions():
    import pybackprop as pb
    info = pb.backend_info()
    return {"pybackprop": pb.__version__, "pb_isa": info.get("isa"), "pb_threads": info.get("threads"),
            "pb_compiler": info.get("compiler")}


def build_model(spec, layers):
    """pb.nn.Sequential with the shared initial weights loaded through load_state_dict."""
    import pybackprop as pb
    nn = pb.nn
    mods = []
    last = len(layers) - 1
    for l, (W, _) in enumerate(layers):
        mods.append(nn.Linear(W.shape[0], W.shape[1]))
        act = spec["hidden"] if l < last else spec["out"]
        if act == "relu":
            mods.append(nn.ReLU())
        elif act == "sigmoid":
            mods.append(nn.Sigmoid())
    model = nn.Sequential(*mods)
    keys = list(model.state_dict().keys())
    arrays = [a for pair in layers for a in pair]          # W0, b0, W1, b1, ... (W is (in, out) already)
    if len(keys) != len(arrays):
        raise RuntimeError(f"unexpected state_dict keys {keys}")
    model.load_state_dict({k: pb.tensor(a.copy()) for k, a in zip(keys, arrays)})
    for p, a in zip(model.parameters(), arrays):           # prove the load took
        if p.shape != a.shape or not np.array_equal(p.numpy(), a):
            raise RuntimeError("loading the initial weights into pybackprop failed")
    return model


def make_training(spec, model):
    import pybackprop as pb
    loss_fn = pb.nn.CrossEntropyLoss() if spec["loss"] == "ce" else pb.nn.MSELoss()
    name, hp = spec["opt"]
    opt = (pb.optim.SGD if name == "sgd" else pb.optim.Adam)(model.parameters(), **hp)
    return loss_fn, opt


class Runner:
    def __init__(self, spec, layers, data):
        import pybackprop as pb
        self.pb, self.spec = pb, spec
        self.model = build_model(spec, layers)
        self.data = data
        if spec["kind"] == "train":
            self.loss_fn, self.opt = make_training(spec, self.model)

    def run(self, n, start=0):
        data, nb, model = self.data, len(self.data), self.model
        if self.spec["kind"] == "forward":
            with self.pb.no_grad():
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
            with self.pb.no_grad():
                return [np.asarray(self.model(data[i % nb][0]).numpy()).ravel().tolist() for i in range(k)]
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
