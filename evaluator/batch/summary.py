"""Pure aggregation of a cohort run's results: per-dimension counts, mean, median, distribution."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any


def dimension_summary(rows: Iterable[tuple[str, str, int | None]]) -> dict[str, dict[str, Any]]:
    """rows: (dimension_id, status, score) for every dimension of every judgment in the run.

    Returns, per dimension in first-seen order: scored count, mean, median, distribution over the
    score levels, and how many were not observed or unscored (never folded into the scores)."""
    scores: dict[str, list[int]] = defaultdict(list)
    statuses: dict[str, Counter] = defaultdict(Counter)
    for dim, status, score in rows:
        statuses[dim][status] += 1
        if status == "scored" and score is not None:
            scores[dim].append(int(score))
    out: dict[str, dict[str, Any]] = {}
    for dim in statuses:
        values = scores[dim]
        out[dim] = {
            "count": len(values),
            "mean": round(statistics.fmean(values), 3) if values else None,
            "median": _number(statistics.median(values)) if values else None,
            "distribution": {str(k): v for k, v in sorted(Counter(values).items())},
            "not_observed": statuses[dim]["not_observed"],
            "unscored": statuses[dim]["unscored"],
        }
    return out


def _number(value: float) -> int | float:
    """4.0 -> 4 (a median of whole scores is whole unless two middle values differ: then 3.5)."""
    return int(value) if float(value).is_integer() else value
