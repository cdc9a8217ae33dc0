"""What a cached re-run still does, and that doing less of it changes nothing: an unchanged cohort
writes no membership rows (a changed file, a changed manifest field or a file that moved still
does), an edited transcript is judged again, the folder is listed in the same order, front matter
skips the alias-bomb pass only where no limit can be broken, files are read whole and no further.

Real HTTP against the scripted fake server through the real client stack, as in test_cohort.py.
The store's save_batch is wrapped (and still called) to see which rows a commit writes. Nothing
here measures time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, FakeLLM
from hypothesis import given, settings
from hypothesis import strategies as st
from replies import valid
from support import cohort, make_cohort, query

from evaluator.store.db import Store

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The membership rows each commit hands to the store (the real save_batch still writes them)."""
    members: list[dict[str, Any]] = []
    save = Store.save_batch

    def spy(self: Store, run_id: str, judgments: list, items: list, batch_members: list, *a: Any, **k: Any) -> Any:
        members.extend(batch_members)
        return save(self, run_id, judgments, items, batch_members, *a, **k)

    monkeypatch.setattr(Store, "save_batch", spy)
    return members


def members_of(db: Path, cohort_name: str = "c1") -> dict[str, dict[str, Any]]:
    rows = query(db, "SELECT * FROM cohort_members WHERE cohort = ?", [cohort_name])
    return {Path(r["source"]).name: r for r in rows}


def test_unchanged_rerun_writes_no_membership_and_an_edit_is_judged_and_replaces_its_row(
        fake_llm: FakeLLM, tmp_path: Path, written: list[dict[str, Any]]) -> None:
    fake_llm.script(Call(valid))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    paths = make_cohort(folder, 4)
    first = cohort(folder, db, base_url=fake_llm.base_url)
    assert first.code == 0 and first.doc["calls"] == 4, first.stderr
    assert len(written) == 4
    before = members_of(db)

    written.clear()
    again = cohort(folder, db, base_url=fake_llm.base_url)
    assert again.code == 0 and again.doc["cached"] == 4 and again.doc["calls"] == 0, again.doc
    assert written == []  # nothing about the cohort changed: no membership row rewritten
    assert members_of(db) == before
    items = query(db, "SELECT status FROM run_items WHERE run_id = ?", [again.doc["run_id"]])
    assert sorted(i["status"] for i in items) == ["cached"] * 4  # the run's own rows are still written

    paths[1].write_text(paths[1].read_text(encoding="utf-8") + "\nInterviewer: One more thing.\n", encoding="utf-8")
    written.clear()
    edited = cohort(folder, db, base_url=fake_llm.base_url)
    assert edited.doc["calls"] == 1 and edited.doc["cached"] == 3, edited.doc
    assert [Path(m["source"]).name for m in written] == [paths[1].name]
    after = members_of(db)
    assert len(query(db, "SELECT * FROM cohort_members WHERE cohort = 'c1'")) == 4  # replaced, not added
    assert after[paths[1].name]["transcript_hash"] != before[paths[1].name]["transcript_hash"]
    assert {k: v for k, v in after.items() if k != paths[1].name} == \
        {k: v for k, v in before.items() if k != paths[1].name}

    written.clear()
    other = cohort(folder, db, name="c2", base_url=fake_llm.base_url)  # another cohort: its own members
    assert other.doc["calls"] == 0 and len(written) == 4


def test_a_moved_file_or_a_new_manifest_date_still_rewrites_its_membership(
        fake_llm: FakeLLM, tmp_path: Path, written: list[dict[str, Any]]) -> None:
    """The content (and so the cache key) is unchanged, but what the cohort says about it is not."""
    fake_llm.script(Call(valid))
    paths = make_cohort(tmp_path / "t", 2)
    manifest, db = tmp_path / "cohort.csv", tmp_path / "e.duckdb"
    manifest.write_text(f"path,candidate,date\nt/{paths[0].name},Ada,2026-01-05\nt/{paths[1].name},,\n",
                        encoding="utf-8")
    assert cohort(manifest, db, base_url=fake_llm.base_url).doc["calls"] == 2
    written.clear()
    assert cohort(manifest, db, base_url=fake_llm.base_url).doc["cached"] == 2
    assert written == []

    manifest.write_text(f"path,candidate,date\nt/{paths[0].name},Ada,2026-03-09\nt/{paths[1].name},,\n",
                        encoding="utf-8")
    written.clear()
    redated = cohort(manifest, db, base_url=fake_llm.base_url)
    assert redated.doc["calls"] == 0 and [m["session_date"] for m in written] == ["2026-03-09"]
    assert query(db, "SELECT session_date FROM cohort_members WHERE candidate = 'Ada'")[0]["session_date"] \
        == "2026-03-09"

    moved = tmp_path / "t" / "renamed.md"
    paths[1].rename(moved)
    manifest.write_text(f"path,candidate,date\nt/{paths[0].name},Ada,2026-03-09\nt/{moved.name},,\n",
                        encoding="utf-8")
    written.clear()
    again = cohort(manifest, db, base_url=fake_llm.base_url)
    assert again.doc["calls"] == 0 and [Path(m["source"]).name for m in written] == [moved.name]
    assert sorted(members_of(db)) == sorted([paths[0].name, moved.name])


