"""Issue 9, editor side: validation outside the write lock, history that survives a kill -9 and is
keyed by the resolved path, budgets refused as 422 pages, and private files in instance/.

One test per threat, named after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from quizengine import create_app
from quizengine.cli import main
from quizengine.migrate import upgrade
from quizengine.models import BankFileVersion, Quiz, User
from quizengine.services import bank_checks, editor

from tests.bank.test_threats_bankfiles import DERIVED_BANK

from .conftest import POSTGRES, ROOT, set_quiz


def versions(db, key: str) -> list[BankFileVersion]:
    with db.read() as s:
        return list(s.scalars(select(BankFileVersion).where(BankFileVersion.path == key).order_by(BankFileVersion.id)))


def edited(path: Path) -> str:
    return path.read_text().replace("title: ", "title: Edited ", 1)


@pytest.mark.skipif(POSTGRES, reason="the SQLite write lock (BEGIN IMMEDIATE) is what this test is about")
def test_threat_editor_validation_holds_the_write_lock(teacher, banks_copy, db, monkeypatch):
    """While the editor validates (200 seeds per item), another writer's transaction completes."""
    validating, release = threading.Event(), threading.Event()
    real = bank_checks.check_item

    def blocked_validator(item, seeds):  # type: ignore[no-untyped-def]
        validating.set()
        assert release.wait(60), "the test never released the validator"
        return real(item, seeds)

    monkeypatch.setattr(bank_checks, "check_item", blocked_validator)
    new_text = edited(banks_copy / "vocabulary.yaml")
    result = {}
    saver = threading.Thread(target=lambda: result.update(
        r=teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": new_text})))
    saver.start()
    try:
        assert validating.wait(60), "the editor never reached its validator"
        set_quiz(db, title="Written meanwhile")  # BEGIN IMMEDIATE: would wait for, then fail on, the editor's lock
        with db.read() as s:
            assert s.get(Quiz, "module-04-prep").title == "Written meanwhile"
        assert saver.is_alive()  # committed while the save was still validating
    finally:
        release.set()
        saver.join(60)
    assert result["r"].status_code == 302
    assert (banks_copy / "vocabulary.yaml").read_text() == new_text


CRASHING_SAVE = textwrap.dedent("""
    import os, signal, sys
    from quizengine import create_app
    from quizengine.services import editor

    url, banks, instance, new_text = sys.argv[1:5]
    app = create_app({"DATABASE_URL": url, "BANKS": banks, "INSTANCE": instance, "SECRET_KEY": "x"})
    real_replace = editor._replace

    def replace_then_die(path, text):
        real_replace(path, text)
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 after the rename, before the commit

    editor._replace = replace_then_die
    editor.save(app.extensions["quizengine.db"], editor.Path(banks), "vocabulary.yaml", new_text, None, seeds=2)
""")


@pytest.mark.skipif(POSTGRES, reason="the crash is simulated against a SQLite file")
def test_threat_kill_between_rename_and_commit_loses_no_version(app, banks_copy, db, tmp_path, runner):
    url = app.config["DATABASE_URL"]
    path = banks_copy / "vocabulary.yaml"
    before, after = path.read_text(), edited(path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CRASHING_SAVE, url, str(banks_copy), str(tmp_path), after],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # the crash left the new file with no version recording it
    assert path.read_text() == after
    assert after not in [v.content for v in versions(db, "vocabulary.yaml")]
    # the next start reconciles: the file's content is the newest version, the old one is kept
    r = runner.invoke(main, ["load-banks"], env={"QUIZENGINE_DATABASE_URL": url, "QUIZENGINE_BANKS": str(banks_copy),
                                                 "QUIZENGINE_INSTANCE": str(tmp_path), "QUIZENGINE_SECRET_KEY": "x"})
    assert r.exit_code == 0, r.output
    history = versions(db, "vocabulary.yaml")
    assert history[-1].content == after and history[-1].sha256 == editor._sha256(after)
    assert before in [v.content for v in history]
    # and every other file is recorded as it is, once: a second start records nothing new
    assert {v.path for v in versions_all(db)} == set(editor.bank_files(banks_copy))
    count = len(versions_all(db))
    assert runner.invoke(main, ["load-banks"], env={
        "QUIZENGINE_DATABASE_URL": url, "QUIZENGINE_BANKS": str(banks_copy), "QUIZENGINE_INSTANCE": str(tmp_path),
        "QUIZENGINE_SECRET_KEY": "x"}).exit_code == 0
    assert len(versions_all(db)) == count


def versions_all(db) -> list[BankFileVersion]:
    with db.read() as s:
        return list(s.scalars(select(BankFileVersion)))


def test_threat_history_split_by_the_path_as_typed(teacher, banks_copy, db):
    path = banks_copy / "vocabulary.yaml"
    before = path.read_text()
    first = edited(path)
    with db.read() as s:
        teacher_id = s.scalar(select(User.id).where(User.username == "teacher"))
    editor.save(db, banks_copy, "./vocabulary.yaml", first, teacher_id, seeds=2)
    second = first.replace("title: Edited ", "title: Edited twice ", 1)
    assert teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": second}).status_code == 302
    assert [v.content for v in versions(db, "vocabulary.yaml")] == [before, first, second]
    assert versions(db, "./vocabulary.yaml") == []
    for typed in ("vocabulary.yaml", "./vocabulary.yaml", "././vocabulary.yaml"):
        page = teacher.get(f"/instructor/banks/history/{typed}").get_data(as_text=True)
        assert page.count("saved in the editor") == 2
    # a row that older code filed under the typed path joins its file's history at the next start
    with db.write() as s:
        editor._record(s, "./vocabulary.yaml", second, None, "filed by older code")
    with db.write() as s:
        assert "vocabulary.yaml" not in editor.reconcile(s, banks_copy)  # its newest version matches the file
    assert [v.note for v in versions(db, "vocabulary.yaml")][-1] == "filed by older code"
    assert versions(db, "./vocabulary.yaml") == []


DERIVED_BOMB = DERIVED_BANK.replace("EXPR", "(10**10**6) % 7")  # the bank tests' derived-parameter bank


@pytest.mark.parametrize("bank,where,limit", [
    ("topic: t\ntitle: T\nitems: &t\n  - *t\n", "4:5", "recursive alias *t"),
    # 74,743 nodes up to line 8, where the first *e adds 66,430 more
    ("topic: t\ntitle: T\na: &a [1,2,3,4,5,6,7,8,9]\n" + "".join(
        f"{c}: &{c} [{','.join(9 * ['*' + p])}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
     "8:8", "alias *e expands the document to more than 100,000 nodes (the limit"),
    (DERIVED_BOMB, "10:10", "the power 10 ** 1000000 would have about 1,000,001 digits: integers in expressions "
                            "are limited to 10**100 in absolute value"),
], ids=["recursive-alias", "billion-laughs", "huge-power"])
def test_threat_editor_refuses_bank_bombs_with_a_page_not_a_500(teacher, banks_copy, db, bank, where, limit):
    r = teacher.post("/instructor/banks/edit/bomb.yaml", data={"text": bank})
    assert r.status_code == 422
    page = r.get_data(as_text=True).replace("&#39;", "'").replace("&amp;", "&")
    assert f"<code>bomb.yaml:{where}</code> error: " in page and limit in page
    assert not (banks_copy / "bomb.yaml").exists() and versions(db, "bomb.yaml") == []


def test_threat_bank_file_over_the_size_budget_is_refused_and_one_under_it_is_saved(teacher, banks_copy):
    path = banks_copy / "vocabulary.yaml"
    text = path.read_text()
    padded = text + "#" * (editor.MAX_BANK_BYTES - len(text.encode()) - 1) + "\n"  # 1 MiB exactly
    assert len(padded.encode()) == editor.MAX_BANK_BYTES
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": padded + "#"})
    assert r.status_code == 413 and "a bank file is limited to 1 MiB" in r.get_data(as_text=True)
    assert path.read_text() == text
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": padded})
    assert r.status_code == 302 and path.read_text() == padded


def test_threat_instance_files_are_world_readable(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    for var in ("QUIZENGINE_DATABASE_URL", "QUIZENGINE_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QUIZENGINE_INSTANCE", str(instance))
    old = os.umask(0o022)  # a usual umask: files would be created 0644
    try:
        app = create_app({"TESTING": True})
        url = app.config["DATABASE_URL"]
        assert url == f"sqlite:///{instance / 'quizengine.sqlite3'}"
        upgrade(url)
        db = app.extensions["quizengine.db"]
        with db.write() as s:  # an open connection keeps its -wal and -shm files
            s.execute(text("CREATE TABLE probe (x INTEGER)"))
            names = {p.name for p in instance.iterdir()}
            assert {"secret_key", "quizengine.sqlite3", "quizengine.sqlite3-wal", "quizengine.sqlite3-shm"} <= names
            modes = {p.name: p.stat().st_mode & 0o777 for p in instance.iterdir()}
        db.dispose()
    finally:
        os.umask(old)
    assert all(mode == 0o600 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}
    assert instance.stat().st_mode & 0o077 == 0
    # a database left world-readable by an older version is made private when it is opened
    os.chmod(instance / "quizengine.sqlite3", 0o644)
    create_app({"TESTING": True}).extensions["quizengine.db"].dispose()
    assert (instance / "quizengine.sqlite3").stat().st_mode & 0o777 == 0o600
