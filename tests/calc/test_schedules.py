"""Learning-rate schedules, iterations per epoch and initializer scales, from the published formulas."""

from __future__ import annotations

import math

import pytest

from quizengine.calc import SpecError, calculate, parse
from quizengine.calc.report import render


def rates(schedule: dict, epochs) -> list[float]:
    return calculate({"schedule": schedule, "epochs": epochs})["learning_rates"]


@pytest.mark.parametrize("schedule,epochs,expected", [
    # StepLR: lr * gamma^floor(epoch / step_size); 0.1 halves at epochs 10, 20, ...
    ({"name": "step_decay", "learning_rate": 0.1, "step_size": 10, "gamma": 0.5}, [0, 9, 10, 25], [0.1, 0.1, 0.05, 0.025]),
    # gamma defaults to torch's 0.1
    ({"name": "step_decay", "learning_rate": 1.0, "step_size": 3}, [2, 3, 6], [1.0, 0.1, 0.01]),
    # ExponentialDecay: 0.1 * 0.5^(2 / 4) = 0.1 / sqrt(2)
    ({"name": "exponential_decay", "learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 4}, [0, 2, 8],
     [0.1, 0.1 / math.sqrt(2), 0.025]),
    # staircase: floor(3 / 4) = 0, floor(4 / 4) = 1, floor(9 / 4) = 2
    ({"name": "exponential_decay", "learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 4, "staircase": True},
     [3, 4, 9], [0.1, 0.05, 0.025]),
    # ExponentialLR is decay_steps = 1: 0.2 * 0.9^3 = 0.1458
    ({"name": "exponential_decay", "learning_rate": 0.2, "decay_rate": 0.9}, [3], [0.1458]),
    # CosineAnnealingLR: 0.01 + 0.09 (1 + cos(pi e / 10)) / 2: e = 0 -> 0.1, 5 -> 0.055, 10 -> 0.01,
    # e = 20 -> back at 0.1 (the closed form is periodic)
    ({"name": "cosine_annealing", "learning_rate": 0.1, "T_max": 10, "eta_min": 0.01}, [0, 5, 10, 20],
     [0.1, 0.055, 0.01, 0.1]),
    # eta_min defaults to 0: at T_max / 3, (1 + cos(pi/3)) / 2 = 0.75
    ({"name": "cosine_annealing", "learning_rate": 0.4, "T_max": 3}, [1], [0.3]),
])
def test_schedules_by_hand(schedule, epochs, expected):
    assert rates(schedule, epochs) == pytest.approx(expected, rel=1e-14, abs=1e-17)


def test_schedule_table():
    table = render(parse({"schedule": {"name": "step_decay", "learning_rate": 0.1, "step_size": 10, "gamma": 0.5},
                          "epochs": [25]}))
    assert "lr * gamma^floor(epoch / step_size)" in table and "0.025" in table


@pytest.mark.parametrize("spec,message", [
    ({"schedule": {"name": "step_dcay", "learning_rate": 0.1}, "epochs": [1]}, r"did you mean 'step_decay'"),
    ({"schedule": {"name": "step_decay", "learning_rate": 0.1}, "epochs": [1]}, r"schedule: missing key 'step_size'"),
    ({"schedule": {"name": "step_decay", "learning_rate": 0.1, "step_size": 0}, "epochs": [1]},
     r"schedule\.step_size: must be more than 0"),
    ({"schedule": {"name": "cosine_annealing", "learning_rate": 0.1, "T_max": 5, "gamma": 1}, "epochs": [1]},
     r"schedule: unknown key 'gamma'"),
    ({"schedule": {"name": "step_decay", "learning_rate": 0.1, "step_size": 2}, "epochs": [1.5]},
     r"epochs\[0\]: expected a whole number >= 0"),
    ({"schedule": {"name": "step_decay", "learning_rate": 0.1, "step_size": 2}}, r"spec: missing key 'epochs'"),
])
def test_bad_schedules(spec, message):
    with pytest.raises(SpecError, match=message):
        parse(spec)


@pytest.mark.parametrize("it,expected", [
    # ceil(1000 / 32) = 32 updates, the last batch 1000 - 31 * 32 = 8 samples
    ({"samples": 1000, "batch_size": 32, "epochs": 10}, {"per_epoch": 32, "total": 320, "last_batch": 8}),
    # dropping the partial batch: floor(1000 / 32) = 31
    ({"samples": 1000, "batch_size": 32, "drop_last": True}, {"per_epoch": 31, "total": 31, "last_batch": 32}),
    # an exact fit: 960 / 32 = 30
    ({"samples": 960, "batch_size": 32}, {"per_epoch": 30, "total": 30, "last_batch": 32}),
    # batch size 1 (per-example updates): 50 per epoch
    ({"samples": 50, "batch_size": 1, "epochs": 2}, {"per_epoch": 50, "total": 100, "last_batch": 1}),
    # a batch larger than the data set: one update of all 50
    ({"samples": 50, "batch_size": 64}, {"per_epoch": 1, "total": 1, "last_batch": 50}),
])
def test_iterations_per_epoch(it, expected):
    assert calculate({"iterations": it}) == expected


@pytest.mark.parametrize("init,expected", [
    # Glorot uniform: sqrt(6 / (4 + 2)) = 1; variance 1/3
    ({"name": "glorot_uniform", "fan_in": 4, "fan_out": 2}, {"limit": 1.0, "variance": 1 / 3, "std": math.sqrt(1 / 3)}),
    # He uniform: sqrt(6 / 6) = 1
    ({"name": "he_uniform", "fan_in": 6}, {"limit": 1.0, "variance": 1 / 3, "std": math.sqrt(1 / 3)}),
    # LeCun uniform: sqrt(3 / 12) = 0.5
    ({"name": "lecun_uniform", "fan_in": 12}, {"limit": 0.5, "variance": 1 / 12, "std": math.sqrt(1 / 12)}),
    # Glorot normal: variance 2 / (3 + 5) = 0.25, std 0.5; Keras truncated normal: 0.5 / 0.87962566103423978
    ({"name": "glorot_normal", "fan_in": 3, "fan_out": 5},
     {"std": 0.5, "variance": 0.25, "truncated_std": 0.5 / 0.87962566103423978}),
    # He normal: variance 2 / 8 = 0.25
    ({"name": "he_normal", "fan_in": 8, "fan_out": 100},
     {"std": 0.5, "variance": 0.25, "truncated_std": 0.5 / 0.87962566103423978}),
    # LeCun normal: variance 1 / 16, std 0.25
    ({"name": "lecun_normal", "fan_in": 16}, {"std": 0.25, "variance": 1 / 16, "truncated_std": 0.25 / 0.87962566103423978}),
])
def test_initializer_scales(init, expected):
    got = calculate({"initializer": init})
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-15), key


@pytest.mark.parametrize("init,message", [
    ({"name": "glorot_uniform", "fan_in": 4}, r"initializer: missing key 'fan_out'"),
    ({"name": "xavier_uniform", "fan_in": 4}, r"unknown initializer 'xavier_uniform'"),
    ({"name": "he_normal", "fan_in": 0}, r"initializer\.fan_in: expected a positive whole number"),
    ("he_normal", r"initializer: expected a mapping"),
])
def test_bad_initializers(init, message):
    with pytest.raises(SpecError, match=message):
        parse({"initializer": init})
