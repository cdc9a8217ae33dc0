"""Judge-quality statistics never pool rubric versions: a store judged under rubric v1, then (after a
meaningful edit of the rubric) under v2, with human labels, built through the CLI as a user would.
`agreement`, `calibrate` and the report's judge-quality page give each version its own rows, curves
and calibration; a calibration fitted on v1 is refused on v2's judgments; pooling happens only when
asked (--pool-rubric-versions) and then says so."""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ISOLATED_ENV
from support import query
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.report import build, charts
from evaluator.report import queries as q
from evaluator.report.reliability import summarise

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("isolated")


# small enough to fit ten labelled transcripts; the ordinal model is the slow one and not what is tested
FIT = ("--min-labels", "4", "--bootstrap", "0", "--no-ordinal")


def run(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> Iterator[tuple[Path, str, str]]:
    """(store, v1, v2): ten sample transcripts judged by the offline judge under the default rubric,
    the rubric's invariant anchors edited, seven of them judged again; then two raters' labels. Built
    once for the module (judging is the slow part), with no ambient configuration, as `isolated` does."""
    tmp_path = tmp_path_factory.mktemp("two-versions")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ISOLATED_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)
        yield _build(tmp_path, monkeypatch)


def _build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, str]:
    rubrics = tmp_path / "rubrics"
    rubrics.mkdir()
    shutil.copy(ROOT / "rubrics" / "default.yaml", rubrics / "default.yaml")
    monkeypatch.setenv("EVALUATOR_RUBRICS_DIR", str(rubrics))
    transcripts = sorted((ROOT / "transcripts").glob("*.md"))
    db = tmp_path / "store.duckdb"
    first = run(*transcripts, "--rubric", "default", "--db", db)
    assert first.exit_code in (0, 1), first.output
    text = (rubrics / "default.yaml").read_text(encoding="utf-8")
    edited = text.replace("3: Correct and specific, but late, prompted, or never used again.",
                          "3: Correct and specific, but stated only after coding began, or only when prompted.")
    assert edited != text
    (rubrics / "default.yaml").write_text(edited, encoding="utf-8")
    second = run(*transcripts[:7], "--rubric", "default", "--db", db)
    assert second.exit_code in (0, 1), second.output
    versions = [r["rubric_version"] for r in query(
        db, "SELECT rubric_version FROM judgments GROUP BY 1 ORDER BY min(created_at)")]
    assert len(versions) == 2
    # two raters; ann one point above the first judgments' score (where the scale allows), bob on it
    scores = query(db, """SELECT j.source, d.dimension_id, d.score FROM judgments j
                          JOIN dimension_scores d ON d.judgment_id = j.id
                          WHERE j.rubric_version = ? AND d.status = 'scored' ORDER BY 1, 2""", [versions[0]])
    lines = ["transcript,rater,dimension,score"]
    for r in scores:
        name = Path(r["source"]).name
        lines += [f"{name},ann,{r['dimension_id']},{min(5, int(r['score']) + 1)}",
                  f"{name},bob,{r['dimension_id']},{int(r['score'])}"]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = run("labels", "import", labels, "--transcripts", ROOT / "transcripts", "--db", db)
    assert imported.exit_code == 0, imported.output
    return db, versions[0], versions[1]


def test_agreement_is_one_report_per_rubric_version_unless_pooling_is_asked(two_versions):
    db, v1, v2 = two_versions
    split = run("agreement", "--db", db, "--bootstrap", "0", "--format", "json")
    assert split.exit_code == 0, split.output
    reports = json.loads(split.stdout)["rubric_versions"]
    assert list(reports) == [v1, v2]  # the older version first
    for version, doc in reports.items():
        labelled = query(db, """SELECT count(DISTINCT transcript_hash) AS n FROM judgments WHERE rubric_version = ?
                                AND transcript_hash IN (SELECT transcript_hash FROM human_labels)""", [version])
        assert doc["overall"]["rubric_versions"] == [version]
        assert doc["invariant"]["n_transcripts"] == labelled[0]["n"]  # its own judgments only
    assert reports[v1]["invariant"]["n_transcripts"] == 10 and reports[v2]["invariant"]["n_transcripts"] == 7
    table = run("agreement", "--db", db, "--bootstrap", "0")
    assert table.exit_code == 0, table.output
    flat = " ".join(table.output.split())
    assert f"rubric version {v1}" in flat and f"rubric version {v2}" in flat and "POOLED" not in flat

    one = run("agreement", "--db", db, "--bootstrap", "0", "--format", "json", "--rubric-version", v2[:12])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["overall"]["rubric_versions"] == [v2]

    # pooled: each transcript's newest judgment, whatever its version (seven under v2, three under v1)
    pooled = run("agreement", "--db", db, "--bootstrap", "0", "--pool-rubric-versions")
    assert pooled.exit_code == 0, pooled.output
    flat = " ".join(pooled.output.split())
    assert "POOLED" in flat and "--pool-rubric-versions" in flat
    doc = json.loads(run("agreement", "--db", db, "--bootstrap", "0", "--pool-rubric-versions", "--format",
                         "json").stdout)
    assert sorted(doc["overall"]["rubric_versions"]) == sorted([v1, v2]) and doc["invariant"]["n_transcripts"] == 10

    out = Path("agreement.csv")
    written = run("agreement", "--db", db, "--bootstrap", "0", "--out", out)
    assert written.exit_code == 0, written.output
    header, *rows = out.read_text(encoding="utf-8").splitlines()
    column = header.split(",").index("rubric_versions")
    assert {row.split(",")[column] for row in rows} == {v1, v2}


