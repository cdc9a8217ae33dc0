"""The cohort's producer: reads each item off the loop (batch/prepare.py), looks items up a chunk at
a time (the store's cache, the interrupted runs of this same command, identical copies in this
cohort), records what is reused and queues the rest for the workers. The queue is bounded, so memory
stays flat however large the cohort. A file unchanged since a run read it is known from the read
memo (batch/readmemo.py) without reading it; one the lookup does not find is read before it is queued.

A stored judgment is reused only if it was made on the view the transcript gives now (store/texts.py):
the memo knows the view of a file it has seen; any other item the store has a judgment for is parsed
here (on the reader) to know it. One made on another view is judged again, and counted (`reread`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from functools import partial

from evaluator.batch.inputs import BatchItem, readable_items
from evaluator.batch.prepare import Prepared, Reader, prepare, settle_view
from evaluator.batch.readmemo import ReadMemo
from evaluator.batch.records import Recorder
from evaluator.batch.types import CohortRequest
from evaluator.errors import EvaluatorError
from evaluator.models import JudgeInfo
from evaluator.rubrics import Rubric, select_rubric_with_warnings
from evaluator.store.texts import Candidate, pick

FIRST_CHUNK = 16  # the first lookup is small, so the first calls start at once; the chunk doubles ...
CHUNK = 256  # ... up to this once the run is under way (one DB session per lookup) ...
MAX_CHUNK = 1024  # ... and on up to this while every item of a chunk was found: a fully cached re-run
# of 2,000 opens the store a few times, not once per 256 items
INTERRUPTED = "not judged: the run was interrupted"
Hits = dict[str, list[Candidate]]  # cache key -> stored judgments, one per view, newest first (Store.cached_views)


class Producer:
    """Feeds the workers' queue: reads items off the loop, skips what the store already has, stops when told."""

    def __init__(self, request: CohortRequest, judge: JudgeInfo, rec: Recorder,
                 lookup: Callable[[list[str]], Awaitable[tuple[Hits, Hits]]],
                 stopped: Callable[[], str | None], notify: Callable[[], None],
                 on_skip: Callable[[str], None] | None = None) -> None:
        self.req, self.judge, self.rec = request, judge, rec
        self.lookup, self.stopped, self.notify = lookup, stopped, notify
        # one pass, shared with list_unjudged; an unreadable input is refused now, before the run records anything
        self.items: Iterator[BatchItem] = readable_items(request.path, on_skip)
        self.reader = Reader()
        self.memo = ReadMemo(request.path)
        self.chunk: list[Prepared] = []  # read, not yet looked up (an interrupt lists it)
        self.chunk_size = FIRST_CHUNK
        self._rubrics: dict[str | None, tuple[Rubric, list[str]]] = {}

    def _rubric_for(self, exercise: str | None) -> tuple[Rubric, list[str]]:
        key = None if self.req.rubric else exercise
        if key not in self._rubrics:
            self._rubrics[key] = select_rubric_with_warnings(self.req.rubric, exercise)
        return self._rubrics[key]

    async def run(self, queue: asyncio.Queue, n_workers: int) -> None:
        for item in self.items:
            self.rec.tally.counters.total += 1
            why = self.stopped()
            if why:  # the run is stopping: list what is left (cheap, nothing is read) so the
                self.rec.skip(item, None, why)  # summary says what a re-run will judge
                continue
            try:
                self.chunk.append(await self.reader.run(
                    partial(prepare, item, self._rubric_for, self.judge, self.memo), item.path))
            except EvaluatorError as e:
                self.rec.fail(item, str(e))
            except Exception as e:  # isolation: one file's surprise never stops the cohort
                self.rec.fail(item, f"cannot read it: {type(e).__name__}: {e}")
            if len(self.chunk) >= self.chunk_size:
                await self._look_up(queue)
        if self.chunk:  # already read: reuse still counts, the rest reach a worker (which skips them on abort)
            await self._look_up(queue)
        for _ in range(n_workers):
            await queue.put(None)

    async def finish(self, keep: bool) -> None:
        """After the workers (they keep the views of what they judged): save the read memo unless the
        run was cut short (it keeps the memo it had), then let the reader go."""
        if keep:
            try:
                await self.reader.run(self.memo.save, self.memo.path)
            except EvaluatorError:  # too slow a drive: the next run reads the files again
                pass
        self.close()

    def close(self) -> None:
        self.memo.close()
        self.reader.close()

    async def _look_up(self, queue: asyncio.Queue) -> None:
        cached, resumed = await self.lookup([p.key for p in self.chunk])
        await self._settle_views([p for p in self.chunk if p.key in cached or p.key in resumed])
        hits: dict[str, tuple[str, str]] = {}
        for p in self.chunk:
            if p.view is None:  # failed to read or parse (recorded): not looked up
                continue
            hit, refused = pick(cached.get(p.key, []), p.view)
            if hit is None:
                hit, again = pick(resumed.get(p.key, []), p.view)
                refused = refused or again
            if hit:
                hits[p.item.key] = hit
            elif refused:
                p.refused = True
                self.rec.tally.counters.reread += not p.unread  # counted once it is read (_read_in_full)
        all_found = len(hits) == len(self.chunk)
        self.chunk_size = min(self.chunk_size * 2, MAX_CHUNK if all_found else CHUNK)
        dedup = self.rec.dedup
        unread = []
        for p in self.chunk:
            if p.item.key in self.rec.accounted:  # failed while its view was settled
                continue
            hit = hits.get(p.item.key)
            if hit:
                self.rec.reuse(p, *hit)
                continue
            if p.unread:  # known from the memo, not found: to be read, then judged
                unread.append(p)
                continue
            verdict = dedup.classify(p.key, p.item.key)
            if verdict == "finished":  # the original already finished in this run
                self.rec.reuse(p, *dedup.finished[p.key], error=f"same content as {dedup.original[p.key]}")
            elif verdict == "wait":  # same content twice in this cohort: judged once, shared
                dedup.wait(p.key, (p.item, p.source))
            else:
                await queue.put(p)
        self.notify()
        self.chunk[:] = unread  # an interrupt while they are read lists them
        if unread:
            await self._read_in_full(queue)
        self.chunk.clear()

    async def _settle_views(self, found: list[Prepared]) -> None:
        """The views of the items the store has a judgment for, where the memo did not give them: an
        item known from the memo is read first (its Source has no text), then each is parsed."""
        for p in found:
            if p.view is not None:
                continue
            try:
                if p.unread:
                    await self._reread(p)
                await self.reader.run(partial(settle_view, p, self.memo), p.item.path)
            except EvaluatorError as e:
                self.rec.fail(p.item, str(e), p.source, p.key)
            except Exception as e:  # isolation: one file's surprise never stops the cohort
                self.rec.fail(p.item, f"cannot read it: {type(e).__name__}: {e}", p.source, p.key)

    async def _reread(self, p: Prepared) -> None:
        """Read an item the memo knew (in place: the memo's entry is still its, the file unchanged)."""
        fresh = await self.reader.run(partial(prepare, p.item, self._rubric_for, self.judge), p.item.path)
        p.source, p.rubric, p.key, p.file_metadata, p.unread = (fresh.source, fresh.rubric, fresh.key,
                                                                fresh.file_metadata, False)

    async def _read_in_full(self, queue: asyncio.Queue) -> None:
        """The items the memo knew but the store does not have (judged elsewhere since, or --force):
        read now, as any new file, and looked up again (with their text, the same key)."""
        read: list[Prepared] = []
        for p in list(self.chunk):
            try:
                await self._reread(p)
                read.append(p)
            except EvaluatorError as e:
                self.rec.fail(p.item, str(e))
            except Exception as e:  # isolation: one file's surprise never stops the cohort
                self.rec.fail(p.item, f"cannot read it: {type(e).__name__}: {e}")
        self.chunk[:] = read
        if read:
            await self._look_up(queue)

    def list_unjudged(self, queue: asyncio.Queue) -> None:
        """After an interrupt: what was read but not started, and what was never read (listing the
        rest is cheap: nothing is opened), recorded as skipped, so `total` is the whole cohort."""
        waiting = list(self.chunk)
        while not queue.empty():
            p = queue.get_nowait()
            if p is not None:
                waiting.append(p)
        for p in waiting:
            if p.item.key not in self.rec.accounted:
                self.rec.skip_copies(p, INTERRUPTED)
        self.chunk.clear()
        for item in self.items:
            self.rec.tally.counters.total += 1
            self.rec.skip(item, None, INTERRUPTED)
