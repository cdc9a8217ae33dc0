"""The provider-batch ledger in DuckDB (`batch_ledger`, `batch_requests`: migration 0012; the replies
in `batch_replies`: 0017), and the spool folder that holds a batch's input file until the provider
has it.

What is stored per request, and why not the body: a request body is ~25 KB (the rendered prompt and
the rubric's schema), so storing it would double the store for a big cohort. The ledger keeps the
request's *envelope* in `batch_requests.body`: every field but the messages, the response format as
its type alone, and the SHA-256 of the messages. Nothing needs the full body after the provider has
it: the custom_id is the SHA-256 of the full body, so a retry or a repair re-renders the request from
the stored transcript, rubric and prompt version (rendering is deterministic) and is verified by that
hash; the rendered prompt of every judged request is stored once, in its judgment's exchange. Before
the provider has the bytes, they live in the spool file `<db>.batches/<ledger id>.jsonl` (the exact
input file, its SHA-256 in the ledger row), deleted once the batch is created.

A request's `state`: queued (its batch waits for a wave under the enqueued-token limit), submitted
(waiting in its batch), done (reply stored), failed (the provider's reason stored), cancelled, dropped
(its batch never reached the provider: re-rendered next run).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluator.judge.batch_transport import KnownRequest
from evaluator.store.db import IN_LIST, Store, default_db_path, in_lists, open_store, require_existing
from evaluator.store.names import require_cohort

FINAL = ("completed", "failed", "expired", "cancelled")
LEDGER_KEY = "evaluator_ledger_id"
DB_WAIT = 30.0
# `batch_ledger.error` of a batch the provider refused for its structured-output mode: the prefix,
# then "<mode>: <the provider's message>" (read back by `rejected_modes`)
FORMAT_REJECTED = "response_format rejected: "
# `batch_ledger.error` of a batch the provider failed for its enqueued-token (or -request) limit: the
# prefix, then the provider's message (provider_waves.py reads the limit's figure back from it)
ENQUEUED_LIMIT = "enqueued limit: "
IN_FLIGHT = ("uploading", "creating", "submitted")  # ledger states whose tokens the provider holds
DOWNLOAD_SUFFIX = ".download"  # a result file being downloaded into the spool folder (provider_collect.py)


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process at `name` (after_record, after_upload, after_create,
    during_download) when EVALUATOR_TEST_CRASH_AT says so (the one place the variable is read)."""
    if os.environ.get("EVALUATOR_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def now() -> datetime:
    """UTC now, naive (the store's TIMESTAMP columns)."""
    return datetime.now(UTC).replace(tzinfo=None)


def db_path(db: Path | None) -> Path:
    """The store file: the given one, else the default."""
    return db or default_db_path()


def session(path: Path, fn: Callable[[Store], Any]) -> Any:
    """One short DB session (the file is not held between steps: a report can read meanwhile)."""
    with open_store(path, wait_seconds=DB_WAIT) as store:
        return fn(store)


def tx(store: Store, fn: Callable[[Any], Any]) -> Any:
    """`fn(con)` in one transaction (rolled back on any error)."""
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        out = fn(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return out


def write(path: Path, fn: Callable[[Any], Any]) -> Any:
    """One session, one transaction."""
    return session(path, lambda store: tx(store, fn))


def rows_param(columns: list[str], rows: list[list[Any]]) -> tuple[str, list[list[Any]]]:
    """`rows` as a derived table for one statement: "(SELECT unnest($1) AS a, unnest($2) AS b, ...)"
    and its parameters (each column one list). DuckDB's executemany costs ~0.5 ms a row, and a pandas
    frame costs the pandas import (~50 MB of memory, more than the rest of a ledger step holds)."""
    table = "(SELECT " + ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(columns)) + ")"
    return table, [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns]


def insert_rows(con: Any, table: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Bulk insert of `rows` (lists in `columns` order) in one statement."""
    if rows:
        derived, params = rows_param(columns, rows)
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {derived}", params)


def scalar(store: Store, sql: str, params: list[Any] | None = None) -> Any:
    """The first column of the first row (None if no row)."""
    row = store.con.execute(sql, params or []).fetchone()
    return row[0] if row else None


def rows(store: Store, where: str, params: list[Any]) -> list[dict[str, Any]]:
    """Ledger rows matching `where`, oldest first, as dicts."""
    cur = store.con.execute(f"SELECT * FROM batch_ledger WHERE {where} ORDER BY submitted_at", params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def update(path: Path, lid: str, **values: Any) -> None:
    """Set columns of one ledger row (and its updated_at) in a session of its own."""
    sets = ", ".join(f"{k} = ?" for k in values)
    session(path, lambda s: s.con.execute(f"UPDATE batch_ledger SET {sets}, updated_at = ? WHERE id = ?",
                                          [*values.values(), now(), lid]))


# -- what a request is -------------------------------------------------------------------------
def envelope(body: dict[str, Any]) -> dict[str, Any]:
    """What the ledger stores of a request body (see the module docstring): no messages, no schema."""
    env = {k: v for k, v in body.items() if k != "messages"}
    fmt = env.get("response_format")
    if isinstance(fmt, dict):
        env["response_format"] = {"type": fmt.get("type")}
    messages = body.get("messages") or []
    env["messages_sha256"] = hashlib.sha256(
        json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    env["n_messages"] = len(messages)  # more than the prompt's: a repair turn
    return env


def known_for(store: Store, cache_keys: Iterable[str]) -> dict[str, KnownRequest]:
    """Every request the ledger holds for these transcripts (their cache keys): looked up a chunk of
    transcripts at a time, so memory holds the replies of one chunk, not of the whole cohort.

    Two steps, so no step reads a reply it does not return: the requests (their states and the
    positions of their replies in `batch_replies`: small columns, whatever the plan), then the
    replies of the chunk by position (`_replies`). One query joining the replies scanned that
    column for every request of the ledger (DuckDB plans a long IN list as a join), ~3 KB a request
    decompressed per chunk: a collecting run's memory grew with the store, its time with its square."""
    keys = [k for k in cache_keys if k]
    known: dict[str, KnownRequest] = {}
    if not keys:
        return known
    found = [row for marks, chunk in in_lists(keys) for row in store.con.execute(
        "SELECT r.custom_id, r.cache_key, r.ledger_id, r.state, r.error, p.rowid FROM batch_requests r "
        "JOIN batch_ledger l ON l.id = r.ledger_id "
        "LEFT JOIN batch_replies p ON p.ledger_id = r.ledger_id AND p.custom_id = r.custom_id "
        f"WHERE r.cache_key IN {marks} ORDER BY l.submitted_at",
        chunk).fetchall()]  # a request's rows all in one chunk (by cache key): still oldest first
    replies = _replies(store, [at for _, _, _, state, _, at in found if state == "done" and at is not None])
    for cid, key, lid, state, error, at in found:
        k = known.setdefault(cid, KnownRequest(cache_key=key))
        if state == "done" and at in replies:
            k.reply = json.loads(replies[at])
        elif state in ("submitted", "queued"):
            k.pending_in = lid
        elif state == "failed":
            k.failures.append(error or "failed")
    return known


REPLY_SPAN = 2048  # positions one reply query covers at most: a DuckDB vector


def _replies(store: Store, rowids: list[int]) -> dict[int, str]:
    """The replies at these positions of `batch_replies` (rowids of the same session), read a group
    of nearby positions per query: DuckDB narrows the scan to the range of a list of rowids, so a
    query reads the blocks of its group's replies only. A result file is stored in its order, which
    is the cohort's as the provider keeps it (one or two queries a chunk); a provider that shuffles
    its output costs more queries, never a scan of every reply."""
    out: dict[int, str] = {}
    ordered = sorted(set(rowids))
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] - ordered[start] >= REPLY_SPAN or i - start >= IN_LIST:
            group = ordered[start:i]
            out.update(store.con.execute(f"SELECT rowid, reply FROM batch_replies WHERE rowid IN "
                                         f"({', '.join('?' * len(group))})", group).fetchall())
            start = i
    return out


def waiting(store: Store, cohort: str) -> tuple[int, int]:
    """(requests, transcripts) of this cohort still at the provider or queued for a later wave."""
    row = store.con.execute(
        "SELECT count(*), count(DISTINCT r.cache_key) FROM batch_requests r JOIN batch_ledger l "
        "ON l.id = r.ledger_id WHERE r.state IN ('submitted', 'queued') AND l.cohort = ?", [cohort]).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def queued(store: Store, cohort: str | None) -> tuple[int, int]:
    """(batches, requests) recorded but waiting for a wave under the enqueued-token limit."""
    row = store.con.execute("SELECT count(*), coalesce(sum(n_requests), 0) FROM batch_ledger WHERE state = 'queued' "
                            "AND (? IS NULL OR cohort = ?)", [cohort, cohort]).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def provider_progress(store: Store, cohort: str) -> tuple[int, int]:
    """(requests the provider reports finished, requests) over this cohort's unfinished batches."""
    done = total = 0
    for counts, n in store.con.execute("SELECT counts, n_requests FROM batch_ledger WHERE cohort = ? AND "
                                       "state <> 'done'", [cohort]).fetchall():
        c = json.loads(counts) if counts else {}
        done += int(c.get("completed") or 0) + int(c.get("failed") or 0)
        total += int(n)
    return done, total


def reserved(store: Store) -> float:
    """Worst-case cost of the batches still running (already committed against the budget)."""
    return float(scalar(store, "SELECT sum(worst_cost_usd) FROM batch_ledger WHERE state <> 'done'") or 0.0)


def rejected_modes(store: Store, model: str, api_base: str | None) -> list[tuple[str, str]]:
    """(mode, the provider's message) of every structured-output mode a batch of this model was
    refused for, oldest first (the next run's requests use the next mode)."""
    out = []
    for (error,) in store.con.execute(
            "SELECT error FROM batch_ledger WHERE model = ? AND api_base IS NOT DISTINCT FROM ? AND "
            "starts_with(error, ?) ORDER BY submitted_at", [model, api_base, FORMAT_REJECTED]).fetchall():
        mode, _, message = error[len(FORMAT_REJECTED):].partition(": ")
        out.append((mode, message))
    return out


def list_batches(db: Path | None, cohort: str | None = None) -> list[dict[str, Any]]:
    """Every ledger row (newest last) with its request counts by state."""
    def q(store: Store) -> list[dict[str, Any]]:
        require_cohort(store.con, cohort)
        found = rows(store, "(? IS NULL OR cohort = ?)", [cohort, cohort])
        counts: dict[str, dict[str, int]] = {}
        for lid, state, n in store.con.execute(
                "SELECT ledger_id, state, count(*) FROM batch_requests GROUP BY ALL").fetchall():
            counts.setdefault(lid, {})[state] = n
        for r in found:
            r["requests"] = counts.get(r["id"], {})
            r["counts"] = json.loads(r["counts"]) if r.get("counts") else None
        return found

    path = db_path(db)
    require_existing(path)  # list, collect and cancel all start here: none of them creates the file
    return session(path, q)


# -- the spool folder ----------------------------------------------------------------------------
def spool_dir(path: Path) -> Path:
    """Where input files wait for their upload: next to the store, like its journal."""
    return path.with_name(path.name + ".batches")


def spool_file(path: Path, lid: str) -> Path:
    """The input file of one ledger row."""
    return spool_dir(path) / f"{lid}.jsonl"


def tidy_spool(path: Path, keep: set[str]) -> int:
    """Delete spool files no ledger row waits for (`keep`: ledger ids still uploading) whose writer
    is gone (its lock is free): what a run killed before recording its batches left behind, and the
    result files a run killed while collecting was downloading (provider_collect.py)."""
    from evaluator.batch.journal import try_lock

    folder = spool_dir(path)
    if not folder.is_dir():
        return 0
    removed = 0
    for f in [*folder.glob("*.jsonl"), *folder.glob(f"*{DOWNLOAD_SUFFIX}")]:
        lid = f.name.split(".", 1)[0]
        if lid in keep and f.suffix == ".jsonl":
            continue
        try:
            with f.open("rb") as handle:
                if not try_lock(handle):
                    continue  # a live run is writing it
            f.unlink(missing_ok=True)
            if f.suffix == ".jsonl":
                f.with_suffix(".meta").unlink(missing_ok=True)
            removed += 1
        except OSError:
            continue
    return removed
