"""The judge-quality page's probe section in a real browser (Debian's headless Chromium via playwright),
after `evaluate probe` ran against the scripted fake server."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from fakellm import Call, FakeLLM
from support import ARGS, CHROMIUM, LRU, Scripted, Watched
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.report import build

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def test_quality_page_shows_probe_movement_and_test_retest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import sync_playwright

    for name in ("EVALUATOR_MODEL", "EVALUATOR_API_BASE", "EVALUATOR_DB", "EVALUATOR_REDACT_LIST"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "e.duckdb"
    with FakeLLM() as server:
        server.script(Call(Scripted()))
        results = []
        # in its own thread: playwright's sync API may already run an event loop in this one
        t = threading.Thread(target=lambda: results.append(CliRunner().invoke(app, [
            "probe", str(LRU), "--model", "openai/test-model", "--api-base", server.base_url, "--db", str(db),
            "--retry-wait", "0.01"])))
        t.start()
        t.join()
    assert results[0].exit_code == 0, results[0].output
    assert "anchors_reversed" in results[0].stdout and "Test-retest" in results[0].stdout
    out = tmp_path / "report"
    build.build_report(db, out)

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(tempfile.mkdtemp(prefix="chromium-profile-"),
                                                   executable_path=str(CHROMIUM), args=ARGS, headless=True,
                                                   viewport={"width": 1400, "height": 900})
        try:
            w = Watched(ctx)
            w.goto((out / "quality.html").as_uri())
            page = w.page
            movement = page.locator("#probe-movement tbody tr")
            assert movement.count() == 6 * 5  # six perturbations x five dimensions
            # anchors_reversed moves every dimension, doubled filler moves restraint
            assert page.locator("#probe-movement .badge.flag").count() == 5 + 1
            assert page.locator("#probe-movement .badge.flag").first.is_visible()
            rows = {r.locator("td").first.inner_text(): r.locator("td").nth(2).inner_text()
                    for r in page.locator("#probe-retest tbody tr").all()}
            assert len(rows) == 5 and "33%" in rows.values() and list(rows.values()).count("100%") == 4
            assert "K=3" in page.locator("#probes").inner_text()
            w.shot("report-quality-probes.png")
            w.check_clean()
        finally:
            ctx.close()
