"""The `pybackprop` command: train, evaluate and predict with dense ReLU networks.

    pybackprop train [--dataset fashion-mnist|idx:DIR] [--hidden 256,128] [--epochs 5] ... [--output DIR]
    pybackprop train --resume DIR [--epochs N]
    pybackprop evaluate --model DIR
    pybackprop predict --model DIR INPUT.npy

A run directory holds:
    model.pb         the trained model: {"config": ..., "state_dict": ...}, written with pb.save
    checkpoint.pb    model + optimiser state + where training stopped (for --resume)
    config.json      every setting of the run
    metrics.csv/json one row per epoch (train/val loss and accuracy, time, samples/s), then test results
    curves.png       loss and accuracy curves (needs matplotlib: pip install pybackprop[train])

Reproducibility: with the same --seed two runs give bit-identical weights. The initial weights come
from pb.manual_seed(seed), the example order of epoch e from DataLoader(seed) (a pure function of
(seed, e)), and the kernels are deterministic for any thread count. A checkpoint stores everything
else that changes while training (weights, optimiser moments, the global generator used by dropout,
the running sums of the epoch), so an interrupted run resumed with --resume ends with exactly the
weights of the uninterrupted run.
"""
import argparse
import csv
import io
import json
import os
import signal
import sys
import time

import numpy as np

__all__ = ["main", "build_mlp"]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05, "rmsprop": 1e-3}
TRAIN_DEFAULTS = dict(dataset="fashion-mnist", data_root=None, hidden=[256, 128], activation="relu",
                      epochs=10, batch_size=128, optimizer="adam", lr=None, momentum=0.0, weight_decay=0.0,
                      dropout=0.0, seed=0, val_split=0.1, limit=None, dtype="float32")
# Settings that may change when resuming (they do not change the trajectory of the weights).
RESUMABLE_OVERRIDES = ("epochs", "threads", "progress")

MODEL_FILE, CHECKPOINT_FILE, CONFIG_FILE = "model.pb", "checkpoint.pb", "config.json"
EVAL_BATCH = 2000


class CLIError(Exception):
    """A user error: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (not usage + traceback), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------------------------------------
# argument parsing

def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _thread_count(text):
    v = _positive_int(text)
    if v > 1024:
        raise argparse.ArgumentTypeError(f"expected a thread count from 1 to 1024, got {v}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def _float_in(lo, hi, lo_open=False, hi_open=True):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok or v != v:
            raise argparse.ArgumentTypeError(
                f"expected a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, got {text}")
        return v
    return parse


def _hidden_sizes(text):
    """'256,128' -> [256, 128]; '' or 'none' -> [] (a linear model)."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        sizes = [int(t) for t in text.replace(" ", ",").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes like 256,128, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    if any(s > 1 << 20 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes above {1 << 20} units are not supported, got {text!r}")
    return sizes


