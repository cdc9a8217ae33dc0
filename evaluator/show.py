"""Stored judgments, read back: `evaluate show ID|FILE` and `evaluate judgments list`.

Read-only (a cohort writer may hold the file: we wait briefly, like `evaluate runs`). A judgment is
rebuilt into the same `EvaluateResult` the `evaluate` command prints, so `show` prints the same table
and, with `--format json`, the same document as the run that made it (from the store alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.errors import BadInput
from evaluator.pipeline import EvaluateResult
from evaluator.store.names import require_cohort

READ_WAIT_SECONDS = 5.0
STATUSES = ("scored", "partial", "unscored")


@dataclass
class JudgmentFilters:
    """`evaluate judgments list` filters (all optional) and how many of the newest to return."""

    cohort: str | None = None
    candidate: str | None = None
    model: str | None = None  # 'baseline' for the offline judge
    status: str | None = None
    limit: int = 20


def _open(db: Path | None) -> Any:
    from evaluator.store.db import default_db_path, open_store

    return open_store(db or default_db_path(), read_only=True, wait_seconds=READ_WAIT_SECONDS)


def _resolve_id(con: Any, ref: str) -> str:
    """A judgment id from an id, an id prefix, or a transcript file (its newest judgment of its own)."""
    path = Path(ref)
    if path.is_file():
        from evaluator.ingest import read_source
        from evaluator.store.current import PROBE_INPUT_IDS_SQL

        digest = read_source(path).content_hash
        # the file's own verdicts: not a bias probe's judgment of a perturbed copy stored under its hash
        # (its anchors reversed, say; made in the transaction of the probe's retests, so "newest" was a
        # tie), nor a member of a --samples or --jury verdict (stored with it: the aggregate stands)
        row = con.execute(f"SELECT id FROM judgments WHERE transcript_hash = ? AND id NOT IN ({PROBE_INPUT_IDS_SQL})"
                          " AND id NOT IN (SELECT member_id FROM judgment_members) ORDER BY created_at DESC, id"
                          " LIMIT 1", [digest]).fetchone()
        if row is None:
            raise BadInput(f"{ref}: no stored judgment of this transcript (as it is now: an edited file is a "
                           f"new transcript); judge it with `evaluate {ref}`")
        return str(row[0])
    rows = con.execute("SELECT id FROM judgments WHERE starts_with(id, ?) LIMIT 2", [ref.lower()]).fetchall()
    if not rows:
        raise BadInput(f"no stored judgment or transcript file '{ref}' (ids: `evaluate judgments list`)")
    if len(rows) > 1:
        raise BadInput(f"'{ref}' matches several judgments: give more of the id")
    return str(rows[0][0])


def show_judgment(db: Path | None, ref: str) -> EvaluateResult:
    """The stored judgment `ref` (id, id prefix, or transcript file) as the result `evaluate` printed."""
    from evaluator.models import JudgeInfo, Transcript, Usage
    from evaluator.pipeline import judgment_from_record
    from evaluator.rubrics import Rubric

    with _open(db) as store:
        jid = _resolve_id(store.con, ref)
        record = store.load_judgment(jid)
        t = store.con.execute("SELECT source, title, metadata, n_turns FROM transcripts WHERE hash = ?",
                              [record["transcript_hash"]]).fetchone()
        definition = store.con.execute("SELECT definition FROM rubric_versions WHERE version = ?",
                                       [record["rubric_version"]]).fetchone()
        db_path = str(store.path)
    import json

    info = JudgeInfo(kind=record["judge_kind"], model=record["model"], prompt_version=record["prompt_version"],
                     params=record["params"] or {})
    judgment = judgment_from_record(record, info)
    judgment.usage = Usage(calls=record["calls"] or 0, prompt_tokens=record["prompt_tokens"] or 0,
                           completion_tokens=record["completion_tokens"] or 0, cost_usd=record["cost_usd"],
                           latency_ms=record["latency_ms"])
    metadata = json.loads(t[2]) if t and t[2] else {}
    transcript = Transcript(source=record["source"] or (t[0] if t else "?"), title=t[1] if t else None,
                            metadata=metadata, turns=[], content_hash=record["transcript_hash"], raw_text="")
    rubric = Rubric.model_validate_json(definition[0])
    created = record["created_at"]
    return EvaluateResult(
        judgment=judgment, transcript=transcript, rubric=rubric, judgment_id=jid, db_path=db_path,
        wall_seconds=(record["latency_ms"] or 0.0) / 1000,
        notices=[f"stored judgment {jid[:8]} of {created:%Y-%m-%d %H:%M} UTC (run {str(record['run_id'])[:8]}, "
                 f"{t[3] if t else '?'} turns)"],
    )


LIST_COLUMNS = ("id", "created_at", "status", "source", "candidate", "exercise", "session_date", "rubric_version",
                "judge_kind", "model", "mean_score", "scored_dimensions", "cost_usd", "role")


def list_judgments(db: Path | None, filters: JudgmentFilters) -> list[dict[str, Any]]:
    """The newest stored judgments matching the filters, with their mean score over scored dimensions
    and their `role` (store/current.py: 'judgment', or 'sample' / 'probe', which are not the file's
    verdict: a probe's judgment of a perturbed copy may carry the file's own name and hash)."""
    from evaluator.store.current import ROLE_SQL

    if filters.limit < 1:
        raise BadInput(f"--limit must be at least 1, got {filters.limit}")
    if filters.status is not None and filters.status not in STATUSES:
        raise BadInput(f"--status must be one of {', '.join(STATUSES)}, got {filters.status!r}")
    where, params = [], []
    if filters.cohort:
        from evaluator.store.export import in_cohort_sql

        where.append(in_cohort_sql("?"))
        params += [filters.cohort, filters.cohort]
    if filters.candidate:
        where.append("t.candidate = ?")
        params.append(filters.candidate)
    if filters.model:
        where.append("j.judge_kind = 'baseline'" if filters.model == "baseline" else "j.model = ?")
        params += [] if filters.model == "baseline" else [filters.model]
    if filters.status:
        where.append("j.status = ?")
        params.append(filters.status)
    sql = f"""
        SELECT j.id, j.created_at, j.status, j.source, t.candidate, t.exercise, t.session_date, j.rubric_version,
               j.judge_kind, j.model, round(avg(d.score) FILTER (WHERE d.status = 'scored'), 3),
               count(*) FILTER (WHERE d.status = 'scored'), j.cost_usd, {ROLE_SQL}
        FROM judgments j LEFT JOIN transcripts t ON t.hash = j.transcript_hash
             LEFT JOIN dimension_scores d ON d.judgment_id = j.id
        {'WHERE ' + ' AND '.join(where) if where else ''}
        GROUP BY ALL ORDER BY j.created_at DESC, j.id LIMIT ?"""
    with _open(db) as store:
        require_cohort(store.con, filters.cohort)
        rows = store.con.execute(sql, [*params, filters.limit]).fetchall()
    return [dict(zip(LIST_COLUMNS, row, strict=True)) for row in rows]
