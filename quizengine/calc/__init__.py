"""The forward/backward calculator behind every numeric answer (pure NumPy, float64)."""

from .engine import calculate, run_task
from .spec import SpecError, Task, load_text, parse

__all__ = ["calculate", "run_task", "SpecError", "Task", "load_text", "parse"]
