"""`evaluate probe FILE|DIR`: bias probes and test-retest of the judge (evaluator/probe)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from evaluator.cli import app, console, fail
from evaluator.cli import options as opt
from evaluator.errors import EvaluatorError


@app.command("probe")
def probe_cmd(
    path: Annotated[Path, typer.Argument(help="A transcript, or a folder of .md transcripts.")],
    retest: Annotated[int, typer.Option(help="Judge each transcript this many times unchanged (test-retest; also the reference the perturbed scores are compared with).")] = 3,
    perturb: Annotated[list[str] | None, typer.Option("--perturb", help="Perturbation to run (repeatable; default all): dimension_order, anchors_reversed, filler_removed, filler_doubled, names_swapped, code_removed.")] = None,
    sample: Annotated[int | None, typer.Option(help="Probe only this many transcripts of the folder (a seeded random choice).")] = None,
    probe_seed: Annotated[int, typer.Option(help="Seed of the shuffles, name choices and sample: the same seed gives the same perturbed inputs.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Judgments in flight at once.")] = 4,
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
    redact: opt.Redact = None,
    redact_list: opt.RedactList = None,
    db: opt.Db = None,
    force: opt.Force = False,
    output_format: opt.Format = "table",
) -> None:
    """Re-judge under controlled perturbations and K times unchanged; print how far each dimension's score moves."""
    opt.check_format(output_format)
    from evaluator.judge.perturb import PERTURBATIONS
    from evaluator.probe.render import render_probe
    from evaluator.probe.run import ProbeRequest, run_probe

    try:
        options = opt.judge_options(
            model=model, api_base=api_base, temperature=temperature, max_tokens=max_tokens, seed=seed,
            timeout=timeout, retries=retries, retry_wait=retry_wait, repair_attempts=repair_attempts,
            context_tokens=context_tokens, price_in=price_in, price_out=price_out, redact=redact,
            redact_list=redact_list,
        )
        result = run_probe(ProbeRequest(
            path=path, judge=options, rubric=rubric, db=db, retest=retest,
            perturbations=tuple(perturb) if perturb else PERTURBATIONS, seed=probe_seed, sample=sample,
            force=force, concurrency=concurrency,
        ))
    except EvaluatorError as e:
        fail(e, e.exit_code)
        return
    for notice in result.notices:
        console(stderr=True).print(f"[dim]{notice}[/dim]")
    if output_format == "json":
        doc = {"probe_id": result.probe_id, "db": result.db_path, "judged": result.judged, "reused": result.reused,
               **{k: v for k, v in result.summary.items() if k not in ("started_at", "finished_at")}}
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        render_probe(result, console())
    raise typer.Exit(1 if result.summary["status"] != "done" else 0)
