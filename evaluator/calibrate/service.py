"""The library functions the CLI calls, one per command: they gather records (store or plain files)
and hand them to the pure statistics in agreement.py and calibration.py."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from evaluator.calibrate.agreement import DEFAULT_BOOTSTRAP, AgreementReport, agreement_frames
from evaluator.calibrate.applying import check_rubric_versions
from evaluator.calibrate.calibration import (
    CalibrationResult,
    CalibrationSettings,
    calibrate_frame,
    fit_calibration_frames,
)
from evaluator.calibrate.columns import read_columns
from evaluator.calibrate.fitdata import judge_frame_of
from evaluator.calibrate.labels import (
    TranscriptMatch,
    ValidatedLabel,
    problems_error,
    read_score_file,
    validate_rows,
)
from evaluator.calibrate.pairing import Pairing, human_frame
from evaluator.calibrate.records import JudgeIdentity, ScaleSpec
from evaluator.calibrate.store import ImportRecord, JudgeSelection
from evaluator.errors import BadInput

_HEX = re.compile(r"[0-9a-f]{8,64}")
_JUDGMENT_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{1,12}){0,4}")  # a judgment id (uuid), or a prefix of one
# A cohort, `evaluate FILE` or a report build holds the store for short sessions only: wait for one
# to end (as `evaluate FILE`, `runs` and `show` do) rather than fail at once with "in use".
STORE_WAIT_SECONDS = 5.0


# -- labels import ----------------------------------------------------------------------------------------
class ImportRequest(BaseModel):
    """What `evaluate labels import` was asked: the file, the store and where transcripts live."""

    file: Path
    db: Path | None = None
    rubric: str | None = Field(None, description="rubric id or path; default: chosen per transcript as the judge does")
    transcripts_dirs: list[Path] = Field(default_factory=list)


class ImportSummary(BaseModel):
    record: ImportRecord
    already_imported: bool = False
    rubrics: list[str] = Field(default_factory=list, description="the rubric ids the labels were checked against")
    earlier: ImportRecord | None = Field(None, description="an import of the same file under other rubrics")
    earlier_rubrics: list[str] = Field(default_factory=list)
    transcripts: int = 0
    scored: int = 0
    not_observed: int = 0
    missing: int = 0
    db_path: str


def _search_dirs(request: ImportRequest) -> list[Path]:
    label_dir = request.file.parent
    dirs = [*request.transcripts_dirs, Path.cwd(), Path.cwd() / "transcripts",
            label_dir, label_dir.parent / "transcripts"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _transcript_resolver(store, request: ImportRequest):
    """Ref -> TranscriptMatch or an error message. A hex string is a stored content hash (prefix), else
    a judgment id (prefix: the `judgment_id` column of `evaluate export`, its transcript); otherwise a
    file on disk (path, or name in a search folder) wins over a stored transcript's name, since the file
    is what the rater read now."""
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
                    return (f"transcript hash prefix '{ref}' is ambiguous ({len(found)} stored transcripts); "
                            "give more characters")
            if _JUDGMENT_ID.fullmatch(ref.lower()):
                found = sql.stored_transcripts_by_judgment(store, ref)
                if len(found) == 1:
                    return match(found[0].hash, found[0].source, found[0].exercise)
                if len(found) > 1:
                    return (f"judgment id prefix '{ref}' is ambiguous (judgments of {len(found)} transcripts); "
                            "give more characters")
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
        return (f"unknown transcript '{ref}': not a stored transcript's hash or file name, nor a judgment id, and "
                f"no such file (looked in {looked}; add --transcripts DIR)")

    return resolve


def import_labels(request: ImportRequest) -> ImportSummary:
    """Validate the whole file, then store every label in one transaction, or nothing."""
    from evaluator.calibrate import store as sql
    from evaluator.rubrics import select_rubric
    from evaluator.store.db import default_db_path, open_store

    if request.rubric is not None:
        # a typo in --rubric is one error, up front: not one per transcript of the file
        select_rubric(request.rubric, None)
    parsed = read_score_file(request.file, need_rater=True)
    with open_store(request.db or default_db_path(), wait_seconds=STORE_WAIT_SECONDS) as store:
        labels, problems = validate_rows(parsed.rows, _transcript_resolver(store, request))
        if problems:
            raise problems_error(str(request.file), problems)
        # Labels are checked and recorded against a rubric (its scale, its dimensions): the same file is
        # "already imported" only when an earlier import recorded it against the same rubric versions;
        # under another --rubric (or once the rubric changed) it is imported again, against that one.
        against = {(lb.transcript, lb.rubric_id, lb.rubric_version) for lb in labels}
        rubrics = sorted({str(lb.rubric_id) for lb in labels})
        earlier = sql.imports_by_sha(store, parsed.sha256)
        same = next((e for e in earlier if sql.import_rubrics(store, e.id) == against), None)
        if same is not None:
            return ImportSummary(record=same, already_imported=True, rubrics=rubrics, db_path=str(store.path))
        record = sql.insert_labels(store, parsed, labels)
        before = earlier[0] if earlier else None
        return ImportSummary(
            record=record, transcripts=len({lb.transcript for lb in labels}),
            scored=sum(lb.status == "scored" for lb in labels),
            not_observed=sum(lb.status == "not_observed" for lb in labels),
            missing=sum(lb.status == "missing" for lb in labels), db_path=str(store.path), rubrics=rubrics,
            earlier=before,
            earlier_rubrics=sorted({r for _, r, _ in sql.import_rubrics(store, before.id)}) if before else [])


def list_labels(db: Path | None) -> list[dict]:
    """The label imports in a store, for `evaluate labels list`."""
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
    scales: list[str] = Field(default_factory=list, description="'MIN-MAX' or 'DIMENSION=MIN-MAX' entries")
    na: list[str] = Field(default_factory=list,
                          description="'VALUE' or 'DIMENSION=VALUE' entries: scores meaning 'not applicable'")
    raters: list[str] = Field(default_factory=list)
    group_by: str | None = Field(None, description="a column of the judge/human files")
    system_col: str | None = Field(None, description="the column naming each item's system")


class Gathered(BaseModel):
    """The scores to compare, as columns: `judge` (transcript, dimension, status, score and, where
    given, level probabilities p1..pK) and `human` (the same plus rater)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    judge: pd.DataFrame
    human: pd.DataFrame
    scale: ScaleSpec
    scales: dict[str, ScaleSpec] = Field(default_factory=dict)
    identity: JudgeIdentity | None = None
    dimension_order: list[str] = Field(default_factory=list)
    label_imports: list[str] = Field(default_factory=list)
    meta: pd.DataFrame | None = Field(None, description="one row per transcript: the named extra columns")
    notes: list[str] = Field(default_factory=list)
    scale_inferred: bool = False
    versions: str | None = Field(None, description="the rubric version(s) of the store's judge scores, as the "
                                                   "output names them (ScoreSet.label); None for plain files")

    def column_of(self, column: str | None) -> dict[str, str] | None:
        """Transcript -> value of a named extra column (--group-by, --system-col)."""
        if not column or self.meta is None or column not in self.meta:
            return None
        return dict(zip(self.meta["transcript"].astype(str), self.meta[column].astype(str), strict=True))