def test_calibrate_fits_one_calibration_per_version_and_refuses_v1_maps_on_v2(two_versions, tmp_path):
    db, v1, v2 = two_versions
    fitted = run("calibrate", "--db", db, *FIT, "--format", "json")
    assert fitted.exit_code == 0, fitted.output
    docs = json.loads(fitted.stdout)["calibrations"]
    assert [d["judge"]["rubric_versions"] for d in docs] == [[v1], [v2]]
    assert all(d["stored"] for d in docs) and docs[0]["id"] != docs[1]["id"]
    # each calibration's scores are stored for its own version's judgments only
    for doc, version in zip(docs, (v1, v2), strict=True):
        shown = run("calibrated", "--db", db, "--calibration", doc["id"], "--format", "json")
        ids = {r["judgment_id"] for r in json.loads(shown.stdout)}
        assert ids and ids == {r["id"] for r in query(db, "SELECT id FROM judgments WHERE rubric_version = ?",
                                                       [version])}
    table = run("calibrate", "--db", db, *FIT, "--no-save")
    flat = " ".join(table.output.split())
    assert table.exit_code == 0 and f"rubric version {v1}" in flat and f"rubric version {v2}" in flat

    # one file holds one calibration: several versions need a choice
    cal1 = tmp_path / "cal1.json"
    ambiguous = run("calibrate", "--db", db, *FIT, "--out", cal1)
    assert ambiguous.exit_code == 2 and "--rubric-version" in ambiguous.output and not cal1.exists()
    chosen = run("calibrate", "--db", db, *FIT, "--out", cal1,
                 "--rubric-version", v1)
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(cal1.read_text())["judge"]["rubric_versions"] == [v1]

    # applying v1's calibration: fine on v1's judgments, refused on v2's (file or stored id alike)
    on_v1 = run("agreement", "--db", db, "--bootstrap", "0", "--rubric-version", v1, "--calibration", cal1,
                "--format", "json")
    assert on_v1.exit_code == 0, on_v1.output
    assert json.loads(on_v1.stdout)["overall"]["calibrated"] is not None
    for ref in (str(cal1), docs[0]["id"]):
        on_v2 = run("agreement", "--db", db, "--bootstrap", "0", "--rubric-version", v2, "--calibration", ref)
        message = " ".join(on_v2.output.split())
        assert on_v2.exit_code == 2, on_v2.output
        assert f"fitted on judgments under rubric version(s) {v1}" in message and v2 in message
    both = run("agreement", "--db", db, "--bootstrap", "0", "--calibration", cal1)
    assert both.exit_code == 2  # the v2 report would apply it to v2's scores

    # a plain judge file says nothing of its rubric version: applied with a warning naming v1
    judge_file = tmp_path / "judge.csv"
    judge_file.write_text("transcript,dimension,score\n" + "".join(
        f"t{i},invariant,{1 + i % 5}\n" for i in range(6)), encoding="utf-8")
    applied = run("calibrated", "--judge", judge_file, "--calibration", cal1, "--format", "json")
    assert applied.exit_code == 0, applied.output
    assert f"rubric version(s) {v1}" in " ".join(applied.stderr.split())

    # explicit pooling fits one calibration over both versions, and says so
    pooled = run("calibrate", "--db", db, *FIT, "--pool-rubric-versions",
                 "--format", "json", "--no-save")
    assert pooled.exit_code == 0, pooled.output
    assert sorted(json.loads(pooled.stdout)["judge"]["rubric_versions"]) == sorted([v1, v2])
    assert "mixes the versions' scales" in " ".join(pooled.stderr.split())


