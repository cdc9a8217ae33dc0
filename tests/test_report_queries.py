"""Unit tests of the report's DuckDB aggregation queries, the static build and the CLI's checks.

The store is filled by `evaluator.report.synthetic`, which writes through Store.save_batch only.
Expected values are recomputed here from the rows as written, independently of the SQL.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from datetime import date
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import StoreError
from evaluator.judge.evidence import _norm
from evaluator.report import build, pages, views
from evaluator.report import queries as q
from evaluator.report.queries import Filters
from evaluator.report.synthetic import MODELS, SyntheticSpec, generate
from evaluator.store.db import Store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-q")
    db = root / "store.duckdb"
    with Store(db) as store:
        generate(store, SyntheticSpec(candidates=4, sessions_per_candidate=6, transcripts_dir=root / "transcripts"))
    return db


@pytest.fixture
def con(store_path):
    c = duckdb.connect(str(store_path), read_only=True)
    yield c
    c.close()


def _raw(con) -> list[dict]:
    """Every scored dimension as stored, with the judgment's metadata (for independent checks)."""
    cur = con.execute("""
        SELECT j.id, t.candidate, j.rubric_version, j.model, r.cohort, t.session_date, d.dimension_id, d.status, d.score,
               j.cost_usd
        FROM judgments j JOIN transcripts t ON t.hash = j.transcript_hash JOIN runs r ON r.id = j.run_id
        JOIN dimension_scores d ON d.judgment_id = j.id""")
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def test_overview_totals_and_distribution_match_the_stored_rows(con):
    schema = q.read_schema(con)
    raw = _raw(con)
    totals = q.overview_totals(con, schema, Filters())
    assert totals["judgments"] == len({r["id"] for r in raw}) == 24
    assert totals["candidates"] == 4
    assert totals["rubric_versions"] == 2 and totals["models"] == 2
    dist = {r["dimension_id"]: r for r in q.dimension_distribution(con, schema, Filters())}
    for dim, row in dist.items():
        scored = [r["score"] for r in raw if r["dimension_id"] == dim and r["status"] == "scored"]
        assert row["n_scored"] == len(scored)
        assert row["n_unscored"] == sum(1 for r in raw if r["dimension_id"] == dim and r["status"] == "unscored")
        assert sum(row["counts"].values()) == len(scored)
        assert row["mean"] == pytest.approx(sum(scored) / len(scored))


def test_heatmap_is_the_mean_per_candidate_and_dimension(con):
    schema = q.read_schema(con)
    expected = defaultdict(list)
    for r in _raw(con):
        if r["status"] == "scored":
            expected[(r["candidate"], r["dimension_id"])].append(r["score"])
    cells = q.heatmap(con, schema, Filters())
    assert len(cells) == len(expected)
    for c in cells:
        scores = expected[(c["candidate"], c["dimension_id"])]
        assert c["n"] == len(scores)
        assert c["mean"] == pytest.approx(sum(scores) / len(scores))
    weakest = q.weakest_dimensions(con, schema, Filters())
    assert [w["mean"] for w in weakest] == sorted(w["mean"] for w in weakest)
    # a candidate counts for each dimension tied at their lowest mean, and for none when level on all
    per_cand = defaultdict(dict)
    for (cand, dim), scores in expected.items():
        per_cand[cand][dim] = sum(scores) / len(scores)
    weakest_for = defaultdict(int)
    for means in per_cand.values():
        lo, hi = min(means.values()), max(means.values())
        for dim, m in means.items():
            weakest_for[dim] += hi - lo >= 1e-9 and m - lo < 1e-9
    assert {w["dimension_id"]: w["weakest_for"] for w in weakest} == {w["dimension_id"]: weakest_for[w["dimension_id"]]
                                                                      for w in weakest}


def test_trend_marks_a_break_at_every_rubric_or_model_change_and_never_elsewhere(con):
    schema = q.read_schema(con)
    rows = q.candidate_trend(con, schema, Filters())
    by_line = defaultdict(list)
    for r in rows:
        by_line[(r["candidate"], r["dimension_id"])].append(r)
    kinds = set()
    for points in by_line.values():
        assert [p["session_date"] for p in points] == sorted(p["session_date"] for p in points)
        for prev, cur in pairwise(points):
            changed = (prev["rubric_version"], prev["model"]) != (cur["rubric_version"], cur["model"])
            assert cur["is_break"] == changed
            if changed:
                kinds.add("rubric" if prev["rubric_version"] != cur["rubric_version"] else "model")
        assert points[0]["is_break"] is False
    assert kinds == {"rubric", "model"}


