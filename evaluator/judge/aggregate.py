"""Pure aggregation of repeated samples and jurors, per rubric dimension.

Why pure functions: the same numbers are needed when a judgment is made (the aggregate's score and
flags), when the report reads stored rows (inter-judge agreement across transcripts) and in tests;
none of them needs a model or a store.

Rules (documented in the README):
- A member's dimension counts only when it is `scored`; the aggregate says how many did (`n_scored`
  of `n`). With no scored member the aggregate is `not_observed` when most members said so, else
  `unscored`.
- The score of several samples is their median; with an even count the LOWER median, so the
  score stays a level of the scale (an ordinal scale has no half levels) and ties lean to the
  cautious side.
- Spread is max - min over the scored samples; `agreement` is the share of samples equal to the
  median. A dimension is `unstable` when the spread exceeds `unstable_threshold(scale)`: one level
  on scales of up to five levels, a quarter of the range on wider ones. Adjacent levels are normal
  sampling noise; a jump over a level is not.
- A jury first reduces each juror's samples to that juror's median, then combines the jurors: the
  median, or a weighted mean (rounded to the nearest level) when every juror has a weight. Jurors
  `disagree` on a dimension when their scores are two or more levels apart.
- Inter-judge agreement is Krippendorff's alpha at the ordinal level over the scale's levels, with
  the jurors as coders and the transcripts as units (`jury_alpha`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DISAGREE_LEVELS = 2  # jurors this many levels apart (or more) disagree


@dataclass(frozen=True)
class MemberDimension:
    """One member's result for one dimension: who (juror label, sample index) and what it said."""

    juror: str
    sample: int
    status: str
    score: int | None = None


@dataclass
class DimensionAggregate:
    """The combined result of one dimension and the evidence of how much the members agreed."""

    status: str
    score: int | None
    n: int
    n_scored: int
    min: int | None = None
    max: int | None = None
    agreement: float | None = None  # share of scored samples equal to the median
    unstable: bool = False
    jurors: dict[str, int | None] = field(default_factory=dict)  # each juror's median of its samples
    juror_spread: dict[str, int] = field(default_factory=dict)  # each juror's max - min over its samples
    disagree: bool = False
    weighted_mean: float | None = None
    weights: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("status", "score")}


def lower_median(values: Sequence[float]) -> float:
    """The median; with an even count the lower of the two middle values (a level of the scale)."""
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def unstable_threshold(lo: int, hi: int) -> int:
    """Largest spread of samples that is still stable: 1 level up to a 5-level scale, a quarter of
    the range on wider scales (2 on 0-10)."""
    return max(1, math.floor((hi - lo) / 4))


def _reduce(scores: list[int], lo: int, hi: int) -> tuple[int, int, int, float, bool]:
    """(median, min, max, share agreeing with the median, unstable) of one set of scored samples."""
    median = int(lower_median(scores))
    spread = max(scores) - min(scores)
    share = sum(s == median for s in scores) / len(scores)
    return median, min(scores), max(scores), share, spread > unstable_threshold(lo, hi)


def combine(members: Sequence[MemberDimension], lo: int, hi: int,
            weights: Mapping[str, float] | None = None) -> DimensionAggregate:
    """Aggregate one dimension over every member (all samples of all jurors)."""
    n = len(members)
    scored = [m for m in members if m.status == "scored" and m.score is not None]
    if not scored:
        not_observed = sum(m.status == "not_observed" for m in members)
        return DimensionAggregate(status="not_observed" if not_observed * 2 > n else "unscored",
                                  score=None, n=n, n_scored=0)
    by_juror: dict[str, list[int]] = {}
    for m in members:
        by_juror.setdefault(m.juror, [])
    for m in scored:
        by_juror[m.juror].append(int(m.score))  # type: ignore[arg-type]
    jurors: dict[str, int | None] = {}
    spreads: dict[str, int] = {}
    unstable = False
    for juror, scores in by_juror.items():
        if not scores:
            jurors[juror] = None
            continue
        med, s_min, s_max, _, juror_unstable = _reduce(scores, lo, hi)
        jurors[juror], spreads[juror] = med, s_max - s_min
        unstable = unstable or juror_unstable
    juror_scores = [s for s in jurors.values() if s is not None]
    agg = DimensionAggregate(status="scored", score=None, n=n, n_scored=len(scored), jurors=jurors,
                             juror_spread=spreads, unstable=unstable,
                             min=min(m.score for m in scored), max=max(m.score for m in scored))  # type: ignore[type-var]
    if len(by_juror) == 1:  # repeated samples of one model: the median of the samples
        score, _, _, share, _ = _reduce([int(m.score) for m in scored], lo, hi)  # type: ignore[arg-type]
        agg.score, agg.agreement = score, share
        return agg
    agg.disagree = max(juror_scores) - min(juror_scores) >= DISAGREE_LEVELS
    scored_jurors = {j: s for j, s in jurors.items() if s is not None}
    if weights and all(weights.get(j, 0) > 0 for j in scored_jurors):
        total = sum(weights[j] for j in scored_jurors)
        mean = sum(weights[j] * s for j, s in scored_jurors.items()) / total
        agg.weighted_mean, agg.weights = mean, {j: weights[j] for j in scored_jurors}
        agg.score = min(hi, max(lo, math.floor(mean + 0.5)))
    else:
        agg.score = int(lower_median(juror_scores))
    agg.agreement = sum(s == agg.score for s in juror_scores) / len(juror_scores)
    return agg


def jury_alpha(units: Sequence[Mapping[str, int | None]], levels: Sequence[int]) -> float | None:
    """Krippendorff's alpha (ordinal, over the scale's `levels`) with jurors as coders and each
    mapping {juror: score or None} one unit (a transcript). None when it is undefined: fewer than
    two units with two or more scores, or no variation at all."""
    coders = sorted({j for u in units for j in u})
    usable = [u for u in units if sum(u.get(j) is not None for j in coders) >= 2]
    if len(coders) < 2 or len(usable) < 2:
        return None
    data = [[math.nan if u.get(j) is None else float(u[j]) for u in usable] for j in coders]  # type: ignore[arg-type]
    values = {v for row in data for v in row if not math.isnan(v)}
    if len(values) < 2:
        return None
    import krippendorff

    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                               value_domain=[float(v) for v in levels])
    return None if math.isnan(alpha) else float(alpha)
