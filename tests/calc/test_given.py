"""Given values carried forward: hand-computed chains, the scalar reference, and clear errors."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest

from quizengine.calc import SpecError, calculate, parse
from quizengine.calc.report import render

from . import reference
from .netgen import ACTIVATIONS, LOSSES, random_spec

# x = 1 -> linear (W0 = 2) -> linear (W1 = 3) -> half_sse with y = 0. True chain: z0 = a0 = 2,
# z1 = a1 = 6, L = 18, delta1 = 6, dW1 = a0 delta1 = 12, dL/da0 = delta1 W1 = 18, delta0 = dW0 = 18.
CHAIN = {"network": {"layers": [{"weights": [[2.0]], "bias": [0.0], "activation": "linear"},
                                {"weights": [[3.0]], "bias": [0.0], "activation": "linear"}], "loss": "half_sse"},
         "input": [1.0], "target": [0.0], "update": {"learning_rate": 0.1}}


def with_given(spec: dict, given: dict) -> dict:
    return {**copy.deepcopy(spec), "given": given}


def flat(r: dict) -> dict:
    """The chain's scalars by name: z0, a0, ..., dW1, W_new0."""
    out = {"loss": r["loss"], "output": r["output"][0]}
    for k, l in enumerate(r["layers"]):
        for key in ("z", "a", "delta", "db"):
            out[f"{key}{k}"] = l[key][0]
        out[f"dW{k}"], out[f"W_new{k}"] = l["dW"][0][0], l["W_new"][0][0]
    return out


@pytest.mark.parametrize("given,expected", [
    # nothing given: the true chain
    ({}, {"z0": 2, "a0": 2, "z1": 6, "loss": 18, "delta1": 6, "dW1": 12, "delta0": 18, "dW0": 18, "W_new0": 0.2}),
    # a wrong z0 = 1.5: a0 = 1.5, z1 = a1 = 4.5, L = 10.125, delta1 = 4.5, dW1 = 1.5 * 4.5 = 6.75,
    # delta0 = 4.5 * 3 = 13.5, W_new0 = 2 - 0.1 * 13.5 = 0.65
    ({"layers[0].z": [1.5]}, {"z0": 1.5, "a0": 1.5, "z1": 4.5, "loss": 10.125, "delta1": 4.5, "dW1": 6.75,
                              "delta0": 13.5, "dW0": 13.5, "W_new0": 0.65}),
    # a wrong a0 = 1: z1 = 3, L = 4.5, delta1 = 3, dW1 = 3, delta0 = 9; z0 stays 2
    ({"layers[0].a": [1.0]}, {"z0": 2, "a0": 1, "z1": 3, "loss": 4.5, "delta1": 3, "dW1": 3, "delta0": 9, "dW0": 9}),
    # a wrong output delta = 1: dW1 = a0 * 1 = 2, db1 = 1, delta0 = 1 * 3 = 3, dW0 = 3; forward unchanged
    ({"layers[1].delta": [1.0]}, {"a1": 6, "loss": 18, "delta1": 1, "dW1": 2, "db1": 1, "delta0": 3, "dW0": 3,
                                  "W_new1": 3 - 0.1 * 2}),
    # a wrong dW0 = 5: W_new0 = 2 - 0.5 = 1.5, nothing else moves
    ({"layers[0].dW": [[5.0]]}, {"dW0": 5, "W_new0": 1.5, "delta0": 18, "dW1": 12}),
    # a wrong output 4 (= layers[1].a): L = 8, delta1 = 4, dW1 = 8, delta0 = 12
    ({"output": [4.0]}, {"z1": 6, "a1": 4, "output": 4, "loss": 8, "delta1": 4, "dW1": 8, "delta0": 12}),
    # a given loss is reported, and nothing is computed from it
    ({"loss": 1.0}, {"loss": 1, "delta1": 6, "dW0": 18}),
])
def test_linear_chain_carries_given_values_forward(given, expected):
    got = flat(calculate(with_given(CHAIN, given)))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_a_given_activation_keeps_the_derivative_at_z():
    # x = 1, W0 = 0: z0 = 0, sigmoid a0 = 0.5 but a0 = 0.8 is given. Layer 1 linear W1 = 1, y = 0:
    # a1 = 0.8, delta1 = 0.8, dW1 = 0.8 * 0.8 = 0.64, dL/da0 = 0.8, delta0 = 0.8 * sigma'(0) = 0.8 * 0.25
    # = 0.2 (sigma' is taken at z0 = 0, not as 0.8 * (1 - 0.8) from the given a0).
    spec = {"network": {"layers": [{"weights": [[0.0]], "bias": [0.0], "activation": "sigmoid"},
                                   {"weights": [[1.0]], "bias": [0.0], "activation": "linear"}], "loss": "half_sse"},
            "input": [1.0], "target": [0.0], "given": {"layers[0].a": [0.8]}}
    r = calculate(spec)
    assert r["layers"][1]["dW"] == [[pytest.approx(0.64)]]
    assert r["layers"][0]["delta"] == [pytest.approx(0.2)]
    assert "f'(z)                  = [0.25]" in render(parse(spec))


