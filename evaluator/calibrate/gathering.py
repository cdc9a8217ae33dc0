"""Where the scores to compare come from: the store (judge runs against imported labels, one set per
rubric version) or two plain files (read, their scales and not-applicable codes checked). Agreement,
calibration and applying a calibration all start from the same gathered columns, so this lives in
one place beneath the services that use it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from evaluator.calibrate.columns import read_columns
from evaluator.calibrate.fitdata import judge_frame_of
from evaluator.calibrate.labels import problems_error
from evaluator.calibrate.pairing import human_frame
from evaluator.calibrate.records import JudgeIdentity, ScaleSpec
from evaluator.calibrate.store import JudgeSelection, LabelMatch
from evaluator.errors import BadInput

# A cohort, `evaluate FILE` or a report build holds the store for short sessions only: wait for one
# to end (as `evaluate FILE`, `runs` and `show` do) rather than fail at once with "in use".
STORE_WAIT_SECONDS = 5.0


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
    same_version_labels: bool = Field(False, description="from the store: pair only labels recorded against the "
                                                         "judgments' own rubric version")
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
    labels: LabelMatch | None = Field(None, description="from the store: how the labels' rubric versions match")

    def column_of(self, column: str | None) -> dict[str, str] | None:
        """Transcript -> value of a named extra column (--group-by, --system-col)."""
        if not column or self.meta is None or column not in self.meta:
            return None
        return dict(zip(self.meta["transcript"].astype(str), self.meta[column].astype(str), strict=True))


def open_existing(db: Path | None):
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


def read_pair(judge_file: Path, human_file: Path | None, na: NaCodes, meta_cols: frozenset[str] = frozenset()):

    jf = read_columns(judge_file, kind="judge", na=na.everywhere, na_by_dimension=na.by_dimension,
                      meta_columns=meta_cols)
    hf = None if human_file is None else read_columns(human_file, kind="human", na=na.everywhere,
                                                      na_by_dimension=na.by_dimension, meta_columns=meta_cols)
    return jf, hf


def gather_files(src: ScoreSource) -> Gathered:
    from evaluator.calibrate.columns import distinct
    if not (src.judge_file and src.human_file):
        raise BadInput("--judge FILE and --human FILE go together: give both, or neither to use the store")
    if src.same_version_labels:
        raise BadInput("--same-version-labels reads the rubric versions the store's labels were imported against: "
                       "plain files carry none (leave out --judge/--human, or the option)")
    default, per_dim = parse_scales(([src.scale] if src.scale else []) + list(src.scales))
    na = parse_na(src.na, default, per_dim)
    meta_cols = frozenset(c for c in (src.group_by, src.system_col) if c)
    jf, hf = read_pair(src.judge_file, src.human_file, na, meta_cols)
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


def gather_store(store, src: ScoreSource) -> list[Gathered]:
    """The store's labels against the judge's scores, one Gathered per rubric version (or one pooled
    over them when the selection asks to pool)."""
    from evaluator.calibrate import store as sql
    from evaluator.rubrics import Rubric

    if src.group_by or src.system_col:
        raise BadInput("--group-by and --system-col read a column of plain files: use them with --judge/--human")
    if not sql.has_labels(store, src.raters or None):
        who = f" from rater(s) {', '.join(src.raters)}" if src.raters else ""
        raise BadInput(f"{store.path}: no human labels{who}; import some with `evaluate labels import FILE`")
    out = []
    for found in sql.judge_score_sets(store, src.selection):
        match = sql.labels_for_judgments(store, sorted({s.judgment_id for s in found.scores if s.judgment_id}),
                                         src.raters or None, src.same_version_labels)
        rubrics = [Rubric.model_validate(d) for d in found.definitions]
        scales = {(r.scale.min, r.scale.max) for r in rubrics}
        if len(scales) > 1:
            raise BadInput(f"the selected judgments use rubrics with different scales ({sorted(scales)}); "
                           "choose one rubric with --rubric")
        lo, hi = scales.pop() if scales else (1, 5)
        order = list(dict.fromkeys(d.id for r in rubrics for d in r.dimensions))
        out.append(Gathered(judge=judge_frame_of(found.scores), human=human_frame(match.labels),
                            scale=ScaleSpec(min=lo, max=hi), identity=found.identity, dimension_order=order,
                            label_imports=match.imports, versions=found.label, labels=match,
                            notes=match.notes(found.label, sorted({r.id for r in rubrics}))))
    return out


def gather(src: ScoreSource) -> list[Gathered]:
    """The scores to compare: one set for plain files; from the store, one per rubric version."""
    if src.judge_file or src.human_file:
        return [gather_files(src)]
    with open_existing(src.db) as store:
        return gather_store(store, src)


__all__ = ["STORE_WAIT_SECONDS", "Gathered", "NaCodes", "ScoreSource", "gather", "parse_na", "parse_scales"]
