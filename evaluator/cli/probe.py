"""`evaluate probe FILE|DIR`: bias probes and test-retest of the judge (evaluator/probe)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from evaluator.cli import app, console
from evaluator.cli import options as opt


@app.command("probe")
@opt.with_judge_options
def probe_cmd(
    path: Annotated[Path, typer.Argument(help="A transcript, or a folder of .md transcripts.")],
    retest: Annotated[int, typer.Option(min=1, help="Judge each transcript this many times unchanged (test-retest; also the reference the perturbed scores are compared with).")] = 3,
    perturb: Annotated[list[str] | None, typer.Option("--perturb", help="Perturbation to run (repeatable; default all): dimension_order, anchors_reversed, filler_removed, filler_doubled, names_swapped, code_removed.")] = None,
    sample: Annotated[int | None, typer.Option(help="Probe only this many transcripts of the folder (a seeded random choice).")] = None,
    probe_seed: Annotated[int, typer.Option(help="Seed of the shuffles, name choices and sample: the same seed gives the same perturbed inputs.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Judgments in flight at once.")] = 4,
    db: opt.Db = None,
    force: opt.Force = False,
    output_format: opt.Format = "table",
    *,
    rubric: Optional[str] = None,
    judge: Any = None,  # a JudgeOptions, built by @with_judge_options from the judge flags
) -> None:
    """Re-judge under controlled perturbations and K times unchanged; print how far each dimension's score moves."""
    from evaluator.judge.perturb import PERTURBATIONS
    from evaluator.output import escape
    from evaluator.probe.render import render_probe
    from evaluator.probe.run import ProbeRequest, run_probe

    result = run_probe(ProbeRequest(
        path=path, judge=judge, rubric=rubric, db=db, retest=retest,
        perturbations=tuple(perturb) if perturb else PERTURBATIONS, seed=probe_seed, sample=sample,
        force=force, concurrency=concurrency,
    ))
    for notice in result.notices:
        console(stderr=True).print(f"[dim]{escape(notice)}[/dim]")  # notices name user files
    if output_format == "json":
        doc = {"probe_id": result.probe_id, "db": result.db_path, "judged": result.judged, "reused": result.reused,
               **{k: v for k, v in result.summary.items() if k not in ("started_at", "finished_at")}}
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        render_probe(result, console())
    raise typer.Exit(1 if result.summary["status"] != "done" else 0)
