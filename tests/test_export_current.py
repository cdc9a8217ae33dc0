"""`evaluate export` of a store where a transcript has several judgments (a forced re-run, a bias
probe's retests and its judgments of perturbed copies, some under the session's own hash), through
`labels import` and `agreement` as a user would: every row says what it is (`role`) and whether it is
the judgment the report and agreement use (`current`); `--current --model` writes one judgment per
transcript; a label never pairs with a probe's judgment."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from support import query
from typer.testing import CliRunner

from evaluator.cli import app

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("isolated")
NAMES = ("agent_loop.md", "cosine_topk.md", "hollow_keywords.md")


def run(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Three sessions judged by the offline judge (relative paths, as a user in that folder would), the
    first judged again with --force, then probed: two retests, its rubric's anchors reversed (same
    transcript hash, a rubric "version" of the probe's own) and its names swapped (another hash, the
    same file name)."""
    (tmp_path / "c").mkdir()
    for name in NAMES:
        shutil.copy(ROOT / "transcripts" / name, tmp_path / "c" / name)
    db = tmp_path / "s.duckdb"
    for args in ([f"c/{n}" for n in NAMES], ["c/agent_loop.md", "--force"],
                 ["probe", "c/agent_loop.md", "--retest", "2", "--perturb", "anchors_reversed",
                  "--perturb", "names_swapped"]):
        judged = run(*args, "--db", db)
        assert judged.exit_code in (0, 1), judged.output
    return db


def test_every_exported_row_says_which_judgment_it_is(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    assert run("export", out, "--table", "judgments", "--db", store).exit_code == 0
    rows = _rows(out)
    stored = query(store, "SELECT count(*) AS n FROM judgments")[0]["n"]
    assert len(rows) == stored
    probes = {r["judgment_id"] for r in query(store, "SELECT judgment_id FROM probe_items WHERE perturbation <> 'none'"
                                                     " AND judgment_id IS NOT NULL")}
    assert len(probes) == 2 and {r["judgment_id"] for r in rows if r["role"] == "probe"} == probes
    assert all(r["current"] == "false" for r in rows if r["role"] != "judgment")
    sessions: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        if r["role"] == "judgment":
            sessions.setdefault((r["transcript_hash"], r["rubric_version"], r["judge_kind"]), []).append(r["current"])
    assert len(sessions) == len(NAMES) and all(v.count("true") == 1 for v in sessions.values())
    rejudged = next(k for k in sessions if len(sessions[k]) > 1)  # judged, forced, retests (one may reuse)
    assert len(sessions[rejudged]) == query(store, "SELECT count(*) AS n FROM judgments WHERE transcript_hash = ? AND id"
                                                   " NOT IN (SELECT judgment_id FROM probe_items WHERE perturbation <> "
                                                   "'none' AND judgment_id IS NOT NULL)", [rejudged[0]])[0]["n"] >= 3

    # --model: one judge; an unknown one is an error with the close spelling, and writes nothing
    wrong = run("export", tmp_path / "x.csv", "--model", "baselin", "--db", store)
    assert wrong.exit_code == 2 and "did you mean 'baseline'" in wrong.output and not (tmp_path / "x.csv").exists()
    none = run("export", tmp_path / "x.csv", "--rubric-version", "nosuch", "--db", store)
    assert none.exit_code == 2 and "no judgment was made under a rubric version starting with" in none.output
    current = tmp_path / "current.csv"
    assert run("export", current, "--current", "--model", "baseline", "--db", store).exit_code == 0
    assert {r["judgment_id"] for r in _rows(current)} == {r["judgment_id"] for r in rows if r["current"] == "true"}
    assert len(_rows(current)) == len(NAMES)


def test_labels_against_the_current_export_pair_with_those_judgments_only(store: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    everything, current = tmp_path / "all.csv", tmp_path / "current.csv"
    assert run("export", everything, "--table", "dimensions", "--db", store).exit_code == 0
    assert run("export", current, "--table", "dimensions", "--current", "--model", "baseline",
               "--db", store).exit_code == 0
    scored = [r for r in _rows(current) if r["dimension_status"] == "scored"]
    labels = tmp_path / "labels" / "ann.csv"  # away from the transcripts: names are matched in the store
    labels.parent.mkdir()
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["transcript", "rater", "dimension", "score"])
        for r in scored:
            w.writerow([r["transcript"], "ann", r["dimension_id"], int(float(r["score"]))])
    by_id = tmp_path / "labels" / "bob.csv"
    with by_id.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["judgment_id", "rater", "dimension", "score"])
        for r in scored:
            w.writerow([r["judgment_id"], "bob", r["dimension_id"], int(float(r["score"]))])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # the probe's names-swapped copy is stored under the same file name: not a second transcript of that name
    for path in (labels, by_id):
        imported = run("labels", "import", path, "--db", store)
        assert imported.exit_code == 0, imported.output

    # a label naming a probe's judgment of a perturbed copy is refused, not recorded against the copy
    probe_row = next(r for r in _rows(everything) if r["role"] == "probe")
    bad = tmp_path / "labels" / "probe.csv"
    bad.write_text(f"judgment_id,rater,dimension,score\n{probe_row['judgment_id']},cy,{probe_row['dimension_id']},3\n")
    refused = run("labels", "import", bad, "--db", store)
    assert refused.exit_code == 2 and "bias probe" in " ".join(refused.output.split())

    # agreement pairs each label with the exported current judgment: one rubric version (the probe's
    # reversed-anchors rubric is not a version of the session's), every pair exact
    agreed = run("agreement", "--db", store, "--bootstrap", "0", "--format", "json", "--pairing", "each")
    assert agreed.exit_code == 0, agreed.output
    reports = json.loads(agreed.stdout)["rubric_versions"]  # agent_loop.md's exercise has a rubric of its own
    assert set(reports) == {r["rubric_version"] for r in scored}
    assert sum(rep["overall"]["n"] for rep in reports.values()) == 2 * len(scored)
    assert all(rep["overall"]["exact"] == 1.0 for rep in reports.values())

    # a judge file needs one score per transcript and dimension: the full export says how to get one
    plain = ("agreement", "--human", labels, "--scale", "1-5", "--bootstrap", "0", "--format", "json")
    mixed = run(*plain, "--judge", everything)
    assert mixed.exit_code == 2 and "--current" in " ".join(mixed.output.split())
    one = run(*plain, "--judge", current)
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["overall"]["exact"] == 1.0


