"""`evaluate report`: write the self-contained static report (one folder) from the store.

The folder holds index.html, one page per cohort and candidate, paged judgment lists, the
judge-quality and cost pages, the judgment view (one judgment.html that report.js fills from the
data files judgment/<n>.js, about 25 judgments each), and assets/ with the stylesheet, the script and
plotly.min.js copied from the installed `plotly` package (no CDN, nothing fetched): it opens from
disk with no network.

Why the judgment view is drawn in the browser: rendering a template per judgment was most of the
build (10,000 judgments: 14 of 22 s); DuckDB writes each judgment's JSON, which costs a fraction of
that, and files of 25 judgments spare the file system 10,000 file creations (on a busy machine these
alone took seconds). Opening a judgment loads the small shell page and one data file (no chart library).

The report is built in a new hidden folder beside `--out` and moved into place only when complete:
a failed build leaves an earlier report as it was. An existing `--out` folder is replaced only if it
is empty or an earlier report, known by the MARKER file every report holds; anything else (a file,
a folder of other things, a report from before the marker) is refused with a message, never deleted.

The store is opened read-only, and retried briefly while a writer holds it (DuckDB lets no other
process in while one writes). Each scope of judgments is computed once into a temporary table of the
build's connection (`queries.ScopeCache`), and pages over many judgments are built from a few
whole-store queries, partitioned in Python, rather than one query per page.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from itertools import repeat
from pathlib import Path
from typing import Any

from evaluator.errors import BadInput, StoreError
from evaluator.report import pages
from evaluator.report import queries as q
from evaluator.report.queries import Filters

LOCK_WAIT_SECONDS = 5.0
MARKER = ".evaluate-report"  # in every report folder: the one sign that `--out` may replace it
MARKER_TEXT = ("This folder is a report written by `evaluate report`. Building a report with --out pointing here "
               "again replaces this whole folder, so keep nothing else in it.\n")


@dataclass
class BuildResult:
    path: Path
    judgments: int
    pages: int  # HTML pages
    data_files: int = 0  # judgment/<n>.js, the judgments' data drawn by judgment.html (about 25 a file)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage (DuckDB's threads, worker processes)


def _cpu_seconds() -> float:
    """CPU time of this process and of the (finished) processes it started."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class _Clock:
    """Wall and CPU seconds per stage of the build."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.start = self.last = (time.perf_counter(), _cpu_seconds())

    def lap(self, stage: str, since_start: bool = False) -> None:
        now = (time.perf_counter(), _cpu_seconds())
        ref = self.start if since_start else self.last
        self.wall[stage], self.cpu[stage] = now[0] - ref[0], now[1] - ref[1]
        self.last = now


def connect_read_only(db: Path, wait: float = LOCK_WAIT_SECONDS):
    """A read-only DuckDB connection through the store's one opener (store/db.py: open_store), which
    waits up to `wait` seconds while a writer holds the file and raises a typed StoreError otherwise."""
    from evaluator.store.db import open_store

    if not db.exists():
        raise StoreError(f"no database at {db}: judge some transcripts first (evaluate TRANSCRIPT.md --db {db})")
    return open_store(db, read_only=True, wait_seconds=wait).con


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


def _write_file(path: str, text: str) -> None:
    """Write a new file with plain os calls (10,000 of them: pathlib's overhead shows)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


PARALLEL_TRANSCRIPTS = 1000  # transcripts to read, from which the data files are shared out over processes


def _write_data_files(root: Path, site: pages.Site, files: list[tuple[int, list[q.JudgmentDoc]]]) -> int:
    """Write these data files: each judgment's JSON plus the link to its candidate and its transcript
    with the evidence highlighted, if the transcript file is still there (read and parsed here)."""
    loader = pages.TranscriptLoader()
    for n, rows in files:
        _write_file(f"{root}/judgment/{n}.js", pages.judgment_script(
            [(pages.safe_id(row.id), pages.judgment_payload(site, row, loader)) for row in rows]))
    return len(files)


def write_judgment_data(con, schema: q.Schema, root: Path, ids: list[str], site: pages.Site,
                        filters: Filters | None = None) -> int:
    """The judgments' data files, judgment/<n>.js (`pages.data_file_count` of them, each judgment in
    the one `pages.data_file_of` names), drawn by the shared judgment.html. DuckDB writes each
    judgment's JSON, 5,000 judgments a query. Reading and parsing the transcripts (about 1 ms each)
    is then most of the work: with PARALLEL_TRANSCRIPTS of them or more on disk, the files are shared
    out over up to 4 processes. `filters`: the scope `ids` come from, so each judgment's candidate link
    uses the name its candidate page was written under. Returns the number of files."""
    files = pages.data_file_count(len(ids))
    rows = [row for chunk in _chunks(ids, 5000) for row in q.judgment_docs(con, schema, chunk, filters)]
    by_file: dict[int, list[q.JudgmentDoc]] = defaultdict(list)
    for row in rows:
        by_file[pages.data_file_of(pages.safe_id(row.id), files)].append(row)
    work = [(n, by_file.get(n, [])) for n in range(files)]
    on_disk = sum(1 for path in {row.path for row in rows} if path and os.path.isfile(path))
    workers = min(os.cpu_count() or 1, 4, files)
    if on_disk < PARALLEL_TRANSCRIPTS or workers < 2:
        return _write_data_files(root, site, work)
    # Each process reads its own transcripts; the rows travel pickled (a few kB each), DuckDB stays here.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(_write_data_files, repeat(root), repeat(site), [work[i::workers] for i in range(workers)]))


def write_candidate_pages(con, schema: q.Schema, root: Path, filters: Filters, site: pages.Site,
                          only: set[str] | None = None) -> set[str]:
    """candidate/<slug>.html for every candidate in scope (or only those named in `only`): three
    whole-store queries, partitioned. Returns the names written."""
    scale = q.score_scale(con, schema, filters)
    trend = _group(q.candidate_trend(con, schema, filters), "candidate")
    sessions = _group(q.candidate_sessions(con, schema, filters), "candidate")
    changes = _group(q.candidate_changes(con, schema, filters), "candidate")
    names = set(sessions) if only is None else set(sessions) & only
    for name in names:
        html = pages.render_candidate(site, name, trend.get(name, []), sessions[name], changes.get(name, []), scale)
        _write_file(f"{root}/candidate/{pages.slug(name)}.html", html)
    return names


def check_out(out: Path) -> None:
    """Refuse (BadInput) an `--out` that building the report must not replace: a file, a symbolic
    link, or a folder that is neither empty nor an earlier report (one holding MARKER). Nothing of
    the user's is ever deleted: a report from an older evaluate, which has no marker, is refused too."""
    if out.is_symlink():
        raise BadInput(f"--out {out} is a symbolic link; the report replaces the folder it writes, so give a "
                       "folder path that is not a link (or choose another --out)")
    if not out.exists():
        parent = next((a for a in out.parents if a.exists()), None)
        if parent is not None and not parent.is_dir():
            raise BadInput(f"--out {out}: {parent} is a file, not a folder: choose another --out")
        return
    if not out.is_dir():
        raise BadInput(f"--out {out} is a file, not a folder: choose another --out")
    try:
        if (out / MARKER).is_file() or not any(out.iterdir()):
            return
    except OSError as e:
        raise BadInput(f"cannot read the --out folder {out}: {e.strerror or e}") from None
    older = (" It has an index.html but no marker: if it is a report written by an older evaluate, "
             "delete it yourself once (reports written from now on carry the marker).") if (out / "index.html").exists() else ""
    raise BadInput(f"--out {out} is not empty and is not an earlier report (it has no {MARKER} marker file). "
                   f"A report replaces its whole folder, so nothing was written: choose another --out, or delete "
                   f"{out} yourself if nothing in it is needed.{older}")


def _new_folder(parent: Path, name: str) -> Path:
    """A new, uniquely named hidden folder in `parent` (created, with the usual permissions)."""
    path = parent / f".{name}.{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


def _swap_in(tmp: Path, out: Path) -> None:
    """Put the finished report `tmp` at `out`, replacing an earlier report there (checked again: the
    folder may have changed during the build). The earlier report is moved aside first and deleted
    last, so at no moment is there neither report."""
    old = None
    if out.exists() or out.is_symlink():
        check_out(out)
        if any(out.iterdir()):
            old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:12]}"
            out.rename(old)
        else:
            out.rmdir()
    try:
        tmp.rename(out)
    except OSError as e:
        if old is not None and not out.exists():
            old.rename(out)
        raise BadInput(f"cannot move the finished report into {out}: {e.strerror or e}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_report(db: Path, out: Path, filters: Filters | None = None) -> BuildResult:
    """Write the whole report into `out`: created, or replaced if it is empty or an earlier report
    (`check_out`); built beside it and moved into place only when complete.

    One process: a second one, writing the candidate pages, took the 10,000-judgment build from
    4.5 s to 3.9-5.5 s on a busy 2-core machine, for 40% more CPU time (each process computes the
    scopes again, DuckDB's threads contend); not worth the complication."""
    filters = filters or Filters()
    clock = _Clock()
    given, out = out, Path(os.path.abspath(out))
    if out.parent == out:
        raise BadInput(f"--out {given} is the root folder: choose a folder for the report")
    check_out(out)
    con = connect_read_only(db)
    tmp: Path | None = None
    try:
        schema = q.read_schema(con, cache_scopes=True)
        check_store(schema, db)
        links = pages.Links(static=True, depth=0, filters=filters)
        site = make_site(con, schema, filters, links, db, serve=False)
        validate_filters(site.options, filters)
        deep = pages.Site(**{**site.__dict__, "links": links.at(1)})
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = _new_folder(out.parent, f"{out.name}.building")
        except OSError as e:
            raise BadInput(f"cannot create the report folder {given}: {e.strerror or e}") from None
        (tmp / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        for sub in ("assets", "cohort", "candidate", "judgment", "judgments"):
            (tmp / sub).mkdir()
        for name in ASSETS:
            (tmp / "assets" / name).write_bytes(asset_bytes(name))
        written = 0

        def write(rel: str, html: str) -> None:
            nonlocal written
            _write_file(f"{tmp}/{rel}", html)
            written += 1

        write("index.html", pages.render_overview(con, schema, site))
        cohorts = site.options["cohort"] if filters.cohort is None else [filters.cohort]
        for cohort in cohorts:
            write(f"cohort/{pages.slug(cohort)}.html", pages.render_overview(con, schema, deep, cohort))
        write("quality.html", pages.render_quality(con, schema, site))
        write("cost.html", pages.render_cost(con, schema, site))
        clock.lap("overview, quality, cost")

        # One page per candidate name that any page links to. A cohort manifest may name a transcript's
        # candidate differently per cohort (cohort_members.candidate), so a cohort page can link to a
        # name the whole scope does not use: that name's page shows it as that cohort names it.
        candidates = write_candidate_pages(con, schema, tmp, filters, deep)
        for cohort in cohorts:
            cohort_filters = Filters(**{**filters.__dict__, "cohort": cohort})
            missing = set(q.candidate_names(con, schema, cohort_filters)) - candidates
            if missing:
                candidates |= write_candidate_pages(con, schema, tmp, cohort_filters, deep, only=missing)
        written += len(candidates)
        clock.lap("candidate pages")

        everything = q.judgments_page(con, schema, filters, 1, None)
        total, size = everything["total"], pages.PAGE_SIZE
        n_pages = max(1, -(-total // size))
        for page in range(1, n_pages + 1):
            data = {"rows": everything["rows"][(page - 1) * size:page * size], "total": total, "page": page,
                    "size": size, "pages": n_pages}
            write(f"judgments/{page}.html", pages.render_judgments(con, schema, deep, page, data))
        clock.lap("judgment lists")

        ids = q.judgment_ids(con, schema, filters)
        context = pages.judgment_context(site, q.score_scale(con, schema, filters))
        write("judgment.html", pages.render_judgment(site, context, files=pages.data_file_count(len(ids))))
        data_files = write_judgment_data(con, schema, tmp, ids, site, filters)
        clock.lap("judgment data")
        _swap_in(tmp, out)
    except BaseException:
        if tmp is not None:  # a failed or interrupted build leaves no half-written folder behind
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.close()
    clock.lap("total", since_start=True)
    return BuildResult(path=given, judgments=len(ids), pages=written, data_files=data_files, timings=clock.wall,
                       cpu=clock.cpu)
