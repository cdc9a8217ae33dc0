"""A cohort's durability and resilience: a SIGKILL re-pays at most the calls in flight (the journal),
the same command resumes an interrupted run without paying twice (--force included), a full drive is
a clear exit 2 that keeps what was stored, unreadable inputs (a FIFO, a YAML bomb) fail alone, a
judge answering 5xx to everything stops like an unavailable one, and a budget too small for one
judgment says what it would need. Plus the small parts of the runner, tested on their own.

Real processes, real HTTP against the scripted fake server (tests/fakellm.py), real DuckDB; nothing
is monkeypatched.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, Error, FakeLLM, Reply
from replies import valid
from support import cohort, cohort_args, make_cohort, query, scalar

from evaluator.batch.budget import Budget
from evaluator.batch.dedup import Dedup
from evaluator.batch.health import JudgeHealth, server_failed
from evaluator.batch.journal import Entry, fold, read_entries, replay_orphans
from evaluator.batch.prepare import check_metadata
from evaluator.errors import BadInput
from evaluator.store.db import Store, StoreFull, open_store

pytestmark = pytest.mark.usefixtures("isolated")


def start(fake_llm: FakeLLM, folder: Path, db: Path, *extra: str) -> subprocess.Popen:
    args = cohort_args(folder, db, *extra, base_url=fake_llm.base_url)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen([sys.executable, "-c", "from evaluator.cli import run; run()", *args],
                            cwd=folder.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(proc: subprocess.Popen, condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    assert condition(), "the run did not get going"


def stop(proc: subprocess.Popen, sig: int) -> tuple[str, str]:
    try:
        proc.send_signal(sig)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


# ------------------------------------------------------------------ readers while a cohort writes

def test_a_reader_gets_in_while_a_cohort_commits(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """The cohort keeps its connection across group commits but lets the file go every couple of
    seconds: a reader that waits as `report --serve` does (5 s) gets in each time, mid-run, and sees
    the judgments committed so far."""
    n = 24
    fake_llm.script(Call(valid, delay=0.5))
    folder, db = tmp_path / "cohort", tmp_path / "e.duckdb"
    make_cohort(folder, n)
    proc = start(fake_llm, folder, db, "--concurrency", "2")
    seen = []
    try:
        wait_until(proc, lambda: len(fake_llm.chat_requests) >= 4)
        while proc.poll() is None and len(seen) < 4:
            with open_store(db, read_only=True, wait_seconds=5.0) as store:  # raises StoreLocked if kept out
                seen.append(store.count("judgments"))
            time.sleep(0.3)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert json.loads(out)["scored"] == n
    assert len(seen) >= 2 and seen == sorted(seen), seen  # mid-run reads, each seeing at least as much


# ------------------------------------------------------------------------- SIGKILL: the journal

@pytest.mark.parametrize("concurrency", [2, 4])
def test_sigkill_re_pays_at_most_the_calls_in_flight(fake_llm: FakeLLM, tmp_path: Path, concurrency: int) -> None:
    n = 24
    fake_llm.script(Call(valid, delay=0.3))
    folder, db = tmp_path / "cohort", tmp_path / "e.duckdb"
    make_cohort(folder, n)
    proc = start(fake_llm, folder, db, "--concurrency", str(concurrency))
    # kill mid-run, well after a commit interval: with group commits alone this lost up to a second of replies
    wait_until(proc, lambda: len(fake_llm.chat_requests) >= n // 2)
    stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    paid_before = len(fake_llm.chat_requests)

    fake_llm.clear()
    fake_llm.script(Call(valid))
    rerun = cohort(folder, db, "--concurrency", str(concurrency), base_url=fake_llm.base_url)
    assert rerun.code == 0, rerun.stderr
    assert rerun.doc["total"] == rerun.doc["scored"] == n
    re_paid = paid_before + len(fake_llm.chat_requests) - n
    assert 0 <= re_paid <= concurrency, (paid_before, len(fake_llm.chat_requests))

    # the killed run's finished replies were folded in under its own id, each once
    killed_id = scalar(db, "SELECT id FROM runs WHERE status = 'killed'")
    kept = scalar(db, "SELECT count(*) FROM judgments WHERE run_id = ?", [killed_id])
    assert kept >= paid_before - concurrency and rerun.doc["cached"] == kept
    rows = query(db, "SELECT cache_key, count(*) AS n FROM judgments GROUP BY cache_key")
    assert len(rows) == n and all(r["n"] == 1 for r in rows)
    assert scalar(db, "SELECT count(*) FROM judgments j WHERE NOT EXISTS"
                      " (SELECT 1 FROM exchanges e WHERE e.judgment_id = j.id)") == 0
    assert scalar(db, "SELECT count(*) FROM run_items WHERE run_id = ? AND status = 'scored'", [killed_id]) == kept
    assert not Path(f"{db}.journal").exists()  # folded in and removed


def _entries(tmp_path: Path, n: int) -> tuple[Path, list[Entry]]:
    """n judgments by the offline judge, as a run journals them, with a store holding their run."""
    from evaluator.ingest import parse_source, read_source
    from evaluator.pipeline import JudgeOptions, build_judge, judge_transcript
    from evaluator.rubrics import select_rubric

    folder = tmp_path / "j"
    paths = make_cohort(folder, n)
    judge = build_judge(JudgeOptions())
    db = tmp_path / "j.duckdb"
    with open_store(db) as store:
        store.start_run(command="cohort", judge_info=judge.info(), rubric=None, run_id="run-1")
    out = []
    for i, p in enumerate(paths):
        t = parse_source(read_source(p))
        rubric = select_rubric(None, t.exercise)
        j = asyncio.run(judge_transcript(t, rubric, judge))
        item = {"item": p.name, "source": str(p), "status": j.status, "error": None,
                "transcript_hash": t.content_hash, "judgment_id": f"j{i}"}
        out.append(Entry("run-1", f"j{i}", j, t, rubric, [item], []))
    return db, out


def test_journal_replay_skips_a_torn_line_and_never_inserts_twice(tmp_path: Path) -> None:
    db, entries = _entries(tmp_path, 3)
    data = b"".join(e.to_line() for e in entries)
    torn = data + entries[0].to_line()[:50]  # killed mid-write
    assert [e.judgment_id for e in read_entries(torn)] == ["j0", "j1", "j2"]

    journal = Path(f"{db}.journal")
    journal.mkdir()
    (journal / "run-1-000001.jsonl").write_bytes(torn)
    with open_store(db) as store:
        fold(store, entries[:1])  # as if the commit landed and the kill came before the delete
        assert replay_orphans(db, store) == 2
        assert replay_orphans(db, store) == 0
        assert store.count("judgments") == 3
        assert store.con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == sum(
            len(e.judgment.exchanges) for e in entries)
        items = store.con.execute("SELECT item, judgment_id FROM run_items ORDER BY item").fetchall()
    assert [i[1] for i in items] == ["j0", "j1", "j2"]
    assert not journal.exists()


def test_a_live_runs_journal_is_not_folded_by_another(tmp_path: Path) -> None:
    """A segment is flock'd by the process writing it: another run leaves it alone."""
    import fcntl

    db, entries = _entries(tmp_path, 1)
    journal = Path(f"{db}.journal")
    journal.mkdir()
    seg = journal / "live-000001.jsonl"
    seg.write_bytes(entries[0].to_line())
    hold = ("import fcntl,sys,time; f=open(sys.argv[1],'ab');"
            " fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(seg)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with open_store(db) as store:
            assert replay_orphans(db, store) == 0 and store.count("judgments") == 0
    finally:
        holder.kill()
        holder.wait(timeout=10)
    with open(seg, "rb") as f:  # its writer is gone: now it is an orphan
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open_store(db) as store:
        assert replay_orphans(db, store) == 1 and store.count("judgments") == 1


# ------------------------------------------------------------------- resume never pays twice

def test_a_forced_run_interrupted_resumes_without_paying_twice(fake_llm: FakeLLM, tmp_path: Path) -> None:
    n = 12
    fake_llm.script(Call(valid, delay=0.3))
    folder, db = tmp_path / "cohort", tmp_path / "e.duckdb"
    make_cohort(folder, n)
    first = cohort(folder, db, "--concurrency", "4", base_url=fake_llm.base_url)  # everything cached already
    assert first.code == 0 and first.doc["scored"] == n

    fake_llm.clear()
    proc = start(fake_llm, folder, db, "--concurrency", "2", "--force")
    wait_until(proc, lambda: len(fake_llm.chat_requests) >= 5)
    out, err = stop(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["status"] == "interrupted" and doc["skipped"] > 0
    assert "run the same command again" in doc["message"] and "--force included" in doc["message"]
    assert f"evaluate cohort {folder} --cohort c1 --db {db} --force" in doc["message"]
    paid = len(fake_llm.chat_requests)
    done = scalar(db, "SELECT count(*) FROM judgments WHERE run_id = ?", [doc["run_id"]])
    assert done == doc["scored"] and paid - done <= 2  # only what was in flight went unrecorded

    fake_llm.clear()
    fake_llm.script(Call(valid))
    again = cohort(folder, db, "--concurrency", "2", "--force", base_url=fake_llm.base_url)
    assert again.code == 0, again.stderr
    assert len(fake_llm.chat_requests) == n - done  # the forced run's finished items are not judged again
    assert again.doc["scored"] == n and again.doc["cached"] == done
    forced = query(db, "SELECT cache_key, count(*) AS n FROM judgments WHERE run_id IN (?, ?) GROUP BY cache_key",
                   [doc["run_id"], again.doc["run_id"]])
    assert len(forced) == n and all(r["n"] == 1 for r in forced)  # each item once per forced run

    fake_llm.clear()
    once_more = cohort(folder, db, "--concurrency", "2", "--force", base_url=fake_llm.base_url)
    assert once_more.code == 0 and len(fake_llm.chat_requests) == n  # a completed forced run: --force judges again


# ------------------------------------------------------------------------------ bad inputs


def _bomb(path: Path) -> None:
    lines = ["---", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines += ["candidate: Bob", "---", "Interviewer: Tell me about caching.", "Candidate: I would use an LRU."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_fifo_and_a_yaml_bomb_fail_alone_and_the_rest_is_judged(tmp_path: Path) -> None:
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 4)
    os.mkfifo(folder / "pipe.md")
    _bomb(folder / "bomb.md")
    run = cohort(folder, db)  # the offline judge
    assert run.exception is None and "Traceback" not in run.stderr
    doc = run.doc
    assert run.code == 1 and doc["status"] == "completed" and doc["total"] == 6 and doc["scored"] == 4
    failures = {f["item"]: f["error"] for f in doc["failures"]}
    assert "FIFO" in failures["pipe.md"] and "regular file" in failures["pipe.md"]
    assert "front matter expands" in failures["bomb.md"]
    items = {r["item"]: r for r in query(db, "SELECT item, status, error FROM run_items WHERE run_id = ?",
                                         [doc["run_id"]])}
    assert items["pipe.md"]["status"] == items["bomb.md"]["status"] == "failed"
    assert scalar(db, "SELECT count(*) FROM judgments") == 4
    assert scalar(db, "SELECT status FROM runs WHERE id = ?", [doc["run_id"]]) == "completed"


def test_sigterm_ends_a_cohort_with_a_fifo_in_it(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid, delay=0.3))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 10)
    os.mkfifo(folder / "aaa_pipe.md")  # read first
    proc = start(fake_llm, folder, db, "--concurrency", "2")
    wait_until(proc, lambda: len(fake_llm.chat_requests) >= 2)
    out, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["status"] == "interrupted" and doc["total"] == 11
    assert any(f["item"] == "aaa_pipe.md" and "FIFO" in f["error"] for f in doc["failures"])


def test_metadata_that_expands_too_far_is_refused_quickly() -> None:
    bomb: Any = ["lol"] * 9
    for _ in range(9):
        bomb = [bomb] * 9  # shared references, as YAML aliases build them: 9**10 strings once serialised
    with pytest.raises(BadInput, match="expands"):
        check_metadata(Path("x.md"), {"a": bomb})
    check_metadata(Path("x.md"), {"candidate": "Ann", "tags": ["a", "b"]})


# ------------------------------------------------------------------------ judge failing: 5xx

def test_a_judge_answering_500_to_everything_stops_like_an_unavailable_one(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Error(500))  # repeats for every request
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 10)
    run = cohort(folder, db, "--concurrency", "1", "--retries", "1", base_url=fake_llm.base_url)
    assert run.exception is None
    doc = run.doc
    assert run.code == 3 and doc["status"] == "aborted", doc
    assert "server errors" in doc["message"] and "InternalServerError" in doc["message"]
    assert len(fake_llm.chat_requests) == 3 * 2  # three judgments of two attempts, then nothing more
    assert doc["skipped"] == 7 and len(doc["skipped_items"]) == 7 and doc["unscored"] == 3
    assert scalar(db, "SELECT status FROM runs WHERE id = ?", [doc["run_id"]]) == "aborted"


