"""The ``quizengine`` command: thin click commands calling the package's services."""

from __future__ import annotations

import difflib
import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from . import __version__
from .calc import SpecError, load_text, parse, run_task
from .calc.report import render
from .config import banks_path


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


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--seeds", default=200, show_default=True, type=click.IntRange(1, 10000),
              help="Variants checked per parametrized item.")
def validate(paths: tuple[Path, ...], seeds: int) -> None:
    """Check bank files and quiz definitions; print every problem as PATH:LINE:COL.

    PATHS are bank files or folders (default: $QUIZENGINE_BANKS or banks/); files under a
    quizzes/ folder are quiz definitions. Exit 0 when valid (warnings allowed), 1 when any
    error was found, 2 on a usage error.
    """
    from .bank.validate import validate_paths

    targets = list(paths) or [banks_path()]
    for p in targets:
        if not p.exists():
            fail(f"no such file or folder: {p}")
    start = time.perf_counter()
    cat = validate_paths(targets, seeds)
    for problem in cat.problems:
        click.echo(str(problem))
    errors = len(cat.errors)
    warnings = len(cat.problems) - errors
    click.echo(f"{len(cat.files)} files, {len(cat.banks)} banks, {len(cat.items)} items, {len(cat.quizzes)} quizzes: "
               f"{errors} errors, {warnings} warnings ({time.perf_counter() - start:.1f} s)", err=True)
    sys.exit(1 if errors else 0)


def _catalog(banks: Path | None):
    from .bank.catalog import load_catalog

    path = banks or banks_path()
    if not path.exists():
        fail(f"no banks folder at {path} (set QUIZENGINE_BANKS or pass --banks)")
    cat = load_catalog([path])
    if cat.errors:
        click.echo(f"warning: {len(cat.errors)} problems in the banks; items with errors are left out "
                   "(run quizengine validate)", err=True)
    return cat


BANKS_OPTION = click.option("--banks", type=click.Path(path_type=Path), default=None,
                            help="Banks folder (default: $QUIZENGINE_BANKS or banks/).")


@main.command()
@click.option("--topic", help="Only items of this topic.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@BANKS_OPTION
def items(topic: str | None, as_json: bool, banks: Path | None) -> None:
    """List every item: id, topic, type, and whether it is parametrized and calculated."""
    cat = _catalog(banks)
    if topic is not None and topic not in cat.banks:
        fail(f"no topic {topic!r} (topics: {', '.join(sorted(cat.banks))})")
    rows = []
    for bi in cat.items.values():
        if topic is not None and bi.topic != topic:
            continue
        m = bi.model
        rows.append({"id": bi.id, "topic": bi.topic, "type": m.type,
                     "parametrized": bool(getattr(m, "params", None)), "calculated": getattr(m, "calc", None) is not None,
                     "points": m.points, "difficulty": m.difficulty, "tags": m.tags, "version": bi.version,
                     "source": bi.source})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["id"]) for r in rows), default=2)
    click.echo(f"{'id':<{width}}  {'topic':<22} {'type':<16} param calc")
    for r in rows:
        click.echo(f"{r['id']:<{width}}  {r['topic']:<22} {r['type']:<16} {'yes' if r['parametrized'] else '-':<5} "
                   f"{'yes' if r['calculated'] else '-'}")
    click.echo(f"{len(rows)} items", err=True)


@main.command()
@click.argument("item_id")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Variant seed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@BANKS_OPTION
def preview(item_id: str, seed: int, as_json: bool, banks: Path | None) -> None:
    """Show one item's variant for a seed, with its answer and worked solution."""
    from .bank.variant import VariantError, make_variant
    from .services.preview import preview_data, preview_text

    cat = _catalog(banks)
    if item_id not in cat.items:
        close = difflib.get_close_matches(item_id, list(cat.items), n=1)
        fail(f"no item {item_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    try:
        variant = make_variant(cat.items[item_id], seed)
    except VariantError as e:
        fail(f"{item_id} seed {seed}: {e}")
    click.echo(json.dumps(preview_data(variant), indent=2) if as_json else preview_text(variant))


if __name__ == "__main__":  # pragma: no cover
    main()
