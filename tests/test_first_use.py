"""Mistakes a new user makes on the first day, over the real CLI: a typo in `labels import --rubric`,
a `--db` path in a folder that does not exist on `evaluate report`, commands with nothing to list, and
the wording of what they are told when a model server is down."""

from __future__ import annotations

import socket

import pytest
from support import LRU, REPO
from typer.testing import CliRunner

from evaluator.cli import app

pytestmark = pytest.mark.usefixtures("isolated")
LABELS = REPO / "datasets" / "sample_labels.csv"


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def words(text: str) -> str:
    """The output with rich's line wrapping undone (tests never depend on the terminal's width)."""
    return " ".join(text.split())


# -- labels import --rubric TYPO -----------------------------------------------------------------------------
def test_a_mistyped_label_rubric_is_one_error_before_anything_is_read(tmp_path):
    """Checked once, up front: not repeated for every transcript of the file."""
    r = run("labels", "import", LABELS, "--rubric", "defualt", "--transcripts", REPO / "transcripts",
            "--db", tmp_path / "l.duckdb")
    assert r.exit_code == 2, r.output
    out = words(r.output)
    assert out.count("unknown rubric 'defualt'") == 1, r.output
    assert "did you mean 'default'?" in out
    assert "Traceback" not in r.output


def test_a_mistyped_label_rubric_is_refused_when_the_file_was_imported_already(tmp_path):
    """"Already imported, nothing to do" with exit 0 would hide the typo."""
    db = tmp_path / "l.duckdb"
    first = run("labels", "import", LABELS, "--transcripts", REPO / "transcripts", "--db", db)
    assert first.exit_code == 0, first.output
    again = run("labels", "import", LABELS, "--rubric", "defualt", "--db", db)
    assert again.exit_code == 2, again.output
    assert "unknown rubric 'defualt'" in words(again.output)
    assert "already imported" not in words(again.output)


# -- evaluate report --db in a folder that does not exist ----------------------------------------------------
def test_report_refuses_a_db_in_a_missing_folder_like_every_command(tmp_path):
    """The advice used to be "judge some transcripts first (evaluate TRANSCRIPT.md --db nodir/x.duckdb)",
    which then fails for the missing folder: say what is wrong instead, as every other --db does."""
    r = run("report", "--db", "nodir/x.duckdb", "--out", "rep")  # relative: the cwd is tmp_path
    assert r.exit_code == 2, r.output
    out = words(r.output)
    assert "does not exist" in out and "judge some transcripts first" not in out
    assert not (tmp_path / "rep").exists()


def test_report_reads_evaluator_db_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALUATOR_DB", "nodir/x.duckdb")
    r = run("report", "--out", "rep")
    assert r.exit_code == 2, r.output
    assert "does not exist" in words(r.output)


# -- evaluate batches with nothing in the ledger -------------------------------------------------------------
def _empty_store(path: str) -> None:
    """A database with nothing in it yet (a missing one is refused, as by `runs`)."""
    from evaluator.store.db import open_store

    with open_store(path):
        pass


@pytest.mark.parametrize("action", ["list", "collect", "cancel"])
def test_batches_with_none_in_the_store_says_so(tmp_path, action):
    """An empty table with headers only reads like a rendering fault: say there is nothing, and how
    batches come to be. (The cohort exists, judged live: an unknown one is a typo, refused as by
    every command that reads a cohort.)"""
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "a.md").write_text((REPO / "transcripts" / "lru_ttl_cache.md").read_text())
    assert run("cohort", tmp_path / "live", "--cohort", "spring", "--db", "b.duckdb").exit_code == 0
    r = run("batches", action, "--db", "b.duckdb", "--cohort", "spring")
    assert r.exit_code == 0, r.output
    out = words(r.output)
    assert "no provider batches" in out and "cohort 'spring'" in out and "evaluate cohort" in out, r.output
    assert "ledger id" not in out


def test_batches_json_with_none_is_an_empty_list(tmp_path):
    _empty_store("b.duckdb")
    r = run("batches", "--db", "b.duckdb", "--format", "json")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "[]"


