"""A cached judgment stands only for the text it was made on (store/texts.py: the judge's view of the
transcript, its turns and code files), and nothing is judged again when that text is the same.

The old judgments are made the way an older version made them: an older parser's reading of a
WhatsApp export (one unlabelled block, flagged `speakers_unrecognised`) judged by the real judge and
written through the store's API; rows from before the text key existed (migration 0007) have it
NULL. Runs go through the real CLI; the model, where one is needed, is the scripted server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakellm import Call, FakeLLM
from replies import valid
from support import SAMPLES, cohort, cohort_args, evaluate, query, scalar
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.ingest import load_transcript
from evaluator.models import Transcript, Turn
from evaluator.pipeline import JudgeOptions, build_judge, judge_transcript
from evaluator.rubrics import select_rubric
from evaluator.store.db import open_store
from evaluator.store.texts import StoredView, View, pick, reusable

pytestmark = pytest.mark.usefixtures("isolated")

CHAT = "WhatsApp Chat with Dana Smith.txt"
WHATSAPP_ANDROID = """12/03/2026, 14:00 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.
12/03/2026, 14:02 - Priya Nair: Hi Dana, the task is an LRU cache with a TTL.
How would you start?
12/03/2026, 14:03 - Dana Smith: A dict from key to node plus a doubly linked list for recency.

