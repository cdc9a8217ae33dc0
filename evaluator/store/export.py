"""`evaluate export`: stored judgments or dimension scores as CSV, JSON Lines or Parquet.

DuckDB writes all three natively (`COPY (query) TO file`), straight from the store, streaming: no
DataFrame in between however large the store. The file is written beside its destination and moved
into place, so a failed export never leaves half a file where the old one was.

A transcript often has several judgments: re-runs, other judges, other rubric versions, the draws of
a --samples run, a bias probe's judgments of perturbed copies (some under the session's own hash).
Every row says what it is (`role`: judgment, sample or probe) and whether it is `current`: the one
judgment the report and agreement use for its transcript, rubric version and judge
(store/current.py). `--current` keeps only those and `--model`/`--rubric-version` one judge and
version, which is what a judge file for `agreement --judge` (one score per transcript and
dimension) or a label sheet keyed by `judgment_id` needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.errors import BadInput, StoreError
from evaluator.store.names import require_cohort, unknown_name

FORMATS = {"csv": "(FORMAT csv, HEADER true)", "jsonl": "(FORMAT json)", "parquet": "(FORMAT parquet)"}
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}

_JUDGMENT_COLUMNS = """
    j.id AS judgment_id, j.created_at, j.run_id, j.status, j.reason, j.source,
    coalesce(j.source, j.transcript_hash) AS transcript, j.transcript_hash,
    t.candidate, t.exercise, t.session_date, j.rubric_id, j.rubric_version, j.judge_kind, j.model,
    j.prompt_version"""
# Appended after the columns earlier exports had, so a reader of those by position still works.
_WHICH_COLUMNS = "j.role, j.current"
QUERIES = {
    "judgments": f"""
        SELECT {_JUDGMENT_COLUMNS},
               round(avg(d.score) FILTER (WHERE d.status = 'scored'), 3) AS mean_score,
               count(*) FILTER (WHERE d.status = 'scored') AS scored_dimensions,
               j.flags, j.warnings, j.calls, j.prompt_tokens, j.completion_tokens, j.cost_usd, j.latency_ms,
               {_WHICH_COLUMNS}
        FROM j LEFT JOIN transcripts t ON t.hash = j.transcript_hash
             LEFT JOIN dimension_scores d ON d.judgment_id = j.id
        GROUP BY ALL ORDER BY j.created_at, j.id""",
    "dimensions": f"""
        SELECT {_JUDGMENT_COLUMNS}, d.dimension_id, d.position, d.status AS dimension_status, d.score,
               d.rationale, d.evidence, d.reason AS dimension_reason, {_WHICH_COLUMNS}
        FROM j LEFT JOIN transcripts t ON t.hash = j.transcript_hash
             JOIN dimension_scores d ON d.judgment_id = j.id
        ORDER BY j.created_at, j.id, d.position""",
}


def _judgments_cte(where: str, current_only: bool) -> str:
    """`j`: the judgments selected (`where`), each with its `role` and whether it is `current` among
    them (store/current.py: the one the report and agreement use for its transcript, rubric version
    and judge). Computed over the selection, so a cohort's export marks what that cohort's pages use."""
    from evaluator.store.current import CURRENT_SQL, ROLE_SQL

    only = " WHERE current" if current_only else ""
    return (f"WITH jr AS (SELECT j.*, {ROLE_SQL} AS role FROM judgments j {where}),\n"
            f"j AS (SELECT * FROM (SELECT *, {CURRENT_SQL} AS current FROM jr){only})\n")


@dataclass
class ExportRequest:
    """What to export (`table`), where, in which format, and from which store and cohort."""

    out: Path
    table: str = "judgments"  # or dimensions
    format: str | None = None  # csv, jsonl, parquet; None: from the file's suffix
    db: Path | None = None
    cohort: str | None = None
    model: str | None = None  # a judge model, or 'baseline' for the offline judge
    rubric_version: str | None = None  # a version or a prefix of one
    current: bool = False  # only the judgment that stands for each transcript, rubric version and judge


@dataclass
class ExportResult:
    """The file written, its format and its row count (for the one-line report)."""

    out: Path
    format: str
    rows: int


def _format(request: ExportRequest) -> str:
    fmt = request.format or SUFFIXES.get(request.out.suffix.lower())
    if fmt is None:
        raise BadInput(f"{request.out}: say --format csv, jsonl or parquet (or name the file .csv, .jsonl, .parquet)")
    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def in_cohort_sql(cohort: str) -> str:
    """SQL true for a judgment `j` of cohort `cohort` (a `?` or a quoted literal): its member transcripts
    as judged by that cohort's runs or reused by them from the cache, as the report's cohort pages count
    them. Another cohort's judgment of the same transcript (another candidate override, say) or a
    standalone one the cohort never used is not the cohort's."""
    return (f"(j.run_id IN (SELECT id FROM runs WHERE cohort = {cohort})"
            " OR j.id IN (SELECT i.judgment_id FROM run_items i"
            f" JOIN runs r ON r.id = i.run_id WHERE r.cohort = {cohort} AND i.judgment_id IS NOT NULL))")