def test_report_curves_and_calibrations_are_per_rubric_version(two_versions, tmp_path):
    db, v1, v2 = two_versions
    fitted = run("calibrate", "--db", db, *FIT, "--format", "json")
    assert fitted.exit_code == 0, fitted.output
    cal_of = {d["judge"]["rubric_versions"][0]: d["id"] for d in json.loads(fitted.stdout)["calibrations"]}
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        data = q.judge_quality(con, q.read_schema(con), q.Filters())
    assert {r["rubric_version"] for r in data["agreement"]} == {v1, v2}
    assert {r["rubric_version"] for r in data["curve"]} == {v1, v2}
    # a judge score's mean human under v1 and under v2: two points, never one over both
    keys = [(r["dimension_id"], r["model"], r["rubric_version"], r["judge"]) for r in data["curve"]]
    assert len(keys) == len(set(keys))
    # each version's dashed line is its own calibration's
    assert {(r["rubric_version"], r["calibration_id"]) for r in data["calibrated_curve"]} == set(cal_of.items())
    spec = charts.calibration_curve([r for r in data["curve"] if r["dimension_id"] == "invariant"],
                                    data["calibrated_curve"], "invariant", (1, 5))
    names = {t["name"] for t in spec["data"]}
    assert {f"baseline · {v1}", f"baseline · {v2}", f"baseline · {v1}: stored calibration",
            f"baseline · {v2}: stored calibration"} <= names and spec["layout"]["showlegend"]

    out = tmp_path / "report"
    build.build_report(db, out)
    page = (out / "quality.html").read_text(encoding="utf-8")
    judged_with = re.search(r'id="judged-with">([^<]+)<', page)[1]
    assert "never pooled across versions" in judged_with
    section = page[page.index("<h2>Calibration curves"):]
    section = section[:section.index("</section>")]
    traces = [t["name"] for spec in re.findall(r'data-spec="([^"]+)"', section)
              for t in json.loads(html.unescape(spec))["data"]]
    assert html.escape(f"baseline · {v1}") in traces and html.escape(f"baseline · {v2}") in traces
    table = page[page.index('id="calibrations"'):]
    table = table[:table.index("</table>")]
    assert v1 in table and v2 in table and ">pooled<" not in table


def test_stability_and_jury_rows_are_per_rubric_version():
    """The stability and jury summaries split a judge's aggregates by rubric version when several are
    in scope (None when one: nothing to split)."""
    def agg(version: str, score: int, unstable: bool) -> dict:
        return {"model": "m (median of 3)", "rubric_version": version, "dimension_id": "d", "position": 0,
                "ensemble": {"n": 3, "min": score, "max": score + (2 if unstable else 0), "agreement": 2 / 3,
                             "unstable": unstable, "jurors": {}}}

    rows = [agg("r@1", 3, False), agg("r@1", 4, False), agg("r@2", 2, True), agg("r@2", 3, True)]
    split = summarise(rows, [1, 2, 3, 4, 5])["stability"]
    assert [(r["rubric_version"], r["n"], r["unstable"]) for r in split] == [("r@1", 2, 0.0), ("r@2", 2, 1.0)]
    one = summarise(rows[:2], [1, 2, 3, 4, 5])["stability"]
    assert [(r["rubric_version"], r["n"]) for r in one] == [(None, 2)]


def test_a_calibration_names_what_it_cannot_vouch_for():
    """check_rubric_versions over the documents that exist: fitted on one version (refused on another),
    fitted pooled over several (kept readable: applied to one of them, with a warning), from plain
    files (no version: a warning on stored scores) and applied to a plain file (a warning)."""
    from evaluator.calibrate.applying import check_rubric_versions
    from evaluator.calibrate.maps import CalibrationResult, CalibrationSettings
    from evaluator.calibrate.records import JudgeIdentity, ScaleSpec
    from evaluator.errors import BadInput

    def doc(versions: list[str] | None) -> CalibrationResult:
        judge = None if versions is None else JudgeIdentity(judge_kind="llm", model="m", prompt_version="p",
                                                            rubric_versions=versions)
        return CalibrationResult(id="cal-x", judge=judge, scale=ScaleSpec(min=1, max=5),
                                 settings=CalibrationSettings(), n_transcripts=10, dimensions={})

    assert check_rubric_versions(doc(["r@1"]), ["r@1"]) is None
    with pytest.raises(BadInput, match="fitted on judgments under rubric version\\(s\\) r@1; these scores were "
                                       "made under r@2"):
        check_rubric_versions(doc(["r@1"]), ["r@1", "r@2"])
    assert "pooled over rubric versions r@1, r@2" in check_rubric_versions(doc(["r@1", "r@2"]), ["r@2"])
    assert "unknown rubric version" in check_rubric_versions(doc(None), ["r@2"])
    assert "carry no rubric version" in check_rubric_versions(doc(["r@1"]), None)
    assert check_rubric_versions(doc(None), None) is None  # plain files on both sides: nothing known to compare


