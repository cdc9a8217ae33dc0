"""The DuckDB store: migrations on open, one transaction per judgment, lookups by cache key.

DuckDB allows one writer process per file (STACK-NOTES): a locked file is reported as a clear
StoreError naming the file, never a traceback, and nothing already stored is touched.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluator.errors import StoreError
from evaluator.models import Judgment, Transcript
from evaluator.rubrics import Rubric
from evaluator.safety import redactor
from evaluator.store.migrations import MIGRATIONS
from evaluator.store.owners import mark_killed, this_host
from evaluator.store.texts import Candidate, StoredView, TextRecord, View, pick, text_record

DEFAULT_DB = "evaluator.duckdb"
INSERT_ROWS = 256  # rows per INSERT statement in save_batch


def default_db_path() -> Path:
    """$EVALUATOR_DB, else ./evaluator.duckdb (visible, per-project, like .coverage)."""
    return Path(os.environ.get("EVALUATOR_DB") or DEFAULT_DB)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


# Column order of the rows save_batch builds, and what a conflicting key means for each table.
_COLUMNS: dict[str, list[str]] = {
    "transcripts": ["hash", "source", "title", "candidate", "exercise", "session_date", "round", "metadata",
                    "n_turns", "n_code_files", "speakers_recognised", "first_seen"],
    "rubric_versions": ["version", "rubric_id", "title", "definition", "created_at"],
    "judgments": ["id", "run_id", "transcript_hash", "source", "rubric_id", "rubric_version", "judge_kind", "model",
                  "prompt_version", "params", "cache_key", "status", "reason", "flags", "warnings", "truncation",
                  "calls", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "created_at", "text_key",
                  "kind"],
    "transcript_texts": ["text_key", "transcript_hash", "turns", "code", "candidate_speaker", "stored_at"],
    "dimension_scores": ["judgment_id", "dimension_id", "position", "status", "score", "rationale", "evidence",
                         "dropped_evidence", "reason", "distribution", "expected_score", "distribution_note",
                         "ensemble"],
    "exchanges": ["id", "judgment_id", "attempt", "purpose", "dimensions", "response_format", "request_messages",
                  "raw_response", "parsed", "errors", "prompt_tokens", "completion_tokens", "cost_usd",
                  "latency_ms", "transport_attempts", "error", "created_at", "reasoning"],
    "run_items": ["run_id", "item", "source", "transcript_hash", "status", "judgment_id", "error", "updated_at"],
    "cohort_members": ["cohort", "transcript_hash", "source", "candidate", "exercise", "session_date", "added_at"],
    "judgment_members": ["aggregate_id", "member_id", "position", "juror", "sample", "reused"],
}
_CONFLICT = {
    "transcripts": "ON CONFLICT DO NOTHING",
    "rubric_versions": "ON CONFLICT DO NOTHING",
    "transcript_texts": "ON CONFLICT DO NOTHING",
    "run_items": "ON CONFLICT (run_id, item) DO UPDATE SET source = excluded.source, transcript_hash ="
                 " excluded.transcript_hash, status = excluded.status, judgment_id = excluded.judgment_id,"
                 " error = excluded.error, updated_at = excluded.updated_at",
    "cohort_members": "ON CONFLICT (cohort, transcript_hash) DO UPDATE SET source = excluded.source,"
                      " candidate = excluded.candidate, exercise = excluded.exercise,"
                      " session_date = excluded.session_date",
}
# An INSERT with ON CONFLICT reads every row group of its table into the buffer pool, conflict or
# not (DuckDB 2.0: 34 MiB for a store of 10,000 judgments, per table, per session), so the memory
# and time of every group commit grew with the store. Instead, a table whose rows are written once
# by key (`_KEY`: its single-column primary key) looks the batch's keys up in that key's index and
# inserts only the new rows; run_items is inserted plainly (an item has one row per run), and only
# a duplicate key (a constraint error) makes the batch go again the old way, ON CONFLICT. The
# cohort's membership keeps its ON CONFLICT: re-running a cohort updates every member, and the
# table is small (one row group at 10,000 members).
_KEY = {"transcripts": "hash", "rubric_versions": "version", "transcript_texts": "text_key"}
_UPSERT_ALWAYS = frozenset({"cohort_members"})


# Columns that hold only what this code generates (uuids, sha256 digests, status words): no secret can
# be in them, so they skip the redaction every other string gets (a third of what a cached re-run's
# items cost). Everything a user, a file or a provider supplies is redacted.
_GENERATED = frozenset({"id", "run_id", "judgment_id", "transcript_hash", "hash", "text_key", "cache_key", "status",
                        "aggregate_id", "member_id"})


def _batch_redactor() -> Callable[[str], str]:
    """`redactor()` remembering its answers for one batch: a cohort's name, a candidate, a date or a
    path recur across its rows and tables, and each is scanned once."""
    redact, seen = redactor(), {}

    def clean(text: str) -> str:
        if text not in seen:
            seen[text] = redact(text)
        return seen[text]

    return clean


def _paid(j: Judgment) -> list[Any]:
    """calls, tokens, cost and latency of the row. An aggregate's are zero: its members' rows carry
    what was paid, so every cost sum counts each call once."""
    if j.kind == "aggregate":
        return [0, 0, 0, 0.0, 0.0]
    u = j.usage
    return [u.calls, u.prompt_tokens, u.completion_tokens, u.cost_usd, u.latency_ms]


def _one_row_per_dimension(j: Judgment) -> None:
    """dimension_scores has no key since 0018_s8_lean_keys (a key index grew every commit's memory
    with the store): a judgment naming a dimension twice is refused here, as its key refused it."""
    ids = [d.id for d in j.dimensions]
    if len(set(ids)) < len(ids):
        raise StoreError(f"judgment of {j.source or j.transcript_hash} scores a dimension twice: "
                         f"{', '.join(sorted({d for d in ids if ids.count(d) > 1}))}")


def with_members(judgments: list[tuple[Judgment, Transcript, Rubric]], ids: list[str]
                 ) -> tuple[list[tuple[Judgment, Transcript, Rubric]], list[str], list[list[Any]]]:
    """Each aggregate preceded by its members judged in this run (new ids), and the
    judgment_members rows linking it to all of them (reused ones by their stored id)."""
    out, out_ids, links = [], [], []
    for jid, (j, transcript, rubric) in zip(ids, judgments, strict=True):
        for pos, m in enumerate(j.members):
            member_id = m.judgment_id
            if member_id is None:
                member_id = str(uuid.uuid4())
                out.append((m.judgment, transcript, rubric))
                out_ids.append(member_id)
            links.append([jid, member_id, pos, m.juror, m.sample, m.judgment_id is not None])
        out.append((j, transcript, rubric))
        out_ids.append(jid)
    return out, out_ids, links


# A cohort membership row's own fields, in the order cohort_member_rows returns them.
MEMBER_FIELDS = ("transcript_hash", "source", "candidate", "exercise", "session_date")

IN_LIST = 1024  # keys per lookup statement (a cohort's lookups come a chunk of at most 1,024 items at a time)


def in_lists(keys: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """("(?, ?, ...)", keys) at most IN_LIST distinct keys at a time, for `column IN <marks>`
    lookups. A list of constants is what lets DuckDB find each key in the column's ART index (a
    primary key or judgments_cache_key); `IN (SELECT unnest(?))` is a join, which scans every row
    group of the table, and every block it reads stays in the connection's buffer pool: a cohort's
    lookups alone held ~3 KiB per judgment already stored (33 MiB at 10,000), so the peak memory
    of a run grew with the size of the store."""
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), IN_LIST):
        chunk = unique[start:start + IN_LIST]
        yield "(" + ", ".join("?" * len(chunk)) + ")", chunk


class StoreLocked(StoreError):
    """Another process holds the DuckDB file (one writer at a time)."""


class StoreFull(StoreError):
    """The drive holding the store (or its journal) has no space left; nothing committed is lost."""


class StoreOutdated(StoreError):
    """The file's schema is older than this version reads, and it could not be brought up to date."""


