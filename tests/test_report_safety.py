"""The report never destroys what is not its own, and a failed attempt never hides a score.

- `evaluate report --out DIR` replaces DIR only when it is empty or an earlier report (the marker
  file `.evaluate-report`); anything else, a file included, is a clean exit-2 refusal that leaves the
  folder byte for byte as it was. A build that fails part-way leaves the earlier report untouched.
- Per transcript, rubric version and judge model the score views use the best judgment (scored,
  then partial, then unscored; the latest within a status): a later rate-limited run that left
  everything unscored, in another cohort, does not replace the scores. The failed attempts stay
  listed in the coverage table, and the cohort page's cost card is the cost page's figure.

The stores are written through `Store.start_run` / `Store.save_batch`, as the real runs write.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import BadInput
from evaluator.models import (
    DimensionResult,
    JudgeInfo,
    Judgment,
    Transcript,
    Turn,
    Usage,
)
from evaluator.report import build, pages, views
from evaluator.report import queries as q
from evaluator.report.queries import Filters
from evaluator.rubrics import select_rubric
from evaluator.store.db import Store

MODEL = "openai/gpt-4o-mini"
RATE_LIMITED = "the judge was rate limited (429) after 3 attempts"


def _transcript(candidate: str, day: str) -> Transcript:
    text = f"session of {candidate} on {day}"
    return Transcript(source=f"sessions/{candidate.lower()}.md", title=f"lru cache with {candidate}",
                      metadata={"candidate": candidate, "exercise": "lru_ttl_cache", "date": day},
                      turns=[Turn(id="t1", index=0, speaker=candidate, role="candidate", text=text)],
                      content_hash=hashlib.sha256(text.encode()).hexdigest(), raw_text=text)


def _judgment(transcript: Transcript, rubric, kind: str, cost: float | None) -> Judgment:
    """`kind`: scored (every dimension), partial (the first one unscored) or unscored (none scored)."""
    dims = []
    for i, d in enumerate(rubric.dimensions):
        if kind == "unscored" or (kind == "partial" and i == 0):
            dims.append(DimensionResult(id=d.id, status="unscored", reason=RATE_LIMITED))
        else:
            dims.append(DimensionResult(id=d.id, status="scored", score=2 + i % 3, rationale="matches the anchors"))
    status = Judgment.status_of(dims)
    assert status == kind
    return Judgment(status=status, reason=None if status == "scored" else RATE_LIMITED,
                    transcript_hash=transcript.content_hash, source=transcript.source, rubric_id=rubric.id,
                    rubric_version=rubric.version, judge=JudgeInfo(kind="llm", model=MODEL, prompt_version="judge-v1"),
                    dimensions=dims, usage=Usage(calls=1, prompt_tokens=1000, completion_tokens=100, cost_usd=cost),
                    cache_key=f"{transcript.content_hash}-{kind}")


def _members(cohort: str, transcripts: list[Transcript]) -> list[dict]:
    return [{"cohort": cohort, "transcript_hash": t.content_hash, "source": t.source, "candidate": t.candidate,
             "exercise": t.exercise, "session_date": t.session_date} for t in transcripts]


@pytest.fixture(scope="module")
def retried_store(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Cohort `demo` judged Ada and Bo fully and Cy partially (paid $0.0645 in all); then cohort
    `retry`, over the same transcripts and with the same judge, hit a rate limit and left every
    judgment unscored (billed $0.0020 in all, one price unknown). Returns the store and the ids of
    the judgments by name; their times are set so that the failed attempts are later."""
    db = tmp_path_factory.mktemp("report-retried") / "store.duckdb"
    rubric = select_rubric("default", None)
    ada, bo, cy = _transcript("Ada", "2026-03-02"), _transcript("Bo", "2026-03-03"), _transcript("Cy", "2026-03-04")
    info = JudgeInfo(kind="llm", model=MODEL, prompt_version="judge-v1")
    with Store(db) as store:
        demo = store.start_run(command="cohort", judge_info=info, rubric=rubric, cohort="demo")
        first = store.save_batch(demo, [(_judgment(ada, rubric, "scored", 0.03), ada, rubric),
                                        (_judgment(bo, rubric, "scored", 0.0245), bo, rubric),
                                        (_judgment(cy, rubric, "partial", 0.01), cy, rubric)],
                                 members=_members("demo", [ada, bo, cy]))
        store.finish_run(demo, "finished")
        retry = store.start_run(command="cohort", judge_info=info, rubric=rubric, cohort="retry")
        second = store.save_batch(retry, [(_judgment(ada, rubric, "unscored", 0.002), ada, rubric),
                                          (_judgment(bo, rubric, "unscored", None), bo, rubric),
                                          (_judgment(cy, rubric, "unscored", 0.0), cy, rubric)],
                                  members=_members("retry", [ada, bo, cy]))
        store.finish_run(retry, "failed")
        ids = dict(zip(["ada", "bo", "cy", "ada_failed", "bo_failed", "cy_failed"], first + second, strict=True))
        for day, jid in enumerate(first + second, start=1):  # the failed attempts are the latest
            store.con.execute("UPDATE judgments SET created_at = ? WHERE id = ?", [f"2026-03-{day:02d} 12:00:00", jid])
    return db, ids


