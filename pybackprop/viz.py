"""Draw the graph behind a tensor: ``to_dot(t)`` gives Graphviz DOT text, ``render`` a picture.

Value nodes (boxes) show a tensor's name (if set via ``t.name``), shape, dtype, its
values when it has at most ``max_values`` elements, and its gradient once computed:
``.grad`` for leaves (and ``retain_grad()`` tensors), and for intermediate results the
gradient the engine recorded on their node during the last backward (kept for
tensors of up to ``engine.VIZ_MAX_ELEMENTS`` elements). Op nodes (ellipses) show the
op name; edges run in the direction of the forward pass, as in the lecture pictures.
"""
import os
import shutil
import subprocess

import numpy as np

from .tensor import Tensor

__all__ = ["to_dot", "render"]


def _fmt(a, max_values):
    a = np.asarray(a)
    if a.size > max_values:
        return f"… ({a.size} values)"
    if a.ndim == 0:
        return f"{a.item():.4g}"
    return np.array2string(a, precision=4, separator=", ", max_line_width=60).replace("\n", " ")


def _esc(s):
    return (s.replace("\\", "\\\\").replace("\"", "\\\"").replace("{", "\\{").replace("}", "\\}")
            .replace("<", "\\<").replace(">", "\\>").replace("|", "\\|"))


def to_dot(tensor, max_values=16, rankdir="LR"):
    """The graph that produced ``tensor`` as DOT source text."""
    if not isinstance(tensor, Tensor):
        if not isinstance(tensor, np.ndarray):
            raise TypeError(f"to_dot expects a Tensor or numpy array, got {type(tensor).__name__}")
        tensor = Tensor(tensor)          # a lone constant node
    lines = ["digraph pybackprop {", f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", fontsize=10];']
    ids = {}

    def vid(t):
        key = ("n", t.grad_fn) if t.grad_fn is not None else ("t", id(t))
        if key not in ids:
            ids[key] = f"v{len(ids)}"
            grad = None
            if t.grad is not None:
                grad = t.grad.data
            elif t.grad_fn is not None and t.grad_fn.grad is not None:
                grad = t.grad_fn.grad
                grad = grad.data if isinstance(grad, Tensor) else grad
            parts = []
            if t.name:
                parts.append(_esc(str(t.name)))
            parts.append(f"shape {tuple(t.shape)} {t.dtype}")
            parts.append("data " + _esc(_fmt(t.data, max_values)))
            if grad is not None:
                parts.append("grad " + _esc(_fmt(grad, max_values)))
            color = "lightblue" if t.grad_fn is None and t.requires_grad else "white"
            lines.append(f'  {ids[key]} [shape=record, style=filled, fillcolor={color}, '
                         f'label="{{ {" | ".join(parts)} }}"];')
        return ids[key]

    done = set()
    stack = [tensor]
    vid(tensor)
    while stack:
        t = stack.pop()
        node = t.grad_fn
        if node is None or node in done:
            continue
        done.add(node)
        oid = f"op{len(done)}"
        label = node.op.name
        act = [x[0] for x in node.inputs if isinstance(x, tuple) and x and isinstance(x[0], str)]
        if act and act[0] != "identity":       # kernel activations: dense(relu), act(tanh)
            label += f"({act[0]})"
        if node.freed:
            label += " (freed)"
        lines.append(f'  {oid} [label="{_esc(label)}", shape=ellipse];')
        lines.append(f"  {oid} -> {vid(t)};")
        for x in node.inputs:
            if isinstance(x, Tensor):
                lines.append(f"  {vid(x)} -> {oid};")
                stack.append(x)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensor, path, format=None, **kwargs):
    """Write the picture of ``to_dot(tensor)`` to ``path`` (format from the extension: svg, png, pdf).

    Uses the ``graphviz`` Python package when installed, else the ``dot`` program;
    raises RuntimeError if neither is available.
    """
    dot = to_dot(tensor, **kwargs)
    fmt = format or (os.path.splitext(path)[1].lstrip(".") or "svg")
    exe = shutil.which("dot")
    if exe is None:
        try:
            import graphviz  # noqa: F401
        except ImportError:
            raise RuntimeError("rendering needs Graphviz: install the 'dot' program (e.g. apt-get "
                               "install graphviz); to_dot() works without it") from None
        src = graphviz.Source(dot)
        data = src.pipe(format=fmt)
    else:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
        data = proc.stdout
    with open(path, "wb") as f:
        f.write(data)
    return path
