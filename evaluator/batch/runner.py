"""Score a cohort: a bounded async worker pool over a stream of transcripts, with a content-addressed
cache, shared rate limits, a cost budget, and writes that survive any kill.

Shape of a run (one process, the only DuckDB writer):
    producer: read + hash items off the loop (batch/prepare.py; files unchanged since a run read
              them are known from batch/readmemo.py) -> one cache lookup per chunk ->
              reused items recorded, the rest queued (bounded queue: memory stays flat)
    workers (--concurrency): parse, check the budget (batch/budget.py), judge, journal the reply
              (fsync'd at once: batch/journal.py), hand it to the commit buffer (batch/commits.py)
    writer:   every ~second, one DuckDB transaction with everything finished, then the journal goes
The connection is kept across commits that follow closely, but let go every couple of seconds and
whenever there is nothing to write, so `evaluate report --serve` can read between (DuckDB admits one
process at a time: batch/session.py). A SIGKILL loses only the judgments in flight: the
next run folds the journal into the store first, and finds the rest in the cache; running the same
command after an interruption also reuses whatever the interrupted run judged (--force included).
"""

from __future__ import annotations

import asyncio
import gc
import shlex
import time
import uuid
from collections.abc import Callable
from typing import Any

from evaluator.batch.arenas import limit_arenas
from evaluator.batch.budget import Budget, check_price
from evaluator.batch.commits import Batch, CommitBuffer
from evaluator.batch.dedup import Dedup
from evaluator.batch.health import JudgeHealth
from evaluator.batch.inputs import key_extra
from evaluator.batch.journal import Journal, JournalWriter, replay_orphans
from evaluator.batch.prepare import Prepared, parse_prepared
from evaluator.batch.producer import INTERRUPTED, Hits, Producer
from evaluator.batch.records import Recorder
from evaluator.batch.session import StoreLink, on_sigterm
from evaluator.batch.types import (
    CohortRequest,
    CohortSummary,
    Counters,
    request_key,
    validate,
)
from evaluator.errors import EvaluatorError, JudgeUnavailable, StoreError
from evaluator.judge.base import Judge
from evaluator.judge.ensemble import EnsembleJudge
from evaluator.pipeline import BASELINE_NOTICE, build_judge, judge_transcript, stored_members
from evaluator.rubrics import select_rubric
from evaluator.store.db import Store, StoreFull, default_db_path
from evaluator.store.owners import other_live_runs

__all__ = ["CohortRequest", "CohortRunner", "CohortSummary", "Counters", "score_cohort", "validate"]


