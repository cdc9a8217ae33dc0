"""`evaluate labels import|list`, `agreement`, `calibrate`, `calibrated`, `align`: parse, call, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from evaluator.cli import app, console, fail
from evaluator.cli import options as opt
from evaluator.errors import EXIT_BAD_INPUT, BadInput

labels_app = typer.Typer(help="Import and list human labels.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")

DbOpt = opt.Db
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]
RunOpt = Annotated[str | None, typer.Option(help="Judge run id (or prefix) to compare.")]
ModelOpt = Annotated[str | None, typer.Option(help="Judge model to compare ('baseline' for the offline judge).")]
RubricOpt = Annotated[str | None, typer.Option(help="Only judgments made with this rubric id.")]
RubricVersionOpt = Annotated[str | None, typer.Option(
    "--rubric-version", help="Only judgments made under this rubric version (or a prefix of it, e.g. default@3f2a).")]
PoolOpt = Annotated[bool, typer.Option(
    "--pool-rubric-versions", help="One figure over every rubric version selected, labelled pooled (default: one "
                                   "per rubric version: scores under two versions are two instruments).")]
SameVersionOpt = Annotated[bool, typer.Option(
    "--same-version-labels", help="Pair only labels recorded against the judgments' own rubric version (default: "
                                  "also labels of another version of the same rubric, counted in a note).")]
RaterOpt = Annotated[list[str] | None, typer.Option("--rater", help="Only these raters' labels (repeatable).")]
JudgeFileOpt = Annotated[Path | None, typer.Option("--judge", help="Plain judge score file (CSV/JSONL/Parquet: transcript, dimension, score).")]
HumanFileOpt = Annotated[Path | None, typer.Option("--human", help="Plain human label file (CSV/JSONL/Parquet: transcript, rater, dimension, score).")]
ScaleOpt = Annotated[list[str] | None, typer.Option(
    "--scale", help="Scale of plain files, e.g. 1-5 (default: inferred from the scores); DIMENSION=1-3 sets one "
                    "dimension's (repeatable).")]
NaOpt = Annotated[list[str] | None, typer.Option(
    "--na", help="A score value meaning 'not applicable' (e.g. 0): read as not observed, never as a score; "
                 "DIMENSION=0 for one dimension only (repeatable).")]
CalibrationRefOpt = Annotated[str | None, typer.Option(
    "--calibration", help="Calibration file (from `calibrate --out`) or a calibration id stored in --db.")]
SeedOpt = Annotated[int, typer.Option(help="Seed for bootstrap and fold assignment (results are reproducible).")]


def _check_format(output_format: str) -> None:
    if output_format not in ("table", "json"):
        fail(ValueError(f"--format must be 'table' or 'json', got {output_format!r}"), EXIT_BAD_INPUT)


def _source(db, run, model, rubric, rater, judge_file, human_file, scale, na=None, group_by=None, system_col=None,
            rubric_version=None, pool=False, same_version=False):
    from evaluator.calibrate.gathering import ScoreSource
    from evaluator.calibrate.store import JudgeSelection

    selection = JudgeSelection(run=run, model=model, rubric=rubric, rubric_version=rubric_version,
                               pool_rubric_versions=pool)
    return ScoreSource(db=db, selection=selection, judge_file=judge_file,
                       human_file=human_file, scales=list(scale or []), na=list(na or []), raters=list(rater or []),
                       group_by=group_by, system_col=system_col, same_version_labels=same_version)


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet, long (transcript,rater,dimension,score) or wide form.")],
    rubric: Annotated[str | None, typer.Option(help="Rubric id or YAML path (default: per transcript, as the judge picks it).")] = None,
    transcripts: Annotated[list[Path] | None, typer.Option("--transcripts", help="Folder to find transcripts named in the file (repeatable).")] = None,
    db: DbOpt = None,
) -> None:
    """Import human labels: all rows or none; every problem reported with its line number."""
    from evaluator.calibrate.importing import ImportRequest, import_labels

    s = import_labels(ImportRequest(file=file, db=db, rubric=rubric, transcripts_dirs=list(transcripts or [])))
    rubrics = ", ".join(s.rubrics)
    if s.already_imported:
        console().print(f"{file}: already imported as {s.record.id[:8]} on {s.record.imported_at:%Y-%m-%d %H:%M} "
                        f"({s.record.n_labels} labels, against rubric {rubrics}); nothing to do (another "
                        "--rubric imports it again, against that rubric)", markup=False)
        return
    console().print(f"imported {s.record.n_labels} labels from {file} into {s.db_path}: {s.transcripts} transcripts, "
                    f"raters {', '.join(s.record.raters)}; {s.scored} scored, {s.not_observed} not observed, "
                    f"{s.missing} missing, against rubric {rubrics} (import {s.record.id[:8]})", markup=False)
    if s.earlier is not None:
        console().print(f"note: the same file was imported before as {s.earlier.id[:8]} against rubric "
                        f"{', '.join(s.earlier_rubrics)}; for each transcript, rater and dimension the newest "
                        "import's label is the one used", markup=False)


@labels_app.command("list")
def labels_list(db: DbOpt = None, output_format: FormatOpt = "table") -> None:
    """List label imports with counts by status."""
    _check_format(output_format)
    from rich.table import Table

    from evaluator.calibrate.importing import list_labels

    rows = list_labels(db)
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table()
    for col in ("import", "when", "file", "raters", "transcripts", "scored", "not observed", "missing"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"][:8], r["imported_at"], r["file"], ", ".join(r["raters"]), str(r["transcripts"]),
                      str(r["scored"]), str(r["not_observed"]), str(r["missing"]))
    console().print(table)


@app.command("agreement")
def agreement_cmd(
    db: DbOpt = None, run: RunOpt = None, model: ModelOpt = None, rubric: RubricOpt = None,
    rubric_version: RubricVersionOpt = None, pool_rubric_versions: PoolOpt = False,
    same_version_labels: SameVersionOpt = False, rater: RaterOpt = None,
    judge_file: JudgeFileOpt = None, human_file: HumanFileOpt = None, scale: ScaleOpt = None, na: NaOpt = None,
    pairing: Annotated[str, typer.Option(help="mean: judge vs the raters' mean per item; each: judge vs every "
                                              "rater's label.")] = "mean",
    group_by: Annotated[str | None, typer.Option(
        "--group-by", help="A column of the judge/human files (e.g. a document id): statistics within each group, "
                           "then averaged.")] = None,
    level: Annotated[str, typer.Option(help="item, or system (each system's mean judge vs mean human score; "
                                            "needs --system-col).")] = "item",
    system_col: Annotated[str | None, typer.Option("--system-col", help="The column naming each item's system.")] = None,
    calibration: CalibrationRefOpt = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals (0: none).")] = 1000,
    seed: SeedOpt = 0, output_format: FormatOpt = "table",
    out: Annotated[Path | None, typer.Option("--out", help="Also write the per-dimension table to this file (.csv, .jsonl or .parquet).")] = None,
) -> None:
    """Judge-human agreement per dimension and overall, with intervals and the human ceilings."""
    _check_format(output_format)
    from evaluator.calibrate.render import render_agreement
    from evaluator.calibrate.service import AgreementRequest, run_agreement

    if not 0 <= bootstrap <= 100_000:
        fail(ValueError(f"--bootstrap must be between 0 and 100000, got {bootstrap}"), EXIT_BAD_INPUT)
    if pairing not in ("mean", "each"):
        fail(ValueError(f"--pairing must be 'mean' or 'each', got {pairing!r}"), EXIT_BAD_INPUT)
    if level not in ("item", "system"):
        fail(ValueError(f"--level must be 'item' or 'system', got {level!r}"), EXIT_BAD_INPUT)
    outcome = run_agreement(AgreementRequest(
        source=_source(db, run, model, rubric, rater, judge_file, human_file, scale, na, group_by, system_col,
                       rubric_version, pool_rubric_versions, same_version_labels),
        n_bootstrap=bootstrap, seed=seed, pairing=pairing, level=level,  # type: ignore[arg-type]  # checked above
        calibration=calibration, out=out))
    if output_format == "json":
        for report in outcome.reports:
            for note in report.notes:
                console(stderr=True).print(f"[dim]note: {note}[/dim]")
        sys.stdout.write(json.dumps(outcome.to_json(), indent=2) + "\n")
    else:
        for report in outcome.reports:
            render_agreement(report, console(), versions_apart=len(outcome.reports) > 1)


@app.command("calibrate")
def calibrate_cmd(
    db: DbOpt = None, run: RunOpt = None, model: ModelOpt = None, rubric: RubricOpt = None,
    rubric_version: RubricVersionOpt = None, pool_rubric_versions: PoolOpt = False,
    same_version_labels: SameVersionOpt = False, rater: RaterOpt = None,
    judge_file: JudgeFileOpt = None, human_file: HumanFileOpt = None, scale: ScaleOpt = None, na: NaOpt = None,
    folds: Annotated[int, typer.Option(help="k for k-fold cross-validation.")] = 5,
    min_labels: Annotated[int, typer.Option(help="Refuse to fit a dimension with fewer labelled transcripts.")] = 10,
    multi: Annotated[bool, typer.Option("--multi/--no-multi", help="Also use every judge dimension (and level probabilities) as features.")] = True,
    ordinal: Annotated[bool, typer.Option("--ordinal/--no-ordinal", help="Also fit a proportional-odds (ordinal) model.")] = True,
    rater_offsets: Annotated[bool, typer.Option("--rater-offsets/--no-rater-offsets", help="Also try per-rater offsets when rater ids recur.")] = True,
    out: Annotated[Path | None, typer.Option("--out", help="Write the calibration to this JSON file (apply it elsewhere with --calibration FILE).")] = None,
    group_by: Annotated[str | None, typer.Option(
        "--group-by", help="A column of the judge/human files (e.g. a document or system id): cross-validation "
                           "holds out whole groups, so the estimate is for groups the map never saw.")] = None,
    save: Annotated[bool | None, typer.Option("--save/--no-save", help="Keep it in --db by id (default: yes from the store, no for plain files).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for held-out intervals.")] = 500,
    seed: SeedOpt = 0, output_format: FormatOpt = "table",
) -> None:
    """Fit maps from judge to human scores per dimension, chosen by held-out error; store and/or write them."""
    _check_format(output_format)
    from pydantic import ValidationError

    from evaluator.calibrate.calibration import CalibrationSettings
    from evaluator.calibrate.render import render_calibration
    from evaluator.calibrate.service import CalibrateRequest, run_calibration

    try:
        settings = CalibrationSettings(folds=folds, min_labels=min_labels, seed=seed, multi_signal=multi,
                                       ordinal=ordinal, rater_offsets=rater_offsets, n_bootstrap=bootstrap)
    except ValidationError as e:
        err = e.errors()[0]
        fail(ValueError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}"), EXIT_BAD_INPUT)
        return
    outcome = run_calibration(CalibrateRequest(
        source=_source(db, run, model, rubric, rater, judge_file, human_file, scale, na, group_by,
                       rubric_version=rubric_version, pool=pool_rubric_versions,
                       same_version=same_version_labels), settings=settings,
        out=out, save=save))
    for note in outcome.notes:
        console(stderr=True).print(f"[yellow]note:[/yellow] {note}")
    if output_format == "json":
        for w in (w for r in outcome.results for w in r.warnings):
            console(stderr=True).print(f"[yellow]warning:[/yellow] {w}")
        sys.stdout.write(json.dumps(outcome.to_json(), indent=2) + "\n")
    else:
        for result, n in zip(outcome.results, outcome.judgments_calibrated, strict=True):
            render_calibration(result, console(), outcome.stored, n, plain=bool(judge_file), out=outcome.out)


@app.command("calibrated")
def calibrated_cmd(
    db: DbOpt = None,
    calibration: Annotated[str | None, typer.Option(help="Calibration id (default: the newest), or with --judge a calibration file or id.")] = None,
    judge_file: Annotated[Path | None, typer.Option("--judge", help="A plain judge score file to calibrate (with --calibration).")] = None,
    human_file: Annotated[Path | None, typer.Option("--human", help="Labels of the same items: per-rater offsets then apply.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the calibrated scores here (CSV, or JSONL for .jsonl).")] = None,
    scale: ScaleOpt = None, na: NaOpt = None,
    output_format: FormatOpt = "table",
) -> None:
    """Calibrated scores beside the raw judge scores: stored judgments, or a plain judge file (--judge)."""
    _check_format(output_format)
    from rich.table import Table

    from evaluator.calibrate.service import (
        ApplyRequest,
        apply_to_file,
        calibrated_scores,
        write_rows,
    )

    if judge_file is not None:
        if not calibration:
            raise BadInput("--judge needs --calibration FILE|ID (the calibration to apply)")
        result, rows, notes = apply_to_file(ApplyRequest(judge_file=judge_file, calibration=calibration, db=db,
                                                         human_file=human_file, scales=list(scale or []),
                                                         na=list(na or [])))
        for note in notes:
            console(stderr=True).print(f"[yellow]warning:[/yellow] {note}")
        if out is not None:
            write_rows(rows, out)
            console(stderr=True).print(f"wrote {len(rows)} calibrated scores ({result.id}) to {out}")
            return
        rows = [{**r, "source": r["transcript"], "judgment_id": r["transcript"]} for r in rows]
    else:
        if out is not None or human_file is not None:
            raise BadInput("--out and --human go with --judge FILE")
        rows = calibrated_scores(db, calibration)
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"calibration {rows[0]['calibration'] if rows else calibration or ''}", title_justify="left")
    for col in ("transcript", "dimension", "raw", "calibrated", "method"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["source"] or r["judgment_id"][:8], r["dimension"],
                      "–" if r["raw"] is None else f"{r['raw']:g}",
                      "–" if r["calibrated"] is None else f"{r['calibrated']:.2f}", r["method"])
    console().print(table)


@app.command("align")
def align_cmd(
    model: Annotated[str | None, typer.Option(help="litellm model of the LLM judge to align (env: EVALUATOR_MODEL).")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL (env: EVALUATOR_API_BASE).")] = None,
    dimension: Annotated[list[str] | None, typer.Option("--dimension", help="Dimension(s) to align (default: all labelled).")] = None,
    examples: Annotated[int, typer.Option(help="Few-shot examples per dimension.")] = 4,
    holdout: Annotated[float, typer.Option(help="Fraction of labelled transcripts held out for before/after.")] = 0.4,
    out: Annotated[Path, typer.Option(help="Folder for the aligned prompts.")] = Path("aligned_prompts"),
    timeout: Annotated[float, typer.Option(help="Seconds before one model request times out.")] = 120.0,
    db: DbOpt = None, rater: RaterOpt = None, seed: SeedOpt = 0, output_format: FormatOpt = "table",
) -> None:
    r"""Align an LLM judge with human labels using ragas (optional extra: pip install -e '.\[ragas]' in the checkout)."""
    _check_format(output_format)
    from evaluator.calibrate.align import AlignRequest, render_align, run_align

    result = run_align(AlignRequest(model=model, api_base=api_base, dimensions=list(dimension or []),
                                    examples=examples, holdout=holdout, out=out, timeout=timeout, db=db,
                                    raters=list(rater or []), seed=seed))
    if output_format == "json":
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        render_align(result, console())
