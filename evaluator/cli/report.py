"""`evaluate report [--serve]`: the HTML trend report, as files or served live."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from evaluator.cli import app, console, fail
from evaluator.cli import options as opt
from evaluator.errors import EXIT_BAD_INPUT


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(ValueError(f"{option} must be a date like 2026-03-01, got {value!r}"), EXIT_BAD_INPUT)
        return None


@app.command("report")
def report_cmd(
    db: opt.Db = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default: reports/report-YYYYMMDD-HHMMSS).")] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the views live on 127.0.0.1 instead of writing files (read-only).")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve (0: any free port).")] = 8765,
    no_open: Annotated[bool, typer.Option("--no-open", help="With --serve, do not open a browser.")] = False,
    cohort: Annotated[str | None, typer.Option(help="Only this cohort.")] = None,
    candidate: Annotated[str | None, typer.Option(help="Only this candidate.")] = None,
    exercise: Annotated[str | None, typer.Option(help="Only this exercise.")] = None,
    since: Annotated[str | None, typer.Option(help="Sessions on or after this date (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Sessions on or before this date (YYYY-MM-DD).")] = None,
    rubric_version: Annotated[str | None, typer.Option(help="Only this rubric version (a prefix is enough).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this judge model ('baseline' for the offline judge).")] = None,
) -> None:
    """Write a self-contained HTML trend report into reports/ (opens offline), or --serve it live."""
    from evaluator.report import ReportRequest, report
    from evaluator.report.queries import Filters
    from evaluator.store.db import default_db_path

    if not 0 <= port <= 65535:
        fail(ValueError(f"--port must be between 0 and 65535, got {port}"), EXIT_BAD_INPUT)
    if out is not None and serve:
        fail(ValueError("--out writes files and --serve serves pages: choose one"), EXIT_BAD_INPUT)
    filters = Filters(cohort=cohort, candidate=candidate, exercise=exercise, since=_date(since, "--since"),
                      until=_date(until, "--until"), rubric_version=rubric_version, model=model)
    report(ReportRequest(db=db or default_db_path(), filters=filters, out=out, serve=serve, port=port,
                         open_browser=not no_open), announce=lambda msg: console().print(msg, markup=False))
