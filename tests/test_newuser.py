"""What a new user hits first, over the real CLI: researchers' label files as they come (semicolons,
other column names, JSONL with other keys, an extra text column, decimal commas), a semicolon cohort
manifest, a folder given to `evaluate`, and the report's weakest dimension when scores tie."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from replies import answer
from support import LRU, REPO, judge_args, query
from typer.testing import CliRunner

from evaluator.cli import app

pytestmark = pytest.mark.usefixtures("isolated")
SAMPLES = REPO / "transcripts"
DIMS = ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _judge_file(tmp_path: Path, items: int = 12) -> Path:
    p = tmp_path / "judge.csv"
    p.write_text("transcript,coherence\n" + "".join(f"d{i},{1 + i % 5}\n" for i in range(items)), encoding="utf-8")
    return p


# -- label and score files ---------------------------------------------------------------------------------
def test_semicolon_label_file_with_bom_crlf_and_other_column_names_imports(tmp_path):
    """A spreadsheet saved as "CSV" in a decimal-comma locale: BOM, CRLF, ';', 'File'/'Annotator' headers,
    title-case dimension columns, a notes column, empty cells."""
    header = "File;Annotator;Invariant;Edge_Cases;Restraint;Recovery;Cost_Awareness;Comment"
    rows = ["lru_ttl_cache.md;alice;5;4;;3;4;fine, mostly", "agent_loop.md;alice;2;2;4;4;1;ok"]
    (tmp_path / "labels.csv").write_bytes(("\ufeff" + "\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))
    r = run("labels", "import", tmp_path / "labels.csv", "--transcripts", SAMPLES, "--db", tmp_path / "l.duckdb")
    assert r.exit_code == 0, r.output
    assert "10 labels" in r.stdout and "9 scored" in r.stdout and "1 missing" in r.stdout
    got = query(tmp_path / "l.duckdb", "SELECT transcript_ref, dimension_id, status, score FROM human_labels "
                                        "WHERE rater = 'alice'")
    by = {(g["transcript_ref"], g["dimension_id"]): (g["status"], g["score"]) for g in got}
    assert by[("lru_ttl_cache.md", "invariant")] == ("scored", 5.0)
    assert by[("lru_ttl_cache.md", "restraint")] == ("missing", None)
    assert by[("agent_loop.md", "cost_awareness")] == ("scored", 1.0)


def test_tab_separated_human_file_is_read_for_agreement(tmp_path):
    human = tmp_path / "human.tsv"
    human.write_text("transcript\trater\tcoherence\n" + "".join(f"d{i}\tr1\t{1 + i % 5}\n" for i in range(12)),
                     encoding="utf-8")
    r = run("agreement", "--judge", _judge_file(tmp_path), "--human", human, "--bootstrap", "0", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["coherence"]["n"] == 12
    assert json.loads(r.stdout)["coherence"]["exact"] == 1.0


@pytest.mark.parametrize("names", [("transcript_id", "annotator", "criterion", "rating"),
                                   ("item", "worker", "aspect", "score"),
                                   ("item_id", "coder", "metric", "label")])
def test_long_form_under_common_research_column_names(tmp_path, names):
    t, r_, d, s = names
    human = tmp_path / "human.csv"
    human.write_text(f"{t},{r_},{d},{s}\n" + "".join(f"d{i},r1,coherence,{1 + i % 5}\n" for i in range(12)),
                     encoding="utf-8")
    r = run("agreement", "--judge", _judge_file(tmp_path), "--human", human, "--bootstrap", "0", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["coherence"]["n"] == 12


def test_jsonl_without_any_transcript_key_is_one_message_naming_the_keys(tmp_path):
    human = tmp_path / "human.jsonl"
    human.write_text("".join(json.dumps({"doc": f"d{i}", "rater": "r1", "scores": {"coherence": 3}}) + "\n"
                             for i in range(30)), encoding="utf-8")
    r = run("agreement", "--judge", _judge_file(tmp_path), "--human", human)
    assert r.exit_code == 2
    assert "no record has a 'transcript' field (found: doc, rater, scores" in r.stderr
    assert "transcript_id" in r.stderr  # the names it would accept
    assert r.stderr.count("\n") <= 2  # one message, not one line per record


def test_csv_without_a_rater_column_names_the_accepted_names(tmp_path):
    human = tmp_path / "human.csv"
    human.write_text("transcript,who,coherence\nd1,a,3\n", encoding="utf-8")
    r = run("agreement", "--judge", _judge_file(tmp_path), "--human", human)
    assert r.exit_code == 2
    assert "no 'rater' column" in r.stderr and "found: transcript, who, coherence" in r.stderr
    assert "annotator" in r.stderr


def test_a_problem_repeated_on_every_row_is_listed_once_with_its_lines(tmp_path):
    """An extra text column in a wide judge file is read as a dimension: 30 identical problems are one
    entry (with the lines), and the distinct problem after them is still shown."""
    judge = tmp_path / "judge.csv"
    rows = [f"d{i},{1 + i % 5},m1" for i in range(30)] + ["d30,high,m1"]
    judge.write_text("transcript,coherence,model_name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    human = tmp_path / "human.csv"
    human.write_text("transcript,rater,coherence\nd1,a,3\n", encoding="utf-8")
    r = run("agreement", "--judge", judge, "--human", human)
    assert r.exit_code == 2
    assert "32 problems" in r.stderr
    assert ("line 2: model_name: score 'm1' is not a number, 'not_observed' or empty "
            "(also lines 3, 4, 5, 6, 7 and 25 more)") in r.stderr
    assert "line 32: coherence: score 'high' is not a number" in r.stderr


def test_decimal_comma_gets_a_hint_and_is_never_guessed(tmp_path):
    human = tmp_path / "human.csv"
    human.write_text("transcript;rater;coherence\nd1;a;3,5\nd2;a;1,000\n", encoding="utf-8")
    r = run("agreement", "--judge", _judge_file(tmp_path), "--human", human)
    assert r.exit_code == 2
    assert "score '3,5' is not a number, 'not_observed' or empty (a decimal comma? write 3.5)" in r.stderr
    assert "score '1,000'" in r.stderr  # refused too: never read as 1


# -- cohort manifest -----------------------------------------------------------------------------------------
def test_semicolon_manifest_with_bom_and_crlf(tmp_path):
    manifest = tmp_path / "roster.csv"
    manifest.write_bytes(("\ufeffpath;candidate;date\r\n"
                          f"{SAMPLES / 'rag_pipeline.md'};Zed Ant;2026-01-02\r\n"
                          f"{SAMPLES / 'agent_loop.md'};Yan Bo;2026-01-03\r\n").encode())
    db = tmp_path / "m.duckdb"
    r = run("cohort", manifest, "--cohort", "c1", "--db", db, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["scored"] == 2
    names = {row["candidate"] for row in query(db, "SELECT candidate FROM cohort_members WHERE cohort = 'c1'")}
    assert names == {"Zed Ant", "Yan Bo"}


# -- a folder given to `evaluate` ------------------------------------------------------------------------------
def test_a_folder_given_to_evaluate_points_to_cohort_and_does_not_stop_the_others(tmp_path):
    folder = tmp_path / "my rounds"
    folder.mkdir()
    shutil.copy(LRU, folder / "a.md")
    r = run(folder, "--db", tmp_path / "e.duckdb")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"is a directory; to judge the transcripts in it, run `evaluate cohort '{folder}' --cohort NAME`" in r.stderr
    r = run(folder, folder / "a.md", "--db", tmp_path / "e.duckdb", "--format", "json")
    docs = json.loads(r.stdout)
    assert r.exit_code == 2
    assert "is a directory" in docs[0]["error"] and docs[1]["status"] == "scored"


# -- report: the weakest dimension of a candidate whose scores tie ---------------------------------------------
def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def test_report_weakest_dimension_is_every_tied_lowest_and_none_when_level(tmp_path, fake_llm):
    """A candidate scored 4 everywhere has no weakest dimension (it used to be the alphabetically first,
    cost_awareness, for every such candidate); one with two dimensions tied lowest shows both."""
    db = tmp_path / "e.duckdb"
    for name, scores in (("Lev El", {}), ("Tie Two", {"edge_cases": 2, "restraint": 2})):
        src = tmp_path / f"{name.replace(' ', '_')}.md"
        src.write_text(LRU.read_text(encoding="utf-8").replace("Dana Smith", name), encoding="utf-8")
        fake_llm.script(answer(scores=scores))
        r = run(*judge_args(fake_llm.base_url, db, transcript=src))
        assert r.exit_code == 0, r.output
    out = tmp_path / "rep"
    r = run("report", "--db", db, "--out", out)
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text(encoding="utf-8")
    rows = {_text(m).split(" 1 ")[0]: _text(m) for m in re.findall(r"<tr><td><a [^>]*>.*?</tr>", page, re.S)}
    assert rows["Lev El"].endswith("–")
    assert rows["Tie Two"].endswith("Edge cases named, handled and tested; Restraint (smallest correct version first)")
    weakest = page[page.index("<h2>Weakest dimensions</h2>"):page.index('id="candidates"')]
    weakest_for = {_text(c[0]): int(_text(c[3])) for c in
                   (re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr>.*?</tr>", weakest, re.S))
                   if len(c) >= 4}
    assert weakest_for["Cost awareness"] == 0
    assert weakest_for["Edge cases named, handled and tested"] == 1
    assert weakest_for["Restraint (smallest correct version first)"] == 1


# -- not English -------------------------------------------------------------------------------------------------
JAPANESE = """---
candidate: Jonas Weber
interviewer: Priya Nair
---
Priya Nair: TTL付きのLRUキャッシュを作ってください。常に成り立つ条件は何ですか？
Jonas Weber: まず不変条件です。マップとリストは常に同じキーを持ち、サイズは容量を超えません。各テストで確認します。
Priya Nair: 境界条件は？
Jonas Weber: 容量ゼロ、期限切れのエントリ、同じキーの再書き込み、時計が戻る場合です。まず一番簡単な版から作ります。
Priya Nair: コストは？
Jonas Weber: 各操作はO(1)で、メモリは容量に比例します。
"""


def test_a_round_in_japanese_is_flagged_not_english(tmp_path):
    """No spaces between words: the whole round is under the word minimum, yet plainly not English."""
    (tmp_path / "ja.md").write_text(JAPANESE, encoding="utf-8")
    r = run(tmp_path / "ja.md", "--no-store", "--format", "json")
    assert r.exit_code == 0, r.output
    assert "not_english" in json.loads(r.stdout)["flags"]


def test_a_short_english_round_is_not_flagged(tmp_path):
    text = ("Interviewer: Build an LRU cache.\nCandidate: The invariant is that the map and the list always hold "
            "the same keys, and size never exceeds capacity; edge cases are capacity zero and re-put.\n")
    (tmp_path / "en.md").write_text(text, encoding="utf-8")
    r = run(tmp_path / "en.md", "--no-store", "--format", "json")
    assert r.exit_code == 0, r.output
    assert "not_english" not in json.loads(r.stdout)["flags"]


def test_nan_score_is_refused_with_how_to_write_a_missing_label(tmp_path):
    """pandas and Python's json write NaN for a missing value; it is not read as one (a NaN can also be a
    bug upstream), but the message says how to write a missing label."""
    human = tmp_path / "human.jsonl"
    human.write_text('{"transcript": "d1", "rater": "a", "coherence": NaN}\n', encoding="utf-8")
    r = run("agreement", "--judge", _judge_file(tmp_path), "--human", human)
    assert r.exit_code == 2
    assert "line 1: coherence: score nan is not a finite number (a missing label is an empty cell, or NA)" in r.stderr


# -- UTF-16 from Windows -------------------------------------------------------------------------------------------
def test_a_utf16_transcript_is_judged_as_its_utf8_twin(tmp_path):
    """PowerShell 5's `>` writes UTF-16 with a byte-order mark: the same round, the same hash and scores."""
    utf8, utf16 = tmp_path / "a.md", tmp_path / "b.md"
    utf8.write_text(LRU.read_text(encoding="utf-8"), encoding="utf-8")
    utf16.write_text(LRU.read_text(encoding="utf-8").replace("\n", "\r\n"), encoding="utf-16")
    docs = []
    for p in (utf8, utf16):
        r = run(p, "--no-store", "--format", "json")
        assert r.exit_code == 0, r.output
        docs.append(json.loads(r.stdout))
    assert docs[0]["transcript"]["hash"] == docs[1]["transcript"]["hash"]
    assert [d["score"] for d in docs[0]["dimensions"]] == [d["score"] for d in docs[1]["dimensions"]]


