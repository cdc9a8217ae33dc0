"""Every finished reply made durable the moment it arrives: an append-only journal beside the store.

DuckDB admits one process at a time, so a cohort holds the file only for short group commits (about
once a second) and a report server can read between them. What finished since the last commit used
to live only in memory: a SIGKILL lost it, and the resume paid for it again. Now each finished
judgment is first appended to `<db>.journal/<run>-<n>.jsonl` and fsync'd (appends that arrive
together share one fsync); a group commit folds the journal into DuckDB and then deletes the segment.

A segment is held with an exclusive flock by the process writing it, so the next run (the one
that finds it) can tell an orphan (its writer died: the lock is gone) from a live run's journal.
Replaying skips a torn last line (the kill came mid-write) and judgments already in DuckDB (the
kill came between the commit and the delete), so nothing is lost and nothing is inserted twice.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from evaluator.models import Judgment, Transcript
from evaluator.rubrics import Rubric
from evaluator.store.db import Store, StoreError, StoreFull, no_space_message
from evaluator.store.owners import process_alive

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the process id in the name tells a live journal
    fcntl = None  # type: ignore[assignment]


def try_lock(handle: IO[bytes]) -> bool:
    """Take a spool or journal file's lock without waiting; False if a live process holds it (the
    journal, the provider batch spool and downloads all mark "in use by a live run" this way)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _orphan(path: Path, handle: IO[bytes]) -> bool:
    """Whether a segment's writer is gone: its lock is free (and, where there is no flock, the
    process id in its name is not running: `<run>-<pid>-<n>.jsonl`)."""
    if not try_lock(handle):
        return False
    if fcntl is not None:  # a free lock proves it
        return True
    parts = path.stem.rsplit("-", 2)
    pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0
    return pid != os.getpid() and (pid == 0 or not process_alive(pid))


@dataclass
class Entry:
    """One finished judgment and the rows that point at it (its item and identical copies)."""

    run_id: str
    judgment_id: str
    judgment: Judgment
    transcript: Transcript
    rubric: Rubric
    items: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)

    def to_line(self) -> bytes:
        """One JSON line. The models are written by pydantic's own serialiser (several times cheaper
        than model_dump + json.dumps; every reply pays it on the event loop), the rubric once per run."""
        rows = json.dumps({"run_id": self.run_id, "judgment_id": self.judgment_id, "items": self.items,
                           "members": self.members}, ensure_ascii=False, default=str)
        models = (f',"judgment":{self.judgment.model_dump_json()},"transcript":{self.transcript.model_dump_json()}'
                  f',"rubric":{_rubric_json(self.rubric)}}}\n')
        return (rows[:-1] + models).encode("utf-8")

    @classmethod
    def from_line(cls, line: bytes) -> Entry:
        r = json.loads(line)
        return cls(r["run_id"], r["judgment_id"], Judgment.model_validate(r["judgment"]),
                   Transcript.model_validate(r["transcript"]), Rubric.model_validate(r["rubric"]),
                   r.get("items") or [], r.get("members") or [])


_RUBRICS: dict[str, str] = {}  # version (the content hash of what is dumped) -> JSON: a cohort has one or a few


def _rubric_json(rubric: Rubric) -> str:
    text = _RUBRICS.get(rubric.version)
    if text is None:
        if len(_RUBRICS) >= 64:  # a long-lived process that edits rubrics: start over, never grow
            _RUBRICS.clear()
        text = _RUBRICS[rubric.version] = rubric.model_dump_json()
    return text


class JournalError(StoreError):
    """The journal cannot be written; `written`: how many of the records given were kept."""

    written = 0


class JournalFull(JournalError, StoreFull):
    """The journal's drive is full."""


class Segment:
    """One journal file, open and flock'd by the process that writes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] = open(path, "ab")  # noqa: SIM115 - kept open (and locked) until discarded
        try_lock(self.handle)
        self.records = 0

    def write(self, lines: list[bytes]) -> int:
        """Append records and fsync once. On a failure, the records that fit are kept (and synced),
        the one cut short is cut back off (no half line before the next), and the error says how many
        got in (`JournalFull.written`)."""
        good = self.handle.tell()
        written = 0
        try:
            for line in lines:
                self.handle.write(line)
                self.handle.flush()
                good = self.handle.tell()
                written += 1
            os.fsync(self.handle.fileno())
        except OSError as e:
            try:
                self.handle.truncate(good)
                self.handle.seek(good)
                os.fsync(self.handle.fileno())
            except (OSError, ValueError):
                pass
            self.records += written
            full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            error = (JournalFull(no_space_message(self.path, "keeping finished judgments", len(lines[written])))
                     if full else JournalError(f"cannot write the journal {self.path}: {e.strerror}"))
            error.written = written
            raise error from None
        self.records += written
        return written

    def discard(self) -> None:
        """Its records are committed to DuckDB: delete it (then let go of the lock)."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self.handle.close()


