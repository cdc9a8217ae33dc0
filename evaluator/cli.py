"""`evaluate`: parse arguments, call one library function, print. No logic lives here.

Heavy imports (litellm, duckdb, pandas) happen inside commands so `evaluate --help` stays fast.
`evaluate transcript.md` works because a TyperGroup subclass inserts the default command name when
the first argument is not a known command (STACK-NOTES: a callback would swallow subcommands).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from typer.core import TyperGroup

from evaluator.errors import EXIT_BAD_INPUT, EvaluatorError

DEFAULT_COMMAND = "judge"


class DefaultCommandGroup(TyperGroup):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Judge mock technical-interview transcripts against rubrics, with an LLM or an offline baseline.\n\n"
    "Usage: evaluate TRANSCRIPT.md [options]   (same as: evaluate judge TRANSCRIPT.md)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
rubrics_app = typer.Typer(help="List, show and validate rubrics.", no_args_is_help=True)
app.add_typer(rubrics_app, name="rubrics")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _fail(err: Exception, code: int) -> None:
    from rich.markup import escape

    _console(stderr=True).print(f"[red]error:[/red] {escape(str(err))}")
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from evaluator import __version__

        typer.echo(f"evaluate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
) -> None:
    """Judge mock technical-interview transcripts."""


@app.command(DEFAULT_COMMAND)
def judge_cmd(
    transcript: Annotated[Path, typer.Argument(help="Markdown transcript of the round.")],
    code: Annotated[Optional[list[Path]], typer.Option("--code", "-c", help="Code file submitted with the round (repeatable).")] = None,
    rubric: Annotated[Optional[str], typer.Option(help="Rubric id or YAML path (default: from the transcript's exercise, else 'default').")] = None,
    model: Annotated[Optional[str], typer.Option(help="litellm model, e.g. openai/gpt-4o-mini, ollama/llama3.1 [env: EVALUATOR_MODEL]. None: offline baseline judge.")] = None,
    api_base: Annotated[Optional[str], typer.Option(help="Base URL of an OpenAI-compatible server, Ollama, vLLM... [env: EVALUATOR_API_BASE]")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.0,
    max_tokens: Annotated[int, typer.Option(help="Cap on the judge's reply tokens.")] = 4096,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed, where the provider supports it.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before one model request times out.")] = 120.0,
    retries: Annotated[int, typer.Option(help="Retries of a model request on 429, 5xx, timeouts, dropped connections.")] = 4,
    retry_wait: Annotated[float, typer.Option(help="First backoff wait in seconds (doubles, with jitter; Retry-After wins).")] = 1.0,
    repair_attempts: Annotated[int, typer.Option(help="Times to ask the model again after invalid output.")] = 2,
    context_tokens: Annotated[Optional[int], typer.Option(help="The model's context window, if litellm does not know it (unknown: 16000).")] = None,
    db: Annotated[Optional[Path], typer.Option(help="DuckDB file [env: EVALUATOR_DB; default ./evaluator.duckdb].")] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not write to the database.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Judge again even if this exact judgment is stored.")] = False,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Judge one transcript: a score per rubric dimension, backed by quotes."""
    if output_format not in ("table", "json"):
        _fail(ValueError(f"--format must be 'table' or 'json', got {output_format!r}"), EXIT_BAD_INPUT)
    from evaluator.output import exit_code, render_terminal, to_document
    from evaluator.pipeline import EvaluateRequest, JudgeOptions, evaluate_file

    try:
        options = JudgeOptions.from_env(
            model=model, api_base=api_base, temperature=temperature, max_tokens=max_tokens, seed=seed,
            timeout=timeout, retries=retries, retry_initial_wait=retry_wait, repair_attempts=repair_attempts,
            context_tokens=context_tokens,
        )
        result = evaluate_file(EvaluateRequest(
            transcript=transcript, code=list(code or []), rubric=rubric, judge=options, db=db,
            store=not no_store, force=force,
        ))
    except EvaluatorError as e:
        _fail(e, e.exit_code)
        return
    if output_format == "json":
        for notice in result.notices:
            _console(stderr=True).print(f"[dim]{notice}[/dim]")
        sys.stdout.write(json.dumps(to_document(result), indent=2, ensure_ascii=False) + "\n")
    else:
        render_terminal(result, _console())
    raise typer.Exit(exit_code(result))


@rubrics_app.command("list")
def rubrics_list(
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Rubrics folder [env: EVALUATOR_RUBRICS_DIR].")] = None,
) -> None:
    """List the rubrics with their versions, dimensions and exercises."""
    from rich.table import Table

    from evaluator.rubrics import load_all

    try:
        rubrics = load_all(directory)
    except EvaluatorError as e:
        _fail(e, e.exit_code)
        return
    table = Table()
    for col in ("id", "version", "title", "dimensions", "exercises"):
        table.add_column(col)
    for r in rubrics:
        table.add_row(r.id, r.version, r.title, ", ".join(r.dimension_ids), ", ".join(r.exercises) or "-")
    _console().print(table)


@rubrics_app.command("show")
def rubrics_show(
    rubric_id: Annotated[str, typer.Argument(help="Rubric id or YAML path.")],
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Rubrics folder.")] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Show one resolved rubric (after `extends`) with every anchor."""
    from rich.markup import escape

    from evaluator.rubrics import select_rubric

    try:
        r = select_rubric(rubric_id, None, directory)
    except EvaluatorError as e:
        _fail(e, e.exit_code)
        return
    if output_format == "json":
        sys.stdout.write(json.dumps({**r.model_dump(mode="json"), "version": r.version}, indent=2) + "\n")
        return
    c = _console()
    c.print(f"[bold]{escape(r.title)}[/bold]  [cyan]{escape(r.version)}[/cyan]"
            f"{'  extends ' + escape(r.extends) if r.extends else ''}")
    if r.description:
        c.print(escape(r.description.strip()))
    c.print(f"scale {r.scale.min}-{r.scale.max} · judge mode {r.judge_mode} · exercises: {', '.join(r.exercises) or '-'}")
    for d in r.dimensions:
        c.print(f"\n[bold]{escape(d.id)}[/bold] — {escape(d.name)}"
                f"{'  [dim](may be not observed)[/dim]' if d.allow_not_observed else ''}")
        c.print(f"  {escape(d.question.strip())}")
        for level, text in d.anchors.items():
            c.print(f"  [cyan]{level}[/cyan] {escape(text.strip())}")


@rubrics_app.command("check")
def rubrics_check(
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Rubrics folder.")] = None,
) -> None:
    """Validate every rubric file; exit 2 if any is invalid."""
    from rich.markup import escape

    from evaluator.rubrics import check_all

    try:
        results = check_all(directory)
    except EvaluatorError as e:
        _fail(e, e.exit_code)
        return
    c = _console()
    bad = 0
    for path, error in results:
        if error:
            bad += 1
            c.print(f"[red]✗[/red] {escape(error)}")
        else:
            c.print(f"[green]✓[/green] {escape(path)}")
    if not results:
        c.print("no rubric files found")
        raise typer.Exit(EXIT_BAD_INPUT)
    c.print(f"{len(results) - bad} valid, {bad} invalid")
    raise typer.Exit(EXIT_BAD_INPUT if bad else 0)


def run() -> None:
    """Console-script entry: usage errors exit 2 with click's message; nothing prints a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        _console(stderr=True).print("[red]interrupted[/red]")
        sys.exit(130)
