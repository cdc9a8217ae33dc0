"""Probe rows in the store (migration 0011_probes_redaction): writing a probe run, reading it back.

Reading is shared by `evaluate probe` (which prints what it stored) and the report's judge-quality
page, so both show the same figures, computed by `evaluator.probe.stats`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from evaluator.probe.stats import ScoreRow, movements, retest


def save_probe(con, probe: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """The probe run and its items in one transaction (the judgments are stored before, as usual)."""
    import duckdb

    from evaluator.errors import StoreError

    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO probe_runs (id, run_id, started_at, finished_at, model, prompt_version, params, retest,"
            " seed, perturbations, n_transcripts, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [probe["id"], probe["run_id"], probe["started_at"], datetime.now(UTC).replace(tzinfo=None),
             probe["model"], probe["prompt_version"], json.dumps(probe["params"], default=str), probe["retest"],
             probe["seed"], json.dumps(probe["perturbations"]), probe["n_transcripts"], probe["status"]])
        if items:
            con.executemany(
                "INSERT INTO probe_items (probe_run_id, transcript_hash, source, rubric_id, perturbation, sample,"
                " judgment_id, detail, skipped, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [[probe["id"], i["transcript_hash"], i.get("source"), i.get("rubric_id"), i["perturbation"],
                  i["sample"], i.get("judgment_id"), i.get("detail"), i.get("skipped"), i.get("error")]
                 for i in items])
        con.execute("COMMIT")
    except duckdb.Error as e:
        con.execute("ROLLBACK")
        raise StoreError(f"could not store the probe run: {str(e).splitlines()[0]}") from None


def score_rows(con, probe_run_id: str) -> list[ScoreRow]:
    """A probe run's scores per (transcript, perturbation, sample, dimension), unperturbed first."""
    rows = con.execute(
        "SELECT i.transcript_hash, i.perturbation, i.sample, d.dimension_id,"
        " CASE WHEN d.status = 'scored' THEN d.score END"
        " FROM probe_items i JOIN dimension_scores d ON d.judgment_id = i.judgment_id"
        " WHERE i.probe_run_id = ? ORDER BY i.perturbation <> 'none', d.position, i.transcript_hash, i.sample",
        [probe_run_id]).fetchall()
    return [ScoreRow(*r) for r in rows]


def probe_summary(con, probe_run_id: str) -> dict[str, Any]:
    """A stored probe run: its settings, the movement per perturbation and dimension, test-retest,
    what was skipped or failed, and what it cost."""
    cur = con.execute("SELECT * FROM probe_runs WHERE id = ?", [probe_run_id])
    cols = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        raise KeyError(probe_run_id)
    run = dict(zip(cols, row, strict=True))
    run["perturbations"] = json.loads(run["perturbations"])
    rows = score_rows(con, probe_run_id)
    notes = con.execute(
        "SELECT perturbation, source, coalesce(skipped, error) AS why, error IS NOT NULL AS failed FROM probe_items"
        " WHERE probe_run_id = ? AND (skipped IS NOT NULL OR error IS NOT NULL) ORDER BY source, perturbation",
        [probe_run_id]).fetchall()
    cost = con.execute(
        "SELECT count(*), sum(j.calls), sum(j.cost_usd), count(*) FILTER (WHERE j.cost_usd IS NULL)"
        " FROM judgments j WHERE j.run_id = ?", [run["run_id"]]).fetchone()
    return {
        **run, "movements": movements(rows), "retest_stats": retest(rows),
        "notes": [{"perturbation": n[0], "source": n[1], "why": n[2], "failed": n[3]} for n in notes],
        "judged": cost[0], "calls": cost[1] or 0, "cost_usd": cost[2], "cost_unknown": cost[3],
    }


def recent_probes(con, limit: int = 5) -> list[dict[str, Any]]:
    """The newest probe runs, newest first, each summarised (the judge-quality page)."""
    ids = [r[0] for r in con.execute(
        "SELECT id FROM probe_runs ORDER BY started_at DESC, id LIMIT ?", [limit]).fetchall()]
    return [probe_summary(con, i) for i in ids]
