"""App fixtures: a migrated database with the shipped banks loaded, per test.

On SQLite each test copies a template database file. With QUIZENGINE_TEST_POSTGRES=1 (as
.ci/run's second pass sets) a fixture starts a throwaway PostgreSQL cluster with initdb/pg_ctl in
a temporary folder; the schema is migrated once and every test starts from emptied tables.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, text

from quizengine import create_app
from quizengine.migrate import upgrade
from quizengine.services import accounts
from quizengine.services.banks import load_banks
from quizengine.services.groupcommit import group_commit

ROOT = Path(__file__).resolve().parents[2]
BANKS = ROOT / "banks"
# QUIZENGINE_TEST_POSTGRES=1 runs these tests on a throwaway PostgreSQL cluster (.ci/run's second pass).
POSTGRES = os.environ.get("QUIZENGINE_TEST_POSTGRES") == "1"
FAST_HASH = "argon2id:m=8,t=1,p=1"  # tests log in hundreds of times; one test checks the real default


def base_config(tmp: Path, url: str) -> dict:
    return {"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "BANKS": str(BANKS),
            "INSTANCE": str(tmp), "PASSWORD_METHOD": FAST_HASH, "WTF_CSRF_ENABLED": False,
            # tests log in far more often than people do; tests/web/test_threats_auth.py sets these
            "LOGINS_PER_ADDRESS": 0, "LOGINS_PER_SECOND": 0,
            "LTI_SEND": "inline",  # LMS scores are posted in the request that changed them, not by a thread
            "BANK_CHECK_SEEDS": 3}  # the bank pages' background checks: 200 seeds would cost every test run 30 CPU-s


def _load(url: str, tmp: Path) -> None:
    upgrade(url)
    app = create_app(base_config(tmp, url))
    with app.extensions["quizengine.db"].write() as s:
        load_banks(s, BANKS)
    app.extensions["quizengine.db"].dispose()


# PostgreSQL keeps one database for the whole run: the quizzes and the items as loaded from the
# banks are kept here and put back before every test (a test may change a quiz's settings or its
# definition, or save a bank file in the editor, which makes new item versions current).
_PG_QUIZZES: list[dict] = []
_PG_ITEMS: dict[str, list[dict]] = {}  # table -> its rows: item versions, current items, bank file history


def _item_tables():  # type: ignore[no-untyped-def]
    from quizengine.models import BankFileVersion, CurrentItem, ItemVersion

    return [ItemVersion.__table__, CurrentItem.__table__, BankFileVersion.__table__]


def _snapshot_quizzes(url: str) -> None:
    from quizengine.models import Quiz

    engine = create_engine(url)
    with engine.connect() as conn:
        _PG_QUIZZES[:] = [dict(r._mapping) for r in conn.execute(Quiz.__table__.select())]
        for table in _item_tables():
            _PG_ITEMS[table.name] = [dict(r._mapping) for r in conn.execute(table.select())]
    engine.dispose()


def pytest_collection_modifyitems(config, items):
    """On the PostgreSQL pass, only the tests that reach its cluster (through ``pg_url``, as ``app``
    does): the others (pure functions, their own SQLite file or server) ran in the SQLite pass."""
    if not POSTGRES:
        return
    here = Path(__file__).parent
    off = [i for i in items if here in i.path.parents and not {"pg_url", "template_db"} & set(i.fixturenames)]
    if off:
        config.hook.pytest_deselected(items=off)
        items[:] = [i for i in items if i not in off]


@pytest.fixture(scope="session")
def pg_url():
    """The URL of a throwaway PostgreSQL cluster, or None on the SQLite pass."""
    if not POSTGRES:
        yield None
        return
    from tests.pg import throwaway_postgres

    with throwaway_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def template_db(tmp_path_factory, pg_url) -> str:
    """A migrated database holding the shipped banks (a file on SQLite, the server on PostgreSQL)."""
    tmp = tmp_path_factory.mktemp("template")
    if pg_url:
        _load(pg_url, tmp)
        _snapshot_quizzes(pg_url)
        return pg_url
    url = f"sqlite:///{tmp / 'template.sqlite3'}"
    _load(url, tmp)
    return url


def _reset_pg(url: str) -> None:
    from quizengine.models import Quiz

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text('TRUNCATE "response", attempt_question, attempt, login_failure, "user" RESTART IDENTITY CASCADE'))
        conn.execute(text("TRUNCATE lti_platform, lti_key, lti_nonce RESTART IDENTITY CASCADE"))
        conn.execute(text("TRUNCATE rendering"))  # the shared rendering cache (issue 14)
        tables = _item_tables()  # truncated without RESTART IDENTITY: later ids stay above the restored ones
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE"))
        for table in tables:
            if _PG_ITEMS[table.name]:
                conn.execute(table.insert(), _PG_ITEMS[table.name])
        conn.execute(text("TRUNCATE quiz CASCADE"))
        conn.execute(Quiz.__table__.insert(), _PG_QUIZZES)
    engine.dispose()


class SharedTemplateCode(BytecodeCache):
    """The templates' compiled code, kept for the whole run: each test's app has its own Jinja
    environment, which would otherwise parse and compile every template it renders again (about a
    fifth of a web test's CPU). Jinja checks each entry against its template's source (a checksum)."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:  # type: ignore[no-untyped-def]
        if (code := self.code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:  # type: ignore[no-untyped-def]
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = SharedTemplateCode()


@pytest.fixture
def app(template_db, tmp_path):
    if POSTGRES:
        _reset_pg(template_db)
        url = template_db
    else:
        src = Path(template_db.removeprefix("sqlite:///"))
        dst = tmp_path / "test.sqlite3"
        shutil.copy(src, dst)
        url = f"sqlite:///{dst}"
    application = create_app(base_config(tmp_path, url))
    application.jinja_env.bytecode_cache = TEMPLATE_CODE
    yield application
    application.extensions["quizengine.db"].dispose()


@pytest.fixture(autouse=True)
def no_check_child_left():
    """A bank page may have started a child checking the items: stop it with the test that started it."""
    yield
    from quizengine.services import bank_checks

    for board in bank_checks._BOARDS.values():
        board.stop()
    bank_checks._BOARDS.clear()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    return app.extensions["quizengine.db"]


class Accounts:
    """Create users and log them in, through the real endpoints."""

    def __init__(self, app):
        self.app = app

    def add(self, username: str, role: str = "student", password: str = "password-123", **kw) -> str:
        with self.app.extensions["quizengine.db"].write() as s:
            accounts.add_user(s, username, role, password, method=FAST_HASH, **kw)
        return password

    def token(self, client, username: str, password: str = "password-123") -> dict[str, str]:
        r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert r.status_code == 200, r.json
        return {"Authorization": f"Bearer {r.json['token']}"}

    def login(self, client, username: str, password: str = "password-123"):
        return client.post("/login", data={"username": username, "password": password})


@pytest.fixture
def users(app) -> Accounts:
    return Accounts(app)


@pytest.fixture
def teacher(client, users):
    """The test client, logged in as an instructor (a module may define its own ``teacher``)."""
    users.add("teacher", "instructor")
    users.login(client, "teacher")
    return client


@pytest.fixture
def banks_copy(app, tmp_path):
    """A private copy of the banks that the editor may write to (and that keeps its own board)."""
    dst = tmp_path / "banks"
    shutil.copytree(app.config["BANKS"], dst)
    app.config["BANKS"] = str(dst)
    return dst


def set_quiz(db, quiz_id: str = "module-04-prep", **fields) -> None:
    from quizengine.models import Quiz

    with db.write() as s:
        q = s.get(Quiz, quiz_id)
        for k, v in fields.items():
            setattr(q, k, v)


def two_writes_at_once(db, write: Callable) -> None:
    """Run ``write(session)`` in two write transactions at once (PostgreSQL): the second starts while
    the first holds its new row, must wait for it (a lock not granted, seen in pg_locks), then goes on
    once the first commits; neither may raise (no unique violation)."""
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with db.write() as s:
                write(s)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    with db.write() as s:
        write(s)
        other = threading.Thread(target=second)
        other.start()
        deadline = time.monotonic() + 10
        with db.read() as r:  # the second transaction waits on the first one's new row
            while not r.scalar(text("select count(*) from pg_locks where not granted")):
                assert time.monotonic() < deadline, "the second transaction never waited"
                r.rollback()
    other.join(10)
    assert not other.is_alive() and errors == []


def hold_first_batch(monkeypatch, db):
    """Make the group commit's first batch wait for ``gate``; return (the group commit, gate, write calls)."""
    commits: list[int] = []
    real_write = db.raw_write

    def counted():
        commits.append(1)
        return real_write()

    monkeypatch.setattr(db, "raw_write", counted)
    gc = group_commit(db)
    gate = threading.Event()
    held = gc._write

    def slow_first_batch(batch):
        gate.wait(5)
        held(batch)

    monkeypatch.setattr(gc, "_write", slow_first_batch)
    return gc, gate, commits
