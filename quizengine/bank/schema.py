"""Pydantic models of a bank file and a quiz definition, and the parts item types share.

Each item type's own model lives in its module of ``bank/types/`` (the registry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from ..tolerance import DEFAULT_TOLERANCE, Tolerance  # noqa: F401 - part of the bank schema

MISTAKES = (
    "derivative_as_value", "no_activation_derivative", "loss_factor", "transposed_weights",
    "gradient_ascent", "momentum_sign", "no_bias_correction", "transposed_gradient", "derivative_at_output",
)

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=40)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)]
Text = Annotated[str, Field(min_length=1)]
Mistake = Literal[MISTAKES]  # type: ignore[valid-type]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(Strict):
    """How one parameter is drawn: a grid ``range`` + ``step``, or a ``choice`` list."""

    range: tuple[float, float] | None = None
    step: float | None = Field(default=None, gt=0)
    choice: list[Any] | None = Field(default=None, min_length=1)
    shape: list[Annotated[int, Field(ge=1, le=16)]] | None = Field(default=None, min_length=1, max_length=2)
    exclude: list[float] = []

    @model_validator(mode="after")
    def _one_source(self) -> "ParamSpec":
        if (self.range is None) == (self.choice is None):
            raise ValueError("give exactly one of 'range' (with 'step') or 'choice'")
        if self.range is not None:
            if self.step is None:
                raise ValueError("'range' needs a 'step' (the grid spacing)")
            lo, hi = self.range
            if lo > hi:
                raise ValueError(f"'range' [{lo}, {hi}] is empty: the low end must come first")
            if (hi - lo) / self.step > 1e6:
                raise ValueError("'range' / 'step' makes a grid of more than a million values")
        elif self.step is not None:
            raise ValueError("'step' goes with 'range', not with 'choice'")
        return self


# ---------------------------------------------------------------- figures (bank/figures/ draws them)

FIGURE_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus")
Ref = Annotated[str, Field(pattern=r"^\$[A-Za-z_][A-Za-z0-9_]*$")]  # "$name": a param or derived value


class FigureBase(Strict):
    caption: Annotated[str, Field(max_length=300)] | None = None
    # after_submission: only on the results page (and previews), for a figure that would give the key away
    when: Literal["always", "after_submission"] = "always"


class NetworkFigure(FigureBase):
    """Neurons by layer, edges labelled with this variant's weights; the numbers come from ``calc``."""

    kind: Literal["network"]


class ActivationFigure(FigureBase):
    """An activation's curve with this variant's z marked; name, alpha and z default to ``calc``'s."""

    kind: Literal["activation"]
    name: Literal[FIGURE_ACTIVATIONS] | None = None  # type: ignore[valid-type]
    alpha: float | Ref | None = None
    z: float | Ref | list[float | Ref] | None = None
    z_range: tuple[float, float] | None = None  # the plotted z axis; default: -5..5, widened to the points

    @model_validator(mode="after")
    def _range(self) -> "ActivationFigure":
        if self.z_range is not None and not self.z_range[0] < self.z_range[1]:
            raise ValueError("'z_range' [lo, hi] needs lo < hi")
        return self


class TrajectoryFigure(FigureBase):
    """An optimizer's path over the contours of ``calc``'s quadratic objective (2 parameters)."""

    kind: Literal["trajectory"]
    steps: int | None = Field(default=None, ge=0, le=50)  # steps drawn; default: every step of calc


FIGURE_KINDS = ("network", "activation", "trajectory")
Figure = Annotated[NetworkFigure | ActivationFigure | TrajectoryFigure, Field(discriminator="kind")]


class ItemBase(Strict):
    id: Id
    prompt: Text
    points: float = Field(default=1.0, gt=0)
    explanation: str | None = None
    tags: list[str] = []
    difficulty: Literal["easy", "medium", "hard"] | None = None
    source: str | None = None
    family: Slug | None = None  # items that give each other away: a quiz draw takes at most one of a family
    figures: list[Figure] = Field(default=[], max_length=4)


class Calculated(Strict):
    """Parameters drawn per variant and a calculator spec that refers to them."""

    params: dict[Name, ParamSpec] = {}
    derived: dict[Name, str] = {}
    calc: dict[str, Any] | None = None
    mistakes: list[Mistake] = []
    allow_trivial: bool = False

    @property
    def parametrized(self) -> bool:
        return bool(self.params)

    @property
    def calculated(self) -> bool:
        return self.calc is not None


class Choice(Strict):
    id: Id
    text: Text
    correct: StrictBool = False
    feedback: str | None = None


class BankHeader(Strict):
    """A bank file without its items (they are validated one by one)."""

    topic: Slug
    title: Text
    source: str | None = None
    items: list[Any] = Field(min_length=1)


class Slot(Strict):
    """Draw ``count`` distinct items from a pool: named items, or a topic (optionally by tags)."""

    items: list[Id] | None = Field(default=None, min_length=1)
    topic: Slug | None = None
    tags: list[str] | None = None
    exclude_tags: list[str] | None = None  # leave out the topic's items with any of these tags
    count: int = Field(default=1, ge=1)
    points: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _pool(self) -> "Slot":
        if (self.items is None) == (self.topic is None):
            raise ValueError("a slot names its pool with exactly one of 'items' or 'topic'")
        if (self.tags is not None or self.exclude_tags is not None) and self.topic is None:
            raise ValueError("'tags' and 'exclude_tags' filter a 'topic' pool")
        return self


class Quiz(Strict):
    id: Slug
    title: Text
    description: str | None = None
    max_attempts: int | None = Field(default=None, ge=1)
    score_policy: Literal["best", "last", "mean"] = "best"
    feedback: Literal["after_submission", "after_close", "never"] = "after_submission"
    # avoid: an attempt draws no item the student met in an earlier attempt (whose results showed the
    # key, or at least whether the answer was right) while the pools have unseen items left.
    repeats: Literal["avoid", "allow"] = "avoid"
    time_limit_min: float | None = Field(default=None, gt=0)
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    shuffle_slots: StrictBool = False
    slots: list[Slot] = Field(min_length=1)

    @model_validator(mode="after")
    def _window(self) -> "Quiz":
        for name in ("opens_at", "closes_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"'{name}' needs a time zone offset, e.g. 2026-12-04T09:00:00+01:00")
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValueError("'closes_at' must come after 'opens_at'")
        return self
