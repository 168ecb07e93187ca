"""pybackprop, compiled: the whole training step as one native call.

    step = pb.compile(model, loss_fn, optimizer);  loss = step(x, y)     # returns a float
    f = pb.compile(model);  out = f(x)                                    # inference, numpy out

Same model, weights, loss and optimiser objects as the eager column (pybackprop_eager.py).
Until pb.compile exists the column reads "n/a".
"""
import numpy as np

from . import pybackprop_eager as _eager

NAME = "pb_compiled"
LABEL = "pybackprop compiled"

setup_threads = _eager.setup_threads
versions = _eager.versions


def available():
    ok, why = _eager.available()
    if not ok:
        return ok, why
    import pybackprop as pb
    if not callable(getattr(pb, "compile", None)):
        return False, "pb.compile not implemented yet"
    return True, ""


class Runner:
    def __init__(self, spec, layers, data):
        import pybackprop as pb
        self.spec = spec
        self.model = _eager.build_model(spec, layers)
        self.data = data
        if spec["kind"] == "train":
            loss_fn, opt = _eager.make_training(spec, self.model)
            self.fn = pb.compile(self.model, loss_fn, opt)
        else:
            self.fn = pb.compile(self.model)

    def run(self, n, start=0):
        data, nb, fn = self.data, len(self.data), self.fn
        if self.spec["kind"] == "forward":
            for i in range(start, start + n):
                fn(data[i % nb][0])
            return
        for i in range(start, start + n):
            x, y = data[i % nb]
            fn(x, y)

    def sync(self):
        pass

    def check(self, k):
        data, nb = self.data, len(self.data)
        if self.spec["kind"] == "forward":
            return [np.asarray(self.fn(data[i % nb][0])).ravel().tolist() for i in range(k)]
        return [float(self.fn(*data[i % nb])) for i in range(k)]


def build(spec, layers, data):
    return Runner(spec, layers, data)
