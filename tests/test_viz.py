"""pb.viz: DOT text of the graph with ops, shapes, values and gradients; rendering via Graphviz."""
import shutil

import numpy as np
import pytest

import pybackprop as pb


def lecture_example():
    a = pb.tensor(2.0, requires_grad=True)
    b = pb.tensor(-3.0, requires_grad=True)
    c = pb.tensor(10.0, requires_grad=True)
    a.name, b.name, c.name = "a", "b", "c"
    e = a * b
    d = e + c
    f = pb.tensor(-2.0, requires_grad=True)
    L = d * f
    return a, b, c, f, L


def test_to_dot_before_and_after_backward():
    a, b, c, f, L = lecture_example()
    dot = pb.viz.to_dot(L)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert dot.count("label=\"mul\"") == 2 and dot.count("label=\"add\"") == 1
    assert "data -8" in dot and "data 4" in dot and "data -6" in dot     # L, d, e
    assert "shape ()" in dot and "grad" not in dot
    assert "{ a |" in dot
    L.backward()
    dot = pb.viz.to_dot(L)
    # dL/da = f b = 6, dL/db = f a = -4, dL/dc = f = -2, dL/df = d = 4; dL/dd = f = -2, dL/de = -2
    for text in ["data 2 | grad 6", "data -3 | grad -4", "data 10 | grad -2", "data -2 | grad 4",
                 "data 4 | grad -2", "data -6 | grad -2", "data -8 | grad 1"]:
        assert text in dot, text
    assert "(freed)" in dot


def test_to_dot_large_tensor_and_errors():
    x = pb.tensor(np.ones((10, 10)), requires_grad=True)
    y = (x @ x).relu().sum()
    dot = pb.viz.to_dot(y)
    assert "shape (10, 10) float64" in dot and "100 values" in dot and "matmul" in dot and "act" in dot
    assert "data [1., 1., 1.]" in pb.viz.to_dot(np.ones(3))
    with pytest.raises(TypeError):
        pb.viz.to_dot([1.0])


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_render_svg(tmp_path):
    *_, L = lecture_example()
    L.backward()
    path = tmp_path / "graph.svg"
    assert pb.viz.render(L, str(path)) == str(path)
    text = path.read_text()
    assert "<svg" in text and "grad 6" in text
