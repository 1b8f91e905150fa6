"""What a worker serving the student pages never imports (README, "Performance": server memory).

A fresh interpreter builds the app on a copy of the test database, serves a login, the dashboard,
a start, the attempt page, autosaves and a submit through the test client, then reports which of
the lazily imported packages it loaded: the LTI stack, Alembic, the test tools, PostgreSQL's
dialect (the test runs on SQLite), the banks' validator. (matplotlib is
left out: the attempt page draws the plots of the variants that have one.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import BANKS, POSTGRES, ROOT

NEVER_IN_A_WORKER = ["pylti1p3", "jwcrypto", "jwt", "cryptography", "requests", "alembic", "schemathesis", "hypothesis",
                     # on SQLite: PostgreSQL's dialect (about 4 MiB); the banks' validator (instructor pages only)
                     "sqlalchemy.dialects.postgresql", "quizengine.bank.validate", "multiprocessing"]

SCRIPT = textwrap.dedent("""
    import json, sys
    from quizengine import create_app
    from quizengine.services import accounts

    url, instance, banks, never = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "s", "BANKS": banks, "INSTANCE": instance,
                      "PASSWORD_METHOD": "argon2id:m=8,t=1,p=1", "WTF_CSRF_ENABLED": False,
                      "LOGINS_PER_ADDRESS": 0, "LOGINS_PER_SECOND": 0})
    with app.extensions["quizengine.db"].write() as s:
        accounts.add_user(s, "ann", "student", "password-123", method="argon2id:m=8,t=1,p=1")
    c = app.test_client()
    statuses = [c.post("/login", data={"username": "ann", "password": "password-123"}).status_code,
                c.get("/dashboard").status_code]
    r = c.post("/quizzes/module-04-prep/start")
    statuses.append(r.status_code)
    aid = int(r.headers["Location"].rsplit("/", 1)[1])
    statuses.append(c.get(f"/attempts/{aid}").status_code)
    token = c.post("/api/v1/auth/token", json={"username": "ann", "password": "password-123"}).json["token"]
    h = {"Authorization": f"Bearer {token}"}
    questions = c.get(f"/api/v1/attempts/{aid}", headers=h).json["questions"]
    for seq, q in enumerate(questions[:3], 1):
        statuses.append(c.post(f"/attempts/{aid}/autosave", json={"question": q["id"], "response": None,
                                                                   "seq": seq}).status_code)
    statuses.append(c.put(f"/api/v1/attempts/{aid}/responses/{questions[3]['id']}", headers=h,
                          json={"response": None, "seq": 1}).status_code)
    statuses += [c.get(f"/attempts/{aid}/confirm").status_code, c.post(f"/attempts/{aid}/submit").status_code,
                 c.get(f"/attempts/{aid}/result").status_code]
    print(json.dumps({"statuses": statuses, "loaded": [m for m in never if m in sys.modules]}))
""")


@pytest.mark.skipif(POSTGRES, reason="imports do not depend on the database; the SQLite pass checks them")
def test_a_worker_serving_the_student_pages_never_imports_the_lazy_packages(template_db, tmp_path):
    db = tmp_path / "test.sqlite3"
    shutil.copy(template_db.removeprefix("sqlite:///"), db)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{db}", str(tmp_path), str(BANKS),
                          json.dumps(NEVER_IN_A_WORKER)], capture_output=True, text=True, env=env, timeout=300,
                         cwd=Path(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [302, 200, 302, 200, 200, 200, 200, 200, 200, 302, 200], report
    assert report["loaded"] == []