class Journal:
    """A run's append-only journal beside the store: finished work survives a crash before it is committed."""

    def __init__(self, db_path: Path, run_id: str) -> None:
        self.dir = Path(f"{db_path}.journal")
        self.run_id = run_id
        self._seq = 0
        self.current: Segment | None = None

    def _segment(self) -> Segment:
        if self.current is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            self.current = Segment(self.dir / f"{self.run_id}-{os.getpid()}-{self._seq:06d}.jsonl")
        return self.current

    def tidy(self) -> None:
        """The run is over and its journal folded in: remove the (empty) folder."""
        try:
            self.dir.rmdir()
        except OSError:  # not empty (another run's journal, or records kept for lack of space) or gone
            pass

    def write(self, lines: list[bytes]) -> int:
        """Append records with one fsync (called in a thread: an fsync must not stall the loop)."""
        return self._segment().write(lines)

    def rotate(self) -> Segment | None:
        """Close off the current segment for a commit; later records go to a new one."""
        segment, self.current = self.current, None
        if segment is not None and not segment.records:
            segment.discard()
            return None
        return segment


def replay_orphans(db_path: Path, store: Store) -> int:
    """Fold the journals of runs whose process died into the store (in the writer's session, before
    anything else). Returns how many judgments were added."""
    folder = Path(f"{db_path}.journal")
    if not folder.is_dir():
        return 0
    added = 0
    for path in sorted(folder.glob("*.jsonl")):
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except OSError:
            continue
        with handle:
            if not _orphan(path, handle):  # a live run's journal (this process's or another's): not ours
                continue
            if not path.exists():  # its writer committed and deleted it while we waited for the lock
                continue
            entries = read_entries(handle.read())
            added += fold(store, entries)
            path.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass
    return added


def read_entries(data: bytes) -> list[Entry]:
    """Every whole record; a torn line (a kill mid-write) or a damaged one is skipped."""
    out = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(Entry.from_line(line))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def fold(store: Store, entries: list[Entry]) -> int:
    """Write journal entries into DuckDB, skipping any judgment already stored; one transaction per run."""
    stored = store.stored_judgment_ids([e.judgment_id for e in entries])
    by_run: dict[str, list[Entry]] = {}
    for e in entries:
        if e.judgment_id not in stored:
            stored.add(e.judgment_id)
            by_run.setdefault(e.run_id, []).append(e)
    for run_id, group in by_run.items():
        store.save_batch(run_id, [(e.judgment, e.transcript, e.rubric) for e in group],
                         [i for e in group for i in e.items], _unique_members(group),
                         ids=[e.judgment_id for e in group])
    return sum(len(g) for g in by_run.values())


def _unique_members(entries: list[Entry]) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, Any], dict[str, Any]] = {}
    for e in entries:
        for m in e.members:
            seen[(m["cohort"], m["transcript_hash"])] = m
    return list(seen.values())


class JournalWriter:
    """Appends from many workers, one fsync per group: `append` returns once its entry is on disk,
    and its `on_durable` callback runs right after the fsync, under `io` (the lock a commit takes to
    rotate the segment), so an entry is pending in memory exactly when its segment is the current
    one: a commit never deletes a segment holding an entry it did not write."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.io = asyncio.Lock()
        self._queue: list[tuple[Entry, Callable[[], None], asyncio.Future[None]]] = []
        self._syncing: asyncio.Task[None] | None = None
        self.kept = 0  # entries on disk so far

    async def append(self, entry: Entry, on_durable: Callable[[], None]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, on_durable, future))
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(self._sync())
        await asyncio.shield(future)

    async def drain(self) -> None:
        """Wait for the appends under way (the last commit of a run must include them)."""
        while self._syncing is not None and not self._syncing.done():
            await asyncio.shield(self._syncing)

    async def _sync(self) -> None:
        while self._queue:
            async with self.io:
                batch, self._queue = self._queue, []
                error: Exception | None = None
                kept = len(batch)
                try:
                    await asyncio.to_thread(self.journal.write, [e.to_line() for e, _, _ in batch])
                except JournalError as e:  # a full drive: the rest kept in memory for the commit, waiters told
                    error, kept = e, e.written
                self.kept += kept
                for n, (_, on_durable, future) in enumerate(batch):
                    on_durable()
                    if not future.done():
                        future.set_result(None) if n < kept else future.set_exception(error or OSError())