def test_a_judge_that_times_out_on_everything_stops_like_an_unavailable_one(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """No reply before --timeout, every time: the adapter's own deadline (RequestTimeout) counts as the
    server failing, as `evaluate TRANSCRIPT` says for one transcript, so the run stops (exit 3)."""
    fake_llm.script(Reply("{}", delay=3.0))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 5)
    run = cohort(folder, db, "--concurrency", "1", "--retries", "0", "--timeout", "0.3", base_url=fake_llm.base_url)
    doc = run.doc
    assert run.code == 3 and doc["status"] == "aborted", doc
    assert "RequestTimeout" in doc["message"] and doc["skipped"] == 2


@pytest.mark.parametrize("ensemble", [["--samples", "2"], ["--jury", "openai/juror-a,openai/juror-b"]])
def test_samples_or_a_jury_failing_every_call_stop_like_a_single_model(fake_llm: FakeLLM, tmp_path: Path,
                                                                      ensemble: list[str]) -> None:
    """Every member of every judgment fails on the server's side (here 500s; a timeout is the same): the
    run stops with exit 3 after the first few judgments, as it does for one model and as `evaluate FILE
    --samples/--jury` does, instead of paying every transcript's retries and ending "completed"."""
    fake_llm.script(Error(500))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 8)
    run = cohort(folder, db, "--concurrency", "1", "--retries", "0", *ensemble, base_url=fake_llm.base_url)
    assert run.exception is None
    doc = run.doc
    assert run.code == 3 and doc["status"] == "aborted", doc
    assert "server errors" in doc["message"] and "InternalServerError" in doc["message"]
    assert len(fake_llm.chat_requests) == 3 * 2  # three judgments of two members, one attempt each
    assert doc["skipped"] == 5 and doc["unscored"] == 3
    assert scalar(db, "SELECT status FROM runs WHERE id = ?", [doc["run_id"]]) == "aborted"


