"""Parse the schedule, iterations and initializer tasks (extensions; format: docs/calculator.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .checks import SpecError, as_mapping, as_number, as_positive_int, check_keys, kind_of, suggest
from .schedules import INITIALIZERS, SCHEDULES, ScheduleConfig


@dataclass(frozen=True)
class ScheduleTask:
    """The learning rate of a schedule at the given epochs (or steps)."""

    config: ScheduleConfig
    epochs: tuple[int, ...]


@dataclass(frozen=True)
class IterationsTask:
    """Updates per epoch for a data set and a batch size."""

    samples: int
    batch_size: int
    epochs: int = 1
    drop_last: bool = False


@dataclass(frozen=True)
class InitializerTask:
    """The limit or standard deviation a weight initializer draws with."""

    name: str
    fan_in: int
    fan_out: int | None


EXTRA_TASK_KEYS = {
    "schedule": ("schedule", "epochs"),
    "iterations": ("iterations",),
    "initializer": ("initializer",),
}


def _bool(obj: dict, key: str, where: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _whole(value: Any, where: str) -> int:
    """A whole number >= 0 (an epoch may be 0)."""
    x = as_number(value, where)
    if x != int(x) or x < 0 or isinstance(value, bool):
        raise SpecError(f"{where}: expected a whole number >= 0, got {value!r}")
    return int(x)


def _name(obj: dict, where: str, valid: dict) -> str:
    if "name" not in obj:
        raise SpecError(f"{where}: missing key 'name'")
    name = obj["name"]
    if not isinstance(name, str) or name not in valid:
        raise SpecError(f"{where}.name: unknown {where} {name!r}{suggest(name, list(valid))}")
    return name


def schedule_task(spec: dict) -> ScheduleTask:
    check_keys(spec, "spec", EXTRA_TASK_KEYS["schedule"], required=("schedule", "epochs"))
    s = as_mapping(spec["schedule"], "schedule")
    name = _name(s, "schedule", SCHEDULES)
    sched = SCHEDULES[name]
    check_keys(s, "schedule", ("name",) + sched.keys, required=("name",) + sched.required)
    kwargs: dict[str, Any] = {}
    for key in sched.keys:
        if key == "staircase":
            kwargs[key] = _bool(s, key, "schedule", False)
        elif key in s:
            kwargs[key] = as_number(s[key], f"schedule.{key}")
            if key in ("step_size", "decay_steps", "T_max") and kwargs[key] <= 0:
                raise SpecError(f"schedule.{key}: must be more than 0, got {s[key]!r}")
    raw = spec["epochs"]
    raw = raw if isinstance(raw, list) else [raw]
    if not raw:
        raise SpecError("epochs: is empty; give the epochs (or steps) to compute the rate at")
    return ScheduleTask(ScheduleConfig(name=name, **kwargs), tuple(_whole(e, f"epochs[{i}]") for i, e in enumerate(raw)))


def iterations_task(spec: dict) -> IterationsTask:
    check_keys(spec, "spec", EXTRA_TASK_KEYS["iterations"])
    it = as_mapping(spec["iterations"], "iterations")
    check_keys(it, "iterations", ("samples", "batch_size", "epochs", "drop_last"), required=("samples", "batch_size"))
    return IterationsTask(as_positive_int(it["samples"], "iterations.samples"),
                          as_positive_int(it["batch_size"], "iterations.batch_size"),
                          as_positive_int(it.get("epochs", 1), "iterations.epochs"),
                          _bool(it, "drop_last", "iterations", False))


def initializer_task(spec: dict) -> InitializerTask:
    check_keys(spec, "spec", EXTRA_TASK_KEYS["initializer"])
    raw = spec["initializer"]
    if not isinstance(raw, dict):
        raise SpecError(f"initializer: expected a mapping with name, fan_in and fan_out, got {kind_of(raw)}")
    name = _name(raw, "initializer", INITIALIZERS)
    glorot = INITIALIZERS[name].fan == "avg"
    check_keys(raw, "initializer", ("name", "fan_in", "fan_out"),
               required=("name", "fan_in") + (("fan_out",) if glorot else ()))
    fan_out = as_positive_int(raw["fan_out"], "initializer.fan_out") if "fan_out" in raw else None
    return InitializerTask(name, as_positive_int(raw["fan_in"], "initializer.fan_in"), fan_out)