def _make_parser():
    p = _Parser(prog="pybackprop",
                description="Train, evaluate and use dense neural networks with pybackprop.",
                epilog="Run 'pybackprop COMMAND --help' for the flags of a command.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train an MLP classifier (default: 784-256-128-10 ReLU on Fashion-MNIST)",
                       description="Train an MLP classifier. Defaults: 784-256-128-10 ReLU on Fashion-MNIST, "
                                   "Adam lr 1e-3, batch 128, 10 epochs, 10% of the training set held out for "
                                   "validation. Ctrl-C stops at the end of the current batch and writes a "
                                   "checkpoint; continue with --resume DIR.")
    D = TRAIN_DEFAULTS
    # Training-defining flags default to None so that --resume can tell which ones were given.
    t.add_argument("--dataset", default=None, metavar="NAME",
                   help=f"'fashion-mnist' or 'idx:DIR' (a directory of MNIST-format IDX files) "
                        f"[default: {D['dataset']}]")
    t.add_argument("--data-root", default=None, metavar="DIR",
                   help="where Fashion-MNIST is "
                        "[default: $PYBACKPROP_DATA, else /usr/share/datasets/fashion-mnist]")
    t.add_argument("--hidden", type=_hidden_sizes, default=None, metavar="SIZES",
                   help="hidden layer sizes, comma-separated; 'none' for a linear model [default: 256,128]")
    t.add_argument("--activation", choices=ACTIVATIONS, default=None, help="hidden activation [default: relu]")
    t.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                   help="passes over the training set [default: 10]")
    t.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                   help="mini-batch size [default: 128]")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="optimiser [default: adam]")
    t.add_argument("--lr", type=_float_in(0, float("inf"), lo_open=True), default=None,
                   help="learning rate [default: 1e-3 for adam/adamw/rmsprop, 0.05 for sgd]")
    t.add_argument("--momentum", type=_float_in(0, 1), default=None, metavar="M",
                   help="SGD momentum [default: 0]")
    t.add_argument("--weight-decay", type=_float_in(0, float("inf")), default=None, metavar="L2",
                   help="L2 weight decay (decoupled for adamw) [default: 0]")
    t.add_argument("--dropout", type=_float_in(0, 1), default=None, metavar="P",
                   help="dropout probability after each hidden layer [default: 0]")
    t.add_argument("--seed", type=_nonneg_int, default=None, metavar="N",
                   help="seed of the initial weights, the validation split, data order and dropout [default: 0]")
    t.add_argument("--val-split", type=_float_in(0, 1), default=None, metavar="FRACTION",
                   help="fraction of the training set held out for validation [default: 0.1]")
    t.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="use only the first N training examples (before the validation split)")
    t.add_argument("--dtype", choices=("float32", "float64"), default=None, help="precision [default: float32]")
    t.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                   help="kernel threads [default: all cores]")
    t.add_argument("--output", "-o", default=None, metavar="DIR",
                   help="run directory to write [default: runs/YYYYmmdd-HHMMSS]")
    t.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR from its checkpoint (settings come from DIR/config.json; "
                        "only --epochs and --threads may be changed)")
    t.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (the per-epoch lines are still printed)")
    t.add_argument("--stop-after-batches", type=_positive_int, default=None, help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="test loss, accuracy and confusion matrix of a trained model",
                       description="Evaluate a trained model on the test set of its data set: prints test loss, "
                                   "accuracy and the confusion matrix, and writes confusion.png next to the model.")
    e.add_argument("--model", required=True, metavar="DIR", help="run directory (or model.pb file)")
    e.add_argument("--dataset", default=None, metavar="NAME", help="data set to test on [default: the training one]")
    e.add_argument("--data-root", default=None, metavar="DIR", help="where Fashion-MNIST is")
    e.add_argument("--threads", type=_thread_count, default=None, metavar="N", help="kernel threads")
    e.add_argument("--no-plot", dest="plot", action="store_false", help="do not write confusion.png")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("predict", help="class and probabilities for each row of an .npy file",
                       description="Predict with a trained model. INPUT.npy holds N examples as (N, features) "
                                   "or (N, 28, 28); uint8 pixels are scaled to [0, 1] as in training.")
    r.add_argument("--model", required=True, metavar="DIR", help="run directory (or model.pb file)")
    r.add_argument("input", metavar="INPUT.npy", help="numpy file of examples")
    r.add_argument("--threads", type=_thread_count, default=None, metavar="N", help="kernel threads")
    r.set_defaults(func=cmd_predict)
    return p


def _version():
    try:
        from ._version import __version__
        return __version__
    except ImportError:
        return "unknown"


# ---------------------------------------------------------------------------------------------
# models

def _pb():
    import pybackprop as pb
    return pb


def _save(obj, path):
    from .serialization import save
    save(obj, path)


def _load(path):
    from .serialization import load
    return load(path)


def build_mlp(in_features, hidden, classes, activation="relu", dropout=0.0, dtype="float32"):
    """Sequential(Linear, act, [Dropout], ..., Linear): in_features -> hidden... -> classes logits."""
    pb = _pb()
    acts = {"relu": pb.nn.ReLU, "sigmoid": pb.nn.Sigmoid, "tanh": pb.nn.Tanh,
            "leaky_relu": pb.nn.LeakyReLU, "elu": pb.nn.ELU, "gelu": pb.nn.GELU}
    layers, d = [], in_features
    for h in hidden:
        layers += [pb.nn.Linear(d, h, dtype=dtype), acts[activation]()]
        if dropout > 0:
            layers.append(pb.nn.Dropout(dropout))
        d = h
    layers.append(pb.nn.Linear(d, classes, dtype=dtype))
    return pb.nn.Sequential(*layers)


