"""The report in a real browser: Debian's headless Chromium driven by Python playwright.

Loads the static report from disk and the served pages: no console errors, every chart drawn with
data, cohort -> candidate -> judgment navigation, a transcript and a judge reply crafted to inject
script run nothing (in the judgment view report.js draws from data, static and served), the judgment
page loads no data but its own, and the server keeps answering while another process writes. Screenshots go to
test-artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
import urllib.request
from pathlib import Path

import pytest
from support import CHROMIUM, Watched

from evaluator.ingest import load_transcript
from evaluator.judge.evidence import EvidenceIndex
from evaluator.models import DimensionResult, Flag, JudgeInfo, Judgment, Usage
from evaluator.pipeline import EvaluateRequest, evaluate_file
from evaluator.report import build
from evaluator.report.synthetic import SyntheticSpec, generate
from evaluator.rubrics import select_rubric
from evaluator.store.db import Store

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                               "(CI installs it: apt-get install chromium)")]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EVIL_NAME = "Eve <img src=x onerror=\"window.__xss='name'\">"
EVIL_TRANSCRIPT = """---
candidate: "Eve <img src=x onerror=\\"window.__xss='name'\\">"
interviewer: Sam
exercise: lru_ttl_cache
date: 2026-02-03
---
# Round <script>window.__xss='title'</script>

**Sam (interviewer):** Build an LRU cache. <img src=x onerror="window.__xss='img'">

**Eve (candidate):** The invariant is that the dict and the list hold the same keys. <script>window.__xss='script'</script>
See [my notes](javascript:window.__xss='link') and <a href="javascript:window.__xss='a'">this</a>.

**Sam (interviewer):** What about capacity zero?

