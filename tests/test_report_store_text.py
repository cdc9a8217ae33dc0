"""Reports read only the store: transcript text and quote spans as stored, cohorts as their runs
left them, unnamed candidates kept apart.

Every store here is written by the real pipeline (`evaluate_file`, the cohort runner with the offline
baseline judge) over the sample transcripts, or by `Store.save_batch`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.batch.runner import CohortRequest, score_cohort
from evaluator.judge.evidence import EvidenceIndex, _norm
from evaluator.models import Transcript, Turn
from evaluator.pipeline import EvaluateRequest, evaluate_file
from evaluator.report import build, pages
from evaluator.report import queries as q
from evaluator.report.queries import Filters

SAMPLES = Path(__file__).resolve().parent.parent / "transcripts"


def _index(text: str) -> EvidenceIndex:
    turn = Turn(id="t1", index=0, speaker="Dana", role="candidate", text=text)
    return EvidenceIndex.of(Transcript(source="x.md", turns=[turn], content_hash="h", raw_text=text))


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=200),
       st.data())
def test_a_located_quote_carries_the_span_of_the_text_it_matched(text, data):
    """Any piece of a text (case, punctuation, spacing, "ß" or "İ" that casefold lengthens): the
    stored span holds exactly the words the verifier matched."""
    a = data.draw(st.integers(0, len(text) - 1))
    b = data.draw(st.integers(a + 1, len(text)))
    quote = text[a:b]
    found = _index(text).locate(quote)
    if found is None:
        return
    assert 0 <= found.start < found.end <= len(text)
    if found.match == 100.0:
        parts = [_norm(p) for p in re.split(r"\.\.\.|…", quote) if _norm(p)]
        span = _norm(text[found.start:found.end])
        assert span.startswith(parts[0]) and span.endswith(parts[-1])


def test_spans_of_exact_fuzzy_labelled_and_elided_quotes():
    text = ("Before code, what must hold: the map and the recency list always hold the SAME keys.\n"
            "Straße: capacity zero raises a ValueError, and I test it right away with pytest.raises here.")
    index = _index(text)
    exact = index.locate("the map and the recency list always hold the same keys")
    assert text[exact.start:exact.end] == "the map and the recency list always hold the SAME keys"
    after = index.locate("capacity zero raises a ValueError")  # after "ß", which casefolds to two letters
    assert text[after.start:after.end] == "capacity zero raises a ValueError"
    elided = index.locate("what must hold ... the recency list")
    assert text[elided.start:elided.end] == "what must hold: the map and the recency list"
    labelled = index.locate("Dana (candidate): capacity zero raises a ValueError")
    assert text[labelled.start:labelled.end] == "capacity zero raises a ValueError"
    fuzzy = index.locate("capacity zero raises a ValueErorr, and I test it right away with pytest.raises")
    assert fuzzy.match < 100 and "capacity zero raises" in text[fuzzy.start:fuzzy.end]


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> Path:
    """The sample transcripts judged by the real pipeline (baseline judge), transcripts in their own folder."""
    root = tmp_path_factory.mktemp("judged")
    shutil.copytree(SAMPLES, root / "transcripts")
    db = root / "store.duckdb"
    for name in ("lru_ttl_cache.md", "rag_pipeline.md", "injection_attempt.md"):
        evaluate_file(EvaluateRequest(transcript=root / "transcripts" / name, db=db))
    return db


def _data(report: Path) -> dict[str, dict]:
    out = {}
    for p in (report / "judgment").glob("*.js"):
        for line in p.read_text().splitlines()[1:-1]:
            m = re.fullmatch(r'J\["([A-Za-z0-9-]+)"\] = (\{.*\});', line)
            out[m[1]] = json.loads(m[2])
    return out


def test_a_report_from_a_copy_of_the_store_in_an_empty_folder_has_the_text_and_spans(judged, tmp_path, monkeypatch):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    shutil.copy(judged, empty / "copy.duckdb")
    shutil.rmtree(judged.parent / "transcripts")  # the files are gone too: nothing to read but the store
    try:
        monkeypatch.chdir(empty)
        build.build_report(Path("copy.duckdb"), Path("report"))
    finally:
        shutil.copytree(SAMPLES, judged.parent / "transcripts")
    data = _data(empty / "report")
    assert len(data) == 3
    for payload in data.values():
        j, t = payload["j"], payload["t"]
        assert t is not None and t["turns"] and payload["t_note"] is None
        texts = {turn["id"]: turn["text"] for turn in t["turns"]} | {c["name"]: c["content"] for c in t["code"]}
        quotes = [e for d in j["dims"] for e in d["evidence"]]
        assert quotes
        for e in quotes:
            assert _norm(texts[e["source"]][e["start"]:e["end"]]) == _norm(e["quote"]), e
    # the code file attached beside the transcript is stored and shown too
    lru = next(p for p in data.values() if p["j"]["candidate"] == "Dana Smith")
    assert [c["name"] for c in lru["t"]["code"]] == ["lru_ttl_cache.py"]


def test_a_judgment_stored_before_the_text_shows_its_quotes_with_a_note(judged, tmp_path):
    db = tmp_path / "old.duckdb"
    shutil.copy(judged, db)
    with duckdb.connect(str(db)) as c:  # what migration 0007 leaves for judgments stored before it
        c.execute("UPDATE judgments SET text_key = NULL")
        c.execute("DELETE FROM transcript_texts")
    build.build_report(db, tmp_path / "report")
    for payload in _data(tmp_path / "report").values():
        assert payload["t"] is None and payload["t_note"] == pages.NO_TEXT
        assert any(d["evidence"] for d in payload["j"]["dims"])


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


UNNAMED = """---
exercise: lru_ttl_cache
---
Interviewer: Build an LRU cache with a capacity.
Candidate: The invariant is that the dict and the list always hold the same keys ({n}).
Interviewer: And capacity zero?
Candidate: Capacity zero raises ValueError, and I assert the invariant after every put ({n}).
"""
NAMED_BY_LABEL = """Sam (interviewer): Build an LRU cache with a capacity.
Dana (candidate): The invariant is that the dict and the list always hold the same keys.
Sam (interviewer): And capacity zero?
Dana (candidate): Capacity zero raises ValueError, and I assert the invariant after every put.
"""


def test_unnamed_sessions_are_never_pooled_and_a_labelled_name_is_used(tmp_path):
    db = tmp_path / "s.duckdb"
    for i in range(2):
        evaluate_file(EvaluateRequest(transcript=_write(tmp_path / "t", f"unnamed-{i}.md", UNNAMED.format(n=i)), db=db))
    evaluate_file(EvaluateRequest(transcript=_write(tmp_path / "t", "dana.md", NAMED_BY_LABEL), db=db))
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)
        names = q.candidate_names(c, schema, Filters())
        summary = {r["candidate"]: r["sessions"] for r in q.candidates_summary(c, schema, Filters())}
    assert "Dana" in names
    unnamed = sorted(n for n in names if n.startswith(q.UNNAMED_CANDIDATE))
    assert len(unnamed) == 2 and "unnamed-0.md" in unnamed[0] and "unnamed-1.md" in unnamed[1]
    assert all(summary[n] == 1 for n in unnamed)  # one session each: two people are not one trend


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """lru_ttl_cache.md judged alone first (no cohort); then cohort spring-2026 (a manifest moving its
    date to 2026-03-01, plus rag_pipeline.md) reuses that judgment from the cache; then cohort
    autumn-2026 judges it again (--force) with agent_loop.md. Returns the store and judgment ids."""
    root = tmp_path_factory.mktemp("cohorts")
    shutil.copytree(SAMPLES, root / "t")
    db = root / "store.duckdb"
    alone = evaluate_file(EvaluateRequest(transcript=root / "t" / "lru_ttl_cache.md", db=db)).judgment_id
    (root / "spring.csv").write_text("path,date\nt/lru_ttl_cache.md,2026-03-01\nt/rag_pipeline.md,\n", encoding="utf-8")
    (root / "autumn.csv").write_text("path\nt/lru_ttl_cache.md\nt/agent_loop.md\n", encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        spring = score_cohort(CohortRequest(path=Path("spring.csv"), cohort="spring-2026", db=db))
        autumn = score_cohort(CohortRequest(path=Path("autumn.csv"), cohort="autumn-2026", db=db, force=True))
    finally:
        os.chdir(cwd)
    assert spring.cached == 1 and autumn.cached == 0
    with duckdb.connect(str(db), read_only=True) as c:
        rows = c.execute("SELECT j.id, r.cohort, t.candidate FROM judgments j JOIN runs r ON r.id = j.run_id"
                         " JOIN transcripts t ON t.hash = j.transcript_hash").fetchall()
    ids = {f"{cohort or 'alone'}:{candidate}": jid for jid, cohort, candidate in rows}
    assert ids["alone:Dana Smith"] == alone and len(ids) == 4
    return db, ids


def test_a_cohort_shows_exactly_its_members_judged_by_its_runs(cohorts):
    db, ids = cohorts
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)
        spring = set(q.judgment_ids(c, schema, Filters(cohort="spring-2026")))
        autumn = set(q.judgment_ids(c, schema, Filters(cohort="autumn-2026")))
        # every judgment a cohort view counts (cost, failed attempts: not only the best ones)
        spring_all = {r["id"] for r in q.judgments_page(c, schema, Filters(cohort="spring-2026"), 1, None)["rows"]}
        totals = q.overview_totals(c, schema, Filters(cohort="spring-2026"))
    # spring reused the lone judgment from the cache; autumn's own re-judgment is not spring's
    assert spring == spring_all == {ids["alone:Dana Smith"], ids["spring-2026:Ana Ruiz"]}
    assert autumn == {ids["autumn-2026:Dana Smith"], ids["autumn-2026:Ben Okafor"]}
    assert totals["judgments"] == 2 and totals["candidates"] == 2


def test_cost_is_counted_in_the_cohort_of_the_run_that_paid(cohorts):
    db, _ = cohorts
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)
        by_cohort = {r["key"]: r["judgments"] for r in q.cost_by(c, schema, Filters(), "cohort")}
        spring_runs = q.cost_by_run(c, schema, Filters(cohort="spring-2026"))
    # the lone `evaluate FILE` run stays out of every cohort, also of one its transcript joined later
    assert by_cohort == {"(no cohort)": 1, "spring-2026": 1, "autumn-2026": 2}
    assert [r["cohort"] for r in spring_runs] == ["spring-2026"] and spring_runs[0]["judgments"] == 1


def test_a_cohorts_date_override_moves_the_session_in_that_cohort_only(cohorts):
    db, ids = cohorts
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)

        def date_of(f: Filters) -> dict[str, str]:
            return {r["id"]: str(r["session_date"]) for r in q.judgments_page(c, schema, f, 1, None)["rows"]
                    if r["candidate"] == "Dana Smith"}

        assert date_of(Filters(cohort="spring-2026")) == {ids["alone:Dana Smith"]: "2026-03-01"}
        assert date_of(Filters(cohort="autumn-2026")) == {ids["autumn-2026:Dana Smith"]: "2025-03-14"}
        # the whole store: each judgment as its own run read it (the lone run: the file's own date)
        sessions = {r["id"]: str(r["session_date"]) for r in q.candidate_sessions(c, schema, Filters(), "Dana Smith")}
    assert sessions == {ids["autumn-2026:Dana Smith"]: "2025-03-14"}  # the best (latest scored) judgment
    with duckdb.connect(str(db), read_only=True) as c:
        cost_rows = q.cost_by(c, q.read_schema(c), Filters(since=date(2026, 3, 1)), "cohort")
    assert cost_rows == []  # only spring moved the session to March 2026, and spring's run paid for nothing there
