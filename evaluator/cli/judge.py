"""`evaluate [judge] TRANSCRIPT`: judge one transcript."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from evaluator.cli import DEFAULT_COMMAND, app, console, fail
from evaluator.cli import options as opt
from evaluator.errors import EvaluatorError


@app.command(DEFAULT_COMMAND)
def judge_cmd(
    transcript: Annotated[Path, typer.Argument(help="Markdown transcript of the round.")],
    code: Annotated[Optional[list[Path]], typer.Option("--code", "-c", help="Code file submitted with the round (repeatable).")] = None,
    rubric: opt.Rubric = None,
    model: opt.Model = None,
    api_base: opt.ApiBase = None,
    temperature: opt.Temperature = 0.0,
    max_tokens: opt.MaxTokens = 4096,
    seed: opt.Seed = None,
    timeout: opt.Timeout = 120.0,
    retries: opt.Retries = 4,
    retry_wait: opt.RetryWait = 1.0,
    repair_attempts: opt.RepairAttempts = 2,
    context_tokens: opt.ContextTokens = None,
    price_in: opt.PriceIn = None,
    price_out: opt.PriceOut = None,
    logprobs: opt.Logprobs = None,
    redact: opt.Redact = None,
    redact_list: opt.RedactList = None,
    db: opt.Db = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not write to the database.")] = False,
    force: opt.Force = False,
    output_format: opt.Format = "table",
) -> None:
    """Judge one transcript: a score per rubric dimension, backed by quotes."""
    opt.check_format(output_format)
    from evaluator.output import exit_code, render_terminal, to_document
    from evaluator.pipeline import EvaluateRequest, evaluate_file

    try:
        options = opt.judge_options(
            model=model, api_base=api_base, temperature=temperature, max_tokens=max_tokens, seed=seed,
            timeout=timeout, retries=retries, retry_wait=retry_wait, repair_attempts=repair_attempts,
            context_tokens=context_tokens, price_in=price_in, price_out=price_out, logprobs=logprobs,
            redact=redact, redact_list=redact_list,
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
