"""The set-up of one load.py run, before the server starts, each step timed (wall and CPU):

  schema, banks   `quizengine load-banks` (migrates the fresh database, loads the banks);
  accounts        one process imports the class with the server's password hash (every core hashing:
                  nothing else runs yet) and then the moonshot's extra students with a cheap one (they
                  never log in: their tokens are issued there), in that order, so that the same
                  student has the same id on every database of a run;
  reuse           (the second database of --both) the renderings of the first database's set-up
                  whose item version is the same on both (same id, item and content version), copied:
                  a rendering depends only on its item version and its seed;
  rendering ahead `quizengine warm` (the deploy step) for what the phases start: both attempts of
                  each student of the class (the spike, then the second starts), one attempt of each
                  extra student (the moonshot's starts); one warm process per core, each for a share
                  of the students; each renders only what the cache lacks.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .client import Student
from .phases import QUIZ
from .proc import log

CHEAP_HASH = "argon2id:m=8,t=1,p=1"  # the moonshot's extra students only (they never log in)

ACCOUNTS = '''
import json, os, sys
from quizengine import create_app
from quizengine.services import accounts
from quizengine.services.accounts import find_user, import_roster
from quizengine.services.logins import issue_token

app = create_app()
db = app.extensions["quizengine.db"]
accounts.hash_workers = lambda: len(os.sched_getaffinity(0))  # a set-up step: every core hashes
class_csv, extras_csv = json.load(sys.stdin)
import_roster(db, class_csv, app.config["PASSWORD_METHOD"])  # the server's password hash, as `users import`
tokens = {}
if extras_csv:
    import_roster(db, extras_csv, sys.argv[1])
    with db.read() as s:
        for line in extras_csv.splitlines()[1:]:
            name = line.split(",", 1)[0]
            tokens[name] = issue_token(app.config["SECRET_KEY"], find_user(s, name))
print(json.dumps(tokens))
'''


@dataclass
class Prepared:
    tokens: dict[str, str] = field(default_factory=dict)  # the extra students' tokens
    steps: list[tuple[str, float, float]] = field(default_factory=list)  # (step, wall s, CPU s of its processes)

    @property
    def wall(self) -> float:
        return sum(w for _, w, _ in self.steps)


class Step:
    """Times one set-up step: wall, and the CPU of the processes it ran (and this one's)."""

    def __init__(self, prepared: Prepared, kind: str, name: str):
        self.prepared, self.kind, self.name = prepared, kind, name

    def __enter__(self) -> "Step":
        self.t0, self.c0 = time.monotonic(), _cpu()
        self.note = ""
        return self

    def __exit__(self, *exc: object) -> None:
        wall, cpu = time.monotonic() - self.t0, _cpu() - self.c0
        self.prepared.steps.append((self.name, wall, cpu))
        if exc[0] is None:
            log(f"[{self.kind}] set-up: {self.name}: {wall:.1f} s (CPU {cpu:.1f} s)"
                + (f"; {self.note}" if self.note else ""))


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def roster(students: list[Student], name: str, number: int) -> str:
    return "username,full_name,student_id,email,password\n" + "".join(
        f"{s.username},{name} {s.i},{number + s.i},{s.username}@example.org,{s.password}\n" for s in students)


def run(cmd: list[str], env: dict[str, str], what: str, timeout: float, stdin: str | None = None) -> str:
    r = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"error: {what} failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r.stdout


def prepare(kind: str, env: dict[str, str], exe: str, students: list[Student], extras: list[Student],
            warm: bool, reuse: Path | None) -> Prepared:
    """The database of one run, ready to serve: schema, banks, accounts, renderings."""
    p = Prepared()
    with Step(p, kind, "schema and banks (quizengine load-banks)"):
        run([exe, "load-banks"], env, "quizengine load-banks", 600)
    with Step(p, kind, f"accounts: {len(students)} students (the server's password hash, every core)"
              + (f", {len(extras)} more for the moonshot ({CHEAP_HASH}; tokens issued directly)" if extras else "")):
        out = run([sys.executable, "-c", ACCOUNTS, CHEAP_HASH], env, "importing the students", 300 + 2 * len(students),
                  stdin=json.dumps([roster(students, "Student", 100000), roster(extras, "Moon", 200000) if extras else ""]))
        p.tokens = json.loads(out.strip().splitlines()[-1])
    if not warm:
        return p
    url = env["QUIZENGINE_DATABASE_URL"]
    copied = 0
    if reuse is not None and reuse.exists():
        with Step(p, kind, f"renderings reused from the first database's set-up ({reuse.name})") as step:
            copied, versions = copy_renderings(reuse, url)
            step.note = f"{copied} renderings of {versions} item versions the same on both databases"
    with Step(p, kind, "rendering ahead (quizengine warm: 2 attempts of each student of the class"
              + (", 1 of each extra student" if extras else "") + ")") as step:
        # after a copy, warm mostly checks that nothing is missing: one process per group is enough
        step.note = warm_parallel(env, exe, students, extras, 1 if copied else len(os.sched_getaffinity(0)))
    return p


def warm_parallel(env: dict[str, str], exe: str, students: list[Student], extras: list[Student], cores: int) -> str:
    """`quizengine warm` in ``cores`` processes per group, each for a share of its students; what they rendered."""
    cores = max(1, cores)
    jobs = [(part, attempts) for group, attempts in ((students, 2), (extras, 1))
            for part in (group[k::cores] for k in range(cores)) if part]
    running: list[subprocess.Popen] = []
    questions = rendered = 0
    failed = []
    try:
        for part, attempts in jobs:
            cmd = [exe, "warm", QUIZ, "--attempts", str(attempts)] + [a for s in part for a in ("--student", s.username)]
            running.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for proc in running:
            out, err = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                failed.append(f"{out[-2000:]}{err[-2000:]}")
                continue
            # "QUIZ: N students, Q questions in their next attempts, R rendered now (C were cached)"
            words = out.strip().splitlines()[-1].split()
            questions += int(words[words.index("questions") - 1])
            rendered += int(words[words.index("rendered") - 1])
    finally:  # interrupted (or one failed): no warm process outlives the run
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failed:
        raise SystemExit("error: quizengine warm failed:\n" + "\n".join(failed))
    return f"{len(jobs)} warm processes; {questions} questions, {rendered} rendered now, " \
           f"{questions - rendered} were cached"


def keep_for_reuse(url: str, to: Path) -> None:
    """A consistent copy of a SQLite database's renderings and item versions (the backup API: WAL-safe)."""
    src = sqlite3.connect(url.removeprefix("sqlite:///"))
    dst = sqlite3.connect(to)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def copy_renderings(source: Path, url: str) -> tuple[int, int]:
    """Copy into ``url`` the renderings of ``source`` (a SQLite copy) whose item version is the same in
    both (id, item, content version); (renderings copied, item versions in common)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from sqlalchemy import create_engine, insert, select

    from quizengine.models import ItemVersion
    from quizengine.models_rendering import Rendering

    src, dst = create_engine(f"sqlite:///{source}"), create_engine(url)
    version = select(ItemVersion.id, ItemVersion.item_id, ItemVersion.version)
    try:
        with src.connect() as a, dst.begin() as b:
            same = {row.id for row in set(a.execute(version)) & set(b.execute(version))}
            rows = a.execute(select(Rendering.__table__)).mappings()
            copied, batch = 0, []
            for row in rows:
                if row["item_version_id"] in same:
                    batch.append(dict(row))
                if len(batch) == 500:
                    b.execute(insert(Rendering.__table__), batch)
                    copied, batch = copied + len(batch), []
            if batch:
                b.execute(insert(Rendering.__table__), batch)
                copied += len(batch)
    finally:
        src.dispose()
        dst.dispose()
    return copied, len(same)
