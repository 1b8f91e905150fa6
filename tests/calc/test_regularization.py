"""Weight decay, L1 and dropout against hand-computed numbers and finite differences."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest

from quizengine.calc import SpecError, calculate, parse
from quizengine.calc.report import render

from .netgen import random_spec


def params(optimizer: dict, w, grads) -> list:
    return [s["params"] for s in calculate({"optimizer": optimizer, "params": w, "gradients": grads})["steps"]]


# -- optimizers: coupled L2 (torch.optim.SGD/Adam weight_decay), L1 subgradient, decoupled AdamW

@pytest.mark.parametrize("optimizer,w0,grads,expected", [
    # sgd, weight decay 0.5: g = 1 + 0.5 * 2 = 2, w1 = 2 - 0.1 * 2 = 1.8
    ({"name": "sgd", "learning_rate": 0.1, "weight_decay": 0.5}, 2.0, [1.0], [1.8]),
    # with momentum 0.9: v1 = -0.2, w1 = 1.8; g2 = 1 + 0.5 * 1.8 = 1.9, v2 = -0.18 - 0.19 = -0.37, w2 = 1.43
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.5}, 2.0, [1.0, 1.0], [1.8, 1.43]),
    # L1 0.5 with a zero gradient: g = 0.5 sign(w) = (0.5, -0.5, 0), w1 = (1.95, -0.95, 0)
    ({"name": "sgd", "learning_rate": 0.1, "l1": 0.5}, [2.0, -1.0, 0.0], [[0.0, 0.0, 0.0]], [[1.95, -0.95, 0.0]]),
    # both: g = 1 + 0.5 * 2 + 0.1 * 1 = 2.1, w1 = 2 - 0.21 = 1.79
    ({"name": "sgd", "learning_rate": 0.1, "weight_decay": 0.5, "l1": 0.1}, 2.0, [1.0], [1.79]),
    # adam, coupled decay 1: g = 1 + 1 = 2, m = 0.2, v = 0.004, m_hat = 2, v_hat = 4, w1 = 1 - 0.1 = 0.9
    ({"name": "adam", "learning_rate": 0.1, "epsilon": 0.0, "weight_decay": 1.0}, 1.0, [1.0], [0.9]),
    # adamw, decoupled decay 0.5: w <- 2 (1 - 0.05) = 1.9, then m_hat = 1, v_hat = 1: w1 = 1.9 - 0.1 = 1.8
    ({"name": "adamw", "learning_rate": 0.1, "epsilon": 0.0, "weight_decay": 0.5}, 2.0, [1.0], [1.8]),
    # adamw's default weight_decay is torch's 0.01: w1 = 1 (1 - 0.001) - 0.1 = 0.899
    ({"name": "adamw", "learning_rate": 0.1, "epsilon": 0.0}, 1.0, [1.0], [0.899]),
    # rmsprop, decay 1: g = 1 + 1 = 2, s = 0.1 * 4 = 0.4, w1 = 1 - 0.1 * 2 / sqrt(0.4) = 1 - sqrt(0.1)
    ({"name": "rmsprop", "learning_rate": 0.1, "epsilon": 0.0, "weight_decay": 1.0}, 1.0, [1.0], [1 - 0.1**0.5]),
])
def test_penalized_updates_by_hand(optimizer, w0, grads, expected):
    np.testing.assert_allclose(params(optimizer, w0, grads), expected, rtol=1e-14, atol=1e-15)


def test_the_reported_gradient_is_the_loss_gradient_and_the_rule_shows_the_penalty():
    spec = {"optimizer": {"name": "sgd", "learning_rate": 0.1, "weight_decay": 0.5, "l1": 0.1}, "params": 2.0,
            "gradients": [1.0]}
    assert calculate(spec)["steps"][0]["gradient"] == 1.0
    table = render(parse(spec))
    assert "weight_decay=0.5, l1=0.1" in table and "g <- g + 0.5*w + 0.1*sign(w)" in table


@pytest.mark.parametrize("optimizer,message", [
    ({"name": "sgd", "learning_rate": 0.1, "weight_decay": -1}, r"optimizer\.weight_decay: must be 0 or more"),
    ({"name": "adamw", "learning_rate": 0.1, "momentum": 0.9}, r"optimizer: unknown key 'momentum'"),
])
def test_bad_penalties(optimizer, message):
    with pytest.raises(SpecError, match=message):
        parse({"optimizer": optimizer, "params": 1.0, "gradients": [1.0]})


# -- the network update

# x = 1 -> linear W0 = (1, 2), dropout 0.5 with mask (1, 0) -> linear W1 = (1, 1)^T -> half_sse, y = 0.
# z0 = (1, 2), a0 = (1, 2) * (1, 0) / 0.5 = (2, 0); z1 = a1 = 2, L = 2; delta1 = 2, dW1 = a0^T 2 = (4, 0)^T;
# dL/da0 = (2, 2), through the mask: (4, 0) = delta0 (linear), dW0 = (4, 0).
DROP = {"network": {"layers": [
    {"weights": [[1.0, 2.0]], "bias": [0.0, 0.0], "activation": "linear", "dropout": {"rate": 0.5, "mask": [1, 0]}},
    {"weights": [[1.0], [1.0]], "bias": [0.0], "activation": "linear"}], "loss": "half_sse"},
    "input": [1.0], "target": [0.0]}


def test_dropout_in_training_by_hand():
    r = calculate(DROP)
    assert r["layers"][0]["z"] == [1.0, 2.0] and r["layers"][0]["a"] == [2.0, 0.0]
    assert r["loss"] == 2.0 and r["layers"][1]["dW"] == [[4.0], [0.0]]
    assert r["layers"][0]["delta"] == [4.0, 0.0] and r["layers"][0]["dW"] == [[4.0, 0.0]]


def test_dropout_at_inference_is_the_identity():
    spec = copy.deepcopy(DROP)
    spec["network"]["layers"][0]["dropout"] = {"rate": 0.5, "training": False}
    # a0 = z0 = (1, 2), z1 = 3, L = 4.5, delta0 = (3, 3)
    r = calculate(spec)
    assert r["layers"][0]["a"] == [1.0, 2.0] and r["loss"] == 4.5 and r["layers"][0]["delta"] == [3.0, 3.0]


def test_weight_decay_and_l1_in_the_network_update_touch_the_weights_only():
    # DROP with lr 0.1, decay 0.5, l1 0.1: W0_new = W0 - 0.1 (dW0 + 0.5 W0 + 0.1 sign(W0))
    # = (1 - 0.1 * 4.6, 2 - 0.1 * 1.1) = (0.54, 1.89); W1_new = (1 - 0.46, 1 - 0.06) = (0.54, 0.94);
    # b_new = b - 0.1 db as without penalties: b1 = 0 - 0.2
    spec = {**copy.deepcopy(DROP), "update": {"learning_rate": 0.1, "weight_decay": 0.5, "l1": 0.1}}
    r = calculate(spec)
    np.testing.assert_allclose(r["layers"][0]["W_new"], [[0.54, 1.89]], rtol=1e-14)
    np.testing.assert_allclose(r["layers"][1]["W_new"], [[0.54], [0.94]], rtol=1e-14)
    assert r["layers"][1]["b_new"] == [pytest.approx(-0.2)]
    assert "W_new = W - 0.1 (dW + 0.5 W + 0.1 sign(W))" in render(parse(spec))


def test_a_batch_shares_one_mask_or_takes_one_per_example():
    # two examples x = 1 and x = 2 through one linear unit W = 1 with mask (1) and (0), rate 0.5:
    # a = (2, 0); half_sse y = 0, mean over 2: delta = a / 2 * 2 (the mask scale) = (2, 0)
    spec = {"network": {"layers": [{"weights": [[1.0]], "bias": [0.0], "activation": "linear",
                                    "dropout": {"rate": 0.5, "mask": [[1], [0]]}}], "loss": "half_sse"},
            "input": [[1.0], [2.0]], "target": [[0.0], [0.0]]}
    r = calculate(spec)
    assert r["layers"][0]["a"] == [[2.0], [0.0]] and r["layers"][0]["delta"] == [[2.0], [0.0]]
    spec["network"]["layers"][0]["dropout"]["mask"] = [1]  # both kept: a = (2, 4)
    assert calculate(spec)["layers"][0]["a"] == [[2.0], [4.0]]


@pytest.mark.parametrize("dropout,message", [
    ({"rate": 1.0, "mask": [1, 0]}, r"dropout\.rate: the share of units dropped must be in \[0, 1\)"),
    ({"rate": 0.5}, r"dropout: missing key 'mask'"),
    ({"rate": 0.5, "mask": [1, 0, 1]}, r"dropout\.mask: shape \(3,\) does not match the layer's output; needs \(2,\)"),
    ({"rate": 0.5, "mask": [1, 0.5]}, r"dropout\.mask: entries must be 0 \(dropped\) or 1 \(kept\)"),
    ({"rate": 0.5, "mask": [1, 0], "training": "yes"}, r"dropout\.training: expected true or false"),
    ({"rate": 0.5, "mask": [1, 0], "seed": 1}, r"dropout: unknown key 'seed'"),
])
def test_bad_dropout(dropout, message):
    spec = copy.deepcopy(DROP)
    spec["network"]["layers"][0]["dropout"] = dropout
    with pytest.raises(SpecError, match=r"network\.layers\[0\]\." + message if "missing" not in message else message):
        parse(spec)


@pytest.mark.parametrize("act,batch", list(itertools.product(["sigmoid", "tanh", "softmax", "elu"], [None, 3])))
def test_dropout_gradients_match_finite_differences(act, batch):
    rng = np.random.default_rng(len(act) + (batch or 0))
    spec = random_spec(rng, act, "mse", batch, update=False)
    shape = (4,) if batch is None else (batch, 4)
    spec["network"]["layers"][0]["dropout"] = {"rate": 0.25, "mask": rng.integers(0, 2, shape).tolist()}
    r = calculate(spec)
    W = np.asarray(spec["network"]["layers"][0]["weights"])

    def loss(Wx):
        s = copy.deepcopy(spec)
        s["network"]["layers"][0]["weights"] = Wx.tolist()
        return calculate(s)["loss"]

    h = 1e-6
    for i, j in itertools.product(*map(range, W.shape)):
        e = np.zeros_like(W)
        e[i, j] = h
        fd = (loss(W + e) - loss(W - e)) / (2 * h)
        assert r["layers"][0]["dW"][i][j] == pytest.approx(fd, rel=1e-5, abs=1e-9), (i, j)