def _make_optimizer(cfg, params):
    pb = _pb()
    name, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if name == "sgd":
        return pb.optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    if name == "adam":
        return pb.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return pb.optim.AdamW(params, lr=lr, weight_decay=wd)
    return pb.optim.RMSprop(params, lr=lr, weight_decay=wd) if wd else pb.optim.RMSprop(params, lr=lr)


def _model_from_file(path):
    pb = _pb()
    path = os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path
    if not os.path.exists(path):
        raise CLIError(f"no trained model at {path} (train one with 'pybackprop train --output DIR')")
    try:
        blob = _load(path)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if not isinstance(blob, dict) or blob.get("format") != "pybackprop.mlp" or "state_dict" not in blob:
        raise CLIError(f"{path} is not a model written by 'pybackprop train'")
    c = blob["config"]
    try:
        model = build_mlp(c["in_features"], c["hidden"], c["classes"], c["activation"], c["dropout"], c["dtype"])
        model.load_state_dict(blob["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CLIError(f"{path}: inconsistent model file ({type(exc).__name__}: {exc})") from None
    except MemoryError:
        raise CLIError(f"{path}: the model it describes does not fit in memory") from None
    for name, p in model.named_parameters():
        if not np.isfinite(p.data).all():
            raise CLIError(f"{path}: parameter {name} holds NaN or infinite values")
    model.eval()
    return model, c, path


# ---------------------------------------------------------------------------------------------
# data

def _load_data(dataset, data_root):
    from . import datasets
    try:
        return datasets.load_dataset(dataset, root=data_root)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def _class_names(cfg):
    from .datasets import FASHION_MNIST_CLASSES
    if cfg.get("dataset", "").lower().replace("_", "-") == "fashion-mnist" and cfg.get("classes") == 10:
        return list(FASHION_MNIST_CLASSES)
    return [str(i) for i in range(cfg.get("classes", 0))]


def _evaluate(model, X, y, loss_fn, batch=EVAL_BATCH):
    """(mean loss, accuracy, predictions) without recording a graph; dropout off."""
    pb = _pb()
    was_training = model.training
    model.eval()
    loss_sum, preds = 0.0, np.empty(len(y), dtype=np.int64)
    with pb.no_grad():
        for i in range(0, len(y), batch):
            out = model(X[i:i + batch])
            loss_sum += float(loss_fn(out, y[i:i + batch]).item()) * len(y[i:i + batch])
            preds[i:i + batch] = out.numpy().argmax(axis=1)
    model.train(was_training)
    n = max(len(y), 1)
    return loss_sum / n, float((preds == y).sum()) / n, preds


# ---------------------------------------------------------------------------------------------
# progress

class _Progress:
    """tqdm bar per epoch when available; else a plain line refreshed in place on a terminal."""

    def __init__(self, enabled, total, desc, initial=0):
        self.bar, self.plain = None, False
        self.total, self.desc, self.n, self.t_last = total, desc, initial, 0.0
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self.plain = sys.stderr.isatty()
            return
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                        file=sys.stderr, mininterval=0.25)

    def update(self, n_batches, loss, samples_per_s):
        self.n += n_batches
        if self.bar is not None:
            self.bar.update(n_batches)
            self.bar.set_postfix_str(f"loss {loss:.4f}, {samples_per_s:,.0f} samples/s", refresh=False)
        elif self.plain and (time.perf_counter() - self.t_last > 0.5 or self.n == self.total):
            self.t_last = time.perf_counter()
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} batches, loss {loss:.4f}, "
                             f"{samples_per_s:,.0f} samples/s ")
            sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.refresh()          # the final count and rate, even if the epoch was shorter than mininterval
            self.bar.close()
        elif self.plain:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# files of a run

def _write_text(path, text):
    from .serialization import atomic_write
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _write_metrics(outdir, history, test=None):
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "samples_per_s"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in history:
        w.writerow({k: ("" if row.get(k) is None else row[k]) for k in cols})
    _write_text(os.path.join(outdir, "metrics.csv"), buf.getvalue())
    doc = {"epochs": history}
    if test is not None:
        doc["test"] = test
    _write_text(os.path.join(outdir, "metrics.json"), json.dumps(doc, indent=2) + "\n")


