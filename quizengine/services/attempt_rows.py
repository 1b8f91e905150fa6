"""An attempt read as plain rows, without the ORM: its head and one joined query for its questions,
their responses and their item versions' keys. For the submit path (grading, the score's write and
the results it answers with), where building some sixty ORM objects twice per submit cost more than
the grading of most questions (issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, aliased, undefer

from ..bank.types import item_type
from ..bank.variant import Variant
from ..models import Attempt, AttemptQuestion, ItemVersion, Response, Role
from ..models_rendering import Rendering
from .banks import bank_item, cached, cached_item, cached_variant
from .renderings import KEY_FORMAT, RENDER_FORMAT
from .errors import ServiceError
from .principal import Principal


class QuestionRow(NamedTuple):
    """One question of an attempt as stored, with its response (``answered`` false: none saved).
    A named tuple: built 20 times per read and copied with its scores (``_replace``) per submit,
    where a frozen dataclass's ``__init__`` and ``dataclasses.replace`` cost 1-2% of a submit."""

    id: int
    slot: int
    item_version_id: int
    item_id: str
    version: str
    seed: int
    points: float
    score: float | None
    override_score: float | None
    result: dict[str, Any] | None
    answered: bool
    value: Any
    seq: int | None
    saved_at: datetime | None
    solution_html: str | None = None  # the explanation rendered ahead, when read (question_rows(solutions=True))
    view: dict[str, Any] | None = None  # a multi-part question's public view rendered ahead, read with them
    grading_key: dict[str, Any] | None = None  # its grading key kept ahead (services/renderings.KEY_FORMAT), if any

    @property
    def key(self) -> tuple[int, int]:
        """The rendering cache's key: (item version id, seed)."""
        return self.item_version_id, self.seed

    def variant(self, s: Session) -> Variant:
        """The question's variant (this process's cache; the item version read only on a miss)."""
        return cached_variant(s, self.item_version_id, self.item_id, self.version, self.seed)


_HEAD = select(Attempt.id, Attempt.user_id, Attempt.quiz_id, Attempt.state, Attempt.expires_at,
               Attempt.submitted_at, Attempt.score, Attempt.max_score)

# Each question's grading key kept ahead (services/renderings.KEY_FORMAT) comes with it: grading and
# the results read it instead of building the variant.
_KEY = aliased(Rendering, name="grading_key")
_QUESTIONS = (select(AttemptQuestion.id, AttemptQuestion.slot, AttemptQuestion.item_version_id, ItemVersion.item_id,
                     ItemVersion.version, AttemptQuestion.seed, AttemptQuestion.points, AttemptQuestion.score,
                     AttemptQuestion.override_score, AttemptQuestion.result, Response.id.label("response_id"),
                     Response.value, Response.seq, Response.saved_at, _KEY.view.label("key"))
              .join(ItemVersion, ItemVersion.id == AttemptQuestion.item_version_id)
              .outerjoin(Response, Response.question_id == AttemptQuestion.id)
              .outerjoin(_KEY, (_KEY.item_version_id == AttemptQuestion.item_version_id)
                         & (_KEY.seed == AttemptQuestion.seed) & (_KEY.format == KEY_FORMAT)))

# The same with each question's explanation as rendered ahead (services/renderings.solutions, in
# the same query), and a multi-part question's public view (its parts' prompts, rendered): for the
# submit, whose results show them.
_SOLVED = (_QUESTIONS.add_columns(Rendering.solution_html,
                                  case((ItemVersion.type == "multipart", Rendering.view), else_=None).label("view"))
           .outerjoin(Rendering, (Rendering.item_version_id == AttemptQuestion.item_version_id)
                      & (Rendering.seed == AttemptQuestion.seed) & (Rendering.format == RENDER_FORMAT)))