def test_one_juror_answering_is_an_answer(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """A jury where one model answers and the other fails on every call is not an unavailable judge:
    the cohort completes (each transcript scored by the juror that answered)."""
    fake_llm.script(Call(valid), Error(500), Call(valid), Error(500), Call(valid), Error(500), Call(valid),
                    Error(500))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 4)
    run = cohort(folder, db, "--concurrency", "1", "--retries", "0", "--jury", "openai/juror-a,openai/juror-b",
                 base_url=fake_llm.base_url)
    assert run.doc["status"] == "completed", run.doc
    assert run.doc["skipped"] == 0


def test_server_errors_after_the_judge_answered_do_not_stop_the_run(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid), Error(500))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 6)
    run = cohort(folder, db, "--concurrency", "1", "--retries", "0", base_url=fake_llm.base_url)
    assert run.code == 1 and run.doc["status"] == "completed" and run.doc["unscored"] == 5


# -------------------------------------------------------------------------- --max-cost too small

def test_a_budget_below_one_judgments_worst_case_says_what_it_needs(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 5)
    run = cohort(folder, db, "--max-cost", "0.0001", "--price-in", "1000", "--price-out", "1000",
                 base_url=fake_llm.base_url)
    doc = run.doc
    assert run.code == 1 and len(fake_llm.chat_requests) == 0 and doc["cost_usd"] == 0
    msg = doc["message"]
    assert "below the worst case of a single judgment" in msg and "running again cannot help" in msg
    needed = float(msg.split("give --max-cost ")[1].split()[0])
    assert needed > 0.0001
    fake_llm.clear()
    enough = cohort(folder, db, "--max-cost", str(needed), "--price-in", "1000", "--price-out", "1000",
                    base_url=fake_llm.base_url)
    assert len(fake_llm.chat_requests) >= 1 and enough.doc["scored"] >= 1  # that budget does start one