**Eve (candidate):** Capacity zero raises ValueError; I'll test it. </textarea></pre><svg onload="window.__xss='svg'">
"""


def _evil_judgment(transcript, rubric) -> Judgment:
    """A model reply full of markup: rationale, quotes, flags and the model name."""
    script = "<script>window.__xss='rationale'</script>"
    quote = EvidenceIndex.of(transcript).locate("<script>window.__xss='script'</script>")  # as the LLM judge checks it
    assert quote is not None and quote.source == "t2"
    dims = [DimensionResult(id=d.id, status="scored", score=3, rationale=f"{script} {d.name}", evidence=[quote])
            for d in rubric.dimensions]
    info = JudgeInfo(kind="llm", model="evil/<img src=x onerror=\"window.__xss='model'\">", prompt_version="judge-v1")
    return Judgment(status="scored", transcript_hash=transcript.content_hash, source=transcript.source,
                    rubric_id=rubric.id, rubric_version=rubric.version, judge=info, dimensions=dims,
                    flags=[Flag(kind="prompt_injection", detail="<b onmouseover=\"window.__xss='flag'\">x</b>", source="t2")],
                    usage=Usage(calls=1, prompt_tokens=100, completion_tokens=10, cost_usd=0.001),
                    cache_key="evil-" + transcript.content_hash)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-browser")
    db = root / "store.duckdb"
    with Store(db) as s:
        generate(s, SyntheticSpec(candidates=5, sessions_per_candidate=7, transcripts_dir=root / "transcripts"))
    evil = root / "evil.md"
    evil.write_text(EVIL_TRANSCRIPT, encoding="utf-8")
    # The real pipeline (offline baseline judge) on the crafted transcript...
    # (in its own thread: playwright's sync API may already run an event loop in this one)
    judged = threading.Thread(target=evaluate_file, args=(EvaluateRequest(transcript=evil, db=db),))
    judged.start()
    judged.join()
    # ...and a judge reply that is itself hostile.
    transcript = load_transcript(evil)
    rubric = select_rubric(None, transcript.exercise)
    with Store(db) as s:
        run = s.start_run(command="test", judge_info=JudgeInfo(kind="llm", model="evil", prompt_version="judge-v1"),
                          rubric=rubric, cohort="spring-2026")
        s.save_judgment(run, _evil_judgment(transcript, rubric), transcript, rubric)
    return db




@pytest.fixture(scope="module")
def report_dir(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "report"
    build.build_report(store, out)
    return out


def test_static_report_navigates_cohort_candidate_judgment_offline(browser, report_dir):
    w = Watched(browser)
    w.goto((report_dir / "index.html").as_uri())
    assert w.charts_with_data() and all(n > 0 for n in w.charts_with_data())
    w.shot("report-overview.png")
    w.page.click("a.chip.link:text('spring-2026')")
    w.settle()
    assert "spring-2026" in w.page.inner_text("h1")
    assert all(n > 0 for n in w.charts_with_data())
    w.shot("report-cohort.png")
    w.page.click("#candidates tbody tr:first-child a")
    w.settle()
    assert w.page.get_attribute("body", "data-view") == "candidate"
    counts = w.charts_with_data()
    assert len(counts) == 5 and all(n > 0 for n in counts)
    # trend breaks are drawn: dashed lines and their notes on every dimension's chart
    assert w.page.locator(".chart .annotation-text:text('rubric changed')").count() == 5
    w.shot("report-candidate.png")
    w.page.click("table.tbl tbody tr:first-child td:first-child a")
    w.settle()
    assert w.page.get_attribute("body", "data-view") == "judgment"
    assert "/judgment.html?id=" in w.page.url
    assert w.page.locator(".dim").count() == 5 and w.page.locator(".turn").count() > 0
    assert w.page.locator("mark.ev").count() > 0
    w.page.click("a.quote >> nth=0")
    assert w.page.locator("mark.ev.pulse").count() > 0
    # the quote's link is a #fragment of the same view: the mark is there and the page is the same judgment
    assert "#mark-" in w.page.url and w.page.locator(".dim").count() == 5
    w.shot("report-judgment.png")
    # the breadcrumb leads back to the candidate
    w.page.click(".eyebrow a >> nth=1")
    w.settle()
    assert w.page.get_attribute("body", "data-view") == "candidate"
    for page in ("quality.html", "cost.html", "judgments/1.html"):
        w.goto((report_dir / page).as_uri())
        assert all(n > 0 for n in w.charts_with_data())
        w.shot(f"report-{page.split('/')[0].replace('.html', '')}.png")
    w.check_clean()


def test_heatmap_click_opens_the_candidate(browser, report_dir):
    w = Watched(browser)
    w.goto((report_dir / "index.html").as_uri())
    cells = w.page.locator(".chart.clickable").first.locator(".nsewdrag").first
    cells.scroll_into_view_if_needed()
    box = cells.bounding_box()
    with w.page.expect_navigation():
        w.page.mouse.click(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.05)
    assert "/candidate/" in w.page.url
    w.check_clean()


def _judgment_data(report_dir: Path) -> dict[str, str]:
    """Each judgment's line in the static report's data files (judgment/<n>.js), by id."""
    lines = {}
    for p in (report_dir / "judgment").glob("*.js"):
        for line in p.read_text().splitlines()[1:-1]:
            m = re.match(r'J\["([A-Za-z0-9-]+)"\] = ', line)
            assert m, line[:80]
            lines[m[1]] = line
    return lines


def _evil_ids(report_dir: Path) -> list[str]:
    """The judgments whose data carries the injection attempts."""
    return sorted(i for i, line in _judgment_data(report_dir).items() if "__xss" in line)


def _assert_inert(w: Watched) -> None:
    """The hostile strings are on the page as text, and none of them became an element or a link."""
    text = w.page.inner_text("body")
    assert "<script>window.__xss='script'</script>" in text
    assert w.page.locator("[onerror], [onload], [onmouseover], [onclick]").count() == 0
    hrefs = w.page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    assert hrefs and all(h.startswith(("file:///", "http://127.0.0.1:")) for h in hrefs), hrefs
    assert w.page.locator("main img, main svg, main script, main iframe, main b b").count() == 0
    if w.page.locator(".alert").count():
        w.page.hover(".alert >> nth=0")
    w.check_clean()


def test_injected_markup_runs_nothing_and_shows_as_text(browser, report_dir):
    w = Watched(browser)
    evil = _evil_ids(report_dir)
    assert len(evil) == 2  # the baseline's judgment and the hostile reply
    shell = (report_dir / "judgment.html").as_uri()
    for judgment_id in evil:
        w.goto(f"{shell}?id={judgment_id}")
        assert w.page.locator(".dim").count() == 5
        _assert_inert(w)
    # the hostile judge reply: markup in the rationale, quote, flag and model name, all shown as text
    hostile = next(i for i in evil if "evil/" in _judgment_data(report_dir)[i])
    w.goto(f"{shell}?id={hostile}")
    assert "evil/<img src=x onerror=" in w.page.inner_text(".facts")
    assert "<b onmouseover=" in w.page.inner_text(".alert")
    assert w.page.locator(".rationale >> text=<script>window.__xss='rationale'</script>").count() == 5
    assert w.page.locator("mark.ev >> text=<script>window.__xss='script'</script>").count() >= 1
    _assert_inert(w)
    w.shot("report-injection-reply.png")
    w.goto(f"{shell}?id={evil[0] if evil[0] != hostile else evil[1]}")
    w.shot("report-injection.png")
    evil_candidate = next((report_dir / "candidate").glob("eve-img-src-x-onerror-*.html"))
    w.goto(evil_candidate.as_uri())
    assert "Eve <img" in w.page.inner_text("h1")
    w.goto((report_dir / "index.html").as_uri())
    w.check_clean()


def test_judgment_page_loads_only_its_own_data_file(browser, report_dir):
    """The id in the URL picks a data file in judgment/ and nothing else: no path, no other folder,
    no script from elsewhere; an unknown or malformed id is a "no such judgment" message. Every
    judgment of the report opens from its data file."""
    bad_ids = Watched(browser)
    requested: list[str] = []
    bad_ids.page.on("request", lambda r: requested.append(r.url))
    shell = (report_dir / "judgment.html").as_uri()
    for bad in ("../index", "..%2Findex", "nope", "javascript:alert(1)", "%3Cimg%20src%3Dx%3E", "constructor", ""):
        requested.clear()
        bad_ids.goto(f"{shell}?id={bad}")
        assert "No such judgment" in bad_ids.page.inner_text("main"), bad
        scripts = [u for u in requested if u.endswith(".js") and "/assets/" not in u]
        assert all(u.startswith((report_dir / "judgment").as_uri() + "/") for u in scripts), (bad, scripts)
    bad_ids.goto(shell)
    assert "No such judgment" in bad_ids.page.inner_text("main")
    # the well-formed unknown ids ("nope", "constructor") were looked for in their data file, not found
    bad_ids.check_clean()
    w = Watched(browser)
    every = sorted(_judgment_data(report_dir))
    assert len(every) == 37
    for judgment_id in every:
        w.goto(f"{shell}?id={judgment_id}")
        assert w.page.locator(".dim").count() == 5, judgment_id
    # a link to a quote opens the judgment with that quote highlighted
    good = next(i for i, line in sorted(_judgment_data(report_dir).items()) if '"start":' in line)
    w.goto(f"{shell}?id={good}")
    key = w.page.get_attribute("a.quote >> nth=0", "data-key")
    w.goto(f"{shell}?id={good}#mark-{key}")  # same document: the fragment changes
    assert w.page.locator("mark.ev.pulse").count() > 0
    fresh = Watched(browser)  # a new page opened on the quote's link
    fresh.goto(f"{shell}?id={good}#mark-{key}")
    assert fresh.page.locator("mark.ev.pulse").count() > 0
    assert fresh.page.evaluate(f"document.getElementById('mark-{key}').getBoundingClientRect().top") < 900
    w.check_clean()
    fresh.check_clean()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def server(store):
    from evaluator.report.serve import make_server

    srv = make_server(store, port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_served_views_filters_and_navigation(browser, server):
    w = Watched(browser)
    w.goto(server.url)
    assert all(n > 0 for n in w.charts_with_data())
    w.shot("serve-overview.png")
    w.page.select_option("select[name=cohort]", "spring-2026")
    w.page.wait_for_url("**cohort=spring-2026**")
    w.settle()
    assert "spring-2026" in w.page.inner_text("h1")
    assert "rubric_version=" not in w.page.url  # empty filters are not sent
    w.page.click("#candidates tbody tr:first-child a")
    w.settle()
    assert "cohort=spring-2026" in w.page.url and "/candidate?" in w.page.url
    assert len(w.charts_with_data()) == 5
    w.shot("serve-candidate.png")
    w.page.click("table.tbl tbody tr:first-child td:first-child a")
    w.settle()
    assert w.page.get_attribute("body", "data-view") == "judgment"
    assert w.page.locator(".dim").count() == 5 and w.page.locator("mark.ev").count() > 0
    w.shot("serve-judgment.png")
    for path in ("/quality", "/cost", "/judgments?page=1"):
        w.goto(server.url.rstrip("/") + path)
    w.shot("serve-cost.png")
    w.check_clean()
    assert _get(server.url + "?since=yesterday")[0] == 400
    assert _get(server.url + "nope")[0] == 404
    req = urllib.request.Request(server.url, method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from evaluator.errors import StoreError
    from evaluator.store.db import Store
    from evaluator.report.synthetic import SyntheticSpec, generate
    db, n = Path(sys.argv[1]), int(sys.argv[2])

    def open_for_write():
        # the report server's reads lock the file too, for a moment: wait like the cohort writer does
        deadline = time.monotonic() + 20
        while True:
            try:
                return Store(db)
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    for i in range(n):
        with open_for_write() as s:  # open, write, close per commit, like the cohort writer
            generate(s, SyntheticSpec(candidates=1, sessions_per_candidate=2, seed=1000 + i, cohorts=("writer",)))
        time.sleep(0.05)
    print("done", flush=True)
""")


