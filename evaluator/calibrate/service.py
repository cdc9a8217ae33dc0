"""The library functions the CLI calls for agreement, calibration and applying a calibration: they
take the gathered scores (gathering.py) and hand them to the pure statistics in agreement.py and
calibration.py. Label import lives in importing.py."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from evaluator.calibrate.agreement import DEFAULT_BOOTSTRAP, AgreementReport, agreement_frames
from evaluator.calibrate.applying import check_rubric_versions
from evaluator.calibrate.calibration import (
    CalibrationResult,
    CalibrationSettings,
    calibrate_frame,
    fit_calibration_frames,
)
from evaluator.calibrate.gathering import (
    STORE_WAIT_SECONDS,
    Gathered,
    ScoreSource,
    gather,
    gather_files,
    gather_store,
    open_existing,
    parse_na,
    parse_scales,
    read_pair,
)
from evaluator.calibrate.labels import ValidatedLabel
from evaluator.calibrate.pairing import Pairing
from evaluator.errors import BadInput


# -- agreement ----------------------------------------------------------------------------------------------
class AgreementRequest(BaseModel):
    """What `evaluate agreement` was asked: the scores to compare and how to pair and resample."""

    source: ScoreSource
    n_bootstrap: int = Field(DEFAULT_BOOTSTRAP, ge=0, le=100_000)
    seed: int = 0
    pairing: Pairing = "mean"
    level: Literal["item", "system"] = "item"
    calibration: str | None = Field(None, description="a calibration file, or a calibration id in the store")
    out: Path | None = Field(None, description="also write the per-dimension table here (.csv, .jsonl, .parquet)")


def load_calibration(ref: str, db: Path | None) -> CalibrationResult:
    """A calibration from a file written by `calibrate --out`, or by id (prefix) from the store."""
    from evaluator.calibrate import store as sql
    from evaluator.calibrate.maps import read_calibration_document

    path = Path(ref)
    if path.is_file():
        return read_calibration_document(path.read_text(encoding="utf-8", errors="replace"), str(path))
    if path.suffix.lower() == ".json" or "/" in ref:
        raise BadInput(f"{ref}: calibration file not found")
    with open_existing(db) as store:
        return sql.load_calibration_document(store, ref)


class AgreementOutcome(BaseModel):
    """What `evaluate agreement` reports: one report per rubric version of the store's judge scores
    (one for plain files, or when pooling the versions was asked for)."""

    reports: list[AgreementReport]

    def to_json(self) -> dict:
        """One report: its document as documented. Several (one per rubric version): {"rubric_versions":
        {version: that version's document}}, never one document mixing them."""
        if len(self.reports) == 1:
            return self.reports[0].to_json()
        return {"rubric_versions": {", ".join(r.judge.rubric_versions if r.judge else []): r.to_json()
                                    for r in self.reports}}

    def rows(self) -> list[dict]:
        return [row for r in self.reports for row in r.rows()]


def _agreement_of(g: Gathered, request: AgreementRequest, calibration: CalibrationResult | None) -> AgreementReport:
    src = request.source
    calibrated = None
    notes = list(g.notes)
    if calibration is not None:
        warning = check_rubric_versions(calibration, g.identity.rubric_versions if g.identity else None,
                                        "these judge scores")
        if warning:
            notes.append(warning)
        scores = pd.concat([g.judge[["dimension", "score"]], g.human[["dimension", "score"]]])
        values = scores["score"][~scores["dimension"].astype(str).isin(list(g.scales))].dropna()
        if g.scale_inferred and len(values) and calibration.scale.min <= values.min() and \
                values.max() <= calibration.scale.max:
            g.scale = calibration.scale  # no --scale given: the calibration's scale, which the scores fit in
            notes = [n for n in notes if "inferred scale" not in n]
        calibrated = g.judge[["transcript", "dimension", "status"]].assign(
            score=calibrate_frame(calibration, g.judge, g.human, scale=g.scale, scales=g.scales))
    groups = g.column_of(src.group_by)
    systems = g.column_of(src.system_col) if request.level == "system" else None
    if request.level == "system" and systems is None:
        systems = {}
    report = agreement_frames(g.judge, g.human, g.scale, n_boot=request.n_bootstrap, seed=request.seed,
                              judge_identity=g.identity, dimension_order=g.dimension_order, pairing=request.pairing,
                              scales=g.scales, groups=groups, group_by=src.group_by, systems=systems,
                              calibrated=calibrated)
    report.notes = notes + report.notes
    if g.labels is not None:
        report.label_versions = g.labels.model_dump(exclude={"labels", "imports"})
    if g.identity is not None and len(g.identity.rubric_versions) > 1:
        report.notes.insert(0, f"{g.versions}: asked for with --pool-rubric-versions, these figures mix the "
                               "versions' scales (each version alone: leave the option out)")
    if calibration is not None:
        report.notes.append(f"calibrated: the same statistics for the scores after calibration {calibration.id} "
                            f"(fitted on {calibration.n_transcripts} transcripts), beside the raw ones")
    return report


def run_agreement(request: AgreementRequest) -> AgreementOutcome:
    """Judge vs human agreement, after checking that the options fit together: one report per rubric
    version of the store's judge scores, never one pooling them unless asked (--pool-rubric-versions)."""
    src = request.source
    if request.level == "system" and not src.system_col:
        raise BadInput("--level system needs --system-col COLUMN (the column naming each item's system)")
    if src.system_col and request.level != "system":
        raise BadInput("--system-col is used with --level system")
    sets = gather(src)
    calibration = load_calibration(request.calibration, src.db) if request.calibration else None
    # A rubric version none of whose transcripts has a label to pair (never labelled, or only against
    # another version with --same-version-labels) is said, not an error that hides the other versions.
    unpaired = [g for g in sets if len(sets) > 1 and g.labels is not None and not g.labels.paired]
    kept = [g for g in sets if all(g is not u for u in unpaired)] or sets
    outcome = AgreementOutcome(reports=[_agreement_of(g, request, calibration) for g in kept])
    if kept is not sets:
        outcome.reports[0].notes[:0] = [f"{g.versions}: no agreement: no label of its transcripts to pair with"
                                        f"{' (--same-version-labels)' if g.labels and g.labels.left_out else ''}"
                                        for g in unpaired]
    if request.out is not None:
        from evaluator.store.export import write_table

        written = write_table(outcome.rows(), request.out)
        outcome.reports[-1].notes.append(f"wrote the agreement table ({written.rows} rows, {written.format}) "
                                         f"to {written.out}")
    return outcome


# -- calibration --------------------------------------------------------------------------------------------
class CalibrateRequest(BaseModel):
    """What `evaluate calibrate` was asked: the scores, fit settings and where to keep the result."""

    source: ScoreSource
    settings: CalibrationSettings = Field(default_factory=CalibrationSettings)
    save: bool | None = Field(None, description="keep it in the store: default yes in store mode, no for plain files")
    out: Path | None = Field(None, description="write the calibration document to this file")


class CalibrateOutcome(BaseModel):
    """The calibrations fitted: one per rubric version of the store's judge scores (one for plain
    files, or when pooling the versions was asked for), with how many stored judgments each calibrated."""

    results: list[CalibrationResult]
    stored: bool = False
    judgments_calibrated: list[int] = Field(default_factory=list)
    db_path: str | None = None
    out: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def result(self) -> CalibrationResult:
        """The one calibration fitted (plain files, one rubric version)."""
        if len(self.results) != 1:
            raise ValueError(f"{len(self.results)} calibrations were fitted (one per rubric version): read `results`")
        return self.results[0]

    def to_json(self) -> dict:
        """One calibration: its document as written by --out, with where it went. Several (one per
        rubric version): {"calibrations": [each document]}."""
        docs = []
        for result, n in zip(self.results, self.judgments_calibrated or [0] * len(self.results), strict=True):
            doc = result.model_dump(mode="json")
            doc.update(stored=self.stored, judgments_calibrated=n, out=self.out)
            docs.append(doc)
        return docs[0] if len(docs) == 1 else {"calibrations": docs}


def _fit_store(store, src: ScoreSource, request: CalibrateRequest) -> CalibrateOutcome:
    """One calibration per rubric version of the selected judgments (or one pooled, when asked): a
    version with too few labels is refused with the reason while the others are fitted."""
    from evaluator.calibrate import store as sql

    sets = gather_store(store, src)
    if request.out is not None and len(sets) > 1:
        raise BadInput(f"the selected judgments were made under {len(sets)} rubric versions "
                       f"({'; '.join(g.versions or '' for g in sets)}): one calibration each, and --out writes one. "
                       "Choose a version with --rubric-version (or pool them explicitly with --pool-rubric-versions)")
    results, refused = [], []
    for g in sets:
        try:
            results.append(fit_calibration_frames(g.judge, g.human, g.scale, request.settings,
                                                  judge_identity=g.identity, dimension_order=g.dimension_order,
                                                  label_imports=g.label_imports))
        except BadInput as e:
            if len(sets) == 1:
                raise
            refused.append(f"{g.versions}: not calibrated: {e}")
    if not results:
        raise BadInput("no rubric version has enough labels to calibrate (a calibration is fitted per rubric version):"
                       "\n  " + "\n  ".join(refused) + "\nLabel more transcripts of one version, or fit one "
                       "calibration over them all with --pool-rubric-versions (it then mixes their scales)")
    save = request.save is not False
    counts = [sql.save_calibration(store, r) if save else 0 for r in results]
    notes = [f"{g.versions}: asked for with --pool-rubric-versions, one calibration mixes the versions' scales"
             for g in sets if g.identity is not None and len(g.identity.rubric_versions) > 1]
    notes += [note for g in sets for note in g.notes]  # how each version's labels matched its judgments
    return CalibrateOutcome(results=results, stored=save, judgments_calibrated=counts, db_path=str(store.path),
                            notes=notes + refused)


def run_calibration(request: CalibrateRequest) -> CalibrateOutcome:
    """Fit and cross-validate; write the document to --out; from the store, also save each (by id) with
    calibrated scores beside raw ones, one per rubric version (each records the version it was fitted
    on, and is applied to that version's judgments only); from plain files, save it by id only when
    asked (--save)."""
    from evaluator.calibrate import store as sql
    from evaluator.calibrate.maps import write_calibration_file
    from evaluator.store.db import default_db_path, open_store

    src = request.source
    if src.system_col:
        raise BadInput("--system-col is an option of `evaluate agreement`")
    if src.judge_file or src.human_file:
        g = gather_files(src)
        groups = g.column_of(src.group_by)
        settings = request.settings.model_copy(update={"cv_group_by": src.group_by})
        result = fit_calibration_frames(g.judge, g.human, g.scale, settings, dimension_order=g.dimension_order,
                                        scales=g.scales, groups=groups)
        outcome = CalibrateOutcome(results=[result], notes=g.notes, judgments_calibrated=[0])
        if request.save:  # plain files: only when asked (--save), never a surprise database in the cwd
            with open_store(src.db or default_db_path(), wait_seconds=STORE_WAIT_SECONDS) as store:
                sql.save_calibration_document(store, result)
                outcome.stored, outcome.db_path = True, str(store.path)
    else:
        with open_existing(src.db) as store:
            outcome = _fit_store(store, src, request)
    if request.out is not None:
        try:
            write_calibration_file(outcome.result, request.out)
        except OSError as e:
            raise BadInput(f"{request.out}: cannot write the calibration file: {e.strerror}") from None
        outcome.out = str(request.out)
    return outcome


def calibrated_scores(db: Path | None, calibration: str | None = None) -> list[dict]:
    """Stored calibrated scores (of one calibration, or all), for `evaluate calibrated`."""
    from evaluator.calibrate import store as sql

    with open_existing(db) as store:
        return sql.calibrated_rows(store, calibration)


class ApplyRequest(BaseModel):
    """What applying a calibration was asked: the judge scores and the calibration."""

    judge_file: Path
    calibration: str
    db: Path | None = None
    human_file: Path | None = Field(None, description="labels of the same items: per-rater offsets apply")
    scales: list[str] = Field(default_factory=list)
    na: list[str] = Field(default_factory=list)


class Applied(NamedTuple):
    """A calibration applied to a plain judge file: the calibration, the rows, what to warn about."""

    result: CalibrationResult
    rows: list[dict]
    notes: list[str]


def apply_to_file(request: ApplyRequest) -> Applied:
    """Calibrated scores for a plain judge file: rows of transcript, dimension, raw, calibrated, method,
    in the file's order (each row's own calibrated score, however the file is sorted). A calibration
    fitted on stored judgments names its rubric version; the file's scores carry none, so `notes`
    says to apply it only to scores judged under that version."""
    result = load_calibration(request.calibration, request.db)
    warning = check_rubric_versions(result, None, f"the scores in {request.judge_file}")
    default, per_dim = parse_scales(request.scales)
    na = parse_na(request.na, default, per_dim)
    jf, hf = read_pair(request.judge_file, request.human_file, na)
    judge = jf.frame
    calibrated = calibrate_frame(result, judge, None if hf is None else hf.frame, scale=default or result.scale,
                                 scales=per_dim or result.scales)
    methods = {}
    for dim, c in result.dimensions.items():
        m = c.map(c.chosen) if c.status == "fitted" else None
        if m is not None:
            methods[dim] = m.method + (" + raters" if m.rater_offsets and hf is not None else "")
    dims, statuses = judge["dimension"].astype(str).to_numpy(), judge["status"].astype(str).to_numpy()
    transcripts, raw = judge["transcript"].astype(str).to_numpy(), judge["score"].to_numpy(float)
    rows = []
    for i in range(len(judge)):
        rows.append({"transcript": transcripts[i], "dimension": dims[i], "status": statuses[i],
                     "raw": None if np.isnan(raw[i]) else float(raw[i]),
                     "calibrated": None if np.isnan(calibrated[i]) else float(calibrated[i]),
                     "method": methods.get(dims[i], "raw (no map)"), "calibration": result.id})
    return Applied(result, rows, [warning] if warning else [])


def write_rows(rows: list[dict], out: Path) -> None:
    """CSV (by default) or JSONL (.jsonl/.ndjson/.json) of calibrated scores."""
    import csv
    import json

    try:
        with open(out, "w", encoding="utf-8", newline="") as f:
            if out.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
                f.writelines(json.dumps(r) + "\n" for r in rows)
            else:
                w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["transcript", "dimension", "raw",
                                                                                  "calibrated"])
                w.writeheader()
                w.writerows(rows)
    except OSError as e:
        raise BadInput(f"{out}: cannot write: {e.strerror}") from None


__all__ = [
    "AgreementOutcome", "AgreementRequest", "Applied", "ApplyRequest", "CalibrateRequest", "ValidatedLabel",
    "apply_to_file", "calibrated_scores", "run_agreement", "run_calibration",
]