def test_improvements_and_regressions_never_compare_across_a_break(con):
    schema = q.read_schema(con)
    trend = {(r["candidate"], r["dimension_id"], r["judgment_id"]): r for r in q.candidate_trend(con, schema, Filters())}
    series_of = {k: v["series"] for k, v in trend.items()}
    changes = q.candidate_changes(con, schema, Filters())
    assert changes, "the synthetic history has session-to-session changes"
    for c in changes:
        assert (c["delta"] > 0) == (c["kind"] == "improvement")
        points = sorted((v for k, v in trend.items() if k[0] == c["candidate"] and k[1] == c["dimension_id"]),
                        key=lambda p: (p["session_date"], p["created_at"]))
        i = next(i for i, p in enumerate(points) if p["judgment_id"] == c["judgment_id"])
        same = [p for p in points[:i] if p["series"] == series_of[(c["candidate"], c["dimension_id"], c["judgment_id"])]]
        assert same and same[-1]["score"] == c["prev_score"]


def test_filters_narrow_every_query(con):
    schema = q.read_schema(con)
    opts = q.filter_options(con, schema)
    assert opts["cohort"] == ["autumn-2026", "spring-2026"]
    spring = q.overview_totals(con, schema, Filters(cohort="spring-2026"))
    autumn = q.overview_totals(con, schema, Filters(cohort="autumn-2026"))
    assert spring["judgments"] + autumn["judgments"] == 24
    one = opts["candidate"][0]
    assert q.overview_totals(con, schema, Filters(candidate=one))["judgments"] == 6
    assert q.overview_totals(con, schema, Filters(model=MODELS[0]))["models"] == 1
    version = opts["rubric_version"][0]
    assert q.overview_totals(con, schema, Filters(rubric_version=version[:12]))["version_list"] == [version]
    dates = sorted({r["session_date"] for r in _raw(con)})
    mid = date.fromisoformat(dates[len(dates) // 2])
    before = q.overview_totals(con, schema, Filters(until=mid))
    after = q.overview_totals(con, schema, Filters(since=mid))
    assert before["last_date"] <= mid <= after["first_date"]
    assert q.judgments_page(con, schema, Filters(candidate=one), 1, 4)["pages"] == 2


def test_a_rejudged_session_counts_once_in_scores_but_its_cost_counts_twice(tmp_path):
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        generate(store, SyntheticSpec(candidates=1, sessions_per_candidate=3, cohorts=()))
        generate(store, SyntheticSpec(candidates=1, sessions_per_candidate=3, cohorts=()))  # same sessions again
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)
        assert c.execute("SELECT count(*) FROM judgments").fetchone()[0] == 6
        assert q.overview_totals(c, schema, Filters())["judgments"] == 3
        assert sum(r["judgments"] for r in q.cost_by(c, schema, Filters(), "model")) == 6


def _older_store(path: Path, upto: str) -> Path:
    """A store migrated only up to `upto`, as an older evaluate left it."""
    from evaluator.store.migrations import MIGRATIONS

    with duckdb.connect(str(path)) as c:
        c.execute("CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
        for name, sql in MIGRATIONS:
            c.execute(sql)
            c.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
            if name == upto:
                break
    return path


def test_a_store_older_than_the_report_needs_is_refused_by_the_schema_check_and_upgraded_by_the_opener(tmp_path):
    db = _older_store(tmp_path / "old.duckdb", "0005_run_owner")
    with duckdb.connect(str(db), read_only=True) as c, pytest.raises(StoreError, match="0007_transcript_text") as e:
        q.read_schema(c, db=db)
    assert "run any command that writes" in str(e.value)
    # The one store opener upgrades an older file (its migrations, in one short writable session) before
    # a read-only open, so the report builds on it and the file is at the current schema afterwards.
    result = CliRunner().invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    from evaluator.store.migrations import MIGRATIONS

    with duckdb.connect(str(db), read_only=True) as c:
        applied = {r[0] for r in c.execute("SELECT name FROM schema_migrations").fetchall()}
    assert applied == {name for name, _ in MIGRATIONS}


def test_agreement_ceiling_and_calibration_from_human_labels(tmp_path, store_path):
    db = tmp_path / "labelled.duckdb"
    db.write_bytes(store_path.read_bytes())
    with Store(db) as store:  # human_labels arrives with migration 0003 (its writer is the labels command)
        rows = store.con.execute("""
            SELECT j.transcript_hash, d.dimension_id, d.score, j.rubric_id, j.rubric_version FROM judgments j
            JOIN dimension_scores d ON d.judgment_id = j.id WHERE d.status = 'scored' ORDER BY j.id, d.dimension_id
            LIMIT 40""").fetchall()
        labels = []
        for i, (h, dim, score, rid, rv) in enumerate(rows):
            labels.append(("imp1", i, h, h, "ana", dim, rid, rv, "scored", float(score if i % 2 else min(5, score + 1))))
            labels.append(("imp1", i, h, h, "ben", dim, rid, rv, "scored", float(score)))
        store.con.executemany("INSERT INTO human_labels (import_id, line, transcript_hash, transcript_ref, rater,"
                              " dimension_id, rubric_id, rubric_version, status, score) VALUES (?,?,?,?,?,?,?,?,?,?)", labels)
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)
        quality = q.judge_quality(c, schema, Filters())
        assert quality["n_labels"] == 80
        # The CLI's definition (evaluator.calibrate.pairing): the judge against the raters' mean, one pair
        # per item; exact is |judge - mean| < 0.5, so a half-point mean (ana one above ben) is not exact.
        pairs = sum(r["n"] for r in quality["agreement"])
        assert pairs == 40
        exact = sum(r["exact"] * r["n"] for r in quality["agreement"])
        agreeing = sum(1 for i, (_, _, s, _, _) in enumerate(rows) if i % 2 or s == 5)
        assert exact == pytest.approx(agreeing)
        for r in quality["agreement"]:
            assert 0 <= r["lo"] <= r["exact"] <= r["hi"] <= 1
        # The ceiling on the same footing: each rater against the mean of the others (here: the other one).
        ceiling = sum(r["exact"] * r["n"] for r in quality["ceiling"])
        assert sum(r["n"] for r in quality["ceiling"]) == 80
        assert ceiling == pytest.approx(2 * agreeing)
        assert "mean of the raters" in quality["definition"]
        assert quality["curve"] and all(r["n"] >= 1 for r in quality["curve"])


def test_static_build_writes_every_view_and_escapes_names(tmp_path, store_path):
    out = tmp_path / "report"
    result = build.build_report(store_path, out)
    assert result.judgments == 24
    for rel in ("index.html", "quality.html", "cost.html", "judgments/1.html", "assets/plotly.min.js",
                "assets/report.css", "assets/report.js"):
        assert (out / rel).is_file(), rel
    # the judgment view: one shared page, drawing each judgment from the data file that holds it
    assert (out / "judgment.html").is_file()
    assert 'data-files="1"' in (out / "judgment.html").read_text()
    files = sorted((out / "judgment").glob("*.js"))
    assert [p.name for p in files] == ["0.js"] and result.data_files == pages.data_file_count(24) == 1
    filed = re.findall(r'^J\["([A-Za-z0-9-]+)"\] = \{', files[0].read_text(), re.MULTILINE)
    with duckdb.connect(str(store_path), read_only=True) as c:
        assert sorted(filed) == sorted(pages.safe_id(r[0]) for r in c.execute("SELECT id FROM judgments").fetchall())
    assert len(list((out / "candidate").glob("*.html"))) == 4
    assert len(list((out / "cohort").glob("*.html"))) == 2
    html = (out / "index.html").read_text()
    assert "cdn." not in html and "https://" not in html
    assert 'src="assets/plotly.min.js"' in html


def _same(a, b) -> bool:
    """Equal query results, floats within 1e-9 (a sum's last bits depend on the order DuckDB adds in)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_scope_cache_changes_no_result(store_path):
    """The static build computes each scope once into a temporary table: every view reads the same."""
    with duckdb.connect(str(store_path), read_only=True) as plain, \
            duckdb.connect(str(store_path), read_only=True) as cached:
        a, b = q.read_schema(plain), q.read_schema(cached, cache_scopes=True)
        for f in (Filters(), Filters(cohort="spring-2026"), Filters(model=MODELS[1], since=date(2026, 2, 1))):
            for fn in (q.overview_totals, q.dimension_distribution, q.heatmap, q.candidates_summary, q.coverage,
                       q.candidate_trend, q.candidate_sessions, q.candidate_changes, q.cost_by_run, q.judgment_ids):
                expected = fn(plain, a, f)
                assert expected and _same(expected, fn(cached, b, f)) and _same(expected, fn(cached, b, f)), \
                    (fn.__name__, f)
            assert _same(q.judgments_page(plain, a, f, 2, 5), q.judgments_page(cached, b, f, 2, 5))
        assert len(b.scopes.tables) == 6  # three filters, each latest-only and every judgment (cost)


def test_judgment_data_files_hold_every_judgment_once_with_its_data(tmp_path, store_path, monkeypatch):
    monkeypatch.setattr(pages, "JUDGMENTS_PER_FILE", 5)
    (tmp_path / "judgment").mkdir()
    with duckdb.connect(str(store_path), read_only=True) as c:
        schema = q.read_schema(c, cache_scopes=True)
        ids = q.judgment_ids(c, schema, Filters())
        site = build.make_site(c, schema, Filters(), pages.Links(static=True), store_path, serve=False)
        static = views.Static(c, schema, site, site, Filters(), lambda rel, text: (tmp_path / rel).write_text(text))
        assert views.write_judgment_data(static, ids) == 5
        stored = {r[0]: r[1:] for r in c.execute(
            "SELECT j.id, j.status, count(d.dimension_id) FROM judgments j JOIN dimension_scores d ON d.judgment_id = j.id"
            " GROUP BY ALL").fetchall()}
    seen = {}
    for path in sorted((tmp_path / "judgment").glob("*.js")):
        lines = path.read_text().splitlines()
        assert lines[0] == "(function (J) {" and lines[-1].startswith("})(window.EvaluatorJudgments = ")
        for line in lines[1:-1]:
            m = re.fullmatch(r'J\["([A-Za-z0-9-]+)"\] = (\{.*\});', line)
            assert m, line[:80]
            assert pages.data_file_of(m[1], 5) == int(path.stem) and m[1] not in seen
            seen[m[1]] = json.loads(m[2])
    assert sorted(seen) == sorted(ids)
    for jid, data in seen.items():
        assert (data["j"]["status"], len(data["j"]["dims"])) == stored[jid]
        assert data["candidate_url"].startswith("candidate/") and data["candidate_url"].endswith(".html")
        # the text it was judged on, from the store; each quote's stored span covers the quote there
        texts = {t["id"]: t["text"] for t in data["t"]["turns"]} | {c["name"]: c["content"] for c in data["t"]["code"]}
        assert data["t_note"] is None and texts
        for d in data["j"]["dims"]:
            for e in d["evidence"]:
                assert _norm(texts[e["source"]][e["start"]:e["end"]]) == _norm(e["quote"])


def test_no_template_marks_data_safe():
    templates = Path(pages.__file__).parent / "templates"
    for t in templates.glob("*.html"):
        text = t.read_text()
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text, t.name


def test_cli_reports_bad_input_with_exit_2_and_builds(tmp_path, store_path):
    runner = CliRunner()
    for args, message in [
        (["report", "--db", str(tmp_path / "missing.duckdb")], "no database"),
        (["report", "--db", str(store_path), "--since", "March"], "--since must be a date"),
        (["report", "--db", str(store_path), "--cohort", "nope"], "no cohort named 'nope'"),
        (["report", "--db", str(store_path), "--since", "2026-05-01", "--until", "2026-01-01"], "is after"),
        (["report", "--db", str(store_path), "--port", "70000", "--serve"], "--port"),
        (["report", "--db", str(tmp_path)], "directory"),
    ]:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output
    out = tmp_path / "r"
    res = runner.invoke(app, ["report", "--db", str(store_path), "--out", str(out), "--cohort", "spring-2026"])
    assert res.exit_code == 0, res.output
    assert (out / "index.html").is_file()
    assert len(list((out / "candidate").glob("*.html"))) == 2


_HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")


def test_read_only_open_waits_for_a_writer_then_gives_up_clearly(tmp_path, store_path):
    db = tmp_path / "locked.duckdb"
    db.write_bytes(store_path.read_bytes())
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db), "1.0"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        con = build.connect_read_only(db, wait=10)  # waits out the 1 s hold
        assert con.execute("SELECT count(*) FROM judgments").fetchone()[0] == 24
        con.close()
    finally:
        holder.wait(timeout=30)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db), "5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="locked by a writer"):
            build.connect_read_only(db, wait=0.3)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_calibrated_interval_wider_than_half_the_scale_is_not_drawn_and_bars_stop_at_the_scale():
    from evaluator.report import charts

    def point(jid: str, day: str, calibrated: float, half: float | None) -> dict:
        return {"series": "v · m", "session_date": day, "score": 3, "judgment_id": jid, "exercise": "e", "model": "m",
                "rubric_version": "v", "calibrated": calibrated, "calibrated_half_width": half, "is_break": False}

    spec = charts.trend([point("a", "2026-03-01", 3.1, 2.5), point("b", "2026-03-09", 4.8, 0.5),
                         point("c", "2026-03-20", 2.0, None)], {}, (1, 5), {"a": "#a", "b": "#b", "c": "#c"})
    cal = spec["data"][1]
    assert cal["error_y"]["array"] == [0.0, 0.2, 0.0] and cal["error_y"]["arrayminus"] == [0.0, 0.5, 0.0]
    notes = [c[1] for c in cal["customdata"]]
    assert "too wide to draw" in notes[0] and notes[1] == "± 0.50 (95%)" and "no interval" in notes[2]


def test_a_trend_of_one_session_spans_days_not_seconds():
    from evaluator.report import charts

    one = [{"session_date": "2026-03-14"}]
    assert charts.date_range(one) == ["2026-03-07", "2026-03-21"]
    spec = charts.trend([{"series": "s", "session_date": "2026-03-14", "score": 4, "judgment_id": "j", "exercise": "e",
                          "model": "m", "rubric_version": "v", "is_break": False}], {}, (1, 5), {"j": "#j"})
    assert spec["layout"]["xaxis"]["range"] == ["2026-03-07", "2026-03-21"]
    assert ":" not in spec["layout"]["xaxis"]["tickformat"]


def test_stored_calibration_results_read_as_numbers_people_use():
    from evaluator.report.views import cv_summary

    cv = json.dumps({"folds": 5, "n": 10, "before": {"mae": 0.6000000000000001, "exact": 0.4},
                     "after": {"mae": 0.44999999999999996, "exact": 0.6}})
    assert cv_summary(cv) == "MAE 0.60 → 0.45 · exact 40% → 60% (5-fold)"
    assert cv_summary(None) == cv_summary("not json") == "–"


def _two_cohorts(path: Path, autumn_sessions: int) -> Path:
    """Cohort spring judged by one judge under the revised rubric, every label agreeing with it;
    cohort autumn (with `autumn_sessions` > 1: also the first judge and the first rubric version)
    labelled two or more points away from every score, so its exact agreement is 0."""
    with Store(path) as store:
        generate(store, SyntheticSpec(candidates=2, sessions_per_candidate=1, cohorts=("spring",), seed=1))
        generate(store, SyntheticSpec(candidates=2, sessions_per_candidate=autumn_sessions, cohorts=("autumn",),
                                      seed=2))
        rows = store.con.execute("""
            SELECT j.transcript_hash, d.dimension_id, d.score, j.rubric_id, j.rubric_version, r.cohort
            FROM judgments j JOIN runs r ON r.id = j.run_id JOIN dimension_scores d ON d.judgment_id = j.id
            WHERE d.status = 'scored' ORDER BY j.id, d.dimension_id""").fetchall()
        labels = []
        for i, (h, dim, score, rid, rv, cohort) in enumerate(rows):
            human = score if cohort == "spring" else (1 if score >= 3 else 5)
            labels += [("imp", 2 * i + k, h, h, rater, dim, rid, rv, "scored", float(human))
                       for k, rater in enumerate(("ana", "ben"))]
        store.con.executemany("INSERT INTO human_labels (import_id, line, transcript_hash, transcript_ref, rater,"
                              " dimension_id, rubric_id, rubric_version, status, score) VALUES (?,?,?,?,?,?,?,?,?,?)",
                              labels)
    return path


def _agreement_cells(html: str) -> tuple[set[str], list[str]]:
    """(judges, exact-agreement cells) of a judge-quality page's agreement table."""
    section = html[html.index("<h2>Exact agreement"):]
    section = section[:section.index("</section>")]
    judges = set(re.findall(r"<tr><td>[^<]*</td><td>([^<]+)</td>", section))
    return judges, re.findall(r'<td class="r"><b>([^<]+)</b></td>', section)


def test_judge_quality_is_per_cohort_and_the_all_cohorts_page_says_what_it_pools(tmp_path):
    db = _two_cohorts(tmp_path / "two.duckdb", autumn_sessions=3)
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)
        spring = q.judge_quality(c, schema, Filters(cohort="spring"))
        autumn = q.judge_quality(c, schema, Filters(cohort="autumn"))
        pooled = q.judge_quality(c, schema, Filters())
        n_spring = sum(r["n"] for r in spring["agreement"])
        n_autumn = sum(r["n"] for r in autumn["agreement"])
        assert n_spring and n_autumn and sum(r["n"] for r in pooled["agreement"]) == n_spring + n_autumn
        assert {r["exact"] for r in spring["agreement"]} == {1.0}
        assert {r["exact"] for r in autumn["agreement"]} == {0.0}
        assert {r["model"] for r in spring["agreement"]} == {MODELS[1]}
        assert {r["model"] for r in autumn["agreement"]} == set(MODELS)
        # the human ceiling is over the cohort's own labelled transcripts (two raters: two per item)
        assert sum(r["n"] for r in spring["ceiling"]) == 2 * n_spring
        assert sum(r["n"] for r in pooled["ceiling"]) == 2 * (n_spring + n_autumn)

    out = tmp_path / "report"
    build.build_report(db, out)
    for cohort, judges, exact in (("spring", {MODELS[1]}, {"100%"}), ("autumn", set(MODELS), {"0%"})):
        page = f"quality/{pages.slug(cohort)}.html"
        html = (out / page).read_text()
        assert f"Judge quality · {cohort}" in html
        judged_with = re.search(r'id="judged-with">([^<]+)<', html)[1]
        assert all(m in judged_with for m in judges)
        assert ("per judge and rubric version" in judged_with) == (cohort == "autumn")
        found_judges, cells = _agreement_cells(html)
        assert found_judges == judges and set(cells) == exact, (cohort, found_judges, cells)
        # the cohort's overview page links to its own judge-quality page, which links back
        overview = (out / "cohort" / f"{pages.slug(cohort)}.html").read_text()
        assert f'href="../{page}"' in overview
        assert f'href="../cohort/{pages.slug(cohort)}.html"' in html
    everything = (out / "quality.html").read_text()
    assert "Judge quality · All cohorts" in everything and 'id="cohort-judges"' in everything
    assert "badge flag\">pooled" in everything  # judged differently: the pooled figures say so
    for cohort in ("spring", "autumn"):
        assert f'href="quality/{pages.slug(cohort)}.html"' in everything
    # the pooled figures describe neither cohort (100% and 0% pool into figures in between)
    assert set(_agreement_cells(everything)[1]) - {"100%", "0%"}

    # a report built for one cohort: its judge-quality page is that cohort's, with nothing pooled
    one = tmp_path / "spring-only"
    build.build_report(db, one, Filters(cohort="spring"))
    html = (one / "quality.html").read_text()
    assert 'id="cohort-judges"' not in html
    judges, cells = _agreement_cells(html)
    assert judges == {MODELS[1]} and set(cells) == {"100%"}
    assert (one / "quality" / f"{pages.slug('spring')}.html").is_file()
    assert not (one / "quality" / f"{pages.slug('autumn')}.html").exists()


