"""Every buggy calculator against numbers worked out by hand (in the comments), not by the code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quizengine.calc import parse
from quizengine.calc.engine import run_network
from quizengine.calc.mistakes import DESCRIPTIONS, MISTAKES, buggy_result

# One sigmoid unit at z = 0: a = 0.5, sigma'(0) = 0.25. half_sse with y = 1: dL/da = a - y = -0.5.
UNIT = {"network": {"layers": [{"weights": [[0.0]], "bias": [0.0], "activation": "sigmoid"}], "loss": "half_sse"},
        "input": [1.0], "target": [1.0], "update": {"learning_rate": 1.0}}

# A square linear layer: x = (1, 2), W = [[1, 2], [3, 4]]; z = x W = (7, 10); half_sse with y = 0.
SQUARE = {"network": {"layers": [{"weights": [[1.0, 2.0], [3.0, 4.0]], "bias": [0.0, 0.0], "activation": "linear"}],
                      "loss": "half_sse"},
          "input": [1.0, 2.0], "target": [0.0, 0.0], "update": {"learning_rate": 0.1}}


def bug(spec: dict, mistake: str):
    return buggy_result(parse(spec), mistake)


def test_every_mistake_is_described_and_tested_here():
    assert set(MISTAKES) == set(DESCRIPTIONS)
    tested = {"derivative_as_value", "no_activation_derivative", "loss_factor", "transposed_weights",
              "transposed_gradient", "gradient_ascent", "momentum_sign", "no_bias_correction", "derivative_at_output"}
    assert set(MISTAKES) == tested


# -- network mistakes on one sigmoid unit

@pytest.mark.parametrize("mistake,delta,W_new,loss", [
    # true: delta = -0.5 * 0.25 = -0.125, dW = x delta = -0.125, W_new = 0 - 1 * dW = 0.125
    (None, -0.125, 0.125, 0.125),
    # sigma' taken as sigma: delta = -0.5 * 0.5 = -0.25, W_new = 0.25
    ("derivative_as_value", -0.25, 0.25, 0.125),
    # f' taken as 1: delta = -0.5, W_new = 0.5
    ("no_activation_derivative", -0.5, 0.5, 0.125),
    # mse instead of half_sse: L = (0.5 - 1)^2 = 0.25, dL/da = 2 (a - y) = -1, delta = -0.25
    ("loss_factor", -0.25, 0.25, 0.25),
    # moved uphill: W_new = 0 + 1 * (-0.125)
    ("gradient_ascent", -0.125, -0.125, 0.125),
])
def test_network_mistakes_on_one_sigmoid_unit(mistake, delta, W_new, loss):
    r = run_network(parse(UNIT)).to_json() if mistake is None else bug(UNIT, mistake)
    assert r["output"] == pytest.approx([0.5], abs=1e-15)
    assert r["loss"] == pytest.approx(loss, abs=1e-15)
    assert r["layers"][0]["delta"] == pytest.approx([delta], abs=1e-15)
    assert r["layers"][0]["dW"][0] == pytest.approx([delta], abs=1e-15)
    assert r["layers"][0]["W_new"][0] == pytest.approx([W_new], abs=1e-15)


def test_transposed_weights_uses_W_transposed_in_the_forward_pass():
    # W^T = [[1, 3], [2, 4]]: z = (1 + 4, 3 + 8) = (5, 11), L = (25 + 121) / 2 = 73,
    # dW = x^T delta = [[5, 11], [10, 22]]
    r = bug(SQUARE, "transposed_weights")
    assert r["layers"][0]["z"] == pytest.approx([5.0, 11.0])
    assert r["loss"] == pytest.approx(73.0)
    assert r["layers"][0]["dW"] == [[5.0, 11.0], [10.0, 22.0]]


def test_transposed_gradient_writes_dW_transposed_and_updates_with_it():
    # true dW = x^T z = [[7, 10], [14, 20]]; written transposed [[7, 14], [10, 20]];
    # W_new = W - 0.1 dW^T = [[0.3, 0.6], [2.0, 2.0]]; z and the loss (74.5) stay true
    r = bug(SQUARE, "transposed_gradient")
    assert r["layers"][0]["z"] == [7.0, 10.0] and r["loss"] == 74.5
    assert r["layers"][0]["dW"] == [[7.0, 14.0], [10.0, 20.0]]
    np.testing.assert_allclose(r["layers"][0]["W_new"], [[0.3, 0.6], [2.0, 2.0]], rtol=1e-15)


def test_transposing_needs_a_square_matrix():
    spec = {"network": {"layers": [{"weights": [[1.0, 2.0]], "bias": [0.0, 0.0], "activation": "linear"}],
                        "loss": "mse"}, "input": [1.0], "target": [0.0, 0.0]}
    assert bug(spec, "transposed_weights") is None
    assert bug(spec, "transposed_gradient") is None


def test_mistakes_that_do_not_apply_return_none():
    bce = {"network": {"layers": [{"weights": [[0.0]], "bias": [0.0], "activation": "sigmoid"}],
                       "loss": "binary_crossentropy"}, "input": [1.0], "target": [1.0]}
    assert bug(bce, "loss_factor") is None  # only mse <-> half_sse
    assert bug(bce, "gradient_ascent") is None  # no update asked
    assert bug(UNIT, "momentum_sign") is None and bug(UNIT, "no_bias_correction") is None
    assert bug({"activation": "softmax", "z": [1.0, 2.0]}, "derivative_as_value") is None
    assert bug({"activation": "linear", "z": [1.0]}, "no_activation_derivative") is None
    assert bug({"keras": {"input_dim": 2, "layers": [3]}}, "gradient_ascent") is None


def test_a_hidden_layer_mistake_propagates_through_the_kept_dL_da():
    # Two linear layers x = 1, W0 = 2, W1 = 3, y = 0 (half_sse): a0 = 2, a1 = 6, delta1 = 6,
    # dL/da0 = delta1 W1 = 18, delta0 = 18, dW0 = 18, dW1 = a0 delta1 = 12.
    spec = {"network": {"layers": [{"weights": [[2.0]], "bias": [0.0], "activation": "linear"},
                                   {"weights": [[3.0]], "bias": [0.0], "activation": "linear"}], "loss": "half_sse"},
            "input": [1.0], "target": [0.0]}
    res = run_network(parse(spec))
    assert res.layers[0].grad_a.tolist() == [[18.0]] and res.layers[1].grad_a.tolist() == [[6.0]]
    assert res.layers[0].dW.tolist() == [[18.0]] and res.layers[1].dW.tolist() == [[12.0]]
    # derivative_as_value on linear layers multiplies by a: delta1 = 6 * 6 = 36, dL/da0 = 108,
    # delta0 = 108 * 2 = 216
    r = bug(spec, "derivative_as_value")
    assert r["layers"][1]["delta"] == [36.0] and r["layers"][0]["delta"] == [216.0]


# -- activation task

@pytest.mark.parametrize("name,z,mistake,derivative", [
    ("sigmoid", [0.0], "derivative_as_value", [0.5]),          # sigma(0) instead of 0.25
    ("sigmoid", [0.0], "no_activation_derivative", [1.0]),
    ("tanh", [0.0], "derivative_as_value", [0.0]),             # tanh(0) = 0 instead of 1
    ("relu", [2.0, -1.0], "derivative_as_value", [2.0, 0.0]),  # relu(z) instead of (1, 0)
])
def test_activation_mistakes(name, z, mistake, derivative):
    r = bug({"activation": name, "z": z}, mistake)
    assert r["derivative"] == pytest.approx(derivative, abs=1e-15)


# -- optimizer mistakes: sgd lr 0.1, momentum 0.5, w0 = 1, gradients 1 then 1

SGD = {"optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5}, "params": 1.0, "gradients": [1.0, 1.0]}


@pytest.mark.parametrize("mistake,velocity,params", [
    # true: v1 = -0.1, w1 = 0.9; v2 = 0.5 (-0.1) - 0.1 = -0.15, w2 = 0.75
    ("momentum_sign", [-0.1, -0.05], [0.9, 0.85]),   # v2 = -0.5 (-0.1) - 0.1 = -0.05
    ("gradient_ascent", [0.1, 0.15], [1.1, 1.25]),   # v1 = +0.1, v2 = 0.05 + 0.1
])
def test_sgd_mistakes(mistake, velocity, params):
    r = bug(SGD, mistake)["steps"]
    assert [s["velocity"] for s in r] == pytest.approx(velocity, abs=1e-15)
    assert [s["params"] for s in r] == pytest.approx(params, abs=1e-15)
    assert [s["gradient"] for s in r] == [1.0, 1.0]  # the gradients used are reported as given


def test_momentum_sign_needs_momentum():
    assert bug({**SGD, "optimizer": {"name": "sgd", "learning_rate": 0.1}}, "momentum_sign") is None


ADAM = {"optimizer": {"name": "adam", "learning_rate": 0.1, "epsilon": 0.0}, "params": 1.0, "gradients": [2.0]}


def test_adam_without_bias_correction():
    # m = 0.1 * 2 = 0.2, v = 0.001 * 4 = 0.004; true: m_hat = 2, v_hat = 4, w = 1 - 0.1 * 2 / 2 = 0.9;
    # without correction: w = 1 - 0.1 * 0.2 / sqrt(0.004) = 1 - sqrt(0.1)
    assert bug(ADAM, "no_bias_correction")["steps"][0]["params"] == pytest.approx(1 - math.sqrt(0.1), abs=1e-15)
    assert bug(SGD, "no_bias_correction") is None


def test_adam_gradient_ascent_moves_uphill_with_the_true_moments():
    # w = 1 + 0.1 * 2 / 2 = 1.1; m = 0.2 and v = 0.004 as in the true run
    s = bug(ADAM, "gradient_ascent")["steps"][0]
    assert s["params"] == pytest.approx(1.1, abs=1e-15)
    assert s["velocity"] == pytest.approx(0.2, abs=1e-15) and s["second_moment"] == pytest.approx(0.004, abs=1e-15)


def test_rmsprop_gradient_ascent():
    # s = 0.1 * 2^2 = 0.4; w = 1 + 0.1 * 2 / sqrt(0.4) = 1 + sqrt(0.1)
    spec = {"optimizer": {"name": "rmsprop", "learning_rate": 0.1, "epsilon": 0.0}, "params": 1.0, "gradients": [2.0]}
    s = bug(spec, "gradient_ascent")["steps"][0]
    assert s["params"] == pytest.approx(1 + math.sqrt(0.1), abs=1e-15) and s["velocity"] == pytest.approx(0.4)


def test_derivative_at_output_takes_f_prime_at_a_instead_of_z():
    # tanh at z = 0.5: a = tanh(0.5) = 0.4621172; the slip evaluates 1 - tanh^2 at a:
    # tanh(0.4621172) = 0.4318082, so 1 - 0.4318082^2 = 0.8135417 (the right value is 1 - a^2 = 0.7864477)
    out = bug({"activation": {"name": "tanh"}, "z": [0.5]}, "derivative_at_output")
    assert out["derivative"][0] == pytest.approx(0.8135417, abs=1e-7)
    # one sigmoid unit at z = 0 (a = 0.5): sigma'(0.5) = 0.6224593 * 0.3775407 = 0.2350037, so
    # delta = (a - y) * 0.2350037 = -0.1175019 (the right delta is -0.5 * 0.25 = -0.125)
    assert bug(UNIT, "derivative_at_output")["layers"][0]["delta"][0] == pytest.approx(-0.1175019, abs=1e-7)
    # ReLU's derivative is the same at a as at z (a = z for z > 0, relu'(0) = 0 for z <= 0): never a slip
    same = bug({"activation": {"name": "relu"}, "z": [-1.0, 2.0]}, "derivative_at_output")
    assert same["derivative"] == [0.0, 1.0]
