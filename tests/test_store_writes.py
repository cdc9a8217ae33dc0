"""How group commits and lookups reach the store (evaluator/store/db.py): keys are looked up in their
index and rows already stored are left alone without ON CONFLICT, a run item written twice still
ends with its last row, and lookups of many keys go a bounded list at a time. These are the
behaviours the memory work (peak RSS flat in the cohort's size) must keep."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from support import make_cohort

from evaluator.ingest import parse_source, read_source
from evaluator.models import Judgment, Transcript
from evaluator.pipeline import JudgeOptions, build_judge, judge_transcript
from evaluator.rubrics import Rubric, select_rubric
from evaluator.store import db as store_db
from evaluator.store.db import open_store
from evaluator.store.texts import StoredView, text_record

pytestmark = pytest.mark.usefixtures("isolated")


def _judged(tmp_path: Path, n: int) -> list[tuple[Judgment, Transcript, Rubric]]:
    """n judgments by the offline judge, each of its own transcript."""
    judge = build_judge(JudgeOptions())
    out = []
    for p in make_cohort(tmp_path / "rounds", n):
        t = parse_source(read_source(p))
        rubric = select_rubric(None, t.exercise)
        out.append((asyncio.run(judge_transcript(t, rubric, judge)), t, rubric))
    return out


def _item(name: str, status: str, jid: str, t: Transcript) -> dict:
    return {"item": name, "source": name, "status": status, "error": None, "transcript_hash": t.content_hash,
            "judgment_id": jid}


def _count(store, table: str) -> int:
    return store.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_transcript_judged_again_is_stored_once_with_both_judgments(tmp_path: Path) -> None:
    """A re-judged transcript (another run, --force) keeps one row of transcript, text and rubric."""
    judged = _judged(tmp_path, 2)
    with open_store(tmp_path / "e.duckdb") as store:
        first = store.save_batch("run-1", judged)
        again = store.save_batch("run-2", judged[:1] + judged)  # the same transcript twice in a batch too
        assert len(set(first + again)) == 5
        assert _count(store, "judgments") == 5
        assert _count(store, "transcripts") == 2
        assert _count(store, "transcript_texts") == 2
        assert _count(store, "rubric_versions") == len({r.version for _, _, r in judged})
        assert store.stored_judgment_ids([*first, "nope"]) == set(first)


def test_a_run_item_written_twice_keeps_its_last_row(tmp_path: Path) -> None:
    """The same (run, item) in a later commit replaces the earlier row, as ON CONFLICT DO UPDATE did,
    and the rest of that commit (its judgment, a new item) is stored with it."""
    (j0, t0, r0), (j1, t1, r1) = _judged(tmp_path, 2)
    with open_store(tmp_path / "e.duckdb") as store:
        store.save_batch("run-1", [], items=[_item("a.md", "skipped", None, t0)])
        ids = store.save_batch("run-1", [(j0, t0, r0)], ids=["j0"],
                               items=[_item("a.md", j0.status, "j0", t0), _item("b.md", "failed", None, t1)])
        assert ids == ["j0"]
        rows = store.con.execute("SELECT item, status, judgment_id FROM run_items ORDER BY item").fetchall()
        assert rows == [("a.md", j0.status, "j0"), ("b.md", "failed", None)]
        assert store.stored_judgment_ids(["j0"]) == {"j0"}
        assert _count(store, "exchanges") == len(j0.exchanges)


def test_a_failed_batch_stores_nothing_of_it(tmp_path: Path) -> None:
    """A batch that fails even the ON CONFLICT way (a judgment id stored already) is rolled back whole."""
    (j0, t0, r0), (j1, t1, r1) = _judged(tmp_path, 2)
    with open_store(tmp_path / "e.duckdb") as store:
        store.save_batch("run-1", [(j0, t0, r0)], ids=["j0"])
        with pytest.raises(store_db.StoreError):
            store.save_batch("run-1", [(j1, t1, r1), (j0, t0, r0)], ids=["j1", "j0"],
                             items=[_item("b.md", j1.status, "j1", t1)])
        assert store.stored_judgment_ids(["j0", "j1"]) == {"j0"}
        assert _count(store, "run_items") == 0
        assert _count(store, "transcripts") == 1


def test_lookups_of_many_keys_go_a_bounded_list_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More keys than one statement takes (and repeated keys) give the same answers as one lookup."""
    monkeypatch.setattr(store_db, "IN_LIST", 2)
    judged = _judged(tmp_path, 5)
    with open_store(tmp_path / "e.duckdb") as store:
        run_id = store.start_run(command="cohort", judge_info=judged[0][0].judge, rubric=None, request_key="k")
        ids = store.save_batch(run_id, judged)
        keys = [j.cache_key for j, _, _ in judged]
        scored = {j.cache_key: (jid, j.status) for jid, (j, _, _) in zip(ids, judged, strict=True)
                  if j.status == "scored"}
        assert scored
        newest = store.cached_views([*keys, keys[0], "missing"])  # newest scored per key, first per view
        assert {k: candidates[0][:2] for k, candidates in newest.items()} == scored
        # the offline judge's judgments are resumable too (deterministic: judging again only adds rows)
        # (per view the judgment was made on: store/texts.py)
        assert store.resumable([run_id], [*keys, "missing"]) == {
            j.cache_key: [(jid, j.status, StoredView(text_record(t).key, False))]
            for jid, (j, t, _) in zip(ids, judged, strict=True)}
        assert {k: [c[:2] for c in found] for k, found in store.cached_views([*keys, keys[0], "missing"]).items()} \
            == {k: [hit] for k, hit in scored.items()}
        assert store.stored_judgment_ids([*ids, ids[0], "missing"]) == set(ids)
        marks = list(store_db.in_lists(["a", "b", "a", "c"]))
    assert marks == [("(?, ?)", ["a", "b"]), ("(?)", ["c"])]