def test_show_file_shows_the_sessions_own_newest_judgment_not_a_probes(store: Path, tmp_path: Path) -> None:
    """`show FILE` shows the file's newest judgment. A bias probe's judgment of the file with its anchors
    reversed is stored under the same hash, in the transaction of the probe's retests (the same
    created_at), so "newest" was a tie the old query broke either way. Here the probe's is made the
    strictly newest, as a tie broken the wrong way would leave it."""
    import duckdb

    probes = [r["judgment_id"] for r in query(store, "SELECT judgment_id FROM probe_items WHERE perturbation <> 'none'"
                                                     " AND judgment_id IS NOT NULL")]
    with duckdb.connect(str(store)) as con:
        con.execute("UPDATE judgments SET created_at = created_at + INTERVAL 1 SECOND WHERE list_contains(?, id)",
                    [probes])
    shown = run("show", tmp_path / "c" / "agent_loop.md", "--db", store, "--format", "json")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert doc["store"]["judgment_id"] not in probes
    assert doc["rubric"]["version"] in {r["rubric_version"] for r in query(
        store, "SELECT rubric_version FROM judgments WHERE id NOT IN (SELECT judgment_id FROM probe_items"
               " WHERE perturbation <> 'none' AND judgment_id IS NOT NULL)")}


def test_judgments_list_says_which_rows_are_a_probes(store: Path) -> None:
    """A probe's judgments of perturbed copies carry the session's file name (some its hash too):
    `judgments list` says which they are, as export's `role` does."""
    probes = {r["judgment_id"] for r in query(store, "SELECT judgment_id FROM probe_items WHERE perturbation <> 'none'"
                                                     " AND judgment_id IS NOT NULL")}
    listed = run("judgments", "list", "--limit", "100", "--db", store, "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {r["id"] for r in rows if r["role"] == "probe"} == probes
    assert {r["role"] for r in rows if r["id"] not in probes} == {"judgment"}
    table = run("judgments", "list", "--limit", "100", "--db", store)
    assert table.exit_code == 0 and table.output.count("(probe)") == len(probes)