def test_one_file_listed_twice_with_different_code_keeps_both_memberships(
        fake_llm: FakeLLM, tmp_path: Path, written: list[dict[str, Any]]) -> None:
    """Two contents of one source in a batch: each row's write would drop the other's, so neither is
    left out, and both stay stored run after run."""
    fake_llm.script(Call(valid))
    path = make_cohort(tmp_path / "t", 1)[0]
    (tmp_path / "t" / "a.py").write_text("def a():\n    return 1\n", encoding="utf-8")
    (tmp_path / "t" / "b.py").write_text("def b():\n    return 2\n", encoding="utf-8")
    manifest, db = tmp_path / "cohort.csv", tmp_path / "e.duckdb"
    manifest.write_text(f"path,code\nt/{path.name},t/a.py\nt/{path.name},t/b.py\n", encoding="utf-8")
    assert cohort(manifest, db, base_url=fake_llm.base_url).doc["calls"] == 2
    for _ in range(2):
        written.clear()
        run = cohort(manifest, db, base_url=fake_llm.base_url)
        assert run.doc["cached"] == 2 and len(written) == 2
        assert len(query(db, "SELECT * FROM cohort_members WHERE cohort = 'c1'")) == 2


def test_folder_listing_keeps_its_order_and_reasons(tmp_path: Path) -> None:
    """The order sorted(folder.rglob('*')) gave: by path parts, hidden folders looked into (and their
    files skipped as hidden), a folder reached through a symlink not entered."""
    from evaluator.batch.inputs import iter_items

    folder = tmp_path / "f"
    for d in ("a/b", ".hid/x", "B", "a b", "a-b"):
        (folder / d).mkdir(parents=True)
    for f in ("a/b/r.md", "a/R.MD", "a/1.md", "a b/1.md", "a-b/1.md", "a/b/.h.md", ".hid/x/t.md", "B/x.py",
              "README.md", "é.md", "x.md.", ".md", "a.b.md", "notes.txt", "b.VTT"):
        (folder / f).write_text("Interviewer: hi\nCandidate: hello\n", encoding="utf-8")
    (folder / "linkdir").symlink_to(folder / "a")
    (folder / "link.md").symlink_to(folder / "a" / "R.MD")
    skipped: list[str] = []
    keys = [item.key for item in iter_items(folder, skipped.append)]
    assert keys == ["a/1.md", "a/R.MD", "a/b/r.md", "a b/1.md", "a-b/1.md", "a.b.md", "b.VTT", "link.md",
                    "notes.txt", "é.md"]
    assert [item.path for item in iter_items(folder)] == [folder / k for k in keys]
    said = "\n".join(skipped)
    assert "skipped 3 file(s) in" in said and ".hid/x/t.md, .md, a/b/.h.md" in said
    assert "README.md" in said and "B/x.py" in said and "x.md." in said


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="[]{}-?:, \n\tab1&*'\"!#|>.", max_size=14))
def test_front_matter_skips_the_expansion_pass_only_where_no_limit_can_be_broken(raw: str) -> None:
    """With limits small enough for short texts to reach, whatever is let through unparsed passes
    the full count too (and the real limits are checked the same way)."""
    from evaluator import front_matter as fm

    limits = (fm.MAX_FRONT_MATTER_DEPTH, fm.MAX_FRONT_MATTER_NODES)
    try:
        fm.MAX_FRONT_MATTER_DEPTH, fm.MAX_FRONT_MATTER_NODES = 4, 40
        if fm._plainly_small(raw):
            fm._count_front_matter(raw)  # raises BadInput past a limit
    finally:
        fm.MAX_FRONT_MATTER_DEPTH, fm.MAX_FRONT_MATTER_NODES = limits


