"""The ``quizengine`` command: thin click commands calling the package's services."""

from __future__ import annotations

import json
import sys

import click
import numpy as np

from . import __version__
from .calc import SpecError, load_text, parse, run_task
from .calc.report import render


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="quizengine")
def main() -> None:
    """quizengine: quizzes on neural networks, answers computed by a NumPy calculator.

    \b
    Examples:
      quizengine calc examples/mazur.yaml          worked table, layer by layer
      quizengine calc examples/mazur.yaml --json   the same as one JSON object
      echo '{"activation": "tanh", "z": [0.5]}' | quizengine calc -
    """


@main.command()
@click.argument("spec", metavar="SPEC")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def calc(spec: str, as_json: bool) -> None:
    """Compute a network, optimizer, activation or keras task from SPEC.

    SPEC is a YAML or JSON file, or - for standard input (format: CONTRACT section 1,
    and the extra `keras` parameter-count task). Without --json, print the worked table:
    every intermediate value, to 6 significant digits. Exit 2 on a bad spec.
    """
    try:
        if spec == "-":
            text, name = sys.stdin.read(), "<stdin>"
        else:
            with open(spec, encoding="utf-8") as fh:
                text, name = fh.read(), spec
    except OSError as e:
        fail(f"cannot read {spec}: {e.strerror}")
    except UnicodeDecodeError:
        fail(f"{spec}: not UTF-8 text")
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            task = parse(load_text(text, name))
            out = json.dumps(run_task(task)) if as_json else render(task)
    except SpecError as e:
        fail(str(e))
    except FloatingPointError as e:
        fail(f"spec: the numbers overflow float64 ({e}); use smaller values")
    click.echo(out)


if __name__ == "__main__":  # pragma: no cover
    main()
