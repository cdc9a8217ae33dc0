"""Applying a calibration to judge scores it was not fitted on: `calibrated --judge`, `agreement
--calibration`, and the library's records API.

Why on the judge frame: a research-scale file (10^6 judge rows) is calibrated as one score grid
(fitdata.py) and one vectorised prediction per dimension, instead of a per-row feature dict and a
per-row model call (which also re-validated the map's parameters for every row). Each map is the one
calibration.py chose; per-rater offsets are the mean offset of the raters who labelled the item.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluator.calibrate.fitdata import CalibrationInput, ScoreGrid, human_frame_of, judge_frame_of
from evaluator.calibrate.maps import (
    CalibrationMap,
    CalibrationResult,
    IsotonicParams,
    RidgeParams,
    apply_isotonic,
    apply_multi,
)
from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec
from evaluator.errors import BadInput


def check_rubric_versions(result: CalibrationResult, versions: list[str] | None,
                          what: str = "these scores") -> str | None:
    """BadInput when a calibration is applied to scores made under a rubric version it was not fitted
    on: a map learned on one version's scores (its anchors, its scale in use) says nothing about
    another's, however alike their dimension names. `versions`: the rubric versions the scores were
    made under, None when unknown (a plain file). Returns a warning to show when either side's
    version is unknown, or when the calibration itself pooled several versions; None when they match."""
    fitted = list(result.judge.rubric_versions) if result.judge is not None else []
    if versions is None:
        if fitted:
            them = "it" if len(fitted) == 1 else "them"
            return (f"calibration {result.id} was fitted on judgments under rubric version(s) {', '.join(fitted)}; "
                    f"{what} carry no rubric version: apply it only to scores judged under {them}")
        return None
    if not fitted:
        return (f"calibration {result.id} was fitted on plain files of unknown rubric version; {what} were made "
                f"under {', '.join(versions)}: apply it only if those files were judged under the same rubric version")
    other = sorted(set(versions) - set(fitted))
    if other:
        raise BadInput(f"calibration {result.id} was fitted on judgments under rubric version(s) {', '.join(fitted)}; "
                       f"{what} were made under {', '.join(other)}. A calibration maps one rubric version's scores "
                       "and does not carry over to another (the anchors changed): fit one on these judgments "
                       f"(evaluate calibrate --rubric-version {other[0]})")
    if len(fitted) > 1:
        return (f"calibration {result.id} was fitted pooled over rubric versions {', '.join(fitted)}: its maps mix "
                "those versions' scales")
    return None


def _check(result: CalibrationResult, grid: ScoreGrid, scale: ScaleSpec,
           scales: dict[str, ScaleSpec] | None = None) -> None:
    scales = scales or {}
    present = set(grid.dims)
    fitted = {d for d, c in result.dimensions.items() if c.status == "fitted"}
    common = fitted & present
    if not common:
        raise BadInput(f"calibration {result.id} is for dimension(s) {', '.join(sorted(fitted))}; the judge scores "
                       f"have {', '.join(sorted(present))}: no dimension in common")
    problems = []
    for dim in sorted(common):
        theirs, ours = result.scale_of(dim), scales.get(dim, scale)
        if (theirs.min, theirs.max) != (ours.min, ours.max):
            problems.append(f"{dim}: calibration fitted on scale {theirs.min}-{theirs.max}, "
                            f"these scores are on {ours.min}-{ours.max}")
        m = result.dimensions[dim].map(result.dimensions[dim].chosen)
        if m is None:  # no map: nothing beyond the scale to check
            continue
        needed = (m.params or {}).get("features", [])
        missing = sorted({f.split("#p")[0] for f in needed} - present)
        if missing:
            problems.append(f"{dim}: its {m.method} map uses judge dimension(s) {', '.join(missing)}, "
                            "absent from these scores")
        for d, k in result.prob_levels.items():
            if any(f.startswith(f"{d}#p") for f in needed) and not (d in grid.n_probs and (grid.n_probs[d] == k).any()):
                problems.append(f"{dim}: its {m.method} map uses {d}'s {k} level probabilities (p1..p{k}), "
                                "absent from these scores")
    if problems:
        raise BadInput(f"calibration {result.id} does not fit these scores:\n  " + "\n  ".join(problems))


def check_applicable(result: CalibrationResult, judge: list[JudgeScore], scale: ScaleSpec,
                     scales: dict[str, ScaleSpec] | None = None) -> None:
    """BadInput when the calibration cannot be applied to these scores: no dimension in common, a
    feature dimension (or its level probabilities) missing, or a different scale."""
    _check(result, CalibrationInput.build(judge_frame_of(judge), None).grid, scale, scales)


def _predict(m: CalibrationMap, grid: ScoreGrid, items: np.ndarray, prob_levels: dict[str, int]) -> np.ndarray:
    """A map's calibrated scores for the judge's scores of `dim` on the grid rows `items`."""
    from evaluator.calibrate.ordinal import OrdinalParams, predict_expected

    raw = grid.column(m.dimension)[items]
    if m.method == "identity":
        return raw.copy()
    if m.method == "isotonic":
        return apply_isotonic(IsotonicParams.model_validate(m.params), raw)
    if m.method == "ordinal":
        op = OrdinalParams.model_validate(m.params)
        return predict_expected(op, grid.features(op.features, prob_levels, items))
    params = RidgeParams.model_validate(m.params)
    return apply_multi(params, grid.features(params.features, prob_levels, items))


def calibrate_frame(result: CalibrationResult, judge: pd.DataFrame, human: pd.DataFrame | None = None, *,
                    scale: ScaleSpec | None = None, scales: dict[str, ScaleSpec] | None = None,
                    check: bool = True) -> np.ndarray:
    """Calibrated score of every row of a judge frame (raw where its dimension has no fitted map or it
    is not scored). With human labels, per-rater offsets apply for each item's raters (those who
    said "scored"), clipped to the scale. `check`: BadInput first when the calibration does not fit
    the scores (check_applicable; `scale`, `scales`: the scores', default the calibration's)."""
    data = CalibrationInput.build(judge, human)
    grid = data.grid
    if check:
        _check(result, grid, scale or result.scale, result.scales if scales is None else scales)
    out = judge["score"].to_numpy(float).copy()
    for dim, c in result.dimensions.items():
        m = c.map(c.chosen) if c.status == "fitted" else None
        if m is None or dim not in grid.dims:
            continue
        rows = np.flatnonzero((grid.row_dim == grid.dims.index(dim)) & grid.row_scored)
        items = grid.row_item[rows]
        value = _predict(m, grid, items, result.prob_levels)
        if m.rater_offsets and data.human is not None:
            order = np.argsort(items, kind="stable")
            raters = data.human.labels(dim, items[order], for_fit=False)
            rated = np.empty(len(items), dtype=bool)
            rated[order] = raters.counts > 0
            shift = np.empty(len(items))
            shift[order] = raters.item_shift(m.rater_offsets)
            sc = result.scale_of(dim)
            value = np.where(rated, np.clip(value + shift, sc.min, sc.max), value)
        out[rows] = value
    return out


def apply_calibration(result: CalibrationResult, judge: list[JudgeScore],
                      human: list[HumanLabel] | None = None) -> list[JudgeScore]:
    """Calibrated copies of the judge scores (raw where a dimension has no fitted map), grouped by
    transcript in order of appearance. With human labels, per-rater offsets apply for each item's raters."""
    frame = judge_frame_of(judge)
    values = calibrate_frame(result, frame, None if human is None else human_frame_of(human), check=False)
    maps = {d for d, c in result.dimensions.items() if c.status == "fitted" and c.map(c.chosen) is not None}
    out = []
    for i in transcript_order(frame["transcript"]):
        j = judge[i]
        calibrated = j.dimension in maps and j.status == "scored" and j.score is not None
        out.append(j.model_copy(update={"score": float(values[i])}) if calibrated else j)
    return out


def transcript_order(transcripts: pd.Series) -> np.ndarray:
    """Row positions grouped by transcript in order of first appearance (file order within one)."""
    codes = np.asarray(pd.Categorical(transcripts).codes, dtype=np.int64)
    _, first = np.unique(codes, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return np.argsort(rank[codes] if len(codes) else codes, kind="stable")

