"""Trend reports in a browser: a static self-contained report folder, or the same views served live.

`report(ReportRequest)` is the one entry point the CLI calls. Modules: `queries` (DuckDB aggregation,
pure functions), `charts` (plotly specs), `views` (every view, registered once: route, static pages,
rendering, navigation), `pages` (links, the page frame, templates, the judgment view's data), `build`
(the static folder), `serve` (the read-only local server), `synthetic` (judgment history for tests
and benches). Everything is read from the store: no transcript file is ever opened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from evaluator.report.queries import Filters

DEFAULT_REPORTS_DIR = Path("reports")


@dataclass
class ReportRequest:
    """What `evaluate report` was asked to do: the store, the filters, and build or serve."""

    db: Path
    filters: Filters = field(default_factory=Filters)
    out: Path | None = None
    serve: bool = False
    port: int = 8765
    open_browser: bool = True


def default_out(now: datetime | None = None) -> Path:
    """A new timestamped folder under reports/: by default a build never overwrites an earlier report."""
    return DEFAULT_REPORTS_DIR / f"report-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}"


def report(request: ReportRequest, announce: Callable[[str], None] = print) -> Path | None:
    """Build the static report (returns its index.html) or serve the views until interrupted."""
    if request.serve:
        from evaluator.report.serve import serve

        serve(request.db, request.port, request.filters, request.open_browser, announce)
        return None
    from evaluator.report.build import build_report

    result = build_report(request.db, request.out or default_out(), request.filters)
    index = result.path / "index.html"
    announce(f"Wrote {result.pages} pages and {result.data_files} data files ({result.judgments} judgments) "
             f"to {result.path}/ in {result.timings['total']:.1f} s. Open {index} in a browser (works offline).")
    return index