def test_a_later_failed_attempt_does_not_replace_a_better_judgment(retried_store):
    db, ids = retried_store
    best = {ids["ada"], ids["bo"], ids["cy"]}
    failed = {ids["ada_failed"], ids["bo_failed"], ids["cy_failed"]}
    with duckdb.connect(str(db), read_only=True) as con:
        schema = q.read_schema(con)
        # a cohort shows the judgments of its own runs: `retry` judged (and failed) on its own
        assert set(q.judgment_ids(con, schema, Filters(cohort="retry"))) == failed
        for f in (Filters(), Filters(cohort="demo"), Filters(candidate="Ada")):
            assert set(q.judgment_ids(con, schema, f)) <= best, f
            assert {r["id"] for r in q.judgments_page(con, schema, f, 1, None)["rows"]} <= best, f
            assert {r["id"] for r in q.candidate_sessions(con, schema, f)} <= best, f
            assert {r["judgment_id"] for r in q.candidate_trend(con, schema, f)} <= best, f
        for f in (Filters(), Filters(cohort="demo")):
            totals = q.overview_totals(con, schema, f)
            assert (totals["judgments"], totals["scored"], totals["partial"], totals["unscored"]) == (3, 2, 1, 0), f
            n_dims = len(select_rubric("default", None).dimensions)
            dist = q.dimension_distribution(con, schema, f)
            assert sum(r["n_scored"] for r in dist) == 2 * n_dims + (n_dims - 1)
            assert {r["candidate"] for r in q.heatmap(con, schema, f)} == {"Ada", "Bo", "Cy"}
            summary = {r["candidate"]: r for r in q.candidates_summary(con, schema, f)}
            assert all(summary[c]["mean"] is not None for c in ("Ada", "Bo", "Cy"))
            trend_ids = {r["judgment_id"] for r in q.candidate_trend(con, schema, f)}
            assert trend_ids == best
            coverage = q.coverage(con, schema, f)
            assert {r["status"]: r["n"] for r in coverage["by_status"]} == {"scored": 2, "partial": 1}
            # the failed attempts are still listed where failures are, marked as replaced
            # (in the cohort that made them: not in `demo`, whose runs did not)
            reasons = {(r["status"], r["reason"]): r for r in coverage["judgment_reasons"]}
            if f.cohort is None:
                assert reasons[("unscored", RATE_LIMITED)]["n"] == 3
                assert reasons[("unscored", RATE_LIMITED)]["superseded"] == 3
            else:
                assert ("unscored", RATE_LIMITED) not in reasons
            assert (reasons[("partial", RATE_LIMITED)]["n"], reasons[("partial", RATE_LIMITED)]["superseded"]) == (1, 0)
        # every judgment is still in the store and in the cost views
        assert con.execute("SELECT count(*) FROM judgments").fetchone()[0] == 6
        assert sum(r["judgments"] for r in q.cost_by(con, schema, Filters(), "cohort")) == len(best | failed)


