"""`evaluate cohort --batch`: a cohort judged through the provider's batch API (about half price,
results within 24 hours), with a ledger in DuckDB that survives a kill at any moment.

One command does everything, and running it again continues:
    1. reconcile: finish any ledger row a killed run left half-way (see below);
    2. collect: poll every unfinished batch; download the output and error files of finished ones and
       store every reply (or the provider's reason) in `batch_requests`, in one transaction;
    3. judge: the ordinary cohort runner (batch/runner.py) with the judge's first request answered from
       the stored replies (judge/batch_transport.py): the same parse / validate / evidence-check path as
       live calls, the same cache, the same judgment rows. Repairs go to the live model;
    4. submit: the first requests no reply answers yet are split by the provider's limits and submitted,
       each batch recorded before the call that could pay for it.

Crash safety, by ledger state (written BEFORE the step it names):
    uploading  the input file's hash and every request are stored; a restart uploads the same bytes again
               (an orphaned file costs nothing: a batch is what is paid for)
    creating   the file id is stored; a restart first looks for a provider batch whose metadata carries
               this ledger id (`evaluator_ledger_id`) and adopts it, so a create whose answer was lost is
               never created twice
    submitted  the batch id is stored; collect polls it
    done       the replies are stored in the same transaction that sets this state: a kill during the
               download loses nothing (the provider keeps the files; the next run downloads them again)
A request the provider failed or expired is sent once more in a new batch, then unscored with the
provider's reason.

`EVALUATOR_TEST_CRASH_AT` (test hook, read only in `crash_point`): `after_upload`, `after_create` or
`during_download` kills the process with SIGKILL at that point, so tests and benchmarks/batch_bench.py
can check that nothing is submitted twice and nothing finished is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from evaluator.batch.prepare import Prepared
from evaluator.batch.runner import CohortRunner
from evaluator.batch.types import CohortRequest, CohortSummary, Counters, validate
from evaluator.errors import BadInput
from evaluator.judge.batch_transport import (
    CURRENT_ITEM,
    ENDPOINT,
    MAX_BYTES_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    AwaitingBatch,
    BatchAPI,
    BatchTransport,
    KnownRequest,
    Wanted,
    batch_discount,
    custom_id,
    provider_of,
)
from evaluator.models import JudgeInfo, Transcript
from evaluator.rubrics import Rubric
from evaluator.store.db import Store, default_db_path, open_store

FINAL = ("completed", "failed", "expired", "cancelled")
LEDGER_KEY = "evaluator_ledger_id"
DB_WAIT = 30.0


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process at `name` when EVALUATOR_TEST_CRASH_AT says so (the one place
    the variable is read)."""
    if os.environ.get("EVALUATOR_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class BatchOptions:
    """How a batch run goes (not what it judges: these are not in the cache key)."""

    wait: bool = False
    poll_seconds: float = 30.0
    discount: float | None = None  # None: litellm's batch price, else 0.5
    max_requests: int = MAX_REQUESTS_PER_BATCH
    max_bytes: int = MAX_BYTES_PER_BATCH


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _session(path: Path, fn: Callable[[Store], Any]) -> Any:
    with open_store(path, wait_seconds=DB_WAIT) as store:
        return fn(store)


def _tx(store: Store, fn: Callable[[Any], None]) -> None:
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        fn(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _write(path: Path, fn: Callable[[Any], None]) -> None:
    """One session, one transaction."""
    _session(path, lambda store: _tx(store, fn))


def _line(cid: str, body_json: str) -> bytes:
    return (f'{{"custom_id": {json.dumps(cid)}, "method": "POST", "url": {json.dumps(ENDPOINT)}, '
            f'"body": {body_json}}}\n').encode()


# -- the ledger ----------------------------------------------------------------------------------
def _rows(store: Store, where: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = store.con.execute(f"SELECT * FROM batch_ledger WHERE {where} ORDER BY submitted_at", params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _update(path: Path, lid: str, **values: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    _session(path, lambda s: s.con.execute(f"UPDATE batch_ledger SET {sets}, updated_at = ? WHERE id = ?",
                                          [*values.values(), _now(), lid]))


def known_requests(store: Store) -> dict[str, KnownRequest]:
    """Every custom_id the ledger holds: its reply, the unfinished batch it waits in, its failures."""
    known: dict[str, KnownRequest] = {}
    for cid, lid, state, reply, error in store.con.execute(
            "SELECT r.custom_id, r.ledger_id, r.state, r.reply, r.error FROM batch_requests r "
            "JOIN batch_ledger l ON l.id = r.ledger_id ORDER BY l.submitted_at").fetchall():
        k = known.setdefault(cid, KnownRequest())
        if state == "done" and reply is not None:
            k.reply = json.loads(reply)
        elif state == "submitted":
            k.pending_in = lid
        elif state == "failed":
            k.failures.append(error or "failed")
    return known


async def _advance(api: BatchAPI, path: Path, row: dict[str, Any], restart: bool) -> None:
    """Take one ledger row from uploading/creating to submitted (see the module docstring)."""
    lid = row["id"]
    if row["state"] == "uploading":
        def lines(store: Store) -> bytes:
            return b"".join(_line(c, b) for c, b in store.con.execute(
                "SELECT custom_id, body FROM batch_requests WHERE ledger_id = ? ORDER BY seq", [lid]).fetchall())

        content = _session(path, lines)
        if hashlib.sha256(content).hexdigest() != row["input_sha256"]:  # the stored requests must be what was planned
            raise BadInput(f"batch ledger row {lid}: the stored requests do not match the recorded input hash")
        row["input_file_id"] = await api.upload(f"evaluator-{lid}.jsonl", content)
        crash_point("after_upload")
        _update(path, lid, state="creating", input_file_id=row["input_file_id"])
        row["state"] = "creating"
    if row["state"] == "creating":
        found = await api.find(LEDGER_KEY, lid) if restart else None
        batch = found or await api.create(row["input_file_id"], {LEDGER_KEY: lid})
        crash_point("after_create")
        _update(path, lid, state="submitted", batch_id=batch["id"], provider_status=batch.get("status"))
        row.update(state="submitted", batch_id=batch["id"])


async def reconcile(api: BatchAPI, path: Path, cohort: str | None) -> int:
    """Finish the rows a killed run left in uploading/creating (never creating a batch twice)."""
    rows = _session(path, lambda s: _rows(s, "state IN ('uploading', 'creating') AND (? IS NULL OR cohort = ?)",
                                          [cohort, cohort]))
    for row in rows:
        await _advance(api, path, row, restart=True)
    return len(rows)


def _parse_results(data: bytes) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
    out: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
    for raw in data.splitlines():
        if not raw.strip():
            continue
        rec = json.loads(raw)
        resp, err = rec.get("response") or {}, rec.get("error")
        if err is None and resp.get("status_code") == 200:
            out[rec["custom_id"]] = (resp.get("body"), None)
        else:
            body = resp.get("body") or {}
            why = (err or {}).get("message") or (body.get("error") or {}).get("message") or str(err or body)
            code = (err or {}).get("code") or resp.get("status_code")
            out[rec["custom_id"]] = (None, f"{code}: {why}" if code else str(why))
    return out


async def collect(api: BatchAPI, path: Path, cohort: str | None) -> tuple[int, list[dict[str, Any]]]:
    """Poll unfinished batches; store the results of finished ones. Returns (batches finished now,
    the status of each batch polled)."""
    rows = _session(path, lambda s: _rows(s, "state = 'submitted' AND (? IS NULL OR cohort = ?)", [cohort, cohort]))
    finished = 0
    polled = []
    for row in rows:
        b = await api.retrieve(row["batch_id"])
        status, counts = str(b.get("status")), b.get("request_counts") or {}
        counts = counts if isinstance(counts, dict) else dict(vars(counts))
        polled.append({"id": row["id"], "batch_id": row["batch_id"], "status": status, "counts": counts,
                       "n_requests": row["n_requests"]})
        if status not in FINAL:
            _update(path, row["id"], provider_status=status, counts=json.dumps(counts))
            continue
        results: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
        for fid in (b.get("output_file_id"), b.get("error_file_id")):
            if fid:
                results.update(_parse_results(await api.content(fid)))
                crash_point("during_download")
        errors = b.get("errors") or {}
        errs = errors.get("data") if isinstance(errors, dict) else getattr(errors, "data", None)
        missing = f"the batch ended {status}" + (f": {errs[0].get('message') if isinstance(errs[0], dict) else errs[0]}"
                                                  if errs else "")
        lid, final = row["id"], (status, counts, b.get("output_file_id"), b.get("error_file_id"))
        _write(path, partial(_store_results, lid=lid, final=final, results=results, missing=missing))
        finished += 1
    return finished, polled


def _store_results(con: Any, lid: str, final: tuple[str, dict, str | None, str | None],
                   results: dict[str, tuple[dict[str, Any] | None, str | None]], missing: str) -> None:
    """One transaction: every reply or reason, then the row's `done` (a kill before it loses nothing)."""
    status, counts, output_file_id, error_file_id = final
    for cid, (reply, why) in results.items():
        con.execute("UPDATE batch_requests SET state = ?, reply = ?, error = ? WHERE ledger_id = ? AND custom_id = ?",
                    ["done" if reply is not None else "failed", json.dumps(reply) if reply is not None else None,
                     why, lid, cid])
    # not in either file: the batch ended first (expired, failed); a cancel is the user's choice
    con.execute("UPDATE batch_requests SET state = ?, error = ? WHERE ledger_id = ? AND state = 'submitted'",
                ["cancelled" if status == "cancelled" else "failed", missing, lid])
    con.execute("UPDATE batch_ledger SET state = 'done', provider_status = ?, counts = ?, output_file_id = ?, "
                "error_file_id = ?, updated_at = ? WHERE id = ?",
                [status, json.dumps(counts), output_file_id, error_file_id, _now(), lid])


async def submit(api: BatchAPI, path: Path, cohort: str, model: str, api_base: str | None,
                 wanted: list[Wanted], opts: BatchOptions, worst: Callable[[dict[str, Any]], float]) -> list[str]:
    """Split `wanted` by the provider's limits; record then submit each batch. Returns ledger ids."""
    chunks: list[list[tuple[str, str, Wanted]]] = [[]]
    size = 0
    for w in wanted:
        body_json = json.dumps(w.body, sort_keys=True, ensure_ascii=False)
        cid = custom_id(w.body)
        n = len(_line(cid, body_json))
        if chunks[-1] and (len(chunks[-1]) >= opts.max_requests or size + n > opts.max_bytes):
            chunks.append([])
            size = 0
        chunks[-1].append((cid, body_json, w))
        size += n
    ids = []
    for chunk in (c for c in chunks if c):
        lid = str(uuid.uuid4())
        content = b"".join(_line(cid, bj) for cid, bj, _ in chunk)
        row = {"id": lid, "state": "uploading", "input_sha256": hashlib.sha256(content).hexdigest(),
               "input_file_id": None}
        cost = sum(worst(w.body) for _, _, w in chunk)

        def record(con: Any, lid: str = lid, chunk: list = chunk, content: bytes = content, cost: float = cost) -> None:
            con.execute("INSERT INTO batch_ledger (id, cohort, provider, model, api_base, state, input_sha256, "
                        "input_bytes, n_requests, worst_cost_usd, submitted_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, 'uploading', ?, ?, ?, ?, ?, ?)",
                        [lid, cohort, provider_of(model), model, api_base, hashlib.sha256(content).hexdigest(),
                         len(content), len(chunk), cost, _now(), _now()])
            con.executemany("INSERT INTO batch_requests (ledger_id, seq, custom_id, cache_key, item, body, state) "
                            "VALUES (?, ?, ?, ?, ?, ?, 'submitted')",
                            [[lid, i, cid, w.cache_key, w.item, bj] for i, (cid, bj, w) in enumerate(chunk)])

        _write(path, record)
        await _advance(api, path, row, restart=False)
        ids.append(lid)
    return ids


# -- the judging pass ----------------------------------------------------------------------------
class _DeferringJudge:
    """The cohort's judge, except that a transcript whose first request awaits a batch is not judged
    (nothing stored: the runner lists it as skipped, waiting for the batch)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def info(self) -> JudgeInfo:
        return self.inner.info()

    async def judge(self, transcript: Transcript, rubric: Rubric) -> Any:
        out = await self.inner.judge(transcript, rubric)
        current = CURRENT_ITEM.get()
        if current is not None and current[2]:
            new = "new" in current[2]
            raise AwaitingBatch("awaiting the provider batch" + ("" if new else f" {sorted(current[2])[0]}"))
        return out


def _llm_judge(judge: Any) -> Any:
    while not hasattr(judge, "adapter"):
        inner = getattr(judge, "inner", None)
        if inner is None:
            raise BadInput("--batch needs an LLM judge: pass --model (the offline baseline has no batch API)")
        judge = inner
    return judge


class BatchCohortRunner(CohortRunner):
    """The cohort runner with the judge's first requests answered from batch replies (or deferred)."""

    def __init__(self, request: CohortRequest, known: dict[str, KnownRequest], discount: float,
                 progress: Callable[[Counters], None] | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        super().__init__(request, progress, notice)
        llm = _llm_judge(self.judge)
        self.transport = BatchTransport(llm.adapter, known, discount)
        llm.adapter = self.transport
        self.judge = _DeferringJudge(self.judge)

    async def _judge_one(self, p: Prepared) -> None:
        token = CURRENT_ITEM.set((p.key, str(p.item.path), set()))
        try:
            await super()._judge_one(p)
        except AwaitingBatch as e:
            self.rec.skip_copies(p, str(e))
        finally:
            CURRENT_ITEM.reset(token)


def _worst(transport: BatchTransport, max_tokens: int) -> Callable[[dict[str, Any]], float]:
    def worst(body: dict[str, Any]) -> float:
        return transport.price(transport.count_tokens(body["messages"]), max_tokens) or 0.0
    return worst


async def _cycle(request: CohortRequest, opts: BatchOptions, api: BatchAPI, path: Path,
                 progress: Callable[[Counters], None] | None, notice: Callable[[str], None] | None
                 ) -> tuple[CohortSummary, int]:
    """reconcile, collect, judge, submit; returns the summary and how many requests still wait."""
    await reconcile(api, path, request.cohort)
    await collect(api, path, request.cohort)
    known = _session(path, known_requests)
    discount = batch_discount(request.judge.model or "", opts.discount)
    runner = BatchCohortRunner(request, known, discount, progress, notice)
    summary = await runner.run()
    transport = runner.transport
    wanted = list(transport.wanted.values())
    worst = _worst(transport, request.judge.max_tokens)
    if request.max_cost is not None and wanted:  # reserve the worst case before upload
        left = request.max_cost - (summary.cost_usd or 0.0) - _session(path, _reserved)
        fits: list[Wanted] = []
        for w in wanted:
            cost = worst(w.body)
            if cost <= left:
                fits.append(w)
                left -= cost
        if len(fits) < len(wanted):
            summary.warnings.append({"item": "-", "warning": f"--max-cost: {len(wanted) - len(fits)} request(s) not "
                                     "submitted (their worst case would exceed the budget)"})
        wanted = fits
    ids = await submit(api, path, request.cohort, request.judge.model or "", request.judge.api_base, wanted, opts,
                       worst) if wanted else []
    waiting = int(_session(path, lambda s: _scalar(
        s, "SELECT count(*) FROM batch_requests r JOIN batch_ledger l ON l.id = r.ledger_id "
        "WHERE r.state = 'submitted' AND l.cohort = ?", [request.cohort])))
    note = (f"{len(wanted)} request(s) submitted in {len(ids)} new provider batch(es); " if ids else "") + (
        f"{waiting} request(s) await the provider: run the same command again (or `evaluate batches collect`) "
        "to collect them" if waiting else "")
    if note:
        summary.message = (summary.message + "; " if summary.message else "") + note.rstrip("; ")
    return summary, waiting


def _scalar(store: Store, sql: str, params: list[Any] | None = None) -> Any:
    row = store.con.execute(sql, params or []).fetchone()
    return row[0] if row else None


def _provider_progress(store: Store, cohort: str) -> tuple[int, int]:
    """(requests the provider reports finished, requests) over this cohort's unfinished batches."""
    done = total = 0
    for counts, n in store.con.execute("SELECT counts, n_requests FROM batch_ledger WHERE cohort = ? AND "
                                       "state <> 'done'", [cohort]).fetchall():
        c = json.loads(counts) if counts else {}
        done += int(c.get("completed") or 0) + int(c.get("failed") or 0)
        total += int(n)
    return done, total


def _reserved(store: Store) -> float:
    """Worst-case cost of the batches still running (already committed against the budget)."""
    return float(_scalar(store, "SELECT sum(worst_cost_usd) FROM batch_ledger WHERE state <> 'done'") or 0.0)


def _api(request: CohortRequest) -> BatchAPI:
    j = request.judge
    if not j.model:
        raise BadInput("--batch needs an LLM judge: pass --model (the offline baseline has no batch API)")
    key = j.api_key.get_secret_value() if j.api_key is not None else None
    return BatchAPI(j.model, j.api_base, key, j.timeout)


def score_cohort_batch(request: CohortRequest, opts: BatchOptions,
                       progress: Callable[[Counters], None] | None = None,
                       notice: Callable[[str], None] | None = None) -> CohortSummary:
    """The one library call behind `evaluate cohort --batch`: see the module docstring. With
    `opts.wait`, polls every `opts.poll_seconds` until nothing waits, telling progress via `notice`."""
    validate(request)
    if request.dry_run:
        from evaluator.batch.estimate import estimate_cohort

        summary = estimate_cohort(request)
        est = summary.estimate or {}
        discount = batch_discount(request.judge.model or "", opts.discount)
        for k in [k for k in est if k.endswith("_usd")]:
            v = est[k]
            est[f"batch_{k}"] = None if v is None else round(v * discount, 10)
        est["batch_discount"] = discount
        summary.estimate = est
        return summary
    path = request.db or default_db_path()
    api = _api(request)
    started = time.monotonic()

    async def go() -> CohortSummary:
        summary, waiting = await _cycle(request, opts, api, path, progress, notice)
        while opts.wait and waiting:
            if notice:
                done, total = _session(path, partial(_provider_progress, cohort=request.cohort))
                notice(f"{done}/{total} request(s) done at the provider ({waiting} request(s) at the provider); "
                       f"elapsed {time.monotonic() - started:.0f} s; next poll in {opts.poll_seconds:g} s")
            await asyncio.sleep(opts.poll_seconds)
            summary, waiting = await _cycle(request, opts, api, path, progress, notice)
        return summary

    return asyncio.run(go())


# -- `evaluate batches` --------------------------------------------------------------------------
def list_batches(db: Path | None, cohort: str | None = None) -> list[dict[str, Any]]:
    """Every ledger row (newest last) with its request counts by state."""
    def q(store: Store) -> list[dict[str, Any]]:
        rows = _rows(store, "(? IS NULL OR cohort = ?)", [cohort, cohort])
        for r in rows:
            r["requests"] = dict(store.con.execute(
                "SELECT state, count(*) FROM batch_requests WHERE ledger_id = ? GROUP BY state", [r["id"]]).fetchall())
            r["counts"] = json.loads(r["counts"]) if r.get("counts") else None
        return rows

    return _session(db or default_db_path(), q)


def _api_for(row: dict[str, Any], api_key: str | None, timeout: float) -> BatchAPI:
    return BatchAPI(row["model"] or "openai/unknown", row["api_base"], api_key, timeout)


def _each_api(db: Path | None, cohort: str | None, api_key: str | None,
              timeout: float) -> list[tuple[BatchAPI, str | None]]:
    rows = list_batches(db, cohort)
    seen: dict[tuple[str, str | None], tuple[BatchAPI, str | None]] = {}
    for r in rows:
        if r["state"] != "done":
            seen.setdefault((r["provider"], r["api_base"]), (_api_for(r, api_key, timeout), r["cohort"]))
    return list(seen.values())


def collect_batches(db: Path | None, cohort: str | None, api_key: str | None = None,
                    timeout: float = 120.0) -> list[dict[str, Any]]:
    """`evaluate batches collect`: finish half-made batches, poll, store finished results (judging
    them is `evaluate cohort --batch` again: it needs the judge options)."""
    path = db or default_db_path()

    async def go() -> list[dict[str, Any]]:
        polled: list[dict[str, Any]] = []
        for api, _ in _each_api(db, cohort, api_key, timeout):
            await reconcile(api, path, cohort)
            polled += (await collect(api, path, cohort))[1]
        return polled

    return asyncio.run(go())


def cancel_batches(db: Path | None, cohort: str | None, api_key: str | None = None,
                   timeout: float = 120.0) -> list[dict[str, Any]]:
    """`evaluate batches cancel`: cancel every unfinished batch at the provider (what it finished
    before the cancel is still collected; the rest is submitted again by the next `cohort --batch`)."""
    path = db or default_db_path()

    async def go() -> list[dict[str, Any]]:
        out = []
        for r in list_batches(db, cohort):
            if r["state"] == "submitted" and r["batch_id"]:
                b = await _api_for(r, api_key, timeout).cancel(r["batch_id"])
                _update(path, r["id"], provider_status=b.get("status"))
                out.append({"id": r["id"], "batch_id": r["batch_id"], "status": b.get("status")})
        return out

    return asyncio.run(go())
