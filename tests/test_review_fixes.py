"""Regression tests for problems found in review: concurrency races, loose evidence, bad options."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakellm import Call, FakeLLM
from replies import valid
from support import cohort, make_cohort

from evaluator.ingest import load_transcript
from evaluator.judge.evidence import EvidenceIndex

pytestmark = pytest.mark.usefixtures("isolated")

REPO = Path(__file__).resolve().parent.parent


def test_concurrent_rejections_of_json_schema_step_down_once(tmp_path: Path) -> None:
    """Eight requests in flight all rejected for json_schema must move to json_object, not past it."""
    folder = tmp_path / "ten"
    make_cohort(folder, 10)
    with FakeLLM(reject_json_schema=True) as server:
        server.script(Call(valid, delay=0.2))
        run = cohort(folder, tmp_path / "e.duckdb", "--concurrency", "8", "--retries", "0",
                     base_url=server.base_url)
        modes = [(r.body.get("response_format") or {}).get("type") for r in server.chat_requests]
    assert run.code == 0, run.doc
    assert run.doc["scored"] == 10
    assert "text" not in modes and None not in modes  # never fell past json_object
    assert modes.count("json_object") == 10


def test_evidence_needs_real_words_in_order() -> None:
    t = load_transcript(REPO / "transcripts" / "lru_ttl_cache.md")
    index = EvidenceIndex.of(t)
    words = next(turn for turn in t.turns if turn.role == "candidate" and len(turn.text.split()) > 30).text.split()
    first, second = " ".join(words[2:9]), " ".join(words[14:20])
    assert index.locate(f"{first} ... {second}") is not None
    assert index.locate(f"{second} ... {first}") is None  # out of order
    assert index.locate("the ... cache ... zero") is None  # word salad held together by ellipses
    short = " ".join(words[2:6])
    flipped = short.replace(words[3], words[3][::-1], 1)
    assert index.locate(flipped) is None  # short quotes must match exactly, no fuzzy tolerance


def test_bad_rate_options_are_bad_input_even_in_a_dry_run(tmp_path: Path) -> None:
    folder = tmp_path / "two"
    make_cohort(folder, 2)
    for extra in (("--rpm", "0"), ("--tpm", "-5"), ("--dry-run", "--rpm", "0"), ("--max-cost", "-1")):
        run = cohort(folder, tmp_path / "e.duckdb", *extra)
        assert run.code == 2, (extra, run.stderr)
        assert "internal error" not in run.stderr


def test_manifest_in_another_encoding_is_bad_input(tmp_path: Path) -> None:
    manifest = tmp_path / "roster.csv"
    manifest.write_bytes("path,candidate\nround.md,Jos\xe9\n".encode("cp1252"))
    run = cohort(manifest, tmp_path / "e.duckdb")
    assert run.code == 2 and "UTF-8" in run.stderr


def test_an_edited_file_replaces_its_old_content_in_the_cohort(tmp_path: Path) -> None:
    import duckdb

    folder = tmp_path / "three"
    paths = make_cohort(folder, 3)
    db = tmp_path / "e.duckdb"
    assert cohort(folder, db).code == 0
    paths[0].write_text(paths[0].read_text() + "\nCandidate: One more thought on the invariant.\n")
    assert cohort(folder, db).code == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT source, count(*) FROM cohort_members WHERE cohort = 'c1' GROUP BY source").fetchall()
    finally:
        con.close()
    assert len(rows) == 3 and all(n == 1 for _, n in rows)