def _matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def _no_matplotlib(what):
    print(f"matplotlib is not installed: skipping {what} (install it with: pip install pybackprop[train])")


def plot_curves(history, path, title=None):
    """Loss and accuracy per epoch, train and validation. Returns False without matplotlib."""
    plt = _matplotlib()
    if plt is None:
        return False
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((a1, "loss", "cross-entropy loss"), (a2, "acc", "accuracy")):
        ax.plot(ep, [h[f"train_{key}"] for h in history], "o-", label="train")
        val = [h.get(f"val_{key}") for h in history]
        if any(v is not None for v in val):
            ax.plot(ep, [np.nan if v is None else v for v in val], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return True


def plot_confusion(cm, names, path, title=None):
    plt = _matplotlib()
    if plt is None:
        return False
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.6 + 0.6 * k))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    thresh = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > thresh else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return True


def _save_figure(fig, path):
    from .serialization import atomic_write
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))


# ---------------------------------------------------------------------------------------------
# train

def _resolve_train_config(args):
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    cfg = dict(TRAIN_DEFAULTS)
    cfg.update(given)
    if cfg["lr"] is None:
        cfg["lr"] = DEFAULT_LR[cfg["optimizer"]]
    if cfg["momentum"] and cfg["optimizer"] != "sgd":
        raise CLIError(f"--momentum is for --optimizer sgd, not {cfg['optimizer']}")
    ds = cfg["dataset"]
    if ds.startswith("idx:") and len(ds) > 4:
        cfg["dataset"] = "idx:" + os.path.abspath(ds[4:])
    if cfg["data_root"] is not None:
        cfg["data_root"] = os.path.abspath(cfg["data_root"])
    return cfg


