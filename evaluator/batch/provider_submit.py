"""Submitting provider batches: the input files written as the judging pass defers requests, then each
recorded in the ledger and taken through upload and create, crash-safe at every step.

Memory stays flat in cohort size: a deferred request is written to the current input file at once
(one line in memory), and the files are split by the provider's limits (requests and bytes) while
they are written. What a file holds is recorded next to it (`<ledger id>.meta`: custom_id, cache key,
item, envelope per line) and read back in chunks when the batch is recorded.

Ledger states, each written BEFORE the step it names (provider_ledger.py has the tables):
    uploading  the row, its requests and the input file's SHA-256 are stored; the file is in the spool
               folder. A restart uploads the same bytes again (an orphaned file costs nothing: a batch
               is what is paid for); if the spool file is gone or changed, the batch never reached the
               provider, so the row is closed and its requests dropped (the next run renders them again)
    creating   the file id is stored; a restart first looks for a provider batch whose metadata carries
               this ledger id (`evaluator_ledger_id`) and adopts it, so a create whose answer was lost is
               never created twice
    submitted  the batch id is stored (the spool file is deleted); collecting polls it
A spool file's writer holds an exclusive lock on it until its batch is submitted, so a second process
reconciling the same store never advances a batch that a live run is advancing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from evaluator.batch import provider_ledger as L
from evaluator.batch.journal import _lock
from evaluator.judge.batch_transport import ENDPOINT, BatchAPI, ItemContext, provider_of

META_CHUNK = 5_000  # request rows per insert when a batch is recorded


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
    as it comes, split by `max_requests` / `max_bytes`, deduplicated by custom_id, and held to the
    budget (`left_usd`: what --max-cost leaves for new batches; None: no budget)."""

    def __init__(self, db: Path, max_requests: int, max_bytes: int, left_usd: float | None = None) -> None:
        self.folder = L.spool_dir(db)
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self.left = left_usd
        self.spent: Callable[[], float] = lambda: 0.0  # spent meanwhile from the same budget
        self.parts: list[Part] = []
        self.seen: set[bytes] = set()  # 16 bytes per request: the only per-request state kept
        self.refused = 0

    def add(self, cid: str, line_body: str, body: dict[str, Any], item: ItemContext | None,
            worst_usd: float) -> str | None:
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
        if part is None or (part.n and (part.n >= self.max_requests or part.size + len(line) > self.max_bytes)):
            part = self._open()
        part.handle.write(line)
        part.sha.update(line)
        part.n += 1
        part.size += len(line)
        part.worst_usd += worst_usd
        meta = [cid, item.key if item else None, item.item if item else None, json.dumps(L.envelope(body))]
        part.meta.write(json.dumps(meta, ensure_ascii=False) + "\n")
        return None

    def _open(self) -> Part:
        self.folder.mkdir(parents=True, exist_ok=True)
        lid = str(uuid.uuid4())
        path = self.folder / f"{lid}.jsonl"
        handle = path.open("wb")
        _lock(handle)  # held until the batch is submitted (or the process dies)
        part = Part(lid, path, handle, path.with_suffix(".meta").open("w", encoding="utf-8"))
        self.parts.append(part)
        return part

    def close(self) -> None:
        for p in self.parts:
            p.discard()
        self.parts.clear()


def _meta_rows(part: Part) -> Iterator[list[list[Any]]]:
    chunk: list[list[Any]] = []
    with part.path.with_suffix(".meta").open(encoding="utf-8") as f:
        for seq, raw in enumerate(f):
            cid, key, item, env = json.loads(raw)
            chunk.append([part.lid, seq, cid, key, item, env, "submitted"])
            if len(chunk) >= META_CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def record(path: Path, part: Part, cohort: str, model: str, api_base: str | None) -> dict[str, Any]:
    """The ledger row and every request of one input file, in one transaction (state uploading)."""
    part.handle.flush()
    part.meta.flush()
    part.meta.close()
    row = {"id": part.lid, "state": "uploading", "input_sha256": part.sha.hexdigest(), "input_file_id": None}

    def insert(con: Any) -> None:
        con.execute("INSERT INTO batch_ledger (id, cohort, provider, model, api_base, state, input_sha256, "
                    "input_bytes, n_requests, worst_cost_usd, submitted_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, 'uploading', ?, ?, ?, ?, ?, ?)",
                    [part.lid, cohort, provider_of(model), model, api_base, row["input_sha256"], part.size,
                     part.n, part.worst_usd, L.now(), L.now()])
        for chunk in _meta_rows(part):
            L.insert_frame(con, "batch_requests", ["ledger_id", "seq", "custom_id", "cache_key", "item", "body",
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
            _drop(path, lid, "its input file is gone from the spool folder before the upload finished; "
                  "its requests are submitted again by the next run")
            return
        row["input_file_id"] = await api.upload(f"evaluator-{lid}.jsonl", file)
        L.crash_point("after_upload")
        L.update(path, lid, state="creating", input_file_id=row["input_file_id"])
        row["state"] = "creating"
    if row["state"] == "creating":
        found = await api.find(L.LEDGER_KEY, lid) if restart else None
        batch = found or await api.create(row["input_file_id"], {L.LEDGER_KEY: lid})
        L.crash_point("after_create")
        L.update(path, lid, state="submitted", batch_id=batch["id"], provider_status=batch.get("status"))
        row.update(state="submitted", batch_id=batch["id"])
    file.unlink(missing_ok=True)
    file.with_suffix(".meta").unlink(missing_ok=True)


def _drop(path: Path, lid: str, why: str) -> None:
    def close(con: Any) -> None:
        con.execute("UPDATE batch_requests SET state = 'dropped', error = ? WHERE ledger_id = ?", [why, lid])
        con.execute("UPDATE batch_ledger SET state = 'done', provider_status = 'not_submitted', error = ?, "
                    "updated_at = ? WHERE id = ?", [why, L.now(), lid])

    L.write(path, close)


async def reconcile(api: BatchAPI, path: Path, cohort: str | None) -> int:
    """Finish the rows a killed run left in uploading/creating (never creating a batch twice), and
    delete the spool files no row waits for. Returns the rows advanced."""
    rows = L.session(path, lambda s: L.rows(s, "state IN ('uploading', 'creating') AND (? IS NULL OR cohort = ?)",
                                            [cohort, cohort]))
    advanced = 0
    for row in rows:
        file = L.spool_file(path, row["id"])
        handle = file.open("rb") if file.exists() else None
        try:
            if handle is not None and not _lock(handle):
                continue  # a live run holds it and is advancing it
            await advance(api, path, row, restart=True)
            advanced += 1
        finally:
            if handle is not None:
                handle.close()
    every = L.session(path, lambda s: L.rows(s, "state IN ('uploading', 'creating')", []))
    L.tidy_spool(path, {r["id"] for r in every})
    return advanced


async def submit(api: BatchAPI, path: Path, spool: Spool, cohort: str, model: str,
                 api_base: str | None) -> list[str]:
    """Record, upload and create every input file of the spool. Returns the ledger ids."""
    ids = []
    try:
        while spool.parts:
            part = spool.parts[0]
            row = record(path, part, cohort, model, api_base)
            L.crash_point("after_record")
            spool.parts.pop(0)  # recorded: from here the ledger owns the file (reconcile finishes it)
            try:
                await advance(api, path, row, restart=False)
            finally:
                part.close()  # the lock goes with the handle
            ids.append(part.lid)
    finally:
        for part in spool.parts:  # not recorded (an error above): nothing of it reached the provider
            part.discard()
        spool.parts.clear()
    return ids