def test_alias_bombs_and_deep_nesting_are_still_refused() -> None:
    from evaluator.errors import BadInput
    from evaluator.front_matter import split_front_matter

    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: &e [*d, *d]\nf: &f [*e, *e]\n" \
           "g: &g [*f, *f]\nh: &h [*g, *g]\ni: &i [*h, *h]\nj: &j [*i, *i]\nk: &k [*j, *j]\nl: &l [*k, *k]\n" \
           "m: &m [*l, *l]\nn: &n [*m, *m]\n"
    with pytest.raises(BadInput, match="alias bomb"):
        split_front_matter(f"---\n{bomb}---\nInterviewer: hi\n")
    with pytest.raises(BadInput, match="levels deep"):
        split_front_matter("---\nx: " + "[" * 40 + "]" * 40 + "\n---\nInterviewer: hi\n")
    meta, body, _, warnings = split_front_matter("---\ncandidate: Ada\ndate: 2026-01-05\nround: 2\n---\nhi\n")
    assert meta == {"candidate": "Ada", "date": "2026-01-05", "round": 2} and body == "hi\n" and not warnings


def test_read_capped_reads_files_whose_size_is_not_what_they_hold(tmp_path: Path) -> None:
    """The read asks for what fstat says plus one byte; a file that says 0 bytes and holds more
    (Linux /proc) is read on to the cap, and one larger than the cap is refused."""
    from evaluator.errors import BadInput
    from evaluator.files import read_capped

    p = tmp_path / "t.md"
    p.write_bytes(b"x" * 1000)
    assert read_capped(p, 1000, "t") == b"x" * 1000
    with pytest.raises(BadInput, match="over the 999-byte limit"):
        read_capped(p, 999, "t")
    status = Path(f"/proc/{os.getpid()}/status")
    if status.exists():
        assert os.stat(status).st_size == 0
        assert b"Pid:" in read_capped(status, 1_000_000, "t")
        with pytest.raises(BadInput, match="over the 10-byte limit"):
            read_capped(status, 10, "t")


