"""``dataclasses.replace`` for the calculator's small frozen records, without its walk over the fields
on every call (the validator replaces a layer or a task tens of thousands of times per run)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")
_INIT: dict[type, tuple[str, ...]] = {}  # dataclass -> the names its __init__ takes


def replace(obj: T, **changes: Any) -> T:
    """A new ``obj`` with ``changes``, as ``dataclasses.replace`` makes it (for dataclasses without
    InitVar fields, as every record of the calculator is)."""
    cls = type(obj)
    names = _INIT.get(cls)
    if names is None:
        names = _INIT[cls] = tuple(f.name for f in fields(cls) if f.init)  # type: ignore[arg-type]
    for name in names:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return cls(**changes)