NOTICE_AFTER_SECONDS = 2.0
SPACE_HINT_BYTES = 4 << 20  # DuckDB grows a file by 256 KiB blocks and writes a WAL beside it


def store_error(path: Path, doing: str, e: BaseException) -> StoreError:
    """The one place a DuckDB or OS error becomes a typed StoreError (callers test the type, never
    the text): a full drive names the file and the space needed; a lock says who to wait for."""
    import errno

    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if getattr(e, "errno", None) == errno.ENOSPC or "no space left" in msg.lower():
        return StoreFull(no_space_message(path, doing))
    if "could not set lock" in msg.lower() or "conflicting lock" in msg.lower():
        return StoreLocked(f"{path} is in use by another process (DuckDB allows one writer at a time); "
                           "wait for it to finish or use another --db")
    return StoreError(f"{path}: {doing}: {msg}")


def no_space_message(path: Path, doing: str, needed: int = 0) -> str:
    """What to tell the user when the disk is full: where, how much is free and how much was needed."""
    import shutil

    folder = path.parent if str(path.parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = 0
    need = max(needed, SPACE_HINT_BYTES)
    return (f"no space left on the drive of {path} ({doing}): {_size(free)} free there, free at least "
            f"{_size(need)} more (or use --db on another drive)")


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} KB"


