"""Layers, activations, losses and initialisers (``pb.nn``)."""
from .parameter import Parameter
from .module import Module
from .linear import Linear, Maxout
from .activation import (ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU, Softplus, Identity, Softmax,
                         LogSoftmax)
from .container import Sequential
from .dropout import Dropout
from .loss import CrossEntropyLoss, MSELoss, BCEWithLogitsLoss
from . import functional, init

__all__ = ["Parameter", "Module", "Linear", "Maxout", "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU",
           "GELU", "Softplus", "Identity", "Softmax", "LogSoftmax", "Sequential", "Dropout",
           "CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss", "functional", "init"]