def test_the_budget_a_refusal_asks_for_starts_whichever_transcript_comes_first() -> None:
    """Nothing fitted, so every transcript was refused; a re-run may try any of them first (workers
    reach the budget in no fixed order), so the figure asked for is the largest worst case refused,
    not the first: with the first (0.5 here) a re-run that tried the 0.9 one first judged nothing."""

    async def refuse_all() -> str:
        budget = Budget(0.0001)
        for worst in (0.5, 0.9, 0.2):
            assert not await budget.reserve(worst)
        return budget.message(3)

    msg = asyncio.run(refuse_all())
    assert "worst case of a single judgment ($0.5000" in msg and "give --max-cost 0.9000 or more" in msg

    async def rerun(order: tuple[float, ...]) -> bool:
        budget = Budget(0.9)
        return await budget.reserve(order[0])

    assert asyncio.run(rerun((0.9, 0.5, 0.2))) and asyncio.run(rerun((0.2, 0.9, 0.5)))


# ------------------------------------------------------------------------------ a full drive

@pytest.fixture
def small_drive(tmp_path: Path):
    """A real 32 MB tmpfs (needs root): writes past it fail with ENOSPC, as on a full disk."""
    mnt = tmp_path / "drive"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_drive_mid_run_is_exit_2_naming_the_file_and_keeps_what_was_stored(
        fake_llm: FakeLLM, tmp_path: Path, small_drive: Path) -> None:
    n, concurrency = 20, 2
    fake_llm.script(Call(valid, delay=0.2))
    folder, db = tmp_path / "cohort", small_drive / "e.duckdb"
    make_cohort(folder, n)
    proc = start(fake_llm, folder, db, "--concurrency", str(concurrency))
    wait_until(proc, lambda: len(fake_llm.chat_requests) >= 6)
    filler = _fill(small_drive)
    _, err = proc.communicate(timeout=120)
    flat = " ".join(err.split())
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "no transaction is active" not in err
    assert "no space left" in flat and str(small_drive) in flat and "free at least" in flat, flat
    paid = len(fake_llm.chat_requests)
    assert paid < n  # it stopped paying once nothing could be kept

    filler.unlink()  # space again: the same command stores what was kept and judges the rest
    fake_llm.clear()
    fake_llm.script(Call(valid))
    again = cohort(folder, db, "--concurrency", str(concurrency), base_url=fake_llm.base_url)
    assert again.code == 0, again.stderr
    assert again.doc["scored"] == n
    re_paid = paid + len(fake_llm.chat_requests) - n
    assert re_paid <= concurrency + 1, (paid, len(fake_llm.chat_requests))  # in flight, plus the one cut short
    rows = query(db, "SELECT cache_key, count(*) AS n FROM judgments GROUP BY cache_key")
    assert len(rows) == n and all(r["n"] == 1 for r in rows)


