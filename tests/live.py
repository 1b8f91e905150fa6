"""A real `quizengine serve` (gunicorn) in a subprocess, for browser and crash tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from quizengine.db import Database

EXE = str(Path(sys.executable).with_name("quizengine"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, tmp: Path, banks: Path, workers: int = 2, database_url: str | None = None):
        self.tmp, self.workers = tmp, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "QUIZENGINE_INSTANCE": str(tmp / "instance"), "QUIZENGINE_BANKS": str(banks),
                    "QUIZENGINE_SECRET_KEY": "live-test-secret",
                    "QUIZENGINE_DATABASE_URL": database_url or f"sqlite:///{tmp / 'live.sqlite3'}"}
        self.proc: subprocess.Popen | None = None

    def add_class(self, students: list[str] | tuple[str, ...], password: str, teacher_password: str) -> None:
        """Import these students (``ann`` as Ann Student, S-1, ...), all with ``password``, and an
        instructor ``teacher``."""
        self.import_roster("username,full_name,student_id,email,password\n" + "".join(
            f"{u},{u.title()} Student,S-{k + 1},{u}@example.org,{password}\n" for k, u in enumerate(students)))
        self.add_user("teacher", "instructor", teacher_password)

    # Accounts are created in this process, through what `quizengine users import` and `users add`
    # call (migrate, then import_roster or add_user, with the server's password hash): a CLI process
    # costs about 3 CPU seconds of start-up, several per module. tests/test_cli_accounts.py runs
    # those commands themselves.
    def import_roster(self, roster: str) -> None:
        """Migrate the database, then import the students of this CSV text, as `users import` does."""
        from quizengine.services.accounts import import_roster

        with self._database() as db:
            import_roster(db, roster)

    def add_user(self, username: str, role: str, password: str) -> None:
        """Migrate the database, then create one account, as `users add --password-stdin` does."""
        from quizengine.services.accounts import add_user

        with self._database() as db, db.write() as s:
            add_user(s, username, role, password)

    @contextmanager
    def _database(self) -> Iterator[Database]:
        from quizengine.db import Database
        from quizengine.migrate import upgrade

        url = self.env["QUIZENGINE_DATABASE_URL"]
        upgrade(url)
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()

    def cli(self, *args: str, stdin: str | None = None) -> str:
        r = subprocess.run([EXE, *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"quizengine {' '.join(args)} failed: {r.stderr}")
        return r.stdout

    def start(self) -> None:
        with open(self.tmp / "server.log", "a") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([EXE, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {(self.tmp / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/login", timeout=1).read()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError("the server did not answer within 60 s")

    def kill(self) -> None:
        """SIGKILL the whole process group: gunicorn's master and workers, no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def api(self, method: str, path: str, body: object | None = None, token: str | None = None,
            timeout: float = 10) -> tuple[int, object]:
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                data = r.read()
                return r.status, (json.loads(data) if r.headers.get_content_type() == "application/json" else data)
        except urllib.error.HTTPError as e:
            data = e.read()
            try:
                return e.code, json.loads(data)
            except ValueError:
                return e.code, data

    def token(self, username: str, password: str) -> str:
        status, data = self.api("POST", "/api/v1/auth/token", {"username": username, "password": password})
        assert status == 200, data
        return data["token"]