def test_agreement_is_split_by_rubric_version_and_judgments_in_no_cohort_have_a_row(tmp_path):
    """Cohort autumn was judged under two rubric versions: each judge's agreement rows are per version
    (the anchors changed: two judges, not one), not pooled; a cohort judged under one version keeps
    one row per judge. Standalone judgments (`evaluate FILE`, in no cohort) are pooled into the
    all-cohorts figures, so the table of each cohort's judge has a row for them too."""
    db = _two_cohorts(tmp_path / "two.duckdb", autumn_sessions=3)
    with Store(db) as store:
        generate(store, SyntheticSpec(candidates=1, sessions_per_candidate=1, cohorts=(), seed=7))
    with duckdb.connect(str(db), read_only=True) as c:
        schema = q.read_schema(c)
        autumn = q.judge_quality(c, schema, Filters(cohort="autumn"))
        spring = q.judge_quality(c, schema, Filters(cohort="spring"))
        labelled = c.execute("""
            SELECT DISTINCT j.model, j.rubric_version FROM judgments j JOIN runs r ON r.id = j.run_id
            WHERE r.cohort = 'autumn' AND j.transcript_hash IN (SELECT transcript_hash FROM human_labels)""").fetchall()
        loose = q.judged_with(c, schema, Filters(), no_cohort=True)
    versions = {v for _, v in labelled}
    assert len(versions) == 2  # the fixture: autumn straddles the rubric revision
    assert {(r["model"], r["rubric_version"]) for r in autumn["agreement"]} == set(labelled)
    per_row = {(r["dimension_id"], r["model"], r["rubric_version"]) for r in autumn["agreement"]}
    assert len(per_row) == len(autumn["agreement"])  # one row per dimension, judge and version
    assert {r["rubric_version"] for r in spring["agreement"]} == {None}  # one version: nothing to split
    assert loose["judgments"] >= 1 and loose["models"]

    out = tmp_path / "report"
    build.build_report(db, out)
    html = (out / f"quality/{pages.slug('autumn')}.html").read_text()
    section = html[html.index("<h2>Exact agreement"):]
    section = section[:section.index("</section>")]
    assert "<th>Rubric version</th>" in section and all(v in section for v in versions)
    everything = (out / "quality.html").read_text()
    table = everything[everything.index('id="cohort-judges"'):]
    table = table[:table.index("</table>")]
    assert "(no cohort)" in table and "standalone judgments" in table
    assert table.count("<tr>") == 1 + 3  # the header, spring, autumn and the judgments in no cohort
    spring_page = (out / f"quality/{pages.slug('spring')}.html").read_text()
    assert "<th>Rubric version</th>" not in spring_page