def test_a_forced_rerun_with_the_same_status_still_replaces_the_earlier_one(tmp_path):
    db = tmp_path / "s.duckdb"
    rubric = select_rubric("default", None)
    t = _transcript("Dee", "2026-04-01")
    info = JudgeInfo(kind="llm", model=MODEL, prompt_version="judge-v1")
    with Store(db) as store:
        run = store.start_run(command="evaluate", judge_info=info, rubric=rubric)
        older = store.save_judgment(run, _judgment(t, rubric, "scored", 0.01), t, rubric)
        newer = store.save_judgment(run, _judgment(t, rubric, "scored", 0.01), t, rubric)
        store.con.execute("UPDATE judgments SET created_at = '2026-04-01 10:00' WHERE id = ?", [older])
        store.con.execute("UPDATE judgments SET created_at = '2026-04-02 10:00' WHERE id = ?", [newer])
    with duckdb.connect(str(db), read_only=True) as con:
        assert q.judgment_ids(con, q.read_schema(con), Filters()) == [newer]


def _cost_row(html: str, key: str) -> str:
    """The Cost cell of the cost page's row for `key` in the 'By cohort' table."""
    table = html.split("<h2>By cohort</h2>", 1)[1]
    m = re.search(rf"<tr><td>{re.escape(key)}</td>(?:<td class=\"r\">[^<]*</td>){{5}}<td class=\"r\">([^<]*)</td></tr>",
                  table)
    assert m, key
    return m[1]


def _cost_card(html: str) -> tuple[str, str]:
    """The overview's cost card: the figure and its label."""
    m = re.search(r'<div class="kpi-n">([^<]*)</div><div class="kpi-l">(judge cost[^<]*)</div>', html)
    assert m
    return m[1], m[2]


