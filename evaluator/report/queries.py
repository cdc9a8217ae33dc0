"""Aggregation queries behind every report view: pure functions of (connection, filters) -> rows.

All counting, averaging, windowing and trend-break detection happens here, in DuckDB SQL; Python
only shapes the result rows for the templates. Every function reads, none writes to the store (a
`ScopeCache` keeps computed scopes as temporary tables in the connection's own memory).

The judgments in scope are described once (`_scope_sql`). A cohort's judgments are those of its own
runs (judged, or reused from the cache and recorded in its run_items) of its member transcripts,
read with its manifest's candidate/exercise/date overrides; without a cohort filter each judgment is
read as its own run's cohort names it (a standalone `evaluate FILE` judgment: as the file says, in
no cohort). A transcript with no candidate name takes the one its speaker labels give
(`transcript_texts.candidate_speaker`), else it is its own unnamed candidate, never pooled. Views
that show scores use one judgment per transcript, rubric version and judge model, the *best* one
(`BEST_FIRST`): scored before partial before unscored, the latest within a status. A forced re-run
replaces, it does not double count; a later failed attempt (a rate-limited run that left everything
unscored) does not hide an earlier score. Failed attempts stay listed with the judgments that were
not fully scored (`coverage`). The overview's score views go further (`one_series`): one rubric
version and one judge per rubric (`_SERIES_CTES`), never a pool of two instruments. Cost counts
every judgment, because every call was paid for, each in one cohort (`_paid_sql`: the cost page
and the overview's cost card). An unknown price (cost_usd NULL) is never counted as zero: sums are
over the known costs, with the number of unknown ones beside them, and the pages show "unknown" or
"at least".

The store must have every migration up to `REQUIRED_MIGRATION` (`read_schema` checks, and says to
run any command that writes, which migrates it): no query here guesses at an older schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, NamedTuple

from evaluator.errors import StoreError
from evaluator.store.current import BEST_FIRST, PROBE_INPUT_IDS_SQL
from evaluator.store.migrations import MIGRATIONS
from evaluator.store.names import known_cohorts

UNNAMED_CANDIDATE = "(no name)"  # + the transcript's file name and hash: one unnamed session, one candidate
NO_EXERCISE = "(none)"
# the reports read transcripts' text and quote spans (0007), tell samples from judgments (0010) and
# probe judgments apart (0011): every migration up to this one
REQUIRED_MIGRATION = "0011_probes_redaction"
REQUIRED = [name for name, _ in MIGRATIONS[:[n for n, _ in MIGRATIONS].index(REQUIRED_MIGRATION) + 1]]


@dataclass(frozen=True)
class Filters:
    """What the report covers. Every field is optional; `rubric_version` also matches a prefix."""

    cohort: str | None = None
    candidate: str | None = None
    exercise: str | None = None
    since: date | None = None
    until: date | None = None
    rubric_version: str | None = None
    model: str | None = None

    def active(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) not in (None, "")}

    def without(self, *names: str) -> Filters:
        return Filters(**{f.name: (None if f.name in names else getattr(self, f.name)) for f in fields(self)})


class ScopeCache:
    """Each distinct scope (filters, latest-only or not) computed once, as a temporary table of this
    connection. The static build runs dozens of views over a handful of scopes: without this, every
    view would recompute the scope's joins and windows over the whole store. Temporary tables live in
    the connection's own memory, so this works on a read-only connection and writes nothing to the
    store; they disappear when the connection closes."""

    def __init__(self, con) -> None:
        self.con = con
        self.tables: dict[tuple[Filters, bool, bool], str] = {}

    def table(self, key: tuple[Filters, bool, bool], sql: str, params: list[Any]) -> str:
        name = self.tables.get(key)
        if name is None:
            name = f"report_scope_{len(self.tables)}"
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql} SELECT * FROM judged", params)
            self.tables[key] = name
        return name


@dataclass(frozen=True)
class Schema:
    """A store checked to have the schema the queries need (`read_schema`) and, for a connection
    that runs many views (the static build), the cache of computed scopes."""

    scopes: ScopeCache | None = field(default=None, compare=False, repr=False)


def read_schema(con, cache_scopes: bool = False, db: Any = "the database") -> Schema:
    """Check the store has every migration the report needs (StoreError, exit 2, otherwise: the
    report never writes, so it cannot migrate an older store itself). `cache_scopes` keeps each scope
    computed on `con` for later queries (only for a connection that sees no writes while it is used,
    like the static build's)."""
    import duckdb

    try:
        applied = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    except duckdb.CatalogException:
        raise StoreError(f"{db} is not an evaluator store (it has no schema_migrations table)") from None
    missing = [name for name in REQUIRED if name not in applied]
    if missing:
        raise StoreError(
            f"{db} was written by an older evaluate (its schema lacks {', '.join(missing)}). The report only "
            "reads, so it cannot update it: run any command that writes to this store once (for example "
            f"`evaluate TRANSCRIPT.md --db {db}` or `evaluate cohort ... --db {db}`), which migrates it, "
            "then build the report again")
    return Schema(ScopeCache(con) if cache_scopes else None)


def _rows(con, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# -- the judgments in scope ---------------------------------------------------------------------


# Which judgment of a (transcript, rubric version, judge model) the score views use: `BEST_FIRST`
# (store/current.py, shared with export and agreement).
# A judgment of a perturbed input a bias probe made (swapped names, code left out...): not a session.
NOT_PROBE_INPUT = f"id NOT IN ({PROBE_INPUT_IDS_SQL})"


# Which series (rubric version x judge model) of each rubric the overview shows (`one_series`): the
# rubric's newest version in scope (the one defined last; of two defined at once, the one judged
# last), and under it the judge that judged the most sessions (ties: the one that judged last). Reads
# `judged_all` (the judgments in scope, one per transcript, version and judge); `series` lists every
# series with its count, `chosen` the shown one per rubric. Only here.
_SERIES_CTES = """,
    series AS (
        SELECT j.rubric_id, j.rubric_version, j.model, count(*) AS judgments,
               count(DISTINCT j.transcript_hash) AS transcripts, max(j.created_at) AS last_judged,
               any_value(v.created_at) AS defined
        FROM judged_all j LEFT JOIN rubric_versions v ON v.version = j.rubric_version GROUP BY ALL
    ),
    newest AS (SELECT rubric_id, arg_max(rubric_version, (defined, last_judged)) AS rubric_version
               FROM series GROUP BY rubric_id),
    chosen AS (SELECT s.rubric_id, s.rubric_version, arg_max(s.model, (s.transcripts, s.last_judged)) AS model
               FROM series s JOIN newest n USING (rubric_id, rubric_version) GROUP BY ALL)"""


def _scope_sql(schema: Schema, f: Filters, latest: bool = True,
               one_series: bool = False) -> tuple[str, list[Any]]:
    """CTEs ending in `judged`: one row per judgment in scope with its effective metadata (read from
    the scope cache's temporary table when the schema has one). With `latest` (the score views),
    only the judgment `BEST_FIRST` chooses per transcript, rubric version and judge model; without,
    every judgment (cost, failed attempts). `run_cohort` is the cohort of the run that made (and paid
    for) the judgment; `cohort` the one it is shown in. The judgments of perturbed inputs that bias
    probes made (`evaluate probe`: swapped names, removed code...) are not judgments of a real
    session: the score views (`latest`) leave them out; every judgment (cost) keeps them, and the
    views over every judgment that show sessions filter them with `NOT_PROBE_INPUT`.

    With `one_series` (the overview's score views; implies `latest`), only the judgments of one
    series per rubric (`_SERIES_CTES`: its newest version in scope, and that version's main judge). A
    score under an edited anchor, or by another judge, is another measurement: a distribution or a
    candidate's mean over both would describe neither (`series_shown` counts what is left out)."""
    if schema.scopes is not None:
        plain, plain_params = _scope_sql(Schema(), f, latest, one_series)
        key = (f, latest or one_series, one_series)
        return f"WITH judged AS (SELECT * FROM {schema.scopes.table(key, plain, plain_params)})\n", []
    latest = latest or one_series
    params: list[Any] = []
    if f.cohort is not None:
        # The cohort's member transcripts, judged by its runs or reused by them from the cache.
        scoped = """
            SELECT j.*, cm.cohort, r.cohort AS run_cohort, cm.candidate AS m_candidate, cm.exercise AS m_exercise,
                   cm.session_date AS m_date
            FROM judgments j JOIN cohort_members cm ON cm.cohort = ? AND cm.transcript_hash = j.transcript_hash
            LEFT JOIN runs r ON r.id = j.run_id
            WHERE r.cohort = cm.cohort OR j.id IN (
                SELECT i.judgment_id FROM run_items i JOIN runs ri ON ri.id = i.run_id
                WHERE ri.cohort = ? AND i.judgment_id IS NOT NULL)"""
        params += [f.cohort, f.cohort]
    else:
        scoped = """
            SELECT j.*, r.cohort, r.cohort AS run_cohort, cm.candidate AS m_candidate, cm.exercise AS m_exercise,
                   cm.session_date AS m_date
            FROM judgments j LEFT JOIN runs r ON r.id = j.run_id
            LEFT JOIN cohort_members cm ON cm.cohort = r.cohort AND cm.transcript_hash = j.transcript_hash"""
    where: list[str] = []
    wparams: list[Any] = []
    if latest:
        where.append(NOT_PROBE_INPUT)
    if f.candidate is not None:
        where.append("candidate = ?")
        wparams.append(f.candidate)
    if f.exercise is not None:
        where.append("exercise = ?")
        wparams.append(f.exercise)
    if f.since is not None:
        where.append("session_date >= ?")
        wparams.append(f.since)
    if f.until is not None:
        where.append("session_date <= ?")
        wparams.append(f.until)
    if f.rubric_version is not None:
        where.append("starts_with(rubric_version, ?)")
        wparams.append(f.rubric_version)
    if f.model is not None:
        where.append("model = ?")
        wparams.append(f.model)
    if latest:  # the samples of a --samples run are shown through their aggregate (the median), not one by one
        from evaluator.store.current import SAMPLE_MEMBER_IDS_SQL

        where.append(f"id NOT IN ({SAMPLE_MEMBER_IDS_SQL})")
    where_sql = ("WHERE " + " AND ".join(where)) if where else ""
    shown = (_SERIES_CTES + """,
    judged AS (SELECT j.* FROM judged_all j JOIN chosen c USING (rubric_id, rubric_version, model))"""
             if one_series else "")
    qualify = ("QUALIFY row_number() OVER (PARTITION BY transcript_hash, rubric_version, model"
               f" ORDER BY {BEST_FIRST}) = 1") if latest else ""
    sql = f"""
    WITH scoped AS ({scoped}),
    speakers AS (SELECT transcript_hash, min(candidate_speaker) AS speaker FROM transcript_texts
                 WHERE candidate_speaker IS NOT NULL GROUP BY transcript_hash),
    base AS (
        SELECT s.id, s.run_id, s.transcript_hash, s.source, s.rubric_id, s.rubric_version, s.judge_kind,
               coalesce(s.model, s.judge_kind) AS model, s.prompt_version, s.status, s.reason, s.flags,
               coalesce(s.calls, 0) AS calls, coalesce(s.prompt_tokens, 0) AS prompt_tokens,
               coalesce(s.completion_tokens, 0) AS completion_tokens, s.cost_usd, s.latency_ms,
               s.created_at, s.cohort, s.run_cohort, t.title,
               coalesce(s.m_candidate, t.candidate, sp.speaker,
                        '{UNNAMED_CANDIDATE} '
                        || coalesce(regexp_extract(coalesce(t.source, s.source), '[^/\\\\]+$'), '')
                        || ' #' || left(s.transcript_hash, 8)) AS candidate,
               coalesce(s.m_exercise, t.exercise, '{NO_EXERCISE}') AS exercise,
               coalesce(try_cast(left(coalesce(s.m_date, t.session_date), 10) AS DATE),
                        CAST(s.created_at AS DATE)) AS session_date
        FROM scoped s LEFT JOIN transcripts t ON t.hash = s.transcript_hash
        LEFT JOIN speakers sp ON sp.transcript_hash = s.transcript_hash
    ),
    {"judged_all" if one_series else "judged"} AS (SELECT * FROM base {where_sql} {qualify}){shown}
    """
    return sql, params + wparams


def _dims_cte() -> str:
    """`dims`: every dimension score of a judgment in scope, with the dimension's rubric order."""
    return """,
    dims AS (
        SELECT j.*, d.dimension_id, d.position, d.status AS dim_status, d.score, d.reason AS dim_reason
        FROM judged j JOIN dimension_scores d ON d.judgment_id = j.id
    )"""


# -- filter choices and names ---------------------------------------------------------------------


def filter_options(con, schema: Schema) -> dict[str, Any]:
    """Distinct values for each filter, over the whole store."""
    sql, params = _scope_sql(schema, Filters(), latest=False)
    row = con.execute(sql + """
        SELECT list(DISTINCT candidate ORDER BY candidate), list(DISTINCT exercise ORDER BY exercise),
               list(DISTINCT rubric_version ORDER BY rubric_version), list(DISTINCT model ORDER BY model),
               min(session_date), max(session_date), count(*)
        FROM judged WHERE """ + NOT_PROBE_INPUT, params).fetchone()
    cohorts = known_cohorts(con)
    rubric_rows = _rows(con, "SELECT version, rubric_id, title, created_at FROM rubric_versions ORDER BY created_at")
    return {
        "cohort": sorted(set(cohorts)),
        "candidate": row[0] or [], "exercise": row[1] or [], "rubric_version": row[2] or [],
        "model": row[3] or [], "min_date": row[4], "max_date": row[5], "judgments": row[6],
        "rubrics": rubric_rows,
    }


def dimension_names(con) -> dict[str, dict[str, Any]]:
    """Dimension id -> {name, min, max} from the newest rubric version that defines it."""
    rows = con.execute("""
        WITH d AS (
            SELECT created_at,
                   unnest(from_json(definition -> '$.dimensions', '[{"id":"VARCHAR","name":"VARCHAR"}]')) AS dim,
                   coalesce(CAST(definition ->> '$.scale.min' AS INTEGER), 1) AS smin,
                   coalesce(CAST(definition ->> '$.scale.max' AS INTEGER), 5) AS smax
            FROM rubric_versions
        )
        SELECT dim.id, arg_max(dim.name, created_at), arg_max(smin, created_at), arg_max(smax, created_at)
        FROM d GROUP BY dim.id""").fetchall()
    return {r[0]: {"name": r[1] or r[0], "min": r[2], "max": r[3]} for r in rows}


def score_scale(con, schema: Schema, f: Filters, one_series: bool = False) -> tuple[int, int]:
    """The widest scale among the rubric versions in scope (default 1-5)."""
    sql, params = _scope_sql(schema, f, one_series=one_series)
    row = con.execute(sql + """
        SELECT min(coalesce(CAST(rv.definition ->> '$.scale.min' AS INTEGER), 1)),
               max(coalesce(CAST(rv.definition ->> '$.scale.max' AS INTEGER), 5))
        FROM (SELECT DISTINCT rubric_version FROM judged) v JOIN rubric_versions rv ON rv.version = v.rubric_version
        """, params).fetchone()
    return (row[0] if row and row[0] is not None else 1, row[1] if row and row[1] is not None else 5)


# -- cohort overview ---------------------------------------------------------------------------------


def overview_totals(con, schema: Schema, f: Filters, one_series: bool = False) -> dict[str, Any]:
    """Counts over the judgments the scores use; the cost over every judgment made (`cost_total`)."""
    sql, params = _scope_sql(schema, f, one_series=one_series)
    totals = _rows(con, sql + """
        SELECT count(*) AS judgments, count(DISTINCT transcript_hash) AS transcripts,
               count(DISTINCT candidate) AS candidates, count(DISTINCT exercise) AS exercises,
               count(*) FILTER (WHERE status = 'scored') AS scored,
               count(*) FILTER (WHERE status = 'partial') AS partial,
               count(*) FILTER (WHERE status = 'unscored') AS unscored,
               count(DISTINCT rubric_version) AS rubric_versions, count(DISTINCT rubric_id) AS rubric_ids,
               count(DISTINCT model) AS models,
               list(DISTINCT model ORDER BY model) AS model_list,
               list(DISTINCT rubric_version ORDER BY rubric_version) AS version_list,
               min(session_date) AS first_date, max(session_date) AS last_date
        FROM judged""", params)[0]
    cost = cost_total(con, schema, f)
    totals["cost_usd"], totals["cost_unknown"] = cost["cost_usd"], cost["cost_unknown"]
    return totals


def series_shown(con, schema: Schema, f: Filters) -> list[dict[str, Any]]:
    """Every series (rubric version x judge model) of the judgments in scope, with its judgments,
    transcripts and whether the overview shows it (`shown`: its rubric's `_SERIES_CTES` choice): what
    the overview's note says it left out, and how to see it."""
    sql, params = _scope_sql(schema, f)
    return _rows(con, sql + ", judged_all AS (SELECT * FROM judged)" + _SERIES_CTES + """
        SELECT s.rubric_id, s.rubric_version, s.model, s.judgments, s.transcripts, c.model IS NOT NULL AS shown
        FROM series s LEFT JOIN chosen c USING (rubric_id, rubric_version, model)
        ORDER BY s.rubric_id, shown DESC, s.defined DESC NULLS LAST, s.judgments DESC, s.model""", params)


def dimension_distribution(con, schema: Schema, f: Filters, one_series: bool = False) -> list[dict[str, Any]]:
    """One row per dimension: counts per score level, mean, and how many were not scored."""
    sql, params = _scope_sql(schema, f, one_series=one_series)
    return _rows(con, sql + _dims_cte() + """
        SELECT dimension_id, min(position) AS position,
               count(*) FILTER (WHERE dim_status = 'scored') AS n_scored,
               count(*) FILTER (WHERE dim_status = 'not_observed') AS n_not_observed,
               count(*) FILTER (WHERE dim_status = 'unscored') AS n_unscored,
               avg(score) FILTER (WHERE dim_status = 'scored') AS mean,
               stddev_samp(score) FILTER (WHERE dim_status = 'scored') AS sd,
               median(score) FILTER (WHERE dim_status = 'scored') AS median,
               histogram(score) FILTER (WHERE dim_status = 'scored') AS counts
        FROM dims GROUP BY dimension_id ORDER BY position, dimension_id""", params)


def heatmap(con, schema: Schema, f: Filters, one_series: bool = False) -> list[dict[str, Any]]:
    """Mean score per candidate and dimension (scored dimensions only)."""
    sql, params = _scope_sql(schema, f, one_series=one_series)
    return _rows(con, sql + _dims_cte() + """
        SELECT candidate, dimension_id, min(position) AS position, avg(score) AS mean, count(score) AS n
        FROM dims WHERE dim_status = 'scored'
        GROUP BY candidate, dimension_id ORDER BY candidate, position""", params)


# A candidate's weakest dimensions: every one tied at their lowest mean, and none when all their scored
# dimensions are level (a candidate scored 4 everywhere has no weakest dimension; picking one by name
# would credit it to whichever sorts first, and a cohort of such candidates would look weakest there).
_LOWEST_CTE = """,
        {name} AS (
            SELECT p.candidate, p.dimension_id FROM {per} p
            JOIN (SELECT candidate, min(m) AS lo, max(m) AS hi FROM {per} GROUP BY candidate) r USING (candidate)
            WHERE p.m - r.lo < 1e-9 AND r.hi - r.lo >= 1e-9
        )"""


def weakest_dimensions(con, schema: Schema, f: Filters, low: int = 2, one_series: bool = False) -> list[dict[str, Any]]:
    """Dimensions by ascending mean, with the share of scores at or below `low`, and how many
    candidates have that dimension as their own weakest."""
    sql, params = _scope_sql(schema, f, one_series=one_series)
    return _rows(con, sql + _dims_cte() + """,
        per_cand AS (
            SELECT candidate, dimension_id, avg(score) AS m FROM dims WHERE dim_status = 'scored'
            GROUP BY candidate, dimension_id
        )""" + _LOWEST_CTE.format(per="per_cand", name="cand_weakest") + """
        SELECT d.dimension_id, avg(d.score) AS mean, count(d.score) AS n,
               avg(CASE WHEN d.score <= ? THEN 1.0 ELSE 0.0 END) AS share_low,
               (SELECT count(*) FROM cand_weakest w WHERE w.dimension_id = d.dimension_id) AS weakest_for
        FROM dims d WHERE d.dim_status = 'scored'
        GROUP BY d.dimension_id ORDER BY mean ASC, share_low DESC, d.dimension_id LIMIT 5""", params + [low])


FAILED_NAMES = 5  # inputs named per reason in coverage; the rest are counted


def coverage(con, schema: Schema, f: Filters) -> dict[str, Any]:
    """Judgments by status, unscored dimensions and judgments grouped by reason, cohort inputs that
    were not judged."""
    sql, params = _scope_sql(schema, f)
    by_status = _rows(con, sql + "SELECT status, count(*) AS n FROM judged GROUP BY status ORDER BY n DESC, status",
                      params)
    dim_reasons = _rows(con, sql + _dims_cte() + """
        SELECT dimension_id, coalesce(dim_reason, '(no reason given)') AS reason, count(*) AS n
        FROM dims WHERE dim_status = 'unscored' GROUP BY ALL ORDER BY n DESC, dimension_id, reason LIMIT 20""", params)
    # Every attempt that was not fully scored, also one that a judgment of a better status (scored >
    # partial > unscored) of the same transcript, rubric version and model replaced in the scores
    # (`superseded`): failures stay visible. A judgment stored without a reason of its own is
    # described by its unscored dimensions' reasons (the most common one).
    every, every_params = _scope_sql(schema, f, latest=False)
    rank = "CASE status WHEN 'scored' THEN 0 WHEN 'partial' THEN 1 ELSE 2 END"
    judgment_reasons = _rows(con, every + f""",
        dim_reason AS (
            SELECT judgment_id, count(DISTINCT reason) AS n_reasons,
                   arg_max(reason, (n, reason)) AS reason
            FROM (SELECT judgment_id, reason, count(*) AS n FROM dimension_scores
                  WHERE status = 'unscored' AND reason IS NOT NULL
                    AND judgment_id IN (SELECT id FROM judged WHERE status <> 'scored' AND reason IS NULL)
                  GROUP BY ALL)
            GROUP BY judgment_id
        ),
        ranked AS (
            SELECT j.status,
                   coalesce(j.reason,
                            CASE WHEN d.n_reasons > 1 THEN d.reason || ' (and other reasons: see the dimensions)'
                                 ELSE d.reason END,
                            '(no reason given)') AS reason,
                   min({rank}) OVER (PARTITION BY j.transcript_hash, j.rubric_version, j.model) < {rank} AS superseded
            FROM judged j LEFT JOIN dim_reason d ON d.judgment_id = j.id
        )
        SELECT status, reason, count(*) AS n, count(*) FILTER (WHERE superseded) AS superseded
        FROM ranked WHERE status <> 'scored' GROUP BY ALL ORDER BY n DESC, status, reason LIMIT 20""", every_params)
    # Each input of a cohort counts once, as its latest run left it: an input that failed once and
    # was judged by a later run is not listed, and a re-run does not count it twice. Each reason
    # names its inputs (the first few by name, with how many in all).
    cohort_clause, cparams = "", []
    if f.cohort is not None:
        cohort_clause, cparams = "AND r.cohort = ?", [f.cohort]
    failed_items = _rows(con, f"""
        WITH latest AS (
            SELECT i.status, i.error, coalesce(i.source, i.item) AS input
            FROM run_items i JOIN runs r ON r.id = i.run_id
            WHERE r.cohort IS NOT NULL {cohort_clause}
            QUALIFY row_number() OVER (PARTITION BY r.cohort, i.item
                                       ORDER BY r.started_at DESC, i.updated_at DESC, r.id DESC) = 1
        )
        SELECT status, coalesce(error, '(no error recorded)') AS reason, count(*) AS n,
               list(DISTINCT input ORDER BY input)[1:{FAILED_NAMES}] AS inputs
        FROM latest WHERE status IN ('failed', 'skipped')
        GROUP BY status, reason ORDER BY n DESC, status, reason LIMIT 20""", cparams)
    return {"by_status": by_status, "dimension_reasons": dim_reasons,
            "judgment_reasons": judgment_reasons, "failed_items": failed_items}


def candidates_summary(con, schema: Schema, f: Filters, one_series: bool = False) -> list[dict[str, Any]]:
    """Per candidate: sessions, date range, mean score, mean of the latest session, weakest dimensions
    (`weakest`: the tied lowest in rubric order; null when every scored dimension has the same mean)."""
    sql, params = _scope_sql(schema, f, one_series=one_series)
    return _rows(con, sql + _dims_cte() + """,
        per_judgment AS (
            SELECT id, candidate, session_date, created_at, avg(score) AS mean FROM dims
            WHERE dim_status = 'scored' GROUP BY id, candidate, session_date, created_at
        ),
        per_dim AS (
            SELECT candidate, dimension_id, min(position) AS position, avg(score) AS m FROM dims
            WHERE dim_status = 'scored' GROUP BY candidate, dimension_id
        )""" + _LOWEST_CTE.format(per="per_dim", name="lowest") + """
        SELECT j.candidate, count(DISTINCT j.transcript_hash) AS sessions, count(*) AS judgments,
               min(j.session_date) AS first_date, max(j.session_date) AS last_date,
               (SELECT avg(mean) FROM per_judgment p WHERE p.candidate = j.candidate) AS mean,
               (SELECT arg_max(mean, (session_date, created_at, id)) FROM per_judgment p
                 WHERE p.candidate = j.candidate) AS latest_mean,
               (SELECT list(w.dimension_id ORDER BY d.position, w.dimension_id) FROM lowest w
                  JOIN per_dim d USING (candidate, dimension_id) WHERE w.candidate = j.candidate) AS weakest
        FROM judged j GROUP BY j.candidate ORDER BY j.candidate""", params)


def candidate_names(con, schema: Schema, f: Filters) -> list[str]:
    """The candidates in scope, by the names this scope gives them (pages link to these names)."""
    sql, params = _scope_sql(schema, f)
    return [r[0] for r in con.execute(sql + "SELECT DISTINCT candidate FROM judged ORDER BY 1", params).fetchall()]


# -- candidate ------------------------------------------------------------------------------------


# Every stored calibrated score with its judgment's transcript and rubric (`_judgment_labels`'s source).
_CALIBRATED = """(
    SELECT cs.calibration_id, cs.dimension_id, cs.calibrated_score, jj.id, jj.transcript_hash, jj.rubric_id,
           jj.rubric_version
    FROM calibrated_scores cs JOIN judgments jj ON jj.id = cs.judgment_id
    WHERE cs.calibrated_score IS NOT NULL)"""


def _calibration_cte() -> str:
    """`calib`: the newest stored calibration of each judgment's dimension score (calibrated_scores),
    with a 95% half-width of 1.96 x the RMSE of calibrated vs human scores on the labelled transcripts
    of that calibration and dimension (in-sample, so if anything optimistic)."""
    return f""",
    calib_err AS (
        SELECT calibration_id, dimension_id, count(*) AS n,
               1.96 * sqrt(avg(power(calibrated_score - human, 2))) AS half_width
        FROM ({_judgment_labels(_CALIBRATED, per="s.calibration_id, s.id")})
        WHERE human IS NOT NULL
        GROUP BY ALL
    ),
    calib AS (
        SELECT cs.judgment_id, cs.dimension_id, cs.calibrated_score AS calibrated, cs.method,
               e.half_width, e.n
        FROM calibrated_scores cs JOIN calibrations c ON c.id = cs.calibration_id
        LEFT JOIN calib_err e ON e.calibration_id = cs.calibration_id AND e.dimension_id = cs.dimension_id
        WHERE cs.calibrated_score IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY cs.judgment_id, cs.dimension_id ORDER BY c.created_at DESC) = 1
    )"""


def candidate_trend(con, schema: Schema, f: Filters, candidate: str | None = None) -> list[dict[str, Any]]:
    """One row per scored dimension of each judgment, in time order, with its series (rubric version
    and judge model) and `is_break` where the series differs from the previous point of the same
    candidate and dimension. Calibrated score and interval where human labels allow it. Only what the
    trend charts use, `session_date` as ISO text (as the charts write it): the static build fetches
    one row per scored dimension of the whole store, so every column costs."""
    f2 = Filters(**{**f.__dict__, "candidate": candidate}) if candidate is not None else f
    sql, params = _scope_sql(schema, f2)
    return _rows(con, sql + _dims_cte() + _calibration_cte() + """,
        points AS (
            SELECT d.candidate, d.dimension_id, d.position, d.id AS judgment_id, d.session_date, d.created_at,
                   d.exercise, d.score, d.rubric_version, d.model,
                   d.rubric_version || ' · ' || d.model AS series, c.calibrated, c.half_width AS calibrated_half_width
            FROM dims d LEFT JOIN calib c ON c.judgment_id = d.id AND c.dimension_id = d.dimension_id
            WHERE d.dim_status = 'scored'
        )
        SELECT * EXCLUDE (position) REPLACE (CAST(session_date AS VARCHAR) AS session_date),
               coalesce(series <> lag(series) OVER w, false) AS is_break,
               lag(rubric_version) OVER w AS prev_rubric_version, lag(model) OVER w AS prev_model
        FROM points
        WINDOW w AS (PARTITION BY candidate, dimension_id ORDER BY session_date, created_at, judgment_id)
        ORDER BY candidate, position, points.session_date, created_at, judgment_id""", params)


def candidate_sessions(con, schema: Schema, f: Filters, candidate: str | None = None) -> list[dict[str, Any]]:
    """The judgments of a candidate (or all), newest first, with mean score and flag count."""
    f2 = Filters(**{**f.__dict__, "candidate": candidate}) if candidate is not None else f
    sql, params = _scope_sql(schema, f2)
    return _rows(con, sql + _dims_cte() + """
        SELECT id, candidate, session_date, created_at, exercise, title, source, status, rubric_version, model,
               cohort, cost_usd, calls, coalesce(json_array_length(flags), 0) AS n_flags,
               avg(score) FILTER (WHERE dim_status = 'scored') AS mean,
               count(*) FILTER (WHERE dim_status = 'scored') AS n_scored, count(*) AS n_dims
        FROM dims GROUP BY ALL
        ORDER BY candidate, session_date DESC, created_at DESC""", params)


def candidate_changes(con, schema: Schema, f: Filters, candidate: str | None = None,
                      top: int = 5) -> list[dict[str, Any]]:
    """Biggest session-to-session changes per dimension, only within one series (a rubric or model
    change is a break: scores either side are not compared). Ties are broken by date, dimension and
    judgment, so the same store always lists the same changes."""
    f2 = Filters(**{**f.__dict__, "candidate": candidate}) if candidate is not None else f
    sql, params = _scope_sql(schema, f2)
    return _rows(con, sql + _dims_cte() + """,
        steps AS (
            SELECT candidate, dimension_id, id AS judgment_id, session_date, score,
                   lag(score) OVER w AS prev_score, lag(session_date) OVER w AS prev_date,
                   score - lag(score) OVER w AS delta
            FROM dims WHERE dim_status = 'scored'
            WINDOW w AS (PARTITION BY candidate, dimension_id, rubric_version, model
                         ORDER BY session_date, created_at, id)
        ),
        ranked AS (
            SELECT *, CASE WHEN delta > 0 THEN 'improvement' ELSE 'regression' END AS kind,
                   row_number() OVER (PARTITION BY candidate, delta > 0
                                      ORDER BY abs(delta) DESC, session_date DESC, dimension_id, judgment_id) AS rk
            FROM steps WHERE delta IS NOT NULL AND delta <> 0
        )
        SELECT candidate, kind, dimension_id, judgment_id, prev_date, session_date, prev_score, score, delta
        FROM ranked WHERE rk <= ? ORDER BY candidate, kind, rk""", params + [top])


# -- judgments ------------------------------------------------------------------------------------


def judgments_page(con, schema: Schema, f: Filters, page: int = 1, size: int | None = 100) -> dict[str, Any]:
    """A page of judgments in scope (newest session first) and the total count; `size=None` returns
    every row at once (the static build slices it into pages itself)."""
    sql, params = _scope_sql(schema, f)
    total = con.execute(sql + "SELECT count(*) FROM judged", params).fetchone()[0]
    limit = "" if size is None else f"LIMIT {int(size)} OFFSET {(max(1, page) - 1) * int(size)}"
    rows = _rows(con, sql + _dims_cte() + f"""
        SELECT id, candidate, session_date, created_at, exercise, title, status, rubric_version, model, cohort,
               cost_usd, coalesce(json_array_length(flags), 0) AS n_flags,
               avg(score) FILTER (WHERE dim_status = 'scored') AS mean
        FROM dims GROUP BY ALL ORDER BY session_date DESC, created_at DESC, id {limit}""", params)
    size = size or max(1, total)
    return {"rows": rows, "total": total, "page": page, "size": size, "pages": max(1, -(-total // size))}


def judgment_ids(con, schema: Schema, f: Filters) -> list[str]:
    """The static build splits the judgments in scope into data files by id, in a stable order."""
    sql, params = _scope_sql(schema, f)
    return [r[0] for r in con.execute(sql + "SELECT id FROM judged ORDER BY id", params).fetchall()]


class JudgmentDoc(NamedTuple):
    """One judgment for the judgment view: `doc` is its JSON text (fields as stored, dates formatted
    as the pages show them, dimensions with their evidence and each quote's span), `text` the JSON
    of the transcript it was made on ({turns, code}) as stored, None for a judgment stored before
    the store kept transcripts' text."""

    id: str
    candidate: str
    doc: str
    text: str | None


def judgment_docs(con, schema: Schema, ids: list[str], f: Filters | None = None) -> list[JudgmentDoc]:
    """Everything the judgment view shows, for many judgments in one query. DuckDB writes each
    judgment as one JSON document (flags, warnings and evidence are stored as JSON already), which
    the static build writes out as is: no per-field conversion to Python and back.

    With `f` (the static build: `ids` are that scope's), each judgment's candidate and cohort are
    read as that scope names them, so its candidate link is to a page the build writes; without,
    any judgment in the store is found, named as the unfiltered views name it."""
    if not ids:
        return []
    sql, params = _scope_sql(schema, f, latest=True) if f is not None else _scope_sql(schema, Filters(), latest=False)
    rows = con.execute(sql + """,
        wanted AS (SELECT unnest(?::VARCHAR[]) AS id),
        dims AS (
            SELECT judgment_id, list({'id': dimension_id, 'status': status, 'score': score,
                                      'rationale': rationale, 'evidence': CAST(evidence AS JSON),
                                      'dropped_evidence': CAST(dropped_evidence AS JSON), 'reason': reason}
                                     ORDER BY position) AS dims
            FROM dimension_scores WHERE judgment_id IN (SELECT id FROM wanted) GROUP BY judgment_id
        )
        SELECT j.id, j.candidate, to_json({
            'id': j.id, 'title': j.title, 'source': j.source, 'candidate': j.candidate, 'exercise': j.exercise,
            'session_date': CAST(j.session_date AS VARCHAR), 'cohort': j.cohort, 'status': j.status,
            'reason': j.reason, 'flags': CAST(j.flags AS JSON), 'warnings': CAST(jj.warnings AS JSON),
            'model': j.model, 'judge_kind': j.judge_kind, 'prompt_version': j.prompt_version,
            'rubric_version': j.rubric_version, 'calls': j.calls, 'prompt_tokens': j.prompt_tokens,
            'completion_tokens': j.completion_tokens, 'cost_usd': j.cost_usd,
            'created_at': strftime(j.created_at, '%Y-%m-%d %H:%M'), 'dims': coalesce(d.dims, [])}),
            CASE WHEN tt.text_key IS NOT NULL THEN to_json({'turns': tt.turns, 'code': tt.code}) END
        FROM judged j JOIN judgments jj ON jj.id = j.id
        LEFT JOIN transcript_texts tt ON tt.text_key = jj.text_key LEFT JOIN dims d ON d.judgment_id = j.id
        WHERE j.id IN (SELECT id FROM wanted)
        ORDER BY j.id""", params + [ids]).fetchall()
    return [JudgmentDoc(*r) for r in rows]


# -- judge quality --------------------------------------------------------------------------------

# The current human labels as (transcript_hash, dimension_id, rater, human): scored labels only, a
# later import superseding an earlier one for the same transcript, rater and dimension.
# Every stored label with its import's time; `human`: its score (NULL for a label that is not one).
_LABEL_ROWS = """SELECT h.transcript_hash, h.dimension_id, h.rater, h.rubric_id, h.rubric_version, h.import_id,
                     li.imported_at, CASE WHEN h.status = 'scored' THEN h.score END AS human
              FROM human_labels h LEFT JOIN label_imports li ON li.id = h.import_id"""
LABELS_SQL = f"""
    SELECT transcript_hash, dimension_id, rater, human FROM (
        {_LABEL_ROWS}
        QUALIFY row_number() OVER (PARTITION BY transcript_hash, rater, dimension_id
                                   ORDER BY imported_at DESC NULLS LAST, import_id DESC) = 1
    ) WHERE human IS NOT NULL"""


def _judgment_labels(source: str, per: str = "s.id") -> str:
    """SQL: the rows of `source` (judgment dimensions: id, transcript_hash, rubric_id, rubric_version,
    dimension_id...), each joined with every rater's label as `evaluate agreement` and `calibrate`
    pair them (calibrate/store.py, labels_for_judgments): a label recorded against the judgment's
    rubric, one of the judgment's own rubric version first, the newest import within; `human` is its
    score (NULL for a label that is not a score: a later 'missing' supersedes an earlier score). A
    label imported against another rubric scores that rubric's dimensions and is never paired.
    `per`: the columns of `source` that make one judgment dimension (with a calibration, say)."""
    return f"""
        SELECT s.*, l.rater, l.human FROM {source} s
        JOIN ({_LABEL_ROWS}) l
          ON l.transcript_hash = s.transcript_hash AND l.dimension_id = s.dimension_id AND l.rubric_id = s.rubric_id
        QUALIFY row_number() OVER (PARTITION BY {per}, s.dimension_id, l.rater
                                   ORDER BY l.rubric_version = s.rubric_version DESC, l.imported_at DESC NULLS LAST,
                                            l.import_id DESC) = 1"""


def _wilson(k: str, n: str, prefix: str = "") -> str:
    """SQL for the 95% Wilson interval (`lo`, `hi`) of k successes in n trials."""
    z = 1.96
    centre = f"(({k}) + {z * z / 2}) / (({n}) + {z * z})"
    half = f"({z} * sqrt(({k}) * (({n}) - ({k})) / ({n}) + {z * z / 4}) / (({n}) + {z * z}))"
    return f"greatest(0, {centre} - {half}) AS {prefix}lo, least(1, {centre} + {half}) AS {prefix}hi"


def probe_runs(con, limit: int = 5) -> list[dict[str, Any]]:
    """The newest bias-probe runs with their movement per perturbation and dimension and their
    test-retest figures (computed by evaluator.probe.stats from the stored scores)."""
    from evaluator.probe.store import recent_probes

    return recent_probes(con, limit)


def judge_quality(con, schema: Schema, f: Filters) -> dict[str, Any]:
    """Agreement of judge scores with human labels per dimension (exact and within one point, with 95%
    Wilson intervals), the human-human ceiling, and calibration curves (judge score -> mean human)."""
    from evaluator.calibrate.pairing import EXACT_DEFINITION, PAIRING_DEFINITIONS

    result: dict[str, Any] = {"n_labels": 0, "agreement": [], "ceiling": [], "curve": [],
                              "definition": f"{PAIRING_DEFINITIONS['mean']}; {EXACT_DEFINITION}"}
    result["calibrations"] = _rows(con, """
        SELECT c.id, c.created_at, coalesce(c.model, c.judge_kind) AS model, c.prompt_version,
               CAST(c.rubric_versions AS VARCHAR[]) AS rubric_versions, c.n_transcripts, m.dimension_id, m.method,
               m.n, m.cv, m.warning
        FROM calibrations c JOIN calibration_maps m ON m.calibration_id = c.id AND m.chosen
        ORDER BY c.created_at DESC, m.dimension_id LIMIT 200""")
    sql, params = _scope_sql(schema, f)
    # For each judge and rubric version in scope, the newest calibration that calibrated its judgments
    # (save_calibration writes calibrated scores only for the versions a calibration was fitted on),
    # its map read off the scores it produced: raw -> calibrated. One judge's map under rubric v1 is
    # never drawn on its v2 curve; `pooled`: a calibration fitted over several versions at once.
    result["calibrated_curve"] = _rows(con, sql + """,
        cal AS (
            SELECT cs.calibration_id, c.created_at, coalesce(j.model, j.judge_kind) AS model, j.rubric_version,
                   json_array_length(c.rubric_versions) > 1 AS pooled, cs.dimension_id, cs.raw_score,
                   cs.calibrated_score
            FROM calibrated_scores cs JOIN calibrations c ON c.id = cs.calibration_id
            JOIN judgments j ON j.id = cs.judgment_id
            JOIN (SELECT DISTINCT model, rubric_version FROM judged) s
              ON s.model = coalesce(j.model, j.judge_kind) AND s.rubric_version = j.rubric_version
            WHERE cs.raw_score IS NOT NULL AND cs.calibrated_score IS NOT NULL
        ),
        newest AS (SELECT model, rubric_version, arg_max(calibration_id, (created_at, calibration_id)) AS id
                   FROM cal GROUP BY ALL)
        SELECT cal.dimension_id, cal.model, cal.rubric_version, cal.calibration_id, cal.pooled,
               cal.raw_score AS judge, avg(cal.calibrated_score) AS calibrated, count(*) AS n
        FROM cal JOIN newest n ON n.model = cal.model AND n.rubric_version = cal.rubric_version
                               AND n.id = cal.calibration_id
        GROUP BY ALL ORDER BY dimension_id, model, rubric_version, judge""", params)
    result["n_labels"] = con.execute(f"SELECT count(*) FROM ({LABELS_SQL})").fetchone()[0]
    if not result["n_labels"]:
        return result
    pairs = sql + _dims_cte() + f""",
        pairs AS (
            SELECT dimension_id, model, score AS judge, human, rater, transcript_hash, rubric_version
            FROM ({_judgment_labels("dims")}) WHERE dim_status = 'scored' AND human IS NOT NULL
        )"""
    # One definition with `evaluate agreement` (its default pairing): the judge against the mean of the
    # raters, exact = |judge - human| < 0.5; the ceiling on the same footing (leave one rater out).
    from evaluator.calibrate.pairing import ceiling_agreement, exact_agreement
    from evaluator.calibrate.records import HumanLabel, JudgeScore

    rows = con.execute(pairs + " SELECT dimension_id, model, judge, human, rater, transcript_hash, rubric_version"
                               " FROM pairs", params).fetchall()
    # A judge's scores under two rubric versions are two judges' (the anchors changed), and one
    # transcript judged under both would pair twice: with more than one version in scope, each
    # (judge, rubric version) gets its own rows (`rubric_version` None: one version, named on the page),
    # each with the labels its own judgments were paired with (a rater's label may differ per version).
    split = len({r[6] for r in rows}) > 1
    by_judge: dict[tuple[str, str | None], tuple[dict[tuple[str, str], JudgeScore],
                                                 dict[tuple[str, str, str], HumanLabel]]] = {}
    for dim, model, judge, human, rater, transcript, version in rows:
        scores, labels = by_judge.setdefault((model, version if split else None), ({}, {}))
        scores[(transcript, dim)] = JudgeScore(transcript=transcript, dimension=dim, status="scored", score=judge)
        labels[(transcript, rater, dim)] = HumanLabel(transcript=transcript, rater=rater, dimension=dim,
                                                      status="scored", score=human)
    result["agreement"] = sorted((
        {"dimension_id": a.dimension, "model": model, "rubric_version": version, "n": a.n, "exact": a.exact,
         "lo": a.exact_lo, "hi": a.exact_hi, "within1": a.within_one, "within1_lo": a.within_one_lo,
         "within1_hi": a.within_one_hi, "mae": a.mae}
        for (model, version), (scores, labels) in by_judge.items()
        for a in exact_agreement(list(scores.values()), list(labels.values()), "mean")),
        key=lambda r: (r["dimension_id"], str(r["model"]), str(r["rubric_version"])))
    # the ceiling over the labelled transcripts in scope: a cohort's page compares its judge with its raters
    all_labels = con.execute(sql + f"""
        SELECT transcript_hash, rater, dimension_id, human FROM ({LABELS_SQL})
        WHERE transcript_hash IN (SELECT transcript_hash FROM judged)""", params).fetchall()
    result["ceiling"] = [
        {"dimension_id": c.dimension, "n": c.n, "exact": c.exact, "lo": c.exact_lo, "hi": c.exact_hi}
        for c in ceiling_agreement([HumanLabel(transcript=t, rater=r, dimension=d, status="scored", score=s)
                                    for t, r, d, s in all_labels])]
    # judge score -> mean human, per judge and rubric version (a curve is one instrument's): every row
    # names its version; the chart labels series by version only when there are several
    result["curve"] = _rows(con, pairs + """
        SELECT dimension_id, model, rubric_version, judge, count(*) AS n, avg(human) AS mean_human,
               coalesce(1.96 * stddev_samp(human) / sqrt(count(*)), 0) AS half_width
        FROM pairs GROUP BY ALL ORDER BY dimension_id, model, rubric_version, judge""", params)
    return result


def judged_with(con, schema: Schema, f: Filters, *, no_cohort: bool = False) -> dict[str, Any]:
    """The judges and rubric versions of the judgments in scope and how many of their transcripts
    have human labels: what tells whether two cohorts' judge-quality figures can be read together.
    `no_cohort`: only the judgments in scope that no cohort holds (a standalone `evaluate FILE`)."""
    sql, params = _scope_sql(schema, f)
    row = con.execute(sql + f"""
        SELECT list(DISTINCT model ORDER BY model), list(DISTINCT rubric_version ORDER BY rubric_version),
               count(*), count(DISTINCT transcript_hash) FILTER (
                   WHERE transcript_hash IN (SELECT transcript_hash FROM ({LABELS_SQL})))
        FROM judged{" WHERE cohort IS NULL" if no_cohort else ""}""", params).fetchone()
    return {"models": row[0] or [], "rubric_versions": row[1] or [], "judgments": row[2], "labelled": row[3]}


# -- cost ---------------------------------------------------------------------------------------------


def _paid_sql(schema: Schema, f: Filters) -> tuple[str, list[Any]]:
    """CTEs ending in `paid`: every judgment in scope (each call was paid for, re-runs and failed
    attempts included), each counted in the cohort of the run that made it, or in none (a standalone
    `evaluate FILE` run stays out of every cohort, also one its transcript joins later). With a
    cohort filter, only the judgments that cohort's runs made, so that a cohort's cost is the same
    figure wherever it shows (cost page, filtered or not; cohort page)."""
    sql, params = _scope_sql(schema, f.without("cohort"), latest=False)
    if f.cohort is None:
        return sql + ", paid AS (SELECT * EXCLUDE (cohort), run_cohort AS cohort FROM judged)\n", params
    return sql + ", paid AS (SELECT * EXCLUDE (cohort), run_cohort AS cohort FROM judged WHERE run_cohort = ?)\n", \
        params + [f.cohort]


def cost_by_run(con, schema: Schema, f: Filters, limit: int = 200) -> list[dict[str, Any]]:
    """Calls, tokens and cost per run (every judgment counts: each call was paid for)."""
    from evaluator.store.runs import effective_status

    sql, params = _paid_sql(schema, f)
    rows = _rows(con, sql + """
        SELECT j.run_id, any_value(r.started_at) AS started_at, any_value(r.command) AS command,
               any_value(j.cohort) AS cohort, any_value(j.model) AS model, any_value(r.status) AS status,
               any_value(r.pid) AS pid, any_value(r.host) AS host,
               count(*) AS judgments, sum(j.calls) AS calls, sum(j.prompt_tokens) AS prompt_tokens,
               sum(j.completion_tokens) AS completion_tokens, sum(j.cost_usd) AS cost_usd,
               count(*) FILTER (WHERE j.cost_usd IS NULL) AS cost_unknown, avg(j.latency_ms) AS mean_latency_ms
        FROM paid j LEFT JOIN runs r ON r.id = j.run_id
        GROUP BY j.run_id ORDER BY started_at DESC NULLS LAST LIMIT ?""", params + [limit])
    for row in rows:  # a run whose process died shows as killed, not running (store/runs.py)
        row["status"] = effective_status(row["status"], row.pop("pid"), row.pop("host"))
    return rows


def cost_total(con, schema: Schema, f: Filters) -> dict[str, Any]:
    """Calls and cost of every judgment in scope (`_paid_sql`): the overview's cost card, the same
    figure as the cost page's row for the cohort (or its total)."""
    sql, params = _paid_sql(schema, f)
    return _rows(con, sql + """
        SELECT count(*) AS judgments, coalesce(sum(calls), 0) AS calls, sum(cost_usd) AS cost_usd,
               count(*) FILTER (WHERE cost_usd IS NULL) AS cost_unknown
        FROM paid""", params)[0]


def cost_by(con, schema: Schema, f: Filters, key: str) -> list[dict[str, Any]]:
    """Totals grouped by cohort, model or month."""
    expr = {"cohort": "coalesce(cohort, '(no cohort)')", "model": "model",
            "month": "strftime(CAST(created_at AS DATE), '%Y-%m')"}[key]
    sql, params = _paid_sql(schema, f)
    return _rows(con, sql + f"""
        SELECT {expr} AS key, count(DISTINCT run_id) AS runs, count(*) AS judgments, sum(calls) AS calls,
               sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
               sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS cost_unknown
        FROM paid GROUP BY 1 ORDER BY 1""", params)
