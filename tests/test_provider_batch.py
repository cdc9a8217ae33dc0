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
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("EVALUATOR_MODEL", "EVALUATOR_API_BASE", "EVALUATOR_API_KEY", "EVALUATOR_DB",
                 "EVALUATOR_RUBRICS_DIR", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE",
                 "EVALUATOR_TEST_CRASH_AT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


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
    final = run_until_done(fake_llm, folder, db)
    assert final["scored"] == 3, final
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