def _open_existing(db: Path | None):
    from evaluator.store.db import default_db_path, open_store

    path = Path(db or default_db_path())
    if not path.exists():
        raise BadInput(f"no database at {path}: judge some transcripts and import labels first (or pass --db)")
    return open_store(path, wait_seconds=STORE_WAIT_SECONDS)


def parse_scale(text: str) -> ScaleSpec:
    m = re.fullmatch(r"\s*(-?\d+)\s*[-:]\s*(-?\d+)\s*", text)
    if not m or int(m.group(2)) <= int(m.group(1)):
        raise BadInput(f"--scale must look like 1-5 (min-max, min < max) or DIMENSION=1-3, got {text!r}")
    return ScaleSpec(min=int(m.group(1)), max=int(m.group(2)))


def parse_scales(entries: list[str]) -> tuple[ScaleSpec | None, dict[str, ScaleSpec]]:
    """'1-5' sets the default scale; 'fluency=1-3' one dimension's (repeatable)."""
    default: ScaleSpec | None = None
    per_dim: dict[str, ScaleSpec] = {}
    for entry in entries:
        if "=" in entry:
            dim, _, text = entry.partition("=")
            if not dim.strip():
                raise BadInput(f"--scale {entry!r}: no dimension before '='")
            per_dim[dim.strip()] = parse_scale(text)
        elif default is not None:
            raise BadInput(f"--scale given twice without a dimension ({default.min}-{default.max} and {entry})")
        else:
            default = parse_scale(entry)
    return default, per_dim


