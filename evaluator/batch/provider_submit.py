"""Submitting provider batches: the input files written as the judging pass defers requests, then each
recorded in the ledger and taken through upload and create, crash-safe at every step.

Memory stays flat in cohort size: a deferred request is written to the current input file at once
(one line in memory), and the files are split by the provider's limits (requests and bytes) while
they are written. What a file holds is recorded next to it (`<ledger id>.meta`: custom_id, cache key,
item, envelope per line) and read back in chunks when the batch is recorded.

Ledger states, each written BEFORE the step it names (provider_ledger.py has the tables):
    queued     recorded like `uploading`, but not yet submitted: the provider's enqueued-token limit
               (--max-enqueued-tokens, or the figure its failure message gave) has no room for it now.
               The next wave (provider_waves.py: any later run, `batches collect`, each --wait poll)
               takes it to `uploading` (or, when an earlier create of it was failed for the limit and its
               input file is at the provider already, straight to `creating`), oldest first
    uploading  the row, its requests and the input file's SHA-256 are stored; the file is in the spool
               folder. A restart uploads the same bytes again (an orphaned file costs nothing: a batch
               is what is paid for); if the spool file is gone or changed, the batch never reached the
               provider, so the row is closed and its requests dropped (the next run renders them again)
    creating   the file id is stored; a restart first looks for a provider batch whose metadata carries
               this ledger id (`evaluator_ledger_id`) and attempt (`evaluator_attempt`) and adopts it, so
               a create whose answer was lost is never created twice
    submitted  the batch id is stored (the spool file is deleted); collecting polls it
A spool file's writer holds an exclusive lock on it until its batch is submitted (a batch with no spool
file, created again from its uploaded file, is claimed by a `<ledger id>.claim` lock file), so a second
process reconciling the same store never advances a batch that a live run is advancing.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from evaluator.batch import provider_ledger as L
from evaluator.batch.journal import try_lock
from evaluator.judge.batch_transport import ENDPOINT, BatchAPI, ItemContext, provider_of

META_CHUNK = 5_000  # request rows per insert when a batch is recorded
ATTEMPT_KEY = "evaluator_attempt"  # batch metadata: which create of the ledger row this batch is
# A provider's message for its enqueued limit: OpenAI's batch error `token_limit_exceeded` ("Enqueued token
# limit reached for gpt-4o-mini in organization org-... Limit: 2,000,000 enqueued tokens. Please try again
# once some in_progress batches have been completed."), its request-count twin ("Enqueued request limit
# reached ..."), Azure's ("The number of enqueued tokens has surpassed the configured limit of 30K ...").
_ENQUEUED = re.compile(r"token_limit_exceeded|request_limit_exceeded|enqueued (?:prompt )?(?:token|request)s?\b"
                       r".{0,40}\blimit|\blimit\b.{0,40}\benqueued|number of enqueued", re.I | re.S)


def enqueued_limit(text: str) -> bool:
    """Whether a provider's error text says its enqueued-token (or -request) limit was reached: the
    batch is sent again in a later wave, not counted as a failed attempt of its requests."""
    return bool(_ENQUEUED.search(text))


class QueueFull(Exception):
    """The provider refused a create for its enqueued limit: the batch was queued again; stop the wave."""


def _line(cid: str, body_json: str) -> bytes:
    return (f'{{"custom_id": {json.dumps(cid)}, "method": "POST", "url": {json.dumps(ENDPOINT)}, '
            f'"body": {body_json}}}\n').encode()


@dataclass
class Part:
    """One batch input file being written (its lock held until its batch is submitted)."""

    lid: str
    path: Path
    handle: IO[bytes]
    meta: IO[str]
    sha: Any = field(default_factory=hashlib.sha256)
    n: int = 0
    size: int = 0
    tokens: int = 0  # estimated prompt tokens: what the provider's enqueued-token limit counts
    worst_usd: float = 0.0

    def close(self) -> None:
        for h in (self.meta, self.handle):
            if not h.closed:
                h.close()

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".meta").unlink(missing_ok=True)


class Spool:
    """The batch input files of one judging pass (a `RequestSink`): every deferred request is written
    as it comes, split by `max_requests` / `max_bytes` / `max_tokens` (the enqueued-token limit: a
    batch never holds more than one wave), deduplicated by custom_id, and held to the budget
    (`left_usd`: what --max-cost leaves for new batches; None: no budget)."""

    def __init__(self, db: Path, max_requests: int, max_bytes: int, left_usd: float | None = None,
                 max_tokens: int | None = None) -> None:
        self.folder = L.spool_dir(db)
        self.max_requests, self.max_bytes, self.max_tokens = max_requests, max_bytes, max_tokens
        self.left = left_usd
        self.spent: Callable[[], float] = lambda: 0.0  # spent meanwhile from the same budget
        self.parts: list[Part] = []
        self.seen: set[bytes] = set()  # 16 bytes per request: the only per-request state kept
        self.refused = 0

    def add(self, cid: str, line_body: str, body: dict[str, Any], item: ItemContext | None,
            worst_usd: float, tokens: int = 0) -> str | None:
        digest = bytes.fromhex(cid)[:16]
        if digest in self.seen:
            return None
        if self.left is not None:
            if worst_usd > self.left - self.spent():
                self.refused += 1
                return "--max-cost: not submitted (its worst case would exceed the budget)"
            self.left -= worst_usd
        self.seen.add(digest)
        line = _line(cid, line_body)
        part = self.parts[-1] if self.parts else None
        full = part is not None and part.n and (
            part.n >= self.max_requests or part.size + len(line) > self.max_bytes
            or (self.max_tokens is not None and part.tokens + tokens > self.max_tokens))
        if part is None or full:
            part = self._open()
        part.handle.write(line)
        part.sha.update(line)
        part.n += 1
        part.size += len(line)
        part.tokens += tokens
        part.worst_usd += worst_usd
        meta = [cid, item.key if item else None, item.item if item else None, json.dumps(L.envelope(body))]
        part.meta.write(json.dumps(meta, ensure_ascii=False) + "\n")
        return None

    def _open(self) -> Part:
        self.folder.mkdir(parents=True, exist_ok=True)
        lid = str(uuid.uuid4())
        path = self.folder / f"{lid}.jsonl"
        handle = path.open("wb")
        try_lock(handle)  # held until the batch is submitted (or the process dies)
        part = Part(lid, path, handle, path.with_suffix(".meta").open("w", encoding="utf-8"))
        self.parts.append(part)
        return part

    def close(self) -> None:
        for p in self.parts:
            p.discard()
        self.parts.clear()


def _meta_rows(part: Part, state: str) -> Iterator[list[list[Any]]]:
    chunk: list[list[Any]] = []
    with part.path.with_suffix(".meta").open(encoding="utf-8") as f:
        for seq, raw in enumerate(f):
            cid, key, item, env = json.loads(raw)
            chunk.append([part.lid, seq, cid, key, item, env, state])
            if len(chunk) >= META_CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def record(path: Path, part: Part, cohort: str, model: str, api_base: str | None, queued: bool = False,
           limit: int | None = None) -> dict[str, Any]:
    """The ledger row and every request of one input file, in one transaction (state uploading, or
    queued when the enqueued-token limit has no room for it now; `limit`: the one it was held to)."""
    part.handle.flush()
    part.meta.flush()
    part.meta.close()
    state = "queued" if queued else "uploading"
    row = {"id": part.lid, "state": state, "input_sha256": part.sha.hexdigest(), "input_file_id": None, "attempt": 0}

    def insert(con: Any) -> None:
        con.execute("INSERT INTO batch_ledger (id, cohort, provider, model, api_base, state, input_sha256, "
                    "input_bytes, n_requests, worst_cost_usd, submitted_at, updated_at, enqueued_tokens, "
                    "max_enqueued_tokens, attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    [part.lid, cohort, provider_of(model), model, api_base, state, row["input_sha256"], part.size,
                     part.n, part.worst_usd, L.now(), L.now(), part.tokens, limit])
        for chunk in _meta_rows(part, "queued" if queued else "submitted"):
            L.insert_rows(con, "batch_requests", ["ledger_id", "seq", "custom_id", "cache_key", "item", "body",
                                                  "state"], chunk)

    L.write(path, insert)
    return row


def _file_sha256(file: Path) -> str:
    h = hashlib.sha256()
    with file.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


async def advance(api: BatchAPI, path: Path, row: dict[str, Any], restart: bool) -> None:
    """Take one ledger row from uploading/creating to submitted (see the module docstring)."""
    lid = row["id"]
    file = L.spool_file(path, lid)
    if row["state"] == "uploading":
        if not file.exists() or _file_sha256(file) != row["input_sha256"]:
            drop(path, lid, "its input file is gone from the spool folder before the upload finished; "
                  "its requests are submitted again by the next run")
            return
        row["input_file_id"] = await api.upload(f"evaluator-{lid}.jsonl", file)
        L.crash_point("after_upload")
        L.update(path, lid, state="creating", input_file_id=row["input_file_id"])
        row["state"] = "creating"
    if row["state"] == "creating":
        attempt = str(row.get("attempt") or 0)
        def this_create(meta: dict[str, Any]) -> bool:  # a batch from before attempts were kept is attempt 0
            return meta.get(L.LEDGER_KEY) == lid and str(meta.get(ATTEMPT_KEY, "0")) == attempt

        found = await api.find(this_create, since=row.get("updated_at")) if restart else None
        try:
            batch = found or await api.create(row["input_file_id"], {L.LEDGER_KEY: lid, ATTEMPT_KEY: attempt})
        except Exception as e:  # noqa: BLE001 - litellm maps a provider's refusal to assorted classes
            if not enqueued_limit(str(e)):
                raise
            requeue(path, lid, str(e))
            raise QueueFull(str(e)) from None
        L.crash_point("after_create")
        L.update(path, lid, state="submitted", batch_id=batch["id"], provider_status=batch.get("status"))
        row.update(state="submitted", batch_id=batch["id"])
    file.unlink(missing_ok=True)
    file.with_suffix(".meta").unlink(missing_ok=True)


def fits(in_flight: int, tokens: int, limit: int | None) -> bool:
    """Whether a batch of `tokens` may go now: no limit, nothing in flight (one batch always goes, or a
    limit below one batch would stop the cohort for good), or room beside what is in flight."""
    return limit is None or in_flight <= 0 or in_flight + tokens <= limit


def requeue(path: Path, lid: str, message: str) -> None:
    """Back to `queued` (and its requests), in one transaction: the provider failed it for its enqueued
    limit. Not an attempt of its requests (no request was run); the input file stays where it is."""
    def back(con: Any) -> None:
        con.execute("UPDATE batch_requests SET state = 'queued' WHERE ledger_id = ? AND state = 'submitted'", [lid])
        con.execute("UPDATE batch_ledger SET state = 'queued', provider_status = 'failed', counts = NULL, error = ?, "
                    "updated_at = ? WHERE id = ?", [f"{L.ENQUEUED_LIMIT}{message[:300]}", L.now(), lid])

    L.write(path, back)


def drop(path: Path, lid: str, why: str, status: str = "not_submitted") -> None:
    """Close a row whose requests never ran (state dropped: the next run renders them again)."""
    def close(con: Any) -> None:
        con.execute("UPDATE batch_requests SET state = 'dropped', error = ? WHERE ledger_id = ?", [why, lid])
        con.execute("UPDATE batch_ledger SET state = 'done', provider_status = ?, error = ?, "
                    "updated_at = ? WHERE id = ?", [status, why, L.now(), lid])

    L.write(path, close)


def claim(path: Path, lid: str) -> IO[bytes] | None:
    """This process's exclusive lock on one ledger row: its spool file's, else a `<lid>.claim` file's
    (a batch created again from its uploaded file has no spool file). None: another process holds it."""
    file = L.spool_file(path, lid)
    if not file.exists():
        file = file.with_suffix(".claim")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.touch()
    handle = file.open("rb")
    if try_lock(handle):
        return handle
    handle.close()
    return None


def release(path: Path, lid: str, handle: IO[bytes]) -> None:
    """Give up a claim (a claim file goes: only a live claim needs one)."""
    if handle.name.endswith(".claim"):
        Path(handle.name).unlink(missing_ok=True)
    handle.close()


def fresh(path: Path, lid: str) -> dict[str, Any] | None:
    """The row as stored now (read after its claim is held: another process may have advanced it)."""
    found = L.session(path, lambda s: L.rows(s, "id = ?", [lid]))
    return found[0] if found else None


async def reconcile(api: BatchAPI, path: Path, cohort: str | None) -> int:
    """Finish the rows a killed run left in uploading/creating (never creating a batch twice), and
    delete the spool files no row waits for. Returns the rows advanced."""
    rows = L.session(path, lambda s: L.rows(s, "state IN ('uploading', 'creating') AND (? IS NULL OR cohort = ?)",
                                            [cohort, cohort]))
    advanced = 0
    for row in rows:
        handle = claim(path, row["id"])
        if handle is None:
            continue  # a live run holds it and is advancing it
        try:
            now = fresh(path, row["id"])
            if now is None or now["state"] not in ("uploading", "creating"):
                continue
            await advance(api, path, now, restart=True)
            advanced += 1
        except QueueFull:
            continue  # queued again: a later wave submits it
        finally:
            release(path, row["id"], handle)
    every = L.session(path, lambda s: L.rows(s, "state IN ('uploading', 'creating', 'queued')", []))
    L.tidy_spool(path, {r["id"] for r in every})
    return advanced


async def submit(api: BatchAPI, path: Path, spool: Spool, cohort: str, model: str, api_base: str | None,
                 limit: int | None = None, in_flight: int = 0,
                 recorded: int | None = None) -> tuple[list[str], list[str]]:
    """Record every input file of the spool; upload and create those the enqueued-token `limit` has room
    for beside the `in_flight` tokens (None: no limit; one always goes when nothing is in flight), and
    record the rest as queued, in order (waves are first in, first out; `recorded`: the limit each row
    remembers for later waves). Returns (submitted, queued) ledger ids."""
    ids: list[str] = []
    waiting: list[str] = []
    try:
        while spool.parts:
            part = spool.parts[0]
            full = bool(waiting) or not fits(in_flight, part.tokens, limit)
            row = record(path, part, cohort, model, api_base, queued=full, limit=recorded)
            L.crash_point("after_record")
            spool.parts.pop(0)  # recorded: from here the ledger owns the file (reconcile finishes it)
            try:
                if full:
                    waiting.append(part.lid)
                    continue
                await advance(api, path, row, restart=False)
                in_flight += part.tokens
            except QueueFull:
                waiting.append(part.lid)
                continue
            finally:
                part.close()  # the lock goes with the handle
            ids.append(part.lid)
    finally:
        for part in spool.parts:  # not recorded (an error above): nothing of it reached the provider
            part.discard()
        spool.parts.clear()
    return ids, waiting
