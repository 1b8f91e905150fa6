"""Each student's next attempt planned ahead (issue 14, part 3): the warmers that render a student's
upcoming questions (services/warming.py) also keep, per (student, quiz, attempt number), the draw's
rows and the JSON of the questions a fresh attempt shows (``StartPlan``). A start whose plan is still
valid then reads one row and writes the attempt: no draw (an HMAC per pool item), no views read and
parsed, no questions serialized (services/quickstart.py).

A plan is valid while its ``basis`` is the one the start computes: the banks' items and the quizzes
(the pool's stamp, as the draw's own cache keys it), the items the student met in earlier attempts
(``repeats: avoid``), the server secret (a tag of it, not the secret) and the renderer's format.
Anything else a start depends on (the quiz's window, the student's terms, the attempts made) is read
at the start as before; a plan holds nothing of an answer key (the views are the public ones).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from ..db import Database, dialect_insert
from ..models_rendering import StartPlan
from . import renderings
from .clock import now
from .draw import STAMP

BATCH = 200  # plans per IN (...) of a read and per write


@dataclass
class Spec:
    """A draw made ahead: the student's attempt ``number`` at the quiz, each question as (slot, item
    version id, seed, the slot's points or None for the item's own)."""

    user_id: int
    quiz_id: str
    number: int
    basis: str
    drawn: list[tuple[int, int, int, float | None]]


@functools.lru_cache(maxsize=8)
def secret_tag(secret: str) -> str:
    """A tag of the server secret (a changed secret changes every draw); not the secret itself."""
    return hashlib.sha256(b"quizengine start plan\x1f" + secret.encode()).hexdigest()[:16]


def basis(stamp: Any, seen: dict[str, int], secret: str) -> str:
    """What a draw depended on: the pool's stamp (``draw.STAMP``: the items' count, the sum of their
    version ids, the last load) and the format, the items met before as the draw saw them, the secret."""
    met = hashlib.sha256(json.dumps(sorted(seen.items())).encode()).hexdigest()[:16]
    return f"{_pool(stamp)}|{met}|{secret_tag(secret)}"


def _pool(stamp: Any) -> str:
    """The part of a basis that the banks, the quizzes and the renderer decide."""
    count, total, loaded = stamp
    when = loaded.isoformat() if hasattr(loaded, "isoformat") else str(loaded)
    return f"{renderings.RENDER_FORMAT}|{int(count)}|{int(total)}|{when}"


def fresh_questions(rows: list[dict[str, Any]], views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions of an attempt just started, with no response yet (``views.attempt_view``'s)."""
    questions = []
    for r, view in zip(rows, views):
        d = {k: value for k, value in view.items() if k != "figures"}
        d.update({"id": f"q{r['slot'] + 1}", "points": r["points"], "response": None, "saved_at": None, "seq": None,
                  "format_error": None})
        if "figures" in view:
            d["figures"] = list(view["figures"])
        questions.append(d)
    return questions


def questions_json(questions: list[dict[str, Any]]) -> str:
    """The questions as the start's answer writes them (compact JSON, ASCII)."""
    return json.dumps(questions, separators=(",", ":"))


def settle(db: Database, specs: Iterable[Spec]) -> int:
    """Keep a plan for each draw whose questions are all rendered and whose stored plan is missing or
    of another basis (one read for all, a short write per batch); the number of plans written."""
    specs = list({(p.user_id, p.quiz_id, p.number): p for p in specs}.values())
    if not specs:
        return 0
    with db.read() as s:
        have = _bases(s, specs)
        todo = [p for p in specs if have.get((p.user_id, p.quiz_id, p.number)) != p.basis]
        views = renderings.lookup(s, [(iv, seed) for p in todo for _, iv, seed, _ in p.drawn]) if todo else {}
    made = []
    for p in todo:
        shown = [views.get((iv, seed)) for _, iv, seed, _ in p.drawn]
        if any(v is None for v in shown):
            continue  # not rendered (a failed render): the start draws as always
        rows = [{"slot": slot, "item_version_id": iv, "seed": seed, "points": float(v["points"] if pts is None else pts)}
                for (slot, iv, seed, pts), v in zip(p.drawn, shown)]
        made.append({"user_id": p.user_id, "quiz_id": p.quiz_id, "number": p.number, "basis": p.basis,
                     "rows": json.dumps([[r["slot"], r["item_version_id"], r["seed"], r["points"]] for r in rows]),
                     "questions": questions_json(fresh_questions(rows, shown)), "created_at": now()})
    for k in range(0, len(made), BATCH):
        with db.write() as s:
            stmt = dialect_insert(s.get_bind().dialect.name)(StartPlan).values(made[k:k + BATCH])
            s.execute(stmt.on_conflict_do_update(
                index_elements=["user_id", "quiz_id", "number"],
                set_={c: stmt.excluded[c] for c in ("basis", "rows", "questions", "created_at")}))
    return len(made)


