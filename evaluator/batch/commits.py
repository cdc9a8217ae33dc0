"""The cohort's commit buffer: what finished since the last group commit, written to DuckDB in one
transaction, with every paid reply journaled first (batch/journal.py) so a kill loses none of them."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from evaluator.batch.journal import Entry, JournalWriter, Segment, fold
from evaluator.errors import StoreError
from evaluator.store.db import MEMBER_FIELDS, Store


@dataclass
class Batch:
    """What the next group commit writes: judgments with their journal entries, and run items."""

    entries: list[Entry] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    members: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    partial: bool = False  # more judgments were pending than one batch takes (CommitBuffer.take)

    def __bool__(self) -> bool:
        return bool(self.entries or self.items)

    def write(self, store: Store, run_id: str, totals: dict[str, Any]) -> None:
        """One transaction: the judgments (unless a replay stored them already), items, members, totals."""
        stored = store.stored_judgment_ids([e.judgment_id for e in self.entries])
        fresh = [e for e in self.entries if e.judgment_id not in stored]
        items = [i for e in self.entries for i in e.items] + self.items
        members = {**{(m["cohort"], m["transcript_hash"]): m for e in self.entries for m in e.members},
                   **self.members}
        store.save_batch(run_id, [(e.judgment, e.transcript, e.rubric) for e in fresh], items,
                         changed_members(store, list(members.values())), totals, ids=[e.judgment_id for e in fresh])


MAX_COMMIT_JUDGMENTS = 200  # per transaction; see CommitBuffer.take
# Finished judgments waiting in memory beyond which a worker waits for a commit before taking more
# work (each holds its transcript, prompt and reply): when commits fall behind, on a busy machine or
# a large store, the backlog and the run's peak memory grew without bound. The wait is bounded too:
# a store held by another process must not stall the run (its replies are in the journal anyway).
# One commit's worth: while one batch is written the next fills, which keeps the writer busy. Twice
# that kept a batch collect's judging pass (its replies are judged at once, so commits are all it
# waits for) at 600 judgments in memory against ~450 at 1,000 transcripts: 387 MB at 10,000 against
# 363 at 1,000; with one commit's worth 363 against 343, and collecting no slower (66-67 s at 10,000).
BACKLOG_JUDGMENTS = MAX_COMMIT_JUDGMENTS
BACKLOG_WAIT_SECONDS = 10.0


def changed_members(store: Store, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The membership rows that change something. Writing one is an upsert that also drops the
    file's rows of other contents (an edited file replaces its old version); a row identical to the
    only stored row of its file, and the only row of that file in this batch, changes nothing, and
    rewriting every member was most of a cached re-run's commit."""
    by_cohort: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in members:
        by_cohort[m["cohort"]].append(m)
    changed = []
    for cohort, rows in by_cohort.items():
        stored: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        for row in store.cohort_member_rows(cohort, [m["transcript_hash"] for m in rows],
                                            [m["source"] for m in rows if m.get("source") is not None]):
            stored[row[1]].append(tuple(row))
        in_batch = Counter(m.get("source") for m in rows)
        changed += [m for m in rows if in_batch[m.get("source")] > 1 or m.get("source") is None
                    or stored.get(m["source"]) != [tuple(m.get(f) for f in MEMBER_FIELDS)]]
    return changed


class CommitBuffer:
    """Finished work waiting for the next group commit; each reply is journaled first, so a kill
    between commits loses nothing that was paid for."""

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer
        self.pending = Batch()
        self.unjournaled: set[str] = set()  # judgment ids pending in memory only (the journal could not keep them)
        self.room = asyncio.Event()  # set while the backlog is under BACKLOG_JUDGMENTS
        self.room.set()

    async def add_judgment(self, entry: Entry) -> None:
        """Returns once the entry is on disk in the journal (a full drive raises StoreFull: the entry
        is still kept in memory for the commit)."""
        try:
            await self.writer.append(entry, lambda: self.pending.entries.append(entry))
        except StoreError:
            self.unjournaled.add(entry.judgment_id)
            raise
        if len(self.pending.entries) >= BACKLOG_JUDGMENTS:
            self.room.clear()
            try:  # the entry is durable already: waiting here only keeps the next one from piling up
                await asyncio.wait_for(self.room.wait(), BACKLOG_WAIT_SECONDS)
            except TimeoutError:
                pass

    def add_row(self, item: dict[str, Any], member: dict[str, Any] | None) -> None:
        """An item status that cost nothing (cached, failed, skipped): memory only until the commit."""
        self.pending.items.append(item)
        if member is not None:
            self.pending.members[(member["cohort"], member["transcript_hash"])] = member

    def __bool__(self) -> bool:
        return bool(self.pending)

    async def take(self, last: bool = False, cap: int = MAX_COMMIT_JUDGMENTS) -> Batch:
        """Detach what is pending, with the journal segment holding its entries (the `last` one of a
        run waits for the appends under way first).

        At most `cap` judgments go in one batch: a commit's memory is its batch's (the judgments,
        their exchanges, DuckDB's buffers for them), and a stall (a slow drive, the file held by a
        reader) can pile up any number of replies, so without a cap the run's peak grew with how
        much piled up. The rest stays pending for the next commit, right after (the batch is `partial`).
        A partial batch leaves the journal segment as it is: the segment goes only with the batch
        that takes the last of its entries, so a kill in between replays the committed ones too,
        which the fold skips (stored already)."""
        if last:
            await self.writer.drain()
        async with self.writer.io:
            if len(self.pending.entries) > cap:
                batch = Batch(entries=self.pending.entries[:cap], partial=True)
                del self.pending.entries[:cap]
            else:
                batch, self.pending = self.pending, Batch()
                segment = self.writer.journal.rotate()
                if segment is not None:
                    batch.segments.append(segment)
            return batch

    def committed(self, batch: Batch) -> None:
        self.unjournaled.difference_update(e.judgment_id for e in batch.entries)
        if len(self.pending.entries) < BACKLOG_JUDGMENTS:  # written and let go: room for more
            self.room.set()
        for segment in batch.segments:
            segment.discard()

    def undo(self, batch: Batch) -> None:
        """A failed commit: put it back in front, journal segments included (nothing is lost)."""
        p = self.pending
        p.entries[:0] = batch.entries
        p.items[:0] = batch.items
        p.members = {**batch.members, **p.members}
        p.segments[:0] = batch.segments


__all__ = ["Batch", "CommitBuffer", "fold"]
