"""What a live cohort run keeps in memory while it runs: the dimension summary is counted as
judgments finish (not read back from all of dimension_scores at the end), and the read memo's new
entries wait on disk, not in a dict as large as the cohort. Both must give what they gave before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from support import SAMPLES, cohort, query

from evaluator.batch.summary import DimensionTally, dimension_summary, run_dimensions

pytestmark = pytest.mark.usefixtures("isolated")


def test_dimension_tally_matches_the_row_by_row_summary_in_any_feeding_order() -> None:
    rows = [("b", "0", "scored", 3), ("b", "1", "not_observed", None), ("a", "0", "scored", 4),
            ("a", "1", "scored", 2), ("a", "2", "unscored", None), ("c", "0", "scored", 4),
            ("c", "1", "scored", 3), ("c", "2", "scored", 1)]
    dims = {"0": "correctness", "1": "testing", "2": "communication"}
    in_order = sorted(rows)  # (item, position): the order run_dimensions reads them in
    expected = dimension_summary([(dims[pos], status, score) for _, pos, status, score in in_order])
    tally = DimensionTally()
    for item, pos, status, score in rows:  # finished in another order than the items sort
        tally.add((item, int(pos)), dims[pos], status, score)
    assert tally.result() == expected
    assert list(expected) == ["correctness", "testing", "communication"]
    assert expected["correctness"] == {"count": 3, "mean": 3.667, "median": 4,
                                       "distribution": {"3": 1, "4": 2}, "not_observed": 0, "unscored": 0}
    assert expected["testing"]["median"] == 2.5 and expected["testing"]["not_observed"] == 1
    assert expected["communication"]["unscored"] == 1


def test_a_run_that_judged_everything_sums_its_dimensions_as_the_store_does(tmp_path: Path) -> None:
    """Every sample round (several rubrics, so dimensions differ between items) and an identical copy
    (it shares its original's judgment): the summary counted as judgments finished equals the one
    read back from the store."""
    folder = tmp_path / "rounds"
    folder.mkdir()
    for p in SAMPLES:
        shutil.copy(p, folder / p.name)
    shutil.copy(SAMPLES[0], folder / f"zz_copy_of_{SAMPLES[0].name}")
    db = tmp_path / "e.duckdb"
    run = cohort(folder, db, "--concurrency", "3", name="mem")
    assert run.code == 0, run.stderr
    assert run.doc["total"] == len(SAMPLES) + 1
    items = query(db, "SELECT judgment_id FROM run_items WHERE run_id = ?", [run.doc["run_id"]])
    assert len({i["judgment_id"] for i in items}) == len(SAMPLES)  # the copy shares a judgment
    with duckdb.connect(str(db), read_only=True) as con:
        stored = run_dimensions(con, run.doc["run_id"])
    assert run.doc["dimensions"] == stored and len(stored) > 3
    assert sum(d["count"] + d["not_observed"] + d["unscored"] for d in stored.values()) > len(SAMPLES)


def test_the_read_memo_spools_its_entries_and_saves_them_whole(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries kept during a run are on disk (the spool) until `save` writes the memo: a new memo
    recalls them all; a run that finds one item gone rewrites it without that item; a repeated key
    (a manifest row twice) is saved once, the last one winning. Each keeps the view the file gives
    (store/texts.py), recalled with it."""
    from evaluator.batch import readmemo
    from evaluator.batch.inputs import BatchItem
    from evaluator.ingest import parse_source, read_source
    from evaluator.store.texts import view_of

    monkeypatch.setenv("EVALUATOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(readmemo, "RACY_SECONDS", -5.0)
    folder = tmp_path / "rounds"
    folder.mkdir()
    items = []
    for p in SAMPLES[:3]:
        shutil.copy(p, folder / p.name)
        items.append(BatchItem(key=p.name, path=folder / p.name))
    memo = readmemo.ReadMemo(folder)
    for item in [*items, items[0]]:
        source = read_source(item.path, [])
        entry = memo.entry(item, source)
        assert entry is not None
        memo.keep(item, entry, view_of(parse_source(source)))
    assert memo._spool is not None and memo._spool.tell() > 0
    memo.save()
    assert memo._spool is None
    saved = (tmp_path / "cache" / "reads").glob("*.json")
    doc = json.loads(next(saved).read_text(encoding="utf-8"))
    assert len(doc["entries"]) == 3

    again = readmemo.ReadMemo(folder)
    recalled = [again.recall(i) for i in items]
    assert all(r is not None for r in recalled)
    first = read_source(items[0].path, [])
    as_json = json.loads(json.dumps(first.metadata, default=str))  # what a memo has always kept (dates as text)
    source, view, _ = recalled[0]  # type: ignore[misc]
    assert (source.content_hash, source.metadata) == (first.content_hash, as_json)
    assert view == view_of(parse_source(first))
    again.save()  # nothing changed, nothing gone: the file is left as it is

    fewer = readmemo.ReadMemo(folder)
    assert fewer.recall(items[1]) is not None
    fewer.save()  # two items gone from the cohort: the memo keeps only what this run had
    fresh = readmemo.ReadMemo(folder)
    assert fresh.recall(items[1]) is not None and fresh.recall(items[0]) is None
    # the memo found is indexed, not parsed: the run holds where each line is, never the entries
    assert all(isinstance(span, tuple) for span in (fresh._old or {}).values()) and len(fresh._old or {}) == 1
    fresh.close()


def test_a_read_memo_cut_short_or_of_another_shape_is_not_trusted(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A memo file whose end is missing (a full drive while it was saved) or that is not one entry a
    line after its header (an older layout) recalls nothing: every item is read again."""
    from evaluator.batch import readmemo
    from evaluator.batch.inputs import BatchItem
    from evaluator.ingest import parse_source, read_source
    from evaluator.store.texts import view_of

    monkeypatch.setenv("EVALUATOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(readmemo, "RACY_SECONDS", -5.0)
    folder = tmp_path / "rounds"
    folder.mkdir()
    shutil.copy(SAMPLES[0], folder / SAMPLES[0].name)
    item = BatchItem(key=SAMPLES[0].name, path=folder / SAMPLES[0].name)
    memo = readmemo.ReadMemo(folder)
    source = read_source(item.path, [])
    entry = memo.entry(item, source)
    assert entry is not None
    memo.keep(item, entry, view_of(parse_source(source)))
    memo.save()
    whole = memo.path.read_text(encoding="utf-8")
    assert readmemo.ReadMemo(folder).recall(item) is not None
    memo.path.write_text(whole[:whole.rindex("}}")], encoding="utf-8")  # cut before its closing line
    assert readmemo.ReadMemo(folder).recall(item) is None
    doc = json.loads(whole)
    memo.path.write_text(json.dumps(doc), encoding="utf-8")  # the same object on one line
    assert readmemo.ReadMemo(folder).recall(item) is None


def test_the_store_link_lets_go_after_so_many_judgments_written(tmp_path: Path) -> None:
    """A backlog committed back to back must not pile up in one connection (DuckDB keeps what it
    wrote in memory until the checkpoint at close): the link closes once `hold_rows` were written,
    however recent the open."""
    import asyncio

    from evaluator.batch.session import StoreLink

    link = StoreLink(tmp_path / "e.duckdb", hold=3600.0, hold_rows=300)
    still_open: list[bool] = []

    async def go() -> None:
        for rows in (0, 200, 99, 1, 200):
            await link.run(lambda store: None, rows=rows)
            still_open.append(link._store is not None)
        await link.release()

    asyncio.run(go())
    # open after 0, 200 and 299 rows; let go at 300; the next session opens it again
    assert still_open == [True, True, True, False, True]
    assert link._store is None



def test_the_store_link_never_takes_a_write_past_its_rows(tmp_path: Path) -> None:
    """A connection that wrote some judgments is let go before a write that would take it past
    `hold_rows`: that write goes through a fresh connection (the peak was the fullest connection's);
    a lookup (no rows) never closes it, and one write larger than `hold_rows` still goes through."""
    import asyncio

    from evaluator.batch.session import StoreLink

    link = StoreLink(tmp_path / "e.duckdb", hold=3600.0, hold_rows=300)
    used: list[object] = []
    writes = (200, 0, 100, 1, 0, 150, 150, 400)

    async def go() -> None:
        for rows in writes:
            await link.run(lambda store, r=rows: used.append(store) or store.count("judgments"), rows=rows)
        await link.release()

    asyncio.run(go())
    # 200, a lookup and 100 share one (300, let go at its end); 1, a lookup, 150 the next (151);
    # 150 more would make 301: a fresh one (150), then 400 on a fresh one alone
    assert [len({id(s) for s in used[a:b]}) for a, b in ((0, 3), (3, 6), (6, 7), (7, 8))] == [1, 1, 1, 1]
    assert len({id(used[i]) for i in (0, 3, 6, 7)}) == 4
    assert link._store is None

def test_membership_writes_new_updated_replaced_and_in_another_cohort(tmp_path: Path) -> None:
    """A new cohort's members are plain inserts; a member stored already is updated in place (its
    added_at kept), an edited file replaces its old content's row, and the same content in another
    cohort is a row of its own: as the statements that read the whole table did."""
    from evaluator.models import JudgeInfo
    from evaluator.store.db import open_store

    def member(cohort: str, h: str, source: str, candidate: str) -> dict[str, str]:
        return {"cohort": cohort, "transcript_hash": h, "source": source, "candidate": candidate,
                "exercise": "lru", "session_date": "2026-01-02"}

    with open_store(tmp_path / "e.duckdb") as store:
        run = store.start_run(command="cohort", judge_info=JudgeInfo(kind="baseline", prompt_version="v1"),
                              rubric=None, cohort="c1")
        store.save_batch(run, [], members=[member("c1", "h1", "a.md", "Ada"), member("c1", "h2", "b.md", "Bo")])
        first = dict(store.con.execute("SELECT transcript_hash, added_at FROM cohort_members").fetchall())
        store.save_batch(run, [], members=[member("c1", "h1", "a.md", "Ada L."),  # same content: updated
                                           member("c1", "h3", "b.md", "Bo"),  # b.md edited: h2 replaced
                                           member("c2", "h1", "a.md", "Ada")])  # another cohort
        rows = store.con.execute("SELECT cohort, transcript_hash, source, candidate, added_at FROM cohort_members"
                                 " ORDER BY cohort, transcript_hash").fetchall()
        assert [r[:4] for r in rows] == [("c1", "h1", "a.md", "Ada L."), ("c1", "h3", "b.md", "Bo"),
                                         ("c2", "h1", "a.md", "Ada")]
        assert rows[0][4] == first["h1"]
        assert store.cohort_member_rows("c1", ["h3"], ["a.md"]) in (
            [("h3", "b.md", "Bo", "lru", "2026-01-02"), ("h1", "a.md", "Ada L.", "lru", "2026-01-02")],
            [("h1", "a.md", "Ada L.", "lru", "2026-01-02"), ("h3", "b.md", "Bo", "lru", "2026-01-02")])


def test_the_malloc_arena_cap_is_asked_of_glibc_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """batch/arenas.py: on glibc, mallopt takes the cap; on any other C library (no
    CS_GNU_LIBC_VERSION, or no confstr at all) the C library is never called."""
    import ctypes
    import os

    from evaluator.batch import arenas

    real = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    if real and real.startswith("glibc"):
        assert arenas.glibc() and arenas.limit_arenas() is True
    calls: list[object] = []
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: calls.append(a) or pytest.fail("C library called"))
    for other in (ValueError("unknown name"), OSError(22, "EINVAL"), AttributeError("no confstr")):
        def confstr(name: str, e: BaseException = other) -> str:
            raise e

        monkeypatch.setattr(os, "confstr", confstr)
        assert arenas.glibc() is False and arenas.limit_arenas() is False
    monkeypatch.setattr(os, "confstr", lambda name: "musl 1.2.4")
    assert arenas.limit_arenas() is False
    assert calls == []


def test_a_cohort_runs_where_the_arena_cap_cannot_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not glibc, or a C library without mallopt: the run goes on as before, every item judged and stored."""
    import ctypes
    import os

    from evaluator.batch import arenas

    folder = tmp_path / "rounds"
    folder.mkdir()
    for p in SAMPLES[:3]:
        shutil.copy(p, folder / p.name)

    class NoMallopt:
        def __init__(self, *a: object) -> None:
            pass

        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert arenas.limit_arenas() is False
    for n, confstr in enumerate((lambda name: "glibc 2.36", lambda name: "")):  # no mallopt; not glibc
        monkeypatch.setattr(os, "confstr", confstr)
        db = tmp_path / f"e{n}.duckdb"
        run = cohort(folder, db, name="arenas")
        assert run.code == 0, run.stderr
        assert run.doc["scored"] + run.doc["partial"] + run.doc["unscored"] == 3
        assert len(query(db, "SELECT id FROM judgments")) == 3


def test_the_cli_has_duckdbs_jemalloc_give_freed_pages_back_at_once_unless_the_user_said_otherwise() -> None:
    """The variable is set before DuckDB is loaded (jemalloc reads it then: its decay option says
    whether it took), and only if unset."""
    import os
    import subprocess
    import sys

    code = ("import ctypes, os, sys; from evaluator.cli import run; import duckdb; "
            "lib = ctypes.CDLL(sys.modules['_duckdb'].__file__); v = ctypes.c_ssize_t(-2); "
            "n = ctypes.c_size_t(ctypes.sizeof(v)); "
            "ok = hasattr(lib, 'duckdb_je_mallctl') and lib.duckdb_je_mallctl(b'opt.dirty_decay_ms', "
            "ctypes.byref(v), ctypes.byref(n), None, ctypes.c_size_t(0)) == 0; "
            "print(os.environ['DUCKDB_JE_MALLOC_CONF'], v.value if ok else 'no-jemalloc')")
    env = {k: v for k, v in os.environ.items() if k != "DUCKDB_JE_MALLOC_CONF"}
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    conf, decay = ours.stdout.split()
    assert conf == "dirty_decay_ms:0,muzzy_decay_ms:0" and decay in ("0", "no-jemalloc")
    theirs = subprocess.run([sys.executable, "-c", code], env={**env, "DUCKDB_JE_MALLOC_CONF": "dirty_decay_ms:700"},
                            capture_output=True, text=True, check=True)
    conf, decay = theirs.stdout.split()
    assert conf == "dirty_decay_ms:700" and decay in ("700", "no-jemalloc")
