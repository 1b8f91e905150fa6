"""The ``quizengine`` command: thin click commands calling the package's services."""

from __future__ import annotations

import difflib
import json
import os
import sys
import time
from pathlib import Path

import click

from .cli_common import fail, load_app
from .config import banks_path
from .constants import GRADE_FORMATS, VALIDATION_SEEDS, VERSION


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="quizengine")
def main() -> None:
    """quizengine: quizzes on neural networks, answers computed by a NumPy calculator.

    \b
    Examples:
      quizengine calc examples/mazur.yaml          worked table, layer by layer
      quizengine calc examples/mazur.yaml --json   the same as one JSON object
      echo '{"activation": "tanh", "z": [0.5]}' | quizengine calc -
      quizengine validate banks                    every problem as PATH:LINE:COL
      quizengine preview bp-hidden-delta --seed 7  one student's variant and its key
      quizengine serve --demo                      migrate, load banks, serve on :5000
      quizengine users import roster.csv --passwords-out passwords.csv
      quizengine export-grades module-04-prep --format canvas -o grades.csv

    \b
    Environment: QUIZENGINE_DATABASE_URL, QUIZENGINE_SECRET_KEY, QUIZENGINE_BANKS,
    QUIZENGINE_INSTANCE, QUIZENGINE_TIMEZONE, QUIZENGINE_HTTPS, QUIZENGINE_TRUSTED_PROXIES,
    QUIZENGINE_LOGINS_PER_ADDRESS, QUIZENGINE_LOGINS_PER_SECOND (see README.md).
    """


