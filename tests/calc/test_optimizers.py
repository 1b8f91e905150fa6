"""The optimizer task: hand-computed steps, quadratic objectives, shapes, an independent loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quizengine.calc import calculate

GRADS = [[0.5, 0.1], [0.4, 0.2]]


def steps(optimizer: dict, params, **rest) -> list[dict]:
    return calculate({"optimizer": optimizer, "params": params, **rest})["steps"]


def params_of(result: list[dict]) -> list:
    return [s["params"] for s in result]


# Each expected value below was worked out by hand from the CONTRACT's update rules.
@pytest.mark.parametrize("optimizer,expected_params,expected_velocity", [
    # plain sgd: w <- w - lr g
    ({"name": "sgd", "learning_rate": 0.1}, [[0.95, -2.01], [0.91, -2.03]], [[-0.05, -0.01], [-0.04, -0.02]]),
    # momentum 0.9: v2 = 0.9 * (-0.05, -0.01) - 0.1 * (0.4, 0.2)
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
     [[0.95, -2.01], [0.865, -2.039]], [[-0.05, -0.01], [-0.085, -0.029]]),
    # nesterov: w <- w + 0.9 v - lr g
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
     [[0.905, -2.019], [0.7885, -2.0651]], [[-0.05, -0.01], [-0.085, -0.029]]),
    # nesterov without momentum is plain sgd
    ({"name": "sgd", "learning_rate": 0.1, "nesterov": True}, [[0.95, -2.01], [0.91, -2.03]],
     [[-0.05, -0.01], [-0.04, -0.02]]),
])
def test_sgd_two_steps_by_hand(optimizer, expected_params, expected_velocity):
    r = steps(optimizer, [1.0, -2.0], gradients=GRADS)
    assert len(r) == 2
    np.testing.assert_allclose(params_of(r), expected_params, rtol=1e-13)
    np.testing.assert_allclose([s["velocity"] for s in r], expected_velocity, rtol=1e-13)
    np.testing.assert_allclose([s["gradient"] for s in r], GRADS, rtol=0)


def test_rmsprop_two_steps_by_hand():
    r = steps({"name": "rmsprop", "learning_rate": 0.01}, 1.0, gradients=[2.0, 1.0])
    w1 = 1 - 0.01 * 2 / (math.sqrt(0.4) + 1e-7)          # s1 = 0.1 * 2^2
    w2 = w1 - 0.01 * 1 / (math.sqrt(0.46) + 1e-7)        # s2 = 0.9 * 0.4 + 0.1 * 1^2
    assert [s["velocity"] for s in r] == pytest.approx([0.4, 0.46], rel=1e-14)
    assert params_of(r) == pytest.approx([w1, w2], rel=1e-14)


def test_rmsprop_with_rho_and_epsilon():
    r = steps({"name": "rmsprop", "learning_rate": 0.1, "rho": 0.5, "epsilon": 0.01}, 1.0, gradients=[1.0, 1.0])
    w1 = 1 - 0.1 / (math.sqrt(0.5) + 0.01)
    w2 = w1 - 0.1 / (math.sqrt(0.75) + 0.01)
    assert params_of(r) == pytest.approx([w1, w2], rel=1e-14)


def test_adagrad_two_steps_by_hand():
    r = steps({"name": "adagrad", "learning_rate": 0.1}, 1.0, gradients=[2.0, 1.0])
    w1 = 1 - 0.1 * 2 / (2 + 1e-7)                        # G1 = 4
    w2 = w1 - 0.1 * 1 / (math.sqrt(5) + 1e-7)            # G2 = 5
    assert [s["velocity"] for s in r] == pytest.approx([4.0, 5.0])
    assert params_of(r) == pytest.approx([w1, w2], rel=1e-14)


def test_adam_two_steps_by_hand():
    r = steps({"name": "adam", "learning_rate": 0.1}, 1.0, gradients=[2.0, 1.0])
    # step 1: m = 0.2, v = 0.004, m_hat = 2, v_hat = 4
    w1 = 1 - 0.1 * 2 / (2 + 1e-7)
    # step 2: m = 0.9 * 0.2 + 0.1 * 1 = 0.28, v = 0.999 * 0.004 + 0.001 * 1 = 0.004996
    m_hat, v_hat = 0.28 / (1 - 0.81), 0.004996 / (1 - 0.998001)
    w2 = w1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-7)
    assert [s["velocity"] for s in r] == pytest.approx([0.2, 0.28], rel=1e-14)
    assert [s["second_moment"] for s in r] == pytest.approx([0.004, 0.004996], rel=1e-13)
    assert params_of(r) == pytest.approx([w1, w2], rel=1e-14)


def test_adam_custom_betas():
    r = steps({"name": "adam", "learning_rate": 0.5, "beta_1": 0.5, "beta_2": 0.5, "epsilon": 0.0}, 0.0,
              gradients=[1.0, -1.0])
    # step 1: m = 0.5, m_hat = 1, v_hat = 1 -> w = -0.5
    # step 2: m = 0.25 - 0.5 = -0.25, m_hat = -1/3; v = 0.75, v_hat = 1 -> w = -0.5 + 0.5/3
    assert params_of(r) == pytest.approx([-0.5, -0.5 + 0.5 / 3], abs=1e-15)


def test_quadratic_objective_by_hand():
    # g = A w - b; g1 = (1, -1), v1 = (-0.1, 0.1); g2 = (0.8, -0.95), v2 = (-0.13, 0.145)
    r = steps({"name": "sgd", "learning_rate": 0.1, "momentum": 0.5}, [1.0, -2.0],
              objective={"quadratic": {"A": [[2.0, 0.0], [0.0, 0.5]], "b": [1.0, 0.0]}}, steps=2)
    np.testing.assert_allclose([s["gradient"] for s in r], [[1.0, -1.0], [0.8, -0.95]], rtol=1e-13)
    np.testing.assert_allclose(params_of(r), [[0.9, -1.9], [0.77, -1.755]], rtol=1e-13)


def test_quadratic_gradient_is_the_true_gradient_for_a_non_symmetric_A():
    A, b, w = np.array([[1.0, 2.0], [0.0, 3.0]]), np.array([0.5, -1.0]), np.array([0.3, -0.7])
    r = steps({"name": "sgd", "learning_rate": 0.0}, w.tolist(),
              objective={"quadratic": {"A": A.tolist(), "b": b.tolist()}}, steps=1)
    f = lambda v: 0.5 * v @ A @ v - b @ v  # noqa: E731
    h = 1e-6
    fd = [(f(w + h * e) - f(w - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(r[0]["gradient"], fd, rtol=1e-8)


def test_quadratic_without_b_and_many_steps_converges():
    r = steps({"name": "sgd", "learning_rate": 0.2, "momentum": 0.5}, [3.0, -1.0],
              objective={"quadratic": {"A": [[1.0, 0.0], [0.0, 2.0]]}}, steps=200)
    assert np.allclose(r[-1]["params"], [0.0, 0.0], atol=1e-10)


@pytest.mark.parametrize("params", [1.5, [1.0, 2.0, 3.0], [[1.0, 2.0], [3.0, 4.0]]])
def test_params_of_any_shape(params):
    g = (np.ones_like(np.asarray(params)) * 0.5).tolist()
    r = steps({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, params, gradients=[g, g])
    assert np.shape(r[1]["params"]) == np.shape(params)
    np.testing.assert_allclose(r[1]["params"], np.asarray(params) - 0.05 - 0.095)


def test_steps_defaults_to_gradient_count_and_can_be_fewer():
    assert len(steps({"name": "sgd", "learning_rate": 0.1}, 0.0, gradients=[1.0, 2.0, 3.0])) == 3
    assert len(steps({"name": "sgd", "learning_rate": 0.1}, 0.0, gradients=[1.0, 2.0, 3.0], steps=2)) == 2


# -- an independent element-by-element loop, written from the contract, on random runs

def loop_reference(name: str, cfg: dict, w: list[float], grads: list[list[float]]) -> list[list[float]]:
    lr = cfg["learning_rate"]
    v = [0.0] * len(w)
    s = [0.0] * len(w)
    out = []
    for t, g in enumerate(grads, start=1):
        w = list(w)
        for i, gi in enumerate(g):
            if name == "sgd":
                mu = cfg.get("momentum", 0.0)
                v[i] = mu * v[i] - lr * gi
                w[i] += mu * v[i] - lr * gi if cfg.get("nesterov") else v[i]
            elif name == "rmsprop":
                rho, eps = cfg.get("rho", 0.9), cfg.get("epsilon", 1e-7)
                v[i] = rho * v[i] + (1 - rho) * gi * gi
                w[i] -= lr * gi / (math.sqrt(v[i]) + eps)
            elif name == "adagrad":
                v[i] += gi * gi
                w[i] -= lr * gi / (math.sqrt(v[i]) + cfg.get("epsilon", 1e-7))
            else:
                b1, b2, eps = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.999), cfg.get("epsilon", 1e-7)
                v[i] = b1 * v[i] + (1 - b1) * gi
                s[i] = b2 * s[i] + (1 - b2) * gi * gi
                w[i] -= lr * (v[i] / (1 - b1**t)) / (math.sqrt(s[i] / (1 - b2**t)) + eps)
        out.append(w)
    return out


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adagrad", "adam"])
def test_random_runs_agree_with_an_element_loop(name):
    rng = np.random.default_rng(len(name))
    for _ in range(100):
        cfg = {"learning_rate": float(rng.uniform(0.001, 0.5))}
        if name == "sgd":
            cfg.update(momentum=float(rng.choice([0.0, 0.5, 0.9, 0.99])), nesterov=bool(rng.integers(2)))
        elif name == "rmsprop":
            cfg.update(rho=float(rng.uniform(0.5, 0.99)))
        elif name == "adam":
            cfg.update(beta_1=float(rng.uniform(0.5, 0.95)), beta_2=float(rng.uniform(0.9, 0.9999)))
        n, k = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        w = rng.uniform(-2, 2, n).tolist()
        grads = rng.uniform(-3, 3, (k, n)).tolist()
        ours = params_of(steps({"name": name, **cfg}, w, gradients=grads))
        np.testing.assert_allclose(ours, loop_reference(name, cfg, w, grads), rtol=1e-12, atol=1e-14)
