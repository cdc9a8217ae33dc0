"""How each cohort item's outcome is recorded: its run_items row and cohort membership (through the
commit buffer), its place in the summary (the tally), and the identical copies that share its fate
(the de-duplication). One place, so an item is never counted without a row, nor twice."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from evaluator.batch.commits import CommitBuffer
from evaluator.batch.dedup import Dedup
from evaluator.batch.inputs import BatchItem
from evaluator.batch.journal import Entry
from evaluator.batch.summary import Tally

if TYPE_CHECKING:
    from evaluator.batch.prepare import Prepared
    from evaluator.ingest import Source
    from evaluator.models import Judgment, Transcript


class Recorder:
    """The one place a cohort item's outcome is written down, so the run's rows and summary never disagree."""

    def __init__(self, cohort: str, commits: CommitBuffer, dedup: Dedup) -> None:
        self.cohort = cohort
        self.commits = commits
        self.dedup = dedup
        self.tally = Tally()
        self.accounted: set[str] = set()  # items with a run_items row (or one pending)

    def rows(self, item: BatchItem, status: str, source: Source | None, judgment_id: str | None,
             error: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The item's run_items row, and its cohort membership when the file was read."""
        self.accounted.add(item.key)
        row = {"item": item.key, "source": str(item.path), "status": status, "error": error,
               "transcript_hash": source.content_hash if source else None, "judgment_id": judgment_id}
        if source is None:
            return row, None
        meta = source.metadata
        return row, {"cohort": self.cohort, "transcript_hash": source.content_hash, "source": str(item.path),
                     "candidate": _str(meta.get("candidate")), "exercise": _str(meta.get("exercise")),
                     "session_date": _str(meta.get("date"))}

    def record(self, item: BatchItem, status: str, source: Source | None = None,
               judgment_id: str | None = None, error: str | None = None) -> None:
        self.commits.add_row(*self.rows(item, status, source, judgment_id, error))

    def fail(self, item: BatchItem, error: str, source: Source | None = None, key: str | None = None) -> None:
        """Failed, with the reason; so are the identical copies waiting on it."""
        for it, src in [(item, source), *self.dedup.take(key)]:
            self.tally.failed(it.key, str(it.path), error)
            self.record(it, "failed", source=src, error=error)

    def skip(self, item: BatchItem, source: Source | None, why: str) -> None:
        """Not judged by this run (budget reached, judge unavailable, stopped first): recorded with
        the reason, so the summary and the store say what a re-run will still judge."""
        self.tally.skip(item.key)
        self.record(item, "skipped", source=source, error=why)

    def skip_copies(self, p: Prepared, why: str) -> None:
        """Skip a prepared item and the identical copies waiting on its result."""
        for it, src in [(p.item, p.source), *self.dedup.take(p.key)]:
            self.skip(it, src, why)

    def reuse(self, p: Prepared, judgment_id: str, status: str, error: str | None = None) -> None:
        """A judgment taken from the store, an interrupted run, or an identical copy (`error` says which)."""
        self.tally.reused(status)
        self.record(p.item, status if error or status != "scored" else "cached", p.source,
                    judgment_id=judgment_id, error=error)

    def judged(self, p: Prepared, judgment: Judgment, transcript: Transcript, run_id: str) -> Entry:
        """A new judgment: counted, and its journal entry with the rows of the item and of the
        identical copies that waited for it (they share it)."""
        self.tally.judged(p.item.key, str(p.item.path), judgment)
        entry = Entry(run_id, str(uuid.uuid4()), judgment, transcript, p.rubric)
        copies = self.dedup.finish(p.key, entry.judgment_id, judgment.status)
        for it, src, error in [(p.item, p.source, None), *((d, s, f"same content as {p.item.key}") for d, s in copies)]:
            if error:
                self.tally.reused(judgment.status, judgment, it.key)
            row, member = self.rows(it, judgment.status, src, entry.judgment_id, error)
            entry.items.append(row)
            if member:
                entry.members.append(member)
        return entry

    def skip_leftovers(self) -> None:
        for it, src in self.dedup.leftovers():  # originals that never finished (abort, interrupt)
            self.skip(it, src, "not judged: the run stopped before its identical original")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
