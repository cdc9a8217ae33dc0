"""Jury weights from each juror's held-out agreement with human labels.

Why: a jury's plain median treats a weak juror like a strong one. When people have labelled enough
transcripts, each juror's vote on a dimension is weighted by how often it gave the human score on
OTHER transcripts (the one being judged is left out, so its own labels never pull its score).

Rule (README): per juror and dimension, the pairs are that juror model's newest scored single
judgment of a labelled transcript (same rubric id) against the mean human score there. The weight is
the smoothed exact-agreement rate (k + 1) / (n + 2): never zero, and near 1/2 when little is known.
A dimension is weighted only when every juror has at least `MIN_PAIRS` pairs; otherwise the jury
takes the median for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluator.judge.ensemble import EnsembleJudge
    from evaluator.rubrics import Rubric
    from evaluator.store.db import Store

MIN_PAIRS = 5


def agreement_weights(pairs: Iterable[Mapping[str, Any]], jurors: list[str], dimensions: list[str],
                      min_pairs: int = MIN_PAIRS) -> dict[str, dict[str, float]]:
    """{dimension: {juror: weight}} from rows (juror, dimension_id, judge, human); a dimension
    appears only when every juror has `min_pairs` pairs on it."""
    counts: dict[tuple[str, str], list[int]] = {}
    for p in pairs:
        c = counts.setdefault((p["juror"], p["dimension_id"]), [0, 0])
        c[0] += 1
        c[1] += int(round(float(p["human"])) == int(p["judge"]))
    out: dict[str, dict[str, float]] = {}
    for dim in dimensions:
        got = {j: counts.get((j, dim), [0, 0]) for j in jurors}
        if all(n >= min_pairs for n, _ in got.values()):
            out[dim] = {j: (k + 1) / (n + 2) for j, (n, k) in got.items()}
    return out


def held_out_pairs(store: Store, models: Mapping[str, str], rubric_id: str, exclude: str) -> list[dict[str, Any]]:
    """(juror, dimension_id, judge score, mean human score) over labelled transcripts but `exclude`.
    `models`: juror label -> model name as stored."""
    if not models:
        return []
    import duckdb

    try:
        return [dict(zip(("juror", "dimension_id", "judge", "human"), r, strict=True)) for r in store.con.execute("""
            WITH jurors AS (SELECT unnest(?) AS juror, unnest(?) AS model),
            labels AS (
                SELECT transcript_hash, dimension_id, avg(score) AS human FROM (
                    SELECT h.transcript_hash, h.dimension_id, h.rater, h.status, h.score
                    FROM human_labels h LEFT JOIN label_imports li ON li.id = h.import_id
                    QUALIFY row_number() OVER (PARTITION BY h.transcript_hash, h.rater, h.dimension_id
                                               ORDER BY li.imported_at DESC NULLS LAST, h.import_id DESC) = 1)
                WHERE status = 'scored' AND score IS NOT NULL AND transcript_hash <> ?
                GROUP BY ALL),
            newest AS (
                SELECT ju.juror, j.id, j.transcript_hash FROM judgments j JOIN jurors ju ON ju.model = j.model
                WHERE j.kind = 'single' AND j.rubric_id = ? AND j.transcript_hash <> ?
                QUALIFY row_number() OVER (PARTITION BY ju.juror, j.transcript_hash
                                           ORDER BY j.created_at DESC, j.id) = 1)
            SELECT n.juror, d.dimension_id, d.score, l.human
            FROM newest n JOIN dimension_scores d ON d.judgment_id = n.id AND d.status = 'scored'
            JOIN labels l ON l.transcript_hash = n.transcript_hash AND l.dimension_id = d.dimension_id""",
            [list(models), list(models.values()), exclude, rubric_id, exclude]).fetchall()]
    except duckdb.CatalogException:  # a store without labels tables has no weights to give
        return []


def apply_label_weights(store: Store, judge: EnsembleJudge, rubric: Rubric, transcript_hash: str) -> None:
    """Give a jury its weights from the store's labels (nothing changes when there are too few)."""
    if not judge.jury:
        return
    models = {j.label: j.model for j, _, _ in judge.members}
    pairs = held_out_pairs(store, models, rubric.id, transcript_hash)
    judge.weights = agreement_weights(pairs, list(models), rubric.dimension_ids) or None
