"""`evaluate report`: write the self-contained static report (one folder) from the store.

The folder holds index.html, one page per cohort and candidate, paged judgment lists, the
judge-quality and cost pages, the judgment view (one judgment.html that report.js fills from the
data files judgment/<n>.js, about 25 judgments each), and assets/ with the stylesheet, the script and
plotly.min.js copied from the installed `plotly` package (no CDN, nothing fetched): it opens from
disk with no network.

Why the judgment view is drawn in the browser: rendering a template per judgment was most of the
build (10,000 judgments: 14 of 22 s); DuckDB writes each judgment's JSON with the transcript text it
was made on (stored with it), which costs a fraction of that, and files of 25 judgments spare the file
system 10,000 file creations (on a busy machine these alone took seconds). report.js highlights each
quote at the span stored with it. Opening a judgment loads the small shell page and one data file
(no chart library). The report reads only the store: it builds the same from a copy of the database
anywhere.

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

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from evaluator.errors import BadInput, StoreError
from evaluator.report import pages, views
from evaluator.report import queries as q
from evaluator.report.queries import Filters
from evaluator.store.names import unknown_name

LOCK_WAIT_SECONDS = 5.0
MARKER = ".evaluate-report"  # in every report folder: the one sign that `--out` may replace it
MARKER_TEXT = ("This folder is a report written by `evaluate report`. Building a report with --out pointing here "
               "again replaces this whole folder, so keep nothing else in it.\n")


@dataclass
class BuildResult:
    """What a report build wrote and how long each stage took (printed by the benchmark)."""

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


def validate_filters(options: dict[str, Any], f: Filters) -> None:
    """Unknown filter values are a usage error (exit 2) naming the known ones, not an empty report."""
    for key in ("cohort", "candidate", "exercise", "model"):
        value = getattr(f, key)
        if value is not None and value not in options[key]:
            raise unknown_name(key.replace("_", " "), value, list(map(str, options[key])))
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
    """The context every page shares: links, filter options and names, read once from the store."""
    return pages.Site(links=links, options=q.filter_options(con, schema), filters=f, names=q.dimension_names(con),
                      db=str(db), built_at=datetime.now().strftime("%Y-%m-%d %H:%M"), serve=serve)


def _write_file(path: str, text: str) -> None:
    """Write a new file with plain os calls (10,000 of them: pathlib's overhead shows)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


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
             "delete it yourself once (reports written from now on carry the marker)."
             if (out / "index.html").exists() else "")
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
        schema = q.read_schema(con, cache_scopes=True, db=db)
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
        (tmp / "assets").mkdir()
        for name in ASSETS:
            (tmp / "assets" / name).write_bytes(asset_bytes(name))
        folders: set[str] = set()
        written = 0

        def write(rel: str, text: str) -> None:
            nonlocal written
            folder = os.path.dirname(rel)
            if folder and folder not in folders:
                os.makedirs(f"{tmp}/{folder}", exist_ok=True)
                folders.add(folder)
            _write_file(f"{tmp}/{rel}", text)
            written += rel.endswith(".html")

        static = views.Static(con, schema, site, deep, filters, write)
        for view in views.VIEWS.values():  # every registered view writes its own pages
            view.build(static)
            clock.lap(view.key)
        _swap_in(tmp, out)
    except BaseException:
        if tmp is not None:  # a failed or interrupted build leaves no half-written folder behind
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.close()
    clock.lap("total", since_start=True)
    return BuildResult(path=given, judgments=static.counts["judgments"], pages=written,
                       data_files=static.counts["data_files"], timings=clock.wall, cpu=clock.cpu)