# ------------------------------------------------------------------------ provider batch ledger

def _ledger(store, lid: str, at: str, rows: list[tuple[str, str, str, str | None, str | None]]) -> None:
    """A ledger row submitted at `at` and its requests (custom_id, cache_key, state, reply, error)."""
    store.con.execute("INSERT INTO batch_ledger (id, provider, state, input_sha256, n_requests, submitted_at) "
                      "VALUES (?, 'openai', 'done', 'x', ?, ?)", [lid, len(rows), at])
    for seq, (cid, key, state, reply, error) in enumerate(rows):
        store.con.execute("INSERT INTO batch_requests (ledger_id, seq, custom_id, cache_key, body, state, "
                          "error) VALUES (?, ?, ?, ?, '{}', ?, ?)", [lid, seq, cid, key, state, error])
        if reply is not None:
            store.con.execute("INSERT INTO batch_replies VALUES (?, ?, ?)", [lid, cid, reply])


def test_the_ledger_lookup_takes_many_keys_a_bounded_list_at_a_time(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """known_for answers for every key however many, each request's attempts oldest first."""
    from evaluator.batch import provider_ledger as L

    monkeypatch.setattr(store_db, "IN_LIST", 2)
    with open_store(tmp_path / "e.duckdb") as store:
        _ledger(store, "b1", "2026-01-01", [("c0", "k0", "failed", None, "500: first"),
                                            ("c1", "k1", "done", '{"n": 1}', None),
                                            ("c2", "k2", "submitted", None, None)])
        _ledger(store, "b2", "2026-01-02", [("c0", "k0", "failed", None, "500: second"),
                                            ("c3", "k3", "done", '{"n": 3}', None),
                                            ("c4", "k4", "done", '{"n": 4}', None)])
        known = L.known_for(store, ["k0", "k1", "k2", "k3", "k4", "k1", "absent"])
    assert sorted(known) == ["c0", "c1", "c2", "c3", "c4"]
    assert known["c0"].failures == ["500: first", "500: second"]
    assert known["c1"].reply == {"n": 1} and known["c4"].reply == {"n": 4}
    assert known["c2"].pending_in == "b1" and known["c2"].cache_key == "k2"


def test_a_result_file_is_stored_a_session_per_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line of a downloaded file lands, a chunk per session (DuckDB holds an UPDATE's data
    until the session's checkpoint), so readers get in between and memory holds one chunk."""
    import json

    from evaluator.batch import provider_collect as C
    from evaluator.batch import provider_ledger as L

    db = tmp_path / "e.duckdb"
    with open_store(db) as store:
        _ledger(store, "b1", "2026-01-01", [(f"c{i}", f"k{i}", "submitted", None, None) for i in range(5)])
    lines = [{"custom_id": f"c{i}", "response": {"status_code": 200, "body": {"n": i}}} for i in range(4)]
    lines.append({"custom_id": "c4", "error": {"code": "server_error", "message": "boom"}})
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines) + b"\n"
    sessions = []
    real = L.session

    def counted(path, fn):
        sessions.append(path)
        return real(path, fn)

    monkeypatch.setattr(C, "STORE_CHUNK", 2)
    monkeypatch.setattr(L, "session", counted)
    assert C.store_file(db, "b1", io.BytesIO(data)) == 5
    assert len(sessions) == 3
    with open_store(db, read_only=True) as store:
        rows = store.con.execute("SELECT r.custom_id, r.state, p.reply, r.error FROM batch_requests r LEFT JOIN "
                                 "batch_replies p USING (ledger_id, custom_id) ORDER BY r.seq").fetchall()
    assert [(c, s) for c, s, _, _ in rows] == [("c0", "done"), ("c1", "done"), ("c2", "done"), ("c3", "done"),
                                               ("c4", "failed")]
    assert json.loads(rows[3][2]) == {"n": 3} and rows[4][3] == "server_error: boom"


def test_a_result_file_stored_again_adds_no_reply_twice_and_ignores_lines_of_no_request(tmp_path: Path) -> None:
    """A run killed after storing a chunk but before the batch's row is `done` downloads and stores
    the file again: every reply is kept once, and a line naming no request of the batch is dropped."""
    import json

    from evaluator.batch import provider_collect as C
    from evaluator.batch import provider_ledger as L

    db = tmp_path / "e.duckdb"
    with open_store(db) as store:
        _ledger(store, "b1", "2026-01-01", [(f"c{i}", f"k{i}", "submitted", None, None) for i in range(3)])
    lines = [{"custom_id": f"c{i}", "response": {"status_code": 200, "body": {"n": i}}} for i in range(3)]
    lines.append({"custom_id": "stranger", "response": {"status_code": 200, "body": {"n": 9}}})
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    assert C.store_file(db, "b1", io.BytesIO(data)) == 4
    assert C.store_file(db, "b1", io.BytesIO(data)) == 4
    with open_store(db, read_only=True) as store:
        replies = store.con.execute("SELECT custom_id, count(*) FROM batch_replies GROUP BY ALL ORDER BY 1").fetchall()
        known = L.known_for(store, ["k0", "k1", "k2"])
    assert replies == [("c0", 1), ("c1", 1), ("c2", 1)]
    assert {cid: k.reply for cid, k in known.items()} == {f"c{i}": {"n": i} for i in range(3)}


def test_replies_stored_in_another_order_than_the_lookups_are_all_found(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider may return a result file in any order: a chunk's replies then lie far apart in
    `batch_replies`, read a group of nearby positions per query, and every one is still found."""
    import random

    from evaluator.batch import provider_ledger as L

    monkeypatch.setattr(L, "REPLY_SPAN", 3)
    order = list(range(40))
    random.Random(7).shuffle(order)
    with open_store(tmp_path / "e.duckdb") as store:
        _ledger(store, "b1", "2026-01-01", [(f"c{i}", f"k{i}", "done", f'{{"n": {i}}}', None) for i in order])
        known = L.known_for(store, [f"k{i}" for i in range(0, 40, 3)])
    assert {cid: k.reply for cid, k in known.items()} == {f"c{i}": {"n": i} for i in range(0, 40, 3)}


def test_the_replies_migration_keeps_every_ledger_row_and_reply(tmp_path: Path) -> None:
    """0017 moves the replies a store of the older migrations kept in `batch_requests.reply` into
    `batch_replies`: every ledger row stays, with its state and reason, and every reply is found
    by the lookup as before."""
    import json

    import duckdb

    from evaluator.batch import provider_ledger as L
    from evaluator.store.migrations import MIGRATIONS

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as c:
        c.execute("CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
        for name, sql in MIGRATIONS:
            if name == "0017_s7_batchmem":
                break
            c.execute(sql)
            c.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
        for lid, at in (("b1", "2026-01-01"), ("b2", "2026-01-02")):
            c.execute("INSERT INTO batch_ledger (id, provider, state, input_sha256, n_requests, submitted_at) "
                      "VALUES (?, 'openai', 'done', 'x', 2, ?)", [lid, at])
        rows = [("b1", 0, "c0", "k0", "failed", None, "500: boom"), ("b1", 1, "c1", "k1", "done", '{"n": 1}', None),
                ("b2", 0, "c0", "k0", "done", '{"n": 0}', None), ("b2", 1, "c2", "k2", "submitted", None, None)]
        c.executemany("INSERT INTO batch_requests (ledger_id, seq, custom_id, cache_key, body, state, reply, error) "
                      "VALUES (?, ?, ?, ?, '{}', ?, ?, ?)", [list(r) for r in rows])
    with open_store(db) as store:  # a writing open applies the migration
        assert "0017_s7_batchmem" in store.applied_migrations()
        kept = store.con.execute("SELECT ledger_id, seq, custom_id, cache_key, state, error FROM batch_requests "
                                 "ORDER BY ledger_id, seq").fetchall()
        moved = store.con.execute("SELECT ledger_id, custom_id, reply FROM batch_replies ORDER BY 1, 2").fetchall()
        left = store.con.execute("SELECT count(*) FROM batch_requests WHERE reply IS NOT NULL").fetchone()[0]
        known = L.known_for(store, ["k0", "k1", "k2"])
    assert kept == [(lid, seq, cid, key, state, error) for lid, seq, cid, key, state, _, error in rows]
    assert [(lid, cid, json.loads(r)) for lid, cid, r in moved] == [("b1", "c1", {"n": 1}), ("b2", "c0", {"n": 0})]
    assert left == 0
    assert known["c0"].reply == {"n": 0} and known["c0"].failures == ["500: boom"]
    assert known["c1"].reply == {"n": 1} and known["c2"].pending_in == "b2" and known["c2"].reply is None


def test_a_write_after_many_small_commits_does_not_rewrite_the_table(tmp_path):
    """Every writing connection skips DuckDB's row-group vacuum: a cohort commits every second, each
    commit leaving a small row group, and a later ordinary write (`evaluate FILE`) used to merge them
    all at its checkpoint, reading and rewriting the whole table (370 MB of RSS after a 10,000
    cohort, for one transcript)."""
    from datetime import datetime

    from evaluator.store.db import open_store

    db = tmp_path / "s.duckdb"
    for i in range(6):  # six sessions, six checkpoints: six small row groups
        with open_store(db) as store:
            store.con.execute("INSERT INTO cohorts VALUES (?, ?, NULL)", [f"c{i}", datetime.now()])

    def row_groups() -> int:
        with open_store(db, read_only=True) as store:
            return store.con.execute(
                "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('cohorts')").fetchone()[0]

    before = row_groups()
    assert before >= 6
    with open_store(db) as store:  # the next ordinary write
        store.con.execute("INSERT INTO cohorts VALUES ('late', ?, NULL)", [datetime.now()])
    assert row_groups() == before + 1  # nothing merged: only the new row group written


def _old_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> Path:
    """A store written by the migrations before 0018_s8_lean_keys, holding n judgments."""
    from evaluator.store.migrations import MIGRATIONS

    db = tmp_path / "old.duckdb"
    with monkeypatch.context() as m:
        m.setattr(store_db, "MIGRATIONS", [mig for mig in MIGRATIONS if mig[0] != "0018_s8_lean_keys"])
        with open_store(db) as store:
            store.save_batch(store.start_run(command="t", judge_info=_judged_info(), rubric=None),
                             _with_exchanges(_judged(tmp_path, n)))
    return db


def _with_exchanges(judged: list[tuple[Judgment, Transcript, Rubric]]) -> list[tuple[Judgment, Transcript, Rubric]]:
    """The offline judge's judgments with two exchanges each, as a model's would have."""
    from evaluator.models import Exchange

    return [(j.model_copy(update={"exchanges": [
        Exchange(attempt=a, purpose="initial" if a == 0 else "repair", dimensions=[d.id for d in j.dimensions],
                 response_format="json", request_messages=[{"role": "user", "content": f"judge {i}"}],
                 raw_response=f'{{"reply": {i}}}', prompt_tokens=10 + i, latency_ms=1.5)
        for a in range(2)]}), t, r) for i, (j, t, r) in enumerate(judged)]


def _judged_info():  # what start_run reads of a judge
    from types import SimpleNamespace

    return SimpleNamespace(kind="baseline", model=None, prompt_version="v", params=None)


def _contents(con) -> dict:
    return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in ("exchanges", "dimension_scores", "judgments")}


def _keys(con) -> set[tuple[str, str]]:
    return {(t, kind) for t, kind in con.execute(
        "SELECT table_name, constraint_type FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
        " UNION ALL SELECT table_name, index_name FROM duckdb_indexes()").fetchall()}


def test_the_lean_keys_migration_keeps_every_row_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0018 rebuilds exchanges and dimension_scores without their primary keys (and drops the
    judgments_transcript index): every row of a store of the older migrations stays as it was,
    with the same columns in the same order, defaults and NOT NULLs; judgments keep their key."""
    import duckdb

    db = _old_store(tmp_path, monkeypatch, 3)
    with duckdb.connect(str(db)) as c:
        before = _contents(c)
        columns = c.execute("SELECT table_name, column_name, data_type, column_default, is_nullable FROM"
                            " information_schema.columns WHERE table_name IN ('exchanges', 'dimension_scores')"
                            " ORDER BY table_name, ordinal_position").fetchall()
    assert len(before["exchanges"]) == 6 and len(before["dimension_scores"]) > 3
    with open_store(db) as store:
        assert "0018_s8_lean_keys" in store.applied_migrations()
        assert _contents(store.con) == before
        assert store.con.execute(
            "SELECT table_name, column_name, data_type, column_default, is_nullable FROM information_schema.columns"
            " WHERE table_name IN ('exchanges', 'dimension_scores') ORDER BY table_name, ordinal_position"
        ).fetchall() == columns
        keys = _keys(store.con)
        store.con.execute("INSERT INTO exchanges (id, judgment_id, attempt, purpose) VALUES ('x', 'j', 0, 'p')")
        with pytest.raises(duckdb.ConstraintException):  # NOT NULL kept
            store.con.execute("INSERT INTO dimension_scores (judgment_id, position, status) VALUES ('j', 0, 's')")
        assert store.con.execute("SELECT created_at IS NOT NULL FROM exchanges WHERE id = 'x'").fetchone()[0]
    assert ("judgments", "PRIMARY KEY") in keys and ("judgments", "judgments_cache_key") in keys
    assert not {("exchanges", "PRIMARY KEY"), ("dimension_scores", "PRIMARY KEY"),
                ("judgments", "judgments_transcript")} & keys


def test_a_failed_lean_keys_migration_leaves_the_store_as_it_was(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure half-way through the rebuild (after a table was dropped) rolls all of it back: the
    old tables, keys and rows are there, the migration is not recorded, and the next open applies it."""
    import duckdb

    from evaluator.errors import StoreError
    from evaluator.store.migrations import MIGRATIONS

    db = _old_store(tmp_path, monkeypatch, 2)
    with duckdb.connect(str(db)) as c:
        before, keys = _contents(c), _keys(c)
    broken = [(name, sql.replace("DROP INDEX judgments_transcript;", "SELECT error('disk on fire');"))
              if name == "0018_s8_lean_keys" else (name, sql) for name, sql in MIGRATIONS]
    assert broken != MIGRATIONS
    monkeypatch.setattr(store_db, "MIGRATIONS", broken)
    with pytest.raises(StoreError, match="0018_s8_lean_keys"):
        open_store(db)
    with duckdb.connect(str(db)) as c:
        assert _contents(c) == before and _keys(c) == keys
        assert "0018_s8_lean_keys" not in {r[0] for r in c.execute("SELECT name FROM schema_migrations").fetchall()}
    monkeypatch.setattr(store_db, "MIGRATIONS", MIGRATIONS)
    with open_store(db) as store:
        assert _contents(store.con) == before and "0018_s8_lean_keys" in store.applied_migrations()


def test_a_judgment_stored_twice_is_refused_whole_without_the_child_keys(tmp_path: Path) -> None:
    """Exchanges and dimension scores have no key of their own since 0018: they are unique because
    they are written only in their judgment's transaction, under the judgment's key. Saving the same
    judgment id again fails as a whole and adds no exchange or dimension row."""
    from evaluator.errors import StoreError

    judged = _with_exchanges(_judged(tmp_path, 1))
    with open_store(tmp_path / "e.duckdb") as store:
        run = store.start_run(command="t", judge_info=_judged_info(), rubric=None)
        store.save_batch(run, judged, ids=["j1"])
        before = _contents(store.con)
        with pytest.raises(StoreError):
            store.save_batch(run, judged, ids=["j1"])
        assert _contents(store.con) == before
