"""`evaluate [judge] TRANSCRIPT`: judge one transcript."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from evaluator.cli import DEFAULT_COMMAND, app, console, fail
from evaluator.errors import EXIT_BAD_INPUT, EvaluatorError


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
        fail(ValueError(f"--format must be 'table' or 'json', got {output_format!r}"), EXIT_BAD_INPUT)
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
        fail(e, e.exit_code)
        return
    if output_format == "json":
        for notice in result.notices:
            console(stderr=True).print(f"[dim]{notice}[/dim]")
        sys.stdout.write(json.dumps(to_document(result), indent=2, ensure_ascii=False) + "\n")
    else:
        render_terminal(result, console())
    raise typer.Exit(exit_code(result))
