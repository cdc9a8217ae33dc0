"""`evaluate cohort PATH --cohort NAME`: score a folder or manifest of transcripts; `evaluate runs`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from evaluator.cli import app, console
from evaluator.cli import options as opt


@app.command("cohort")
@opt.with_judge_options
def cohort_cmd(
    path: Annotated[Path, typer.Argument(help="Folder of transcripts (.md, .markdown, .txt, .vtt), or a manifest (.csv / .jsonl) with a 'path' column.")],
    cohort: Annotated[str, typer.Option("--cohort", help="Cohort name (runs and reports are grouped by it).")],
    concurrency: Annotated[int, typer.Option(min=1, help="Judgments in flight at once.")] = 8,
    rpm: Annotated[Optional[float], typer.Option(callback=opt.positive, help="Client-side limit: model requests per minute.")] = None,
    tpm: Annotated[Optional[float], typer.Option(callback=opt.positive, help="Client-side limit: tokens per minute.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate tokens and cost from the real prompts; call nothing, write nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option(min=0.0, help="USD budget: start no judgment that would exceed it.")] = None,
    db: opt.Db = None,
    force: opt.Force = False,
    fail_under: opt.FailUnder = None,
    output_format: opt.Format = "table",
    batch: Annotated[bool, typer.Option("--batch", help="Through the provider's batch API (about half price, results within 24 h): submits, and on the next run collects; see `evaluate batches`.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --batch: poll until every batch is done.")] = False,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=0.0, help="With --batch --wait: seconds between polls.")] = 30.0,
    batch_discount: Annotated[Optional[float], typer.Option("--batch-discount", min=0.0, max=1.0, help="Batch price as a fraction of the live price when litellm's price map has no batch price (default 0.5).")] = None,
    batch_repairs: Annotated[bool, typer.Option("--batch-repairs", help="With --batch: send repairs of invalid replies as a follow-up batch (batch price, collected by the next run) instead of live calls.")] = False,
    max_enqueued_tokens: Annotated[Optional[int], typer.Option("--max-enqueued-tokens", min=0, help="With --batch: the provider's enqueued-token limit for this model (OpenAI: 'batch queue limit' on the account's limits page): submit in waves under it, the next wave as earlier batches finish. Remembered in the ledger; 0: no limit. Unset: the remembered one, else the figure from the provider's last limit error.")] = None,
    *,
    rubric: Optional[str] = None,
    judge: Any = None,  # a JudgeOptions, built by @with_judge_options from the judge flags
) -> None:
    """Score a cohort: concurrent, rate-limited, cached, resumable (re-run the same command)."""
    from rich.markup import escape

    from evaluator.batch.runner import CohortRequest, score_cohort
    from evaluator.cli.progress import CohortProgress, model_client_notice, render_summary
    from evaluator.gate import cohort_thresholds, cohort_verdict

    thresholds = cohort_thresholds(fail_under, rubric, path)
    request = CohortRequest(
        path=path, cohort=cohort, judge=judge, rubric=rubric, db=db, concurrency=concurrency,
        rpm=rpm, tpm=tpm, force=force, dry_run=dry_run, max_cost=max_cost,
    )
    model_client_notice(judge, console(stderr=True))
    with CohortProgress(console(stderr=True), enabled=not dry_run) as progress:
        if batch:
            from evaluator.batch.provider_batch import BatchOptions, score_cohort_batch

            options = BatchOptions(wait=wait, poll_seconds=poll_seconds, discount=batch_discount, repairs=batch_repairs,
                                   max_enqueued_tokens=max_enqueued_tokens)
            summary = score_cohort_batch(request, options, progress.update, progress.notice)
        else:
            summary = score_cohort(request, progress.update, progress.notice)
    code, below = cohort_verdict(summary, thresholds)
    if output_format == "json":
        doc = {**summary.model_dump(mode="json"), "fail_under": below, "exit_code": code}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        render_summary(summary, console())
        for failure in below:
            console().print(f"[red]below --fail-under:[/red] {escape(failure)}")
    raise typer.Exit(code)


@app.command("runs")
def runs_cmd(
    cohort: Annotated[Optional[str], typer.Option("--cohort", help="Only this cohort's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many of the newest runs.")] = 20,
    db: opt.Db = None,
    output_format: opt.Format = "table",
) -> None:
    """List the newest runs: when, status (a run whose process died shows as killed), judge, counts, cost."""
    from evaluator.store.runs import recent_runs

    runs = recent_runs(db, cohort=cohort, limit=limit)
    if output_format == "json":
        sys.stdout.write(json.dumps(runs, indent=2, default=str, ensure_ascii=False) + "\n")
        return
    from evaluator.cli.progress import render_runs

    render_runs(runs, console())