def test_a_process_builds_only_the_command_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first argument names a command: only it is built (the app itself stays whole). Anything
    else sees every command: the default command, help, a mistyped name that gets a suggestion."""
    import subprocess
    import sys

    from evaluator.cli import _for_this_process, app

    names = [c.name for c in app.registered_commands]
    only = _for_this_process(["cohort", "folder", "--cohort", "x"])
    assert [c.name for c in only.registered_commands] == ["cohort"] and only.registered_groups == []
    rubrics = _for_this_process(["rubrics", "list"])
    assert rubrics.registered_commands == [] and [g.name for g in rubrics.registered_groups] == ["rubrics"]
    for args in ([], ["transcript.md"], ["--help"], ["--version"], ["cohrt"]):
        assert _for_this_process(args) is app
    monkeypatch.setenv("_EVALUATE_COMPLETE", "complete_bash")
    assert _for_this_process(["cohort"]) is app
    assert [c.name for c in app.registered_commands] == names and len(names) > 5

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from evaluator.cli import run; run()", *args],
                              capture_output=True, text=True, timeout=120,
                              env={k: v for k, v in os.environ.items() if k != "_EVALUATE_COMPLETE"})

    assert "--cohort" in cli("cohort", "--help").stdout
    typo = cli("cohrt")
    assert typo.returncode == 2 and "evaluate cohort" in typo.stderr


# ------------------------------------------------------------------ the read memo (batch/readmemo.py)

@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The transcripts read in full (the real read still happens); the memo in this test's cache
    folder, trusting files at once (they were all written moments ago: see test_racy_files...)."""
    from evaluator.batch import prepare, readmemo

    monkeypatch.setenv("EVALUATOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(readmemo, "RACY_SECONDS", -5.0)
    seen: list[str] = []
    read = prepare.read_source

    def spy(path: Path, code: Any = ()) -> Any:
        seen.append(Path(path).name)
        return read(path, code)

    monkeypatch.setattr(prepare, "read_source", spy)
    return seen


def judged(fake_llm: FakeLLM, tmp_path: Path, n: int) -> tuple[Path, Path, list[Path]]:
    """A folder of n transcripts, judged once into a fresh store: (folder, db, paths)."""
    fake_llm.script(Call(valid))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    paths = make_cohort(folder, n)
    assert cohort(folder, db, base_url=fake_llm.base_url).doc["calls"] == n
    return folder, db, paths


def test_an_unchanged_cohort_is_not_read_again_and_any_change_is(fake_llm: FakeLLM, tmp_path: Path,
                                                                 reads: list[str]) -> None:
    folder, db, paths = judged(fake_llm, tmp_path, 4)
    assert sorted(reads) == sorted(p.name for p in paths)
    members = members_of(db)

    reads.clear()
    again = cohort(folder, db, "--cohort", "c2", base_url=fake_llm.base_url)  # rows from the memo
    assert again.doc["cached"] == 4 and again.doc["calls"] == 0 and reads == []
    assert members_of(db, "c2") == {k: {**m, "cohort": "c2", "added_at": members_of(db, "c2")[k]["added_at"]}
                                     for k, m in members.items()}

    # an edit of the same size (a letter for another): re-read and judged again
    data, before = paths[0].read_bytes(), paths[0].stat()
    paths[0].write_bytes(data.replace(b"Thanks", b"Thonks", 1))
    # the content alone moved (same size, same inode, the old modification time put back): the change
    # time, which no tool can set back, still tells
    os.utime(paths[0], ns=(before.st_atime_ns, before.st_mtime_ns))
    after = paths[0].stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    reads.clear()
    edited = cohort(folder, db, base_url=fake_llm.base_url)
    assert edited.doc["calls"] == 1 and edited.doc["cached"] == 3 and reads == [paths[0].name]
    assert "Thonks" in str(fake_llm.chat_requests[-1])  # the judge saw the file, not the memo

    # touched, content unchanged: read again (its signature moved), still cached
    os.utime(paths[1])
    reads.clear()
    touched = cohort(folder, db, base_url=fake_llm.base_url)
    assert touched.doc["calls"] == 0 and reads == [paths[1].name]


def test_a_code_file_named_in_the_transcript_and_added_later_is_seen(fake_llm: FakeLLM, tmp_path: Path,
                                                                     reads: list[str]) -> None:
    """The memo signs the names a transcript mentions that did not exist: one put there since changes
    the content (the code goes to the judge) and is judged."""
    fake_llm.script(Call(valid))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    path = make_cohort(folder, 1)[0]
    path.write_text(path.read_text(encoding="utf-8") + "\nCandidate: my code is in solver_x.py\n", encoding="utf-8")
    assert cohort(folder, db, base_url=fake_llm.base_url).doc["calls"] == 1
    reads.clear()
    assert cohort(folder, db, base_url=fake_llm.base_url).doc["calls"] == 0 and reads == []
    (folder / "solver_x.py").write_text("def solve():\n    return 42\n", encoding="utf-8")
    reads.clear()
    run = cohort(folder, db, base_url=fake_llm.base_url)
    assert run.doc["calls"] == 1 and reads == [path.name]
    assert "return 42" in str(fake_llm.chat_requests[-1])


def test_force_and_a_missing_judgment_read_the_file_before_judging(fake_llm: FakeLLM, tmp_path: Path,
                                                                   reads: list[str]) -> None:
    folder, db, paths = judged(fake_llm, tmp_path, 3)
    reads.clear()
    forced = cohort(folder, db, "--force", base_url=fake_llm.base_url)
    assert forced.doc["calls"] == 3 and sorted(reads) == sorted(p.name for p in paths)
    sent = " ".join(map(str, fake_llm.chat_requests[-3:]))  # the judge saw each file's own words
    assert all(f"time ({i:02d})" in sent for i in range(3))
    # the same files judged into another store: nothing cached there, each is read and judged
    reads.clear()
    other = cohort(folder, tmp_path / "other.duckdb", base_url=fake_llm.base_url)
    assert other.doc["calls"] == 3 and len(reads) == 3 and other.doc["scored"] == 3


def test_racy_files_and_another_package_version_are_read_again(
        fake_llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[str]) -> None:
    from evaluator.batch import readmemo

    monkeypatch.setattr(readmemo, "RACY_SECONDS", 3600.0)  # every file changed "just now": not trusted
    folder, db, _ = judged(fake_llm, tmp_path, 2)
    reads.clear()
    assert cohort(folder, db, base_url=fake_llm.base_url).doc["cached"] == 2 and len(reads) == 2

    monkeypatch.setattr(readmemo, "RACY_SECONDS", -5.0)
    cohort(folder, db, base_url=fake_llm.base_url)
    reads.clear()
    assert cohort(folder, db, base_url=fake_llm.base_url).doc["cached"] == 2 and reads == []
    monkeypatch.setattr(readmemo, "fingerprint", lambda: "another version of the package")
    reads.clear()
    assert cohort(folder, db, base_url=fake_llm.base_url).doc["cached"] == 2 and len(reads) == 2
