"""The DuckDB store and the `evaluate` command, end to end with the offline baseline judge."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import StoreError
from evaluator.store.db import Store
from evaluator.store.migrations import MIGRATIONS

REPO = Path(__file__).resolve().parent.parent
LRU = REPO / "transcripts" / "lru_ttl_cache.md"
ENV_VARS = ("EVALUATOR_MODEL", "EVALUATOR_API_BASE", "EVALUATOR_API_KEY", "EVALUATOR_DB", "EVALUATOR_RUBRICS_DIR")
WIDE = {"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("isolated")


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args], env=WIDE)
    # a clean exit (typer.Exit / SystemExit), never an escaped exception
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for stream in (result.output, result.stdout, result.stderr):
        assert "Traceback" not in stream
    return result


def assert_json_error(r, code: int, needle: str) -> None:
    """Under --format json an error is also a JSON document on stdout (and nothing else is)."""
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == code and needle in doc["error"], doc


def flat(text: str) -> str:
    return " ".join(text.split())


def judge_json(db: Path, *extra: str) -> dict:
    r = invoke(LRU, "--db", db, "--format", "json", *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def query(db: Path, sql: str, params: list | None = None):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def count(db: Path, table: str) -> int:
    return query(db, f"SELECT count(*) FROM {table}")[0][0]


# --------------------------------------------------------------------------------------------
# migrations
# --------------------------------------------------------------------------------------------

def test_migrations_recorded_and_not_reapplied(tmp_path):
    db = tmp_path / "m.duckdb"
    with Store(db) as s:
        assert s.applied_migrations() == sorted(name for name, _ in MIGRATIONS)
        rows = s.con.execute("SELECT name, applied_at FROM schema_migrations ORDER BY name").fetchall()
        for table in ("transcripts", "rubric_versions", "runs", "judgments", "dimension_scores", "exchanges"):
            assert s.count(table) == 0
    with Store(db) as s:
        assert s.migrate() == []
        assert s.con.execute("SELECT name, applied_at FROM schema_migrations ORDER BY name").fetchall() == rows
    assert len(rows) == len(MIGRATIONS)


def test_store_creates_missing_parent_folder(tmp_path):
    db = tmp_path / "a" / "b" / "x.duckdb"
    with Store(db) as s:
        assert s.applied_migrations()
    assert db.exists()


def test_read_only_store_on_missing_file_is_clear(tmp_path):
    with pytest.raises(StoreError, match="nothing has been stored"):
        Store(tmp_path / "absent.duckdb", read_only=True)
    assert not (tmp_path / "absent.duckdb").exists()


def test_failed_save_leaves_nothing_behind(tmp_path):
    """One transaction per judgment: a failure while writing dimension rows rolls back every row; a
    judgment scoring a dimension twice is refused before anything is written."""
    from evaluator.ingest import load_transcript
    from evaluator.judge.baseline import BaselineJudge
    from evaluator.pipeline import judge_transcript
    from evaluator.rubrics import select_rubric

    t = load_transcript(LRU)
    rubric = select_rubric(None, t.exercise, REPO / "rubrics")
    judge = BaselineJudge()
    judgment = asyncio.run(judge_transcript(t, rubric, judge))
    twice = judgment.model_copy(update={"dimensions": judgment.dimensions + judgment.dimensions[:1]})
    no_status = judgment.dimensions[-1].model_copy(update={"status": None})  # NOT NULL: fails in the INSERT
    broken = judgment.model_copy(update={"dimensions": [*judgment.dimensions[:-1], no_status]})
    db = tmp_path / "tx.duckdb"
    with Store(db) as s:
        run_id = s.start_run(command="test", judge_info=judge.info(), rubric=rubric)
        for bad in (twice, broken):
            with pytest.raises(StoreError):
                s.save_judgment(run_id, bad, t, rubric)
            for table in ("transcripts", "rubric_versions", "judgments", "dimension_scores", "exchanges"):
                assert s.count(table) == 0, table
        # the connection is still usable: the good judgment saves afterwards
        jid = s.save_judgment(run_id, judgment, t, rubric)
        assert s.count("judgments") == 1
        assert s.count("dimension_scores") == len(judgment.dimensions)
        assert s.load_judgment(jid)["cache_key"] == judgment.cache_key


# --------------------------------------------------------------------------------------------
# a baseline run through the CLI
# --------------------------------------------------------------------------------------------

def test_baseline_run_is_stored(tmp_path):
    (tmp_path / "tmp").mkdir()  # a relative path, in an existing folder
    db = Path("tmp/e.duckdb")
    doc = judge_json(db)
    assert (tmp_path / "tmp" / "e.duckdb").exists()
    assert doc["status"] == "scored"
    assert doc["cache"]["hit"] is False
    jid = doc["store"]["judgment_id"]
    assert jid
    assert count(db, "judgments") == 1
    assert count(db, "runs") == 1
    assert count(db, "transcripts") == 1
    assert query(db, "SELECT hash, candidate, exercise, session_date FROM transcripts") == [
        (doc["transcript"]["hash"], "Dana Smith", "lru_ttl_cache", "2025-03-14")]
    dims = query(db, "SELECT dimension_id, score, status FROM dimension_scores WHERE judgment_id = ? ORDER BY position",
                 [jid])
    assert len(dims) >= 5
    assert [(d["id"], d["score"], d["status"]) for d in doc["dimensions"]] == [tuple(r) for r in dims]
    (status, kind, key, run_status), = query(
        db, "SELECT j.status, j.judge_kind, j.cache_key, r.status FROM judgments j JOIN runs r ON r.id = j.run_id")
    assert (status, kind, key, run_status) == ("scored", "baseline", doc["cache"]["key"], "scored")


def test_second_run_is_a_cache_hit_and_force_judges_again(tmp_path):
    db = tmp_path / "e.duckdb"
    first = judge_json(db)
    second = judge_json(db)
    assert second["cache"]["hit"] is True
    assert second["cache"]["key"] == first["cache"]["key"]
    assert second["store"]["judgment_id"] == first["store"]["judgment_id"]
    assert second["usage"]["calls"] == 0
    assert [(d["id"], d["score"], d["status"]) for d in second["dimensions"]] == \
        [(d["id"], d["score"], d["status"]) for d in first["dimensions"]]
    assert count(db, "judgments") == 1
    forced = judge_json(db, "--force")
    assert forced["cache"]["hit"] is False
    assert forced["store"]["judgment_id"] != first["store"]["judgment_id"]
    assert count(db, "judgments") == 2
    assert count(db, "transcripts") == 1
    assert count(db, "dimension_scores") == 2 * len(first["dimensions"])


def test_no_store_creates_no_file(tmp_path):
    (tmp_path / "tmp").mkdir()
    r = invoke(LRU, "--db", "tmp/e.duckdb", "--no-store", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["store"]["judgment_id"] is None
    assert list((tmp_path / "tmp").iterdir()) == []
    (tmp_path / "tmp").rmdir()
    r = invoke(LRU, "--no-store", "--format", "json")
    assert r.exit_code == 0
    assert list(tmp_path.iterdir()) == []


def test_default_db_is_in_the_working_directory(tmp_path):
    r = invoke(LRU, "--format", "json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "evaluator.duckdb").exists()


# --------------------------------------------------------------------------------------------
# unusable databases
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("garbage", [os.urandom(4096), b"hello, this is not a database\n" * 10])
def test_db_that_is_not_duckdb(tmp_path, garbage):
    db = tmp_path / "notes.duckdb"
    db.write_bytes(garbage)
    r = invoke(LRU, "--db", db, "--format", "json")
    assert r.exit_code == 2
    err = flat(r.stderr)
    assert "notes.duckdb" in err
    assert re.search(r"not a valid DuckDB|cannot open", err), err
    assert_json_error(r, 2, "notes.duckdb")
    assert db.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.duckdb"]


def test_db_that_is_a_directory(tmp_path):
    (tmp_path / "dir.duckdb").mkdir()
    r = invoke(LRU, "--db", tmp_path / "dir.duckdb")
    assert r.exit_code == 2
    assert "dir.duckdb" in flat(r.stderr)


LOCKER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])          # read-write: takes DuckDB's file lock
    con.execute("SELECT count(*) FROM judgments").fetchall()
    print("ready", flush=True)
    time.sleep(60)
""")


