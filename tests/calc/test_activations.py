"""The activation task: known values, derivatives against finite differences, softmax Jacobian."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quizengine.calc import calculate

ELEMENTWISE = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus"]


def act(name: str, z, **kw) -> dict:
    return calculate({"activation": {"name": name, **kw}, "z": z})


@pytest.mark.parametrize("name,kw,z,value,derivative", [
    # textbook points
    ("sigmoid", {}, 0.0, 0.5, 0.25),
    ("sigmoid", {}, 2.0, 1 / (1 + math.exp(-2)), math.exp(-2) / (1 + math.exp(-2)) ** 2),
    ("tanh", {}, 0.0, 0.0, 1.0),
    ("tanh", {}, 1.0, math.tanh(1), 1 / math.cosh(1) ** 2),
    ("linear", {}, -3.5, -3.5, 1.0),
    ("softplus", {}, 0.0, math.log(2), 0.5),
    # kinks: the contract fixes relu'(0) = 0
    ("relu", {}, 0.0, 0.0, 0.0),
    ("relu", {}, -1.5, 0.0, 0.0),
    ("relu", {}, 2.5, 2.5, 1.0),
    # alpha: default and given
    ("leaky_relu", {}, -2.0, -0.02, 0.01),
    ("leaky_relu", {"alpha": 0.1}, -2.0, -0.2, 0.1),
    ("leaky_relu", {"alpha": 0.1}, 3.0, 3.0, 1.0),
    ("elu", {}, -1.0, math.exp(-1) - 1, math.exp(-1)),
    ("elu", {"alpha": 0.5}, -2.0, 0.5 * (math.exp(-2) - 1), 0.5 * math.exp(-2)),
    ("elu", {"alpha": 0.5}, 2.0, 2.0, 1.0),
])
def test_known_values(name, kw, z, value, derivative):
    r = act(name, [z], **kw)
    assert r["value"][0] == pytest.approx(value, rel=1e-14, abs=1e-15)
    assert r["derivative"][0] == pytest.approx(derivative, rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_finite_difference(name):
    z = np.linspace(-4.3, 4.1, 29)  # avoids 0, where relu and leaky_relu have a kink
    h = 1e-5
    r = act(name, z.tolist())
    plus, minus = act(name, (z + h).tolist())["value"], act(name, (z - h).tolist())["value"]
    fd = (np.asarray(plus) - np.asarray(minus)) / (2 * h)
    np.testing.assert_allclose(r["derivative"], fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_extreme_inputs_do_not_overflow(name):
    r = act(name, [-500.0, -30.0, 0.0, 30.0, 500.0])
    assert np.all(np.isfinite(r["value"])) and np.all(np.isfinite(r["derivative"]))


def test_sigmoid_is_accurate_far_from_zero():
    r = act("sigmoid", [-40.0, 40.0])
    assert r["value"][0] == pytest.approx(math.exp(-40), rel=1e-12)
    assert r["value"][1] == 1.0


def test_softmax_values_sum_to_one_and_are_shift_invariant():
    a = act("softmax", [1.0, 2.0, 3.0])["value"]
    b = act("softmax", [101.0, 102.0, 103.0])["value"]
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(a, e / e.sum(), rtol=1e-14)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_softmax_derivative_is_the_jacobian():
    z = np.array([0.3, -1.2, 2.0, 0.5])
    J = np.asarray(act("softmax", z.tolist())["derivative"])
    assert J.shape == (4, 4)
    h = 1e-6
    for j in range(4):
        dz = np.zeros(4)
        dz[j] = h
        col = (np.asarray(act("softmax", (z + dz).tolist())["value"]) -
               np.asarray(act("softmax", (z - dz).tolist())["value"])) / (2 * h)
        np.testing.assert_allclose(J[:, j], col, rtol=1e-6, atol=1e-10)
    s = np.asarray(act("softmax", z.tolist())["value"])
    np.testing.assert_allclose(J, np.diag(s) - np.outer(s, s), rtol=1e-14, atol=1e-16)


def test_shapes_follow_z():
    assert isinstance(act("tanh", 0.5)["value"], float)
    assert np.shape(act("relu", [[1.0, -1.0], [0.5, 2.0]])["derivative"]) == (2, 2)
    assert np.shape(act("softmax", [[1.0, 2.0], [0.0, 0.0]])["derivative"]) == (2, 2, 2)


def test_activation_may_be_given_as_a_bare_name():
    assert calculate({"activation": "sigmoid", "z": [0.0]})["value"] == [0.5]
