"""Label files: layouts, validation with line numbers, all-or-nothing import, not-observed vs missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from evaluator.calibrate.labels import (
    TranscriptMatch,
    parse_cell,
    read_score_file,
    validate_rows,
)
from evaluator.calibrate.records import ScaleSpec
from evaluator.cli import app
from evaluator.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "transcripts"
runner = CliRunner()

DIMS = {"invariant": False, "edge_cases": False, "recovery": True}


def resolver(known=("a.md", "b.md")):
    def resolve(ref):
        if ref not in known:
            return f"unknown transcript '{ref}'"
        return TranscriptMatch(key=f"hash-{ref}", source=ref, rubric_id="default", rubric_version="default@x",
                               scale=ScaleSpec(min=1, max=5), dimensions=DIMS)
    return resolve


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("cell, expected", [
    ("4", ("scored", 4.0)), (" 3.5 ", ("scored", 3.5)), ("", ("missing", None)), (None, ("missing", None)),
    ("n/a", ("missing", None)), ("not_observed", ("not_observed", None)), ("Not Observed", ("not_observed", None)),
    (2, ("scored", 2.0)),
])
def test_parse_cell(cell, expected):
    assert parse_cell(cell) == expected


@pytest.mark.parametrize("cell", ["four", "nan", "inf", True])
def test_parse_cell_rejects(cell):
    with pytest.raises(ValueError):
        parse_cell(cell)


def test_long_and_wide_csv_and_jsonl_give_the_same_labels(tmp_path):
    long = write(tmp_path, "long.csv", "transcript,rater,dimension,score\n"
                                       "a.md,r1,invariant,4\na.md,r1,recovery,not_observed\na.md,r1,edge_cases,\n")
    wide = write(tmp_path, "wide.csv", "transcript,rater,invariant,recovery,edge_cases,notes\n"
                                       "a.md,r1,4,not_observed,,fine\n")
    jsonl_long = write(tmp_path, "long.jsonl", "\n".join(json.dumps(r) for r in [
        {"transcript": "a.md", "rater": "r1", "dimension": "invariant", "score": 4},
        {"transcript": "a.md", "rater": "r1", "dimension": "recovery", "score": "not_observed"},
        {"transcript": "a.md", "rater": "r1", "dimension": "edge_cases", "score": None}]) + "\n")
    jsonl_wide = write(tmp_path, "wide.jsonl", json.dumps(
        {"transcript": "a.md", "rater": "r1", "scores": {"invariant": 4, "recovery": "not_observed",
                                                           "edge_cases": None}}) + "\n")
    results = []
    for path in (long, wide, jsonl_long, jsonl_wide):
        parsed = read_score_file(path)
        labels, problems = validate_rows(parsed.rows, resolver())
        assert problems == []
        results.append(sorted((lb.transcript, lb.rater, lb.dimension, lb.status, lb.score) for lb in labels))
    assert all(r == results[0] for r in results)
    assert ("hash-a.md", "r1", "edge_cases", "missing", None) in results[0]
    assert ("hash-a.md", "r1", "recovery", "not_observed", None) in results[0]
    assert read_score_file(wide).layout == "wide" and read_score_file(long).layout == "long"


def test_every_problem_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, "bad.csv", "\n".join([  # noqa: FLY002
        "transcript,rater,dimension,score",
        "a.md,r1,invariant,4",           # 2 ok
        "a.md,r1,invariant,3",           # 3 duplicate of line 2
        "a.md,r1,invariant_x,3",         # 4 unknown dimension
        "a.md,r1,edge_cases,7",          # 5 outside the scale
        "nope.md,r1,invariant,3",        # 6 unknown transcript
        "a.md,r3,edge_cases,not_observed",  # 7 not allowed for this dimension
        "b.md,r1,recovery,great",        # 8 not a number
        "b.md,r2,recovery,0.5",          # 9 outside the scale (fractional)
    ]) + "\n")
    _, problems = validate_rows(read_score_file(path).rows, resolver())
    by_line = {p.line: p.message for p in problems}
    assert set(by_line) == {3, 4, 5, 6, 7, 8, 9}
    assert "duplicate" in by_line[3] and "line 2" in by_line[3]
    assert "unknown dimension 'invariant_x'" in by_line[4]
    assert "outside the scale 1-5" in by_line[5]
    assert "unknown transcript 'nope.md'" in by_line[6]
    assert "not allowed" in by_line[7]
    assert "not a number" in by_line[8]
    assert "outside the scale" in by_line[9]


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("transcript,dimension,score\na.md,invariant,3\n", "no 'rater' column"),
    ("rater,dimension,score\nr1,invariant,3\n", "no 'transcript' column"),
    ("transcript,rater,dimension\na.md,r1,invariant\n", "needs a 'score' column"),
    ("transcript,rater,dimension,score\na.md,r1,invariant,3,extra\n", "line 2: 5 fields"),
    ("transcript,rater,dimension,score\n", "no labels found"),
])
def test_structural_problems(tmp_path, text, fragment):
    with pytest.raises(BadInput) as err:
        read_score_file(write(tmp_path, "f.csv", text))
    assert fragment in str(err.value)


def test_bad_jsonl_line_is_named(tmp_path):
    path = write(tmp_path, "f.jsonl", '{"transcript": "a.md", "rater": "r", "dimension": "invariant", "score": 3}\n'
                                      '{"transcript": "a.md", "rater": \n')
    with pytest.raises(BadInput) as err:
        read_score_file(path)
    assert "line 2: not valid JSON" in str(err.value)


# -- through the CLI and the store ----------------------------------------------------------------------
def _count(db: Path, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_import_is_all_or_nothing_and_exits_2(tmp_path):
    shutil.copy(SAMPLES / "agent_loop.md", tmp_path / "agent_loop.md")
    db = tmp_path / "e.duckdb"
    bad = write(tmp_path, "labels.csv", "transcript,rater,dimension,score\n"
                                        "agent_loop.md,r1,invariant,3\n"
                                        "agent_loop.md,r1,edge_cases,9\n"
                                        "missing_file.md,r1,invariant,2\n")
    result = runner.invoke(app, ["labels", "import", str(bad), "--db", str(db)])
    assert result.exit_code == 2
    out = result.output
    assert "line 3" in out and "outside the scale" in out and "line 4" in out and "missing_file.md" in out
    assert "nothing was imported" in out
    assert "Traceback" not in out
    assert _count(db, "human_labels") == 0 and _count(db, "label_imports") == 0


@pytest.mark.parametrize("width", ["narrow", "80", "400"])  # rich wraps at the terminal's width: read words
def test_import_keeps_not_observed_and_missing_distinct_and_is_idempotent(tmp_path, width):
    shutil.copy(SAMPLES / "agent_loop.md", tmp_path / "agent_loop.md")
    db = tmp_path / "e.duckdb"
    good = write(tmp_path, "labels.csv", "transcript,rater,dimension,score\n"
                                         "agent_loop.md,r1,invariant,3\n"
                                         "agent_loop.md,r1,recovery,not_observed\n"
                                         "agent_loop.md,r1,edge_cases,\n")
    # "narrow" breaks the line between "already" and "imported", as an 80-column terminal did for some paths
    columns = str(len(f"{good}: already") + 1) if width == "narrow" else width
    runner = CliRunner(env={"COLUMNS": columns})
    result = runner.invoke(app, ["labels", "import", str(good), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "1 scored, 1 not observed, 1 missing" in " ".join(result.output.split())
    con = duckdb.connect(str(db), read_only=True)
    rows = dict(con.execute("SELECT dimension_id, status || ':' || coalesce(CAST(score AS VARCHAR), '-')"
                            " FROM human_labels").fetchall())
    con.close()
    assert rows == {"invariant": "scored:3.0", "recovery": "not_observed:-", "edge_cases": "missing:-"}
    again = runner.invoke(app, ["labels", "import", str(good), "--db", str(db)])
    assert again.exit_code == 0 and "already imported" in " ".join(again.output.split())
    assert _count(db, "human_labels") == 3
    listed = runner.invoke(app, ["labels", "list", "--db", str(db), "--format", "json"])
    assert json.loads(listed.output)[0]["not_observed"] == 1


def test_transcript_matched_by_stored_hash(tmp_path):
    db = tmp_path / "e.duckdb"
    judged = runner.invoke(app, [str(SAMPLES / "cosine_topk.md"), "--db", str(db)])
    assert judged.exit_code in (0, 1), judged.output
    con = duckdb.connect(str(db), read_only=True)
    digest = con.execute("SELECT hash FROM transcripts").fetchone()[0]
    con.close()
    labels = write(tmp_path, "l.csv", f"transcript,rater,dimension,score\n{digest[:12]},r1,invariant,1\n")
    result = runner.invoke(app, ["labels", "import", str(labels), "--db", str(db)])
    assert result.exit_code == 0, result.output


def test_sample_labels_import_cleanly(tmp_path):
    db = tmp_path / "e.duckdb"
    result = runner.invoke(app, ["labels", "import", str(ROOT / "datasets" / "sample_labels.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    statuses = dict(con.execute("SELECT status, count(*) FROM human_labels GROUP BY status").fetchall())
    raters = {r[0] for r in con.execute("SELECT DISTINCT rater FROM human_labels").fetchall()}
    con.close()
    assert raters == {"rater_a", "rater_b"}
    assert statuses.get("not_observed", 0) >= 2 and statuses.get("missing", 0) >= 1


def test_the_same_file_under_another_rubric_is_imported_against_that_rubric(tmp_path):
    """Labels are checked and recorded against a rubric: re-importing a file under another --rubric
    imports it (against that rubric); only the same file against the same rubric is "already imported",
    and the message says which rubric it was imported against."""
    shutil.copy(SAMPLES / "agent_loop.md", tmp_path / "agent_loop.md")
    db = tmp_path / "e.duckdb"
    good = write(tmp_path, "labels.csv", "transcript,rater,invariant,edge_cases\nagent_loop.md,r1,3,4\n")
    wide = CliRunner(env={"COLUMNS": "400"})

    def imported(*rubric: str) -> str:
        r = wide.invoke(app, ["labels", "import", str(good), "--db", str(db), *rubric])
        assert r.exit_code == 0, r.output
        return " ".join(r.output.split())

    assert "against rubric default" in imported("--rubric", "default")
    again = imported("--rubric", "agent_loop")
    assert "imported 2 labels" in again and "against rubric agent_loop" in again
    assert "imported before" in again and "against rubric default" in again
    same = imported("--rubric", "agent_loop")
    assert "already imported" in same and "against rubric agent_loop" in same and "another --rubric" in same
    assert _count(db, "label_imports") == 2 and _count(db, "human_labels") == 4
    con = duckdb.connect(str(db), read_only=True)
    rubrics = {r[0] for r in con.execute("SELECT DISTINCT rubric_id FROM human_labels").fetchall()}
    con.close()
    assert rubrics == {"default", "agent_loop"}
    # checked against the rubric asked for: a dimension that rubric does not have is refused, nothing stored
    grounded = write(tmp_path, "grounded.csv", "transcript,rater,grounding\nagent_loop.md,r1,3\n")
    assert wide.invoke(app, ["labels", "import", str(grounded), "--db", str(db), "--rubric", "rag_pipeline"]).exit_code == 0
    bad = wide.invoke(app, ["labels", "import", str(grounded), "--db", str(db), "--rubric", "default"])
    assert bad.exit_code == 2 and "unknown dimension 'grounding'" in " ".join(bad.output.split())
    assert _count(db, "label_imports") == 3


def test_a_transcript_column_wins_over_its_aliases_but_two_aliases_are_ambiguous(tmp_path):
    """`evaluate export` writes `transcript` beside `transcript_hash`: the column named as the role is
    the one read. Two aliases with no such column (an `id` and a `file`) stay an error, not a guess."""
    both = write(tmp_path, "both.csv", "transcript_hash,transcript,rater,dimension,score\nabc123,a.md,r1,invariant,3\n")
    assert [r.transcript for r in read_score_file(both).rows] == ["a.md"]
    first = write(tmp_path, "first.csv", "transcript,transcript_hash,rater,dimension,score\na.md,abc123,r1,invariant,3\n")
    assert [r.transcript for r in read_score_file(first).rows] == ["a.md"]
    two = write(tmp_path, "two.csv", "id,file,rater,dimension,score\nabc123,a.md,r1,invariant,3\n")
    with pytest.raises(BadInput, match="transcript appear more than once"):
        read_score_file(two)
