"""`evaluate cohort`: concurrency, rate limits, retries, the cache, resume after SIGKILL, dry runs,
the cost budget, manifests, bad inputs, an unavailable judge and the offline baseline judge.

Real HTTP against the scripted fake server (tests/fakellm.py) through the real litellm client; nothing
is monkeypatched. The CLI runs in-process with typer's CliRunner (litellm's import is paid once),
except for the SIGKILL test, which needs a real process to kill. Timing assertions are made on the
structure of the server's recorded request times (overlap, spacing), never on wall-clock totals.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, Error, FakeLLM, Reply
from replies import valid
from support import (
    LRU,
    SAMPLES,
    cohort,
    cohort_args,
    make_cohort,
    query,  # one read-only query helper for the suites
    scalar,
)
from support import CohortRun as Run
from typer.testing import CliRunner

from evaluator.cli import app

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------ helpers

pytestmark = pytest.mark.usefixtures("isolated")


def assert_no_traceback(run: Run) -> None:
    assert run.exception is None, repr(run.exception)
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout


def assert_totals_add_up(doc: dict[str, Any]) -> None:
    assert doc["scored"] + doc["partial"] + doc["unscored"] + doc["failed"] + doc["skipped"] == doc["total"], doc
    assert doc["cached"] <= doc["scored"]


def starts(server: FakeLLM) -> list[float]:
    return sorted(r.time for r in server.chat_requests)


def user_prompt(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


class Timed:
    """A `Call` content function that also records when the server finished each request's delay,
    keyed by the request's prompt (paired with the server's recorded start time afterwards)."""

    def __init__(self) -> None:
        self.ends: dict[str, float] = {}
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.ends[user_prompt(body)] = time.time()
        return valid(body)

    def intervals(self, server: FakeLLM) -> list[tuple[float, float]]:
        """(start, end) on the server for every chat request: the client had it in flight at least then."""
        return sorted((r.time, self.ends[user_prompt(r.body)]) for r in server.chat_requests)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals holding at once (checked at every start)."""
    return max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ 1. concurrency

@pytest.mark.slow
def test_concurrency_overlaps_calls_and_concurrency_one_is_sequential(fake_llm: FakeLLM, tmp_path: Path) -> None:
    timed = Timed()
    fake_llm.script(Call(timed, delay=0.5))
    folder = tmp_path / "eight"
    make_cohort(folder, 8)
    run = cohort(folder, tmp_path / "a.duckdb", "--concurrency", "4", base_url=fake_llm.base_url)

    assert run.code == 0, run.stderr
    doc = run.doc
    assert doc["total"] == doc["scored"] == 8 and doc["calls"] == 8 and doc["status"] == "completed"
    spans = timed.intervals(fake_llm)
    assert len(spans) == 8
    overlap = max_overlap(spans)
    assert 3 <= overlap <= 4, spans  # really concurrent, and never more than --concurrency

    fake_llm.clear()
    folder1 = tmp_path / "four"
    make_cohort(folder1, 4, tag="seq")
    run = cohort(folder1, tmp_path / "b.duckdb", "--concurrency", "1", base_url=fake_llm.base_url)

    assert run.code == 0, run.stderr
    assert run.doc["scored"] == run.doc["total"] == 4
    spans = timed.intervals(fake_llm)
    assert len(spans) == 4 and max_overlap(spans) == 1
    for (_, end), (nxt, _) in itertools.pairwise(spans):
        assert nxt >= end, spans  # the next request starts only after the previous one was answered


# ------------------------------------------------------------------------------------ 2. rate limits

