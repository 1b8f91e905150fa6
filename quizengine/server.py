"""`quizengine serve`: migrate, load the banks, optionally create demo accounts, run gunicorn."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path
from typing import Any

from .constants import ATTEMPT_BUDGET_S, SWEEP_BUDGET_S
from .services import accounts
from .services.closing import expire_due

DEMO_USERS = [("instructor", "instructor", "Demo Instructor")] + [
    (f"student{i}", "student", f"Demo Student {i}") for i in (1, 2, 3)]


def ensure_demo_accounts(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Create the demo accounts on first run; their credentials are kept in the instance folder."""
    path = Path(app.config["INSTANCE"]) / "demo-accounts.txt"
    db = app.extensions["quizengine.db"]
    created = []
    with db.write() as s:
        existing = accounts.usernames(s)
        for username, role, name in DEMO_USERS:
            if username in existing:
                continue
            pw = accounts.generate_password()
            accounts.add_user(s, username, role, pw, full_name=name, method=app.config["PASSWORD_METHOD"])
            created.append(f"{username:<12} {role:<11} {pw}")
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(created) + "\n")
        os.chmod(path, 0o600)
    return path.read_text().splitlines() if path.exists() else []


def sweep(app) -> int:  # type: ignore[no-untyped-def]
    """Submit the attempts whose time is up, each graded outside the write lock in its own transaction.

    A sweep starts no new attempt after SWEEP_BUDGET_S (the rest wait for the next one) and gives up
    on one attempt after ATTEMPT_BUDGET_S (doubled each time it failed before).
    """
    return expire_due(app.extensions["quizengine.db"], budget_s=SWEEP_BUDGET_S, attempt_budget_s=ATTEMPT_BUDGET_S)


def sweeper(app, every: float) -> threading.Thread:  # type: ignore[no-untyped-def]
    """A daemon thread that submits attempts whose time is up, every ``every`` seconds."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                sweep(app)
            except Exception:  # noqa: BLE001 - keep sweeping (the database may be down a moment)
                app.logger.exception("expiry sweep failed")

    t = threading.Thread(target=loop, name="quizengine-expiry", daemon=True)
    t.start()
    return t


def run_gunicorn(app, host: str, port: int, workers: int, extra: dict[str, Any] | None = None) -> None:  # type: ignore[no-untyped-def]
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            opts = {"bind": f"{host}:{port}", "workers": workers, "worker_class": "sync", "timeout": 60,
                    "preload_app": True, "accesslog": "-", "post_fork": post_fork, **(extra or {})}
            for k, v in opts.items():
                self.cfg.set(k, v)

        def load(self):  # type: ignore[no-untyped-def]
            return app

    def post_fork(server, worker) -> None:  # type: ignore[no-untyped-def]
        app.extensions["quizengine.db"].engine.dispose(close=False)  # no connection shared across a fork
        if app.config["EXPIRY_SWEEP_SECONDS"] > 0:
            sweeper(app, app.config["EXPIRY_SWEEP_SECONDS"])

    # Everything imported so far is shared with the forked workers; keep the garbage collector from
    # touching (and so copying) those pages in every worker.
    gc.collect()
    gc.freeze()
    Server().run()
