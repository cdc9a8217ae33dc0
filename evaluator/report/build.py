"""`evaluate report`: write the self-contained static report (one folder) from the store.

The folder holds index.html, one page per cohort, candidate and judgment, paged judgment lists, the
judge-quality and cost pages, and assets/ with the stylesheet, the script and plotly.min.js copied
from the installed `plotly` package (no CDN, nothing fetched): it opens from disk with no network.

The store is opened read-only, and retried briefly while a writer holds it (DuckDB lets no other
process in while one writes). Pages over many judgments are built from a few whole-store queries,
partitioned in Python, rather than one query per page.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from evaluator.errors import BadInput, StoreError
from evaluator.report import pages
from evaluator.report import queries as q
from evaluator.report.queries import Filters

LOCK_WAIT_SECONDS = 5.0


@dataclass
class BuildResult:
    path: Path
    judgments: int
    pages: int
    timings: dict[str, float] = field(default_factory=dict)


def connect_read_only(db: Path, wait: float = LOCK_WAIT_SECONDS):
    """A read-only DuckDB connection, retried with backoff (up to `wait` seconds) while another
    process holds the write lock. Raises StoreError with a clear message otherwise."""
    import duckdb

    if not db.exists():
        raise StoreError(f"no database at {db}: judge some transcripts first (evaluate TRANSCRIPT.md --db {db})")
    if db.is_dir():
        raise StoreError(f"{db} is a directory, expected a DuckDB file")
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(db), read_only=True)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower():
                raise StoreError(f"cannot open {db}: {str(e).splitlines()[0]}") from None
            if time.monotonic() + delay > deadline:
                raise StoreError(f"{db} stayed locked by a writer for {wait:.0f} s (DuckDB allows no reader while "
                                 "another process writes); try again when it pauses") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        except duckdb.Error as e:
            raise StoreError(f"cannot open {db} as a DuckDB database: {str(e).splitlines()[0]}") from None


def check_store(schema: q.Schema, db: Path) -> None:
    missing = [t for t in ("judgments", "dimension_scores", "runs", "transcripts", "rubric_versions") if t not in schema.tables]
    if missing:
        raise StoreError(f"{db} is not an evaluator store (missing tables: {', '.join(missing)})")


def validate_filters(options: dict[str, Any], f: Filters) -> None:
    """Unknown filter values are a usage error (exit 2) naming the known ones, not an empty report."""
    for key in ("cohort", "candidate", "exercise", "model"):
        value = getattr(f, key)
        if value is not None and value not in options[key]:
            known = ", ".join(map(str, options[key][:12])) or "none"
            more = f" (+{len(options[key]) - 12} more)" if len(options[key]) > 12 else ""
            raise BadInput(f"no {key.replace('_', ' ')} named {value!r} in the store; known: {known}{more}")
    if f.rubric_version is not None and not any(v.startswith(f.rubric_version) for v in options["rubric_version"]):
        raise BadInput(f"no rubric version starting with {f.rubric_version!r}; known: "
                       f"{', '.join(options['rubric_version']) or 'none'}")
    if f.since and f.until and f.since > f.until:
        raise BadInput(f"--since {f.since} is after --until {f.until}")


def asset_bytes(name: str) -> bytes:
    """report.css / report.js from the package; plotly.min.js from the installed plotly package."""
    if name == "plotly.min.js":
        from plotly.offline import get_plotlyjs

        return get_plotlyjs().encode("utf-8")
    if name not in ("report.css", "report.js"):
        raise KeyError(name)
    return resources.files("evaluator.report").joinpath("static", name).read_bytes()


ASSETS = ("report.css", "report.js", "plotly.min.js")


def make_site(con, schema: q.Schema, f: Filters, links: pages.Links, db: Path, serve: bool) -> pages.Site:
    return pages.Site(links=links, options=q.filter_options(con, schema), filters=f, names=q.dimension_names(con),
                      db=str(db), built_at=datetime.now().strftime("%Y-%m-%d %H:%M"), serve=serve)


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


PARALLEL_FROM = 1500


def render_judgment_pages(con, schema: q.Schema, root: Path, ids: list[str], site: pages.Site,
                          scale: tuple[int, int]) -> int:
    loader = pages.TranscriptLoader()
    n = 0
    for chunk in _chunks(ids, 2000):
        for detail in q.judgment_details(con, schema, chunk):
            view = pages.transcript_view(detail, loader)
            (root / "judgment" / f"{pages.safe_id(detail['id'])}.html").write_text(
                pages.render_judgment(site, detail, view, scale), encoding="utf-8")
            n += 1
    return n


def _render_worker(db: Path, root: Path, ids: list[str], site: pages.Site, scale: tuple[int, int]) -> int:
    con = connect_read_only(db)
    try:
        return render_judgment_pages(con, q.read_schema(con), root, ids, site, scale)
    finally:
        con.close()


def build_report(db: Path, out: Path, filters: Filters | None = None) -> BuildResult:
    """Write the whole report into `out` (created; replaced if it is an earlier report)."""
    filters = filters or Filters()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if out.exists() and not (out / "index.html").exists() and any(out.iterdir()):
        raise BadInput(f"{out} exists and is not an earlier report: choose another --out")
    con = connect_read_only(db)
    try:
        schema = q.read_schema(con)
        check_store(schema, db)
        links = pages.Links(static=True, depth=0, filters=filters)
        site = make_site(con, schema, filters, links, db, serve=False)
        validate_filters(site.options, filters)
        tmp = out.with_name(out.name + ".building")
        if tmp.exists():
            shutil.rmtree(tmp)
        for sub in ("assets", "cohort", "candidate", "judgment", "judgments"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        for name in ASSETS:
            (tmp / "assets" / name).write_bytes(asset_bytes(name))
        written = 0

        def write(rel: str, html: str) -> None:
            nonlocal written
            (tmp / rel).write_text(html, encoding="utf-8")
            written += 1

        write("index.html", pages.render_overview(con, schema, site))
        deep = pages.Site(**{**site.__dict__, "links": links.at(1)})
        cohorts = site.options["cohort"] if filters.cohort is None else [filters.cohort]
        for cohort in cohorts:
            write(f"cohort/{pages.slug(cohort)}.html", pages.render_overview(con, schema, deep, cohort))
        write("quality.html", pages.render_quality(con, schema, site))
        write("cost.html", pages.render_cost(con, schema, site))
        timings["overview, quality, cost"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        scale = q.score_scale(con, schema, filters)
        trend = _group(q.candidate_trend(con, schema, filters), "candidate")
        sessions = _group(q.candidate_sessions(con, schema, filters), "candidate")
        changes = _group(q.candidate_changes(con, schema, filters), "candidate")
        for name in sessions:
            write(f"candidate/{pages.slug(name)}.html",
                  pages.render_candidate(deep, name, trend.get(name, []), sessions[name], changes.get(name, []), scale))
        timings["candidate pages"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        everything = q.judgments_page(con, schema, filters, 1, None)
        total, size = everything["total"], pages.PAGE_SIZE
        n_pages = max(1, -(-total // size))
        for page in range(1, n_pages + 1):
            data = {"rows": everything["rows"][(page - 1) * size:page * size], "total": total, "page": page,
                    "size": size, "pages": n_pages}
            write(f"judgments/{page}.html", pages.render_judgments(con, schema, deep, page, data))
        timings["judgment lists"] = time.perf_counter() - t2

        t3 = time.perf_counter()
        ids = q.judgment_ids(con, schema, filters)
        workers = min(os.cpu_count() or 1, 4)
        if len(ids) < PARALLEL_FROM or workers < 2:
            written += render_judgment_pages(con, schema, tmp, ids, deep, scale)
        else:
            # Rendering is CPU-bound Jinja work: split it over processes, each with its own read-only
            # connection (DuckDB allows many readers).
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                share = -(-len(ids) // workers)
                jobs = [pool.submit(_render_worker, db, tmp, ids[i:i + share], deep, scale)
                        for i in range(0, len(ids), share)]
                written += sum(job.result() for job in jobs)
        timings["judgment pages"] = time.perf_counter() - t3
    finally:
        con.close()
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    timings["total"] = time.perf_counter() - t0
    return BuildResult(path=out, judgments=len(ids), pages=written, timings=timings)
