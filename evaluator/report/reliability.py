"""The judge's own reliability for the judge-quality page: how stable repeated samples are, and how
much the jurors of a jury agree with each other.

Read from the aggregates' stored member statistics (`dimension_scores.ensemble`, written by
judge/ensemble.py), one aggregate per transcript, rubric version and judge as every score view
chooses them. SQL selects the rows; the summary is a pure function over them (inter-judge alpha
comes from judge/aggregate.py, the same function the tests check against the krippendorff package).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from evaluator.judge.aggregate import jury_alpha
from evaluator.report import queries as q


def ensemble_rows(con, schema: q.Schema, f: q.Filters) -> list[dict[str, Any]]:
    """(judge, rubric version, dimension, rubric position, member statistics) of every aggregate in scope."""
    sql, params = q._scope_sql(schema, f)
    return q._rows(con, sql + """
        SELECT j.model, j.rubric_version, d.dimension_id, d.position, d.ensemble
        FROM judged j JOIN dimension_scores d ON d.judgment_id = j.id
        WHERE d.ensemble IS NOT NULL
        ORDER BY j.model, d.position, d.dimension_id""", params)


def summarise(rows: Iterable[Mapping[str, Any]], levels: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Per judge, rubric version and dimension: `stability` of repeated samples (mean agreement with
    the median, share flagged unstable, mean range) and `jury` agreement (Krippendorff's alpha over the
    jurors, share of transcripts where they are two levels or more apart). A judge's samples under two
    rubric versions are two instruments' and are never pooled: with several versions among the rows,
    each row names its `rubric_version` (None when there is one, named on the page)."""
    rows = list(rows)
    split = len({r.get("rubric_version") for r in rows}) > 1
    groups: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for r in rows:
        stats = json.loads(r["ensemble"]) if isinstance(r["ensemble"], str) else r["ensemble"]
        key = (r["model"], r.get("rubric_version") if split else None, r["dimension_id"])
        g = groups.setdefault(key, {"position": r["position"], "stats": []})
        g["stats"].append(stats)
    stability, jury = [], []
    for (model, version, dim_id), g in sorted(groups.items(),
                                              key=lambda kv: (kv[0][0], str(kv[0][1]), kv[1]["position"], kv[0][2])):
        stats = [s for s in g["stats"] if s]
        per_juror = max((s["n"] // max(1, len(s.get("jurors") or {})) for s in stats), default=1)
        scored = [s for s in stats if s.get("min") is not None]
        if per_juror > 1 and scored:
            stability.append({
                "model": model, "rubric_version": version, "dimension_id": dim_id, "n": len(scored),
                "samples": per_juror,
                "unstable": sum(bool(s.get("unstable")) for s in scored) / len(scored),
                "spread": sum(_sample_spread(s) for s in scored) / len(scored),
                "agreement": _mean(s.get("agreement") for s in scored if len(s.get("jurors") or {}) <= 1),
            })
        juries = [s for s in stats if len(s.get("jurors") or {}) > 1]
        if juries:
            jury.append({
                "model": model, "rubric_version": version, "dimension_id": dim_id, "n": len(juries),
                "jurors": len(juries[0]["jurors"]),
                "alpha": jury_alpha([s["jurors"] for s in juries], levels),
                "disagree": sum(bool(s.get("disagree")) for s in juries) / len(juries),
            })
    return {"stability": stability, "jury": jury}


def _sample_spread(stats: Mapping[str, Any]) -> float:
    """The widest range of one juror's samples (for repeated samples of one model: max - min)."""
    spreads = stats.get("juror_spread") or {}
    return float(max(spreads.values())) if spreads else float(stats["max"] - stats["min"])


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def reliability(con, schema: q.Schema, f: q.Filters) -> dict[str, list[dict[str, Any]]]:
    """What the judge-quality page shows about samples and juries under the current filters."""
    lo, hi = q.score_scale(con, schema, f)
    return summarise(ensemble_rows(con, schema, f), list(range(lo, hi + 1)))