def test_served_judgment_with_injected_markup_runs_nothing(browser, server, report_dir):
    w = Watched(browser)
    for judgment_id in _evil_ids(report_dir):
        w.goto(f"{server.url}judgment?id={judgment_id}")
        assert w.page.locator(".dim").count() == 5
        _assert_inert(w)
    assert _get(server.url + "judgment?id=nope")[0] == 404


def test_server_keeps_answering_while_another_process_writes(server, store, tmp_path):
    before = _get(server.url + "judgments")[1].count("<tr>")
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(store), "6"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    statuses = []
    try:
        while writer.poll() is None:
            for path in ("", "cost", "judgments"):
                statuses.append(_get(server.url + path)[0])
    finally:
        _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert len(statuses) >= 3
    assert set(statuses) == {200}, statuses
    status, body = _get(server.url + "?cohort=writer")
    assert status == 200 and "writer" in body
    assert _get(server.url + "judgments")[1].count("<tr>") >= before


# -- the report from the store alone, and its layout at two widths ----------------------------------------

SAMPLES = Path(__file__).resolve().parent.parent / "transcripts"


def test_a_report_built_from_a_copy_of_the_store_in_an_empty_folder_highlights_the_transcript(
        browser, store, tmp_path, monkeypatch):
    """Nothing but the DuckDB file: no transcript on disk, built from another folder."""
    import shutil

    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(store, empty / "copy.duckdb")
    monkeypatch.chdir(empty)
    build.build_report(Path("copy.duckdb"), Path("report"))
    report = empty / "report"
    quoted = next(i for i, line in sorted(_judgment_data(report).items()) if '"start":' in line and "evil" not in line)
    w = Watched(browser)
    w.goto(f"{(report / 'judgment.html').as_uri()}?id={quoted}")
    assert w.page.locator(".turn").count() > 0 and w.page.locator("mark.ev").count() > 0
    assert w.page.locator("text=Transcript not shown").count() == 0
    assert w.page.locator("text=not located in the stored text").count() == 0
    # every quote link leads to its mark
    for key in w.page.eval_on_selector_all("a.quote", "els => els.map(e => e.getAttribute('data-key'))"):
        assert w.page.locator(f"#mark-{key}").count() == 1
    w.shot("report-from-copy-judgment.png")
    w.check_clean()