The invariant: both hold the same keys, size never exceeds capacity.
12/03/2026, 14:05 - Priya Nair: What about expiry?
12/03/2026, 14:06 - Dana Smith: Lazily on get, against an injectable clock.
"""
NOT_REUSED = "not reused: the transcript is now read differently"


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVALUATOR_CACHE_DIR", str(tmp_path / "cache"))


def as_one_block(t: Transcript) -> Transcript:
    """The transcript as a parser without WhatsApp support read it: one unlabelled block."""
    text = t.raw_text.strip()
    return t.model_copy(update={"turns": [Turn(id="t1", index=0, speaker="unknown", role="unknown", text=text)],
                                "speakers_recognised": False})


def store_old_judgment(db: Path, path: Path, older: Transcript | None = None) -> str:
    """Judge the file with the offline judge as an older version read it, and store it as it would have."""
    now = load_transcript(path)
    old = older or as_one_block(now)
    rubric = select_rubric(None, now.exercise)
    judgment = asyncio.run(judge_transcript(old, rubric, build_judge(JudgeOptions())))
    with open_store(db) as store:
        run_id = store.start_run(command="evaluate", judge_info=judgment.judge, rubric=rubric)
        jid = store.save_judgment(run_id, judgment, old, rubric)
        store.finish_run(run_id, "completed")
    return jid


def judge_file(path: Path, db: Path, *extra: str) -> tuple[dict, str]:
    """`evaluate PATH --db DB --format json` with the offline judge: (document, stderr)."""
    result = CliRunner().invoke(app, [str(path), "--db", str(db), "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_the_rule_a_text_key_decides_and_older_rows_are_read_by_their_flag() -> None:
    now, other = View("k-now", True), View("k-other", True)
    assert reusable(StoredView("k-now", False), now) and not reusable(StoredView("k-old", False), now)
    # before migration 0007 a row recorded only whether speakers were told apart
    assert reusable(StoredView(None, False), now) and not reusable(StoredView(None, True), now)
    assert reusable(StoredView(None, True), View("k", False))
    # the newest judgment made on the view now is taken, even behind a newer one made on another
    assert pick([("j2", "scored", StoredView("k-other", False)), ("j1", "scored", StoredView("k-now", False))],
                now) == (("j1", "scored"), False)
    assert pick([("j2", "scored", StoredView("k-now", False))], other) == (None, True)
    assert pick([], now) == (None, False)


def test_a_file_read_differently_now_is_judged_again_and_the_run_says_why(tmp_path: Path) -> None:
    db, chat = tmp_path / "e.duckdb", tmp_path / CHAT
    chat.write_text(WHATSAPP_ANDROID, encoding="utf-8")
    old_id = store_old_judgment(db, chat)
    assert "speakers_unrecognised" in scalar(db, "SELECT flags FROM judgments WHERE id = ?", [old_id])

    doc, err = judge_file(chat, db)
    assert doc["cache"]["hit"] is False
    assert f"1 cached judgment {NOT_REUSED}" in " ".join(err.split())
    rows = query(db, "SELECT id, flags FROM judgments ORDER BY created_at")
    assert [r["id"] for r in rows][0] == old_id and len(rows) == 2  # a new judgment; the old one kept
    assert "speakers_unrecognised" not in rows[1]["flags"]

    doc, err = judge_file(chat, db)  # judged on the text read now: reused from here on
    assert doc["cache"]["hit"] is True and NOT_REUSED not in err
    assert scalar(db, "SELECT count(*) FROM judgments") == 2


def test_rows_from_before_the_text_key_are_reused_unless_their_flag_disagrees(tmp_path: Path) -> None:
    """A row written before migration 0007 has no text key: it stands while whether the speakers
    were told apart is unchanged (a labelled round), and is judged again where it is not."""
    db, chat = tmp_path / "e.duckdb", tmp_path / CHAT
    chat.write_text(WHATSAPP_ANDROID, encoding="utf-8")
    labelled = tmp_path / "round.md"
    shutil.copy(SAMPLES[0], labelled)
    store_old_judgment(db, chat)
    store_old_judgment(db, labelled, load_transcript(labelled))
    with open_store(db) as store:
        store.con.execute("UPDATE judgments SET text_key = NULL")

    doc, err = judge_file(labelled, db)
    assert doc["cache"]["hit"] is True and NOT_REUSED not in err
    doc, err = judge_file(chat, db)
    assert doc["cache"]["hit"] is False and NOT_REUSED in " ".join(err.split())


def test_an_edit_the_judge_does_not_see_reuses_everything(tmp_path: Path) -> None:
    """A comment in the rubric leaves its version (a hash of the parsed definition) and the text as
    they were: nothing is judged again, and nothing is said."""
    db, path, rubric = tmp_path / "e.duckdb", tmp_path / "round.md", tmp_path / "rubric.yaml"
    shutil.copy(SAMPLES[0], path)
    shutil.copy(Path(__file__).resolve().parent.parent / "rubrics" / "default.yaml", rubric)
    first, _ = judge_file(path, db, "--rubric", str(rubric))
    assert first["cache"]["hit"] is False
    rubric.write_text("# reworded note for the graders\n" + rubric.read_text(encoding="utf-8"), encoding="utf-8")
    again, err = judge_file(path, db, "--rubric", str(rubric))
    assert again["cache"]["hit"] is True and NOT_REUSED not in err
    assert scalar(db, "SELECT count(*) FROM judgments") == 1


def test_a_cohort_judges_again_what_is_read_differently_and_its_memo_keeps_the_views(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rounds judged before; a WhatsApp export whose stored judgment an older parser made. The
    cohort reuses the two, judges the export again (said in the summary), and a re-run is all cached
    from the read memo without parsing a single file."""
    from evaluator.batch import prepare, readmemo

    monkeypatch.setattr(readmemo, "RACY_SECONDS", -5.0)  # files written just now count as settled
    db, folder = tmp_path / "e.duckdb", tmp_path / "rounds"
    folder.mkdir()
    for sample in SAMPLES[:2]:
        shutil.copy(sample, folder / sample.name)
    assert cohort(folder, db).doc["scored"] == 2
    chat = folder / CHAT
    chat.write_text(WHATSAPP_ANDROID, encoding="utf-8")
    store_old_judgment(db, chat)

    run = CliRunner().invoke(app, ["cohort", str(folder), "--cohort", "c1", "--db", str(db)])
    assert run.exit_code == 0, run.output
    assert f"1 cached judgment {NOT_REUSED}" in " ".join(run.stdout.split())
    doc = cohort(folder, db).doc  # the memo now knows every file's view
    assert (doc["cached"], doc["reread"], doc["calls"]) == (3, 0, 0)
    assert scalar(db, "SELECT count(*) FROM judgments WHERE source = ?", [str(chat)]) == 2

    def no_parse(*_: object) -> None:
        raise AssertionError("a cached re-run parsed a file the read memo knew")

    monkeypatch.setattr(prepare, "parse_source", no_parse)
    doc = cohort(folder, db).doc
    assert (doc["cached"], doc["reread"]) == (3, 0)