def test_a_failed_commit_reports_the_cause_not_the_rollback(tmp_path: Path, small_drive: Path) -> None:
    """The DuckDB error of a full drive surfaces as StoreFull naming the file (its ROLLBACK used to
    raise "no transaction is active" and hide it), and what was stored before stays readable."""
    db, entries = _entries(tmp_path, 2)
    target = small_drive / "e.duckdb"
    shutil.copy(db, target)
    with open_store(target) as store:
        fold(store, entries[:1])
    filler = _fill(small_drive)
    with pytest.raises(StoreFull, match="no space left") as caught, open_store(target) as store:
        for _ in range(50):  # a few commits until the drive refuses one
            fold(store, entries[1:])
            store.con.execute("DELETE FROM dimension_scores WHERE judgment_id = 'j1'")
            store.con.execute("DELETE FROM exchanges WHERE judgment_id = 'j1'")
            store.con.execute("DELETE FROM judgments WHERE id = 'j1'")
    assert str(target) in str(caught.value)
    filler.unlink()
    with Store(target, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM judgments WHERE id = 'j0'").fetchone()[0] == 1


# ------------------------------------------------------------------------------ the small parts

def test_budget_waits_for_the_work_in_flight_then_refuses() -> None:
    async def waits() -> bool:
        b = Budget(1.0)
        assert await b.reserve(0.6)
        waiting = asyncio.create_task(b.reserve(0.6))  # does not fit beside the first: waits for it
        await asyncio.sleep(0.01)
        assert not waiting.done()
        b.spend(0.2)  # the first cost far less than its worst case
        await b.release(0.6)
        return await waiting

    assert asyncio.run(waits())

    async def refuse() -> tuple[bool, str]:
        b = Budget(0.1)
        ok = await b.reserve(0.5)
        return ok, b.message(4)

    ok, msg = asyncio.run(refuse())
    assert not ok and "below the worst case of a single judgment ($0.5000" in msg and "--max-cost 0.5000" in msg

    async def stop_when_idle() -> tuple[bool, str]:
        b = Budget(1.0)
        assert await b.reserve(0.5)
        b.spend(0.7)
        await b.release(0.5)
        return await b.reserve(0.5), b.message(2)

    ok, msg = asyncio.run(stop_when_idle())
    assert not ok and msg.startswith("--max-cost reached: 2 transcript(s) left unjudged ($0.7000 spent")


def test_dedup_shares_one_judgment_between_identical_items() -> None:
    d = Dedup(force=False)
    assert d.classify("k", "a.md") == "judge"
    assert d.classify("k", "b.md") == "wait"
    d.wait("k", "b.md")
    assert d.finish("k", "j1", "scored") == ["b.md"]
    assert d.classify("k", "c.md") == "finished" and d.finished["k"] == ("j1", "scored")
    assert d.classify("other", "x.md") == "judge" and d.classify("other", "y.md") == "wait"
    d.wait("other", "y.md")
    assert d.leftovers() == ["y.md"] and d.leftovers() == []
    forced = Dedup(force=True)
    assert forced.classify("k", "a.md") == forced.classify("k", "b.md") == "judge"


def test_judge_health_counts_only_server_errors_before_any_reply() -> None:
    from evaluator.models import Exchange, Judgment

    def judgment(*errors: str | None) -> Judgment:
        ex = [Exchange(attempt=1, purpose="initial", dimensions=[], response_format="json", request_messages=[],
                       raw_response=None if e else "{}", error=e) for e in errors]
        return Judgment.model_construct(exchanges=ex, usage=type("U", (), {"calls": 2})())

    down = judgment("InternalServerError after 2 attempts: boom")
    assert server_failed(down) and not server_failed(judgment("RateLimitError after 2 attempts: slow down"))
    assert not server_failed(judgment(None))
    h = JudgeHealth(limit=2)
    assert h.judged(down) is None and h.judged(down) is not None
    h = JudgeHealth(limit=2)
    assert h.judged(judgment(None)) is None  # it answered once: later failures are ordinary ones
    assert h.judged(down) is None and h.judged(down) is None


def test_a_fifo_given_as_the_manifest_is_bad_input(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "roster.csv")
    run = cohort(tmp_path / "roster.csv", tmp_path / "e.duckdb")
    assert run.code == 2 and "not a regular file" in " ".join(run.stderr.split())


def test_a_failed_commit_puts_everything_back_in_order() -> None:
    """The commit buffer's undo: rows, memberships and journal segments return in front of what came
    after, so the next commit writes them all and nothing is lost."""
    from evaluator.batch.commits import Batch, CommitBuffer

    class NoJournal:  # the buffer's rows only; the journal has its own tests above
        io = asyncio.Lock()

    buf = CommitBuffer(NoJournal())  # type: ignore[arg-type]
    buf.add_row({"item": "a"}, {"cohort": "c", "transcript_hash": "h1"})
    first = Batch(items=list(buf.pending.items), members=dict(buf.pending.members))
    buf.pending = Batch()
    buf.add_row({"item": "b"}, None)
    buf.undo(first)
    assert [i["item"] for i in buf.pending.items] == ["a", "b"] and ("c", "h1") in buf.pending.members


def test_tally_counts_reused_and_new_judgments_apart() -> None:
    from evaluator.batch.summary import Tally

    t = Tally()
    t.reused("scored")
    t.reused("partial")
    t.failed("x.md", "x.md", "boom")
    t.skip("y.md")
    c = t.counters
    assert (c.scored, c.cached, c.partial, c.failed, c.skipped) == (1, 1, 1, 1, 1)
    assert t.totals()["failed"] == 2 and t.failures == [{"item": "x.md", "source": "x.md", "error": "boom"}]


def test_a_read_that_hangs_is_abandoned_at_its_deadline_and_the_next_one_runs(tmp_path: Path) -> None:
    from evaluator.batch.prepare import Reader

    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)

    async def go() -> int:
        reader = Reader(seconds=0.5)
        with pytest.raises(BadInput, match=r"longer than 0\.5 s"):
            await reader.run(fifo.read_text, fifo)  # open() blocks: no writer
        return await reader.run(lambda: 42, fifo)  # a fresh thread: not stuck behind the first

    assert asyncio.run(go()) == 42
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the abandoned thread finish


