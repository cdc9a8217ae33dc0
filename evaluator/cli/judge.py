"""`evaluate [judge] TRANSCRIPT...`: judge one or more transcripts (`-` reads standard input)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from evaluator.cli import DEFAULT_COMMAND, app, console
from evaluator.cli import options as opt

if TYPE_CHECKING:
    from evaluator.multi import FileOutcome


@app.command(DEFAULT_COMMAND)
@opt.with_judge_options
def judge_cmd(
    transcripts: Annotated[list[str], typer.Argument(
        metavar="TRANSCRIPT...", help="Transcript files (.md, .txt, .vtt); '-' reads one from standard input.")],
    code: Annotated[Optional[list[Path]], typer.Option("--code", "-c", help="Code file submitted with the round (repeatable; one transcript only).")] = None,
    db: opt.Db = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not write to the database.")] = False,
    force: opt.Force = False,
    fail_under: opt.FailUnder = None,
    output_format: opt.Format = "table",
    *,
    rubric: Optional[str] = None,
    judge: Any = None,  # a JudgeOptions, built by @with_judge_options from the judge flags
) -> None:
    """Judge transcripts: a score per rubric dimension, backed by quotes. Exit code: the worst one's."""
    from evaluator.errors import worst_exit_code
    from evaluator.gate import parse_thresholds
    from evaluator.multi import FilesRequest, evaluate_files
    from evaluator.pipeline import EvaluateRequest

    each = EvaluateRequest(transcript=Path(transcripts[0]), code=list(code or []), rubric=rubric, judge=judge,
                           db=db, store=not no_store, force=force, thresholds=parse_thresholds(fail_under))
    request = FilesRequest(transcripts=list(transcripts), each=each)
    from evaluator.cli.progress import model_client_notice

    model_client_notice(judge, console(stderr=True))
    codes: list[int] = []
    documents: list[dict[str, Any]] = []
    for outcome in evaluate_files(request):
        codes.append(outcome.exit_code)
        if output_format == "json":
            documents.append(_document(outcome))
        else:
            _render(outcome, several=len(transcripts) > 1)
    if output_format == "json":
        doc: Any = documents[0] if len(documents) == 1 else documents
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    raise typer.Exit(worst_exit_code(codes))


def _document(outcome: FileOutcome) -> dict[str, Any]:
    from rich.markup import escape

    from evaluator.output import to_document

    if outcome.result is None:
        return {"source": outcome.name, "error": str(outcome.error), "exit_code": outcome.exit_code}
    for notice in outcome.result.notices:
        console(stderr=True).print(f"[dim]{escape(notice)}[/dim]")
    return {**to_document(outcome.result), "fail_under": outcome.below, "exit_code": outcome.exit_code}


def _render(outcome: FileOutcome, several: bool) -> None:
    from rich.markup import escape

    from evaluator.output import render_terminal

    if several:
        console().rule(escape(outcome.name))
    if outcome.result is None:
        console(stderr=True).print(f"[red]error:[/red] {escape(str(outcome.error))}")
        return
    render_terminal(outcome.result, console())
    for failure in outcome.below:
        console().print(f"[red]below --fail-under:[/red] {escape(failure)}")
