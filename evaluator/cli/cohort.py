"""`evaluate cohort PATH --cohort NAME`: score a folder or manifest of transcripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from evaluator.cli import app, console, fail
from evaluator.cli import options as opt
from evaluator.errors import EXIT_INTERRUPTED, EXIT_JUDGE_UNAVAILABLE, EXIT_NOT_FULLY_SCORED, EXIT_OK, EvaluatorError


@app.command("cohort")
def cohort_cmd(
    path: Annotated[Path, typer.Argument(help="Folder of .md transcripts, or a manifest (.csv / .jsonl) with a 'path' column.")],
    cohort: Annotated[str, typer.Option("--cohort", help="Cohort name (runs and reports are grouped by it).")],
    concurrency: Annotated[int, typer.Option(help="Judgments in flight at once.")] = 8,
    rpm: Annotated[Optional[float], typer.Option(help="Client-side limit: model requests per minute.")] = None,
    tpm: Annotated[Optional[float], typer.Option(help="Client-side limit: tokens per minute.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate tokens and cost from the real prompts; call nothing, write nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option(help="USD budget: start no judgment that would exceed it.")] = None,
    rubric: opt.Rubric = None,
    model: opt.Model = None,
    api_base: opt.ApiBase = None,
    temperature: opt.Temperature = None,
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
    samples: opt.Samples = 1,
    jury: opt.Jury = None,
    db: opt.Db = None,
    force: opt.Force = False,
    output_format: opt.Format = "table",
) -> None:
    """Score a cohort: concurrent, rate-limited, cached, resumable (re-run the same command)."""
    opt.check_format(output_format)
    from evaluator.batch.runner import CohortRequest, score_cohort
    from evaluator.cli.progress import CohortProgress, render_summary

    try:
        options = opt.judge_options(
            model=model, api_base=api_base, temperature=temperature, max_tokens=max_tokens, seed=seed,
            timeout=timeout, retries=retries, retry_wait=retry_wait, repair_attempts=repair_attempts,
            context_tokens=context_tokens, price_in=price_in, price_out=price_out, logprobs=logprobs,
            samples=samples, jury=jury,
        )
        request = CohortRequest(
            path=path, cohort=cohort, judge=options, rubric=rubric, db=db, concurrency=concurrency,
            rpm=rpm, tpm=tpm, force=force, dry_run=dry_run, max_cost=max_cost,
        )
        with CohortProgress(console(stderr=True), enabled=not dry_run) as progress:
            summary = score_cohort(request, progress.update, progress.notice)
    except EvaluatorError as e:
        fail(e, e.exit_code)
        return
    if output_format == "json":
        sys.stdout.write(json.dumps(summary.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
    else:
        render_summary(summary, console())
    if summary.status == "aborted":
        raise typer.Exit(EXIT_JUDGE_UNAVAILABLE)
    if summary.status == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
    complete = summary.dry_run and summary.failed == 0 or summary.scored == summary.total
    raise typer.Exit(EXIT_OK if complete else EXIT_NOT_FULLY_SCORED)


@app.command("runs")
def runs_cmd(
    cohort: Annotated[Optional[str], typer.Option("--cohort", help="Only this cohort's runs.")] = None,
    limit: Annotated[int, typer.Option(help="How many of the newest runs.")] = 20,
    db: opt.Db = None,
    output_format: opt.Format = "table",
) -> None:
    """List the newest runs: when, status (a run whose process died shows as killed), judge, counts, cost."""
    opt.check_format(output_format)
    from evaluator.store.runs import recent_runs

    try:
        runs = recent_runs(db, cohort=cohort, limit=limit)
    except EvaluatorError as e:
        fail(e, e.exit_code)
        return
    if output_format == "json":
        sys.stdout.write(json.dumps(runs, indent=2, default=str, ensure_ascii=False) + "\n")
        return
    from evaluator.cli.progress import render_runs

    render_runs(runs, console())