def open_store(path: Path | str, read_only: bool = False, wait_seconds: float = 0.0,
               on_wait: Callable[[str], None] | None = None) -> Store:
    """THE way to open the store. Retries while another process briefly holds the file (a report
    server reading, a cohort writer flushing): both sides hold it only for short sessions. A wait
    longer than a couple of seconds is told through `on_wait` once, so nobody stares at a silent
    terminal. A writable open applies every pending migration; a read-only open needs the current
    schema, and brings an older file up to it with one short writable session first."""
    path = Path(path)
    started = time.monotonic()
    deadline = started + wait_seconds
    delay = 0.02
    told = False
    while True:
        try:
            try:
                return Store(path, read_only=read_only)
            except StoreOutdated:
                with Store(path, read_only=False):  # migrates; then read as asked
                    pass
                return Store(path, read_only=read_only)
        except StoreLocked:
            now = time.monotonic()
            if now >= deadline:
                if wait_seconds > 0:
                    raise StoreLocked(f"{path} is in use by another process: it stayed locked by a writer for "
                                      f"{wait_seconds:.0f} s (DuckDB allows one writer at a time); wait for it "
                                      "to finish or use another --db") from None
                raise
            if on_wait and not told and now - started >= NOTICE_AFTER_SECONDS:
                on_wait(f"{path} is held by another process: waiting up to {wait_seconds:.0f} s for it")
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def require_existing(path: Path) -> None:
    """Refuse a database file that does not exist, for commands that only read or act on what is
    stored: opening it for writing would create an empty file and report "nothing" as if it were so."""
    if not path.exists():
        raise StoreError(f"no database at {path}: nothing has been stored there yet")


