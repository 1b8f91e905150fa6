"""Typed ORM models, the enums of their state and role columns, and the shapes of their JSON columns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from sqlalchemy import (JSON, BigInteger, DateTime, Enum, Float, ForeignKey, Integer, MetaData, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Role(StrEnum):
    """A user's role (stored as its value; a StrEnum compares equal to the plain string)."""

    STUDENT = "student"
    INSTRUCTOR = "instructor"


class AttemptState(StrEnum):
    """An attempt is open until it is submitted, or expired when its time ran out."""

    OPEN = "open"
    SUBMITTED = "submitted"
    EXPIRED = "expired"


GRADED = (AttemptState.SUBMITTED, AttemptState.EXPIRED)  # the states whose scores count


def _as_string(enum: type[StrEnum], length: int) -> Enum:
    """An enum kept in a plain VARCHAR(length) column, as before enums: no CHECK, no native type."""
    return Enum(enum, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda members: [m.value for m in members])


# The content of the JSON columns.

class SlotDefinition(TypedDict, total=False):
    """One slot of a quiz: ``count`` items from named ``items`` or from a ``topic`` (by ``tags``)."""

    items: list[str] | None
    topic: str | None
    tags: list[str] | None
    exclude_tags: list[str] | None
    count: int
    points: float | None


class QuizDefinition(TypedDict, total=False):
    """Quiz.definition: the quiz YAML as validated (bank/schema.py's Quiz, dumped as JSON)."""

    id: str
    title: str
    description: str | None
    max_attempts: int | None
    score_policy: str
    feedback: str
    repeats: str  # "avoid" | "allow"; set in the app, it is kept over bank reloads
    time_limit_min: float | None
    opens_at: str | None
    closes_at: str | None
    shuffle_slots: bool
    slots: list[SlotDefinition]


class QuestionResult(TypedDict, total=False):
    """AttemptQuestion.result: what grading said of a response (services/grades.py writes it)."""

    feedback: str
    format_error: str | None
    mistake: str | None  # the buggy calculator the answer matches
    correct: bool
    answered: bool
    parts: list[dict[str, Any]]  # a multi-part item's per-part results (bank/ecf.PartResult.to_json)


class ChangeDetails(TypedDict, total=False):
    """ScoreChange.details: an override's ``cleared``, a regrade's item versions."""

    cleared: bool
    from_version: str
    to_version: str


# A response as the API takes it: a choice id or text, a list of ids, a boolean, numbers (or
# numeric strings) nested in lists, or a {left: right} mapping.
ResponseValue = str | bool | int | float | list[Any] | dict[str, str]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, Any: JSON}


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    student_id: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_as_string(Role, 20))
    password_hash: Mapped[str] = mapped_column(String(300))
    session_version: Mapped[int] = mapped_column(Integer, default=1)  # bumped to end every session
    created_at: Mapped[datetime]


class ItemVersion(Base):
    """One item's content as it was in a bank at some time (content-addressed)."""

    __tablename__ = "item_version"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(30))
    data: Mapped[dict[str, Any]] = mapped_column(deferred=True)  # the item's YAML mapping (loaded when first needed)
    bank_source: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class CurrentItem(Base):
    """The version of each item that the banks hold now (shared by every server worker)."""

    __tablename__ = "current_item"

    item_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_version.id"))
    topic: Mapped[str] = mapped_column(String(100), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON)

    item_version: Mapped[ItemVersion] = relationship()


class Quiz(Base):
    __tablename__ = "quiz"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[QuizDefinition] = mapped_column(JSON)  # the quiz YAML mapping (slots and rules)
    opens_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None]
    time_limit_s: Mapped[int | None]
    max_attempts: Mapped[int | None]
    score_policy: Mapped[str] = mapped_column(String(10))
    feedback: Mapped[str] = mapped_column(String(30))
    dates_locked: Mapped[bool] = mapped_column(default=False)  # schedule set by an instructor wins over the YAML
    updated_at: Mapped[datetime]


class Attempt(Base):
    __tablename__ = "attempt"
    __table_args__ = (UniqueConstraint("user_id", "quiz_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    quiz_id: Mapped[str] = mapped_column(ForeignKey("quiz.id"), index=True)
    number: Mapped[int]
    state: Mapped[AttemptState] = mapped_column(_as_string(AttemptState, 12))
    started_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    submitted_at: Mapped[datetime | None]
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    last_activity_at: Mapped[datetime | None]  # the last save: time between saves is credited to items

    user: Mapped[User] = relationship()
    questions: Mapped[list["AttemptQuestion"]] = relationship(order_by="AttemptQuestion.slot",
                                                              back_populates="attempt")


class AttemptQuestion(Base):
    """One question of an attempt: the exact item version and the seed of its variant."""

    __tablename__ = "attempt_question"
    __table_args__ = (UniqueConstraint("attempt_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id", ondelete="CASCADE"), index=True)
    slot: Mapped[int]
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_version.id"))
    seed: Mapped[int] = mapped_column(Integer)
    points: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)  # as graded (or regraded)
    override_score: Mapped[float | None] = mapped_column(Float)  # an instructor's manual score wins
    result: Mapped[QuestionResult | None] = mapped_column(JSON)  # feedback, mistake, format error after grading

    attempt: Mapped[Attempt] = relationship(back_populates="questions")
    item_version: Mapped[ItemVersion] = relationship()
    response: Mapped["Response | None"] = relationship(back_populates="question", uselist=False)


class Response(Base):
    """The last saved response to a question (autosave overwrites it)."""

    __tablename__ = "response"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("attempt_question.id", ondelete="CASCADE"), unique=True)
    value: Mapped[ResponseValue] = mapped_column(JSON)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)  # version: stored + 1 per save (old pages sent Date.now())
    saved_at: Mapped[datetime]
    first_saved_at: Mapped[datetime | None]
    active_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")  # seconds spent on it

    question: Mapped[AttemptQuestion] = relationship(back_populates="response")