@pytest.mark.parametrize("act, a0, f_prime", [
    ("sigmoid", 0.8, 0.8 * (1 - 0.8)),  # sigma' = a (1 - a) with the given a: 0.16 (0.25 at z0 = 0)
    ("tanh", 0.5, 1 - 0.5 ** 2),  # tanh' = 1 - a^2: 0.75 (1 at z0 = 0)
    ("relu", 0.8, 0.0),  # relu' is a function of z (0 at z0 = 0): the given a does not change it
])
def test_given_derivative_a_takes_f_prime_from_the_given_activation(act, a0, f_prime):
    # As above (x = 1, W0 = 0, so z0 = 0; a linear output W1 = 1, y = 0): dL/da0 = a1 = a0, and
    # delta0 = a0 * f' with f' from the given a0 where the activation's f' is written in a.
    spec = {"network": {"layers": [{"weights": [[0.0]], "bias": [0.0], "activation": act},
                                   {"weights": [[1.0]], "bias": [0.0], "activation": "linear"}], "loss": "half_sse"},
            "input": [1.0], "target": [0.0], "given": {"layers[0].a": [a0]}, "given_derivative": "a"}
    r = calculate(spec)
    assert r["layers"][0]["delta"] == [pytest.approx(a0 * f_prime, abs=1e-15)]
    assert r["layers"][1]["dW"] == [[pytest.approx(a0 * a0)]]  # the forward pass is the same either way
    assert "given_derivative: a" in render(parse(spec))
    assert calculate({**spec, "given_derivative": "z"})["layers"][0]["delta"] == [
        pytest.approx(a0 * {"sigmoid": 0.25, "tanh": 1.0, "relu": 0.0}[act])]


def test_given_derivative_must_be_z_or_a():
    with pytest.raises(SpecError, match=r"given_derivative: expected 'z' .* or 'a' .*, got 'y'"):
        parse({**with_given(CHAIN, {"layers[0].a": [1.0]}), "given_derivative": "y"})


def test_a_given_z_gives_a_and_the_derivative_from_it():
    # sigmoid with given z0 = 0: a0 = 0.5, sigma'(0) = 0.25; half_sse with y = 1: delta = -0.5 * 0.25
    spec = {"network": {"layers": [{"weights": [[3.0]], "bias": [1.0], "activation": "sigmoid"}], "loss": "half_sse"},
            "input": [1.0], "target": [1.0], "given": {"layers[0].z": [0.0]}}
    r = calculate(spec)
    assert r["output"] == [0.5] and r["layers"][0]["delta"] == [-0.125]


def test_one_entry_of_a_vector_and_of_a_batch_row():
    # x = (1, 1), W = I, linear, y = 0: z = a = (1, 1). Given a[1] = 3: L = (1 + 9) / 2 = 5, delta = (1, 3).
    net = {"layers": [{"weights": [[1.0, 0.0], [0.0, 1.0]], "bias": [0.0, 0.0], "activation": "linear"}],
           "loss": "half_sse"}
    r = calculate({"network": net, "input": [1.0, 1.0], "target": [0.0, 0.0], "given": {"layers[0].a[1]": 3.0}})
    assert r["layers"][0]["a"] == [1.0, 3.0] and r["loss"] == 5.0 and r["layers"][0]["delta"] == [1.0, 3.0]
    # A batch of 2 (loss is the mean): example 1's row given (2, 2); delta = (a - y) / 2 per row.
    r = calculate({"network": net, "input": [[1.0, 1.0], [1.0, 1.0]], "target": [[0.0, 0.0], [0.0, 0.0]],
                   "given": {"layers[0].z[1]": [2.0, 2.0]}})
    assert r["layers"][0]["a"] == [[1.0, 1.0], [2.0, 2.0]]
    assert r["layers"][0]["delta"] == [[0.5, 0.5], [1.0, 1.0]]
    assert r["layers"][0]["dW"] == [[1.5, 1.5], [1.5, 1.5]]


