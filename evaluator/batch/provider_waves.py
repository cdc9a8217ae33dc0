"""Waves under the provider's enqueued-token limit: a big cohort is submitted a limit's worth at a time.

Why: OpenAI holds, per model and organisation, at most so many prompt tokens in batches that are not
finished yet (the "batch queue limit" of the account's usage tier; its Batch guide: "Enqueued prompt
tokens per model"; no limit on output tokens). A batch over it is created, then fails validation with
`token_limit_exceeded` ("Enqueued token limit reached for gpt-4o-mini in organization org-... Limit:
2,000,000 enqueued tokens. Please try again once some in_progress batches have been completed."). A
100,000-transcript cohort (~430 M prompt tokens) is 215 tier-1 limits.

How:
  * The limit is `--max-enqueued-tokens N` (remembered in the ledger row of each batch, so `evaluate
    batches collect` and later runs keep it; 0: no limit), lowered to the figure of the provider's
    enqueued-limit message when one came under that setting; unset, that figure; else none: everything
    is submitted at once, as before.
  * Input files are split so that none holds more than the limit (provider_submit.Spool), and a batch is
    submitted only while this store's batches in flight for the model (uploading, creating, submitted)
    plus its own estimated prompt tokens fit; the rest are recorded `queued` (their input files wait in
    the spool folder). One batch always goes when nothing is in flight.
  * `wave` submits queued batches, oldest first, as room frees: on every `cohort --batch` run, every
    `batches collect`, every `--wait` poll.
  * A batch the provider failed for its enqueued limit goes back to `queued` (its uploaded file is
    created again: no second upload), with no failed attempt counted for its requests: nothing of them
    ran. A batch that cannot fit even alone (its tokens above the figure the provider gave, or failed for
    the limit MAX_LIMIT_FAILURES times) is dropped instead: the next run renders its requests again,
    split under the limit.

The tokens are this tool's estimate (the conservative characters-per-token heuristic, or the model's
tokenizer with --max-cost), counted over this store only: other batches of the same organisation (other
stores, other tools, other people) share the provider's limit, so pass the room they leave.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evaluator.batch import provider_ledger as L
from evaluator.batch.provider_submit import (
    QueueFull,
    advance,
    claim,
    drop,
    enqueued_limit,
    fits,
    fresh,
    release,
    requeue,
)
from evaluator.judge.batch_transport import BatchAPI
from evaluator.store.db import Store

MAX_LIMIT_FAILURES = 5  # creates failed for the enqueued limit before a batch is dropped and re-split
_FIGURE = re.compile(r"\blimit(?::| of)\s*(\d[\d,]*(?:\.\d+)?)\s*([KMB])?\b", re.I)
_SCALE = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def limit_figure(message: str) -> int | None:
    """The token limit a provider's enqueued-limit message states ("Limit: 2,000,000 enqueued tokens",
    Azure's "configured limit of 30K"), or None (no figure, or a limit on requests, not tokens)."""
    if re.search(r"request limit|enqueued requests", message, re.I):
        return None
    m = _FIGURE.search(message)
    if m is None:
        return None
    return int(float(m[1].replace(",", "")) * _SCALE.get((m[2] or "").upper(), 1))


def batch_errors(batch: dict[str, Any]) -> list[tuple[Any, str]]:
    """(code, message) of each error a batch carries in `errors.data` (dicts, or the SDK's objects)."""
    errors = batch.get("errors") or {}
    data = errors.get("data") if isinstance(errors, dict) else getattr(errors, "data", None)
    return [(e.get("code"), str(e.get("message"))) if isinstance(e, dict)
            else (getattr(e, "code", None), str(getattr(e, "message", e))) for e in data or []]


def limit_message(batch: dict[str, Any]) -> str | None:
    """The provider's enqueued-limit message of a failed batch (its `errors`), or None."""
    for code, message in batch_errors(batch):
        text = f"{code}: {message}" if code else message
        if enqueued_limit(text):
            return text
    return None


def _model_rows(where: str) -> str:
    return f"model = ? AND api_base IS NOT DISTINCT FROM ? AND {where}"