@pytest.fixture(scope="module")
def layout_store(tmp_path_factory) -> Path:
    """Everything the views draw: a cohort of the sample transcripts judged by the real runner (one
    input missing, so coverage lists it), human labels and a calibration, a judgment stored before
    transcripts' text was kept, a synthetic history with model costs, and a standalone run."""
    root = tmp_path_factory.mktemp("layout")
    made: list[Path | BaseException] = []
    # in its own thread: playwright's sync API may already run an event loop in this one
    worker = threading.Thread(target=lambda: made.append(_layout_store(root)))
    worker.start()
    worker.join()
    assert made and isinstance(made[0], Path)
    return made[0]


def _layout_store(root: Path) -> Path:
    import shutil

    from evaluator.batch.runner import CohortRequest, score_cohort
    from evaluator.calibrate.gathering import ScoreSource
    from evaluator.calibrate.importing import ImportRequest, import_labels
    from evaluator.calibrate.service import CalibrateRequest, run_calibration

    shutil.copytree(SAMPLES, root / "transcripts")
    db = root / "store.duckdb"
    manifest = root / "spring.csv"
    rows = [f"transcripts/{p.name}" for p in sorted(SAMPLES.glob("*.md"))] + ["transcripts/lost-session.md"]
    manifest.write_text("path\n" + "\n".join(rows) + "\n", encoding="utf-8")
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        score_cohort(CohortRequest(path=Path("spring.csv"), cohort="spring-2026-platform-engineering", db=db))
    finally:
        os.chdir(cwd)
    import_labels(ImportRequest(file=SAMPLES.parent / "datasets" / "sample_labels.csv", db=db,
                                transcripts_dirs=[root / "transcripts"]))
    from evaluator.calibrate.calibration import CalibrationSettings

    run_calibration(CalibrateRequest(source=ScoreSource(db=db), settings=CalibrationSettings(min_labels=5, n_bootstrap=50)))
    with Store(db) as s:
        generate(s, SyntheticSpec(candidates=4, sessions_per_candidate=6,
                                  cohorts=("autumn-2026-applied-ai-engineering-residency",)))
    evaluate_file(EvaluateRequest(transcript=root / "transcripts" / "cosine_topk.md", db=db, force=True))
    return db