def test_cohorts_judged_alike_are_said_to_pool_like_with_like(tmp_path):
    db = _two_cohorts(tmp_path / "alike.duckdb", autumn_sessions=1)
    out = tmp_path / "report"
    build.build_report(db, out)
    everything = (out / "quality.html").read_text()
    assert 'id="cohort-judges"' in everything
    assert "badge flag\">pooled" not in everything and "pool like with like" in everything


def test_overview_scores_use_one_rubric_version_and_judge_per_rubric(con):
    """The synthetic history revises the rubric and changes the judge part-way: the overview's score
    views keep, per rubric, the newest version and the judge of most sessions under it; every other
    series is listed (with its count) as left out, and the counts add up to the whole scope."""
    schema = q.read_schema(con)
    raw = _raw(con)
    series = q.series_shown(con, schema, Filters())
    pairs = {(r["rubric_version"], r["model"]) for r in raw}
    assert {(s["rubric_version"], s["model"]) for s in series} == pairs and len(pairs) > 1
    shown = [s for s in series if s["shown"]]
    assert len(shown) == 1  # one rubric id
    newest = con.execute("SELECT version FROM rubric_versions ORDER BY created_at DESC LIMIT 1").fetchone()[0]
    under_newest = {m: len({r["id"] for r in raw if r["rubric_version"] == newest and r["model"] == m})
                    for v, m in pairs if v == newest}
    assert shown[0]["rubric_version"] == newest and under_newest[shown[0]["model"]] == max(under_newest.values())
    pooled = q.overview_totals(con, schema, Filters())
    one = q.overview_totals(con, schema, Filters(), one_series=True)
    assert sum(s["judgments"] for s in series) == pooled["judgments"]
    assert one["judgments"] == shown[0]["judgments"] and (one["rubric_versions"], one["models"]) == (1, 1)
    dist = q.dimension_distribution(con, schema, Filters(), one_series=True)
    expected = sum(1 for r in raw if (r["rubric_version"], r["model"]) == (newest, shown[0]["model"])
                   and r["status"] == "scored")
    assert sum(d["n_scored"] for d in dist) == expected