def _resume_config(args):
    run = args.resume
    cfg_path = os.path.join(run, CONFIG_FILE)
    if not os.path.isfile(os.path.join(run, CHECKPOINT_FILE)):
        raise CLIError(f"cannot resume: no checkpoint at {os.path.join(run, CHECKPOINT_FILE)}")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)["train"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CLIError(f"cannot resume: unreadable {cfg_path} ({exc})") from None
    if args.output is not None and os.path.abspath(args.output) != os.path.abspath(run):
        raise CLIError("--resume continues in its own directory; do not pass --output with it")
    for k in TRAIN_DEFAULTS:
        v = getattr(args, k)
        if v is None or k in RESUMABLE_OVERRIDES:
            continue
        if k == "dataset" and v.startswith("idx:"):
            v = "idx:" + os.path.abspath(v[4:])
        if v != cfg.get(k):
            flag = "--" + k.replace("_", "-")
            raise CLIError(f"cannot change {flag} when resuming (the run used {cfg.get(k)!r}); "
                           "only --epochs and --threads may change")
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    return cfg


class _StopFlag:
    """First Ctrl-C: finish the current batch, checkpoint, exit. Second Ctrl-C: stop at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:            # not the main thread: leave Ctrl-C alone
            self._old = None
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        sys.stderr.write("\nCtrl-C: stopping at the end of this batch and writing a checkpoint "
                         "(press Ctrl-C again to quit at once)\n")
        sys.stderr.flush()

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _generator():
    """pybackprop's global generator (initialisation, dropout), or None if the library has none."""
    try:
        from . import random as pbrandom
    except ImportError:
        return None
    get = getattr(pbrandom, "get_generator", None)
    gen = get() if callable(get) else None
    return gen if isinstance(gen, np.random.Generator) else None


def _rng_state():
    gen = _generator()
    return None if gen is None else gen.bit_generator.state


def _set_rng_state(state):
    gen = _generator()
    if state is not None and gen is not None:
        if state.get("bit_generator") != type(gen.bit_generator).__name__:
            raise CLIError(f"cannot resume: the checkpoint's generator is {state.get('bit_generator')}, "
                           f"this pybackprop uses {type(gen.bit_generator).__name__}")
        gen.bit_generator.state = state


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _epoch_line(row, epochs):
    s = (f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  train loss {row['train_loss']:.4f} "
         f"acc {row['train_acc']:.4f}")
    if row.get("val_loss") is not None:
        s += f"  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}"
    s += f"  {row['seconds']:.1f}s  {row['samples_per_s']:,.0f} samples/s"
    return s


def cmd_train(args):
    pb = _pb()
    from .data import DataLoader, train_val_split

    if args.resume is not None:
        cfg = _resume_config(args)
        outdir = args.resume
    else:
        cfg = _resolve_train_config(args)
        outdir = args.output or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
        for name in (MODEL_FILE, CHECKPOINT_FILE):
            if os.path.exists(os.path.join(outdir, name)):
                raise CLIError(f"{outdir} already holds a run ({name}); continue it with --resume {outdir} "
                               "or choose another --output")
    progress = True if args.progress is None else args.progress
    if args.threads is not None:
        pb.set_num_threads(args.threads)

    Xtr_all, ytr_all, Xte, yte = _load_data(cfg["dataset"], cfg["data_root"])
    if cfg["limit"] is not None:
        Xtr_all, ytr_all = Xtr_all[:cfg["limit"]], ytr_all[:cfg["limit"]]
    dtype = np.dtype(cfg["dtype"])
    if Xtr_all.dtype != dtype:
        Xtr_all, Xte = Xtr_all.astype(dtype), Xte.astype(dtype)
    Xtr, ytr, Xval, yval = train_val_split(Xtr_all, ytr_all, cfg["val_split"], seed=cfg["seed"])
    if len(ytr) == 0:
        raise CLIError(f"no training examples left (limit {cfg['limit']}, validation split {cfg['val_split']})")
    cfg["in_features"] = int(Xtr.shape[1])
    cfg["classes"] = int(max(ytr_all.max(), yte.max() if len(yte) else 0)) + 1

    os.makedirs(outdir, exist_ok=True)
    loss_fn = pb.nn.CrossEntropyLoss()
    pb.manual_seed(cfg["seed"])
    model = build_mlp(cfg["in_features"], cfg["hidden"], cfg["classes"], cfg["activation"],
                      cfg["dropout"], cfg["dtype"])
    optimizer = _make_optimizer(cfg, model.parameters())
    loader = DataLoader(Xtr, ytr, cfg["batch_size"], shuffle=True, seed=cfg["seed"])

    history, start_epoch, start_batch, carry = [], 0, 0, None
    ckpt_path = os.path.join(outdir, CHECKPOINT_FILE)
    if args.resume is not None:
        try:
            ck = _load(ckpt_path)
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            _set_rng_state(ck.get("rng"))
            history, start_epoch, start_batch = list(ck["history"]), int(ck["epoch"]), int(ck["batch"])
            carry = ck["running"]
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CLIError(f"cannot resume from {ckpt_path}: {type(exc).__name__}: {exc}") from None
        if start_epoch >= cfg["epochs"] and start_batch == 0:
            print(f"{outdir}: already trained {start_epoch} epochs; pass --epochs N (> {start_epoch}) "
                  "to train longer")
            return 0
        where = f"epoch {start_epoch + 1}, batch {start_batch + 1}/{len(loader)}"
        print(f"resuming {outdir} at {where}")

    config_doc = {"train": {k: cfg[k] for k in TRAIN_DEFAULTS},
                  "model": {k: cfg[k] for k in ("in_features", "hidden", "classes", "activation",
                                                "dropout", "dtype")},
                  "examples": {"train": len(ytr), "val": len(yval), "test": len(yte)},
                  "pybackprop": _version(), "backend": _backend_info(pb)}
    _write_text(os.path.join(outdir, CONFIG_FILE), json.dumps(config_doc, indent=2) + "\n")

    arch = "-".join(str(s) for s in [cfg["in_features"], *cfg["hidden"], cfg["classes"]])
    if args.resume is None:
        print(f"training {arch} {cfg['activation']} MLP on {cfg['dataset']} ({len(ytr)} train, {len(yval)} val, "
              f"{len(yte)} test examples), {cfg['optimizer']} lr {cfg['lr']:g}, batch {cfg['batch_size']}, "
              f"{_plural(cfg['epochs'], 'epoch')}, {_plural(pb.get_num_threads(), 'thread')} -> {outdir}")

    def checkpoint(epoch, batch, running):
        _save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
               "batch": batch, "running": running, "history": history, "rng": _rng_state()}, ckpt_path)

    stop_after = args.stop_after_batches
    batches_done = 0
    with _StopFlag() as stop:
        model.train()
        for epoch in range(start_epoch, cfg["epochs"]):
            first = start_batch if epoch == start_epoch else 0
            if first and carry is not None:     # resuming mid-epoch: the epoch's running sums so far
                loss_sum, correct, seen, seconds = (carry[k] for k in ("loss_sum", "correct", "seen", "seconds"))
            else:
                loss_sum, correct, seen, seconds = 0.0, 0, 0, 0.0
            bar = _Progress(progress, len(loader), f"epoch {epoch + 1}/{cfg['epochs']}", initial=first)
            t0 = time.perf_counter()
            interrupted_at = None
            for b, (xb, yb) in enumerate(loader.iter_epoch(epoch, first), start=first):
                optimizer.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                optimizer.step()
                lv = float(loss.item())
                loss_sum += lv * len(yb)
                correct += int((out.numpy().argmax(axis=1) == yb).sum())
                seen += len(yb)
                batches_done += 1
                elapsed = seconds + time.perf_counter() - t0
                bar.update(1, loss_sum / seen, seen / max(elapsed, 1e-9))
                if stop_after is not None and batches_done >= stop_after:
                    stop.requested = True
                if stop.requested and b + 1 < len(loader):
                    interrupted_at = b + 1
                    break
            bar.close()
            seconds += time.perf_counter() - t0
            if interrupted_at is not None:
                checkpoint(epoch, interrupted_at, {"loss_sum": loss_sum, "correct": correct, "seen": seen,
                                                   "seconds": seconds})
                print(f"interrupted in epoch {epoch + 1} after batch {interrupted_at}/{len(loader)}: "
                      f"checkpoint written to {ckpt_path}\ncontinue with: pybackprop train --resume {outdir}")
                return 130
            row = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
                   "train_acc": correct / max(seen, 1), "val_loss": None, "val_acc": None,
                   "seconds": round(seconds, 3), "samples_per_s": round(seen / max(seconds, 1e-9), 1)}
            if len(yval):
                row["val_loss"], row["val_acc"], _ = _evaluate(model, Xval, yval, loss_fn)
            history.append(row)
            print(_epoch_line(row, cfg["epochs"]), flush=True)
            checkpoint(epoch + 1, 0, None)
            _write_metrics(outdir, history)
            if stop.requested:
                if epoch + 1 < cfg["epochs"]:
                    print(f"interrupted after epoch {epoch + 1}: checkpoint written to {ckpt_path}\n"
                          f"continue with: pybackprop train --resume {outdir}")
                    return 130
        model.eval()

    test_loss, test_acc, _ = _evaluate(model, Xte, yte, loss_fn)
    print(f"test loss {test_loss:.4f}  test accuracy {test_acc:.4f} ({len(yte)} examples)")
    model_cfg = dict(config_doc["model"], dataset=cfg["dataset"])
    _save({"format": "pybackprop.mlp", "config": model_cfg, "state_dict": model.state_dict()},
          os.path.join(outdir, MODEL_FILE))
    _write_metrics(outdir, history, {"loss": test_loss, "accuracy": test_acc, "examples": len(yte)})
    title = f"{arch} {cfg['activation']} MLP on {os.path.basename(cfg['dataset'])}, test accuracy {test_acc:.4f}"
    if plot_curves(history, os.path.join(outdir, "curves.png"), title=title):
        print(f"wrote {os.path.join(outdir, MODEL_FILE)}, metrics.csv/json, curves.png")
    else:
        print(f"wrote {os.path.join(outdir, MODEL_FILE)}, metrics.csv/json")
        _no_matplotlib("curves.png")
    return 0