def limit_for(store: Store, model: str, api_base: str | None, given: int | None) -> int | None:
    """The enqueued-token limit waves keep to: `given` (0: none), else the one the latest batch of this
    model was recorded under; lowered to the figure of the provider's latest enqueued-limit message
    among batches recorded under that same setting (a new setting, e.g. after a tier upgrade, starts
    afresh); with no setting at all, that figure alone."""
    if given is None:
        given = L.scalar(store, "SELECT max_enqueued_tokens FROM batch_ledger WHERE "
                         + _model_rows("max_enqueued_tokens IS NOT NULL ORDER BY submitted_at DESC LIMIT 1"),
                         [model, api_base])
    if given == 0:
        return None
    figure = None
    for (error,) in store.con.execute(
            "SELECT error FROM batch_ledger WHERE " + _model_rows(
                "max_enqueued_tokens IS NOT DISTINCT FROM ? AND starts_with(error, ?) ORDER BY updated_at DESC"),
            [model, api_base, given, L.ENQUEUED_LIMIT]).fetchall():
        figure = limit_figure(error)
        if figure:
            break
    if given is None or figure is None:
        return figure if given is None else int(given)
    return min(int(given), figure)


def in_flight(store: Store, model: str, api_base: str | None) -> int:
    """Estimated prompt tokens of this model's batches the provider holds (or is about to)."""
    return int(L.scalar(store, "SELECT coalesce(sum(enqueued_tokens), 0) FROM batch_ledger WHERE "
                        + _model_rows("state IN (SELECT unnest(?))"), [model, api_base, list(L.IN_FLIGHT)]) or 0)


def on_limit_failure(path: Path, row: dict[str, Any], message: str) -> str:
    """A batch the provider failed for its enqueued limit: queued again for a later wave, or dropped
    (its requests rendered again by the next run, split under the limit) when it cannot fit alone.
    Returns "queued" or "dropped"."""
    figure = limit_figure(message)
    tokens = int(row.get("enqueued_tokens") or 0)
    failures = int(row.get("attempt") or 0) + 1
    if (figure and tokens > figure) or failures >= MAX_LIMIT_FAILURES:
        why = (f"{L.ENQUEUED_LIMIT}{message[:300]} (this batch's ~{tokens:,} estimated prompt tokens "
               + ("exceed that limit on their own" if figure and tokens > figure
                  else f"were refused {failures} times") + "; its requests are rendered again by the next run, "
               "split under the limit: pass --max-enqueued-tokens below the limit on your account's limits page)")
        drop(path, row["id"], why, status="failed")
        return "dropped"
    requeue(path, row["id"], message)
    return "queued"


def _promote(path: Path, row: dict[str, Any]) -> None:
    """Take a queued row to uploading (its input file is in the spool folder) or -> creating (uploaded before: the
    next create is a new attempt), with its requests back to submitted: one transaction."""
    state = "uploading" if row["input_file_id"] is None else "creating"
    attempt = int(row.get("attempt") or 0) + (state == "creating")

    def go(con: Any) -> None:
        con.execute("UPDATE batch_requests SET state = 'submitted' WHERE ledger_id = ? AND state = 'queued'",
                    [row["id"]])
        con.execute("UPDATE batch_ledger SET state = ?, attempt = ?, updated_at = ? WHERE id = ?",
                    [state, attempt, L.now(), row["id"]])

    L.write(path, go)
    row.update(state=state, attempt=attempt, updated_at=L.now())


async def wave(api: BatchAPI, path: Path, cohort: str | None, model: str, api_base: str | None,
               given: int | None) -> list[str]:
    """Submit this model's queued batches (of `cohort`; None: every cohort), oldest first, while the
    enqueued-token limit has room. Returns the ledger ids submitted."""
    def state(store: Store) -> tuple[int | None, list[dict[str, Any]]]:
        return (limit_for(store, model, api_base, given),
                L.rows(store, _model_rows("state = 'queued' AND (? IS NULL OR cohort = ?)"),
                       [model, api_base, cohort, cohort]))

    limit, rows = L.session(path, state)
    sent: list[str] = []
    for row in rows:
        if not fits(L.session(path, lambda s: in_flight(s, model, api_base)), int(row["enqueued_tokens"] or 0),
                    limit):
            break
        handle = claim(path, row["id"])
        if handle is None:
            continue  # another process is submitting it
        try:
            now = fresh(path, row["id"])
            if now is None or now["state"] != "queued":
                continue
            _promote(path, now)
            await advance(api, path, now, restart=False)
            if now["state"] == "submitted":
                sent.append(now["id"])
        except QueueFull:
            break  # the provider is full: the next wave tries again
        finally:
            release(path, row["id"], handle)
    return sent


def models(path: Path, cohort: str | None) -> list[tuple[str, str | None]]:
    """(model, api_base) of every queued batch (of `cohort`): what `batches collect` runs waves for."""
    return L.session(path, lambda s: [(m, b) for m, b in s.con.execute(
        "SELECT DISTINCT model, api_base FROM batch_ledger WHERE state = 'queued' AND (? IS NULL OR cohort = ?)",
        [cohort, cohort]).fetchall()])