def test_db_locked_by_another_process(tmp_path):
    db = tmp_path / "shared.duckdb"
    first = judge_json(db)
    before = query(db, "SELECT id, status, cache_key FROM judgments")
    n_dims = count(db, "dimension_scores")
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for extra in ([], ["--force"]):
            r = invoke(LRU, "--db", db, "--format", "json", *extra)
            assert r.exit_code == 2, r.output
            err = flat(r.stderr)
            assert "shared.duckdb" in err
            assert re.search(r"lock|another process", err, re.I), err
            assert_json_error(r, 2, "shared.duckdb")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert query(db, "SELECT id, status, cache_key FROM judgments") == before
    assert count(db, "dimension_scores") == n_dims
    again = judge_json(db)
    assert again["cache"]["hit"] is True
    assert again["store"]["judgment_id"] == first["store"]["judgment_id"]


def test_a_cohort_waiting_for_a_held_database_says_so_then_finishes(tmp_path):
    """The file is held by another process for a few seconds: the cohort says it is waiting (not a
    silent terminal), then runs once the file is free."""
    db = tmp_path / "shared.duckdb"
    judge_json(db)
    holder = LOCKER.replace("time.sleep(60)", "time.sleep(6)")  # the notice comes after 2 s of waiting
    proc = subprocess.Popen([sys.executable, "-c", holder, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        r = invoke("cohort", REPO / "transcripts", "--cohort", "waited", "--db", db, "--format", "json")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert r.exit_code == 0, r.output
    assert "held by another process: waiting" in flat(r.stderr)
    assert json.loads(r.stdout)["total"] == len(list((REPO / "transcripts").glob("*.md")))


# --------------------------------------------------------------------------------------------
# bad input through the CLI
# --------------------------------------------------------------------------------------------

def _missing(tmp: Path) -> list[str]:
    return [str(tmp / "absent.md")]


def _empty(tmp: Path) -> list[str]:
    (tmp / "empty.md").write_text("")
    return [str(tmp / "empty.md")]


def _binary(tmp: Path) -> list[str]:
    (tmp / "shot.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    return [str(tmp / "shot.md")]


def _directory(tmp: Path) -> list[str]:
    (tmp / "folder.md").mkdir()
    return [str(tmp / "folder.md")]


def _unknown_rubric(tmp: Path) -> list[str]:
    return [str(LRU), "--rubric", "no_such_rubric"]


def _bad_format(tmp: Path) -> list[str]:
    return [str(LRU), "--format", "xml"]


def _missing_code(tmp: Path) -> list[str]:
    return [str(LRU), "--code", str(tmp / "absent.py")]


BAD_INPUT = {
    "missing_file": (_missing, "absent.md"),
    "empty_file": (_empty, "empty"),
    "binary_file": (_binary, "binary"),
    "directory": (_directory, "directory"),
    "unknown_rubric": (_unknown_rubric, "no_such_rubric"),
    "bad_format": (_bad_format, "xml"),
    "missing_code_file": (_missing_code, "absent.py"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_exit_2(tmp_path, case):
    make_args, needle = BAD_INPUT[case]
    args = make_args(tmp_path)
    db = tmp_path / "e.duckdb"
    r = invoke(*args, "--db", db)
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert needle in flat(r.stderr), r.stderr
    assert r.stdout.strip() == ""
    assert "error" in r.stderr.lower()
    assert not db.exists()  # nothing stored for a rejected request


def test_bad_input_through_the_console_script(tmp_path):
    """The installed entry point, in a real process: a clean message, no traceback."""
    exe = Path(sys.executable).with_name("evaluate")
    if not exe.exists():
        pytest.skip("console script not installed next to this interpreter")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    p = subprocess.run([str(exe), str(tmp_path / "absent.md"), "--no-store"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60)
    assert p.returncode == 2
    assert "absent.md" in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


def test_usage_error_is_exit_2(tmp_path):
    r = invoke(LRU, "--no-such-option")
    assert r.exit_code == 2


# --------------------------------------------------------------------------------------------
# the JSON document and the notices
# --------------------------------------------------------------------------------------------

def test_json_document_shape(tmp_path):
    doc = judge_json(tmp_path / "e.duckdb")
    assert doc["status"] in ("scored", "partial", "unscored")
    assert isinstance(doc["dimensions"], list) and len(doc["dimensions"]) >= 5
    for d in doc["dimensions"]:
        assert {"id", "score", "status", "evidence", "rationale"} <= set(d)
        assert d["status"] in ("scored", "not_observed", "unscored")
        if d["status"] == "scored":
            assert isinstance(d["score"], int) and 1 <= d["score"] <= 5
        else:
            assert d["score"] is None
        assert isinstance(d["rationale"], str)
        assert isinstance(d["evidence"], list)
        for e in d["evidence"]:
            assert isinstance(e["quote"], str) and e["quote"].strip()
    assert [d["id"] for d in doc["dimensions"]][:5] == \
        ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]
    assert isinstance(doc["flags"], list) and all(isinstance(f, str) for f in doc["flags"])
    assert doc["judge"]["kind"] == "baseline"
    assert "model" in doc["judge"] and doc["judge"]["model"] is None
    usage = doc["usage"]
    assert {"calls", "prompt_tokens", "completion_tokens", "cost_usd"} <= set(usage)
    assert usage["calls"] == 0 and usage["prompt_tokens"] == 0 and usage["completion_tokens"] == 0
    assert usage["cost_usd"] in (0, 0.0)


def test_evidence_quotes_are_verbatim(tmp_path):
    doc = judge_json(tmp_path / "e.duckdb")
    haystack = flat(LRU.read_text() + "\n" + (LRU.parent / "lru_ttl_cache.py").read_text())
    for d in doc["dimensions"]:
        for e in d["evidence"]:
            assert flat(e["quote"]) in haystack, (d["id"], e["quote"])


def test_baseline_notice_shown_json_on_stderr(tmp_path):
    r = invoke(LRU, "--no-store", "--format", "json")
    assert r.exit_code == 0
    assert "offline baseline judge" in flat(r.stderr).lower()
    json.loads(r.stdout)  # stdout stays pure JSON


def test_baseline_notice_shown_in_table(tmp_path):
    r = invoke(LRU, "--no-store")
    assert r.exit_code == 0, r.output
    out = flat(r.output).lower()
    assert "offline baseline judge" in out
    for dim in ("invariant", "edge_cases", "restraint", "recovery", "cost_awareness"):
        assert dim in out


# --------------------------------------------------------------------------------------------
# help, lazy imports and the default command
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--help"], ["judge", "--help"], ["rubrics", "--help"]])
def test_help_does_not_import_litellm(args):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from evaluator.cli import app\n"
        f"r = CliRunner().invoke(app, {args!r})\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'Usage' in r.output, r.output\n"
        "print('litellm' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "False"


def test_help_lists_the_commands():
    r = invoke("--help")
    assert r.exit_code == 0
    assert "judge" in r.output and "rubrics" in r.output


def test_default_command_is_judge(tmp_path):
    a = invoke(LRU, "--no-store", "--format", "json")
    b = invoke("judge", LRU, "--no-store", "--format", "json")
    assert a.exit_code == b.exit_code == 0
    da, db_ = json.loads(a.stdout), json.loads(b.stdout)
    for doc in (da, db_):
        doc["usage"].pop("wall_seconds")
        doc["usage"].pop("latency_ms", None)
    assert da == db_


# ------------------------------------------------------------------------------------ runs listing

def test_runs_lists_newest_first_with_counts_and_filters_by_cohort(tmp_path):
    db = tmp_path / "runs.duckdb"
    judge_json(db)
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a.md", "b.md"):
        (folder / name).write_text(LRU.read_text(encoding="utf-8") + f"\n\nInterviewer: thanks ({name}).\n",
                                   encoding="utf-8")
    assert invoke("cohort", folder, "--cohort", "spring", "--db", db, "--format", "json").exit_code == 0

    runs = json.loads(invoke("runs", "--db", db, "--format", "json").stdout)
    assert [r["command"] for r in runs] == ["cohort", "evaluate"]  # newest first
    assert runs[0]["cohort"] == "spring" and runs[0]["status"] == "completed"
    assert (runs[0]["total"], runs[0]["scored"]) == (2, 2)
    assert runs[0]["pid"] == os.getpid() and runs[0]["host"]  # the owner is recorded
    only = json.loads(invoke("runs", "--db", db, "--cohort", "spring", "-f", "json").stdout)
    assert [r["id"] for r in only] == [runs[0]["id"]]
    assert json.loads(invoke("runs", "--db", db, "--limit", "1", "-f", "json").stdout)[0]["id"] == runs[0]["id"]
    table = flat(invoke("runs", "--db", db).stdout)
    assert runs[0]["id"][:8] in table and "completed" in table and "2/2" in table and "spring" in table
    typo = invoke("runs", "--db", db, "--cohort", "sprnig")  # as `judgments list`: an error, not "no runs yet"
    assert typo.exit_code == 2 and "no cohort named 'sprnig'" in flat(typo.stderr) and "known: spring" in flat(typo.stderr)


def test_every_command_that_reads_a_cohort_says_the_same_for_an_unknown_one(tmp_path):
    """`report --cohort` suggested the name meant; `runs`, `judgments list`, `export` and `batches` each
    had their own wording, or none (`batches` said "no provider batches" for a typo). One message now."""
    db = tmp_path / "c.duckdb"
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.md").write_text(LRU.read_text(encoding="utf-8"), encoding="utf-8")
    assert invoke("cohort", folder, "--cohort", "spring-2026", "--db", db, "--format", "json").exit_code == 0
    commands = [["runs"], ["judgments", "list"], ["export", tmp_path / "out.csv"], ["batches", "list"],
                ["batches", "collect"], ["batches", "cancel"], ["report", "--out", tmp_path / "rep"]]
    for command in commands:
        r = invoke(*command, "--db", db, "--cohort", "spring2026")
        assert r.exit_code == 2, (command, r.output)
        assert ("no cohort named 'spring2026' in the store (did you mean 'spring-2026'?); known: spring-2026"
                in flat(r.stderr)), (command, r.stderr)
        ok = invoke(*command, "--db", db, "--cohort", "spring-2026")
        assert ok.exit_code == 0, (command, ok.output)


def test_runs_bad_input_is_a_clear_error(tmp_path):
    missing = invoke("runs", "--db", tmp_path / "none.duckdb")
    assert missing.exit_code == 2 and "no database" in flat(missing.stderr)
    db = tmp_path / "runs.duckdb"
    judge_json(db)
    bad = invoke("runs", "--db", db, "--limit", "0")
    assert bad.exit_code == 2 and "--limit" in flat(bad.stderr)


def test_a_running_run_whose_process_died_is_killed_and_older_databases_still_list(tmp_path):
    from evaluator.store.runs import effective_status, recent_runs, this_host

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)  # that process has exited
    assert effective_status("running", dead_pid, this_host()) == "killed"
    assert effective_status("running", os.getpid(), this_host()) == "running"  # this process is alive
    assert effective_status("running", dead_pid, "another-host") == "running"  # cannot be checked from here
    assert effective_status("completed", dead_pid, this_host()) == "completed"

    db = tmp_path / "runs.duckdb"
    judge_json(db)
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET status = 'running', finished_at = NULL, pid = ?", [dead_pid])
    con.close()
    assert [r["status"] for r in recent_runs(db)] == ["killed"]  # read-only listing: the truth, stored or not
    judge_json(db, "--force")  # the next run records it
    stored = dict(query(db, "SELECT status, count(*) FROM runs GROUP BY status"))
    assert stored == {"killed": 1, "scored": 1}  # a single-transcript run ends with its judgment's status

    con = duckdb.connect(str(db))  # a database written before the owner columns existed
    con.execute("ALTER TABLE runs DROP COLUMN pid")
    con.execute("ALTER TABLE runs DROP COLUMN host")
    con.execute("ALTER TABLE runs DROP COLUMN request_key")  # and before the resume key (0008)
    con.execute("DELETE FROM schema_migrations WHERE name IN ('0005_run_owner', '0008_run_journal')")
    con.close()
    listed = recent_runs(db)
    assert len(listed) == 2 and all(r["pid"] is None for r in listed)