def test_given_values_equal_to_the_true_ones_change_nothing():
    rng = np.random.default_rng(4)
    for act, loss in itertools.product(ACTIVATIONS, LOSSES):
        spec = random_spec(rng, act, loss, 2)
        true = calculate(spec)
        for k, l in enumerate(true["layers"]):
            for key in l:
                assert calculate(with_given(spec, {f"layers[{k}].{key}": l[key]})) == true, (act, loss, k, key)


# -- the independent scalar reference, with given values injected as torch would (x + (g - x).detach())

@pytest.mark.parametrize("act,loss,batch", list(itertools.product(ACTIVATIONS, LOSSES, [None, 3])))
def test_given_values_agree_with_the_reference(act, loss, batch):
    rng = np.random.default_rng(len(act) * 31 + len(loss) + (batch or 0))
    for key in ("z", "a", "delta"):
        spec = random_spec(rng, act, loss, batch, sizes=(3, 4, 3, 2))
        true = calculate(spec)
        shape = np.shape(true["layers"][1][key])
        value = (np.asarray(true["layers"][1][key]) + rng.uniform(-0.2, 0.2, shape)).tolist()
        if key == "a" and act == "softmax" or loss.endswith("crossentropy") and key == "a":
            value = np.clip(value, 0.05, 0.95).tolist()
        spec["given"] = {f"layers[1].{key}": value}
        ours, ref = calculate(spec), reference.network(spec)
        np.testing.assert_allclose(ours["loss"], ref["loss"], rtol=1e-9)
        for k, (lo, lr) in enumerate(zip(ours["layers"], ref["layers"])):
            for field in lr:
                np.testing.assert_allclose(lo[field], lr[field], rtol=1e-9, atol=1e-12, err_msg=f"{key} {k} {field}")


def test_given_output_delta_matches_finite_differences_of_a_surrogate():
    # With delta1 given as d, dW0 is the gradient of d . z1(W0) (z1 as a function of the first
    # layer's weights), whatever the loss: check it by central differences.
    rng = np.random.default_rng(9)
    spec = random_spec(rng, "tanh", "mse", None, update=False)
    d = rng.uniform(-1, 1, len(spec["target"]))
    r = calculate(with_given(spec, {"layers[1].delta": d.tolist()}))

    def surrogate(W0: np.ndarray) -> float:
        s = copy.deepcopy(spec)
        s["network"]["layers"][0]["weights"] = W0.tolist()
        return float(d @ np.asarray(calculate(s)["layers"][1]["z"]))

    W0 = np.asarray(spec["network"]["layers"][0]["weights"])
    h = 1e-6
    for i, j in itertools.product(*map(range, W0.shape)):
        e = np.zeros_like(W0)
        e[i, j] = h
        fd = (surrogate(W0 + e) - surrogate(W0 - e)) / (2 * h)
        assert r["layers"][0]["dW"][i][j] == pytest.approx(fd, rel=1e-6, abs=1e-9)


# -- optimizers: the state after step k, carried to later steps

def opt_steps(spec: dict) -> list[dict]:
    return calculate(spec)["steps"]


def test_given_velocity_carries_to_the_params_and_the_next_velocity():
    # sgd lr 0.1, momentum 0.5, w0 = (1, 2), g = (1, 1) twice. Given v1 = (-0.2, -0.1):
    # w1 = w0 + v1 = (0.8, 1.9); v2 = 0.5 v1 - 0.1 g = (-0.2, -0.15); w2 = (0.6, 1.75)
    r = opt_steps({"optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5}, "params": [1.0, 2.0],
                   "gradients": [[1.0, 1.0], [1.0, 1.0]], "given": {"steps[0].velocity": [-0.2, -0.1]}})
    np.testing.assert_allclose([s["params"] for s in r], [[0.8, 1.9], [0.6, 1.75]], rtol=1e-15)
    np.testing.assert_allclose(r[1]["velocity"], [-0.2, -0.15], rtol=1e-15)