class UserSession(Base):
    """A logged-in browser session; deleting the row ends it, whatever the cookie says."""

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, carried in the signed cookie
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


class LoginFailure(Base):
    """Login throttle counters per key (username and address pair, address), shared by every worker."""

    __tablename__ = "login_failure"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class ScoreChange(Base):
    """The audit trail of scores: manual overrides and regrades (who, when, old, new, why)."""

    __tablename__ = "score_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_question_id: Mapped[int] = mapped_column(ForeignKey("attempt_question.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # override | regrade
    old_score: Mapped[float | None] = mapped_column(Float)
    new_score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[int] = mapped_column(ForeignKey("user.id"))
    changed_at: Mapped[datetime]
    details: Mapped[ChangeDetails | None] = mapped_column(JSON)  # e.g. the item versions of a regrade


class BankFileVersion(Base):
    """Every saved version of a bank file, as written by the in-browser editor (or first seen)."""

    __tablename__ = "bank_file_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(300), index=True)  # relative to the banks folder
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    saved_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    saved_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")


# ---------------------------------------------------------------- LTI 1.3 (quizengine/lti/)

class LtiPlatform(Base):
    """A registered LMS (issuer and client id), with the URLs the tool calls and may be framed by."""

    __tablename__ = "lti_platform"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(200))
    auth_url: Mapped[str] = mapped_column(String(500))  # OIDC authorization endpoint
    token_url: Mapped[str] = mapped_column(String(500))  # OAuth2 client-credentials endpoint
    jwks_url: Mapped[str] = mapped_column(String(500))  # the platform's public keys
    frame_origins: Mapped[Any]  # origins allowed to frame the tool's pages (CSP frame-ancestors)
    created_at: Mapped[datetime]

    deployments: Mapped[list["LtiDeployment"]] = relationship(order_by="LtiDeployment.id",
                                                             cascade="all, delete-orphan")


class LtiDeployment(Base):
    __tablename__ = "lti_deployment"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(200))


class LtiKey(Base):
    """The tool's RSA signing keys: one current, one previous (still published while platforms catch up)."""

    __tablename__ = "lti_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)  # the RFC 7638 thumbprint
    role: Mapped[str] = mapped_column(String(10))  # current | previous
    private_pem: Mapped[str] = mapped_column(Text)  # never printed
    public_jwk: Mapped[Any]
    created_at: Mapped[datetime]


class LtiNonce(Base):
    """One-time values of the launch flow (OIDC state, nonce, deep-linking launch), each with an expiry."""

    __tablename__ = "lti_nonce"

    value: Mapped[str] = mapped_column(String(200), primary_key=True)  # kind-prefixed: state-..., nonce-...
    data: Mapped[Any | None]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LtiUser(Base):
    """An LMS user (issuer, sub) linked to a quizengine account."""

    __tablename__ = "lti_user"
    __table_args__ = (UniqueConstraint("issuer", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    sub: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)


class LtiContext(Base):
    """A course of a platform, with its Names and Role Provisioning Services URL (roster sync)."""

    __tablename__ = "lti_context"
    __table_args__ = (UniqueConstraint("platform_id", "context_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platform.id", ondelete="CASCADE"))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    memberships_url: Mapped[str | None] = mapped_column(String(1000))
    synced_at: Mapped[datetime | None]

    platform: Mapped[LtiPlatform] = relationship()


class LtiLineItem(Base):
    """Where a student's score for a quiz goes: an AGS line item of a launch."""

    __tablename__ = "lti_line_item"
    __table_args__ = (UniqueConstraint("user_id", "quiz_id", "platform_id", "lineitem"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    quiz_id: Mapped[str] = mapped_column(ForeignKey("quiz.id", ondelete="CASCADE"), index=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platform.id", ondelete="CASCADE"))
    lineitem: Mapped[str] = mapped_column(String(1000))
    lti_sub: Mapped[str] = mapped_column(String(255))  # the AGS userId
    scopes: Mapped[Any]


class LtiScoreOutbox(Base):
    """A score to post to a line item; kept until the platform accepted it (retried with backoff)."""

    __tablename__ = "lti_score_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_item_id: Mapped[int] = mapped_column(ForeignKey("lti_line_item.id", ondelete="CASCADE"), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every score change
    sent_version: Mapped[int] = mapped_column(Integer, default=0)  # the version the platform has
    tries: Mapped[int] = mapped_column(Integer, default=0)  # failed tries since the last success
    next_try_at: Mapped[datetime] = mapped_column(index=True)  # also a lease while a post is under way
    last_error: Mapped[str | None] = mapped_column(Text)
    last_sent_at: Mapped[datetime | None]
    last_payload: Mapped[Any | None]  # the score last accepted by the platform
