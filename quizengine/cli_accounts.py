"""``quizengine users``: add an account, or import a roster (all rows or none)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .cli_common import fail, load_app


@click.group()
def users() -> None:
    """Accounts: add one, or import a roster."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["student", "instructor"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--full-name", default="")
@click.option("--student-id", default="")
@click.option("--email", default="")
def users_add(username: str, role: str, password_stdin: bool, full_name: str, student_id: str, email: str) -> None:
    """Create an account; without --password-stdin a password is generated and printed."""
    from .services.accounts import AccountError, add_user, generate_password

    app = load_app()
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else generate_password()
    from .migrate import upgrade

    upgrade(app.config["DATABASE_URL"])
    try:
        with app.extensions["quizengine.db"].write() as s:
            add_user(s, username, role, password, full_name, student_id, email, app.config["PASSWORD_METHOD"])
    except AccountError as e:
        fail(str(e))
    click.echo(f"created {role} {username}" + ("" if password_stdin else f" with password {password}"))


@users.command("import")
@click.argument("roster", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--passwords-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write username,password for rows without a password.")
def users_import(roster: Path, passwords_out: Path | None) -> None:
    """Import students from a CSV roster (username,full_name,student_id,email[,password]); all rows or none.

    Every row is checked and every password hashed (about 45 ms of CPU each) before anything is written;
    progress goes to stderr.
    """
    from .services.accounts import AccountError, import_roster, parse_roster

    app = load_app()
    from .migrate import upgrade

    upgrade(app.config["DATABASE_URL"])
    try:
        text = roster.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{roster}: not UTF-8 text")
    shown = [0]

    def progress(done: int, total: int) -> None:
        if done == total or done * 10 // total > shown[0]:  # every tenth
            shown[0] = done * 10 // total
            click.echo(f"hashed {done}/{total} passwords", err=True)

    try:
        without = sum(1 for r in parse_roster(text) if r.password is None)
        if without and passwords_out is None:
            raise AccountError(f"{without} rows have no password: give --passwords-out FILE "
                               "to receive the generated ones (nothing was imported)")
        done = import_roster(app.extensions["quizengine.db"], text, app.config["PASSWORD_METHOD"], progress=progress)
    except AccountError as e:
        fail(f"{roster}: " + str(e).replace("\n", f"\n{roster}: "))
    generated = done.generated
    if generated:
        passwords_out.write_text("username,password\n" + "".join(f"{u},{p}\n" for u, p in generated), encoding="utf-8")
        os.chmod(passwords_out, 0o600)
    click.echo(f"imported {done.students} students"
               + (f"; generated passwords in {passwords_out}" if generated else ""))
