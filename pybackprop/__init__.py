"""pybackprop: fast, clear backpropagation for dense neural networks on the CPU."""
from ._version import __version__
from ._runtime import backend_info, get_num_threads, set_num_threads, _apply_environment

_apply_environment()
del _apply_environment

# --- the graph layer (tensors, autograd, layers, optimisers) ---
from .tensor import (Tensor, tensor, zeros, ones, zeros_like, ones_like, full, randn, rand, arange,
                     eye, from_numpy, float32, float64)
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .random import manual_seed
from .ops import (exp, log, sqrt, abs, erf, relu, sigmoid, tanh, softmax, log_softmax, sum, mean,
                  max, min, reshape, transpose, matmul, where, stack, cat, broadcast_to)
from . import autograd, ops, random, nn, optim, viz

# --- data and persistence ---
from . import data, datasets
from .serialization import save, load

# --- the compiled path ---
from .compile import compile