# -- a model server that is not running ----------------------------------------------------------------------
def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("retries", "said"), [("0", "after 1 attempt:"), ("1", "after 2 attempts:")])
def test_unreachable_model_counts_its_attempts_in_words(tmp_path, retries, said):
    """`--retries 0` is one attempt, not "1 attempts"."""
    base = f"http://127.0.0.1:{_unused_port()}/v1"
    r = run(LRU, "--model", "openai/test-model", "--api-base", base, "--retries", retries, "--retry-wait", "0",
            "--db", "e.duckdb")
    assert r.exit_code == 3, r.output
    assert "unreachable" in words(r.output) and said in words(r.output), r.output


# -- a label or agreement command while another process briefly holds the store ----------------------------
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])          # read-write: takes DuckDB's file lock, as a cohort's commit does
print("ready", flush=True)
time.sleep(1.5)
"""


@pytest.mark.parametrize("command", [["labels", "import", LABELS, "--transcripts", REPO / "transcripts"],
                                     ["labels", "list"], ["agreement", "--bootstrap", "0"]])
def test_label_commands_wait_for_a_briefly_held_store_like_evaluate_does(tmp_path, command):
    """A cohort holds the store for short sessions only; `evaluate FILE`, `runs`, `show` and `report`
    wait for one to end. The label commands failed at once ("in use by another process") instead."""
    import subprocess
    import sys

    db = tmp_path / "shared.duckdb"
    assert run(LRU, "--db", db).exit_code == 0
    assert run("labels", "import", LABELS, "--transcripts", REPO / "transcripts", "--db", db).exit_code == 0
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        r = run(*command, "--db", db)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert r.exit_code == 0, r.output


# -- a score column with no dimension column -----------------------------------------------------------------
@pytest.mark.parametrize("header", ["transcript,rater,score", "File;Annotator;Rating"])
def test_a_score_column_without_a_dimension_column_is_one_header_error(tmp_path, header):
    """A first guess at a label file (one overall score per transcript) used to get "line 2: no dimension
    columns" repeated for every row; the header is what is wrong, and it can say how to fix it."""
    sep = ";" if ";" in header else ","
    rows = "".join(f"{sep.join([name, 'r1', '3'])}\n" for name in ("agent_loop.md", "lru_ttl_cache.md"))
    (tmp_path / "labels.csv").write_text(header + "\n" + rows, encoding="utf-8")
    r = run("labels", "import", "labels.csv", "--transcripts", REPO / "transcripts", "--db", "l.duckdb")
    assert r.exit_code == 2, r.output
    out = words(r.output)
    assert "line 1:" in out and "'dimension' column" in out and "criterion" in out, out
    assert "line 2" not in out and "line 3" not in out, out


def test_a_wide_label_file_with_a_total_column_still_imports(tmp_path):
    """The header check above is for files with no dimension at all: an extra total is ignored as before."""
    (tmp_path / "labels.csv").write_text("transcript,rater,invariant,edge_cases,score,notes\n"
                                         "agent_loop.md,r1,2,3,5,ok\n", encoding="utf-8")
    r = run("labels", "import", "labels.csv", "--transcripts", REPO / "transcripts", "--db", "l.duckdb")
    assert r.exit_code == 0, r.output
    assert "2 scored" in words(r.output)


# -- evaluate cohort FILE: the reverse of `evaluate FOLDER` --------------------------------------------------
def test_cohort_of_one_transcript_file_points_at_evaluate_file(tmp_path):
    """`evaluate FOLDER` already says to run `evaluate cohort`; the reverse mistake says to run `evaluate FILE`."""
    r = run("cohort", LRU, "--cohort", "x", "--db", tmp_path / "c.duckdb")
    assert r.exit_code == 2, r.output
    out = words(r.output)
    assert f"expected a folder of transcripts or a manifest (.csv, .jsonl); to judge this one transcript, run `evaluate {LRU}`" in out


def test_cohort_of_a_non_transcript_file_gets_no_evaluate_hint(tmp_path):
    other = tmp_path / "notes.pdf"
    other.write_bytes(b"%PDF")
    r = run("cohort", other, "--cohort", "x", "--db", tmp_path / "c.duckdb")
    assert r.exit_code == 2, r.output
    out = words(r.output)
    assert "expected a folder of transcripts or a manifest" in out and "to judge this one transcript" not in out