def _bases(s: Session, specs: list[Spec]) -> dict[tuple[int, str, int], str]:
    keys = [(p.user_id, p.quiz_id, p.number) for p in specs]
    out: dict[tuple[int, str, int], str] = {}
    for k in range(0, len(keys), BATCH):
        out.update({(u, q, n): b for u, q, n, b in s.execute(
            select(StartPlan.user_id, StartPlan.quiz_id, StartPlan.number, StartPlan.basis).where(
                tuple_(StartPlan.user_id, StartPlan.quiz_id, StartPlan.number).in_(keys[k:k + BATCH])))})
    return out


def prune(db: Database, secret: str) -> int:
    """Delete the plans no start can use again: drawn from other banks or quizzes (another pool stamp),
    under another secret or renderer format; how many went. Run when the
    banks are loaded, as ``renderings.prune`` is: the table then holds only plans of this basis."""
    with db.read() as s:
        head, tail = _pool(s.execute(STAMP).one()) + "|", "|" + secret_tag(secret)
    with db.write() as s:  # one statement (plans are a few per student), at load time, before serving
        return s.execute(delete(StartPlan).where(~(StartPlan.basis.startswith(head, autoescape=True)
                                                   & StartPlan.basis.endswith(tail, autoescape=True)))).rowcount


def prune_caches(db: Database, secret: str) -> list[str]:
    """Prune the rendering cache (``renderings.prune``) and the plans (``prune``) after a bank load;
    a line for each that dropped something."""
    views, planned = renderings.prune(db), prune(db, secret)
    return ([f"rendering cache: dropped {views} rows of an earlier format"] if views else []) + (
        [f"start plans: dropped {planned} drawn from earlier banks or quizzes"] if planned else [])


def rows_of(text: str) -> list[dict[str, Any]]:
    """A plan's rows as the start writes them."""
    return [{"slot": slot, "item_version_id": iv, "seed": seed, "points": points}
            for slot, iv, seed, points in json.loads(text)]


class Planner:
    """Collects the draws a warmer makes, each with its basis (the pool's stamp read once, in the
    warmer's read transaction: the one its draws read the pool in)."""

    def __init__(self, s: Session, secret: str):
        self.stamp, self.secret, self.specs = s.execute(STAMP).one(), secret, []  # type: list[Spec]

    def add(self, user_id: int, quiz_id: str, number: int, seen: dict[str, int],
            drawn: list[tuple[int, int, float | None]]) -> None:
        """A draw: ``seen`` as the draw was given it; ``drawn``: (item version id, seed, points) per slot."""
        self.specs.append(Spec(user_id, quiz_id, number, basis(self.stamp, seen, self.secret),
                               [(slot, iv, seed, points) for slot, (iv, seed, points) in enumerate(drawn)]))

    def ready(self, s: Session, quiz_id: str, numbers: dict[int, int]) -> dict[int, list[tuple[int, int]]]:
        """The students (of ``numbers``: user id -> the attempt they would start) whose attempt is planned
        on the basis of a draw with no item met before, with its questions' (item version, seed): a warmer
        need not draw those again (a plan is kept only once every question of it is rendered)."""
        want = basis(self.stamp, {}, self.secret)
        out: dict[int, list[tuple[int, int]]] = {}
        ids = list(numbers)
        for k in range(0, len(ids), BATCH):
            for uid, number, b, rows in s.execute(
                    select(StartPlan.user_id, StartPlan.number, StartPlan.basis, StartPlan.rows).where(
                        StartPlan.quiz_id == quiz_id, StartPlan.user_id.in_(ids[k:k + BATCH]))):
                if b == want and numbers[uid] == number:
                    out[uid] = [(r["item_version_id"], r["seed"]) for r in rows_of(rows)]
        return out
