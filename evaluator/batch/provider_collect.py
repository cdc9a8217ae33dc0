"""Collecting provider batches: poll the unfinished ones, download the output and error files of the
finished ones, and store every reply in `batch_replies` (each request's state, or the provider's
reason, in `batch_requests`).

Memory stays flat in the cohort's size: a result file is streamed to a file in the spool folder as it
arrives (`<ledger id>.<random>.download`, locked while this process uses it, so `tidy_spool` deletes only
what a killed run left), then read back line by line and stored a chunk of lines per transaction
(each chunk's writes are idempotent, so a kill half-way only means the next run downloads and stores again: the
provider keeps the files). The ledger row becomes `done` last, in the transaction that also marks what
neither file answered (the batch ended first: expired, failed, cancelled).

A batch the provider refused for its structured-output mode (the whole batch failed, or every request
of it failed, with an error naming the response format) is recorded in `batch_ledger.error`
(`provider_ledger.FORMAT_REJECTED`): the next judging pass renders its requests with the next mode of
the model's capabilities (provider_batch.py), exactly as a live call steps down. A batch the provider
failed for its enqueued-token limit is queued for a later wave instead (provider_waves.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from evaluator.batch import provider_ledger as L
from evaluator.batch.journal import try_lock
from evaluator.batch.provider_waves import batch_errors, limit_message, on_limit_failure
from evaluator.judge.batch_transport import BatchAPI, format_rejection

STORE_CHUNK = 2_000  # replies per transaction


def parse_line(raw: bytes) -> tuple[str, str | None, str | None]:
    """(custom_id, the reply as JSON text or None, the provider's reason or None) of one result line."""
    rec = json.loads(raw)
    resp, err = rec.get("response") or {}, rec.get("error")
    if err is None and resp.get("status_code") == 200:
        return rec["custom_id"], json.dumps(resp.get("body"), ensure_ascii=False), None
    body = resp.get("body") or {}
    why = (err or {}).get("message") or (body.get("error") or {}).get("message") or str(err or body)
    code = (err or {}).get("code") or resp.get("status_code")
    return rec["custom_id"], None, f"{code}: {why}" if code else str(why)


def _store_chunk(con: Any, lid: str, chunk: list[list[Any]]) -> None:
    """One chunk's lines: the replies appended to `batch_replies`, each request's state and the
    provider's reason set in its ledger row (joined by custom_id within the batch's rows; the lines
    passed as parameters: no temporary table, no pandas frame). A reply already stored (the chunk
    stored again after a kill before the batch's row was `done`) is not appended twice, and a line
    naming no request of the batch is ignored, as the UPDATE ignores it."""
    lines = {row[0]: row for row in chunk}  # a custom_id twice in a file: its last line, as the UPDATE had it
    answered = [[c, r] for c, _, r, _ in lines.values() if r is not None]
    if answered:
        replies, params = L.rows_param(["custom_id", "reply"], answered)
        n = len(params) + 1
        con.execute(f"INSERT INTO batch_replies SELECT ${n}, x.custom_id, x.reply FROM {replies} x "
                    f"WHERE x.custom_id IN (SELECT custom_id FROM batch_requests WHERE ledger_id = ${n}) "
                    f"AND x.custom_id NOT IN (SELECT custom_id FROM batch_replies WHERE ledger_id = ${n})",
                    [*params, lid])
    states, params = L.rows_param(["custom_id", "state", "error"], [[c, s, e] for c, s, _, e in lines.values()])
    n = len(params) + 1
    con.execute(f"UPDATE batch_requests SET state = x.state, error = x.error FROM {states} x "
                f"WHERE batch_requests.ledger_id = ${n} AND batch_requests.custom_id = x.custom_id", [*params, lid])


def store_file(path: Path, lid: str, lines: Iterable[bytes]) -> int:
    """Store one result file's lines (an open file: read one line at a time, never a list of them),
    STORE_CHUNK per transaction, each in a session of its own. Returns lines read.

    A session per chunk, not one for the file: DuckDB keeps what an UPDATE wrote in memory until
    the next checkpoint (at the session's close), so one session held every reply of the file at
    once (~3 KB a request) on top of the file itself; closing after each chunk bounds it to a chunk
    (and lets `report --serve` in between)."""
    n = 0
    chunk: list[list[Any]] = []
    for raw in lines:
        if not raw.strip():
            continue
        cid, reply, why = parse_line(raw)
        chunk.append([cid, "done" if reply is not None else "failed", reply, why])
        n += 1
        if len(chunk) >= STORE_CHUNK:
            L.write(path, partial(_store_chunk, lid=lid, chunk=chunk))
            chunk = []
    if chunk:
        L.write(path, partial(_store_chunk, lid=lid, chunk=chunk))
    return n


async def download_and_store(api: BatchAPI, path: Path, lid: str, file_id: str) -> int:
    """Stream one result file to the spool folder, then store its lines (`store_file`); the file is
    deleted once stored. Returns lines stored. Its lock is held from the first byte to the delete, so
    a second process reconciling the same store leaves it alone; a kill leaves it unlocked, and the
    next run's `tidy_spool` deletes it (the ledger row is not `done`: that run downloads again)."""
    folder = L.spool_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{lid}.{uuid.uuid4().hex[:12]}{L.DOWNLOAD_SUFFIX}"
    try:
        with file.open("w+b") as handle:
            try_lock(handle)
            async for block in api.content(file_id):
                handle.write(block)
                L.crash_point("during_download")
            handle.flush()
            handle.seek(0)
            return store_file(path, lid, handle)
    finally:
        file.unlink(missing_ok=True)


def _batch_errors(b: dict[str, Any]) -> list[str]:
    return [message for _, message in batch_errors(b)]


def _finish(con: Any, lid: str, b: dict[str, Any], counts: dict[str, Any], missing: str) -> None:
    """What neither file answered, the format verdict, and the row's `done`: one transaction."""
    status = str(b.get("status"))
    con.execute("UPDATE batch_requests SET state = ?, error = ? WHERE ledger_id = ? AND state = 'submitted'",
                ["cancelled" if status == "cancelled" else "failed", missing, lid])
    error = _format_verdict(con, lid, status, _batch_errors(b))
    con.execute("UPDATE batch_ledger SET state = 'done', provider_status = ?, counts = ?, output_file_id = ?, "
                "error_file_id = ?, error = coalesce(?, error), updated_at = ? WHERE id = ?",
                [status, json.dumps(counts), b.get("output_file_id"), b.get("error_file_id"), error, L.now(), lid])


def _format_verdict(con: Any, lid: str, status: str, errors: list[str]) -> str | None:
    """FORMAT_REJECTED + "<mode>: <message>" when the provider refused the batch for its response
    format: the batch failed naming it, or every request failed naming it; else None."""
    mode = con.execute("SELECT coalesce(json_extract_string(body, '$.response_format.type'), 'none') "
                       "FROM batch_requests WHERE ledger_id = ? LIMIT 1", [lid]).fetchone()
    if not mode or mode[0] == "none":
        return None
    message = next((e for e in errors if format_rejection(e)), None) if status == "failed" else None
    if message is None:
        total, failed, named = con.execute(
            "SELECT count(*), count(*) FILTER (state = 'failed'), max(error) FILTER (state = 'failed') "
            "FROM batch_requests WHERE ledger_id = ?", [lid]).fetchone()
        if not total or failed < total or not named or not format_rejection(named):
            return None
        message = named
    return f"{L.FORMAT_REJECTED}{mode[0]}: {message[:300]}"


async def collect(api: BatchAPI, path: Path, cohort: str | None) -> tuple[int, list[dict[str, Any]]]:
    """Poll unfinished batches; store the results of finished ones. Returns (batches finished now,
    the status of each batch polled)."""
    rows = L.session(path, lambda s: L.rows(s, "state = 'submitted' AND (? IS NULL OR cohort = ?)", [cohort, cohort]))
    finished = 0
    polled = []
    for row in rows:
        b = await api.retrieve(row["batch_id"])
        status, counts = str(b.get("status")), b.get("request_counts") or {}
        counts = counts if isinstance(counts, dict) else dict(vars(counts))
        polled.append({"id": row["id"], "batch_id": row["batch_id"], "status": status, "counts": counts,
                       "n_requests": row["n_requests"]})
        if status not in L.FINAL:
            L.update(path, row["id"], provider_status=status, counts=json.dumps(counts))
            continue
        limited = limit_message(b) if status == "failed" else None
        if limited is not None:  # the provider's queue was full: a later wave sends it again (no attempt spent)
            # dropped (too big for the limit on its own): its requests are rendered again, split, by this
            # run's judging pass, so it counts as finished (a --wait poll would skip that pass otherwise)
            finished += on_limit_failure(path, row, limited) == "dropped"
            continue
        for fid in (b.get("output_file_id"), b.get("error_file_id")):
            if fid:
                await download_and_store(api, path, row["id"], fid)
        errs = _batch_errors(b)
        missing = f"the batch ended {status}" + (f": {errs[0]}" if errs else "")
        L.write(path, partial(_finish, lid=row["id"], b=b, counts=counts, missing=missing))
        finished += 1
    return finished, polled