def test_given_params_move_the_next_gradient_of_an_objective():
    # f = w^2 (A = 2): g1 = 2 w0 = 2, w1 = 0.8; given w1 = 0.5: g2 = 1, w2 = 0.5 - 0.1 = 0.4
    r = opt_steps({"optimizer": {"name": "sgd", "learning_rate": 0.1}, "params": 1.0,
                   "objective": {"quadratic": {"A": [[2.0]]}}, "steps": 2, "given": {"steps[0].params": 0.5}})
    assert [s["gradient"] for s in r] == [2.0, 1.0] and r[1]["params"] == pytest.approx(0.4, abs=1e-15)


def test_given_gradient_is_the_one_used():
    # w1 = 1 - 0.1 * 3 = 0.7 with the given gradient 3 in place of 1
    r = opt_steps({"optimizer": {"name": "sgd", "learning_rate": 0.1}, "params": 1.0, "gradients": [1.0],
                   "given": {"steps[0].gradient": 3.0}})
    assert r[0]["gradient"] == 3.0 and r[0]["params"] == pytest.approx(0.7, abs=1e-15)


def test_given_adam_moments():
    # adam lr 0.1, eps 0, g = 2 twice. Step 1: m = 0.2 (m_hat = 2); v = 0.004 but 0.016 is given:
    # v_hat = 0.016 / 0.001 = 16, w1 = 1 - 0.1 * 2 / 4 = 0.95.
    # Step 2: m = 0.38, m_hat = 0.38 / 0.19 = 2; v = 0.999 * 0.016 + 0.001 * 4 = 0.019984,
    # v_hat = 0.019984 / (1 - 0.999^2); w2 = 0.95 - 0.1 * 2 / sqrt(v_hat)
    r = opt_steps({"optimizer": {"name": "adam", "learning_rate": 0.1, "epsilon": 0.0}, "params": 1.0,
                   "gradients": [2.0, 2.0], "given": {"steps[0].second_moment": 0.016}})
    assert r[0]["params"] == pytest.approx(0.95, abs=1e-15)
    assert r[1]["second_moment"] == pytest.approx(0.019984, abs=1e-15)
    assert r[1]["params"] == pytest.approx(0.95 - 0.2 / np.sqrt(0.019984 / (1 - 0.999**2)), abs=1e-14)


# -- errors name the key and suggest the closest path

@pytest.mark.parametrize("given,message", [
    ({"layers[0].zz": [1.0]}, r"given: 'layers\[0\].zz' is not a quantity of this task; did you mean 'layers\[0\].z'\?"),
    ({"layers[5].a": [1.0]}, r"did you mean 'layers\[1\].a'\?.*for i from 0 to 1"),
    ({"layers[0].a[3]": 1.0}, r"index \[3\] is out of range \(layers\[0\].a has shape \(1,\)"),
    ({"layers[0].a": [1.0, 2.0]}, r"given.layers\[0\].a: shape \(2,\) does not match layers\[0\].a\[...\], shape \(1,\)"),
    ({"layers[0].dW[0][0][0]": 1.0}, r"has 3 indices, but layers\[0\].dW has shape \(1, 1\)"),
    ({"layers[0].a": "x"}, r"given.layers\[0\].a: expected a number, got the string 'x'"),
    ({"steps[0].velocity": 1.0}, r"not a quantity of this task.*output, loss"),
])
def test_bad_network_given_is_a_clear_error(given, message):
    spec = with_given(CHAIN, given)
    with pytest.raises(SpecError, match=message):
        parse(spec)


def test_given_W_new_needs_an_update():
    spec = with_given({k: v for k, v in CHAIN.items() if k != "update"}, {"layers[0].W_new": [[1.0]]})
    with pytest.raises(SpecError, match=r"'layers\[0\].W_new' needs an 'update'"):
        parse(spec)


@pytest.mark.parametrize("given,message", [
    ({"steps[2].params": 1.0}, r"did you mean 'steps\[1\].params'\?.*for k from 0 to 1"),
    ({"steps[0].second_moment": 1.0}, r"'steps\[0\].second_moment' is only kept by adam"),
    ({"steps[0].velocity": [1.0]}, r"given.steps\[0\].velocity: expected a number, got shape \(1,\)"),
    ([1.0], r"given: expected a mapping"),
])
def test_bad_optimizer_given_is_a_clear_error(given, message):
    spec = {"optimizer": {"name": "sgd", "learning_rate": 0.1}, "params": 1.0, "gradients": [1.0, 1.0], "given": given}
    with pytest.raises(SpecError, match=message):
        parse(spec)
