"""Automatic differentiation: the graph engine, user-defined Functions, gradcheck.

``pb.autograd.grad``, ``pb.autograd.Function``, ``pb.autograd.gradcheck``,
``pb.autograd.GradcheckError``, ``pb.autograd.functional`` (jacobian, vjp, jvp, hvp),
``pb.no_grad``/``enable_grad``/``set_grad_enabled``.
"""
from .grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .engine import grad, backward, Node
from .function import Function
from .gradcheck import gradcheck, GradcheckError
from . import functional

__all__ = ["grad", "backward", "Function", "gradcheck", "GradcheckError", "functional",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "Node"]
