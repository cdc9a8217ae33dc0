"""`evaluate cohort --batch`: a cohort judged through the provider's batch API (about half price,
results within 24 hours), with a ledger in DuckDB that survives a kill at any moment.

One command does everything, and running it again continues:
    1. reconcile: finish any ledger row a killed run left half-way (provider_submit.py);
    2. collect: poll every unfinished batch; download the output and error files of finished ones and
       store every reply (or the provider's reason) in `batch_requests` (provider_collect.py); then the
       next wave: queued batches the enqueued-token limit now has room for are submitted
       (provider_waves.py);
    3. judge: the ordinary cohort runner (batch/runner.py) with the judge's requests answered from the
       stored replies (judge/batch_transport.py), looked up a chunk of transcripts at a time: the same
       parse / validate / evidence-check path as live calls, the same cache, the same judgment rows.
       Repairs go to the live model, or with `--batch-repairs` into the next batch;
    4. submit: the requests no reply answers yet, written to the batch input files as the pass defers
       them (split by the provider's limits), are recorded and submitted (provider_submit.py), or
       recorded as queued where the enqueued-token limit has no room for them yet.
A request the provider failed or expired is sent once more in a new batch, then unscored with the
provider's reason. A batch refused for its structured-output mode is sent again with the model's next
mode (json_schema -> json_object -> none), the step recorded in the ledger.

`EVALUATOR_TEST_CRASH_AT` (test hook, read only in `provider_ledger.crash_point`): `after_upload`,
`after_create` or `during_download` kills the process with SIGKILL at that point, so tests and
benchmarks/batch_bench.py can check that nothing is submitted twice and nothing finished is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from evaluator.batch import provider_ledger as L
from evaluator.batch.arenas import limit_arenas
from evaluator.batch.inputs import readable_items
from evaluator.batch.prepare import Prepared
from evaluator.batch.producer import Hits
from evaluator.batch.provider_collect import collect
from evaluator.batch.provider_submit import Spool, claim, reconcile, release, submit
from evaluator.batch.provider_waves import in_flight, limit_for, models, wave
from evaluator.batch.runner import CohortRunner
from evaluator.batch.types import CohortRequest, CohortSummary, Counters, validate
from evaluator.errors import BadInput
from evaluator.judge.batch_transport import (
    CURRENT_ITEM,
    MAX_BYTES_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    AwaitingBatch,
    BatchAPI,
    BatchTransport,
    ItemContext,
    KnownRequest,
    batch_discount,
    check_batch_provider,
    close_clients,
)
from evaluator.models import JudgeInfo, Transcript
from evaluator.rubrics import Rubric, select_rubric

list_batches = L.list_batches  # `evaluate batches` (list)
T = TypeVar("T")


@dataclass
class BatchOptions:
    """How a batch run goes (not what it judges: these are not in the cache key)."""

    wait: bool = False
    poll_seconds: float = 30.0
    discount: float | None = None  # None: litellm's batch price, else 0.5
    repairs: bool = False  # --batch-repairs: repair turns go into the next batch, not to the live model
    max_requests: int = MAX_REQUESTS_PER_BATCH
    max_bytes: int = MAX_BYTES_PER_BATCH
    # --max-enqueued-tokens: the provider's enqueued-token limit to submit in waves under (0: none;
    # None: the one the ledger remembers, else the figure of the provider's last limit message)
    max_enqueued_tokens: int | None = None


# -- the judging pass ----------------------------------------------------------------------------
class _DeferringJudge:
    """The cohort's judge, except that a transcript with a request awaiting a batch is not judged
    (nothing stored: the runner lists it as skipped, waiting for the batch)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def info(self) -> JudgeInfo:
        return self.inner.info()

    async def judge(self, transcript: Transcript, rubric: Rubric) -> Any:
        out = await self.inner.judge(transcript, rubric)
        current = CURRENT_ITEM.get()
        if current is not None and current.refused:
            raise AwaitingBatch(current.refused)
        if current is not None and current.waits:
            new = "new" in current.waits
            raise AwaitingBatch("awaiting the provider batch" + ("" if new else f" {sorted(current.waits)[0]}"))
        return out


NEEDS_LLM = "--batch needs an LLM judge: pass --model (the offline baseline has no batch API)"


def _llm_judge(judge: Any) -> Any:
    while not hasattr(judge, "adapter"):
        inner = getattr(judge, "inner", None)
        if inner is None:
            raise BadInput(NEEDS_LLM)  # a judge built without a model: _batch_model refused it already
        judge = inner
    return judge