class NaCodes(BaseModel):
    """Score values that mean 'not applicable': for every dimension, and per dimension."""

    everywhere: tuple[float, ...] = ()
    by_dimension: dict[str, tuple[float, ...]] = Field(default_factory=dict)

    def of(self, dimension: str) -> tuple[float, ...]:
        return self.everywhere + self.by_dimension.get(dimension, ())


def parse_na(entries: list[str], default: ScaleSpec | None, per_dim: dict[str, ScaleSpec]) -> NaCodes:
    """'0' for every dimension, 'engaging=0' for one (repeatable). A code that is also a level of a
    scale the user gave is refused: it would silently turn real scores (the zeros of a 0-1
    criterion) into 'not applicable'."""
    codes = NaCodes()
    for entry in entries:
        dim, _, text = entry.rpartition("=") if "=" in entry else ("", "", entry)
        try:
            value = float(text)
        except ValueError:
            raise BadInput(f"--na must be a number (e.g. 0) or DIMENSION=NUMBER, got {entry!r}") from None
        if "=" in entry and not dim.strip():
            raise BadInput(f"--na {entry!r}: no dimension before '='")
        if dim.strip():
            codes.by_dimension[dim.strip()] = codes.by_dimension.get(dim.strip(), ()) + (value,)
        else:
            codes.everywhere += (value,)
    for value in codes.everywhere:
        clash = sorted(d for d, sc in per_dim.items() if sc.min <= value <= sc.max)
        if default is not None and default.min <= value <= default.max:
            raise BadInput(f"--na {value:g} is also a score of the scale {default.min}-{default.max} given with "
                           "--scale: every such score would be read as 'not applicable'")
        if clash:
            elsewhere = [d for d in per_dim if d not in clash]
            hint = " ".join(f"--na {d}={value:g}" for d in elsewhere) or f"--na DIMENSION={value:g}"
            raise BadInput(f"--na {value:g} would also turn the real score {value:g} of "
                           + ", ".join(f"{d} (scale {per_dim[d].min}-{per_dim[d].max})" for d in clash)
                           + f" into 'not applicable'; give the code for the dimensions where it means that: {hint}")
    for dim, values in codes.by_dimension.items():
        sc = per_dim.get(dim, default)
        for value in values:
            if sc is not None and sc.min <= value <= sc.max:
                raise BadInput(f"--na {dim}={value:g} is a score of {dim}'s scale {sc.min}-{sc.max}")
    return codes


def _infer_scale(values: np.ndarray, what: str, notes: list[str]) -> ScaleSpec:
    if not len(values):
        raise BadInput("no numeric scores in either file")
    lo, hi = math.floor(float(np.min(values))), math.ceil(float(np.max(values)))
    if lo == 0:
        notes.append(f"the inferred scale of {what} starts at 0 ({lo}-{max(hi, lo + 1)}): if 0 means 'not applicable' "
                     "pass --na 0, or --na DIMENSION=0 where it means that (it is then kept apart, as 'not "
                     "observed'); if 0 is a real score, pass --scale 0-N (or DIMENSION=0-N) to say so and silence this")
    return ScaleSpec(min=lo, max=max(hi, lo + 1))