WIDTHS = (1280, 420)


@pytest.fixture(scope="module")
def layout_report(layout_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layout-built") / "report"
    build.build_report(layout_store, out)
    return out


def _views(report: Path) -> dict[str, str]:
    """One page of every view (two candidates: one with a single session, one with a history)."""
    data = _judgment_data(report)
    judged = next(i for i, line in sorted(data.items()) if '"start":' in line and "Dana Smith" in line)
    candidates = sorted((report / "candidate").glob("*.html"), key=lambda p: p.stat().st_size)
    cohort = next((report / "cohort").glob("spring-2026*.html"))
    return {"overview": (report / "index.html").as_uri(), "cohort": cohort.as_uri(),
            "candidate-one-session": next(p for p in candidates if "dana-smith" in p.name).as_uri(),
            "candidate-history": candidates[-1].as_uri(), "judgments": (report / "judgments" / "1.html").as_uri(),
            "judgment": f"{(report / 'judgment.html').as_uri()}?id={judged}",
            "quality": (report / "quality.html").as_uri(), "cost": (report / "cost.html").as_uri()}


OVERFLOW = """() => {
  const w = document.documentElement.clientWidth;
  const wide = [];
  document.querySelectorAll('body *').forEach(el => {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > w + 1 && !el.closest('.scroll, .chart, pre')) wide.push(el.tagName + '.' + el.className);
  });
  return {scroll: document.documentElement.scrollWidth, client: w, wide: wide.slice(0, 8)};
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_every_view_fits_its_width_and_is_screenshotted(browser, layout_report, width):
    """Screenshots of every view at desktop and phone width go to test-artifacts/ (people look at
    them); the page never scrolls sideways: wide tables scroll inside their own box."""
    w = Watched(browser)
    w.page.set_viewport_size({"width": width, "height": 900})
    for name, url in _views(layout_report).items():
        w.goto(url)
        w.shot(f"layout-{width}-{name}.png")
        if width < 800:  # a long phone page shrinks to nothing in an image viewer: also in screen-high parts
            height = w.page.evaluate("document.documentElement.scrollHeight")
            for part, top in enumerate(range(0, height, 1000), start=1):
                w.page.screenshot(path=str(ARTIFACTS / f"layout-{width}-{name}-part{part}.png"), full_page=True,
                                  clip={"x": 0, "y": top, "width": width, "height": min(1000, height - top)})
        fit = w.page.evaluate(OVERFLOW)
        assert fit["scroll"] <= fit["client"] and not fit["wide"], (name, width, fit)
    w.check_clean()


def _boxes(where, selector: str) -> list[dict]:
    """Bounding boxes and text of the elements matching `selector` in a page or a locator."""
    return where.locator(selector).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height, t: e.textContent}; }).filter(b => b.w > 0)")


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


@pytest.mark.parametrize("width", WIDTHS)
def test_chart_labels_stay_clear_and_inside(browser, layout_report, width):
    w = Watched(browser)
    w.page.set_viewport_size({"width": width, "height": 900})
    pages_ = _views(layout_report)
    # judge quality: the dimension names under the agreement bars never run into the legend
    w.goto(pages_["quality"])
    chart = w.page.locator(".chart").first
    ticks, legend = _boxes(chart, ".xtick text, .ytick text"), _boxes(chart, ".legend .traces")
    assert ticks and legend
    assert not any(_overlap(t, g) for t in ticks for g in legend), (ticks, legend)
    assert not any(_overlap(a, b) for i, a in enumerate(ticks) for b in ticks[i + 1:]), ticks
    # stored calibrations: readable numbers, no raw JSON
    cells = w.page.locator("#calibrations td").all_inner_texts()
    assert cells and not any("{" in c or re.search(r"\d\.\d{4,}", c) for c in cells), cells
    # cost: names are not broken one letter a line; the axis's "$" labels are not cut off
    w.goto(pages_["cost"])
    for name_cell in _boxes(w.page, ".tbl td:first-child"):
        assert name_cell["w"] >= 60, name_cell
    for c in range(w.page.locator(".chart").count()):
        chart = w.page.locator(".chart").nth(c)
        frame = chart.bounding_box()
        for tick in _boxes(chart, ".ytick text, .xtick text"):
            assert tick["x"] >= frame["x"] - 1 and tick["x"] + tick["w"] <= frame["x"] + frame["width"] + 1, tick
    # a candidate with one session: dates on the axis, not clock times cut short
    w.goto(pages_["candidate-one-session"])
    ticks = [t["t"] for t in _boxes(w.page.locator(".chart").first, ".xtick text")]
    assert ticks and not any(":" in t or "…" in t for t in ticks), ticks
    w.check_clean()


def test_coverage_names_the_inputs_that_were_not_judged(browser, layout_report):
    w = Watched(browser)
    w.goto(_views(layout_report)["cohort"])
    assert "lost-session.md" in w.page.inner_text("#coverage")
    w.check_clean()