class CohortRunner:
    """One cohort run: wires the producer, the workers, the budget, the judge's health and the
    commit buffer together; each part keeps its own state."""

    def __init__(self, request: CohortRequest, progress: Callable[[Counters], None] | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        validate(request)
        from evaluator.judge.ratelimit import RateLimiter

        self.req, self.progress, self.notice = request, progress, notice
        # always shared, even without rpm/tpm: a Retry-After from the provider pauses every worker
        self.judge: Judge = build_judge(request.judge, RateLimiter(request.rpm, request.tpm))
        self.info = self.judge.info()
        if self.info.kind == "baseline" and notice:  # said as `evaluate FILE` says it: once, up front
            notice(BASELINE_NOTICE)
        self.composite = isinstance(self.judge, EnsembleJudge)  # samples or a jury: members may be stored
        self.run_id = str(uuid.uuid4())
        self.request_key = request_key(request, self.info.model_dump(mode="json"))
        self.link = StoreLink(request.db or default_db_path(), notice)
        self.commits = CommitBuffer(JournalWriter(Journal(self.link.path, self.run_id)))
        self.dedup = Dedup(request.force)
        self.rec = Recorder(request.cohort, self.commits, self.dedup)
        self.health = JudgeHealth()
        self.budget = Budget(request.max_cost) if request.max_cost is not None else None
        self.abort: EvaluatorError | None = None  # judge unavailable, or no space left for the store
        self.run_started = False
        self.resume_from: list[str] = []  # unfinished runs of this same command: their judgments are reused
        self.first: asyncio.Task | None = None  # the run's first session, started before any file is read
        self.producer = Producer(request, self.info, self.rec, self._lookup, self._stopping, self._notify,
                                 notice)
        self.rubric_hint = select_rubric(request.rubric, None) if request.rubric else None
        if self.budget is not None and self.info.kind == "llm":
            check_price(request.judge)

    # -- recording -----------------------------------------------------------------------------
    def _notify(self) -> None:
        if self.progress:
            self.progress(self.rec.tally.counters)

    def _abort_note(self) -> str:
        return f"not judged: the run was aborted ({self.abort})"

    def _command(self) -> str:
        """The command that resumes this run (the judge options are not repeated: they are long)."""
        r = self.req
        args = ["evaluate", "cohort", str(r.path), "--cohort", r.cohort] + (["--db", str(r.db)] if r.db else [])
        return shlex.join(args + (["--force"] if r.force else []))

    def _stopping(self) -> str | None:
        return self._abort_note() if self.abort else None

    async def _lookup(self, keys: list[str]) -> tuple[Hits, Hits]:
        """One session per chunk: the store's cache (not with --force), and what the interrupted runs
        of this same command judged (always: resuming never pays twice)."""

        def find(store: Store) -> tuple[Hits, Hits]:
            self._ensure_run(store)
            cached = {} if self.req.force else store.cached_views(keys)
            return cached, store.resumable(self.resume_from, keys)

        if self.first is not None:
            await self.first  # its failure (a locked or unreadable store) is the run's, said once
        result: tuple[Hits, Hits] = await self.link.run(find)
        return result

    # -- database sessions ---------------------------------------------------------------------
    def _ensure_run(self, store: Store) -> None:
        """The first session folds orphaned journals (a killed run's finished replies) into the store
        and writes the run row (one DB session fewer)."""
        if self.run_started:
            return
        replay_orphans(self.link.path, store)
        self.resume_from = store.unfinished_runs(self.request_key)
        store.start_run(command="cohort", judge_info=self.info, rubric=self.rubric_hint, cohort=self.req.cohort,
                        run_id=self.run_id, request_key=self.request_key)
        self.run_started = True
        others = other_live_runs(store.con, self.run_id)
        if others and self.notice:  # each run checks the store before judging: two at once may both pay
            who = ", ".join(f"cohort {o['cohort'] or '-'} (pid {o['pid']})" for o in others)
            self.notice(f"another run is in progress on this database ({who}): a transcript both "
                        "runs need may be judged by each; let it finish first to reuse its judgments")

    async def _commit(self, then: Callable[[Store], Any] | None = None) -> Any:
        """Group-commit what is pending (and run `then` in the same session). A failed write keeps
        everything (rows in memory, replies in the journal) for the next attempt; a full drive stops
        the run, since every further reply would have nowhere to go."""
        while (batch := await self.commits.take(last=then is not None)).partial:
            await self._write(batch)  # a backlog: bounded transactions back to back, `then` with the last
            if then is None and self.link.resting():  # the file was let go: readers' turn, the next tick goes on
                return None
        return await self._write(batch, then)

    async def _write(self, batch: Batch, then: Callable[[Store], Any] | None = None) -> Any:
        totals = self.rec.tally.totals()

        def session(store: Store) -> Any:
            self._ensure_run(store)
            if batch:
                batch.write(store, self.run_id, totals)
            return then(store) if then else None

        try:
            result = await self.link.run(session, rows=len(batch.entries))
        except StoreError as e:
            self.commits.undo(batch)
            if isinstance(e, StoreFull):
                self.abort = self.abort or e
            raise
        self.commits.committed(batch)
        return result

    async def _writer(self, stop: asyncio.Event) -> None:
        """Group commits every `flush_seconds` (a report sees judgments within about a second, and the
        last commit of the run stays small: it is what the run waits for at the end). Replies are
        durable in the journal as they arrive, so a commit can wait: a tick with nothing to write
        lets the file go, and one in the readers' turn (StoreLink.resting) is skipped. The run's
        last commit is _finish's."""
        tick = self.req.flush_seconds
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=tick)
                break
            except TimeoutError:
                pass
            if not self.commits:
                await self.link.release()
            elif not self.link.resting():
                try:
                    await self._commit()
                except StoreError:  # e.g. held by another process past the wait: the next tick retries
                    pass

    # -- producer and workers ------------------------------------------------------------------
    async def _work(self, queue: asyncio.Queue) -> None:
        while (p := await queue.get()) is not None:
            if self.abort:
                self.rec.skip_copies(p, self._abort_note())
                continue
            try:
                await self._judge_one(p)
            except asyncio.CancelledError:  # Ctrl-C while this one was being judged
                if p.item.key not in self.rec.accounted:
                    self.rec.skip_copies(p, INTERRUPTED)
                raise
            except JudgeUnavailable as e:
                self.rec.tally.counters.calls += e.requests
                self.abort = self.abort or e
                self.rec.skip_copies(p, self._abort_note())
            except StoreError as e:  # the journal cannot keep replies (a full drive): stop paying for more
                self.abort = self.abort or e
            except EvaluatorError as e:
                self.rec.fail(p.item, str(e), p.source, p.key)
            except Exception as e:  # isolation: one transcript's surprise never stops the cohort
                self.rec.fail(p.item, f"internal error: {type(e).__name__}: {e}", p.source, p.key)
            self._notify()

    async def _judge_one(self, p: Prepared) -> None:
        # CPU only (the file is read): no deadline. The parse also gives the view the read memo keeps
        transcript = await asyncio.to_thread(parse_prepared, p, self.producer.memo)
        worst = await self._reserve(p, transcript)
        if worst is None:
            return
        self.rec.tally.counters.in_flight += 1
        self._notify()
        try:
            extra = key_extra(p.item.overrides)
            reuse = None
            if self.composite and not self.req.force:  # raising --samples or adding a juror pays only for what is new
                judge = self.judge
                reuse, refused = await self.link.run(lambda s: stored_members(s, judge, transcript, p.rubric, extra))
                self.rec.tally.counters.reread += refused
            judgment = await judge_transcript(transcript, p.rubric, self.judge, extra, reuse=reuse)
            if self.budget:
                self.budget.spend(judgment.usage.cost_usd)  # spent before the reservation goes
        finally:
            self.rec.tally.counters.in_flight -= 1
            if self.budget and worst:
                await self.budget.release(worst)
        if p.file_metadata is not None:
            # overrides belong to this cohort's membership (stored with it), not to the transcript
            # row every cohort and report shares
            transcript.metadata = p.file_metadata
        entry = self.rec.judged(p, judgment, transcript, self.run_id)
        stop = self.health.judged(judgment)
        if stop:
            self.abort = self.abort or stop
        await self.commits.add_judgment(entry)  # durable (fsync'd) before this worker takes another

    async def _reserve(self, p: Prepared, transcript: Any) -> float | None:
        """Under --max-cost, reserve this judgment's worst case (None: it does not fit, skipped)."""
        if self.budget is None:
            return 0.0
        from evaluator.batch.estimate import estimate_judgment

        worst = estimate_judgment(transcript, p.rubric, self.req.judge)["worst_case_usd"] or 0.0
        if await self.budget.reserve(worst):
            return worst
        self.rec.skip_copies(p, self.budget.refusal(worst))
        self._notify()
        return None

    # -- the run -------------------------------------------------------------------------------
    async def run(self) -> CohortSummary:
        try:
            return await self._run()
        finally:
            await self.link.release()  # the file is free once the run returns, whatever ended it

    async def _run(self) -> CohortSummary:
        started = time.perf_counter()
        status, message = "completed", None
        stop_on_sigterm = on_sigterm(asyncio.current_task())  # `timeout`, `kill`, a CI job: like Ctrl-C
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.req.concurrency * 2)
        stop = asyncio.Event()
        # the first session (journals of killed runs folded in, the run row) while the first files are read
        first = self.first = asyncio.create_task(self.link.run(self._ensure_run))
        writer = asyncio.create_task(self._writer(stop))
        workers = [asyncio.create_task(self._work(queue)) for _ in range(self.req.concurrency)]
        try:
            await self.producer.run(queue, len(workers))
            await asyncio.gather(*workers)
            await self.producer.finish(keep=not self._stopping())
        except asyncio.CancelledError:  # Ctrl-C: keep everything finished so far, then report
            status = "interrupted"
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.producer.list_unjudged(queue)
        finally:
            self.producer.close()
            stop_on_sigterm()
            stop.set()
            await asyncio.gather(writer, first, return_exceptions=True)
        self.rec.skip_leftovers()
        c = self.rec.tally.counters
        if status == "interrupted":
            message = (f"interrupted: {c.done - c.skipped} of {c.total} transcript(s) done and stored; to judge "
                       f"the other {c.skipped}, run the same command again ({self._command()}, with the same "
                       "judge options): it reuses what this run judged and pays for none of it again "
                       "(--force included)")
        if self.abort:
            status, message = "aborted", str(self.abort)
        if self.budget and self.budget.exhausted:
            message = (message + "; " if message else "") + self.budget.message(len(self.rec.tally.skipped))
        return await self._finish(status, message, started)

    async def _finish(self, status: str, message: str | None, started: float) -> CohortSummary:
        summary = self.rec.tally.summary(cohort=self.req.cohort, run_id=self.run_id, status=status, message=message,
                                         judge=self.info.model_dump(), db=str(self.link.path))
        run_id, tally = self.run_id, self.rec.tally

        def finish(store: Store) -> dict:
            store.finish_run(run_id, status)
            return tally.run_dimensions(store.con, run_id)

        try:
            summary.dimensions = await self._commit(then=finish)
        except StoreFull as e:  # exit 2; what was committed stays, the journal keeps what it could
            left = self.commits.pending
            lost = sum(e.judgment_id in self.commits.unjournaled for e in left.entries)
            kept = len(left.entries) - lost
            raise StoreFull(
                f"{e}. The run stopped; what was stored before is intact. {kept} finished judgment(s) not yet in "
                f"the store are kept in {self.link.path}.journal: the next run stores them once there is space "
                f"(run the same command again){f'; {lost} could not be kept anywhere' if lost else ''}") from None
        self.commits.writer.journal.tidy()
        if isinstance(self.abort, StoreError):  # stored now, but the run stopped early: exit 2 with the cause
            raise type(self.abort)(f"{self.abort}. The run stopped early; what finished is stored: run the same "
                                   "command again once there is space to judge the rest")
        summary.wall_seconds = round(time.perf_counter() - started, 3)
        return summary


def score_cohort(request: CohortRequest, progress: Callable[[Counters], None] | None = None,
                 notice: Callable[[str], None] | None = None) -> CohortSummary:
    """Score (or, with dry_run, estimate) a cohort. The one library call behind `evaluate cohort`.
    `progress` gets the live counts; `notice` gets one-line messages worth showing at once (e.g. the
    database is held by another process and the run is waiting for it)."""
    validate(request)
    if request.dry_run:
        from evaluator.batch.estimate import estimate_cohort

        return estimate_cohort(request)
    # What exists before the run (modules, the judge, rubrics) lives as long as the run: frozen out
    # of the cycle collector's full passes, which re-scan every tracked object each time (~0.3 s with
    # litellm loaded, every call in flight stalled meanwhile); a run's own garbage is collected as usual.
    gc.freeze()
    limit_arenas()  # before the run's threads: freed memory is reused, not held per thread (batch/arenas.py)
    try:
        return asyncio.run(CohortRunner(request, progress, notice).run())
    finally:
        gc.unfreeze()