def _kpi(page: str, label: str) -> int:
    return int(re.search(r'<div class="kpi-n">([\d,]+)</div><div class="kpi-l">' + label, page)[1].replace(",", ""))


def _scored_per_dimension(page: str) -> dict[str, int]:
    """The distribution chart's sessions per dimension (its bars' counts summed over the levels)."""
    section = page[page.index("<h2>Score distribution"):]
    spec = json.loads(html.unescape(re.search(r'data-spec="([^"]+)"', section)[1]))
    totals: dict[str, int] = {}
    for trace in spec["data"]:
        for dim, count in zip(trace["y"], trace["customdata"], strict=True):
            totals[dim] = totals.get(dim, 0) + count
    return totals


def _scored(db: Path, version: str) -> int:
    return query(db, """SELECT count(*) AS n FROM judgments j JOIN dimension_scores d ON d.judgment_id = j.id
                        WHERE j.rubric_version = ? AND d.status = 'scored'""", [version])[0]["n"]


def test_report_overview_shows_the_newest_rubric_version_and_names_what_it_left_out(two_versions, tmp_path):
    """The overview's KPIs, score distribution, heatmap and candidates table pooled v1's and v2's
    judgments (seven transcripts counted twice, under two sets of anchors). Now they use the newest
    version, and a notice says how many judgments of v1 were left out and the options that show them."""
    db, v1, v2 = two_versions
    out = tmp_path / "report"
    built = run("report", "--db", db, "--out", out)
    assert built.exit_code == 0, built.output
    page = (out / "index.html").read_text(encoding="utf-8")
    assert _kpi(page, "judgments") == 7 and _kpi(page, "sessions") == 7
    assert sum(_scored_per_dimension(page).values()) == _scored(db, v2)
    note = page[page.index('id="series-left-out"'):]
    note = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", note[:note.index("</table>")])).split())
    assert f"{v2} by baseline" in note and "Left out: 10 judgments" in note
    assert f"evaluate report --rubric-version {v1} --model baseline" in note
    heat = page[page.index("<h2>Candidates × dimensions"):]
    spec = json.loads(html.unescape(re.search(r'data-spec="([^"]+)"', heat)[1]))
    assert sum(n for row in spec["data"][0]["customdata"] for _, n in row) == _scored(db, v2)

    # what the note says to run shows v1's judgments alone, with nothing left out
    older = run("report", "--db", db, "--out", tmp_path / "v1", "--rubric-version", v1, "--model", "baseline")
    assert older.exit_code == 0, older.output
    page = (tmp_path / "v1" / "index.html").read_text(encoding="utf-8")
    assert _kpi(page, "judgments") == 10 and 'id="series-left-out"' not in page
    assert sum(_scored_per_dimension(page).values()) == _scored(db, v1)


def _label_file(path: Path, db: Path, version: str, rater: str, shift: int) -> int:
    """A label file of `rater` for every scored dimension of `version`'s judgments, `shift` points off
    the judge (kept on the scale); returns its number of labels."""
    rows = query(db, """SELECT j.source, d.dimension_id, d.score FROM judgments j JOIN dimension_scores d
                        ON d.judgment_id = j.id WHERE j.rubric_version = ? AND d.status = 'scored' ORDER BY 1, 2""",
                 [version])
    path.write_text("transcript,rater,dimension,score\n" + "".join(
        f"{Path(r['source']).name},{rater},{r['dimension_id']},{max(1, min(5, int(r['score']) + shift))}\n"
        for r in rows), encoding="utf-8")
    return len(rows)