def _require_shared_transcripts(judge: pd.DataFrame, human: pd.DataFrame, judge_file: Path,
                                human_file: Path) -> None:
    """Two files that name their transcripts differently (a hash in one, a file name in the other) share
    no item: every statistic would be empty. Say so instead of printing a table of n = 0."""
    judged = set(map(str, judge["transcript"].cat.remove_unused_categories().cat.categories))
    labelled = set(map(str, human["transcript"].cat.remove_unused_categories().cat.categories))
    if judged & labelled:
        return

    def sample(ids: set[str]) -> str:
        return ", ".join(repr(i) for i in sorted(ids)[:3]) + (", ..." if len(ids) > 3 else "")

    raise BadInput(f"{judge_file} and {human_file} share no transcript id, so there is nothing to compare "
                   f"(judge file: {sample(judged)}; human file: {sample(labelled)}); both files must name "
                   "each transcript the same way")


def _check_scales(cols, kind: str, default: ScaleSpec, per_dim: dict[str, ScaleSpec]) -> None:
    """Every score within its dimension's scale, or BadInput naming each one outside by line."""
    from evaluator.calibrate.labels import Problem

    f = cols.frame
    dims = f["dimension"].cat.categories
    lo = np.array([per_dim.get(d, default).min for d in f["dimension"].cat.categories], dtype=float)
    hi = np.array([per_dim.get(d, default).max for d in f["dimension"].cat.categories], dtype=float)
    codes = np.asarray(f["dimension"].cat.codes)
    score = f["score"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~np.isnan(score) & ((score < lo[codes]) | (score > hi[codes])))
    if len(bad):
        lines = cols.lines(bad)
        problems = [Problem(line=int(ln), message=f"{dims[codes[i]]}: score {score[i]:g} is outside the scale "
                                                  f"{lo[codes[i]]:g}-{hi[codes[i]]:g}")
                    for i, ln in zip(bad, lines, strict=True)]
        raise problems_error(cols.path, problems, f"nothing was read (the {kind} file; --scale, --na)")


def _merge_meta(judge: pd.DataFrame, human: pd.DataFrame, columns: list[str]) -> pd.DataFrame | None:
    """One row per transcript of either file; a transcript in another group in the other file is an error."""
    if not columns:
        return None
    both = human.merge(judge, on="transcript", how="inner", suffixes=("_human", "_judge"))  # human file order
    differ = np.column_stack([(both[f"{c}_judge"] != both[f"{c}_human"]).to_numpy(bool) for c in columns])
    if differ.any():
        i = int(np.flatnonzero(differ.any(axis=1))[0])
        col = columns[int(np.flatnonzero(differ[i])[0])]
        row = both.iloc[i]
        raise BadInput(f"{row['transcript']}: column '{col}' is '{row[f'{col}_judge']}' in the judge file "
                       f"but '{row[f'{col}_human']}' in the human file")
    merged = pd.concat([judge, human]).drop_duplicates("transcript")
    for col in columns:
        if col not in merged or merged[col].isna().all():
            raise BadInput(f"no column '{col}' in either file (--group-by / --system-col name a column)")
    return merged.reset_index(drop=True)


def _read_pair(judge_file: Path, human_file: Path | None, na: NaCodes, meta_cols: frozenset[str] = frozenset()):

    jf = read_columns(judge_file, kind="judge", na=na.everywhere, na_by_dimension=na.by_dimension,
                      meta_columns=meta_cols)
    hf = None if human_file is None else read_columns(human_file, kind="human", na=na.everywhere,
                                                      na_by_dimension=na.by_dimension, meta_columns=meta_cols)
    return jf, hf