def test_utf16_without_a_byte_order_mark_is_still_refused(tmp_path):
    p = tmp_path / "a.md"
    p.write_bytes("Interviewer: hi\nCandidate: hello there\n".encode("utf-16-le"))
    r = run(p, "--no-store")
    assert r.exit_code == 2 and "binary" in r.stderr


def test_excel_unicode_text_labels_import(tmp_path):
    """Excel's "Unicode Text" export: UTF-16 LE with a byte-order mark, tab-separated, CRLF."""
    text = "transcript\trater\tinvariant\tedge_cases\r\nlru_ttl_cache.md\tr1\t5\t4\r\nagent_loop.md\tr1\t2\t\r\n"
    (tmp_path / "labels.txt").write_bytes(text.encode("utf-16"))
    r = run("labels", "import", tmp_path / "labels.txt", "--transcripts", SAMPLES, "--db", tmp_path / "l.duckdb")
    assert r.exit_code == 0, r.output
    assert "4 labels" in r.stdout and "3 scored" in r.stdout and "1 missing" in r.stdout


@pytest.mark.parametrize("name, text, encoding", [
    ("cohort.csv", "path,candidate\r\nrounds/a.md,Ada Ünal\r\nrounds/b.md,Bo Two\r\n", "utf-16"),
    ("cohort.txt.csv", "path\tcandidate\r\nrounds/a.md\tAda Ünal\r\nrounds/b.md\tBo Two\r\n", "utf-16"),  # Excel
    ("cohort.jsonl", '{"path": "rounds/a.md", "candidate": "Ada Ünal"}\n{"path": "rounds/b.md", "candidate": "Bo Two"}\n',
     "utf-16-be-bom"),
])
def test_a_utf16_manifest_is_read_like_a_utf16_transcript_or_label_file(tmp_path, name, text, encoding):
    """A manifest saved by PowerShell or Excel as UTF-16 with its byte-order mark is read as the
    transcripts and label files are (was: refused as "not UTF-8 text")."""
    folder = tmp_path / "rounds"
    folder.mkdir()
    shutil.copy(LRU, folder / "a.md")
    shutil.copy(SAMPLES / "rag_pipeline.md", folder / "b.md")
    data = b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else text.encode(encoding)
    (tmp_path / name).write_bytes(data)
    db = tmp_path / "e.duckdb"
    r = run("cohort", tmp_path / name, "--cohort", "c1", "--db", db, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["scored"] == 2
    members = {m["candidate"] for m in query(db, "SELECT candidate FROM cohort_members")}
    assert members == {"Ada Ünal", "Bo Two"}


def test_a_utf16_manifest_without_its_mark_is_still_refused(tmp_path):
    (tmp_path / "cohort.csv").write_bytes("path\nrounds/a.md\n".encode("utf-16-le"))
    r = run("cohort", tmp_path / "cohort.csv", "--cohort", "c1", "--db", tmp_path / "e.duckdb")
    assert r.exit_code == 2 and "cohort.csv" in r.stderr


def test_utf16_rubric_and_redact_list_are_read_like_every_user_file(tmp_path):
    rubric = tmp_path / "mine.yaml"
    rubric.write_bytes((REPO / "rubrics" / "default.yaml").read_text(encoding="utf-8")
                       .replace("id: default", "id: mine").encode("utf-16"))
    r = run(LRU, "--rubric", rubric, "--no-store", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rubric"]["id"] == "mine"
    terms = tmp_path / "terms.txt"
    terms.write_bytes("# companies\nAcme Corp\n".encode("utf-16"))
    from evaluator.redact import load_terms

    assert load_terms(terms) == ("Acme Corp",)
    terms.write_bytes(b"\xff\xfeA\x00\x00\xd8")  # a UTF-16 mark, then a lone surrogate
    with pytest.raises(Exception, match="not valid UTF-16"):
        load_terms(terms)


def test_cohort_folder_lists_a_stray_code_file_without_claiming_a_transcript_reads_it(tmp_path):
    folder = tmp_path / "rounds"
    folder.mkdir()
    shutil.copy(LRU, folder / "a.md")
    (folder / "data.json").write_text("{}", encoding="utf-8")
    r = run("cohort", folder, "--cohort", "c1", "--db", tmp_path / "e.duckdb", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["total"] == 1
    assert "code (read only with a transcript that names it): data.json" in r.stderr


def test_report_filter_with_the_wrong_case_names_the_candidate_meant(tmp_path):
    """Among many candidates the one meant is rarely in the first twelve known names listed."""
    db = tmp_path / "e.duckdb"
    folder = tmp_path / "rounds"
    folder.mkdir()
    for i in range(14):
        (folder / f"r{i:02d}.md").write_text(LRU.read_text(encoding="utf-8").replace("Dana Smith", f"Aaron {i:02d}"),
                                            encoding="utf-8")
    (folder / "z.md").write_text(LRU.read_text(encoding="utf-8").replace("Dana Smith", "Zoe Quinn"), encoding="utf-8")
    assert run("cohort", folder, "--cohort", "spring-2026", "--db", db).exit_code == 0
    r = run("report", "--db", db, "--candidate", "zoe quinn", "--out", tmp_path / "rep")
    assert r.exit_code == 2
    assert "no candidate named 'zoe quinn' in the store (did you mean 'Zoe Quinn'?)" in r.stderr
    r = run("report", "--db", db, "--cohort", "spring2026", "--out", tmp_path / "rep")
    assert r.exit_code == 2 and "(did you mean 'spring-2026'?)" in r.stderr
    assert not (tmp_path / "rep").exists()


def test_a_budget_too_small_for_one_judgment_does_not_advise_running_again(tmp_path, fake_llm):
    folder = tmp_path / "rounds"
    folder.mkdir()
    shutil.copy(LRU, folder / "a.md")
    fake_llm.script(answer())
    r = run("cohort", folder, "--cohort", "c1", "--db", tmp_path / "e.duckdb", "--model", "openai/test-model",
            "--api-base", fake_llm.base_url, "--price-in", "1", "--price-out", "1", "--max-cost", "0.000001")
    assert r.exit_code == 1, r.output
    out = " ".join(r.stdout.split())
    assert "running again cannot help" in out
    assert "1 transcript(s) not judged by this run (why: below)." in out
    assert "run the same command again" not in out
    assert not fake_llm.chat_requests