def test_a_read_interrupted_as_it_finishes_still_stops_the_producer(tmp_path: Path) -> None:
    """Ctrl-C landing in the same loop turn as a read's result (ordered so here, not raced): the read
    is interrupted. Python 3.11's asyncio.wait_for returned the result and swallowed the cancellation,
    so an interrupted run went on reading and judging (a flaky Ctrl-C test under load)."""
    from evaluator.batch.prepare import Reader

    async def go() -> None:
        loop = asyncio.get_running_loop()
        reader = Reader()

        def read() -> int:
            loop.call_soon_threadsafe(task.cancel)  # queued just before the reader hands its result over
            return 42

        task = asyncio.create_task(reader.run(read, tmp_path / "round.md"))
        try:
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            reader.close()

    asyncio.run(go())


def test_a_backlog_commits_in_bounded_batches_and_a_kill_between_them_loses_nothing(tmp_path: Path) -> None:
    """However many replies piled up (a stall), one commit takes at most `cap` of them; the journal
    segment goes only with the batch that takes its last entry, so a kill between two bounded
    commits replays the segment: the committed ones are skipped, the rest stored, none twice."""
    from evaluator.batch.commits import CommitBuffer
    from evaluator.batch.journal import Journal, JournalWriter

    db, entries = _entries(tmp_path, 5)
    buf = CommitBuffer(JournalWriter(Journal(db, "run-1")))

    async def pile_up() -> None:
        await asyncio.gather(*(buf.add_judgment(e) for e in entries))

    asyncio.run(pile_up())
    segment = buf.writer.journal.current
    assert segment is not None and segment.path.exists()
    with open_store(db) as store:
        first = asyncio.run(buf.take(cap=2))
        assert first.partial and len(first.entries) == 2 and not first.segments
        first.write(store, "run-1", {})
        buf.committed(first)
        assert segment.path.exists() and len(buf.pending.entries) == 3  # the rest waits, still journaled

        # a kill here: the next run folds the whole segment; the two committed are not stored twice
        replayed = read_entries(segment.path.read_bytes())
        assert [e.judgment_id for e in replayed] == [e.judgment_id for e in entries]
        assert store.stored_judgment_ids([e.judgment_id for e in replayed]) == {"j0", "j1"}

        sizes = [2]
        while True:
            batch = asyncio.run(buf.take(cap=2))
            sizes.append(len(batch.entries))
            batch.write(store, "run-1", {})
            buf.committed(batch)
            if not batch.partial:
                break
        assert sizes == [2, 2, 1] and not buf  # bounded, and all of them taken
        assert store.count("judgments") == 5
        assert store.con.execute("SELECT count(DISTINCT judgment_id) FROM exchanges").fetchone()[0] == sum(
            1 for e in entries if e.judgment.exchanges)
    assert not segment.path.exists()  # gone with the batch that took its last entry


