"""Families: items that give each other away are drawn at most once per attempt.

An item may declare ``family:``; a quiz draw never takes two items of one family (``distinct``,
called by the services' draw). ``give_away_pairs`` finds the pairs of a draw pool that ought to
share a family and don't: near-identical prompts, or the same key under the same stem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

PROMPT_RATIO = 0.8  # difflib ratio of two prompts at or above which they are near-identical
STEM_SHARE = 0.5  # share of content words two prompts have in common (Jaccard) for "the same stem"
STOP = frozenset("a an the of to in on for and or is are be by with as at it its this that which what "
                 "how does do from into than then when where why your you each one".split())


def distinct(candidates: Iterable[T], count: int, family_of: Callable[[T], str | None], taken: set[str]) -> list[T]:
    """The first ``count`` candidates in order, skipping any whose family is in ``taken`` (which grows)."""
    out: list[T] = []
    for c in candidates:
        if len(out) == count:
            break
        fam = family_of(c)
        if fam is not None:
            if fam in taken:
                continue
            taken.add(fam)
        out.append(c)
    return out


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in STOP and len(w) > 1)


def static_key(m: Any) -> Any:
    """A hashable form of a static item's key (None for a calculated item)."""
    if getattr(m, "calc", None) is not None:
        return None
    t = m.type
    if t in ("single_choice", "multiple_select"):
        return (t, frozenset(" ".join(c.text.lower().split()) for c in m.choices if c.correct))
    if t == "numeric":
        return (t, repr(m.answer))
    if t == "true_false":
        return (t, m.answer)
    if t == "short_text":
        return (t, " ".join(m.answers[0].lower().split()))
    if t == "matching":
        return (t, frozenset((p.left.lower(), p.right.lower()) for p in m.pairs))
    if t == "ordering":
        return (t, tuple(s.lower() for s in m.sequence))
    return None


def give_away_pairs(items: list[Any]) -> list[tuple[Any, Any, str]]:
    """(first, second, why) for pairs of item models, in list order, without a shared family and
    not both parametrized, whose prompts are near-identical or whose static keys are identical
    under the same stem."""
    info = [(m, _words(m.prompt), " ".join(m.prompt.split()), static_key(m), bool(getattr(m, "params", None)))
            for m in items]
    out = []
    for i, (a, wa, pa, ka, vary_a) in enumerate(info):
        for b, wb, pb, kb, vary_b in info[i + 1:]:
            if (a.family is not None and a.family == b.family) or (vary_a and vary_b):
                continue  # two parametrized items give each student other numbers: a shared preamble gives nothing away
            union = len(wa | wb)
            share = len(wa & wb) / union if union else 0.0  # no content words: no stem to share
            if share < STEM_SHARE:
                continue
            if ka is not None and ka == kb:
                out.append((a, b, f"the same key under the same stem ({share:.0%} of their content words shared)"))
                continue
            ratio = difflib.SequenceMatcher(None, pa, pb, autojunk=False).ratio()
            if ratio >= PROMPT_RATIO:
                out.append((a, b, f"near-identical prompts (difflib ratio {ratio:.2f})"))
    return out
