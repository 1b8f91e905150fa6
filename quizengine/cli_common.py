"""What the modules of the ``quizengine`` command share (cli.py, cli_lti.py): the error exit and the app."""

from __future__ import annotations

import sys
from typing import NoReturn

import click


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_app():  # type: ignore[no-untyped-def]
    """The Flask app with the settings of the environment; a setting that is not valid exits 2."""
    from . import create_app

    try:
        return create_app()
    except ValueError as e:  # a QUIZENGINE_* setting that is not valid
        fail(str(e))
