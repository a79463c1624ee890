"""``Article`` -> plain-text summary and key points.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

from dataclasses import dataclass

from .content import Article


@dataclass(frozen=True)
class KeyPoint:
    lead: str  # the bold lead-in, e.g. "Cost"
    text: str  # the rest of the bullet, plain text


@dataclass(frozen=True)
class Summary:
    text: str  # plain text, no markup or entities, never cut mid-word
    key_points: tuple[KeyPoint, ...] = ()


def summarize(article: Article, *, words: int = 60, key_points: int = 3) -> Summary:
    raise NotImplementedError("summarize: not yet")