def test_a_parser_upgrade_is_noticed_through_the_read_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An older version (its own package fingerprint, a parser without WhatsApp support) judged the
    cohort and left its read memo; the upgrade trusts none of it, reads every file again, and judges
    again only the one it now reads differently."""
    from evaluator import ingest
    from evaluator.batch import readmemo

    monkeypatch.setattr(readmemo, "RACY_SECONDS", -5.0)
    db, folder = tmp_path / "e.duckdb", tmp_path / "rounds"
    folder.mkdir()
    shutil.copy(SAMPLES[0], folder / SAMPLES[0].name)
    (folder / CHAT).write_text(WHATSAPP_ANDROID, encoding="utf-8")
    real_parse = ingest.parse_source

    def older_parse(source: ingest.Source) -> Transcript:
        t = real_parse(source)
        return as_one_block(t) if source.path.name == CHAT else t

    with monkeypatch.context() as older:
        older.setattr(readmemo, "fingerprint", lambda: "an older version")
        older.setattr("evaluator.batch.prepare.parse_source", older_parse)
        doc = cohort(folder, db).doc
        assert doc["scored"] == 2
        assert cohort(folder, db).doc["cached"] == 2  # that version's own re-run: all reused

    doc = cohort(folder, db).doc
    assert (doc["cached"], doc["reread"], doc["total"]) == (1, 1, 2)
    assert not any("judged as one block" in w["warning"] for w in doc["warnings"])
    assert cohort(folder, db).doc["cached"] == 2


def test_samples_made_on_another_view_are_judged_again(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """--samples: the aggregate and each member stand only for the text they were made on."""
    fake_llm.script(Call(valid))
    path = tmp_path / "round.md"
    shutil.copy(SAMPLES[0], path)
    first = evaluate(fake_llm.base_url, tmp_path, "--samples", "2", transcript=path)
    assert first.code == 0, first.stderr
    assert len(fake_llm.chat_requests) == 2
    again = evaluate(fake_llm.base_url, tmp_path, "--samples", "2", transcript=path)
    assert again.doc["cache"]["hit"] is True and len(fake_llm.chat_requests) == 2

    # as if an older parser had read the file: every stored judgment was made on another text
    with open_store(first.db) as store:
        store.con.execute("UPDATE judgments SET text_key = 'read-by-an-older-parser'")
    third = evaluate(fake_llm.base_url, tmp_path, "--samples", "2", transcript=path)
    assert third.code == 0, third.stderr
    assert third.doc["cache"]["hit"] is False and len(fake_llm.chat_requests) == 4
    assert f"3 cached judgments {NOT_REUSED}" in " ".join(third.stderr.split())  # the aggregate and its 2 members
    assert scalar(first.db, "SELECT count(*) FROM judgments WHERE kind = 'aggregate'") == 2


def test_a_batch_run_finds_the_request_of_the_text_read_now_in_its_ledger(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """--batch: a judgment refused for another view is judged again from the provider's reply to
    the request for the text read now when the ledger has one (the same body: never paid twice),
    and only otherwise sent in a new batch. A reply to a request rendered from another text has
    another body, so it never answers this one."""
    fake_llm.script(Call(valid))
    folder, db = tmp_path / "rounds", tmp_path / "e.duckdb"
    folder.mkdir()
    shutil.copy(SAMPLES[0], folder / SAMPLES[0].name)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}

    def batch() -> dict:
        p = subprocess.run([sys.executable, "-c", "from evaluator.cli import run; run()",
                            *cohort_args(folder, db, "--batch", base_url=fake_llm.base_url)],
                           env=env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in p.stderr, p.stderr
        return json.loads(p.stdout)

    assert batch()["skipped"] == 1  # submitted
    assert any(batch()["scored"] == 1 for _ in range(6))  # collected (once the fake provider is done) and judged
    assert fake_llm.batch_creates == 1
    with open_store(db) as store:  # as if an older parser had read the file
        store.con.execute("UPDATE judgments SET text_key = 'read-by-an-older-parser'")
    doc = batch()
    assert (doc["scored"], doc["cached"], doc["reread"]) == (1, 0, 1)
    assert fake_llm.batch_creates == 1 and not fake_llm.chat_requests
    assert scalar(db, "SELECT count(*) FROM judgments") == 2
