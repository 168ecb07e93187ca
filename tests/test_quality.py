"""Quality bar on the real Fashion-MNIST: 784-256-128-10 ReLU, Adam 1e-3, batch 128, 5 epochs.

pybackprop must reach test accuracy >= 0.86, and, when PyTorch is installed, be within 0.01 of the
same recipe in PyTorch fed exactly the same mini-batches in the same order (same DataLoader seed).
"""
import os

import pytest

import pybackprop as pb

from pybackprop import datasets
from pybackprop.data import DataLoader

SEED, EPOCHS, BATCH, LR = 0, 5, 128, 1e-3


@pytest.fixture(scope="module")
def fashion():
    where = datasets.fashion_mnist_dir()
    if not os.path.isdir(where):
        pytest.skip(f"Fashion-MNIST is not installed in {where} (apt-get install dataset-fashion-mnist)")
    return datasets.fashion_mnist()


def batches(X, y, epoch):
    return DataLoader(X, y, BATCH, shuffle=True, seed=SEED).iter_epoch(epoch)


def train_pybackprop(X, y, Xte, yte):
    pb.manual_seed(SEED)
    model = pb.nn.Sequential(pb.nn.Linear(784, 256), pb.nn.ReLU(), pb.nn.Linear(256, 128), pb.nn.ReLU(),
                             pb.nn.Linear(128, 10))
    opt = pb.optim.Adam(model.parameters(), lr=LR)
    loss_fn = pb.nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        for xb, yb in batches(X, y, epoch):
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    with pb.no_grad():
        return float((model(Xte).numpy().argmax(1) == yte).mean())


def train_torch(torch, X, y, Xte, yte):
    torch.manual_seed(SEED)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        for xb, yb in batches(X, y, epoch):
            opt.zero_grad()
            loss_fn(model(torch.from_numpy(xb)), torch.from_numpy(yb)).backward()
            opt.step()
    with torch.no_grad():
        return float((model(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean())


@pytest.fixture(scope="module")
def pybackprop_accuracy(fashion):
    return train_pybackprop(*fashion)


@pytest.mark.slow
def test_fashion_mnist_quality_bar(pybackprop_accuracy):
    acc = pybackprop_accuracy
    print(f"\npybackprop test accuracy {acc:.4f}")
    assert acc >= 0.86, f"pybackprop reached {acc:.4f} < 0.86"


@pytest.mark.slow
def test_fashion_mnist_matches_pytorch(fashion, pybackprop_accuracy):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    ref = train_torch(torch, *fashion)
    acc = pybackprop_accuracy
    print(f"\npybackprop {acc:.4f}, torch {torch.__version__} {ref:.4f}")
    assert acc >= ref - 0.01, f"pybackprop {acc:.4f} is more than 0.01 below PyTorch {ref:.4f}"