def test_labels_pair_with_judgments_of_their_own_rubric_version_first(two_versions, tmp_path):
    """The fixture's labels were imported after the edit: recorded against v2. v1's agreement pairs
    them anyway and says so with counts (or, --same-version-labels, not at all). Labels imported
    again against v1 change v1's figures only: v2 keeps its own. Labels recorded against another
    rubric are never paired, and said."""
    db0, v1, v2 = two_versions
    db = tmp_path / "store.duckdb"
    shutil.copy(db0, db)
    labelled = {v: query(db, """SELECT count(*) AS n FROM human_labels WHERE transcript_hash IN
                                (SELECT transcript_hash FROM judgments WHERE rubric_version = ?)""", [v])[0]["n"]
                for v in (v1, v2)}
    agreement = ("agreement", "--db", db, "--bootstrap", "0", "--format", "json")

    def reports(*extra: str) -> dict:
        done = run(*agreement, *extra)
        assert done.exit_code == 0, done.output
        doc = json.loads(done.stdout)
        return doc["rubric_versions"] if "rubric_versions" in doc else {doc["overall"]["rubric_versions"][0]: doc}

    before = reports()
    assert before[v1]["overall"]["label_versions"] == {"same_version": 0, "other_version": {v2: labelled[v1]},
                                                       "left_out": {}, "other_rubric": {}}
    assert before[v2]["overall"]["label_versions"]["same_version"] == labelled[v2]
    assert before[v2]["overall"]["label_versions"]["other_version"] == {}
    table = run("agreement", "--db", db, "--bootstrap", "0")
    flat = " ".join(table.output.split())
    assert f"{labelled[v1]} of {labelled[v1]} labels were recorded against another version of the rubric ({v2}: " \
           f"{labelled[v1]})" in flat

    strict = run(*agreement, "--same-version-labels")
    assert strict.exit_code == 0, strict.output
    doc = json.loads(strict.stdout)
    assert doc["overall"]["rubric_versions"] == [v2] and doc["overall"]["n"] == before[v2]["overall"]["n"]
    assert f"rubric version {v1}: no agreement: no label of its transcripts to pair with" in \
           " ".join(strict.stderr.split())

    # bob labels v1's judgments again, against v1's rubric (the original file), one point below the judge
    original = tmp_path / "v1.yaml"
    shutil.copy(ROOT / "rubrics" / "default.yaml", original)
    again = tmp_path / "bob_v1.csv"
    n_bob = _label_file(again, db, v1, "bob", -1)
    imported = run("labels", "import", again, "--rubric", original, "--transcripts", ROOT / "transcripts", "--db", db)
    assert imported.exit_code == 0, imported.output
    assert {r["rubric_version"] for r in query(db, "SELECT DISTINCT rubric_version FROM human_labels WHERE import_id ="
                                                   " (SELECT id FROM label_imports ORDER BY imported_at DESC LIMIT 1)")} \
        == {v1}
    after = reports()
    assert after[v1]["overall"]["label_versions"]["same_version"] == n_bob
    assert after[v1]["overall"]["label_versions"]["other_version"] == {v2: labelled[v1] - n_bob}  # ann's
    assert after[v1]["overall"]["n"] == before[v1]["overall"]["n"]
    assert after[v1]["overall"]["exact"] != before[v1]["overall"]["exact"]
    assert json.dumps(after[v2], sort_keys=True) == json.dumps(before[v2], sort_keys=True)  # the newer import is v1's: v2 keeps pairing bob's labels of v2

    # labels recorded against another rubric (its dimension ids overlap the default rubric's) never pair
    other = tmp_path / "cy.csv"
    name = Path(query(db, "SELECT source FROM judgments WHERE rubric_version = ? LIMIT 1", [v2])[0]["source"]).name
    other.write_text(f"transcript,rater,dimension,score\n{name},cy,invariant,1\n{name},cy,edge_cases,1\n")
    imported = run("labels", "import", other, "--rubric", ROOT / "rubrics" / "agent_loop.yaml",
                   "--transcripts", ROOT / "transcripts", "--db", db)
    assert imported.exit_code == 0, imported.output
    last = reports()
    for version in (v1, v2):
        assert last[version]["overall"]["label_versions"]["other_rubric"] == {"agent_loop": 2}
        assert all("cy" not in d["raters"] for d in last[version].values())
        assert last[version]["overall"]["n"] == after[version]["overall"]["n"]
    fitted = run("calibrate", "--db", db, *FIT, "--no-save")
    assert fitted.exit_code == 0, fitted.output
    assert "recorded against another rubric (agent_loop: 2) and are not paired" in " ".join(fitted.output.split())

    # the report's judge-quality page pairs the same labels: its rows are `agreement`'s figures
    out = tmp_path / "report"
    built = run("report", "--db", db, "--out", out)
    assert built.exit_code == 0, built.output
    page = (out / "quality.html").read_text(encoding="utf-8")
    table = page[page.index("<h2>Exact agreement with humans"):]
    table = table[:table.index("</table>")]
    shown = set(re.findall(r'<td class="mono">([^<]+)</td><td class="r">(\d+)</td>\s*<td class="r"><b>(\d+)%</b>',
                           table))
    expected = {(version, str(d["n"]), str(round(100 * d["exact"]))) for version, rep in last.items()
                for dim, d in rep.items() if dim != "overall" and d["n"]}
    assert shown == expected