def test_the_cohort_cost_card_is_the_cost_pages_figure(retried_store, tmp_path):
    db, _ = retried_store
    with duckdb.connect(str(db), read_only=True) as con:
        schema = q.read_schema(con)
        by_cohort = {r["key"]: r for r in q.cost_by(con, schema, Filters(), "cohort")}
        assert by_cohort["demo"]["cost_usd"] == pytest.approx(0.0645)
        for cohort in ("demo", "retry"):
            totals = q.overview_totals(con, schema, Filters(cohort=cohort))
            assert totals["cost_usd"] == pytest.approx(by_cohort[cohort]["cost_usd"])
            assert totals["cost_unknown"] == by_cohort[cohort]["cost_unknown"]
        overall = q.overview_totals(con, schema, Filters())
        assert overall["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in by_cohort.values()))
        assert overall["cost_unknown"] == 1
    out = tmp_path / "report"
    build.build_report(db, out)
    cost_html = (out / "cost.html").read_text()
    # an unknown price is not a zero: the retry cohort's figure is a lower bound
    for cohort, figure, unknown in (("demo", "$0.0645", ""), ("retry", "at least $0.0020", " (1 with unknown price)")):
        page = (out / "cohort" / f"{pages.slug(cohort)}.html").read_text()
        assert _cost_row(cost_html, cohort) == figure
        card, label = _cost_card(page)
        assert card == figure and label.endswith(f"every judgment{unknown}"), (cohort, card, label)
    # the failed attempts show in the coverage table of the cohort that made them and of the whole
    # store (there marked as replaced), never in the cohort whose runs did not make them
    retry = (out / "cohort" / f"{pages.slug('retry')}.html").read_text()
    assert RATE_LIMITED in retry and "replaced by a better judgment" not in retry
    assert "3 replaced by a better judgment" in (out / "index.html").read_text()
    assert "replaced by a better judgment" not in (out / "cohort" / f"{pages.slug('demo')}.html").read_text()
    # a report of the one cohort says the same: the other cohort's calls are not counted in it
    only = tmp_path / "only-demo"
    build.build_report(db, only, Filters(cohort="demo"))
    cost_html = (only / "cost.html").read_text()
    assert _cost_row(cost_html, "demo") == "$0.0645" and "<td>retry</td>" not in cost_html
    assert _cost_card((only / "index.html").read_text())[0] == "$0.0645"
    assert _cost_card((only / "cohort" / f"{pages.slug('demo')}.html").read_text())[0] == "$0.0645"


# -- --out: never delete what is not a report ---------------------------------------------------------


@pytest.fixture(scope="module")
def small_store(retried_store) -> Path:
    return retried_store[0]


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under root (hidden ones included) with its bytes: byte-for-byte equality."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _report(db: Path, out: Path) -> object:
    return CliRunner().invoke(app, ["report", "--db", str(db), "--out", str(out)])


@pytest.mark.parametrize("with_index", [True, False])
def test_a_folder_of_other_files_is_refused_and_left_untouched(tmp_path, small_store, with_index):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("important\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "data.bin").write_bytes(bytes(range(256)))
    if with_index:
        (folder / "index.html").write_text("<html>mine</html>\n")
    before, siblings = _snapshot(tmp_path), sorted(p.name for p in tmp_path.iterdir())
    res = _report(small_store, folder)
    assert res.exit_code == 2, res.output
    assert "not an earlier report" in res.output and str(folder) in res.output and "choose another --out" in res.output
    assert ("older evaluate" in res.output) == with_index
    assert "Traceback" not in res.output and "internal error" not in res.output
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings  # no temporary folder left beside it


def test_out_pointing_at_a_file_is_a_clean_exit_2(tmp_path, small_store):
    afile = tmp_path / "afile.txt"
    afile.write_text("keep me\n")
    res = _report(small_store, afile)
    assert res.exit_code == 2, res.output
    assert "is a file, not a folder" in res.output and "internal error" not in res.output
    res = _report(small_store, afile / "report")
    assert res.exit_code == 2, res.output
    assert "is a file, not a folder" in res.output
    assert afile.read_text() == "keep me\n" and sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt"]


def test_an_earlier_report_is_replaced_and_an_empty_folder_used(tmp_path, small_store):
    out = tmp_path / "report"
    assert _report(small_store, out).exit_code == 0
    assert (out / build.MARKER).is_file() and (out / "index.html").is_file()
    (out / "candidate" / "stale.html").write_text("from an earlier report")
    res = _report(small_store, out)
    assert res.exit_code == 0, res.output
    assert not (out / "candidate" / "stale.html").exists()
    assert (out / build.MARKER).is_file() and (out / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # nothing left beside it

    empty = tmp_path / "empty"
    empty.mkdir()
    res = _report(small_store, empty)
    assert res.exit_code == 0, res.output
    assert (empty / "index.html").is_file() and (empty / build.MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "report"]


def test_a_failed_build_leaves_the_earlier_report_as_it_was(tmp_path, small_store, monkeypatch):
    out = tmp_path / "report"
    build.build_report(small_store, out)
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise BadInput("the cost page cannot be drawn")

    monkeypatch.setattr(views, "render_cost", broken)
    with pytest.raises(BadInput, match="cost page"):
        build.build_report(small_store, out)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the half-built folder is gone


def test_a_symbolic_link_is_refused(tmp_path, small_store):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    res = _report(small_store, tmp_path / "link")
    assert res.exit_code == 2 and "symbolic link" in res.output, res.output
    assert list(target.iterdir()) == []


# -- every link of the static report points at a page it wrote ----------------------------------------


_HREF = re.compile(r'\b(?:href|src)="([^"]*)"')
_CANDIDATE_URL = re.compile(r'"candidate_url":"([^"]*)"')


def _broken_links(root: Path) -> list[str]:
    """Every relative href/src of every written .html file (and each judgment data file's candidate
    link, relative to judgment.html) that names no written file. Anchors, query strings and
    external schemes are ignored."""
    broken = []
    targets = [(page, page.parent, _HREF.findall(page.read_text(encoding="utf-8"))) for page in root.rglob("*.html")]
    targets += [(data, root, _CANDIDATE_URL.findall(data.read_text(encoding="utf-8")))
                for data in (root / "judgment").glob("*.js")]
    for page, base, urls in targets:
        for url in urls:
            url = url.replace("&amp;", "&").split("#", 1)[0].split("?", 1)[0]
            if not url or re.match(r"^[a-z][a-z0-9+.-]*:", url, re.IGNORECASE) or url.startswith("//"):
                continue
            if not (base / url).resolve().is_file():
                broken.append(f"{page.relative_to(root)} -> {url}")
    assert targets, "no pages written"
    return broken


@pytest.fixture(scope="module")
def renamed_store(tmp_path_factory) -> Path:
    """Cohort c1 judged two transcripts as their front matter names them (Ben Okafor and another);
    cohort c2's manifest names agent_loop.md's candidate Benjamin Okafor. Offline baseline judge."""
    tmp = tmp_path_factory.mktemp("report-renamed")
    folder = tmp / "transcripts"
    folder.mkdir()
    repo = Path(__file__).resolve().parents[1] / "transcripts"
    for name in ("agent_loop.md", "cosine_topk.md"):
        (folder / name).write_text((repo / name).read_text(encoding="utf-8"), encoding="utf-8")
    db = tmp / "store.duckdb"
    manifest = tmp / "manifest.csv"
    manifest.write_text(f"path,candidate\n{folder / 'agent_loop.md'},Benjamin Okafor\n", encoding="utf-8")
    runner = CliRunner()
    for args in (["cohort", str(folder), "--cohort", "c1"], ["cohort", str(manifest), "--cohort", "c2"]):
        res = runner.invoke(app, [*args, "--db", str(db)])
        assert res.exit_code == 0, res.output
    return db


@pytest.mark.parametrize("filters", [Filters(), Filters(cohort="c1"), Filters(cohort="c2")], ids=["all", "c1", "c2"])
def test_every_link_of_the_static_report_resolves(renamed_store, tmp_path, filters):
    out = tmp_path / "report"
    build.build_report(renamed_store, out, filters)
    assert _broken_links(out) == []
    if filters.cohort in (None, "c1"):  # the c1 page links to the name c1 gives the candidate
        c1 = (out / "cohort" / f"{pages.slug('c1')}.html").read_text()
        assert f"candidate/{pages.slug('Ben Okafor')}.html" in c1
        assert (out / "candidate" / f"{pages.slug('Ben Okafor')}.html").is_file()


# -- coverage: what was not judged, why, and what replaced it ----------------------------------------


def _dims_unscored_without_judgment_reason(transcript: Transcript, rubric, cost: float | None) -> Judgment:
    j = _judgment(transcript, rubric, "unscored", cost)
    return j.model_copy(update={"reason": None})


@pytest.fixture(scope="module")
def rerun_store(tmp_path_factory) -> Path:
    """Cohort `c`, run twice. First run: Ada scored, Bo failed (file not found), Cy skipped (empty),
    Dee unscored with no judgment-level reason (each dimension rate limited). Second run (later):
    Bo judged (scored), Cy skipped again, Ada cached, Dee unscored again. Every price unknown."""
    db = tmp_path_factory.mktemp("report-rerun") / "store.duckdb"
    rubric = select_rubric("default", None)
    ada, bo, dee = _transcript("Ada", "2026-05-01"), _transcript("Bo", "2026-05-02"), _transcript("Dee", "2026-05-04")
    info = JudgeInfo(kind="llm", model=MODEL, prompt_version="judge-v1")
    with Store(db) as store:
        first = store.start_run(command="cohort", judge_info=info, rubric=rubric, cohort="c")
        ids = store.save_batch(first, [(_judgment(ada, rubric, "scored", None), ada, rubric),
                                       (_dims_unscored_without_judgment_reason(dee, rubric, None), dee, rubric)],
                               members=_members("c", [ada, dee]))
        store.save_batch(first, [], items=[
            {"item": "ada.md", "status": "scored", "judgment_id": ids[0], "transcript_hash": ada.content_hash},
            {"item": "bo.md", "status": "failed", "error": "file not found"},
            {"item": "cy.md", "status": "skipped", "error": "empty transcript"},
            {"item": "dee.md", "status": "unscored", "judgment_id": ids[1], "transcript_hash": dee.content_hash}])
        store.finish_run(first, "finished")
        second = store.start_run(command="cohort", judge_info=info, rubric=rubric, cohort="c")
        ids2 = store.save_batch(second, [(_judgment(bo, rubric, "scored", None), bo, rubric),
                                         (_dims_unscored_without_judgment_reason(dee, rubric, None), dee, rubric)],
                                members=_members("c", [bo, dee]))
        store.save_batch(second, [], items=[
            {"item": "ada.md", "status": "cached", "judgment_id": ids[0]},
            {"item": "bo.md", "status": "scored", "judgment_id": ids2[0]},
            {"item": "cy.md", "status": "skipped", "error": "empty transcript"},
            {"item": "dee.md", "status": "unscored", "judgment_id": ids2[1]}])
        store.finish_run(second, "finished")
        store.con.execute("UPDATE runs SET started_at = ? WHERE id = ?", ["2026-05-01 10:00:00", first])
        store.con.execute("UPDATE runs SET started_at = ? WHERE id = ?", ["2026-05-02 10:00:00", second])
    return db


def test_coverage_lists_only_inputs_whose_latest_run_did_not_judge_them(rerun_store):
    with duckdb.connect(str(rerun_store), read_only=True) as con:
        schema = q.read_schema(con)
        for f in (Filters(), Filters(cohort="c")):
            items = q.coverage(con, schema, f)["failed_items"]
            # not the judgments made (scored, unscored), not Bo (judged later), Cy once, not twice
            assert [(r["status"], r["reason"], r["n"]) for r in items] == [("skipped", "empty transcript", 1)], f


def test_a_judgment_without_its_own_reason_is_described_by_its_dimensions(rerun_store):
    with duckdb.connect(str(rerun_store), read_only=True) as con:
        reasons = q.coverage(con, q.read_schema(con), Filters(cohort="c"))["judgment_reasons"]
    assert [(r["status"], r["reason"], r["n"]) for r in reasons] == [("unscored", RATE_LIMITED, 2)]
    # the later attempt has the same status: it is not "a better judgment"
    assert reasons[0]["superseded"] == 0


def test_replaced_counts_only_replacements_by_a_better_status(retried_store):
    db, _ = retried_store
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = {(r["status"], r["reason"]): r for r in q.coverage(con, q.read_schema(con), Filters())["judgment_reasons"]}
    # Ada's and Bo's failed attempts lost to scored ones, Cy's to a partial one: all three better
    assert reasons[("unscored", RATE_LIMITED)]["superseded"] == 3
    assert reasons[("partial", RATE_LIMITED)]["superseded"] == 0


# -- cost: an unknown price is unknown, never zero ---------------------------------------------------------


def test_unknown_prices_show_as_unknown_not_zero(rerun_store, retried_store, tmp_path):
    out = tmp_path / "report"
    build.build_report(rerun_store, out)
    for page in (out / "cost.html", out / "index.html", out / "cohort" / f"{pages.slug('c')}.html"):
        html = page.read_text()
        assert "$0.0000" not in html and "unknown" in html, page.name
    cost_html = (out / "cost.html").read_text()
    assert re.search(r'<div class="kpi-n">unknown</div><div class="kpi-l">total, every cohort \(4 with unknown price\)', cost_html)
    assert _cost_row(cost_html, "c") == "unknown"
    assert _cost_card((out / "index.html").read_text()) == ("unknown", "judge cost, every judgment in every cohort (4 with unknown price)")
    # some prices known: a lower bound, and the mean only over the known ones (0.0665 over 5)
    mixed = tmp_path / "mixed"
    build.build_report(retried_store[0], mixed)
    cost_html = (mixed / "cost.html").read_text()
    assert '<div class="kpi-n">at least $0.0665</div><div class="kpi-l">total, every cohort (1 with unknown price)' in cost_html
    assert '<div class="kpi-n">$0.0133</div><div class="kpi-l">per judgment with a known price (5)' in cost_html