@pytest.mark.slow
def test_rpm_limit_spaces_requests(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    folder = tmp_path / "four"
    make_cohort(folder, 4)
    run = cohort(folder, tmp_path / "e.duckdb", "--concurrency", "4", "--rpm", "60", base_url=fake_llm.base_url)

    assert run.code == 0, run.stderr
    assert run.doc["scored"] == 4
    t = starts(fake_llm)
    assert len(t) == 4
    # 60/min = 1/s; the bucket holds one second's worth (one request): no two requests within ~1 s
    gaps = [b - a for a, b in itertools.pairwise(t)]
    assert all(g >= 0.9 for g in gaps), gaps


def _estimated_tokens(body: dict[str, Any]) -> int:
    """The adapter's pre-request token estimate (llm_adapter.estimate_tokens): chars / 3.2 + the
    expected reply (min(max_tokens, 1000))."""
    chars = sum(len(str(m.get("content") or "")) for m in body["messages"])
    return int(chars / 3.2) + min(body["max_tokens"], 1000)


def _probe_tokens(server: FakeLLM, tmp_path: Path, sample: Path) -> int:
    """One real request for a transcript shaped like the cohort's, to learn its estimated tokens."""
    make_cohort(tmp_path / "probe", 1, tag="probe", sample=sample)
    run = cohort(tmp_path / "probe", tmp_path / "probe.duckdb", base_url=server.base_url)
    assert run.code == 0, run.stderr
    body = server.chat_requests[-1].body
    server.clear()
    return _estimated_tokens(body)


@pytest.mark.parametrize("usage", ["reported", "absent"])
def test_tpm_limit_holds(fake_llm: FakeLLM, tmp_path: Path, usage: str) -> None:
    """--tpm set so one request is about half the per-second budget.

    The token bucket holds one second's worth (2 requests) and refills at 2 requests' worth per
    second, so after a burst of two the requests are spaced ~0.5 s: the n-th request (0-based) cannot
    start before (n - 1) / 2 s after the first. With usage reported equal to the estimate, settling is
    neutral; with no usage in the reply (some local servers), the limiter knows nothing better than
    its estimate and must keep counting it (the tokens were spent all the same).
    """
    sample = SAMPLES[0]
    fake_llm.script(Call(valid))
    est = _probe_tokens(fake_llm, tmp_path, sample)
    if usage == "reported":
        fake_llm.script(Call(valid, prompt_tokens=est - 300, completion_tokens=300))  # actual == estimate
    else:
        fake_llm.script(Call(valid, usage=False))
    folder = tmp_path / "six"
    make_cohort(folder, 6, sample=sample)  # same length: every request is estimated at `est` (+-1)
    run = cohort(folder, tmp_path / "e.duckdb", "--concurrency", "4", "--tpm", str(est * 2 * 60),
                 base_url=fake_llm.base_url)

    assert run.code == 0, run.stderr
    assert run.doc["scored"] == 6
    t = starts(fake_llm)
    assert len(t) == 6
    assert all(abs(_estimated_tokens(r.body) - est) <= 2 for r in fake_llm.chat_requests)
    assert t[1] - t[0] < 0.4, t  # the documented burst: one second's worth (two requests) at once
    late = [(n, round(t[n] - t[0], 3)) for n in range(2, 6) if t[n] - t[0] < (n - 1) / 2 - 0.15]
    assert not late, f"requests started before the token budget allowed: {late}"


# ------------------------------------------------------------------------------- 3. 429 / 5xx storms

STORM = [Error(429, headers={"Retry-After": "0"})] * 6 + [Error(500)] * 3 + [Error(503)] * 3


@pytest.mark.parametrize("concurrency", [4, 1])
def test_429_and_5xx_storm_ends_with_every_transcript_accounted_for(
        fake_llm: FakeLLM, tmp_path: Path, concurrency: int) -> None:
    fake_llm.script(*STORM, Call(valid))
    folder = tmp_path / "eight"
    make_cohort(folder, 8)
    db = tmp_path / "e.duckdb"
    run = cohort(folder, db, "--concurrency", str(concurrency), "--retries", "3", base_url=fake_llm.base_url)

    assert_no_traceback(run)
    doc = run.doc
    assert doc["total"] == 8 and doc["status"] == "completed"
    assert_totals_add_up(doc)
    assert run.code == (0 if doc["scored"] == doc["total"] else 1)
    n_requests = len(fake_llm.chat_requests)
    judged = doc["scored"] + doc["partial"]
    assert n_requests == len(STORM) + judged  # every error was retried or ended a transcript; none lost
    assert doc["calls"] == n_requests  # every HTTP attempt is counted
    if concurrency == 1:  # deterministic: 4 attempts each -> 429x4 | 429x2 500x2 | 500 503x3 | then valid
        assert (doc["scored"], doc["unscored"], doc["failed"]) == (5, 3, 0)
        assert run.code == 1

    # nothing is lost in the database
    run_id = doc["run_id"]
    items = query(db, "SELECT * FROM run_items WHERE run_id = ?", [run_id])
    assert len(items) == 8
    assert sum(i["status"] == "unscored" for i in items) == doc["unscored"]
    judgments = query(db, "SELECT * FROM judgments WHERE run_id = ?", [run_id])
    assert len(judgments) == doc["scored"] + doc["partial"] + doc["unscored"]
    for j in judgments:
        if j["status"] == "unscored":
            assert "model call failed" in j["reason"] and j["calls"] == 4, j["reason"]
    runs = query(db, "SELECT * FROM runs WHERE id = ?", [run_id])
    assert runs[0]["status"] == "completed" and runs[0]["total"] == 8 and runs[0]["scored"] == doc["scored"]

    # a re-run retries exactly the ones that did not score
    fake_llm.clear()
    fake_llm.script(Call(valid))
    again = cohort(folder, db, "--concurrency", str(concurrency), "--retries", "3", base_url=fake_llm.base_url)
    assert again.code == 0, again.stderr
    assert len(fake_llm.chat_requests) == 8 - doc["scored"]
    assert again.doc["scored"] == 8 and again.doc["cached"] == doc["scored"]


# ------------------------------------------------------------------------------------------ 4. cache

def test_cache_rerun_edit_force_second_cohort_and_duplicates(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    folder = tmp_path / "six"
    paths = make_cohort(folder, 6)
    db = tmp_path / "e.duckdb"
    args = ("--concurrency", "3")

    first = cohort(folder, db, *args, base_url=fake_llm.base_url)
    assert first.code == 0, first.stderr
    assert first.doc["scored"] == 6 and first.doc["cached"] == 0 and len(fake_llm.chat_requests) == 6

    fake_llm.clear()
    again = cohort(folder, db, *args, base_url=fake_llm.base_url)
    assert again.code == 0, again.stderr
    assert len(fake_llm.chat_requests) == 0
    assert again.doc["cached"] == again.doc["total"] == again.doc["scored"] == 6 and again.doc["calls"] == 0
    assert again.doc["dimensions"] == first.doc["dimensions"]  # the summary covers cached judgments too

    fake_llm.clear()
    paths[2].write_text(paths[2].read_text(encoding="utf-8") + "Candidate: One more thing about the tests.\n",
                        encoding="utf-8")
    edited = cohort(folder, db, *args, base_url=fake_llm.base_url)
    assert edited.code == 0, edited.stderr
    assert len(fake_llm.chat_requests) == 1
    assert "One more thing about the tests." in user_prompt(fake_llm.chat_requests[0].body)
    assert edited.doc["cached"] == 5 and edited.doc["scored"] == 6

    fake_llm.clear()
    forced = cohort(folder, db, *args, "--force", base_url=fake_llm.base_url)
    assert forced.code == 0, forced.stderr
    assert len(fake_llm.chat_requests) == 6 and forced.doc["cached"] == 0 and forced.doc["scored"] == 6

    fake_llm.clear()
    other = cohort(folder, db, *args, name="c2", base_url=fake_llm.base_url)
    assert other.code == 0, other.stderr
    assert len(fake_llm.chat_requests) == 0 and other.doc["cached"] == 6
    members = query(db, "SELECT cohort, transcript_hash FROM cohort_members")
    current = {r["transcript_hash"] for r in query(db, "SELECT transcript_hash FROM run_items WHERE run_id = ?",
                                                   [other.doc["run_id"]])}
    assert len(current) == 6
    for name in ("c1", "c2"):
        assert current <= {m["transcript_hash"] for m in members if m["cohort"] == name}
    assert len([m for m in members if m["cohort"] == "c2"]) == 6

    # two identical files in one cohort: judged once, both items point at the one judgment
    fake_llm.clear()
    dup = tmp_path / "dup"
    dup.mkdir()
    text = SAMPLES[1].read_text(encoding="utf-8") + "\n\nInterviewer: Thanks, that's time (dup).\n"
    (dup / "a.md").write_text(text, encoding="utf-8")
    (dup / "b.md").write_text(text, encoding="utf-8")
    twice = cohort(dup, db, *args, name="dup", base_url=fake_llm.base_url)
    assert twice.code == 0, twice.stderr
    assert len(fake_llm.chat_requests) == 1
    assert twice.doc["total"] == twice.doc["scored"] == 2
    items = query(db, "SELECT item, status, judgment_id FROM run_items WHERE run_id = ?", [twice.doc["run_id"]])
    assert len(items) == 2 and len({i["judgment_id"] for i in items}) == 1 and items[0]["judgment_id"]
    assert scalar(db, "SELECT count(*) FROM judgments WHERE run_id = ?", [twice.doc["run_id"]]) == 1


# ------------------------------------------------------------------------------- 5. SIGKILL, resume

def start_cohort_process(fake_llm: FakeLLM, tmp_path: Path, n: int) -> tuple[Path, Path, subprocess.Popen]:
    """A cohort of n in a real `evaluate` process (to be killed or interrupted), --concurrency 2."""
    folder, db = tmp_path / "cohort", tmp_path / "e.duckdb"
    make_cohort(folder, n)
    args = cohort_args(folder, db, "--concurrency", "2", base_url=fake_llm.base_url)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([sys.executable, "-c", "from evaluator.cli import run; run()", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return folder, db, proc


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_loses_nothing_and_judges_nothing_twice(
        fake_llm: FakeLLM, tmp_path: Path) -> None:
    """The writer group-commits about every second: kill the process after a commit, mid-run."""
    n = 16
    fake_llm.script(Call(valid, delay=0.5))
    folder, db, proc = start_cohort_process(fake_llm, tmp_path, n)
    wal = Path(f"{db}.wal")

    def db_state() -> tuple[Any, ...]:
        return (db.stat().st_size, db.stat().st_mtime_ns, wal.exists()) if db.exists() else ()

    def wait_for(condition, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not condition() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return condition()

    try:
        # the child pays litellm's import, then opens the db once (run row, cache lookup), then judges
        assert wait_for(lambda: len(fake_llm.chat_requests) >= 1, 60), "the run did not get going"
        before = db_state()
        # the next write to the file is a group commit of finished judgments (the writer flushes ~1/s)
        assert wait_for(lambda: db_state() != before, 20), "no judgment was committed"
        wait_for(lambda: not wal.exists(), 2)  # let that session close (it checkpoints the WAL)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    sent_before_kill = len(fake_llm.chat_requests)
    assert sent_before_kill < n

    # DuckDB replays the killed writer's WAL on the next open: only whole transactions survive
    committed = scalar(db, "SELECT count(*) FROM judgments WHERE status = 'scored'")
    assert 1 <= committed <= sent_before_kill
    assert scalar(db, "SELECT count(*) FROM judgments") == committed
    # every committed judgment is whole: its dimensions and its exchange landed with it
    assert scalar(db, "SELECT count(*) FROM judgments j WHERE NOT EXISTS"
                      " (SELECT 1 FROM exchanges e WHERE e.judgment_id = j.id)") == 0
    assert scalar(db, "SELECT count(*) FROM judgments j WHERE NOT EXISTS"
                      " (SELECT 1 FROM dimension_scores d WHERE d.judgment_id = j.id)") == 0

    # finished replies not yet committed are in the journal (fsync'd as they arrived): the re-run keeps them too
    from evaluator.batch.journal import read_entries

    stored = {r["id"] for r in query(db, "SELECT id FROM judgments")}
    journaled = {e.judgment_id for p in Path(f"{db}.journal").glob("*.jsonl")
                 for e in read_entries(p.read_bytes())} - stored
    assert committed + len(journaled) <= sent_before_kill

    # the killed run is not shown as running forever: its process is gone
    killed = json.loads(CliRunner().invoke(app, ["runs", "--db", str(db), "--format", "json"]).stdout)
    assert [r["status"] for r in killed] == ["killed"] and killed[0]["pid"] == proc.pid

    fake_llm.clear()
    fake_llm.script(Call(valid))
    rerun = cohort(folder, db, "--concurrency", "2", base_url=fake_llm.base_url)
    assert rerun.code == 0, rerun.stderr
    doc = rerun.doc
    assert doc["total"] == doc["scored"] == n and doc["status"] == "completed"
    assert scalar(db, "SELECT status FROM runs WHERE id = ?", [killed[0]["id"]]) == "killed"  # now recorded
    assert doc["cached"] == committed + len(journaled)
    assert doc["calls"] == len(fake_llm.chat_requests) == n - committed - len(journaled)  # none lost, none twice

    rows = query(db, "SELECT cache_key, count(*) AS n FROM judgments WHERE status = 'scored' GROUP BY cache_key")
    assert len(rows) == n and all(r["n"] == 1 for r in rows)
    assert len({r["transcript_hash"] for r in query(db, "SELECT transcript_hash FROM judgments")}) == n


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_mid_run_lists_what_was_left_and_resumes(fake_llm: FakeLLM, tmp_path: Path, sig) -> None:
    """SIGINT (Ctrl-C) or SIGTERM (`timeout`, `kill`, a CI job) to a real process: finished judgments
    are kept, the rest (in flight, queued, never read) is listed as skipped, so `total` is the whole
    cohort; the re-run judges the rest."""
    n = 12
    fake_llm.script(Call(valid, delay=0.4))
    folder, db, proc = start_cohort_process(fake_llm, tmp_path, n)
    try:
        deadline = time.monotonic() + 60
        while len(fake_llm.chat_requests) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["status"] == "interrupted" and doc["total"] == n, doc
    assert doc["skipped"] > 0 and doc["scored"] + doc["skipped"] == n, doc
    assert_totals_add_up(doc)
    left = query(db, "SELECT item, error FROM run_items WHERE run_id = ? AND status = 'skipped'", [doc["run_id"]])
    assert sorted(r["item"] for r in left) == sorted(doc["skipped_items"])
    assert all("interrupted" in r["error"] for r in left)
    assert scalar(db, "SELECT count(*) FROM judgments") == doc["scored"]

    fake_llm.clear()
    fake_llm.script(Call(valid))
    rerun = cohort(folder, db, "--concurrency", "2", base_url=fake_llm.base_url)
    assert rerun.code == 0 and rerun.doc["cached"] == doc["scored"]
    assert len(fake_llm.chat_requests) == n - doc["scored"]


@pytest.mark.slow
def test_a_second_run_on_the_same_database_warns_that_both_may_pay(tmp_path: Path) -> None:
    """Each run checks the store before judging, so two at once may both judge a transcript they
    share: the second one says so (the first one's row is 'running' and its process alive)."""
    import duckdb

    db = tmp_path / "e.duckdb"
    first = cohort(REPO / "transcripts", db, name="first")
    assert first.code == 0
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET status = 'running', finished_at = NULL")  # as if it were still going
    con.close()
    second = cohort(REPO / "transcripts", db, "--force", name="second")
    assert second.code == 0
    assert "another run is in progress" in " ".join(second.stderr.split()) and "cohort first" in second.stderr


# ------------------------------------------------------------------------------------------ 6. dry run

def test_dry_run_calls_nothing_writes_nothing_and_estimates(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    folder = tmp_path / "four"
    paths = make_cohort(folder, 4)
    db = tmp_path / "e.duckdb"

    dry = cohort(folder, db, "--dry-run", base_url=fake_llm.base_url)
    assert dry.code == 0, dry.stderr
    doc = dry.doc
    assert doc["dry_run"] is True and doc["total"] == 4 and doc["cached"] == 0
    est = doc["estimate"]
    assert est["to_judge"] == 4 and est["calls"] == 4 and est["prompt_tokens"] > 0 and est["completion_tokens"] > 0
    assert est["cost_usd"] is None  # litellm has no price for openai/test-model: unknown, never 0
    assert len(fake_llm.chat_requests) == 0
    assert not db.exists() and not Path(f"{db}.wal").exists()

    priced = cohort(folder, db, "--dry-run", "--price-in", "1", "--price-out", "2", base_url=fake_llm.base_url)
    assert priced.code == 0, priced.stderr
    pe = priced.doc["estimate"]
    assert isinstance(pe["cost_usd"], float) and pe["cost_usd"] > 0
    assert pe["cost_usd"] == pytest.approx(pe["prompt_tokens"] * 1e-6 + pe["completion_tokens"] * 2e-6)

    # judge two of them for real, then dry-run the four: the two stored ones count as cached
    two = tmp_path / "two"
    two.mkdir()
    for p in paths[:2]:
        (two / p.name).write_bytes(p.read_bytes())
    real = cohort(two, db, base_url=fake_llm.base_url)
    assert real.code == 0, real.stderr
    assert len(fake_llm.chat_requests) == 2
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.glob("e.duckdb*")}

    fake_llm.clear()
    again = cohort(folder, db, "--dry-run", "--price-in", "1", "--price-out", "2", base_url=fake_llm.base_url)
    assert again.code == 0, again.stderr
    assert again.doc["cached"] == 2 and again.doc["estimate"]["to_judge"] == 2
    assert again.doc["estimate"]["prompt_tokens"] < pe["prompt_tokens"]
    assert len(fake_llm.chat_requests) == 0
    after = {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.glob("e.duckdb*")}
    assert after == before  # the dry run wrote nothing
    assert scalar(db, "SELECT count(*) FROM runs") == 1


# ------------------------------------------------------------------------------------------ 7. budget

def test_max_cost_stops_before_the_budget_is_exceeded(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """A judgment starts only if its worst case fits beside what is spent and what the judgments in
    flight could still cost; one that does not fit waits for them. So the budget is never exceeded
    and how much is judged does not depend on --concurrency."""
    fake_llm.script(Call(valid))
    folder = tmp_path / "six"
    make_cohort(folder, 6, sample=SAMPLES[0])  # same length: the same estimate for each
    prices = ("--price-in", "1000", "--price-out", "1000")  # USD per million: dollars a judgment
    dry = cohort(folder, tmp_path / "dry.duckdb", "--dry-run", *prices, base_url=fake_llm.base_url)
    typical, worst = dry.doc["estimate"]["cost_usd"] / 6, dry.doc["estimate"]["worst_case_usd"] / 6
    assert worst > 3 * typical  # replies up to --max-tokens, and every repair re-sends the conversation
    budget = round(worst + 2.5 * typical, 4)  # room for about three judgments' real spend, never two worst cases

    judged = {}
    for concurrency in ("1", "4"):
        fake_llm.clear()
        db = tmp_path / f"c{concurrency}.duckdb"
        run = cohort(folder, db, "--concurrency", concurrency, "--max-cost", str(budget), *prices,
                     base_url=fake_llm.base_url)
        assert_no_traceback(run)
        doc = run.doc
        n = len(fake_llm.chat_requests)
        judged[concurrency] = n
        assert 1 <= n < 6 and doc["skipped"] == 6 - n and len(doc["skipped_items"]) == doc["skipped"]
        names = {Path(r["source"]).name for r in query(db, "SELECT source FROM judgments")}
        assert set(doc["skipped_items"]) == {f"round_{i:02d}.md" for i in range(6)} - names
        assert "--max-cost" in (doc["message"] or "") and run.code == 1
        assert doc["cost_usd"] is not None and 0 < doc["cost_usd"] <= budget
        assert_totals_add_up(doc)
        items = query(db, "SELECT status, error FROM run_items WHERE run_id = ?", [doc["run_id"]])
        skipped = [i for i in items if i["status"] == "skipped"]
        assert len(skipped) == doc["skipped"] and all("--max-cost" in i["error"] for i in skipped)
        # as many as fit: the n-th started beside the spend of the n - 1 before it, the next would not
        # have (how many that is depends on the prompt's size against the estimate, not on concurrency)
        spent = doc["cost_usd"] / n
        assert (n - 1) * spent + worst <= budget and n * spent + worst > budget, (n, spent, worst, budget)
    assert judged["1"] == judged["4"] >= 2, judged  # the same with one request at a time or four


def test_max_cost_holds_when_every_reply_is_long_and_broken(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """The worst case really is one: replies that fail to parse, each --max-tokens long, repaired
    twice, still never take the spend past the budget."""
    fake_llm.script(Reply("this is not json at all", completion_tokens=4096))
    folder = tmp_path / "four"
    make_cohort(folder, 4, sample=SAMPLES[0])
    prices = ("--price-in", "1000", "--price-out", "1000")
    dry = cohort(folder, tmp_path / "dry.duckdb", "--dry-run", *prices, base_url=fake_llm.base_url)
    worst = dry.doc["estimate"]["worst_case_usd"] / 4
    budget = round(worst * 1.5, 4)
    run = cohort(folder, tmp_path / "e.duckdb", "--concurrency", "4", "--max-cost", str(budget), *prices,
                 base_url=fake_llm.base_url)
    doc = run.doc
    assert doc["unscored"] >= 1 and doc["calls"] == 3 * doc["unscored"]  # the first call and two repairs each
    assert doc["cost_usd"] <= budget, (doc["cost_usd"], budget)
    assert doc["skipped"] == 4 - doc["unscored"] > 0


def test_dry_run_says_when_the_estimate_exceeds_max_cost(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder = tmp_path / "two"
    make_cohort(folder, 2)
    prices = ("--price-in", "1000", "--price-out", "1000")
    dry = cohort(folder, tmp_path / "e.duckdb", "--dry-run", "--max-cost", "0.01", *prices, base_url=fake_llm.base_url)
    assert dry.code == 0 and "exceeds --max-cost" in dry.doc["message"]
    assert len(fake_llm.chat_requests) == 0


@pytest.mark.parametrize("flags", [("--price-in", "-1"), ("--price-in", "1", "--price-out", "-2"),
                                   ("--context-tokens", "0")])
def test_negative_prices_and_a_zero_context_are_bad_input(fake_llm: FakeLLM, tmp_path: Path, flags) -> None:
    folder = tmp_path / "one"
    make_cohort(folder, 1)
    for extra in ((), ("--dry-run",)):
        run = cohort(folder, tmp_path / "e.duckdb", *flags, *extra, base_url=fake_llm.base_url)
        assert_no_traceback(run)
        assert run.code == 2 and flags[-2] in run.stderr, run.stderr
    assert len(fake_llm.chat_requests) == 0 and not (tmp_path / "e.duckdb").exists()


def test_max_cost_without_a_known_price_is_bad_input(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder = tmp_path / "two"
    make_cohort(folder, 2)
    run = cohort(folder, tmp_path / "e.duckdb", "--max-cost", "1", base_url=fake_llm.base_url)
    assert run.code == 2
    assert_no_traceback(run)
    assert "--price-in" in run.stderr and "--max-cost" in run.stderr
    assert len(fake_llm.chat_requests) == 0


# ----------------------------------------------------------------------------------------- 8. manifests

def _manifest_folder(tmp_path: Path) -> list[Path]:
    return make_cohort(tmp_path / "t", 3)


def test_csv_manifest_missing_file_is_reported_and_overrides_land_in_members(
        fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    paths = _manifest_folder(tmp_path)
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        "path,candidate,date\n"
        f"t/{paths[0].name},Ada One,2026-01-05\n"
        "t/nope.md,Ghost,2026-01-06\n"
        f"t/{paths[1].name},Bo Two,2026-01-07\n"
        f"{paths[2]},Cy Three,\n",  # absolute path, no date override
        encoding="utf-8")
    db = tmp_path / "e.duckdb"
    run = cohort(manifest, db, base_url=fake_llm.base_url)

    assert_no_traceback(run)
    assert run.code == 1
    doc = run.doc
    assert doc["total"] == 4 and doc["scored"] == 3 and doc["failed"] == 1
    assert len(doc["failures"]) == 1
    f = doc["failures"][0]
    assert "nope.md" in f["error"] and "not found" in f["error"] and "cohort.csv:3" in f["error"]
    assert len(fake_llm.chat_requests) == 3
    members = {m["candidate"]: m for m in query(db, "SELECT * FROM cohort_members WHERE cohort = 'c1'")}
    assert set(members) == {"Ada One", "Bo Two", "Cy Three"}
    # the overrides are this cohort's: the transcript rows every cohort shares keep the files' own names
    front = {m["candidate"] for m in query(db, "SELECT candidate FROM transcripts")}
    assert front.isdisjoint(members) and len(front) == 3, front
    assert members["Ada One"]["session_date"] == "2026-01-05" and members["Bo Two"]["session_date"] == "2026-01-07"
    items = query(db, "SELECT status, error FROM run_items WHERE run_id = ?", [doc["run_id"]])
    assert sorted(i["status"] for i in items) == ["failed", "scored", "scored", "scored"]


def test_manifest_overrides_are_cached_by_what_they_change(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """A candidate override changes whose words are judged: it is in the cache key, so a re-run of the
    same manifest is all cache hits, and the plain file is a different judgment. A date override
    changes nothing that is judged: fixing a date never pays for a judgment again."""
    fake_llm.script(Call(valid))
    paths = _manifest_folder(tmp_path)
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"path,candidate,date\nt/{paths[0].name},Ada One,2026-01-05\nt/{paths[1].name},,\n",
                        encoding="utf-8")
    db = tmp_path / "e.duckdb"
    first = cohort(manifest, db, base_url=fake_llm.base_url)
    assert first.code == 0 and first.doc["calls"] == 2, first.stderr
    again = cohort(manifest, db, base_url=fake_llm.base_url)
    assert again.code == 0 and again.doc["calls"] == 0 and again.doc["cached"] == 2, again.doc
    assert len(fake_llm.chat_requests) == 2  # nothing paid twice

    manifest.write_text(f"path,candidate,date\nt/{paths[0].name},Ada One,2026-03-09\nt/{paths[1].name},,\n",
                        encoding="utf-8")
    redated = cohort(manifest, db, base_url=fake_llm.base_url)
    assert redated.doc["calls"] == 0 and redated.doc["cached"] == 2, redated.doc
    date = scalar(db, "SELECT session_date FROM cohort_members WHERE candidate = 'Ada One'")
    assert date == "2026-03-09"  # the new date is recorded all the same

    # the folder: paths[0] without the override (judged anew), paths[1] (cached), paths[2] (never judged)
    plain = cohort(tmp_path / "t", db, name="plain", base_url=fake_llm.base_url)
    assert plain.doc["calls"] == 2 and plain.doc["cached"] == 1, plain.doc


def test_manifest_dates_are_checked_and_normalised(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """Trends are drawn by date: a manifest date that is not a real date fails its row, clearly; a
    compact or timestamped ISO date is stored as YYYY-MM-DD; a bad front-matter date is dropped."""
    fake_llm.script(Call(valid))
    paths = _manifest_folder(tmp_path)
    text = paths[2].read_text(encoding="utf-8")
    paths[2].write_text(text.replace("\ndate: ", "\ndate: 2026-02-30 # was ", 1), encoding="utf-8")
    manifest = tmp_path / "cohort.jsonl"
    rows = [{"path": f"t/{paths[0].name}", "candidate": "Ada One", "date": 20260301},
            {"path": f"t/{paths[1].name}", "candidate": "Bo Two", "date": "not-a-date"},
            {"path": f"t/{paths[2].name}", "candidate": "Cy Three"}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    db = tmp_path / "e.duckdb"
    run = cohort(manifest, db, base_url=fake_llm.base_url)
    assert_no_traceback(run)
    doc = run.doc
    assert run.code == 1 and doc["failed"] == 1 and doc["scored"] == 2
    assert "not-a-date" in doc["failures"][0]["error"] and "YYYY-MM-DD" in doc["failures"][0]["error"]
    dates = {m["candidate"]: m["session_date"] for m in query(db, "SELECT * FROM cohort_members")}
    assert dates == {"Ada One": "2026-03-01", "Cy Three": None}
    assert any("2026-02-30" in w["warning"] and "not a date" in w["warning"] for w in doc["warnings"]), doc["warnings"]


def test_jsonl_manifest_missing_file_is_reported_and_overrides_land_in_members(
        fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    paths = _manifest_folder(tmp_path)
    manifest = tmp_path / "cohort.jsonl"
    rows = [
        {"path": f"t/{paths[0].name}", "candidate": "Ada One", "date": "2026-02-01"},
        {"path": "t/missing.md", "candidate": "Ghost"},
        {"path": f"t/{paths[1].name}", "candidate": "Bo Two", "date": "2026-02-03"},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    db = tmp_path / "e.duckdb"
    run = cohort(manifest, db, name="jl", base_url=fake_llm.base_url)

    assert_no_traceback(run)
    assert run.code == 1
    doc = run.doc
    assert doc["total"] == 3 and doc["scored"] == 2 and doc["failed"] == 1
    f = doc["failures"][0]
    assert "missing.md" in f["error"] and "not found" in f["error"] and "cohort.jsonl:2" in f["error"]
    members = {m["candidate"]: m["session_date"] for m in query(db, "SELECT * FROM cohort_members WHERE cohort = 'jl'")}
    assert members == {"Ada One": "2026-02-01", "Bo Two": "2026-02-03"}


def test_csv_manifest_without_a_path_column_is_bad_input(fake_llm: FakeLLM, tmp_path: Path) -> None:
    paths = _manifest_folder(tmp_path)
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"name,candidate\nt/{paths[0].name},Ada\n", encoding="utf-8")
    run = cohort(manifest, tmp_path / "e.duckdb", base_url=fake_llm.base_url)
    assert run.code == 2
    assert_no_traceback(run)
    assert "path" in run.stderr
    assert len(fake_llm.chat_requests) == 0


@pytest.mark.parametrize(("name", "text"), [("m.csv", "path\n"), ("m.csv", "path,candidate\n\n\n"),
                                            ("m.jsonl", ""), ("m.jsonl", "\n  \n\n")])
def test_a_manifest_listing_no_transcripts_is_bad_input_as_an_empty_folder(
        fake_llm: FakeLLM, tmp_path: Path, name: str, text: str) -> None:
    """A header only, or a JSONL file of blank lines, is a mistake (exit 2), not "completed, 0 transcript(s)"."""
    manifest = tmp_path / name
    manifest.write_text(text, encoding="utf-8")
    run = cohort(manifest, tmp_path / "e.duckdb", base_url=fake_llm.base_url)
    assert run.code == 2, run.stdout + run.stderr
    assert_no_traceback(run)
    assert "manifest lists no transcripts" in " ".join(run.stderr.split())
    assert len(fake_llm.chat_requests) == 0



def _bad_inputs(tmp_path: Path) -> list[Path]:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    header_only = tmp_path / "m.csv"
    header_only.write_text("path\n", encoding="utf-8")
    no_header = tmp_path / "n.csv"
    no_header.write_text("name\nx.md\n", encoding="utf-8")
    return [tmp_path / "missing", empty, header_only, no_header, LRU]


def test_bad_input_records_no_run_and_no_cohort(tmp_path: Path) -> None:
    """Refused before anything is recorded: no database is created for it, and in an existing one
    no run row (it used to stay `running`, then show as `killed`) and no empty cohort in the report."""
    db = tmp_path / "e.duckdb"
    for bad in _bad_inputs(tmp_path):
        run = cohort(bad, db, name="oops")
        assert run.code == 2, (bad, run.stderr)
        assert_no_traceback(run)
        assert not db.exists(), bad
    make_cohort(tmp_path / "good", 2)
    assert cohort(tmp_path / "good", db, name="good").code == 0
    for bad in _bad_inputs(tmp_path):
        assert cohort(bad, db, name="oops").code == 2, bad
    assert scalar(db, "SELECT count(*) FROM runs") == 1
    assert [r["name"] for r in query(db, "SELECT name FROM cohorts")] == ["good"]
    assert not list(tmp_path.glob("*.journal*"))


# ----------------------------------------------------------------------------------- 9. bad inputs

def test_empty_and_binary_files_fail_alone_and_the_rest_is_scored(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    folder = tmp_path / "mixed"
    make_cohort(folder, 3)
    (folder / "empty.md").write_bytes(b"")
    (folder / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    db = tmp_path / "e.duckdb"
    run = cohort(folder, db, base_url=fake_llm.base_url)

    assert_no_traceback(run)
    assert run.code == 1
    doc = run.doc
    assert doc["total"] == 5 and doc["scored"] == 3 and doc["failed"] == 2
    failures = {f["item"]: f["error"] for f in doc["failures"]}
    assert set(failures) == {"empty.md", "binary.md"}
    assert all(e and "internal error" not in e for e in failures.values()), failures
    assert len(fake_llm.chat_requests) == 3
    items = {i["item"]: i for i in query(db, "SELECT * FROM run_items WHERE run_id = ?", [doc["run_id"]])}
    assert items["empty.md"]["status"] == items["binary.md"]["status"] == "failed"
    assert items["empty.md"]["error"] == failures["empty.md"]


# ------------------------------------------------------------------------------ 10. judge unavailable

def test_401_aborts_with_exit_3_and_keeps_finished_judgments(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid), Call(valid), Error(401))  # the 401 repeats for every later request
    folder = tmp_path / "six"
    make_cohort(folder, 6)
    db = tmp_path / "e.duckdb"
    run = cohort(folder, db, "--concurrency", "1", base_url=fake_llm.base_url)

    assert_no_traceback(run)
    assert run.code == 3
    doc = run.doc
    assert doc["status"] == "aborted" and "authentication" in doc["message"]
    assert len(fake_llm.chat_requests) == 3  # fails fast: no retry of a 401, nothing started after it
    assert doc["calls"] == 3  # the refused request was made too
    assert doc["scored"] == 2
    assert scalar(db, "SELECT count(*) FROM judgments WHERE status = 'scored'") == 2
    assert scalar(db, "SELECT status FROM runs WHERE id = ?", [doc["run_id"]]) == "aborted"
    # what was left is listed, read or not: the summary and the store say what a re-run will judge
    assert doc["total"] == 6 and doc["skipped"] == 4 and doc["failed"] == 0, doc
    assert_totals_add_up(doc)
    left = query(db, "SELECT item, status, error FROM run_items WHERE run_id = ? AND status = 'skipped'",
                 [doc["run_id"]])
    assert len(left) == 4 and sorted(r["item"] for r in left) == sorted(doc["skipped_items"])
    assert all("aborted" in r["error"] and "authentication" in r["error"] for r in left), left
    assert scalar(db, "SELECT total FROM runs WHERE id = ?", [doc["run_id"]]) == 6

    fake_llm.clear()
    fake_llm.script(Call(valid))
    again = cohort(folder, db, "--concurrency", "1", base_url=fake_llm.base_url)
    assert again.code == 0, again.stderr
    assert again.doc["cached"] == 2 and len(fake_llm.chat_requests) == 4


def test_unreachable_server_aborts_with_exit_3(tmp_path: Path) -> None:
    folder = tmp_path / "three"
    make_cohort(folder, 3)
    db = tmp_path / "e.duckdb"
    run = cohort(folder, db, "--retries", "1", "--timeout", "5",
                 base_url=f"http://127.0.0.1:{unused_port()}/v1")
    assert_no_traceback(run)
    assert run.code == 3
    assert run.doc["status"] == "aborted" and "unreachable" in run.doc["message"]
    assert run.doc["scored"] == 0


# ----------------------------------------------------------------------------------- 11. baseline judge

def test_baseline_cohort_says_no_model_is_configured_once_as_evaluate_file_does(tmp_path: Path) -> None:
    from evaluator.pipeline import BASELINE_NOTICE

    make_cohort(tmp_path / "t", 3)
    run = cohort(tmp_path / "t", tmp_path / "e.duckdb")
    assert run.code == 0, run.stderr
    assert " ".join(run.stderr.split()).count(BASELINE_NOTICE) == 1, run.stderr
    assert "No model configured" not in run.stdout  # stdout stays the JSON document


def test_baseline_judge_scores_the_sample_folder_and_caches_it(tmp_path: Path) -> None:
    db = tmp_path / "e.duckdb"
    n = len(SAMPLES)
    run = cohort(REPO / "transcripts", db, name="samples")
    assert_no_traceback(run)
    assert run.code == 0, run.stderr
    doc = run.doc
    assert doc["calls"] == 0 and doc["scored"] == doc["total"] == n and doc["judge"]["kind"] == "baseline"
    assert doc["dimensions"]

    again = cohort(REPO / "transcripts", db, name="samples")
    assert again.code == 0, again.stderr
    assert again.doc["cached"] == again.doc["total"] == n