def test_a_run_whose_replies_pile_up_stores_them_all_in_bounded_commits(tmp_path: Path) -> None:
    """No group commit during the run (a long flush interval): the end of the run finds more
    judgments pending than one commit takes, commits them in bounded batches, and every one lands
    with its run item; the journal is gone."""
    from evaluator.batch.commits import MAX_COMMIT_JUDGMENTS
    from evaluator.batch.runner import CohortRequest, score_cohort

    n = MAX_COMMIT_JUDGMENTS + 7
    folder, db = tmp_path / "cohort", tmp_path / "b.duckdb"
    make_cohort(folder, n)
    summary = score_cohort(CohortRequest(path=folder, cohort="pile", db=db, flush_seconds=600.0))
    assert summary.status == "completed" and summary.total == n and summary.failed == 0
    assert scalar(db, "SELECT count(*) FROM judgments") == n
    assert scalar(db, "SELECT count(*) FROM run_items WHERE run_id = ? AND judgment_id IS NOT NULL",
                  [summary.run_id]) == n
    assert not Path(f"{db}.journal").exists()


def test_a_backlog_past_its_bound_holds_the_worker_until_a_commit_makes_room(tmp_path: Path, monkeypatch) -> None:
    """Commits falling behind (a busy machine, a large store) used to let finished judgments pile up
    in memory without bound: past BACKLOG_JUDGMENTS the worker whose reply is already durable waits
    for a commit to be written before it takes more work; a store that stays held only delays it by
    BACKLOG_WAIT_SECONDS (the run goes on, as before)."""
    from evaluator.batch import commits
    from evaluator.batch.journal import Journal, JournalWriter

    monkeypatch.setattr(commits, "BACKLOG_JUDGMENTS", 3)
    db, entries = _entries(tmp_path, 5)
    buf = commits.CommitBuffer(JournalWriter(Journal(db, "run-1")))

    async def until_pending(n: int) -> None:
        for _ in range(500):
            if len(buf.pending.entries) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{n} entries never became pending")

    async def go() -> None:
        await asyncio.gather(*(buf.add_judgment(e) for e in entries[:2]))
        third = asyncio.create_task(buf.add_judgment(entries[2]))
        await until_pending(3)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not third.done()  # durable and pending, but its worker waits for room
        batch = await buf.take()
        for _ in range(20):
            await asyncio.sleep(0)
        assert not third.done()  # taken is not written: the memory is still held
        with open_store(db) as store:
            batch.write(store, "run-1", {})
        buf.committed(batch)
        await asyncio.wait_for(third, 5)

        monkeypatch.setattr(commits, "BACKLOG_WAIT_SECONDS", 0.05)
        monkeypatch.setattr(commits, "BACKLOG_JUDGMENTS", 1)
        await asyncio.wait_for(buf.add_judgment(entries[3]), 5)  # no commit comes: it goes on after the wait
        assert len(buf.pending.entries) == 1

    asyncio.run(go())