@main.command()
@click.argument("spec", metavar="SPEC")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def calc(spec: str, as_json: bool) -> None:
    """Compute a network, optimizer, activation, keras, schedule, iterations or initializer task.

    SPEC is a YAML or JSON file, or - for standard input (format: docs/calculator.md,
    given values carried forward and the extra tasks included). Without --json, print the
    worked table: every intermediate value, to 6 significant digits. Exit 2 on a bad spec.
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
    import numpy as np  # (here: `serve --no-preload`'s master holds neither numpy nor the calculator)

    from .calc import SpecError, load_text, parse, run_task
    from .calc.report import render

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
@click.option("--seeds", default=VALIDATION_SEEDS, show_default=True, type=click.IntRange(1, 10000),
              help="Variants checked per parametrized item.")
@click.option("--jobs", "-j", default=0, type=click.IntRange(0, 64),
              help="Processes that check items (default: one per core).")
@click.option("--report", is_flag=True,
              help="Also print, for every calculated item and slip (each buggy calculator that applies, each "
                   "parameter transposed or with its minus signs dropped), how often the tolerance accepts its answer.")
def validate(paths: tuple[Path, ...], seeds: int, jobs: int, report: bool) -> None:
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
    cat = validate_paths(targets, seeds, jobs or min(os.cpu_count() or 1, 8))
    for problem in cat.problems:
        click.echo(str(problem))
    if report:
        _print_report(cat.report)
    errors = len(cat.errors)
    warnings = len(cat.problems) - errors
    click.echo(f"{len(cat.files)} files, {len(cat.banks)} banks, {len(cat.items)} items, {len(cat.quizzes)} quizzes: "
               f"{errors} errors, {warnings} warnings ({time.perf_counter() - start:.1f} s)", err=True)
    sys.exit(1 if errors else 0)


def _print_report(rows: list[tuple]) -> None:
    """The slip table: how often each slip changes an item's answer and how often the tolerance accepts it."""
    width = max((len(r[0]) for r in rows), default=4)
    slip = max((len(r[1]) for r in rows), default=4)
    click.echo(f"{'item':<{width}}  {'slip':<{slip}}  {'changes':>7}  {'accepted':>8}  rate")
    for item, what, changed, accepted, seeds in rows:
        click.echo(f"{item:<{width}}  {what:<{slip}}  {changed:>7}  {accepted:>8}  {accepted / seeds:6.1%}")


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
    """Show one item's variant for a seed, with its answer, worked solution and figures (SVG and text in --json)."""
    from .bank.variant import VariantError, make_variant
    from .services.preview import preview_data, preview_text

    cat = _catalog(banks)
    if item_id not in cat.items:
        close = difflib.get_close_matches(item_id, list(cat.items), n=1)
        fail(f"no item {item_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    try:
        variant = make_variant(cat.items[item_id], seed)
        shown = json.dumps(preview_data(variant), indent=2) if as_json else preview_text(variant)
    except VariantError as e:  # the variant, or one of its figures
        fail(f"{item_id} seed {seed}: {e}")
    click.echo(shown)


@main.command()
@click.argument("item_id")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Variant seed.")
@click.option("--response", "response", required=True, metavar="JSON",
              help='The response as JSON, in the API\'s format: \'"c2"\', \'0.25\', \'"1/4"\', \'[[1, 2], [3, 4]]\'.')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@BANKS_OPTION
def grade(item_id: str, seed: int, response: str, as_json: bool, banks: Path | None) -> None:
    """Grade one response against an item's variant, exactly as a submitted attempt would.

    \b
    Examples:
      quizengine grade act-calc-tanh-unit --seed 3 --response 0.462
      quizengine grade vocab-st-convergence --response '"Convergence."' --json
    Exit 0 whatever the score; 2 for an unknown item, a response that is not JSON, or one
    that the attempt page would refuse to save.
    """
    from .bank.variant import VariantError, make_variant
    from .services.trial import Refused, grade_response

    try:
        value = json.loads(response)
    except ValueError as e:
        fail(f"--response is not JSON ({e}); quote text as JSON, e.g. --response '\"convergence\"'")
    cat = _catalog(banks)
    if item_id not in cat.items:
        close = difflib.get_close_matches(item_id, list(cat.items), n=1)
        fail(f"no item {item_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    try:
        variant = make_variant(cat.items[item_id], seed)
        out = grade_response(variant, value)
    except VariantError as e:
        fail(f"{item_id} seed {seed}: {e}")
    except Refused as e:
        fail(f"the response would be refused: {e}")
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    verdict = "correct" if out["correct"] else ("format error" if out["format_error"] else "not correct")
    click.echo(f"{item_id} seed {seed}: {out['score']:g} / {out['max_score']:g} ({verdict})")
    if out["feedback"]:
        click.echo(out["feedback"])
    if out["mistake"]:
        click.echo(f"mistake: {out['mistake']}")


# ---------------------------------------------------------------- the web app and its data

def _migrate_and_load(app) -> None:  # type: ignore[no-untyped-def]
    from .migrate import upgrade
    from .services.banks import BankLoadError, load_banks
    from .services import plans
    from .services.editor import reconcile

    upgrade(app.config["DATABASE_URL"])
    banks = Path(app.config["BANKS"])
    if not banks.exists():
        fail(f"no banks folder at {banks} (set QUIZENGINE_BANKS)")
    try:
        with app.extensions["quizengine.db"].write() as s:
            report = load_banks(s, banks)
            # The editor's history agrees with the files again, e.g. after a kill -9 mid-save.
            recorded = reconcile(s, banks)
    except BankLoadError as e:
        fail(str(e), 1)
    click.echo(f"banks: {report.items} items ({report.new_versions} new versions), {report.quizzes} quizzes", err=True)
    for line in plans.prune_caches(app.extensions["quizengine.db"], app.config["SECRET_KEY"]):
        click.echo(line, err=True)
    app.extensions["quizengine.db"].dispose()  # its connections closed, not left to the collector
    if recorded:
        click.echo(f"bank history: recorded the current content of {len(recorded)} files "
                   f"({', '.join(recorded[:5])}{', ...' if len(recorded) > 5 else ''})", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--demo", is_flag=True, help="Create demo accounts (first run) and print their credentials.")
@click.option("--preload/--no-preload", default=False, show_default=True, envvar="QUIZENGINE_PRELOAD",
              help="--preload: build the app in the master before forking the workers (PSS lower, RSS sum higher: "
                   "every process counts the shared code); by default each worker builds its own before it serves.")
def serve(host: str, port: int, workers: int, demo: bool, preload: bool) -> None:
    """Migrate the database, load the banks and serve the app with gunicorn."""
    from .server import ensure_demo_accounts, in_child, patch_for_gevent, run_gunicorn

    def prepare() -> None:
        app = load_app()
        _migrate_and_load(app)
        if demo:
            lines = ensure_demo_accounts(app)
            click.echo("\nDemo accounts (username, role, password; kept in "
                       f"{Path(app.config['INSTANCE']) / 'demo-accounts.txt'}):")
            for line in lines:
                click.echo("  " + line)

    # Alembic, the YAML and the banks' validation run in a child process that exits: the gunicorn
    # master, whose memory every worker starts from, holds only what serving requests needs.
    code = in_child(prepare)
    if code:
        sys.exit(code if code > 0 else 1)  # (negative: killed by a signal)
    patch_for_gevent()  # before the app exists, so its engine's pool and locks are gevent's

    def build():  # type: ignore[no-untyped-def]
        app = load_app()
        from .bank.figures import drawer

        drawer.use(drawer.socket_path(app.config["INSTANCE"]))  # matplotlib stays out of the workers
        return app

    from .config import from_env

    click.echo(f"\nquizengine on http://{host}:{port}/  (database: {from_env()['DATABASE_URL']})\n")
    run_gunicorn(build() if preload else build, host, port, workers)


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from .migrate import upgrade

    upgrade(load_app().config["DATABASE_URL"], revision)


@db.command("downgrade")
@click.argument("revision", default="base")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (default: base, an empty database)."""
    from .migrate import downgrade

    downgrade(load_app().config["DATABASE_URL"], revision)


@main.command("load-banks")
def load_banks_command() -> None:
    """Migrate, then load the banks into the database as versioned items."""
    _migrate_and_load(load_app())


@main.command()
@click.argument("quiz_id")
@click.option("--student", "students", multiple=True, help="Only this student (repeat for several; default: the roster).")
@click.option("--attempts", "ahead", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Render this many attempts ahead per student (as far as the quiz allows): 2 for a quiz "
                   "the class takes twice in a row, so the second start needs no rendering either.")
def warm(quiz_id: str, students: tuple[str, ...], ahead: int) -> None:
    """Render each student's next attempt at QUIZ_ID ahead of the start (into the shared cache).

    Run it before a quiz opens (a deploy step, or an instructor): starts then need no rendering,
    and each attempt is drawn ahead (planned), so a start needs no draw either. It can be stopped
    and rerun at any time; it renders only what the cache lacks and plans only what changed.
    """
    from .migrate import upgrade
    from .services.errors import ServiceError
    from .services.warming import warm_quiz

    app = load_app()
    upgrade(app.config["DATABASE_URL"])

    def progress(done: int, total: int) -> None:
        click.echo(f"\rrendered {done}/{total} questions", nl=done == total, err=True)

    db = app.extensions["quizengine.db"]
    try:
        r = warm_quiz(db, app.config["SECRET_KEY"], quiz_id, list(students) or None, progress, ahead)
    except ServiceError as e:
        fail(e.message)
    finally:
        db.dispose()
    click.echo(f"{quiz_id}: {r.students} students, {r.questions} questions in their next attempts, "
               f"{r.rendered} rendered now ({r.questions - r.rendered} were cached); {r.planned} attempts planned now")


@main.command("export-grades")
@click.argument("quiz_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(GRADE_FORMATS), default="plain", show_default=True)
def export_grades(quiz_id: str, output: Path | None, fmt: str) -> None:
    """Export a quiz's grades as CSV, one row per student on the roster."""
    from .services.closing import expire_due
    from .services.errors import ServiceError
    from .services.gradebook import grades_csv

    app = load_app()
    db = app.extensions["quizengine.db"]
    try:
        expire_due(db)
        with db.read() as s:
            text = grades_csv(s, quiz_id, fmt)
    except ServiceError as e:
        fail(e.message)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


from .cli_accounts import users  # noqa: E402 - the `users` group lives in its own module
from .cli_lti import lti  # noqa: E402 - the `lti` group lives in its own module

main.add_command(users)
main.add_command(lti)

if __name__ == "__main__":  # pragma: no cover
    main()
