"""The judge-quality page shows the stability of repeated samples and the agreement of a jury, in a
real browser (Debian's headless Chromium through playwright), from a store filled by the real CLI
(cohorts judged with --samples and --jury against the scripted fake server)."""

from __future__ import annotations

import json
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, FakeLLM
from replies import build_reply, requested_dims
from support import CHROMIUM, Watched, make_cohort, query
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.judge.aggregate import jury_alpha
from evaluator.report import build

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def varied(body: dict[str, Any]) -> str:
    """Scores that differ per transcript (from a hash of the prompt), per seed and per juror model."""
    base = zlib.crc32(json.dumps(body["messages"]).encode()) % 4 + 1  # 1-4, per transcript
    seed = body.get("seed") or 0
    bump = {"model-a": 0, "model-b": 1}.get(body["model"], 0)
    scores = {d: min(5, base + bump + (seed % 2 if i == 0 else 0) + (2 if i == 1 and seed == 2 else 0))
              for i, d in enumerate(requested_dims(body))}
    return json.dumps(build_reply(body, scores=scores))


def _cli(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ensemble-report")
    db = root / "store.duckdb"
    folder = root / "rounds"
    make_cohort(folder, 4)
    with FakeLLM() as server:
        server.script(Call(varied))
        common = ["--db", str(db), "--format", "json", "--api-base", server.base_url, "--retry-wait", "0.01"]
        # in a thread of its own: playwright's sync API may run an event loop in this one
        work = threading.Thread(target=lambda: (
            _cli(["cohort", str(folder), "--cohort", "s", "--model", "openai/model-s", "--samples", "3", *common]),
            _cli(["cohort", str(folder), "--cohort", "j", "--jury", "openai/model-a,openai/model-b", *common])))
        work.start()
        work.join()
    out = root / "report"
    build.build_report(db, out)
    return db, out




def _table(w: Watched, section: str) -> list[list[str]]:
    return w.page.evaluate(f"""Array.from(document.querySelectorAll('#{section} tbody tr')).map(
        tr => Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim()))""")


def test_quality_page_shows_sample_stability_and_jury_alpha(browser, report) -> None:
    db, out = report
    w = Watched(browser)
    w.goto((out / "quality.html").as_uri())
    w.shot("quality-samples-jury.png")
    w.check_clean()
    stability = _table(w, "stability")
    dims = [r["dimension_id"] for r in query(db, """SELECT DISTINCT d.dimension_id, d.position FROM dimension_scores d
            JOIN judgments j ON j.id = d.judgment_id WHERE j.kind = 'aggregate' ORDER BY d.position""")]
    # the cohort's transcripts are judged under several rubrics (default and exercise rubrics): one row
    # per rubric version and dimension, never one pooling the versions
    per_version = {r["rubric_version"]: r["n"] for r in query(db, """
        SELECT rubric_version, count(DISTINCT transcript_hash) AS n FROM judgments
        WHERE kind = 'aggregate' AND model LIKE '%median of 3%' GROUP BY 1""")}
    assert len(per_version) > 1 and sum(per_version.values()) == 4  # four transcripts
    assert len(stability) == len(dims) * len(per_version)
    assert {r[1] for r in stability} == {"openai/model-s (median of 3)"}
    assert {r[2] for r in stability} == set(per_version)
    assert all(r[3] == str(per_version[r[2]]) and r[4] == "3" for r in stability)  # three samples each
    # The first dimension moves one level with the seed's parity (stable); the second jumps two
    # levels on the third sample of every transcript whose base score leaves room (unstable).
    rows = query(db, """SELECT j.rubric_version, d.dimension_id, d.ensemble FROM dimension_scores d
                        JOIN judgments j ON j.id = d.judgment_id
                        WHERE j.kind = 'aggregate' AND j.model LIKE '%median of 3%'""")
    unstable = 0
    for version in per_version:
        mine = [r for r in stability if r[2] == version]
        second = [json.loads(r["ensemble"]) for r in rows if r["dimension_id"] == dims[1] and r["rubric_version"] == version]
        share = sum(s["unstable"] for s in second) / len(second)
        unstable += share > 0
        assert mine[1][7] == f"{100 * share:.0f}%"
        assert mine[0][7] == "0%"
    assert unstable
    jury = _table(w, "jury")
    jury_versions = sorted({r["rubric_version"] for r in query(
        db, "SELECT rubric_version FROM judgments WHERE kind = 'aggregate' AND model LIKE 'jury%'")})
    assert len(jury) == len(dims) * len(jury_versions) and [r[2] for r in jury[::len(dims)]] == jury_versions
    assert all(r[1] == "jury(openai/model-a, openai/model-b) median" and r[4] == "2" for r in jury)
    first = [json.loads(r["ensemble"]) for r in query(
        db, """SELECT d.ensemble FROM dimension_scores d JOIN judgments j ON j.id = d.judgment_id
               WHERE j.kind = 'aggregate' AND j.model LIKE 'jury%' AND d.dimension_id = ? AND j.rubric_version = ?""",
        [dims[0], jury_versions[0]])]
    alpha = jury_alpha([s["jurors"] for s in first], [1, 2, 3, 4, 5])
    assert jury[0][5] == (f"{alpha:,.2f}" if alpha is not None else "undefined")
