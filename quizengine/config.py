"""Settings from QUIZENGINE_* environment variables, with defaults."""

from __future__ import annotations

import os
from pathlib import Path


def banks_path() -> Path:
    """The banks folder: QUIZENGINE_BANKS, or banks/ in the working directory."""
    return Path(os.environ.get("QUIZENGINE_BANKS", "banks"))
