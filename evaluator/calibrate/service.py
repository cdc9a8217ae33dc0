"""The library functions the CLI calls, one per command: they gather records (store or plain files)
and hand them to the pure statistics in agreement.py and calibration.py."""

from __future__ import annotations

import math
import re
from pathlib import Path

from pydantic import BaseModel, Field

from evaluator.calibrate.agreement import DEFAULT_BOOTSTRAP, AgreementReport, agreement
from evaluator.calibrate.calibration import (
    CalibrationResult,
    CalibrationSettings,
    fit_calibration,
)
from evaluator.calibrate.labels import (
    TranscriptMatch,
    ValidatedLabel,
    load_plain,
    problems_error,
    read_score_file,
    validate_rows,
)
from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore, ScaleSpec
from evaluator.calibrate.store import ImportRecord, JudgeSelection
from evaluator.errors import BadInput

_HEX = re.compile(r"[0-9a-f]{8,64}")


# -- labels import ----------------------------------------------------------------------------------------
class ImportRequest(BaseModel):
    file: Path
    db: Path | None = None
    rubric: str | None = Field(None, description="rubric id or path; default: chosen per transcript as the judge does")
    transcripts_dirs: list[Path] = Field(default_factory=list)


class ImportSummary(BaseModel):
    record: ImportRecord
    already_imported: bool = False
    transcripts: int = 0
    scored: int = 0
    not_observed: int = 0
    missing: int = 0
    db_path: str


