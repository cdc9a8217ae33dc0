"""What a baseline scorer returns: a score on the internal 1-5 scale, a rationale, and verbatim quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evaluator.judge import signals as S
from evaluator.judge.segment import Piece, quote_of
from evaluator.models import Evidence


@dataclass
class Verdict:
    """A dimension's internal result on the 1-5 baseline scale, before mapping onto the rubric scale."""

    score: int | None
    rationale: str
    evidence: list[Evidence] = field(default_factory=list)
    status: str = "scored"
    reason: str | None = None


def evidence(*items: tuple[Piece | None, list[str] | None]) -> list[Evidence]:
    """At most three distinct quotes, in the order given (most telling first); a long sentence is
    clipped around the first match of the named tables."""
    out: list[Evidence] = []
    for piece, tables in items:
        if piece is None:
            continue
        ev = Evidence(quote=quote_of(piece, [S.P[t][0] for t in tables or ()]), source=piece.source)
        # The quote verifier cannot place very short quotes ("try:"), so those are never offered.
        if len(re.sub(r"\W", "", ev.quote)) >= 10 and all(ev.quote != e.quote for e in out):
            out.append(ev)
    return out[:3]


def clamp(x: int) -> int:
    """Heuristic score arithmetic can leave the 1-5 scale; the scale is a contract, so pull it back in."""
    return max(1, min(5, x))


def short(text: str, n: int = 60) -> str:
    """Quotes inside a rationale stay a glance long; the full evidence is shown separately."""
    return text if len(text) <= n else text[: n - 3].rstrip() + "..."
