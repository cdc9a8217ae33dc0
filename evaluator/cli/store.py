"""`evaluate show ID|FILE`, `evaluate judgments list`, `evaluate export FILE`: the store, read back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from evaluator.cli import app, console
from evaluator.cli import options as opt

judgments_app = typer.Typer(help="List stored judgments.", no_args_is_help=True)
app.add_typer(judgments_app, name="judgments")


@app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(metavar="ID|FILE", help="Judgment id (a prefix is enough), or a transcript file (its newest judgment).")],
    db: opt.Db = None,
    output_format: opt.Format = "table",
) -> None:
    """Print a stored judgment as `evaluate` printed it (--format json: the same document)."""
    from evaluator.output import render_terminal, to_document
    from evaluator.show import show_judgment

    result = show_judgment(db, ref)
    if output_format == "json":
        sys.stdout.write(json.dumps(to_document(result), indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        render_terminal(result, console())


@judgments_app.command("list")
def judgments_list(
    cohort: Annotated[Optional[str], typer.Option(help="Only transcripts of this cohort.")] = None,
    candidate: Annotated[Optional[str], typer.Option(help="Only this candidate.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Only this judge model ('baseline' for the offline judge).")] = None,
    status: Annotated[Optional[str], typer.Option(help="Only scored, partial or unscored judgments.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many of the newest judgments.")] = 20,
    db: opt.Db = None,
    output_format: opt.Format = "table",
) -> None:
    """List the newest stored judgments (ids for `evaluate show`), with their mean score."""
    from evaluator.show import JudgmentFilters, list_judgments

    rows = list_judgments(db, JudgmentFilters(cohort=cohort, candidate=candidate, model=model, status=status,
                                              limit=limit))
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str, ensure_ascii=False) + "\n")
        return
    _render_judgments(rows)


def _render_judgments(rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not rows:
        console().print("no judgments match")
        return
    t = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for col in ("id", "when (UTC)", "status", "mean", "source", "candidate", "judge"):
        t.add_column(col, no_wrap=col in ("id", "when (UTC)", "status", "mean"), overflow="fold")
    for r in rows:
        judge = r["judge_kind"] + (f" {r['model']}" if r["model"] else "")
        mean = "-" if r["mean_score"] is None else f"{r['mean_score']:.2f}"
        status = r["status"] if r["role"] == "judgment" else f"{r['status']} ({r['role']})"
        t.add_row(r["id"][:8], f"{r['created_at']:%m-%d %H:%M}", status, mean, escape(r["source"] or "-"),
                  escape(r["candidate"] or "-"), escape(judge))
    console().print(t)


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(metavar="FILE", help="Destination: .csv, .jsonl or .parquet (replaced if it exists).")],
    table: Annotated[str, typer.Option(help="judgments (one row each, with the mean score) or dimensions (one row per dimension score).")] = "judgments",
    export_format: Annotated[Optional[str], typer.Option("--format", "-f", help="csv, jsonl or parquet (default: from FILE's suffix).")] = None,
    cohort: Annotated[Optional[str], typer.Option(help="Only transcripts of this cohort.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Only this judge model ('baseline' for the offline judge).")] = None,
    rubric_version: Annotated[Optional[str], typer.Option(help="Only this rubric version (a prefix is enough).")] = None,
    current: Annotated[bool, typer.Option("--current", help="Only the judgment that stands for each transcript, rubric version and judge (as the report and agreement use it): no re-runs it replaced, --samples draws or probe judgments.")] = False,
    db: opt.Db = None,
) -> None:
    """Export stored judgments or dimension scores as CSV, JSON Lines or Parquet (each row's `role` and `current` say which judgment it is)."""
    from evaluator.store.export import ExportRequest, export

    result = export(ExportRequest(out=out, table=table, format=export_format, db=db, cohort=cohort, model=model,
                                  rubric_version=rubric_version, current=current))
    console(stderr=True).print(f"wrote {result.rows} row(s) to {result.out} ({result.format})", markup=False)
