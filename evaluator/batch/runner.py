"""Score a cohort: a bounded async worker pool over a stream of transcripts, with a content-addressed
cache, shared rate limits, a cost budget, and group-committed writes that survive any kill.

Shape of a run (one process, the only DuckDB writer):
    producer: read + hash items in chunks -> one cache lookup per chunk -> cached items recorded,
              the rest queued (bounded queue: memory stays flat however large the cohort)
    workers (--concurrency): parse, check the budget, judge, hand the result to the writer
    writer:   every ~second, one transaction with every finished judgment and item status
The database is opened per session and closed again, so `evaluate report --serve` can read between
sessions (DuckDB admits one process at a time). A SIGKILL loses the judgments in flight and those
finished since the last group commit (about a second's worth); re-running the same command finds the
committed ones in the cache and judges the rest, so no stored judgment is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from evaluator.batch.inputs import BatchItem, iter_items, key_extra
from evaluator.batch.summary import dimension_summary
from evaluator.errors import BadInput, EvaluatorError, JudgeUnavailable, StoreError
from evaluator.ingest import Source, parse_source, read_source
from evaluator.judge.base import Judge
from evaluator.models import Judgment, Transcript
from evaluator.pipeline import JudgeOptions, build_judge, cache_key, judge_transcript
from evaluator.rubrics import Rubric, select_rubric, select_rubric_with_warnings
from evaluator.store.db import Store, default_db_path, open_store

CHUNK = 256
DB_WAIT_SECONDS = 30.0
INTERRUPTED = "not judged: the run was interrupted"


@dataclass
class CohortRequest:
    path: Path
    cohort: str
    judge: JudgeOptions = field(default_factory=JudgeOptions)
    rubric: str | None = None
    db: Path | None = None
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    force: bool = False
    dry_run: bool = False
    max_cost: float | None = None
    flush_seconds: float = 1.0


class Counters(BaseModel):
    """Live and final counts. `scored` includes `cached` (reused judgments that were fully scored)."""

    total: int = 0
    scored: int = 0
    partial: int = 0
    unscored: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0

    @property
    def done(self) -> int:
        return self.scored + self.partial + self.unscored + self.failed + self.skipped


class CohortSummary(Counters):
    cohort: str
    run_id: str | None = None
    status: str = "completed"  # interrupted, aborted; "estimated" for a dry run
    message: str | None = None
    judge: dict[str, Any] = Field(default_factory=dict)
    db: str | None = None
    wall_seconds: float = 0.0
    dimensions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    failures: list[dict[str, Any]] = Field(default_factory=list)
    not_scored: list[dict[str, Any]] = Field(
        default_factory=list, description="judged but partial or unscored: item, status, reason")
    warnings: list[dict[str, Any]] = Field(default_factory=list, description="item, warning")
    skipped_items: list[str] = Field(default_factory=list)
    dry_run: bool = False
    estimate: dict[str, Any] | None = None


@dataclass
class _Prepared:
    item: BatchItem
    source: Source
    rubric: Rubric
    key: str
    estimate_usd: float | None = None  # its worst case, reserved while it runs (--max-cost only)
    file_metadata: dict[str, Any] | None = None  # the file's own front matter, when a manifest overrides it


class _StoreLink:
    """Serialised short DB sessions, run in a thread so the event loop keeps the calls flowing."""

    def __init__(self, path: Path, notice: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.lock = asyncio.Lock()
        self.notice = notice

    def _session(self, fn: Callable[[Store], Any]) -> Any:
        with open_store(self.path, wait_seconds=DB_WAIT_SECONDS, on_wait=self.notice) as store:
            return fn(store)

    async def run(self, fn: Callable[[Store], Any]) -> Any:
        async with self.lock:
            session = asyncio.ensure_future(asyncio.to_thread(self._session, fn))
            try:
                return await asyncio.shield(session)
            except asyncio.CancelledError:  # Ctrl-C: the thread still writes; keep the lock until it ends
                await asyncio.gather(session, return_exceptions=True)
                raise


def validate(request: CohortRequest) -> None:
    """Options checked once, for real runs and dry runs alike (bad values are exit 2, not a crash)."""
    if request.concurrency < 1:
        raise BadInput("--concurrency must be at least 1")
    if not request.cohort.strip():
        raise BadInput("--cohort needs a name")
    for name, value in (("--rpm", request.rpm), ("--tpm", request.tpm)):
        if value is not None and value <= 0:
            raise BadInput(f"{name} must be positive, got {value:g}")
    if request.max_cost is not None and request.max_cost < 0:
        raise BadInput(f"--max-cost cannot be negative, got {request.max_cost:g}")


class CohortRunner:
    def __init__(self, request: CohortRequest, progress: Callable[[Counters], None] | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        validate(request)
        self.req = request
        self.progress = progress
        self.counters = Counters()
        self.failures: list[dict[str, Any]] = []
        self.not_scored: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.skipped: list[str] = []
        self._rubrics: dict[str | None, tuple[Rubric, list[str]]] = {}
        from evaluator.judge.ratelimit import RateLimiter

        # always shared, even without rpm/tpm: a Retry-After from the provider pauses every worker
        limiter = RateLimiter(request.rpm, request.tpm)
        self.judge: Judge = build_judge(request.judge, limiter)
        self.info = self.judge.info()
        self.link = _StoreLink(request.db or default_db_path(), notice)
        self.pending_judgments: list[tuple[str, Judgment, Transcript, Rubric]] = []
        self.pending_items: list[dict[str, Any]] = []
        self.pending_members: dict[tuple[str, str], dict[str, Any]] = {}
        self.duplicates: dict[str, list[tuple[BatchItem, Source]]] = {}
        self.budget_exhausted = False
        self.budget_changed = asyncio.Condition()
        self.reservations = 0  # judgments in flight holding a worst-case reservation
        self.spent = 0.0
        self.reserved = 0.0
        self.abort: EvaluatorError | None = None
        self.seen_keys: dict[str, str] = {}
        self.run_id = str(uuid.uuid4())
        self.write_error: StoreError | None = None
        self.finished: dict[str, tuple[str, str]] = {}  # cache key -> (judgment id, status) judged this run
        self.run_started = False
        self._items = iter_items(request.path, notice)  # one pass over the inputs, shared by producer and interrupt
        self._chunk: list[_Prepared] = []
        self.accounted: set[str] = set()  # items with a run_items row (or one pending)
        self.rubric_hint = select_rubric(request.rubric, None) if request.rubric else None
        if request.max_cost is not None and self.info.kind == "llm":
            from evaluator.batch.estimate import price_known

            if not price_known(request.judge):
                raise BadInput(
                    f"--max-cost needs the model's price, and litellm has none for {request.judge.model}: "
                    "give --price-in and --price-out (USD per million tokens)"
                )

    # -- helpers -------------------------------------------------------------------------------
    def _notify(self) -> None:
        if self.progress:
            self.progress(self.counters)

    def _rubric_for(self, exercise: str | None) -> tuple[Rubric, list[str]]:
        key = None if self.req.rubric else exercise
        if key not in self._rubrics:
            self._rubrics[key] = select_rubric_with_warnings(self.req.rubric, exercise)
        return self._rubrics[key]

    def _prepare(self, item: BatchItem) -> _Prepared:
        if item.error:
            raise BadInput(item.error)
        source = read_source(item.path, item.code)
        file_metadata = None
        if item.overrides:  # the judge reads the transcript with them (whose words are the candidate's)
            file_metadata, source.metadata = source.metadata, {**source.metadata, **item.overrides}
        rubric, warnings = self._rubric_for(source.exercise)
        source.warnings = source.warnings + warnings
        key = cache_key(source.content_hash, rubric, self.info, key_extra(item.overrides))
        return _Prepared(item, source, rubric, key, file_metadata=file_metadata)

    def _record(self, item: BatchItem, status: str, source: Source | None = None,
                judgment_id: str | None = None, error: str | None = None) -> None:
        self.accounted.add(item.key)
        self.pending_items.append({
            "item": item.key, "source": str(item.path), "status": status, "error": error,
            "transcript_hash": source.content_hash if source else None, "judgment_id": judgment_id,
        })
        if source is not None:
            meta = source.metadata
            self.pending_members[(self.req.cohort, source.content_hash)] = {
                "cohort": self.req.cohort, "transcript_hash": source.content_hash, "source": str(item.path),
                "candidate": _str(meta.get("candidate")), "exercise": _str(meta.get("exercise")),
                "session_date": _str(meta.get("date")),
            }

    def _fail(self, item: BatchItem, error: str, source: Source | None = None, key: str | None = None) -> None:
        copies = [(item, source)] + (self.duplicates.pop(key, []) if key else [])
        for it, src in copies:
            self.counters.failed += 1
            self.failures.append({"item": it.key, "source": str(it.path), "error": error})
            self._record(it, "failed", source=src, error=error)

    # -- database sessions ---------------------------------------------------------------------
    def _ensure_run(self, store: Store) -> None:
        """The run row is written in the first session that needs it (one DB session fewer)."""
        if not self.run_started:
            from evaluator.store.runs import other_live_runs

            store.start_run(command="cohort", judge_info=self.info, rubric=self.rubric_hint,
                            cohort=self.req.cohort, run_id=self.run_id)
            self.run_started = True
            others = other_live_runs(store.con, self.run_id)
            if others and self.link.notice:  # each run checks the store before judging: two at once
                who = ", ".join(f"cohort {o['cohort'] or '-'} (pid {o['pid']})" for o in others)  # may both pay
                self.link.notice(f"another run is in progress on this database ({who}): a transcript both "
                                 "runs need may be judged by each; let it finish first to reuse its judgments")

    def _take_pending(self) -> tuple[Callable[[Store], Any], Callable[[], None]]:
        """Detach what is pending; return the session step that writes it in one transaction, and
        an undo that puts it back at the front (so a failed write loses nothing)."""
        judgments, self.pending_judgments = self.pending_judgments, []
        items, self.pending_items = self.pending_items, []
        member_map, self.pending_members = self.pending_members, {}
        members = list(member_map.values())
        totals, run_id = self._totals(), self.run_id
        ids = [j[0] for j in judgments]
        rows = [j[1:] for j in judgments]

        def write(store: Store) -> None:
            self._ensure_run(store)
            if rows or items:
                store.save_batch(run_id, rows, items, members, totals, ids=ids)

        def undo() -> None:
            self.pending_judgments[:0] = judgments
            self.pending_items[:0] = items
            self.pending_members = {**member_map, **self.pending_members}

        return write, undo

    async def _flush(self) -> None:
        """Group-commit what is pending. A failed write (e.g. the file held by another process past
        the wait) keeps the rows for the next attempt and is remembered for the final status."""
        if not (self.pending_items or self.pending_judgments):
            return
        write, undo = self._take_pending()
        try:
            await self.link.run(write)
            self.write_error = None
        except StoreError as e:
            undo()
            self.write_error = e

    def _totals(self) -> dict[str, Any]:
        c = self.counters
        return {"total": c.total, "scored": c.scored, "partial": c.partial, "unscored": c.unscored,
                "cached": c.cached, "failed": c.failed + c.skipped, "calls": c.calls,
                "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "cost_usd": c.cost_usd}

    async def _writer(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.req.flush_seconds)
            except asyncio.TimeoutError:
                pass
            await self._flush()

    # -- producer and workers ------------------------------------------------------------------
    async def _produce(self, queue: asyncio.Queue, n_workers: int) -> None:
        chunk = self._chunk  # read, not yet looked up (kept on self so an interrupt can list it)

        async def lookup() -> None:
            keys = [p.key for p in chunk]

            def find(store: Store) -> dict:
                self._ensure_run(store)
                return {} if self.req.force else store.cached_ids(keys)

            hits = await self.link.run(find)
            for p in chunk:
                if p.key in hits:
                    self.counters.cached += 1
                    self.counters.scored += 1
                    self._record(p.item, "cached", source=p.source, judgment_id=hits[p.key][0])
                elif p.key in self.finished and not self.req.force:
                    jid, status = self.finished[p.key]  # the original already finished in this run
                    self._count_duplicate(status)
                    self._record(p.item, status, p.source, judgment_id=jid,
                                 error=f"same content as {self.seen_keys[p.key]}")
                elif p.key in self.seen_keys and not self.req.force:
                    # same content twice in this cohort: judged once, the copy shares the result
                    self.duplicates.setdefault(p.key, []).append((p.item, p.source))
                else:
                    self.seen_keys[p.key] = p.item.key
                    await queue.put(p)
            self._notify()
            chunk.clear()

        for item in self._items:
            self.counters.total += 1
            if self.abort:  # judge unavailable: list what is left (cheap, nothing is read) so the
                self._skip(item, None, self._abort_note())  # summary says what a re-run will judge
                continue
            try:
                chunk.append(self._prepare(item))
            except EvaluatorError as e:
                self._fail(item, str(e))
            if len(chunk) >= CHUNK:
                await lookup()
        if chunk:  # already read: cache hits still count, the rest reach a worker (which skips them on abort)
            await lookup()
        for _ in range(n_workers):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue) -> None:
        while True:
            p: _Prepared | None = await queue.get()
            if p is None:
                return
            if self.abort:
                self._skip_copies(p, self._abort_note())
                continue
            try:
                transcript = parse_source(p.source)
                if self.req.max_cost is not None and not await self._within_budget(p, transcript):
                    continue
                self.counters.in_flight += 1
                self._notify()
                try:
                    judgment = await judge_transcript(transcript, p.rubric, self.judge, key_extra(p.item.overrides))
                    self._account(judgment)  # spent before the reservation goes: the budget never looks freer
                finally:
                    self.counters.in_flight -= 1
                    await self._release(p)
            except asyncio.CancelledError:  # Ctrl-C while this one was being judged
                self._skip_copies(p, INTERRUPTED)
                raise
            except JudgeUnavailable as e:
                self.counters.calls += e.requests
                self.abort = self.abort or e
                self._skip_copies(p, self._abort_note())
                self._notify()
                continue
            except EvaluatorError as e:
                self._fail(p.item, str(e), p.source, p.key)
                self._notify()
                continue
            except Exception as e:  # isolation: one transcript's surprise never stops the cohort
                self._fail(p.item, f"internal error: {type(e).__name__}: {e}", p.source, p.key)
                self._notify()
                continue
            self._note(p.item, judgment)
            if p.file_metadata is not None:
                # overrides belong to this cohort's membership (stored with it), not to the transcript
                # row every cohort and report shares
                transcript.metadata = p.file_metadata
            jid = str(uuid.uuid4())
            self.pending_judgments.append((jid, judgment, transcript, p.rubric))
            self._record(p.item, judgment.status, p.source, judgment_id=jid)
            self.finished[p.key] = (jid, judgment.status)
            for dup, source in self.duplicates.pop(p.key, []):
                self._count_duplicate(judgment.status)
                self._record(dup, judgment.status, source, judgment_id=jid, error=f"same content as {p.item.key}")
            self._notify()

    def _skip(self, item: BatchItem, source: Source | None, why: str) -> None:
        """Not judged by this run (budget reached, judge unavailable, stopped first): recorded with
        the reason, so the summary and the store say what a re-run will still judge."""
        self.counters.skipped += 1
        self.skipped.append(item.key)
        self._record(item, "skipped", source=source, error=why)

    def _skip_copies(self, p: _Prepared, why: str) -> None:
        """Skip a prepared item and the identical copies waiting on its result."""
        for it, src in [(p.item, p.source)] + self.duplicates.pop(p.key, []):
            self._skip(it, src, why)

    def _list_unjudged(self, queue: asyncio.Queue) -> None:
        """After an interrupt: what was read but not started, and what was never read (listing the
        rest is cheap: nothing is opened), recorded as skipped, so `total` is the whole cohort."""
        waiting = list(self._chunk)
        while not queue.empty():
            p = queue.get_nowait()
            if p is not None:
                waiting.append(p)
        for p in waiting:
            if p.item.key not in self.accounted:
                self._skip_copies(p, INTERRUPTED)
        self._chunk.clear()
        for item in self._items:
            self.counters.total += 1
            self._skip(item, None, INTERRUPTED)

    def _abort_note(self) -> str:
        return f"not judged: the run was aborted ({self.abort})"

    def _count_duplicate(self, status: str) -> None:
        self.counters.cached += 1
        setattr(self.counters, status, getattr(self.counters, status) + 1)

    def _note(self, item: BatchItem, j: Judgment) -> None:
        """Keep what a reader of the summary must see: why a judgment is not fully scored, and any
        warning about how the transcript was read (e.g. no speaker labels, cut to fit the context)."""
        if j.status != "scored":
            reason = j.reason or next((f"{d.id}: {d.reason}" for d in j.dimensions if d.status == "unscored"), None)
            self.not_scored.append({"item": item.key, "source": str(item.path), "status": j.status, "reason": reason})
        notes = list(j.warnings) + [f.detail for f in j.flags if f.kind in ("truncated", "speakers_unrecognised")]
        self.warnings += [{"item": item.key, "warning": w} for w in dict.fromkeys(notes)]

    async def _within_budget(self, p: _Prepared, transcript: Transcript) -> bool:
        """Start a judgment only if its worst case fits beside what is spent and what the judgments in
        flight could still cost (their worst cases are reserved). One that does not fit waits for those
        to finish, since most cost far less than their worst case; if it still does not fit with
        nothing in flight, the budget is exhausted and no more judgments start (what is left is listed).
        So --max-cost is never exceeded, and how much gets judged does not depend on --concurrency."""
        from evaluator.batch.estimate import estimate_judgment

        worst = estimate_judgment(transcript, p.rubric, self.req.judge)["worst_case_usd"] or 0.0
        async with self.budget_changed:
            while not self.budget_exhausted and self.spent + self.reserved + worst > self.req.max_cost:  # type: ignore[operator]
                if not self.reservations:  # nothing in flight will free any budget
                    self.budget_exhausted = True
                    break
                await self.budget_changed.wait()
            if self.budget_exhausted:
                self._skip_copies(p, f"not started: spent ${self.spent:.4f} + worst case ${worst:.4f} "
                                     f"would exceed --max-cost ${self.req.max_cost:.4f}")
                self._notify()
                return False
            p.estimate_usd = worst
            self.reserved += worst
            self.reservations += 1
            return True

    async def _release(self, p: _Prepared) -> None:
        """The judgment is over (its spend is counted): free its reservation for those waiting."""
        if self.req.max_cost is not None and p.estimate_usd is not None:
            async with self.budget_changed:
                self.reserved = max(self.reserved - p.estimate_usd, 0.0) if self.reservations > 1 else 0.0
                self.reservations -= 1
                p.estimate_usd = None
                self.budget_changed.notify_all()

    def _account(self, j: Judgment) -> None:
        c = self.counters
        setattr(c, j.status, getattr(c, j.status) + 1)
        c.calls += j.usage.calls
        c.prompt_tokens += j.usage.prompt_tokens
        c.completion_tokens += j.usage.completion_tokens
        if c.cost_usd is not None:
            c.cost_usd = None if j.usage.cost_usd is None else c.cost_usd + j.usage.cost_usd
        self.spent += j.usage.cost_usd or 0.0

    # -- the run -------------------------------------------------------------------------------
    async def run(self) -> CohortSummary:
        started = time.perf_counter()
        status, message = "completed", None
        stop_on_sigterm = _on_sigterm(asyncio.current_task())  # `timeout`, `kill`, a CI job: like Ctrl-C
        # the first write imports pandas (~1 s): do it now, off the loop, so the first commit is not late
        preload = asyncio.create_task(asyncio.to_thread(__import__, "pandas"))
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.req.concurrency * 2)
        stop = asyncio.Event()
        writer = asyncio.create_task(self._writer(stop))
        workers = [asyncio.create_task(self._work(queue)) for _ in range(self.req.concurrency)]
        try:
            await self._produce(queue, len(workers))
            await asyncio.gather(*workers)
        except asyncio.CancelledError:  # Ctrl-C: keep everything finished so far, then report
            status, message = "interrupted", "interrupted: finished judgments are stored; run again to resume"
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._list_unjudged(queue)
        finally:
            stop_on_sigterm()
            stop.set()
            await asyncio.gather(writer, preload, return_exceptions=True)
        for key, copies in self.duplicates.items():  # originals that never finished (abort, interrupt)
            for it, src in copies:
                self._skip(it, src, "not judged: the run stopped before its identical original")
        self.duplicates.clear()
        if self.abort:
            status, message = "aborted", str(self.abort)
        if self.budget_exhausted:
            message = (message + "; " if message else "") + (
                f"--max-cost reached: {len(self.skipped)} transcript(s) left unjudged")
        summary = CohortSummary(
            **self.counters.model_dump(), cohort=self.req.cohort, run_id=self.run_id, status=status,
            message=message, judge=self.info.model_dump(), db=str(self.link.path),
            failures=self.failures, not_scored=self.not_scored, warnings=self.warnings, skipped_items=self.skipped,
        )
        summary.in_flight = 0
        if summary.cost_usd is not None:
            summary.cost_usd = round(summary.cost_usd, 8)  # no float noise in what users read
        run_id, (write, _) = self.run_id, self._take_pending()

        def finish(store: Store) -> dict:
            write(store)
            store.finish_run(run_id, status)
            rows = store.con.execute(
                "SELECT d.dimension_id, d.status, d.score FROM run_items ri"
                " JOIN dimension_scores d ON d.judgment_id = ri.judgment_id"
                " WHERE ri.run_id = ? ORDER BY ri.item, d.position", [run_id]).fetchall()
            return dimension_summary(rows)

        summary.dimensions = await self.link.run(finish)  # a StoreError here ends the command (exit 2)
        summary.wall_seconds = round(time.perf_counter() - started, 3)
        return summary


def _on_sigterm(task: "asyncio.Task | None") -> Callable[[], None]:
    """SIGTERM cancels the run like Ctrl-C does (finished work kept, the rest listed); returns the
    undo. Where signal handlers cannot be set (not the main thread, Windows), nothing changes."""
    import signal

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)  # type: ignore[union-attr]
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        return lambda: None
    return lambda: loop.remove_signal_handler(signal.SIGTERM)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def score_cohort(request: CohortRequest, progress: Callable[[Counters], None] | None = None,
                 notice: Callable[[str], None] | None = None) -> CohortSummary:
    """Score (or, with dry_run, estimate) a cohort. The one library call behind `evaluate cohort`.
    `progress` gets the live counts; `notice` gets one-line messages worth showing at once (e.g. the
    database is held by another process and the run is waiting for it)."""
    validate(request)
    if request.dry_run:
        from evaluator.batch.estimate import estimate_cohort

        return estimate_cohort(request)
    return asyncio.run(CohortRunner(request, progress, notice).run())