def _gather_files(src: ScoreSource) -> Gathered:
    from evaluator.calibrate.columns import distinct
    if not (src.judge_file and src.human_file):
        raise BadInput("--judge FILE and --human FILE go together: give both, or neither to use the store")
    default, per_dim = parse_scales(([src.scale] if src.scale else []) + list(src.scales))
    na = parse_na(src.na, default, per_dim)
    meta_cols = frozenset(c for c in (src.group_by, src.system_col) if c)
    jf, hf = _read_pair(src.judge_file, src.human_file, na, meta_cols)
    assert hf is not None
    _require_shared_transcripts(jf.frame, hf.frame, src.judge_file, src.human_file)
    notes: list[str] = []
    inferred = default is None
    if default is None:
        values = np.concatenate([f.frame["score"].to_numpy(float)[~f.frame["dimension"].isin(list(per_dim)).to_numpy()]
                                 for f in (jf, hf)])
        values = values[~np.isnan(values)]
        default = _infer_scale(values, "the scores", notes) if len(values) else ScaleSpec(min=1, max=5)
    for kind, cols in (("judge", jf), ("human", hf)):
        _check_scales(cols, kind, default, per_dim)
    present = set(distinct(jf.frame["dimension"])) | set(distinct(hf.frame["dimension"]))
    for option, named in (("--scale", per_dim), ("--na", na.by_dimension)):
        unknown = sorted(set(named) - present)
        if unknown:
            raise BadInput(f"{option} names dimension(s) {', '.join(unknown)} that neither file has "
                           f"(they have: {', '.join(sorted(present))})")
    meta = _merge_meta(jf.meta, hf.meta, sorted(meta_cols))
    human = hf.frame
    if src.raters:
        human = human[human["rater"].isin(src.raters)].reset_index(drop=True)
    return Gathered(judge=jf.frame, human=human, scale=default, scales=per_dim, meta=meta, notes=notes,
                    dimension_order=distinct(jf.frame["dimension"]),
                    scale_inferred=inferred)


def _gather_store(store, src: ScoreSource) -> list[Gathered]:
    """The store's labels against the judge's scores, one Gathered per rubric version (or one pooled
    over them when the selection asks to pool)."""
    from evaluator.calibrate import store as sql
    from evaluator.rubrics import Rubric

    if src.group_by or src.system_col:
        raise BadInput("--group-by and --system-col read a column of plain files: use them with --judge/--human")
    human, imports = sql.current_labels(store, src.raters or None)
    if not human:
        who = f" from rater(s) {', '.join(src.raters)}" if src.raters else ""
        raise BadInput(f"{store.path}: no human labels{who}; import some with `evaluate labels import FILE`")
    labels = human_frame(human)
    out = []
    for found in sql.judge_score_sets(store, src.selection):
        rubrics = [Rubric.model_validate(d) for d in found.definitions]
        scales = {(r.scale.min, r.scale.max) for r in rubrics}
        if len(scales) > 1:
            raise BadInput(f"the selected judgments use rubrics with different scales ({sorted(scales)}); "
                           "choose one rubric with --rubric")
        lo, hi = scales.pop() if scales else (1, 5)
        order = list(dict.fromkeys(d.id for r in rubrics for d in r.dimensions))
        out.append(Gathered(judge=judge_frame_of(found.scores), human=labels, scale=ScaleSpec(min=lo, max=hi),
                            identity=found.identity, dimension_order=order, label_imports=imports,
                            versions=found.label))
    return out


def gather(src: ScoreSource) -> list[Gathered]:
    """The scores to compare: one set for plain files; from the store, one per rubric version."""
    if src.judge_file or src.human_file:
        return [_gather_files(src)]
    with _open_existing(src.db) as store:
        return _gather_store(store, src)


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
    with _open_existing(db) as store:
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
    outcome = AgreementOutcome(reports=[_agreement_of(g, request, calibration) for g in sets])
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

    sets = _gather_store(store, src)
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
        g = _gather_files(src)
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
        with _open_existing(src.db) as store:
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

    with _open_existing(db) as store:
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
    jf, hf = _read_pair(request.judge_file, request.human_file, na)
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
    "AgreementOutcome", "AgreementRequest", "Applied",
    "ApplyRequest", "CalibrateRequest", "ImportRequest", "ScoreSource", "ValidatedLabel",
    "apply_to_file", "calibrated_scores", "import_labels", "list_labels", "run_agreement", "run_calibration",
]