class Store:
    """A connection to one DuckDB file at the current schema (use open_store: it waits for locks)."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        import duckdb

        self.path = Path(path)
        if read_only:
            require_existing(self.path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, expected a DuckDB file")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the folder for {self.path}: {e.strerror}") from None
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except (duckdb.Error, OSError) as e:
            err = store_error(self.path, "cannot open it as a DuckDB database", e)
            raise err from None
        try:
            if read_only:
                self._check_schema()
            else:
                # no row-group vacuum at this connection's checkpoints: see Store.setting
                self.setting("SET max_vacuum_tasks = 0")
                self.migrate()
        except BaseException:
            self.con.close()
            raise

    def setting(self, statement: str) -> None:
        """A DuckDB `SET` where this DuckDB has it (one without it works as it did).

        Every writing connection sets `max_vacuum_tasks = 0`. The store is written in many small
        commits (a cohort's every second), each leaving a small row group; DuckDB's checkpoint merges
        them by reading and rewriting the whole table. Cohort sessions skipped it, so the next
        ordinary write paid for all of it at once: one `evaluate FILE` after a 10,000-transcript
        cohort peaked at 370 MB instead of 113 (it would grow to gigabytes at 100,000), and each
        chunk a batch collect stored paid a share that grew with the store. The cost: more, smaller
        row groups (a 1,000-transcript store 18 MiB instead of 11)."""
        try:
            self.con.execute(statement)
        except Exception:  # noqa: BLE001, S110 - a DuckDB without the setting works as it did
            pass

    def _check_schema(self) -> None:
        """A reader needs every migration this version knows (so no reader guesses at columns)."""
        import duckdb

        try:
            done = {r[0] for r in self.con.execute("SELECT name FROM schema_migrations").fetchall()}
        except duckdb.CatalogException:
            raise StoreError(f"{self.path} is not an evaluator store (no schema_migrations table)") from None
        missing = [name for name, _ in MIGRATIONS if name not in done]
        if missing:
            raise StoreOutdated(f"{self.path} was written by an older evaluate (missing migrations: "
                                f"{', '.join(missing)}); open it once with a command that writes to upgrade it")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply every migration not yet recorded; returns the names applied now."""
        import duckdb

        try:  # cheaper than asking information_schema (tens of ms); DDL only on a new database
            done = {r[0] for r in self.con.execute("SELECT name FROM schema_migrations").fetchall()}
        except duckdb.CatalogException:
            self.con.execute(
                "CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
            )
            done = set()
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            try:
                self.con.execute("BEGIN TRANSACTION")
                self.con.execute(sql)
                self.con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [name, _now()])
                self.con.execute("COMMIT")
            except duckdb.Error as e:
                self._rollback()
                raise store_error(self.path, f"migration {name} failed", e) from None
            applied.append(name)
        return applied

    def applied_migrations(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]

    # -- runs ----------------------------------------------------------------------------------
    def start_run(self, *, command: str, judge_info: Any, rubric: Rubric | None, cohort: str | None = None,
                  run_id: str | None = None, request_key: str | None = None) -> str:
        run_id = run_id or str(uuid.uuid4())
        mark_killed(self.con)  # an earlier run on this host whose process died is not 'running'
        if cohort:
            self.con.execute(
                "INSERT INTO cohorts (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", [cohort, _now()]
            )
        self.con.execute(
            "INSERT INTO runs (id, started_at, command, cohort, judge_kind, model, prompt_version, params,"
            " rubric_id, rubric_version, status, pid, host, request_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [run_id, _now(), redactor()(command) if command else command, cohort, judge_info.kind, judge_info.model,
             judge_info.prompt_version, _json(judge_info.params),
             rubric.id if rubric else None, rubric.version if rubric else None,
             "running", os.getpid(), this_host(), request_key],
        )
        return run_id

    def finish_run(self, run_id: str, status: str) -> None:
        self.con.execute("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?", [_now(), status, run_id])

    # -- judgments -----------------------------------------------------------------------------
    def save_judgment(self, run_id: str, judgment: Judgment, transcript: Transcript, rubric: Rubric) -> str:
        """Write one judgment, its dimensions and every exchange in one transaction."""
        return self.save_batch(run_id, [(judgment, transcript, rubric)])[0]

    def save_batch(
        self,
        run_id: str,
        judgments: list[tuple[Judgment, Transcript, Rubric]],
        items: Sequence[dict[str, Any]] = (),
        members: Sequence[dict[str, Any]] = (),
        run_totals: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> list[str]:
        """Write several judgments (each complete with dimensions and exchanges), the run's item
        statuses and cohort memberships in ONE transaction: all of it lands or none of it does.

        Grouping commits is what lets a cohort writer keep up with many concurrent judges (a DuckDB
        commit costs ~5-10 ms of fsync); a judgment is never split across transactions.
        `ids` lets the caller choose the judgments' ids (so item rows can point at them).
        """
        import duckdb

        ids = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in judgments]
        given_ids = ids
        judgments, ids, links = with_members(judgments, ids)  # an aggregate's new members go in first
        now = _now()
        rows: dict[str, list[list[Any]]] = {t: [] for t in _COLUMNS}
        rows["judgment_members"] = links
        seen_transcripts: set[str] = set()
        seen_rubrics: set[str] = set()
        texts: dict[int, TextRecord] = {}  # per Transcript object: a batch's judgments of one share it
        seen_texts: set[str] = set()
        for jid, (j, transcript, rubric) in zip(ids, judgments, strict=True):
            _one_row_per_dimension(j)
            text = texts.get(id(transcript))
            if text is None:
                text = texts[id(transcript)] = text_record(transcript)
            if text.key not in seen_texts:
                seen_texts.add(text.key)
                rows["transcript_texts"].append([text.key, transcript.content_hash, text.turns, text.code,
                                                 text.candidate_speaker, now])
            if transcript.content_hash not in seen_transcripts:
                seen_transcripts.add(transcript.content_hash)
                meta = transcript.metadata
                rows["transcripts"].append([
                    transcript.content_hash, transcript.source, transcript.title, transcript.candidate,
                    transcript.exercise, transcript.session_date,
                    None if meta.get("round") is None else str(meta.get("round")), _json(meta),
                    len(transcript.turns), len(transcript.code_files), transcript.speakers_recognised, now])
            if rubric.version not in seen_rubrics:
                seen_rubrics.add(rubric.version)
                rows["rubric_versions"].append([rubric.version, rubric.id, rubric.title, rubric.model_dump_json(), now])
            rows["judgments"].append([
                jid, run_id, j.transcript_hash, j.source, j.rubric_id, j.rubric_version, j.judge.kind,
                j.judge.model, j.judge.prompt_version, _json(j.judge.params), j.cache_key, j.status, j.reason,
                _json([f.model_dump() for f in j.flags]), _json(j.warnings), _json(j.truncation),
                *_paid(j), now, text.key, j.kind])
            rows["dimension_scores"] += [
                [jid, d.id, pos, d.status, d.score, d.rationale, _json([e.model_dump() for e in d.evidence]),
                 _json(d.dropped_evidence), d.reason, _json(d.distribution), d.expected_score, d.distribution_note,
                 _json(d.ensemble)]
                for pos, d in enumerate(j.dimensions)]
            rows["exchanges"] += [
                [str(uuid.uuid4()), jid, e.attempt, e.purpose, _json(e.dimensions), e.response_format,
                 _json(e.request_messages), e.raw_response, _json(e.parsed), _json(e.errors), e.prompt_tokens,
                 e.completion_tokens, e.cost_usd, e.latency_ms, e.transport_attempts, e.error, now, e.reasoning]
                for e in j.exchanges]
        rows["run_items"] = [
            [run_id, it["item"], it.get("source"), it.get("transcript_hash"), it["status"], it.get("judgment_id"),
             it.get("error"), now] for it in items]
        rows["cohort_members"] = [
            [m["cohort"], m["transcript_hash"], m.get("source"), m.get("candidate"), m.get("exercise"),
             m.get("session_date"), now] for m in members]
        clean = _batch_redactor()
        try:
            try:
                self._write_batch(rows, clean, run_id, run_totals, upsert=False)
            except duckdb.ConstraintException:  # a key stored before: the batch again, ON CONFLICT
                self._rollback()
                self._write_batch(rows, clean, run_id, run_totals, upsert=True)
        except (duckdb.Error, OSError) as e:
            self._rollback()
            raise store_error(self.path, "could not store the judgments", e) from None
        return given_ids

    def _write_batch(self, rows: dict[str, list[list[Any]]], clean: Callable[[str], str], run_id: str,
                     run_totals: dict[str, Any] | None, upsert: bool) -> None:
        """save_batch's one transaction. `upsert`: every keyed table through ON CONFLICT (what a
        batch whose run_items row is stored already needs; see _KEY)."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        for table, table_rows in rows.items():
            if table in _KEY and not upsert:
                table_rows = self._new_rows(table, table_rows)
            self._insert_rows(table, table_rows, clean, upsert or table in _UPSERT_ALWAYS)
        if run_totals:
            cols = ", ".join(f"{k} = ?" for k in run_totals)
            con.execute(f"UPDATE runs SET {cols} WHERE id = ?", [*run_totals.values(), run_id])
        con.execute("COMMIT")

    def _new_rows(self, table: str, rows: list[list[Any]]) -> list[list[Any]]:
        """The rows whose key is not stored yet (found through the key's index; see _KEY)."""
        if not rows:
            return rows
        key = _KEY[table]
        at = _COLUMNS[table].index(key)
        stored = {r[0] for marks, keys in in_lists(row[at] for row in rows)
                  for r in self.con.execute(f"SELECT {key} FROM {table} WHERE {key} IN {marks}", keys).fetchall()}
        return [row for row in rows if row[at] not in stored]

    def _rollback(self) -> None:
        """Roll back if a transaction is still open: DuckDB ends it itself after some failures (a full
        drive), and a second error from ROLLBACK must never hide the first."""
        import duckdb

        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def _insert_rows(self, table: str, rows: list[list[Any]], clean: Callable[[str], str], upsert: bool) -> None:
        """One INSERT per INSERT_ROWS rows, each column passed as one list parameter and unnested:
        ~100x cheaper than executemany row by row, as cheap as a DataFrame for the short rows a
        cached re-run writes, and no pandas import (~0.3 s of CPU, more than such a whole run)."""
        if not rows:
            return
        columns = _COLUMNS[table]
        # provider errors may echo the API key: no secret is ever stored (generated columns excepted)
        free = [i for i, c in enumerate(columns) if c not in _GENERATED]
        rows = [list(row) for row in rows]
        for row in rows:
            for i in free:
                if isinstance(row[i], str):
                    row[i] = clean(row[i])
        if table == "cohort_members" and upsert and not self._members_collide(rows):
            upsert = False  # all new in their cohorts: nothing to replace
        # bigger lists of long texts (prompts) get slower per row in DuckDB's parameter conversion
        for start in range(0, len(rows), INSERT_ROWS):
            chunk = rows[start:start + INSERT_ROWS]
            params = [list(col) for col in zip(*chunk, strict=True)]
            batch = "(SELECT " + ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(columns)) + ")"
            if table == "cohort_members" and upsert:  # an edited file replaces its old content in the cohort
                self.con.execute(
                    f"DELETE FROM cohort_members m USING {batch} b WHERE m.cohort = b.cohort"
                    " AND m.source = b.source AND m.transcript_hash <> b.transcript_hash", params)
            conflict = _CONFLICT.get(table, "") if upsert else ""
            self.con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {batch} {conflict}", params)

    def cached_views(self, cache_keys: Iterable[str], run_ids: Sequence[str] | None = None,
                     any_status: bool = False) -> dict[str, list[Candidate]]:
        """cache_key -> the newest judgment made on each view (store/texts.py), newest first: what a
        reuse picks from once it knows the view the transcript gives now (texts.pick). Fully scored
        ones only, unless `any_status` (what `resumable` needs); with `run_ids`, only theirs."""
        where = "" if any_status else " AND j.status = 'scored'"
        runs: list[Any] = []
        if run_ids is not None:
            if not run_ids:
                return {}
            where += " AND j.run_id IN (SELECT unnest(?))"
            runs = [list(run_ids)]
        if any_status:  # a reply was paid for, or the judge is the deterministic baseline
            where += (" AND (j.judge_kind = 'baseline' OR EXISTS (SELECT 1 FROM exchanges e WHERE"
                      " e.judgment_id = j.id AND e.raw_response IS NOT NULL))")
        rows: list[tuple[Any, ...]] = []
        for marks, keys in in_lists(cache_keys):
            rows += self.con.execute(
                "SELECT j.cache_key, j.text_key, false, arg_max(j.id, j.created_at), arg_max(j.status, j.created_at),"
                f" max(j.created_at) FROM judgments j WHERE j.cache_key IN {marks}{where} GROUP BY ALL",
                [*keys, *runs]).fetchall()
        legacy = [r[0] for r in rows if r[1] is None]
        if legacy:  # rows from before the text key (0007): told apart by their flag, read only for them
            rows = [r for r in rows if r[1] is not None]
            for marks, keys in in_lists(legacy):
                rows += self.con.execute(
                    "SELECT j.cache_key, NULL, CAST(j.flags AS VARCHAR) LIKE '%\"kind\": \"speakers_unrecognised\"%'"
                    " AS unrecognised, arg_max(j.id, j.created_at), arg_max(j.status, j.created_at), max(j.created_at)"
                    f" FROM judgments j WHERE j.cache_key IN {marks}{where} AND j.text_key IS NULL GROUP BY ALL",
                    [*keys, *runs]).fetchall()
        found: dict[str, list[Candidate]] = {}
        for key, text_key, unrecognised, jid, status, _ in sorted(rows, key=lambda r: r[5], reverse=True):
            found.setdefault(key, []).append((jid, status, StoredView(text_key, bool(unrecognised))))
        return found

    def reusable_ids(self, views: Mapping[str, View]) -> tuple[dict[str, tuple[str, str]], set[str]]:
        """For callers that know each transcript's view: cache_key -> (judgment id, status) of the
        newest fully scored judgment made on it, and the keys whose stored judgments were all made
        on another view (judged again; the caller says how many)."""
        hits: dict[str, tuple[str, str]] = {}
        refused: set[str] = set()
        for key, candidates in self.cached_views(views).items():
            hit, other = pick(candidates, views[key])
            if hit:
                hits[key] = hit
            elif other:
                refused.add(key)
        return hits, refused

    def unfinished_runs(self, request_key: str) -> list[str]:
        """The runs of this same request since its last completed one (interrupted, killed, aborted):
        what a resume continues from."""
        rows = self.con.execute(
            "SELECT id FROM runs WHERE request_key = ? AND status <> 'completed' AND started_at >"
            " coalesce((SELECT max(started_at) FROM runs WHERE request_key = ? AND status = 'completed'),"
            " TIMESTAMP '0001-01-01')", [request_key, request_key]).fetchall()
        return [r[0] for r in rows]

    def resumable(self, run_ids: list[str], cache_keys: list[str]) -> dict[str, list[Candidate]]:
        """cache_key -> what these (unfinished) runs judged, per view (as `cached_views`), whatever
        the status, as long as the model answered (a reply was paid for) or the judge was the offline
        baseline (deterministic: judging again gives the same judgment, a second row): resuming never
        judges them again, --force or not, unless the transcript is now read differently. Failed
        calls were not paid for and are tried again."""
        return self.cached_views(cache_keys, run_ids, any_status=True)

    def stored_judgment_ids(self, ids: list[str]) -> set[str]:
        """Which of these judgment ids are stored already (a journal replay never inserts one twice)."""
        return {r[0] for marks, chunk in in_lists(ids)
                for r in self.con.execute(f"SELECT id FROM judgments WHERE id IN {marks}", chunk).fetchall()}

    def cohort_member_rows(self, cohort: str, hashes: list[str], sources: list[str]) -> list[tuple[Any, ...]]:
        """MEMBER_FIELDS of the cohort's members with any of these contents or sources: what a batch's
        membership rows would overwrite."""
        found: dict[str, tuple[Any, ...]] = {}  # by transcript_hash: a row matching both is listed once
        for column, keys in (("transcript_hash", hashes), ("source", sources)):
            for row in self._members_by(column, keys, f"{', '.join(MEMBER_FIELDS)}, cohort"):
                if row[-1] == cohort:
                    found[row[0]] = row[:-1]
        return list(found.values())

    def _members_by(self, column: str, keys: Iterable[str], fields: str) -> list[tuple[Any, ...]]:
        """cohort_members rows whose `column` is one of `keys`, found through its index (0015): a
        scan of the table read all of it into memory, at every commit of a cohort."""
        return [r for marks, chunk in in_lists(keys)
                for r in self.con.execute(f"SELECT {fields} FROM cohort_members WHERE {column} IN {marks}",
                                          chunk).fetchall()]

    def _members_collide(self, rows: list[list[Any]]) -> bool:
        """Whether any membership row to write meets a stored one: the same content in its cohort (an
        upsert) or the same file in its cohort (its old content is replaced). Only then does the write
        need the statements that read the whole table (DELETE ... USING, ON CONFLICT); a new cohort's
        members are plain inserts."""
        keys = {(r[0], r[1]) for r in rows}
        files = {(r[0], r[2]) for r in rows if r[2] is not None}
        if len(keys) < len(rows):  # the same member twice in one write: as before
            return True
        stored = self._members_by("transcript_hash", (r[1] for r in rows), "cohort, transcript_hash, source")
        stored += self._members_by("source", (f for _, f in files), "cohort, transcript_hash, source")
        return any((c, h) in keys or (c, src) in files for c, h, src in stored)

    def load_judgment(self, judgment_id: str) -> dict[str, Any]:
        cols = [d[0] for d in self.con.execute("SELECT * FROM judgments LIMIT 0").description]
        row = self.con.execute("SELECT * FROM judgments WHERE id = ?", [judgment_id]).fetchone()
        if row is None:
            raise KeyError(judgment_id)
        record = dict(zip(cols, row, strict=True))
        dims = self.con.execute(
            "SELECT dimension_id, status, score, rationale, evidence, dropped_evidence, reason, distribution,"
            " expected_score, distribution_note, ensemble FROM dimension_scores WHERE judgment_id = ?"
            " ORDER BY position",
            [judgment_id],
        ).fetchall()
        record["dimensions"] = [
            {"id": d[0], "status": d[1], "score": d[2], "rationale": d[3] or "",
             "evidence": json.loads(d[4] or "[]"), "dropped_evidence": json.loads(d[5] or "[]"), "reason": d[6],
             "distribution": json.loads(d[7]) if d[7] else None, "expected_score": d[8], "distribution_note": d[9],
             "ensemble": json.loads(d[10]) if d[10] else None}
            for d in dims
        ]
        for key in ("flags", "warnings", "params", "truncation"):
            record[key] = json.loads(record[key]) if record.get(key) else None
        return record

    def count(self, table: str) -> int:
        if table not in {"transcripts", "rubric_versions", "runs", "judgments", "dimension_scores", "exchanges"}:
            raise ValueError(table)
        (n,) = self.con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
        return n
