"""`evaluate cohort --batch` against the fake batch server (tests/fakebatch.py) over real HTTP through
litellm: submit -> ledger -> collect -> judgments through the normal parse path; crash safety with
SIGKILL at each step (EVALUATOR_TEST_CRASH_AT), checked with SQL and the server's create count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, FakeLLM, Reply
from replies import valid
from test_cohort import cohort_args, make_cohort, query, scalar


@pytest.fixture(autouse=True)
def _clean_env(isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALUATOR_TEST_CRASH_AT", raising=False)


def run_cli(fake: FakeLLM, *args: str, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if crash:
        env["EVALUATOR_TEST_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-c", "from evaluator.cli import run; run()", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def batch_run(fake: FakeLLM, folder: Path, db: Path, *extra: str, crash: str | None = None) -> subprocess.CompletedProcess:
    return run_cli(fake, *cohort_args(folder, db, "--batch", *extra, base_url=fake.base_url), crash=crash)


def doc(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def run_until_done(fake: FakeLLM, folder: Path, db: Path, *extra: str, rounds: int = 6) -> dict[str, Any]:
    for _ in range(rounds):
        d = doc(batch_run(fake, folder, db, *extra))
        if not scalar(db, "SELECT count(*) FROM batch_requests WHERE state = 'submitted'"):
            return doc(batch_run(fake, folder, db, *extra)) if d["skipped"] else d
    raise AssertionError("batches never finished")


def test_submit_then_collect_stores_judgments_through_the_normal_path(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 4)
    fake_llm.script(Call(valid))
    first = doc(batch_run(fake_llm, folder, db))
    assert first["skipped"] == 4 and first["scored"] == 0
    assert "await the provider" in first["message"]
    assert fake_llm.batch_creates == 1
    assert not fake_llm.chat_requests  # nothing judged live
    ledger = query(db, "SELECT state, batch_id, input_file_id, n_requests FROM batch_ledger")
    assert len(ledger) == 1 and ledger[0]["state"] == "submitted" and ledger[0]["batch_id"]
    assert ledger[0]["n_requests"] == 4
    assert scalar(db, "SELECT count(DISTINCT cache_key) FROM batch_requests") == 4
    final = run_until_done(fake_llm, folder, db)
    assert final["scored"] == 4, final
    assert fake_llm.batch_creates == 1
    assert not fake_llm.chat_requests
    assert scalar(db, "SELECT count(*) FROM judgments WHERE status = 'scored'") == 4
    # the batch replies are ordinary cache entries: a live run pays for nothing
    live = doc(run_cli(fake_llm, *cohort_args(folder, db, base_url=fake_llm.base_url)))
    assert live["cached"] == 4 and not fake_llm.chat_requests
    listed = json.loads(run_cli(fake_llm, "batches", "--db", str(db), "--format", "json").stdout)
    assert listed[0]["state"] == "done" and listed[0]["requests"] == {"done": 4}


def test_invalid_batch_reply_is_repaired_live(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Reply("not json at all"), Call(valid))
    doc(batch_run(fake_llm, folder, db))
    final = run_until_done(fake_llm, folder, db)
    assert final["scored"] == 2, final
    assert len(fake_llm.chat_requests) == 1  # one repair, live
    assert scalar(db, "SELECT count(*) FROM judgments j WHERE flags::VARCHAR LIKE '%repaired%'") == 1


def test_expired_requests_retried_once_then_unscored_with_reason(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 3)
    fake_llm.script(Call(valid))
    fake_llm.batch_state.expire_after = 2  # partial failure: the third request expires
    doc(batch_run(fake_llm, folder, db))
    doc(batch_run(fake_llm, folder, db))
    doc(batch_run(fake_llm, folder, db))
    assert fake_llm.batch_creates == 2  # the expired request went into a new batch
    fake_llm.batch_state.expire_after = 0  # and expires again
    final = run_until_done(fake_llm, folder, db)
    assert fake_llm.batch_creates == 2
    assert final["scored"] == 2 and final["unscored"] == 1, final
    reason = scalar(db, "SELECT reason FROM judgments WHERE status = 'unscored'")
    assert "batch_expired" in reason


@pytest.mark.parametrize("point", ["after_upload", "after_create", "during_download"])
def test_sigkill_never_submits_twice_nor_loses_results(fake_llm: FakeLLM, tmp_path: Path, point: str) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 3)
    fake_llm.script(Call(valid))
    if point == "during_download":
        doc(batch_run(fake_llm, folder, db))
        batch_run(fake_llm, folder, db)  # in_progress
        killed = batch_run(fake_llm, folder, db, crash=point)
    else:
        killed = batch_run(fake_llm, folder, db, crash=point)
    assert killed.returncode == -9
    downloads = sorted(db.with_name(db.name + ".batches").glob("*.download"))
    if point == "during_download":  # killed with the result file half on disk: left for the next run to tidy
        assert len(downloads) == 1 and downloads[0].stat().st_size > 0
    final = run_until_done(fake_llm, folder, db)
    assert final["scored"] == 3, final
    assert not list(db.with_name(db.name + ".batches").glob("*.download"))  # the killed run's file deleted
    assert fake_llm.batch_creates == 1  # never created twice
    assert scalar(db, "SELECT count(*) FROM batch_requests") == 3
    assert scalar(db, "SELECT count(*) FROM judgments WHERE status = 'scored'") == 3


def test_cancel(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Call(valid))
    doc(batch_run(fake_llm, folder, db))
    out = run_cli(fake_llm, "batches", "cancel", "--db", str(db), "--format", "json")
    assert json.loads(out.stdout)[0]["status"] == "cancelling", out.stderr
    run_cli(fake_llm, "batches", "collect", "--db", str(db), "--format", "json")
    rows = query(db, "SELECT state, provider_status FROM batch_ledger")
    assert rows == [{"state": "done", "provider_status": "cancelled"}]
    assert scalar(db, "SELECT count(*) FROM batch_requests WHERE state = 'cancelled'") == 2


def test_dry_run_shows_both_prices(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    d = doc(batch_run(fake_llm, folder, db, "--dry-run", "--price-in", "1", "--price-out", "2"))
    est = d["estimate"]
    assert est["batch_discount"] == 0.5
    usd = [k for k in est if k.endswith("_usd") and not k.startswith("batch_") and est[k]]
    assert usd and all(est[f"batch_{k}"] == pytest.approx(est[k] * 0.5) for k in usd)
    assert fake_llm.batch_creates == 0


def _request(fake: FakeLLM, folder: Path, db: Path, **kw: Any) -> Any:
    from evaluator.batch.types import CohortRequest
    from evaluator.pipeline import JudgeOptions

    judge = JudgeOptions(model="openai/test-model", api_base=fake.base_url, timeout=20.0, retry_initial_wait=0.01)
    return CohortRequest(path=folder, cohort="c1", judge=judge, db=db, **kw)


def test_split_by_request_and_byte_limits_and_wait(fake_llm: FakeLLM, tmp_path: Path) -> None:
    from evaluator.batch.provider_batch import BatchOptions, score_cohort_batch

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 5)
    fake_llm.script(Call(valid))
    notices: list[str] = []
    summary = score_cohort_batch(_request(fake_llm, folder, db),
                                 BatchOptions(wait=True, poll_seconds=0.0, max_requests=2), notice=notices.append)
    assert summary.scored == 5 and summary.skipped == 0
    assert fake_llm.batch_creates == 3  # 2 + 2 + 1
    assert [r["n_requests"] for r in query(db, "SELECT n_requests FROM batch_ledger ORDER BY n_requests DESC")] == [2, 2, 1]
    assert any("request(s) at the provider" in n and "next poll" in n for n in notices)
    # the byte limit: one line per batch when a batch holds fewer bytes than two lines
    make_cohort(tmp_path / "more", 2, tag="b")
    one_line = scalar(db, "SELECT max(input_bytes) FROM batch_ledger WHERE n_requests = 1")
    score_cohort_batch(_request(fake_llm, tmp_path / "more", db), BatchOptions(max_bytes=int(one_line * 1.5)))
    assert fake_llm.batch_creates == 5


def test_max_cost_reserves_the_batch_worst_case(fake_llm: FakeLLM, tmp_path: Path) -> None:
    from test_cohort import SAMPLES

    from evaluator.batch.provider_batch import BatchOptions, score_cohort_batch

    folder = tmp_path / "rounds"
    make_cohort(folder, 4, sample=SAMPLES[0])  # four prompts of (nearly) one size

    def run(db: Path, max_cost: float | None) -> Any:
        req = _request(fake_llm, folder, db, max_cost=max_cost, concurrency=1)
        req.judge.input_cost_per_token, req.judge.output_cost_per_token = 1e-6, 2e-6
        req.judge.repair_attempts = 0  # the live reservation per judgment is then one call's worst case
        return score_cohort_batch(req, BatchOptions())

    run(tmp_path / "a.duckdb", None)
    each = scalar(tmp_path / "a.duckdb", "SELECT max(worst_cost_usd / n_requests) FROM batch_ledger")
    assert each > 0
    summary = run(tmp_path / "b.duckdb", 2.5 * each)
    assert scalar(tmp_path / "b.duckdb", "SELECT sum(n_requests) FROM batch_ledger") == 2
    assert any("--max-cost: 2 request(s) not submitted" in w["warning"] for w in summary.warnings)


@pytest.mark.real_provider
def test_real_openai_batch_submits(tmp_path: Path) -> None:
    if not os.environ.get("OPENAI_API_KEY"):
        pytest.skip("OPENAI_API_KEY not set: real-provider test skipped")
    from evaluator.batch.provider_batch import BatchOptions, cancel_batches, score_cohort_batch
    from evaluator.batch.types import CohortRequest
    from evaluator.pipeline import JudgeOptions

    folder, db = tmp_path / "rounds", tmp_path / "real.duckdb"
    make_cohort(folder, 1)
    model = os.environ.get("EVALUATOR_TEST_OPENAI_MODEL", "openai/gpt-4o-mini")
    summary = score_cohort_batch(CohortRequest(path=folder, cohort="real", judge=JudgeOptions(model=model), db=db),
                                 BatchOptions())
    assert summary.skipped == 1 and scalar(db, "SELECT count(*) FROM batch_ledger WHERE batch_id IS NOT NULL") == 1
    assert cancel_batches(db, "real", os.environ["OPENAI_API_KEY"])


def _input_lines(fake: FakeLLM) -> list[list[dict[str, Any]]]:
    """The request lines of every batch the server created, oldest first."""
    st = fake.batch_state
    batches = list(st.batches.values())  # creation order (created_at has whole seconds: ties are common)
    return [[json.loads(ln) for ln in st.files[b["input_file_id"]][1].splitlines() if ln.strip()] for b in batches]


def test_submission_exits_0_results_pending_and_the_ledger_keeps_no_bodies(fake_llm: FakeLLM, tmp_path: Path) -> None:
    import hashlib

    from support import cohort

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 3)
    fake_llm.script(Call(valid))
    run = cohort(folder, db, "--batch", "--fail-under", "4.5", base_url=fake_llm.base_url)
    assert run.code == 0, run.stdout + run.stderr
    d = run.doc
    assert d["batch_pending"] == 3 and d["exit_code"] == 0 and d["skipped"] == 3
    assert "results pending: 3 transcript(s) await the provider" in d["message"]
    assert "run the same command again to collect" in d["message"]
    # the ledger holds each request's envelope: no messages, the format as its type, the messages' hash
    (line,) = _input_lines(fake_llm)[0][:1]
    row = query(db, "SELECT body FROM batch_requests WHERE custom_id = ?", [line["custom_id"]])[0]
    env = json.loads(row["body"])
    assert "messages" not in env and env["response_format"] == {"type": "json_schema"}
    messages = line["body"]["messages"]
    assert env["messages_sha256"] == hashlib.sha256(
        json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert line["custom_id"] == hashlib.sha256(
        json.dumps(line["body"], sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert len(row["body"]) < 600 < len(json.dumps(line["body"]))
    assert not list((tmp_path / "s.duckdb.batches").glob("*"))  # the spool is emptied once submitted
    # once every reply is in, the gate applies to the whole cohort (the valid replies score 3)
    fake_llm.batch_state.steps_to_finish = 1
    last = cohort(folder, db, "--batch", "--fail-under", "4.5", base_url=fake_llm.base_url)
    assert last.doc["scored"] == 3 and last.doc["batch_pending"] == 0 and last.code == 4, last.stdout


def test_batch_repairs_go_into_a_follow_up_batch(fake_llm: FakeLLM, tmp_path: Path) -> None:
    from support import cohort

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Reply("not json at all"), Call(valid))
    fake_llm.batch_state.steps_to_finish = 1
    first = cohort(folder, db, "--batch", "--batch-repairs", base_url=fake_llm.base_url)
    assert first.code == 0 and first.doc["batch_pending"] == 2
    second = cohort(folder, db, "--batch", "--batch-repairs", base_url=fake_llm.base_url)
    assert second.code == 0, second.stdout + second.stderr
    assert second.doc["scored"] == 1 and second.doc["batch_pending"] == 1
    assert fake_llm.batch_creates == 2  # the repair went into a new batch, recorded like any other
    assert scalar(db, "SELECT count(*) FROM batch_ledger WHERE state = 'submitted'") == 1
    third = cohort(folder, db, "--batch", "--batch-repairs", base_url=fake_llm.base_url)
    assert third.code == 0 and third.doc["scored"] == 2 and third.doc["batch_pending"] == 0, third.stdout
    assert not fake_llm.chat_requests  # nothing went live
    assert fake_llm.batch_creates == 2
    # the repair conversation: the original messages, the model's reply, the repair message
    first_lines, (repair,) = _input_lines(fake_llm)
    sent = repair["body"]["messages"]
    original = next(ln for ln in first_lines if ln["body"]["messages"] == sent[:len(ln["body"]["messages"])])
    n = len(original["body"]["messages"])
    assert sent[n] == {"role": "assistant", "content": "not json at all"}
    assert sent[n + 1]["role"] == "user" and len(sent) == n + 2
    env = json.loads(scalar(db, "SELECT body FROM batch_requests WHERE custom_id = ?", [repair["custom_id"]]))
    assert env["n_messages"] == n + 2
    assert scalar(db, "SELECT count(*) FROM judgments WHERE flags::VARCHAR LIKE '%repaired%'") == 1


@pytest.mark.parametrize("reject_as", ["batch", "requests"])
def test_batch_refused_for_json_schema_steps_down_to_json_object(fake_llm: FakeLLM, tmp_path: Path,
                                                                 reject_as: str) -> None:
    from support import cohort

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Call(valid))
    st = fake_llm.batch_state
    st.steps_to_finish, st.reject_format, st.reject_as = 1, "json_schema", reject_as
    assert cohort(folder, db, "--batch", base_url=fake_llm.base_url).code == 0
    second = cohort(folder, db, "--batch", base_url=fake_llm.base_url)
    assert second.code == 0 and second.doc["batch_pending"] == 2, second.stdout
    assert fake_llm.batch_creates == 2
    errors = [r["error"] for r in query(db, "SELECT error FROM batch_ledger ORDER BY submitted_at")]
    assert errors[0].startswith("response_format rejected: json_schema: ") and errors[1] is None
    first_lines, again = _input_lines(fake_llm)
    assert {ln["body"]["response_format"]["type"] for ln in first_lines} == {"json_schema"}
    assert {ln["body"]["response_format"]["type"] for ln in again} == {"json_object"}
    final = cohort(folder, db, "--batch", base_url=fake_llm.base_url)
    assert final.code == 0 and final.doc["scored"] == 2, final.stdout
    assert fake_llm.batch_creates == 2 and not fake_llm.chat_requests
    assert scalar(db, "SELECT count(*) FROM judgments WHERE flags::VARCHAR LIKE '%json_schema -> json_object%'") == 2


@pytest.mark.parametrize("spool", ["kept", "lost"])
def test_killed_after_recording_uploads_from_the_spool_or_drops_the_batch(fake_llm: FakeLLM, tmp_path: Path,
                                                                          spool: str) -> None:
    import shutil

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Call(valid))
    assert batch_run(fake_llm, folder, db, crash="after_record").returncode == -9
    assert scalar(db, "SELECT state FROM batch_ledger") == "uploading"
    assert len(list((tmp_path / "s.duckdb.batches").glob("*.jsonl"))) == 1
    if spool == "lost":
        shutil.rmtree(tmp_path / "s.duckdb.batches")
    final = run_until_done(fake_llm, folder, db)
    assert final["scored"] == 2, final
    assert fake_llm.batch_creates == 1
    if spool == "lost":  # never reached the provider: closed, its requests rendered and submitted again
        rows = query(db, "SELECT provider_status, n_requests FROM batch_ledger ORDER BY submitted_at")
        assert rows[0]["provider_status"] == "not_submitted" and rows[1]["n_requests"] == 2
        assert scalar(db, "SELECT count(*) FROM batch_requests WHERE state = 'dropped'") == 2


def test_anthropic_batches_are_refused_clearly(tmp_path: Path) -> None:
    from support import cohort

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 1)
    run = cohort(folder, db, "--batch", "--model", "anthropic/claude-3-5-haiku-latest")
    assert run.code == 2, run.stdout + run.stderr
    assert "litellm cannot create Anthropic Message Batches" in json.loads(run.stdout)["error"]
    assert not db.exists() or not scalar(db, "SELECT count(*) FROM batch_ledger")


def test_litellm_still_cannot_create_anthropic_batches(fake_llm: FakeLLM) -> None:
    """Pins the reason `check_batch_provider` gives: when litellm learns to create Anthropic Message
    Batches this fails, and --batch should route them (retrieve and results already work)."""
    import asyncio

    from evaluator.judge.litellm_client import load_litellm

    ll = load_litellm()
    for call in (lambda: ll.acreate_batch(completion_window="24h", endpoint="/v1/chat/completions",
                                          input_file_id="file-x", custom_llm_provider="anthropic",
                                          api_base=fake_llm.base_url, api_key="k"),
                 lambda: ll.acancel_batch(batch_id="msgbatch_x", custom_llm_provider="anthropic",
                                          api_base=fake_llm.base_url, api_key="k")):
        with pytest.raises(Exception, match="doesn.t support"):
            asyncio.run(call())
    assert fake_llm.batch_creates == 0


def test_a_result_file_being_downloaded_is_kept_while_its_writer_lives(tmp_path: Path) -> None:
    """tidy_spool deletes a download a killed run left (its lock is free), never one a live collect
    is writing or reading back (it holds the lock), nor a spool file still waiting for its upload."""
    from evaluator.batch import provider_ledger as L
    from evaluator.batch.journal import try_lock

    db = tmp_path / "s.duckdb"
    folder = L.spool_dir(db)
    folder.mkdir()
    orphan, live, waiting = folder / "a.1.download", folder / "b.2.download", folder / "b.jsonl"
    for f in (orphan, live, waiting):
        f.write_bytes(b"{}\n")
    with live.open("rb") as handle:
        assert try_lock(handle)
        assert L.tidy_spool(db, keep={"b"}) == 1
    assert not orphan.exists() and live.exists() and waiting.exists()


@pytest.mark.parametrize("action", ["list", "collect", "cancel"])
def test_batches_refuse_a_missing_database_as_runs_does_and_never_create_it(tmp_path: Path, action: str) -> None:
    """`evaluate batches --db TYPO` used to create an empty database and say "no provider batches"."""
    from typer.testing import CliRunner

    from evaluator.cli import app

    db = tmp_path / "nosuch.duckdb"
    runs = CliRunner().invoke(app, ["runs", "--db", str(db)])
    got = CliRunner().invoke(app, ["batches", action, "--db", str(db)])
    assert runs.exit_code == 2 and got.exit_code == runs.exit_code, got.output
    assert " ".join(got.stderr.split()) == " ".join(runs.stderr.split())
    assert "no database at" in " ".join(got.stderr.split())
    assert not db.exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_batch_without_a_model_is_refused_for_a_dry_run_too(tmp_path: Path, dry_run: bool) -> None:
    """A dry run used to estimate 0 calls / $0 for the baseline, which has no batch API at all."""
    from typer.testing import CliRunner

    from evaluator.cli import app

    folder = tmp_path / "t"
    make_cohort(folder, 2)
    db = tmp_path / "e.duckdb"
    args = ["cohort", str(folder), "--cohort", "s", "--batch", "--db", str(db)] + (["--dry-run"] if dry_run else [])
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "--batch needs an LLM judge: pass --model" in " ".join(r.stderr.split())
    assert "Traceback" not in r.output


@pytest.mark.parametrize("bad", ["missing folder", "empty folder", "empty manifest", "unknown rubric"])
def test_batch_with_bad_input_is_refused_before_the_database_is_created(tmp_path: Path, bad: str) -> None:
    """A batch cycle opens the store (to reconcile and collect earlier batches) before it reads a
    transcript: a typo in the input or the rubric used to leave an empty database behind."""
    from typer.testing import CliRunner

    from evaluator.cli import app

    folder = tmp_path / "t"
    make_cohort(folder, 2)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.csv").write_text("")
    path, extra, says = {
        "missing folder": (tmp_path / "nosuch", [], "cohort input not found"),
        "empty folder": (tmp_path / "empty", [], "no transcripts found"),
        "empty manifest": (tmp_path / "empty.csv", [], "needs a 'path' column"),
        "unknown rubric": (folder, ["--rubric", "nosuch"], "unknown rubric 'nosuch'"),
    }[bad]
    db = tmp_path / "e.duckdb"
    r = CliRunner().invoke(app, ["cohort", str(path), "--cohort", "s", "--batch", "--model", "openai/test-model",
                                 "--api-base", "http://127.0.0.1:9/v1", "--db", str(db), *extra])
    assert r.exit_code == 2, r.output
    assert says in " ".join(r.stderr.split())
    assert not db.exists() and not list(tmp_path.glob("e.duckdb*"))


def test_a_run_leaves_no_client_to_close_on_a_later_loop(fake_llm: FakeLLM, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A run closes the HTTP clients litellm made for its calls before its event loop ends. Left to
    the garbage collector, one freed while a later loop of the process ran (the next run, here the
    loop below) was closed there and failed ("Event loop is closed", logged by asyncio as a task
    exception nobody retrieved)."""
    import asyncio
    import gc
    import logging

    from evaluator.batch.provider_batch import BatchOptions, score_cohort_batch

    folder, db = tmp_path / "rounds", tmp_path / "s.duckdb"
    make_cohort(folder, 2)
    fake_llm.script(Call(valid))
    caplog.set_level(logging.ERROR, logger="asyncio")

    async def later() -> None:
        gc.collect()  # what the run dropped is freed now, while this loop runs
        await asyncio.sleep(0.2)

    gc.collect()
    gc.disable()  # nothing of the run is freed before the later loop (the collector's timing is not the test's)
    try:
        summary = score_cohort_batch(_request(fake_llm, folder, db), BatchOptions())
        asyncio.run(later())
    finally:
        gc.enable()
    gc.collect()
    assert summary.skipped == 2 and fake_llm.batch_creates == 1
    assert not [r for r in caplog.records if r.name == "asyncio"], [r.getMessage() for r in caplog.records]
