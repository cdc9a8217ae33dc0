"""Helpers shared by the test modules: running the CLI, reading the store, building cohorts, the
scripted probe model and the watched browser page.

A support module like fakellm.py and replies.py, not a test module: test modules import from here,
never from each other, so each stays runnable alone and no module's fixtures leak into another.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from replies import build_reply
from typer.testing import CliRunner

from evaluator.cli import app

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


TRANSCRIPT = REPO / "transcripts" / "lru_ttl_cache.md"


DIMS = ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]  # rubric lru_ttl_cache


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    db: Path
    exception: BaseException | None

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def statuses(self) -> dict[str, str]:
        return {d["id"]: d["status"] for d in self.doc["dimensions"]}

    def dim(self, dim_id: str) -> dict[str, Any]:
        return next(d for d in self.doc["dimensions"] if d["id"] == dim_id)


def judge_args(base_url: str, db: Path, *extra: str, transcript: Path = TRANSCRIPT) -> list[str]:
    return [str(transcript), "--model", "openai/test-model", "--api-base", base_url, "--db", str(db),
            "--format", "json", "--retry-wait", "0.01", *extra]


def evaluate(base_url: str, tmp_path: Path, *extra: str, transcript: Path = TRANSCRIPT,
             env: dict[str, str] | None = None) -> Run:
    """`evaluate TRANSCRIPT --model openai/test-model --api-base URL --db tmp/e.duckdb --format json ...`"""
    db = tmp_path / "e.duckdb"
    result = CliRunner().invoke(app, judge_args(base_url, db, *extra, transcript=transcript), env=env)
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return Run(result.exit_code, result.stdout, result.stderr, db, exc)


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql, params or [])
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


SAMPLES = sorted((REPO / "transcripts").glob("*.md"))


COHORT_MODEL = "openai/test-model"


def make_cohort(folder: Path, n: int, *, tag: str = "", sample: Path | None = None) -> list[Path]:
    """n transcripts with distinct content: the sample rounds in turn (or one `sample` throughout),
    each with a unique closing line."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        src = sample or SAMPLES[i % len(SAMPLES)]
        p = folder / f"round_{i:02d}.md"
        p.write_text(src.read_text(encoding="utf-8") + f"\n\nInterviewer: Thanks, that's time ({tag}{i:02d}).\n",
                     encoding="utf-8")
        paths.append(p)
    return paths


@dataclass
class CohortRun:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def cohort_args(path: Path, db: Path, *extra: str, name: str = "c1", base_url: str | None = None) -> list[str]:
    args = ["cohort", str(path), "--cohort", name, "--db", str(db), "--format", "json"]
    if base_url is not None:
        args += ["--model", COHORT_MODEL, "--api-base", base_url, "--retry-wait", "0.01", "--timeout", "20"]
    return [*args, *extra]


def cohort(path: Path, db: Path, *extra: str, name: str = "c1", base_url: str | None = None) -> CohortRun:
    """`evaluate cohort PATH --cohort NAME --db DB --format json [--model ... --api-base URL] ...` in-process."""
    result = CliRunner().invoke(app, cohort_args(path, db, *extra, name=name, base_url=base_url))
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return CohortRun(result.exit_code, result.stdout, result.stderr, exc)


def scalar(db: Path, sql: str, params: list[Any] | None = None) -> Any:
    return next(iter(query(db, sql, params)[0].values()))


LRU = REPO / "transcripts" / "lru_ttl_cache.md"


def _prompt(body: dict[str, Any]) -> str:
    """The whole prompt: the rules and rubric (system message), then the interview (user message)."""
    return "\n".join(m["content"] for m in body["messages"] if m["role"] in ("system", "user"))


class Scripted:
    """Scores by what the prompt shows: reversed anchors lift every score by one, a prompt without
    the code lowers `edge_cases` to 2, doubled filler lowers `restraint` to 2, swapped names leave
    everything alone, and the unchanged prompt's `recovery` alternates 3, 4, 3... per repeat."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        prompt = _prompt(body)
        with self.lock:
            self.seen[prompt] += 1
            nth = self.seen[prompt]
        reversed_anchors = prompt.index("\n5: ") < prompt.index("\n1: ")
        scores = {d: 3 for d in re.findall(r"^### `([^`]+)`", prompt, re.MULTILINE)}
        if reversed_anchors:
            scores = {d: 4 for d in scores}
        if "<<<CODE file=" not in prompt:  # the fence itself, not the rules that name it
            scores["edge_cases"] = 2
        if "Okay. Okay." in prompt:
            scores["restraint"] = 2
        plain = not reversed_anchors and "<<<CODE file=" in prompt and "Okay. Okay." not in prompt
        if plain and "Dana" in prompt and "~" not in prompt:
            scores["recovery"] = 3 + (nth % 2 == 0)  # the unperturbed prompt: 3, 4, 3
        return json.dumps(build_reply(body, scores=scores))


CHROMIUM = Path("/usr/bin/chromium")


ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Watched:
    """A page that records console errors, page errors and any request leaving the machine."""

    def __init__(self, ctx) -> None:
        self.page = ctx.new_page()
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.external.append(r.url)
                     if not r.url.startswith(("file://", "http://127.0.0.1", "data:", "about:")) else None)

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.settle()

    def settle(self) -> None:
        """Loaded, every chart drawn, and the judgment view (drawn by report.js from its data) drawn."""
        self.page.wait_for_load_state("load")
        self.page.wait_for_function(
            "Array.from(document.querySelectorAll('.chart, #judgment-view'))"
            ".every(c => c.getAttribute('data-rendered') === '1')", timeout=20000)

    def charts_with_data(self) -> list[int]:
        """Per chart: how many data points its traces hold, if drawn as SVG/canvas (0 if empty)."""
        return self.page.evaluate("""Array.from(document.querySelectorAll('.chart')).map(c => {
            const drawn = c.querySelector('svg.main-svg') && c.querySelector('.plot-container');
            if (!drawn || !c.data) return 0;
            return c.data.reduce((n, t) => n + ((t.z && t.z.length) || (t.y && t.y.length) || 0), 0);
        })""")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.external == [], self.external
        assert self.page.evaluate("window.__xss") is None
