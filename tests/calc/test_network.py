"""The network task: published example, an independent autograd oracle, finite differences."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest

from quizengine.calc import calculate

from . import reference
from .netgen import ACTIVATIONS, LOSSES, random_spec

MAZUR = {
    "network": {
        "layers": [
            {"weights": [[0.15, 0.25], [0.20, 0.30]], "bias": [0.35, 0.35], "activation": "sigmoid"},
            {"weights": [[0.40, 0.50], [0.45, 0.55]], "bias": [0.60, 0.60], "activation": "sigmoid"},
        ],
        "loss": "half_sse",
    },
    "input": [0.05, 0.10],
    "target": [0.01, 0.99],
    "update": {"learning_rate": 0.5},
}

CASES = list(itertools.product(ACTIVATIONS, LOSSES, [None, 3]))
CASE_IDS = [f"{a}-{l}-{'single' if b is None else 'batch'}" for a, l, b in CASES]


def assert_close(actual, expected, rtol=1e-9, atol=1e-12, where=""):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, err_msg=where)


# -- the published worked example (Matt Mazur, "A Step by Step Backpropagation Example")

def test_mazur_total_error_and_updates():
    r = calculate(MAZUR)
    assert r["loss"] == pytest.approx(0.298371109, abs=5e-10)
    # Mazur's w5 connects h1 to o1: W[0][0] of layer 1; w1 connects i1 to h1: W[0][0] of layer 0.
    assert r["layers"][1]["W_new"][0][0] == pytest.approx(0.35891648, abs=5e-9)
    assert r["layers"][0]["W_new"][0][0] == pytest.approx(0.149780716, abs=5e-10)
    # His other published updates: w6, w7, w8 and w2, w3, w4.
    assert np.asarray(r["layers"][1]["W_new"]).T.ravel() == pytest.approx(
        [0.35891648, 0.408666186, 0.511301270, 0.561370121], abs=5e-9)
    assert np.asarray(r["layers"][0]["W_new"]).T.ravel() == pytest.approx(
        [0.149780716, 0.19956143, 0.24975114, 0.29950229], abs=5e-9)
    assert r["output"] == pytest.approx([0.75136507, 0.772928465], abs=5e-9)


# -- agreement with an independent scalar autograd, every activation x loss x single/batch

@pytest.mark.parametrize("act,loss,batch", CASES, ids=CASE_IDS)
def test_agrees_with_reference_autograd(act, loss, batch):
    rng = np.random.default_rng(len(act) * 100 + len(loss) * 7 + (batch or 0))
    for _ in range(4):
        spec = random_spec(rng, act, loss, batch, sizes=(3, 4, 3, 2))
        ours, ref = calculate(spec), reference.network(spec)
        assert_close(ours["loss"], ref["loss"], where="loss")
        assert_close(ours["output"], ref["output"], where="output")
        for k, (lo, lr) in enumerate(zip(ours["layers"], ref["layers"])):
            assert set(lo) == set(lr)
            for key in lr:
                assert_close(lo[key], lr[key], where=f"layer {k} {key}")


# -- centered finite differences of the loss (relative error < 1e-6)

def loss_at(spec: dict) -> float:
    return calculate(spec)["loss"]


def fd(spec: dict, layer: int, key: str, index: tuple[int, ...], h: float = 1e-3) -> float:
    """Return the five-point centered difference of the loss along one parameter."""

    def shifted(t: float) -> float:
        s = copy.deepcopy(spec)
        target = s["network"]["layers"][layer][key]
        for i in index[:-1]:
            target = target[i]
        target[index[-1]] += t
        return loss_at(s)

    # Error O(h^4) from truncation and ~1e-16/h from rounding: far below 1e-6 relative.
    return (-shifted(2 * h) + 8 * shifted(h) - 8 * shifted(-h) + shifted(-2 * h)) / (12 * h)


def smooth_spec(rng: np.random.Generator, act: str, loss: str, batch: int | None) -> dict:
    """Draw a spec whose pre-activations all stay 0.02 away from relu/leaky_relu's kink.

    A finite difference across a kink measures neither one-sided derivative.
    """
    while True:
        spec = random_spec(rng, act, loss, batch, update=False)
        zs = [np.abs(np.asarray(l["z"])).min() for l in calculate(spec)["layers"]]
        if act not in ("relu", "leaky_relu") or min(zs) > 0.02:
            return spec


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-7)


@pytest.mark.parametrize("act,loss,batch", CASES, ids=CASE_IDS)
def test_gradients_match_finite_differences(act, loss, batch):
    rng = np.random.default_rng(7 + len(act) * 13 + len(loss) + (batch or 0))
    spec = smooth_spec(rng, act, loss, batch)
    r = calculate(spec)
    for k, layer in enumerate(spec["network"]["layers"]):
        W = np.asarray(layer["weights"])
        for i, j in itertools.product(range(W.shape[0]), range(W.shape[1])):
            assert rel_err(r["layers"][k]["dW"][i][j], fd(spec, k, "weights", (i, j))) < 1e-6, (k, i, j)
        for j in range(W.shape[1]):
            assert rel_err(r["layers"][k]["db"][j], fd(spec, k, "bias", (j,))) < 1e-6, (k, j)


@pytest.mark.parametrize("act,loss", list(itertools.product(ACTIVATIONS, LOSSES)))
def test_delta_per_example_matches_finite_differences(act, loss):
    # delta[e] of a batch of B is dL/dz for example e; L is a mean over the batch, so it equals
    # dL_e/db of the one-example spec (where z moves with b) divided by B.
    rng = np.random.default_rng(11 + len(act) + len(loss))
    B = 3
    spec = smooth_spec(rng, act, loss, B)
    r = calculate(spec)
    for e in range(B):
        one = copy.deepcopy(spec)
        one["input"], one["target"] = spec["input"][e], spec["target"][e]
        for k, layer in enumerate(spec["network"]["layers"]):
            for j in range(len(layer["bias"])):
                assert rel_err(r["layers"][k]["delta"][e][j] * B, fd(one, k, "bias", (j,))) < 1e-6


# -- batch semantics and the update

def test_batch_loss_and_gradients_are_means_of_single_examples():
    rng = np.random.default_rng(3)
    spec = random_spec(rng, "tanh", "mse", 4)
    batch = calculate(spec)
    singles = []
    for x, y in zip(spec["input"], spec["target"]):
        s = copy.deepcopy(spec)
        s["input"], s["target"] = x, y
        singles.append(calculate(s))
    assert batch["loss"] == pytest.approx(np.mean([s["loss"] for s in singles]), rel=1e-12)
    for k in range(2):
        assert_close(batch["layers"][k]["dW"], np.mean([s["layers"][k]["dW"] for s in singles], axis=0))
        assert_close(batch["layers"][k]["db"], np.mean([s["layers"][k]["db"] for s in singles], axis=0))
        assert np.shape(batch["layers"][k]["delta"]) == (4, len(spec["network"]["layers"][k]["bias"]))


def test_update_is_plain_gradient_step_and_only_reported_when_asked():
    spec = copy.deepcopy(MAZUR)
    r = calculate(spec)
    for k, layer in enumerate(spec["network"]["layers"]):
        assert_close(r["layers"][k]["W_new"], np.asarray(layer["weights"]) - 0.5 * np.asarray(r["layers"][k]["dW"]))
        assert_close(r["layers"][k]["b_new"], np.asarray(layer["bias"]) - 0.5 * np.asarray(r["layers"][k]["db"]))
    del spec["update"]
    assert all("W_new" not in l and "b_new" not in l for l in calculate(spec)["layers"])


def test_single_example_results_are_one_dimensional():
    r = calculate(MAZUR)
    assert np.ndim(r["output"]) == 1 and np.ndim(r["layers"][0]["delta"]) == 1
    assert np.shape(r["layers"][0]["dW"]) == (2, 2)


def test_softmax_output_with_cross_entropy_gives_a_minus_y():
    # The textbook identity: softmax + categorical cross-entropy has delta = a - y.
    rng = np.random.default_rng(5)
    spec = random_spec(rng, "softmax", "categorical_crossentropy", None, update=False)
    r = calculate(spec)
    out = r["layers"][-1]
    assert_close(out["delta"], np.asarray(out["a"]) - np.asarray(spec["target"]), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_extreme_pre_activations_stay_finite(act):
    # |z| up to 500 must not overflow (pytest turns any RuntimeWarning into an error).
    spec = {"network": {"layers": [{"weights": [[500.0, -500.0, 1.0]], "bias": [0.0, 0.0, 0.0], "activation": act}],
                        "loss": "mse"}, "input": [1.0], "target": [0.0, 0.0, 0.0]}
    r = calculate(spec)
    values = np.concatenate([np.ravel(r["output"]), np.ravel(r["layers"][0]["dW"])])
    assert np.all(np.isfinite(values))