class BatchCohortRunner(CohortRunner):
    """The cohort runner with the judge's requests answered from batch replies (or deferred into the
    spool). `pending` counts the transcripts left waiting for the provider."""

    def __init__(self, request: CohortRequest, spool: Spool, discount: float, repairs: bool,
                 progress: Callable[[Counters], None] | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        super().__init__(request, progress, notice)
        llm = _llm_judge(self.judge)
        self.live = llm.adapter
        self.known: dict[str, KnownRequest] = {}
        self.transport = BatchTransport(llm.adapter, self.known, discount, spool, repairs=repairs,
                                        exact_costs=request.max_cost is not None)
        llm.adapter = self.transport
        self.judge = _DeferringJudge(self.judge)
        self.pending = 0

    async def _lookup(self, keys: list[str]) -> tuple[Hits, Hits]:
        """The runner's lookup, then the ledger's requests of the chunk's other transcripts."""
        cached, resumed = await super()._lookup(keys)
        rest = [k for k in keys if k not in cached and k not in resumed]
        self.known.update(await self.link.run(lambda s: L.known_for(s, rest)))
        return cached, resumed

    async def _judge_one(self, p: Prepared) -> None:
        ctx = ItemContext(p.key, str(p.item.path))
        token = CURRENT_ITEM.set(ctx)
        try:
            if p.refused:  # stored, but on another view: _lookup left its requests out. One sent for the
                # old view has another body (custom_id), so its reply never answers the new one
                self.known.update(await self.link.run(lambda s: L.known_for(s, [p.key])))
            await super()._judge_one(p)
        except AwaitingBatch as e:
            before = len(self.rec.tally.skipped)
            self.rec.skip_copies(p, str(e))
            if not ctx.refused:
                self.pending += len(self.rec.tally.skipped) - before
        finally:
            CURRENT_ITEM.reset(token)
            for cid in [c for c, k in self.known.items() if k.cache_key == p.key]:
                del self.known[cid]  # this transcript is done with: memory holds the chunks in flight


def step_down(live: Any, rejected: list[tuple[str, str]]) -> None:
    """Set the live adapter's structured-output mode past every mode a batch was refused for (the
    capabilities' order, as a live call steps down), noting each step as a fallback flag."""
    refused = {mode for mode, _ in rejected}
    if not refused:
        return
    order = live.capabilities.structured_output
    mode = next((m for m in order if m not in refused), "none")
    if mode != live.format_mode:
        for sent, message in rejected:
            live.fallbacks.append(f"{sent} -> {mode}: the provider refused the batch ({message[:160]})")
        live.format_mode = mode


async def _cycle(request: CohortRequest, opts: BatchOptions, api: BatchAPI, path: Path,
                 progress: Callable[[Counters], None] | None, notice: Callable[[str], None] | None,
                 last: CohortSummary | None = None) -> tuple[CohortSummary, int]:
    """reconcile, collect, judge, submit; returns the summary and how many requests still wait.
    With `last` (a --wait poll after a full cycle), a poll that finished no batch skips the judging
    pass: nothing new can be judged or submitted, and re-rendering the cohort is what costs time."""
    model, base = request.judge.model or "", request.judge.api_base
    await reconcile(api, path, request.cohort)
    finished, _ = await collect(api, path, request.cohort)
    waved = await wave(api, path, request.cohort, model, base, opts.max_enqueued_tokens)
    if last is not None and not finished:
        return last, L.session(path, partial(L.waiting, cohort=request.cohort))[0]
    left = None
    if request.max_cost is not None:  # reserve the worst case before upload
        left = max(request.max_cost - L.session(path, L.reserved), 0.0)
    limit, flying = L.session(path, lambda s: (limit_for(s, model, base, opts.max_enqueued_tokens),
                                               in_flight(s, model, base)))
    spool = Spool(path, opts.max_requests, opts.max_bytes, left, max_tokens=limit)
    try:
        runner = BatchCohortRunner(request, spool, batch_discount(model, opts.discount), opts.repairs,
                                   progress, notice)
        step_down(runner.live, L.session(path, partial(L.rejected_modes, model=model,
                                                       api_base=request.judge.api_base)))
        if runner.budget is not None:  # what this pass spends (live repairs, collected replies) counts too
            budget = runner.budget
            spool.spent = lambda: budget.spent
        summary = await runner.run()
        # interrupted (Ctrl-C, SIGTERM): stop here; the requests written so far are rendered again next run
        recorded = limit if opts.max_enqueued_tokens is None else opts.max_enqueued_tokens
        ids, held = ([], []) if summary.status == "interrupted" else await submit(
            api, path, spool, request.cohort, model, base, limit, flying, recorded)
    finally:
        spool.close()
    if spool.refused:
        summary.warnings.append({"item": "-", "warning": f"--max-cost: {spool.refused} request(s) not submitted "
                                 "(their worst case would exceed the budget)"})
    requests, _ = L.session(path, partial(L.waiting, cohort=request.cohort))
    if summary.status == "interrupted":  # what it deferred was not submitted: nothing is pending for it
        return summary, requests
    summary.batch_pending = runner.pending
    notes = []
    if ids and not held:
        notes.append(f"{len(spool.seen)} request(s) submitted in {len(ids)} new provider batch(es)")
    elif held:
        notes.append(f"{len(spool.seen)} request(s) recorded in {len(ids) + len(held)} new provider batch(es), "
                     f"{len(ids)} of them submitted now")
    if waved:
        notes.append(f"{len(waved)} queued batch(es) submitted in this wave")
    q_batches, q_requests = L.session(path, partial(L.queued, cohort=request.cohort))
    if q_batches:
        notes.append(f"{q_batches} batch(es) ({q_requests} request(s)) queued under the enqueued-token limit "
                     f"({'~' + format(limit, ',') + ' tokens' if limit else 'as the provider reported it'}): "
                     "submitted as earlier batches finish (the same command again, `evaluate batches collect`, "
                     "or --wait)")
    if runner.pending:
        notes.append(f"results pending: {runner.pending} transcript(s) await the provider ({requests} request(s) "
                     "in its batches, done within 24 h); run the same command again to collect and judge them "
                     "(add --wait to poll until done; `evaluate batches` shows their state)")
    if notes:
        summary.message = "; ".join(([summary.message] if summary.message else []) + notes)
    return summary, requests


def _batch_model(request: CohortRequest) -> str:
    """The model the batches go to; checked once, before a dry run or a real one (an estimate of 0
    calls for the baseline would read as "free", when the real run is refused)."""
    if not request.judge.model:
        raise BadInput(NEEDS_LLM)
    return request.judge.model


def _api(request: CohortRequest, model: str) -> BatchAPI:
    j = request.judge
    check_batch_provider(model)
    key = j.api_key.get_secret_value() if j.api_key is not None else None
    return BatchAPI(model, j.api_base, key, j.timeout)


def _batch_mode(request: CohortRequest) -> str | None:
    """The structured-output mode batch requests go with when the ledger holds refusals of earlier
    modes (as `step_down` sets it), else None (the model's first). Read-only: a dry run writes nothing."""
    from evaluator.batch.estimate import _transport
    from evaluator.store.db import Store

    path = request.db or L.db_path(None)
    if not path.exists():
        return None
    try:
        with Store(path, read_only=True) as store:
            refused = {m for m, _ in L.rejected_modes(store, request.judge.model or "", request.judge.api_base)}
    except Exception:  # noqa: BLE001 - an older store, or one a writer holds: no refusals to know of
        return None
    if not refused:
        return None
    order = _transport(request.judge).capabilities.structured_output
    return next((m for m in order if m not in refused), "none")


def _dry_run(request: CohortRequest, opts: BatchOptions) -> CohortSummary:
    from evaluator.batch.estimate import estimate_cohort

    summary = estimate_cohort(request, _batch_mode(request))
    est = summary.estimate or {}
    # the prompt tokens the submission holds to an enqueued-token limit (the model's tokenizer with
    # --max-cost, else the conservative heuristic: see BatchTransport), and the waves it takes under one
    heuristic = est.pop("heuristic_prompt_tokens", 0)
    est["batch_enqueued_tokens"] = est.get("prompt_tokens", 0) if request.max_cost is not None else heuristic
    if opts.max_enqueued_tokens:
        est["batch_waves"] = -(-int(est["batch_enqueued_tokens"]) // opts.max_enqueued_tokens)
    discount = batch_discount(request.judge.model or "", opts.discount)
    for k in [k for k in est if k.endswith("_usd")]:
        v = est[k]
        est[f"batch_{k}"] = None if v is None else round(v * discount, 10)
    est["batch_discount"] = discount
    summary.estimate = est
    return summary


def _run(main: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run(main())`, closing litellm's HTTP clients before the loop ends (close_clients), with
    glibc's arenas capped first as for a live run (batch/arenas.py): a collect judges as fast as it
    reads, so its store sessions come and go as often as a live run's."""
    limit_arenas()

    async def go() -> T:
        try:
            return await main()
        finally:
            await close_clients()

    return asyncio.run(go())


def score_cohort_batch(request: CohortRequest, opts: BatchOptions,
                       progress: Callable[[Counters], None] | None = None,
                       notice: Callable[[str], None] | None = None) -> CohortSummary:
    """The one library call behind `evaluate cohort --batch`: see the module docstring. With
    `opts.wait`, polls every `opts.poll_seconds` until nothing waits, telling progress via `notice`."""
    validate(request)
    model = _batch_model(request)
    if request.dry_run:
        return _dry_run(request, opts)
    refuse_bad_input(request)
    path = request.db or L.db_path(None)
    api = _api(request, model)
    started = time.monotonic()

    async def go() -> CohortSummary:
        summary, waiting = await _cycle(request, opts, api, path, progress, notice)
        while opts.wait and waiting:
            if notice:
                done, total = L.session(path, partial(L.provider_progress, cohort=request.cohort))
                _, held = L.session(path, partial(L.queued, cohort=request.cohort))
                notice(f"{done}/{total} request(s) done at the provider ({waiting - held} request(s) at the provider"
                       + (f", {held} queued for a later wave" if held else "") + "); "
                       f"elapsed {time.monotonic() - started:.0f} s; next poll in {opts.poll_seconds:g} s")
            await asyncio.sleep(opts.poll_seconds)
            summary, waiting = await _cycle(request, opts, api, path, progress, notice, last=summary)
        return summary

    return _run(go)


def refuse_bad_input(request: CohortRequest) -> None:
    """What the live runner refuses before its first session (an unreadable input, an unknown
    --rubric), refused before the ledger's first session too: a batch cycle opens the store to
    reconcile and collect before it reads a transcript, which created an empty database for a typo."""
    readable_items(request.path)
    if request.rubric:
        select_rubric(request.rubric, None)


# -- `evaluate batches collect|cancel` -----------------------------------------------------------
def _api_for(row: dict[str, Any], api_key: str | None, timeout: float) -> BatchAPI:
    return BatchAPI(row["model"] or "openai/unknown", row["api_base"], api_key, timeout)


def _each_api(db: Path | None, cohort: str | None, api_key: str | None, timeout: float) -> list[BatchAPI]:
    seen: dict[tuple[str, str | None], BatchAPI] = {}
    for r in list_batches(db, cohort):
        if r["state"] != "done":
            seen.setdefault((r["provider"], r["api_base"]), _api_for(r, api_key, timeout))
    return list(seen.values())


def collect_batches(db: Path | None, cohort: str | None, api_key: str | None = None,
                    timeout: float = 120.0, max_enqueued_tokens: int | None = None) -> list[dict[str, Any]]:
    """`evaluate batches collect`: finish half-made batches, poll, store finished results, and submit
    the next wave of queued batches (judging them is `evaluate cohort --batch` again: it needs the
    judge options). `max_enqueued_tokens`: as `cohort --batch --max-enqueued-tokens` (None: remembered)."""
    path = L.db_path(db)

    async def go() -> list[dict[str, Any]]:
        polled: list[dict[str, Any]] = []
        for api in _each_api(db, cohort, api_key, timeout):
            await reconcile(api, path, cohort)
            polled += (await collect(api, path, cohort))[1]
        for model, base in models(path, cohort):
            api = _api_for({"model": model, "api_base": base}, api_key, timeout)
            for lid in await wave(api, path, cohort, model, base, max_enqueued_tokens):
                polled.append({"id": lid, "status": "submitted in this wave"})
        return polled

    return _run(go)


def cancel_queued(path: Path, lid: str) -> str:
    """Close a queued batch (its requests cancelled: the next `cohort --batch` renders them again) and
    delete its spool file; "cancelled", or "busy" when another process is submitting it."""
    handle = claim(path, lid)
    if handle is None:
        return "busy"
    try:
        def close(con: Any) -> None:
            con.execute("UPDATE batch_requests SET state = 'cancelled', error = 'cancelled before it was submitted' "
                        "WHERE ledger_id = ? AND state = 'queued'", [lid])
            con.execute("UPDATE batch_ledger SET state = 'done', provider_status = 'cancelled', updated_at = ? "
                        "WHERE id = ? AND state = 'queued'", [L.now(), lid])

        L.write(path, close)
        L.spool_file(path, lid).unlink(missing_ok=True)
        L.spool_file(path, lid).with_suffix(".meta").unlink(missing_ok=True)
    finally:
        release(path, lid, handle)
    return "cancelled"


def cancel_batches(db: Path | None, cohort: str | None, api_key: str | None = None,
                   timeout: float = 120.0) -> list[dict[str, Any]]:
    """`evaluate batches cancel`: cancel every unfinished batch at the provider (what it finished
    before the cancel is still collected; the rest is submitted again by the next `cohort --batch`)."""
    path = L.db_path(db)

    async def go() -> list[dict[str, Any]]:
        out = []
        for r in list_batches(db, cohort):
            if r["state"] == "queued":  # never (or no longer) at the provider: closed here
                out.append({"id": r["id"], "batch_id": None, "status": cancel_queued(path, r["id"])})
            elif r["state"] == "submitted" and r["batch_id"]:
                b = await _api_for(r, api_key, timeout).cancel(r["batch_id"])
                L.update(path, r["id"], provider_status=b.get("status"))
                out.append({"id": r["id"], "batch_id": r["batch_id"], "status": b.get("status")})
        return out

    return _run(go)