def _backend_info(pb):
    try:
        return {k: v for k, v in pb.backend_info().items() if isinstance(v, (str, int, float, bool))}
    except Exception:
        return {}


# ---------------------------------------------------------------------------------------------
# evaluate / predict

def cmd_evaluate(args):
    pb = _pb()
    if args.threads is not None:
        pb.set_num_threads(args.threads)
    model, c, path = _model_from_file(args.model)
    dataset = args.dataset or c.get("dataset", "fashion-mnist")
    data_root = args.data_root
    _, _, Xte, yte = _load_data(dataset, data_root)
    Xte = Xte.astype(np.dtype(c["dtype"]), copy=False)
    if Xte.shape[1] != c["in_features"]:
        raise CLIError(f"{dataset} has {Xte.shape[1]} features per example, the model expects {c['in_features']}")
    if len(yte) and yte.max() >= c["classes"]:
        raise CLIError(f"{dataset} has class {int(yte.max())}, the model knows {c['classes']} classes")
    loss, acc, pred = _evaluate(model, Xte, yte, pb.nn.CrossEntropyLoss())
    k = c["classes"]
    cm = np.bincount(yte * k + pred, minlength=k * k).reshape(k, k)
    names = _class_names(dict(c, dataset=dataset))
    print(f"model {path}: {dataset} test set, {len(yte)} examples")
    print(f"test loss {loss:.4f}  test accuracy {acc:.4f}")
    print("confusion matrix (rows: true class, columns: predicted class)")
    width = max(5, len(str(cm.max() if cm.size else 0)) + 1)
    label_w = max(len(n) for n in names) + 5
    print(" " * label_w + "".join(f"{j:>{width}}" for j in range(k)))
    for i in range(k):
        print(f"{i:>2} {names[i]:<{label_w - 3}}" + "".join(f"{v:>{width}}" for v in cm[i]))
    if args.plot:
        out = os.path.join(os.path.dirname(path), "confusion.png")
        if plot_confusion(cm, names, out, title=f"test accuracy {acc:.4f}"):
            print(f"wrote {out}")
        else:
            _no_matplotlib("confusion.png")
    return 0


