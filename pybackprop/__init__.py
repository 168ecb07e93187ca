"""pybackprop: fast, clear backpropagation for dense neural networks on the CPU."""
from ._version import __version__
from ._runtime import backend_info, get_num_threads, set_num_threads, _apply_environment

_apply_environment()
del _apply_environment