def write_table(rows: list[dict[str, Any]], out: Path, fmt: str | None = None) -> ExportResult:
    """Rows computed in Python (an agreement table) written the way `export` writes the store's:
    the same formats, the same checks, the same replace-when-complete."""
    import duckdb
    import pandas as pd

    request = ExportRequest(out=out, format=fmt)
    fmt = _format(request)
    _check_destination(out)
    partial = _partial_for(out)
    frame = pd.DataFrame(rows)
    con = duckdb.connect()
    try:
        con.register("agreement_rows", frame)
        con.execute(f"COPY agreement_rows TO {_literal(str(partial))} {FORMATS[fmt]}")
    except duckdb.Error as e:
        partial.unlink(missing_ok=True)
        raise StoreError(f"could not write {out}: {str(e).splitlines()[0]}") from None
    finally:
        con.close()
    _publish(partial, out)
    return ExportResult(out=out, format=fmt, rows=len(rows))


def _special(out: Path) -> bool:
    """A destination that exists and is not a regular file: /dev/stdout, /dev/null, a named pipe.
    Renaming over it would replace the device itself (as root, /dev/null became a plain file), so it
    is written into instead."""
    return out.exists() and not out.is_file()


def _partial_for(out: Path) -> Path:
    """Where the rows are written first: beside a regular destination, so the finished file is
    renamed into place in one step; in the temporary folder for a special one (never into /dev)."""
    if _special(out):
        import tempfile

        fd, name = tempfile.mkstemp(prefix=".evaluate-export-", suffix=".partial")
        os.close(fd)
        return Path(name)
    return out.with_name(f".{out.name}.partial")


def _publish(partial: Path, out: Path) -> None:
    """Replace a regular file in one rename (a reader never sees half an export); copy into a special
    destination, which cannot be renamed over."""
    if not _special(out):
        os.replace(partial, out)
        return
    import shutil

    try:
        with open(partial, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except OSError as e:
        raise BadInput(f"cannot write to {out}: {e.strerror or e}") from None
    finally:
        partial.unlink(missing_ok=True)


def _check_destination(out: Path) -> None:
    if not out.parent.is_dir():
        raise BadInput(f"the folder {out.parent} does not exist")
    if out.is_dir():
        raise BadInput(f"{out} is a folder: give a file name")


def _where(con: Any, request: ExportRequest) -> str:
    """The WHERE clause of the judgments asked for (COPY takes no bound parameters: values go in as
    quoted SQL literals). An unknown --model is an error naming the close ones, as --cohort is; a
    --rubric-version no judgment starts with lists the stored versions."""
    where = []
    if request.cohort:
        where.append(in_cohort_sql(_literal(request.cohort)))
    if request.model is not None:
        known = [str(r[0]) for r in con.execute(
            "SELECT DISTINCT coalesce(model, judge_kind) FROM judgments ORDER BY 1").fetchall()]
        if request.model not in known:
            raise unknown_name("judge model", request.model, known)
        where.append(f"coalesce(j.model, j.judge_kind) = {_literal(request.model)}")
    if request.rubric_version is not None:
        versions = [str(r[0]) for r in con.execute(
            "SELECT DISTINCT rubric_version FROM judgments ORDER BY 1").fetchall()]
        if not any(v.startswith(request.rubric_version) for v in versions):
            raise BadInput(f"no judgment was made under a rubric version starting with {request.rubric_version!r}; "
                           f"known: {', '.join(versions) or 'none'}")
        where.append(f"starts_with(j.rubric_version, {_literal(request.rubric_version)})")
    return ("WHERE " + " AND ".join(where)) if where else ""


def export(request: ExportRequest) -> ExportResult:
    """Write the rows; the destination's folder must exist, and an existing file is replaced."""
    import duckdb

    from evaluator.store.db import default_db_path, open_store

    fmt = _format(request)
    if request.table not in QUERIES:
        raise BadInput(f"--table must be one of {', '.join(QUERIES)}, got {request.table!r}")
    _check_destination(request.out)
    with open_store(request.db or default_db_path(), read_only=True, wait_seconds=5.0) as store:
        require_cohort(store.con, request.cohort)
        query = _judgments_cte(_where(store.con, request), request.current) + QUERIES[request.table]
        partial = _partial_for(request.out)  # after the checks: a refused export leaves no temporary file
        try:
            # COPY answers with the rows it wrote: the query (windows over every judgment) runs once
            rows = store.con.execute(f"COPY ({query}) TO {_literal(str(partial))} {FORMATS[fmt]}").fetchone()[0]  # type: ignore[index]
        except duckdb.Error as e:
            partial.unlink(missing_ok=True)
            raise StoreError(f"could not export to {request.out}: {str(e).splitlines()[0]}") from None
    _publish(partial, request.out)
    return ExportResult(out=request.out, format=fmt, rows=int(rows))
