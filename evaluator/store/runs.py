"""Runs as users see them: a list with counts, and the truth about runs whose process died
(see store/owners.py: a 'running' run on this host whose process is gone is 'killed')."""

from __future__ import annotations

from typing import Any

from evaluator.errors import BadInput
from evaluator.store.db import default_db_path, open_store
from evaluator.store.names import require_cohort
from evaluator.store.owners import (
    effective_status,
    mark_killed,
    other_live_runs,
    process_alive,
    this_host,
)

__all__ = ["RUN_COLUMNS", "effective_status", "mark_killed", "other_live_runs", "process_alive", "recent_runs",
           "this_host"]

RUN_COLUMNS = ("id", "started_at", "finished_at", "status", "command", "cohort", "judge_kind", "model",
               "prompt_version", "rubric_id", "rubric_version", "total", "scored", "partial", "unscored",
               "cached", "failed", "calls", "prompt_tokens", "completion_tokens", "cost_usd", "pid", "host")


def recent_runs(db: Any = None, cohort: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """`evaluate runs`: the newest runs in a database, read-only (a cohort writer may be running).
    The opener brings an older database up to the current schema first, so every column exists."""
    if limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")
    where, params = ("WHERE cohort = ?", [cohort]) if cohort else ("", [])
    with open_store(db or default_db_path(), read_only=True, wait_seconds=5.0) as store:
        rows = store.con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} ORDER BY started_at DESC LIMIT ?",
                                 [*params, limit]).fetchall()
        if cohort and not rows:  # as `judgments list`: a mistyped cohort is an error, not "no runs stored yet"
            require_cohort(store.con, cohort)
    out = []
    for row in rows:
        run = dict(zip(RUN_COLUMNS, row, strict=True))
        run["status"] = effective_status(run["status"], run["pid"], run["host"])
        out.append(run)
    return out