def _search_dirs(request: ImportRequest) -> list[Path]:
    label_dir = request.file.parent
    dirs = [*request.transcripts_dirs, Path.cwd(), Path.cwd() / "transcripts", label_dir, label_dir.parent / "transcripts"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _transcript_resolver(store, request: ImportRequest):
    """ref -> TranscriptMatch or an error message. A hex string is a stored content hash (prefix);
    otherwise a file on disk (path, or name in a search folder) wins over a stored transcript's name,
    since the file is what the rater read now."""
    from evaluator.calibrate import store as sql
    from evaluator.ingest import load_transcript
    from evaluator.rubrics import select_rubric

    rubric_cache: dict[str | None, object] = {}
    dirs = _search_dirs(request)

    def rubric_for(exercise: str | None):
        if exercise not in rubric_cache:
            rubric_cache[exercise] = select_rubric(request.rubric, exercise)
        return rubric_cache[exercise]

    def match(hash_: str, source: str | None, exercise: str | None) -> TranscriptMatch:
        r = rubric_for(exercise)
        return TranscriptMatch(key=hash_, source=source, rubric_id=r.id, rubric_version=r.version,
                               scale=ScaleSpec(min=r.scale.min, max=r.scale.max),
                               dimensions={d.id: d.allow_not_observed for d in r.dimensions})

    def resolve(ref: str) -> TranscriptMatch | str:
        try:
            if _HEX.fullmatch(ref.lower()):
                found = sql.stored_transcripts_by_hash(store, ref)
                if len(found) == 1:
                    return match(found[0].hash, found[0].source, found[0].exercise)
                if len(found) > 1:
                    return f"transcript hash prefix '{ref}' is ambiguous ({len(found)} stored transcripts); give more characters"
            candidates = [Path(ref)] + [d / ref for d in dirs]
            candidates += [c.with_name(c.name + ".md") for c in candidates if not c.suffix]
            for path in candidates:
                if path.is_file():
                    t = load_transcript(path)
                    return match(t.content_hash, t.source, t.exercise)
            found = sql.stored_transcripts_by_name(store, ref)
            hashes = {f.hash for f in found}
            if len(hashes) == 1:
                return match(found[-1].hash, found[-1].source, found[-1].exercise)
            if len(hashes) > 1:
                return (f"transcript '{ref}' is ambiguous: {len(hashes)} different stored transcripts have that name "
                        "(it changed between judgments); use the content hash")
        except BadInput as e:
            return f"transcript '{ref}': {e}"
        looked = ", ".join(str(d) for d in dirs)
        return (f"unknown transcript '{ref}': not a stored transcript's hash or file name, and no such file "
                f"(looked in {looked}; add --transcripts DIR)")

    return resolve


def import_labels(request: ImportRequest) -> ImportSummary:
    """Validate the whole file, then store every label in one transaction, or nothing."""
    from evaluator.calibrate import store as sql
    from evaluator.store.db import Store, default_db_path

    parsed = read_score_file(request.file, need_rater=True)
    with Store(request.db or default_db_path()) as store:
        previous = sql.find_import_by_sha(store, parsed.sha256)
        if previous is not None:
            return ImportSummary(record=previous, already_imported=True, db_path=str(store.path))
        labels, problems = validate_rows(parsed.rows, _transcript_resolver(store, request))
        if problems:
            raise problems_error(str(request.file), problems)
        record = sql.insert_labels(store, parsed, labels)
        return ImportSummary(
            record=record, transcripts=len({lb.transcript for lb in labels}),
            scored=sum(lb.status == "scored" for lb in labels),
            not_observed=sum(lb.status == "not_observed" for lb in labels),
            missing=sum(lb.status == "missing" for lb in labels), db_path=str(store.path))


def list_labels(db: Path | None) -> list[dict]:
    from evaluator.calibrate import store as sql

    with _open_existing(db) as store:
        return sql.label_summary(store)


# -- where scores come from ---------------------------------------------------------------------------------
class ScoreSource(BaseModel):
    """Either the store (judge runs vs imported labels) or two plain files."""

    db: Path | None = None
    selection: JudgeSelection = Field(default_factory=JudgeSelection)
    judge_file: Path | None = None
    human_file: Path | None = None
    scale: str | None = Field(None, description="'MIN-MAX' for plain files; default: inferred from the data")
    raters: list[str] = Field(default_factory=list)


class Gathered(BaseModel):
    judge: list[JudgeScore]
    human: list[HumanLabel]
    scale: ScaleSpec
    identity: JudgeIdentity | None = None
    dimension_order: list[str] = Field(default_factory=list)
    label_imports: list[str] = Field(default_factory=list)


def _open_existing(db: Path | None):
    from evaluator.store.db import Store, default_db_path

    path = Path(db or default_db_path())
    if not path.exists():
        raise BadInput(f"no database at {path}: judge some transcripts and import labels first (or pass --db)")
    return Store(path)


def parse_scale(text: str) -> ScaleSpec:
    m = re.fullmatch(r"\s*(-?\d+)\s*[-:]\s*(-?\d+)\s*", text)
    if not m or int(m.group(2)) <= int(m.group(1)):
        raise BadInput(f"--scale must look like 1-5 (min-max, min < max), got {text!r}")
    return ScaleSpec(min=int(m.group(1)), max=int(m.group(2)))


def _gather_files(src: ScoreSource) -> Gathered:
    if not (src.judge_file and src.human_file):
        raise BadInput("--judge FILE and --human FILE go together: give both, or neither to use the store")
    scale = parse_scale(src.scale) if src.scale else None
    judge_rows = load_plain(src.judge_file, kind="judge", scale=scale)
    human_rows = load_plain(src.human_file, kind="human", scale=scale)
    if scale is None:
        values = [r.score for r in judge_rows + human_rows if r.score is not None]
        if not values:
            raise BadInput("no numeric scores in either file")
        lo, hi = math.floor(min(values)), math.ceil(max(values))
        scale = ScaleSpec(min=lo, max=max(hi, lo + 1))
    judge = [JudgeScore(transcript=r.transcript, dimension=r.dimension, status=r.status, score=r.score)
             for r in judge_rows]
    human = [HumanLabel(**r.model_dump(include=set(HumanLabel.model_fields))) for r in human_rows
             if not src.raters or r.rater in src.raters]
    return Gathered(judge=judge, human=human, scale=scale,
                    dimension_order=list(dict.fromkeys(r.dimension for r in judge_rows)))


def _gather_store(store, src: ScoreSource) -> Gathered:
    from evaluator.calibrate import store as sql
    from evaluator.rubrics import Rubric

    human, imports = sql.current_labels(store, src.raters or None)
    if not human:
        who = f" from rater(s) {', '.join(src.raters)}" if src.raters else ""
        raise BadInput(f"{store.path}: no human labels{who}; import some with `evaluate labels import FILE`")
    judge, identity, definitions = sql.judge_scores(store, src.selection)
    rubrics = [Rubric.model_validate(d) for d in definitions]
    scales = {(r.scale.min, r.scale.max) for r in rubrics}
    if len(scales) > 1:
        raise BadInput(f"the selected judgments use rubrics with different scales ({sorted(scales)}); "
                       "choose one rubric with --rubric")
    lo, hi = scales.pop() if scales else (1, 5)
    order = list(dict.fromkeys(d.id for r in rubrics for d in r.dimensions))
    return Gathered(judge=judge, human=human, scale=ScaleSpec(min=lo, max=hi), identity=identity,
                    dimension_order=order, label_imports=imports)


# -- agreement ----------------------------------------------------------------------------------------------
class AgreementRequest(BaseModel):
    source: ScoreSource
    n_bootstrap: int = Field(DEFAULT_BOOTSTRAP, ge=0, le=100_000)
    seed: int = 0


def run_agreement(request: AgreementRequest) -> AgreementReport:
    src = request.source
    if src.judge_file or src.human_file:
        g = _gather_files(src)
    else:
        with _open_existing(src.db) as store:
            g = _gather_store(store, src)
    return agreement(g.judge, g.human, g.scale, n_boot=request.n_bootstrap, seed=request.seed,
                     judge_identity=g.identity, dimension_order=g.dimension_order)


# -- calibration --------------------------------------------------------------------------------------------
class CalibrateRequest(BaseModel):
    source: ScoreSource
    settings: CalibrationSettings = Field(default_factory=CalibrationSettings)
    save: bool = True


class CalibrateOutcome(BaseModel):
    result: CalibrationResult
    stored: bool = False
    judgments_calibrated: int = 0
    db_path: str | None = None


def run_calibration(request: CalibrateRequest) -> CalibrateOutcome:
    """Fit and cross-validate; from the store, also save it with calibrated scores beside raw ones."""
    from evaluator.calibrate import store as sql

    src = request.source
    if src.judge_file or src.human_file:
        g = _gather_files(src)
        result = fit_calibration(g.judge, g.human, g.scale, request.settings, dimension_order=g.dimension_order)
        return CalibrateOutcome(result=result)
    with _open_existing(src.db) as store:
        g = _gather_store(store, src)
        result = fit_calibration(g.judge, g.human, g.scale, request.settings, judge_identity=g.identity,
                                 dimension_order=g.dimension_order, label_imports=g.label_imports)
        n = sql.save_calibration(store, result) if request.save else 0
        return CalibrateOutcome(result=result, stored=request.save, judgments_calibrated=n, db_path=str(store.path))


def calibrated_scores(db: Path | None, calibration: str | None = None) -> list[dict]:
    from evaluator.calibrate import store as sql

    with _open_existing(db) as store:
        return sql.calibrated_rows(store, calibration)


__all__ = [
    "AgreementRequest", "CalibrateRequest", "ImportRequest", "ScoreSource", "ValidatedLabel", "calibrated_scores",
    "import_labels", "list_labels", "run_agreement", "run_calibration",
]
