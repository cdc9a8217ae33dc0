"""Waves under the provider's enqueued-token limit (evaluator/batch/provider_waves.py), the lost-create
search through a paginated batch list, and the dry run's prompt for the mode actually sent: against the
fake batch server (tests/fakebatch.py, which enforces OpenAI's batch queue limit and paginates) over
real HTTP through litellm."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, FakeLLM
from replies import valid
from test_cohort import SAMPLES, make_cohort, query, scalar
from test_provider_batch import _input_lines, _request, batch_run, doc

from evaluator.batch.provider_batch import BatchOptions, cancel_batches, collect_batches, score_cohort_batch
from evaluator.batch.provider_submit import enqueued_limit
from evaluator.batch.provider_waves import limit_figure

OPENAI = ("Enqueued token limit reached for gpt-4o-mini in organization org-snq6hvcTYRCMyB87hjZjkoFr. Limit: "
          "2,000,000 enqueued tokens. Please try again once some in_progress batches have been completed.")
AZURE = ("The number of enqueued tokens has surpassed the configured limit of 30K for the deployment "
         "'gpt-4.1-batch'. Please either increase the limit or try again once the current jobs have finished.")
REQUESTS = ("Enqueued request limit reached for text-embedding-3-small in organization org-XXXXXX. Limit: "
            "1,000,000 enqueued requests. Please try again once some in_progress batches have been completed.")


@pytest.fixture(autouse=True)
def _clean_env(isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALUATOR_TEST_CRASH_AT", raising=False)


def test_provider_limit_messages_are_recognised_with_their_figure() -> None:
    assert enqueued_limit(f"token_limit_exceeded: {OPENAI}") and limit_figure(OPENAI) == 2_000_000
    assert enqueued_limit(AZURE) and limit_figure(AZURE) == 30_000
    assert enqueued_limit(REQUESTS) and limit_figure(REQUESTS) is None  # a limit on requests, not tokens
    for other in ("Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
                  "This request could not be executed before the completion window expired.",
                  "Rate limit reached for gpt-4o-mini on tokens per min (TPM): Limit 200000, Used 1"):
        assert not enqueued_limit(other)


def requests_per_batch(fake: FakeLLM) -> Counter[str]:
    """How many created batches each custom_id went into (a request is never submitted twice)."""
    return Counter(line["custom_id"] for lines in _input_lines(fake) for line in lines)


def completed_once(fake: FakeLLM) -> Counter[str]:
    """How many *completed* batches each custom_id was answered in."""
    st = fake.batch_state
    seen: Counter[str] = Counter()
    for b in st.batches.values():
        if b["status"] == "completed" and b.get("output_file_id"):
            for line in st.files[b["output_file_id"]][1].splitlines():
                seen[json.loads(line)["custom_id"]] += 1
    return seen


def test_max_enqueued_tokens_submits_in_waves(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 4)
    fake_llm.script(Call(valid))
    st = fake_llm.batch_state
    st.enqueued_token_limit = 10**9  # the server validates and tracks what is enqueued at once
    first = score_cohort_batch(_request(fake_llm, folder, db), BatchOptions(max_enqueued_tokens=1))
    # a limit below one request: one request per input file, one batch in flight at a time
    assert first.skipped == 4 and first.batch_pending == 4
    assert "3 batch(es) (3 request(s)) queued under the enqueued-token limit" in first.message, first.message
    rows = query(db, "SELECT state, n_requests, enqueued_tokens, max_enqueued_tokens, input_file_id FROM batch_ledger "
                     "ORDER BY submitted_at")
    assert [r["state"] for r in rows] == ["submitted", "queued", "queued", "queued"]
    assert all(r["n_requests"] == 1 and r["enqueued_tokens"] > 500 and r["max_enqueued_tokens"] == 1 for r in rows)
    assert [r["input_file_id"] is None for r in rows] == [False, True, True, True]  # queued: not even uploaded
    assert fake_llm.batch_creates == 1
    assert scalar(db, "SELECT count(*) FROM batch_requests WHERE state = 'queued'") == 3
    assert len(list((tmp_path / "s.duckdb.batches").glob("*.jsonl"))) == 3  # their input files wait in the spool
    # `batches collect` polls, and submits the next wave once the first batch is done (the limit is remembered)
    st.steps_to_finish = 1
    polled = collect_batches(db, None)
    assert any(p["status"] == "submitted in this wave" for p in polled), polled
    assert fake_llm.batch_creates == 2
    # --wait to the end without passing the limit again: one batch at the provider at a time
    st.steps_to_finish = 2
    notices: list[str] = []
    final = score_cohort_batch(_request(fake_llm, folder, db), BatchOptions(wait=True, poll_seconds=0.0),
                               notice=notices.append)
    assert final.scored == 4 and final.batch_pending == 0, final
    assert fake_llm.batch_creates == 4 and st.limit_failures == 0
    assert 0 < st.peak_enqueued <= max(b["_tokens"] for b in st.batches.values())
    assert set(requests_per_batch(fake_llm).values()) == {1}
    assert any("queued for a later wave" in n for n in notices), notices
    assert not fake_llm.chat_requests
    assert not list((tmp_path / "s.duckdb.batches").glob("*.jsonl"))


def test_a_batch_failed_for_the_queue_limit_goes_in_a_later_wave_not_counted_as_a_retry(
        fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 4, sample=SAMPLES[0])  # four prompts of (nearly) one size
    fake_llm.script(Call(valid))
    st = fake_llm.batch_state
    # no --max-enqueued-tokens: both batches are submitted at once, as before
    score_cohort_batch(_request(fake_llm, folder, db), BatchOptions(max_requests=2))
    assert fake_llm.batch_creates == 2
    st.enqueued_token_limit = int(max(b["_tokens"] for b in st.batches.values()) * 1.5)  # room for one
    final = score_cohort_batch(_request(fake_llm, folder, db),
                               BatchOptions(max_requests=2, wait=True, poll_seconds=0.0))
    assert final.scored == 4 and final.unscored == 0, final
    assert st.limit_failures == 1
    assert fake_llm.batch_creates == 3  # the refused batch created again...
    uploads = [f for f in st.files.values() if f[0].startswith("evaluator-")]
    assert len(uploads) == 2  # ...from the file it had uploaded
    rows = query(db, "SELECT attempt, error, state FROM batch_ledger ORDER BY submitted_at")
    assert [r["attempt"] for r in rows] == [0, 1] and {r["state"] for r in rows} == {"done"}
    assert rows[1]["error"].startswith("enqueued limit: token_limit_exceeded: Enqueued token limit reached")
    assert scalar(db, "SELECT count(*) FROM batch_requests WHERE state <> 'done'") == 0
    assert set(completed_once(fake_llm).values()) == {1} and len(completed_once(fake_llm)) == 4


def test_a_batch_over_the_providers_figure_alone_is_split_by_the_next_run(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 4, sample=SAMPLES[0])
    fake_llm.script(Call(valid))
    st = fake_llm.batch_state
    score_cohort_batch(_request(fake_llm, folder, db), BatchOptions())
    (batch,) = st.batches.values()
    st.enqueued_token_limit = int(batch["_tokens"] / 4 * 1.2)  # one request fits, the batch of four never
    final = score_cohort_batch(_request(fake_llm, folder, db), BatchOptions(wait=True, poll_seconds=0.0))
    assert final.scored == 4 and final.unscored == 0, final
    rows = query(db, "SELECT n_requests, provider_status, error FROM batch_ledger ORDER BY submitted_at")
    assert rows[0]["provider_status"] == "failed" and "exceed that limit on their own" in rows[0]["error"]
    assert [r["n_requests"] for r in rows[1:]] == [1, 1, 1, 1]  # split under the figure the provider gave
    assert scalar(db, "SELECT count(*) FROM batch_requests WHERE state = 'dropped'") == 4
    assert st.limit_failures == 1 and set(completed_once(fake_llm).values()) == {1}


def test_cancel_closes_queued_batches(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Call(valid))
    score_cohort_batch(_request(fake_llm, folder, db), BatchOptions(max_enqueued_tokens=1))
    out = cancel_batches(db, None)
    assert sorted(o["status"] for o in out) == ["cancelled", "cancelling"]
    assert scalar(db, "SELECT count(*) FROM batch_requests WHERE state = 'queued'") == 0
    assert not list((tmp_path / "s.duckdb.batches").glob("*.jsonl"))
    assert fake_llm.batch_creates == 1


def until_nothing_waits(fake: FakeLLM, folder: Path, db: Path, *extra: str, rounds: int = 10) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for _ in range(rounds):
        d = doc(batch_run(fake, folder, db, *extra))
        if not scalar(db, "SELECT count(*) FROM batch_requests WHERE state IN ('submitted', 'queued')"):
            return doc(batch_run(fake, folder, db, *extra)) if d["skipped"] else d
    raise AssertionError(f"batches never finished: {d}")


@pytest.mark.parametrize("point", ["after_record", "after_upload", "after_create", "during_download"])
def test_sigkill_in_a_wave_never_submits_twice_nor_loses_results(fake_llm: FakeLLM, tmp_path: Path,
                                                                 point: str) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 3)
    fake_llm.script(Call(valid))
    fake_llm.batch_state.steps_to_finish = 1
    flag = ("--max-enqueued-tokens", "1")  # one request per batch, one batch in flight at a time
    if point == "after_record":  # killed while recording the first run's batches
        killed = batch_run(fake_llm, folder, db, *flag, crash=point)
    else:  # the first run submits one batch and queues two; the next collects it and is killed in its wave
        first = doc(batch_run(fake_llm, folder, db, *flag))
        assert first["batch_pending"] == 3 and fake_llm.batch_creates == 1
        killed = batch_run(fake_llm, folder, db, *flag, crash=point)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    final = until_nothing_waits(fake_llm, folder, db)  # the limit is remembered by the ledger
    assert final["scored"] == 3, final
    assert set(requests_per_batch(fake_llm).values()) == {1}  # never submitted twice
    assert fake_llm.batch_creates == 3
    assert scalar(db, "SELECT count(*) FROM judgments WHERE status = 'scored'") == 3
    assert scalar(db, "SELECT count(DISTINCT custom_id) FROM batch_requests WHERE state = 'done'") == 3


def test_lost_create_is_found_past_the_first_page_of_the_batch_list(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Call(valid))
    killed = batch_run(fake_llm, folder, db, crash="after_create")
    assert killed.returncode == -9
    st = fake_llm.batch_state
    st.foreign(150)  # other users' batches, newer than ours: ours is on the list's second page
    final = until_nothing_waits(fake_llm, folder, db)
    assert final["scored"] == 2, final
    assert fake_llm.batch_creates == 1  # found, not created again
    assert st.list_calls >= 2


def test_dry_run_estimates_the_prompt_of_the_mode_that_is_sent(fake_llm: FakeLLM, tmp_path: Path) -> None:
    from evaluator.batch import provider_ledger as L
    from evaluator.store.db import open_store

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)

    def estimate() -> dict[str, Any]:
        req = _request(fake_llm, folder, db, dry_run=True)
        req.judge.input_cost_per_token, req.judge.output_cost_per_token = 1e-6, 2e-6
        est = score_cohort_batch(req, BatchOptions(max_enqueued_tokens=1000)).estimate
        assert est is not None
        return est

    enforced = estimate()
    # the heuristic the submission counts (no --max-cost): ~1.25 x the tokenizer's count, never under it
    assert enforced["prompt_tokens"] < enforced["batch_enqueued_tokens"] < 1.5 * enforced["prompt_tokens"]
    assert enforced["batch_waves"] == -(-enforced["batch_enqueued_tokens"] // 1000)
    with open_store(db) as store:  # a batch of this model was refused for json_schema: next come json_object
        store.con.execute("INSERT INTO batch_ledger (id, provider, model, api_base, state, input_sha256, n_requests, "
                          "submitted_at, error) VALUES ('x', 'openai', ?, ?, 'done', '', 0, now(), ?)",
                          ["openai/test-model", fake_llm.base_url,
                           f"{L.FORMAT_REJECTED}json_schema: not supported with this model"])
    shown = estimate()
    # the reply's shape goes into the system message when the schema is not enforced (~640 characters)
    grew = shown["prompt_tokens"] - enforced["prompt_tokens"]
    assert 2 * 100 < grew < 2 * 400, grew
    assert fake_llm.batch_creates == 0 and not fake_llm.chat_requests


def test_sigkill_after_creating_a_refused_batch_again_never_creates_it_twice(fake_llm: FakeLLM,
                                                                            tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 4, sample=SAMPLES[0])
    fake_llm.script(Call(valid))
    st = fake_llm.batch_state
    score_cohort_batch(_request(fake_llm, folder, db), BatchOptions(max_requests=2))  # two batches at once
    st.enqueued_token_limit = int(max(b["_tokens"] for b in st.batches.values()) * 1.5)
    doc(batch_run(fake_llm, folder, db))  # the first validates, the second is failed for the limit: queued
    assert scalar(db, "SELECT count(*) FROM batch_ledger WHERE state = 'queued' AND input_file_id IS NOT NULL") == 1
    # the first finishes; its wave creates the refused batch again (attempt 1) and is killed before the ledger
    # hears of it: the next run finds that create by its metadata, not the failed attempt 0 of the same row
    killed = batch_run(fake_llm, folder, db, crash="after_create")
    assert killed.returncode == -9
    final = until_nothing_waits(fake_llm, folder, db)
    assert final["scored"] == 4 and final["unscored"] == 0, final
    assert fake_llm.batch_creates == 3 and st.limit_failures == 1
    metas = [b["metadata"] for b in st.batches.values()]
    assert sorted(m["evaluator_attempt"] for m in metas) == ["0", "0", "1"]
    assert set(completed_once(fake_llm).values()) == {1} and len(completed_once(fake_llm)) == 4


def test_the_limit_is_remembered_and_lowered_to_the_figure_the_provider_gave(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    from evaluator.batch import provider_ledger as L
    from evaluator.batch.provider_waves import limit_for
    from evaluator.store.db import open_store

    t0 = datetime(2026, 1, 1)
    with open_store(tmp_path / "s.duckdb") as store:
        def row(i: int, setting: int | None, error: str | None) -> None:
            store.con.execute("INSERT INTO batch_ledger (id, provider, model, state, input_sha256, n_requests, "
                              "submitted_at, updated_at, max_enqueued_tokens, error) "
                              "VALUES (?, 'openai', 'openai/m', 'done', '', 0, ?, ?, ?, ?)",
                              [str(i), t0 + timedelta(seconds=i), t0 + timedelta(seconds=i), setting, error])

        assert limit_for(store, "openai/m", None, None) is None  # nothing known: no limit
        row(1, None, f"{L.ENQUEUED_LIMIT}token_limit_exceeded: {OPENAI}")
        assert limit_for(store, "openai/m", None, None) == 2_000_000  # the provider's figure
        assert limit_for(store, "openai/m", None, 5_000_000) == 5_000_000  # a setting starts afresh (a new tier)
        row(2, 5_000_000, None)
        assert limit_for(store, "openai/m", None, None) == 5_000_000  # remembered
        row(3, 5_000_000, f"{L.ENQUEUED_LIMIT}token_limit_exceeded: {AZURE}")
        assert limit_for(store, "openai/m", None, None) == 30_000  # lowered to the figure given under it
        assert limit_for(store, "openai/m", None, 0) is None
        assert limit_for(store, "openai/m", "http://elsewhere/v1", None) is None


def test_wait_splits_and_resubmits_a_batch_the_provider_refused_in_a_later_poll(fake_llm: FakeLLM,
                                                                               tmp_path: Path) -> None:
    import fakebatch

    fake_llm.script(Call(valid))
    make_cohort(tmp_path / "probe", 4, sample=SAMPLES[0], tag="p")  # what one request weighs at the server
    score_cohort_batch(_request(fake_llm, tmp_path / "probe", tmp_path / "p.duckdb"), BatchOptions())
    (probe,) = fake_llm.batch_state.batches.values()
    fake_llm.batch_state = st = fakebatch.BatchState(enqueued_token_limit=int(probe["_tokens"] / 4 * 1.2))
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 4, sample=SAMPLES[0])
    # one --wait call: it submits one batch of four, whose refusal the first poll finds; the batch is too
    # big for the figure on its own, so the same call renders its requests again, split, and goes on
    final = score_cohort_batch(_request(fake_llm, folder, db), BatchOptions(wait=True, poll_seconds=0.0))
    assert final.scored == 4 and final.batch_pending == 0, final
    assert st.limit_failures == 1 and st.creates == 5
    assert set(completed_once(fake_llm).values()) == {1} and len(completed_once(fake_llm)) == 4