# Built once, with the attempt as a parameter, and run on the session's connection (Core): the ORM's
# per-statement work (building the clause, its cache key, the ORM compile state) cost more than the
# statements themselves on the submit path (0.4 ms against 0.08 ms for the head, issue 14).
_HEAD_OF = _HEAD.where(Attempt.id == bindparam("attempt_id"))
_QUESTIONS_OF = _QUESTIONS.where(AttemptQuestion.attempt_id == bindparam("attempt_id")).order_by(AttemptQuestion.slot)
_SOLVED_OF = _SOLVED.where(AttemptQuestion.attempt_id == bindparam("attempt_id")).order_by(AttemptQuestion.slot)


def attempt_head(s: Session, attempt_id: int, user: Principal | None = None) -> Row[Any] | None:
    """The attempt's own columns, or None; with ``user``, 404 unless they may see it (as
    ``attempts.load_attempt``: its student, or an instructor)."""
    head = s.connection().execute(_HEAD_OF, {"attempt_id": attempt_id}).first()
    if user is not None and (head is None or (head.user_id != user.id and user.role != Role.INSTRUCTOR)):
        raise ServiceError(404, f"no attempt {attempt_id}")
    return head


def question_rows(s: Session, attempt_id: int, solutions: bool = False) -> list[QuestionRow]:
    """The attempt's questions in slot order, each with its response and item version's key (one query);
    with ``solutions``, each with its explanation as rendered ahead (None where there is none)."""
    rows = s.connection().execute(_SOLVED_OF if solutions else _QUESTIONS_OF, {"attempt_id": attempt_id})
    return [QuestionRow(r.id, r.slot, r.item_version_id, r.item_id, r.version, r.seed, r.points, r.score,
                        r.override_score, r.result, r.response_id is not None, r.value, r.seq, r.saved_at,
                        r.solution_html if solutions else None, r.view if solutions else None, _key_of(r.key))
            for r in rows]


def _key_of(kept: Any) -> dict[str, Any] | None:
    """The grading key in a kept row (``{"key": ...}``), or None (none kept, or not a dict)."""
    key = kept.get("key") if isinstance(kept, dict) else None
    return key if isinstance(key, dict) else None


def variants(s: Session, rows: list[QuestionRow], explained: bool = False) -> list[Variant]:
    """Each question's variant, or where its grading key was kept ahead (``QuestionRow.grading_key``) the type's
    stand-in from it (``ItemType.from_key``: what grading, ``accepted`` and ``review`` read), unless
    ``explained`` asks for an explanation that was not rendered ahead (only the variant has it). The
    item versions this process holds no item of are read in one query (an item already rebuilt here
    needs no read: only its variant for the seed is built)."""
    built = [cached(q.item_id, q.version, q.seed) for q in rows]  # (looked up once per question)
    missing = {q.item_version_id for q, v in zip(rows, built)
               if v is None and cached_item(q.item_id, q.version) is None}
    # held here while the variants are built: the session's identity map, where each variant's s.get
    # finds its version without a query, keeps only weak references
    held = {iv.id: iv for iv in s.scalars(select(ItemVersion).where(ItemVersion.id.in_(missing))
                                          .options(undefer(ItemVersion.data)))} if missing else {}
    out = [v or _stand_in(q, held, explained) or q.variant(s) for q, v in zip(rows, built)]
    del held
    return out


def _stand_in(q: QuestionRow, held: dict[int, ItemVersion], explained: bool) -> Variant | None:
    """The question's grading stand-in from its kept key (its item from this process's cache); None
    (the variant is built) without a key, when ``explained`` needs an explanation not rendered ahead,
    or when the key is not one its type reads."""
    if q.grading_key is None or (explained and q.solution_html is None):
        return None
    item = cached_item(q.item_id, q.version) or bank_item(held[q.item_version_id])
    try:
        return item_type(item.model.type).from_key(item, q.seed, q.grading_key)
    except (NotImplementedError, KeyError, TypeError, ValueError):
        return None