def _softmax(z):
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cmd_predict(args):
    pb = _pb()
    if args.threads is not None:
        pb.set_num_threads(args.threads)
    model, c, path = _model_from_file(args.model)
    try:
        X = np.load(args.input, allow_pickle=False)
    except FileNotFoundError:
        raise CLIError(f"{args.input}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise CLIError(f"{args.input}: not a readable .npy file ({exc})") from None
    if not isinstance(X, np.ndarray):
        raise CLIError(f"{args.input}: expected a single .npy array, got an .npz archive")
    if X.dtype.kind not in "fiub":
        raise CLIError(f"{args.input}: expected numbers, got dtype {X.dtype}")
    if X.ndim == 1 and X.size == c["in_features"]:
        X = X[None]
    X = X.reshape(X.shape[0], int(np.prod(X.shape[1:]))) if X.ndim >= 2 else X
    if X.ndim != 2 or X.shape[1] != c["in_features"]:
        raise CLIError(f"{args.input}: shape {X.shape} does not give {c['in_features']} features per row")
    Xf = X.astype(np.dtype(c["dtype"]))
    if X.dtype == np.uint8:
        Xf /= 255
    bad = ~np.isfinite(Xf).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise CLIError(f"{args.input}: {len(rows)} row(s) hold NaN or infinite values (first: row {rows[0]})")
    with pb.no_grad():
        logits = np.concatenate([model(Xf[i:i + EVAL_BATCH]).numpy() for i in range(0, len(Xf), EVAL_BATCH)]) \
            if len(Xf) else np.zeros((0, c["classes"]))
    probs = _softmax(logits)
    names = _class_names(c)
    np.set_printoptions(precision=4, suppress=True)
    name_w = max(4, *(len(n) for n in names))
    print(f"row  class  {'name':<{name_w}}" + "".join(f"{'p' + str(j):>7}" for j in range(c["classes"])))
    for i, p in enumerate(probs):
        k = int(p.argmax())
        print(f"{i:>3}  {k:>5}  {names[k]:<{name_w}}" + "".join(f"{v:>7.4f}" for v in p))
    return 0


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    parser = _make_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"pybackprop {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pybackprop {args.command}: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"pybackprop {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except MemoryError:
        print(f"pybackprop {args.command}: error: out of memory (are the layer sizes or the batch size "
              "larger than intended?)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
