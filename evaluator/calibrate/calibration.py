"""Calibration: map judge scores onto the human scale, judged only by held-out agreement.

Why isotonic regression per dimension (the default):
- the only assumption is the one we can defend: a higher judge score should never mean a lower
  expected human score. A judge that is harsh at the bottom and lenient at the top (a bent, not a
  shifted, scale) is corrected without choosing a curve;
- with a 1-5 judge it is a per-level lookup table in which adjacent levels are pooled when the data
  contradict monotonicity, so it cannot invent structure the labels do not show;
- it keeps ranking (ties aside), so it fixes bias and scale use, not discrimination; and its output
  is an expected human score on the human scale (fractional, rounded only for kappa/exact).

Ordinal (proportional-odds) regression (ordinal.py) on every judge dimension's score and, where the
judge file gives them, its level probabilities: a human score is an ordered category, and the model
uses every rater's label as a soft target. It needs more labels per level than a lookup table, so it is
one more candidate judged by held-out error, not the default.

Per-rater offsets: when the same raters label many items (and label the set the calibration is
applied to), each rater's shrunken mean residual is learned on the training folds and added for the
raters of an item. A calibration fitted on one dataset and applied to another labelled by the same
raters gains most from this (a lenient rater is lenient on both).

Multi-signal: a ridge regression on every judge dimension (not-observed imputed, with a missing
indicator) predicts each human dimension; it uses signals a single map cannot (a judge that mixes
dimensions up). Ridge because labels are few and judge dimensions correlate. It is compared with the
per-dimension map on the same folds and only chosen if it is better held out.

The data are arrays throughout (fitdata.py): a judge-score grid and integer-coded labels, so a
research-scale file (10^5 items x 10 dimensions x 3 raters) is fitted and applied without one
object per label.

Every choice is made by k-fold cross-validation: the method with the lowest held-out MAE wins, raw
scores included ("identity"), so a calibration that makes things worse is reported and not used.
Fitted parameters are plain JSON (thresholds, coefficients), applied here with numpy and checked
against scikit-learn's own predict in tests, so stored calibrations never depend on pickles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from evaluator.calibrate.agreement import MetricSet, metric_set
from evaluator.calibrate.fitdata import (
    CalibrationInput,
    Labels,
    ScoreGrid,
    human_frame_of,
    judge_frame_of,
    labels_fingerprint,
    prob_feature,
)
from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore, LinearParams, ScaleSpec
from evaluator.errors import BadInput

Method = Literal["identity", "isotonic", "multi_ridge", "ordinal"]
FILE_FORMAT = "evaluator.calibration"
FILE_VERSION = 1
OFFSET_SHRINK = 5.0  # a rater's offset is sum(residuals) / (n + OFFSET_SHRINK): few labels, small offset
MIN_RATER_LABELS = 5
DEFAULT_MIN_LABELS = 10
ABSOLUTE_MIN_LABELS = 4
_SIMPLER_FIRST: tuple[Method, ...] = ("identity", "isotonic", "multi_ridge", "ordinal")


class CalibrationSettings(BaseModel):
    """The knobs of a calibration fit; part of its id, so a changed setting is a new version."""

    folds: int = Field(5, ge=2, le=50)
    min_labels: int = Field(DEFAULT_MIN_LABELS, ge=ABSOLUTE_MIN_LABELS)
    seed: int = 0
    multi_signal: bool = True
    ordinal: bool = True
    rater_offsets: bool = True
    n_bootstrap: int = Field(500, ge=0)
    cv_group_by: str | None = Field(None, description="the column whose groups (e.g. source documents) are "
                                                      "held out whole by the cross-validation")


class IsotonicParams(BaseModel):
    """sklearn IsotonicRegression's X_thresholds_ / y_thresholds_; prediction is linear interpolation,
    clipped at the ends (out_of_bounds='clip')."""

    x: list[float]
    y: list[float]


class RidgeParams(LinearParams):
    """SimpleImputer(mean, indicator) -> StandardScaler -> RidgeCV, as numbers."""

    intercept: float
    alpha: float
    clip: tuple[float, float]


class CrossValidation(BaseModel):
    """Held-out agreement before and after a map, the evidence a map is chosen on."""

    folds: int
    n: int
    held_out: str = Field("transcript", description="the unit each fold holds out whole")
    before: MetricSet = Field(description="raw judge scores vs human, on the held-out items")
    after: MetricSet = Field(description="calibrated scores vs human, on the same held-out items")


class CalibrationMap(BaseModel):
    """One fitted judge-score -> human-score map for a dimension, with its held-out evidence."""

    dimension: str
    method: Method
    n: int
    params: dict | None = None
    cv: CrossValidation | None = None
    chosen: bool = False
    warning: str | None = None
    rater_offsets: dict[str, float] | None = Field(
        None, description="added for an item's raters (their mean) when they are known; chosen only if it "
                          "lowers held-out error")
    cv_with_offsets: CrossValidation | None = None


class DimensionCalibration(BaseModel):
    """A dimension's candidate maps and the one chosen, or why calibration was refused."""

    dimension: str
    n: int
    status: Literal["fitted", "refused"]
    reason: str | None = None
    chosen: Method = "identity"
    maps: list[CalibrationMap] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def map(self, method: Method) -> CalibrationMap | None:
        return next((m for m in self.maps if m.method == method), None)


class CalibrationResult(BaseModel):
    """The calibration document: versioned and self-contained, so it can be stored and applied later."""

    format: str = FILE_FORMAT
    format_version: int = FILE_VERSION
    id: str = Field(description="version: hash of judge identity, rubric versions, settings, labels and fit")
    judge: JudgeIdentity | None
    scale: ScaleSpec
    settings: CalibrationSettings
    n_transcripts: int
    dimensions: dict[str, DimensionCalibration]
    label_imports: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    scales: dict[str, ScaleSpec] = Field(default_factory=dict, description="per-dimension scales, where they differ")
    features: list[str] = Field(default_factory=list, description="judge dimensions used as features")
    prob_levels: dict[str, int] = Field(default_factory=dict, description="dimension -> number of level "
                                                                          "probabilities used as features")

    def scale_of(self, dim: str) -> ScaleSpec:
        return self.scales.get(dim, self.scale)


# -- the maps -------------------------------------------------------------------------------------
def fit_isotonic(x: np.ndarray, y: np.ndarray, scale: ScaleSpec) -> IsotonicParams:
    """Monotone judge -> human map, clipped to the scale: it never reorders the judge's ranking."""
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=scale.min, y_max=scale.max, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return IsotonicParams(x=model.X_thresholds_.tolist(), y=model.y_thresholds_.tolist())


def apply_isotonic(params: IsotonicParams, x: np.ndarray) -> np.ndarray:
    """Evaluate a stored isotonic map: linear interpolation between its thresholds, as sklearn does."""
    return np.interp(np.asarray(x, dtype=float), params.x, params.y)


def fit_multi(features: np.ndarray, y: np.ndarray, names: list[str], scale: ScaleSpec) -> RidgeParams:
    """Ridge on all judge dimensions (NaN = not observed / unscored), alpha by efficient LOO CV."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    imputer = SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True)
    pipe = make_pipeline(imputer, StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 16)))
    pipe.fit(np.asarray(features, dtype=float), np.asarray(y, dtype=float))
    scaler, ridge = pipe[1], pipe[2]
    indicator = imputer.indicator_.features_.tolist() if imputer.indicator_ is not None else []
    return RidgeParams(
        features=names, impute=np.nan_to_num(imputer.statistics_, nan=0.0).tolist(),
        indicator_columns=indicator, mean=scaler.mean_.tolist(), scale=scaler.scale_.tolist(),
        coef=ridge.coef_.tolist(), intercept=float(ridge.intercept_), alpha=float(ridge.alpha_),
        clip=(float(scale.min), float(scale.max)),
    )


def apply_multi(params: RidgeParams, features: np.ndarray) -> np.ndarray:
    """Evaluate a stored ridge map, with missing features imputed and flagged as in fitting."""
    x = np.atleast_2d(np.asarray(features, dtype=float))
    missing = np.isnan(x)
    filled = np.where(missing, np.asarray(params.impute)[None, :], x)
    if params.indicator_columns:
        filled = np.hstack([filled, missing[:, params.indicator_columns].astype(float)])
    z = (filled - np.asarray(params.mean)) / np.asarray(params.scale)
    return np.clip(z @ np.asarray(params.coef) + params.intercept, *params.clip)


def _vector(names: list[str], features: dict[str, float | None]) -> np.ndarray:
    return np.array([[np.nan if features.get(f) is None else features[f] for f in names]], dtype=float)


def apply_map(m: CalibrationMap, raw: float | None, all_raw: dict[str, float | None],
              raters: list[str] | None = None, scale: ScaleSpec | None = None) -> float | None:
    """A calibrated score for one judgment's dimension; None stays None (not observed stays so).

    `all_raw`: the transcript's features (feature_row); `raters`: who labelled the item, for the
    per-rater offsets (unknown raters count as average raters)."""
    from evaluator.calibrate.ordinal import OrdinalParams, predict_expected

    if raw is None:
        return None
    if m.method == "identity":
        value = float(raw)
    elif m.method == "isotonic":
        value = float(apply_isotonic(IsotonicParams.model_validate(m.params), np.array([raw]))[0])
    elif m.method == "ordinal":
        op = OrdinalParams.model_validate(m.params)
        value = float(predict_expected(op, _vector(op.features, all_raw))[0])
    else:
        params = RidgeParams.model_validate(m.params)
        value = float(apply_multi(params, _vector(params.features, all_raw))[0])
    if m.rater_offsets and raters:
        value += float(np.mean([m.rater_offsets.get(r, 0.0) for r in raters]))
        if scale is not None:
            value = min(max(value, scale.min), scale.max)
    return value


# -- fitting with cross-validation --------------------------------------------------------------------
def after_mae(cv: CrossValidation | None) -> float:
    """Held-out MAE after calibration; infinite when not measured, so an unmeasured map never wins."""
    return cv.after.mae if cv is not None and cv.after.mae is not None else float("inf")


@dataclass
class DimensionData:
    """One dimension's training data: the items (sorted ids) with a judge score and a scored human
    consensus, their raw scores `x`, consensus `y`, feature rows, scored labels (rater offsets, soft
    targets) and, when folds hold out groups, each item's group."""

    transcripts: np.ndarray
    x: np.ndarray
    y: np.ndarray
    features: np.ndarray
    labels: Labels | None = None
    groups: np.ndarray | None = None


def rater_offsets(pred: np.ndarray, labels: Labels) -> dict[str, float]:
    """Each rater's mean residual (label minus prediction), shrunk towards 0 and centred so the
    label-weighted mean offset is 0 (an item with unknown raters gets the plain prediction). Raters
    in order of their first label; residuals summed in label order."""
    residual = labels.score - np.asarray(pred, dtype=float)[labels.item]
    sums = np.bincount(labels.rater, weights=residual, minlength=len(labels.names))
    counts = labels.rater_counts()
    _, first = np.unique(labels.rater, return_index=True)
    order = labels.rater[np.sort(first)]
    raw = {labels.names[r]: sums[r] / (counts[r] + OFFSET_SHRINK) for r in order}
    total = int(counts.sum())
    centre = sum(raw[labels.names[r]] * int(counts[r]) for r in order) / total if total else 0.0
    return {name: float(v - centre) for name, v in raw.items()}


def _shift(labels: Labels, offsets: dict[str, float]) -> np.ndarray:
    """Each item's mean offset of its raters (unknown raters: 0; no raters: 0)."""
    per_rater = np.array([offsets.get(name, 0.0) for name in labels.names], dtype=float)
    return labels.item_means(per_rater[labels.rater] if len(labels.rater) else np.zeros(0))


def _with_offsets(pred: np.ndarray, labels: Labels, offsets: dict[str, float], scale: ScaleSpec) -> np.ndarray:
    return np.clip(pred + _shift(labels, offsets), scale.min, scale.max)


def raters_recur(labels: Labels) -> bool:
    """True when at least two raters each labelled MIN_RATER_LABELS items: offsets are estimable."""
    return int((labels.rater_counts() >= MIN_RATER_LABELS).sum()) >= 2


class _Fitter:
    """Fit and predict each method on index subsets of one dimension's data."""

    def __init__(self, data: DimensionData, feature_names: list[str], scale: ScaleSpec):
        from evaluator.calibrate.ordinal import soft_targets_grouped

        self.x, self.y, self.f = data.x, data.y, data.features
        self.names = feature_names
        self.scale = scale
        labels = data.labels
        self.targets = soft_targets_grouped(labels.score, labels.counts, scale) if labels is not None \
            else soft_targets_grouped(data.y, np.ones(len(data.y), dtype=np.int64), scale)

    def fit(self, method: Method, idx: np.ndarray):
        from evaluator.calibrate.ordinal import fit_ordinal

        if method == "identity":
            return None
        if method == "isotonic":
            return fit_isotonic(self.x[idx], self.y[idx], self.scale)
        if method == "multi_ridge":
            return fit_multi(self.f[idx], self.y[idx], self.names, self.scale)
        return fit_ordinal(self.f[idx], self.targets[idx], self.names, self.scale)

    def predict(self, method: Method, params, idx: np.ndarray) -> np.ndarray:
        from evaluator.calibrate.ordinal import predict_expected

        if method == "identity":
            return self.x[idx].copy()
        if method == "isotonic":
            return apply_isotonic(params, self.x[idx])
        if method == "multi_ridge":
            return apply_multi(params, self.f[idx])
        return predict_expected(params, self.f[idx])


def _cross_validate(data: DimensionData, feature_names: list[str], scale: ScaleSpec, settings: CalibrationSettings,
                    methods: list[Method], offsets: bool) -> tuple[dict[Method, np.ndarray], dict[Method, np.ndarray]]:
    """Held-out predictions of each method (and with per-rater offsets learned on the training folds),
    every item predicted by a model that never saw it or its labels."""
    fitter = _Fitter(data, feature_names, scale)
    n = len(data.x)
    preds: dict[Method, np.ndarray] = {m: np.empty(n) for m in methods}
    with_off: dict[Method, np.ndarray] = {m: np.empty(n) for m in methods} if offsets else {}
    for train, test in _folds(data, settings):
        for method in methods:
            params = fitter.fit(method, train)
            preds[method][test] = fitter.predict(method, params, test)
            if offsets:
                assert data.labels is not None
                off = rater_offsets(fitter.predict(method, params, train), data.labels.take(train))
                with_off[method][test] = _with_offsets(preds[method][test], data.labels.take(test), off, scale)
    return preds, with_off


def _folds(data: DimensionData, settings: CalibrationSettings):
    """(train, test) index pairs: k-fold over transcripts, or over groups (every transcript of a
    group, e.g. a source document, held out together: a map is then judged on documents it never
    saw, as it will be used)."""
    from sklearn.model_selection import GroupKFold, KFold

    n = len(data.x)
    if data.groups is not None:
        k = min(settings.folds, len(set(data.groups)))
        return GroupKFold(n_splits=k, shuffle=True, random_state=settings.seed).split(data.x, groups=data.groups)
    return KFold(n_splits=min(settings.folds, n), shuffle=True, random_state=settings.seed).split(data.x)


def _held_out(data: DimensionData, settings: CalibrationSettings) -> tuple[int, str]:
    if data.groups is not None:
        return min(settings.folds, len(set(data.groups))), f"group ({settings.cv_group_by})"
    return min(settings.folds, len(data.x)), "transcript"


def calibrate_dimension(dim: str, data: DimensionData, feature_names: list[str], scale: ScaleSpec,
                        settings: CalibrationSettings) -> DimensionCalibration:
    """Fit every candidate map for one dimension; choose by held-out MAE (ties: the simpler)."""
    n = len(data.x)
    if n < settings.min_labels:
        return DimensionCalibration(
            dimension=dim, n=n, status="refused",
            reason=f"{n} labelled transcript(s) with a judge score; need at least {settings.min_labels} "
                   f"(--min-labels) to fit and cross-validate a calibration")
    if data.groups is not None and len(set(data.groups)) < 2:
        return DimensionCalibration(
            dimension=dim, n=n, status="refused",
            reason=f"every labelled transcript is in one {settings.cv_group_by} group: cross-validation by group "
                   "needs at least 2")
    methods: list[Method] = ["identity", "isotonic"]
    if len(feature_names) > 1:
        methods.append("multi_ridge")
    if settings.ordinal:
        methods.append("ordinal")
    offsets = settings.rater_offsets and data.labels is not None and raters_recur(data.labels)
    preds, with_off = _cross_validate(data, feature_names, scale, settings, methods, offsets)
    k, held_out = _held_out(data, settings)
    y = np.array(data.y)
    before = metric_set(preds["identity"], y, data.transcripts, scale, settings.n_bootstrap, settings.seed)
    fitter = _Fitter(data, feature_names, scale)
    everything = np.arange(n)
    maps: list[CalibrationMap] = []
    for method in methods:
        after = metric_set(preds[method], y, data.transcripts, scale, settings.n_bootstrap, settings.seed)
        fitted = fitter.fit(method, everything)
        m = CalibrationMap(dimension=dim, method=method, n=n,
                           params=None if fitted is None else fitted.model_dump(),
                           cv=CrossValidation(folds=k, n=n, held_out=held_out, before=before, after=after))
        if offsets:
            m.cv_with_offsets = CrossValidation(folds=k, n=n, held_out=held_out, before=before, after=metric_set(
                with_off[method], y, data.transcripts, scale, settings.n_bootstrap, settings.seed))
            assert data.labels is not None
            m.rater_offsets = rater_offsets(fitter.predict(method, fitted, everything), data.labels)
        maps.append(m)

    def held_out_mae(m: CalibrationMap, use_offsets: bool) -> float:
        return round(after_mae(m.cv_with_offsets if use_offsets else m.cv), 9)

    candidates = [(held_out_mae(m, off), off, _SIMPLER_FIRST.index(m.method), m)
                  for m in maps for off in ((False, True) if offsets else (False,))]
    _, use_offsets, _, best = min(candidates, key=lambda c: c[:3])  # lowest held-out MAE; ties: simpler
    best.chosen = True
    for m in maps:  # offsets are kept (and applied) only where they won held out
        if not (m is best and use_offsets):
            m.rater_offsets = None
    warnings: list[str] = []
    iso = next(m for m in maps if m.method == "isotonic")
    raw_mae = before.mae if before.mae is not None else float("inf")
    if after_mae(iso.cv) > raw_mae + 1e-9:
        iso.warning = (f"calibration makes held-out agreement worse: MAE {raw_mae:.2f} -> {after_mae(iso.cv):.2f}"
                       f"; raw scores are kept for {dim}" if best.method == "identity" else
                       f"isotonic map is worse held out (MAE {raw_mae:.2f} -> {after_mae(iso.cv):.2f})")
        warnings.append(f"{dim}: {iso.warning}")
    for m in maps:
        if m.method in ("multi_ridge", "ordinal") and after_mae(m.cv) > raw_mae + 1e-9 and best.method == "identity":
            m.warning = (f"{m.method} calibration makes held-out agreement worse: MAE {raw_mae:.2f} -> "
                         f"{after_mae(m.cv):.2f}")
    return DimensionCalibration(dimension=dim, n=n, status="fitted", chosen=best.method, maps=maps,
                                warnings=warnings)


def calibration_id(judge: JudgeIdentity | None, settings: CalibrationSettings, scale: ScaleSpec,
                   dims: dict[str, DimensionCalibration], labels_fingerprint: str) -> str:
    """A content hash: any change of rubric version, judge model or prompt, labels or fit changes it."""
    payload = {
        "judge": judge.model_dump(mode="json") if judge else None, "settings": settings.model_dump(mode="json"),
        "scale": scale.model_dump(), "labels": labels_fingerprint,
        "maps": {d: [(m.method, m.params, m.rater_offsets) for m in c.maps] for d, c in sorted(dims.items())},
    }
    return "cal-" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def fit_calibration(
    judge: list[JudgeScore], human: list[HumanLabel], scale: ScaleSpec, settings: CalibrationSettings, *,
    judge_identity: JudgeIdentity | None = None, dimension_order: list[str] | None = None,
    label_imports: list[str] | None = None, scales: dict[str, ScaleSpec] | None = None,
    groups: dict[str, str] | None = None,
) -> CalibrationResult:
    """fit_calibration_frames for records (the library API; files and the store go through frames)."""
    return fit_calibration_frames(judge_frame_of(judge), human_frame_of(human), scale, settings,
                                  judge_identity=judge_identity, dimension_order=dimension_order,
                                  label_imports=label_imports, scales=scales, groups=groups)


def _dimension_data(dim: str, data: CalibrationInput, names: list[str], prob_levels: dict[str, int],
                    groups: dict[str, str] | None) -> DimensionData:
    """The items with a judge score and a scored human consensus for `dim`, in id order."""
    grid, human = data.grid, data.human
    assert human is not None
    _, agreed, mean = human.consensus(dim, len(grid.items))
    x = grid.column(dim)
    items = np.flatnonzero(~np.isnan(x) & agreed)
    transcripts = grid.items.to_numpy(dtype=object)[items]
    return DimensionData(
        transcripts=transcripts, x=x[items], y=mean[items], features=grid.features(names, prob_levels, items),
        labels=human.labels(dim, items),
        groups=None if groups is None else np.array([groups.get(t, f"transcript {t}") for t in transcripts],
                                                    dtype=object))


def fit_calibration_frames(
    judge: pd.DataFrame, human: pd.DataFrame, scale: ScaleSpec, settings: CalibrationSettings, *,
    judge_identity: JudgeIdentity | None = None, dimension_order: list[str] | None = None,
    label_imports: list[str] | None = None, scales: dict[str, ScaleSpec] | None = None,
    groups: dict[str, str] | None = None,
) -> CalibrationResult:
    """Fit and cross-validate every dimension that has enough labels; refuse the others.

    `judge`, `human`: the columns of a judge / human score file (fitdata.py). `groups` (transcript ->
    group, with settings.cv_group_by naming the column): folds hold out whole groups. Raises BadInput
    when no dimension has enough labels, saying how many are needed.
    """
    data = CalibrationInput.build(judge, human)
    grid, labels = data.grid, data.human
    assert labels is not None
    dim_names = [d for d in dict.fromkeys((dimension_order or []) + sorted(grid.dims)) if d in grid.dims]
    prob_levels = {d: k for d, k in grid.prob_levels().items() if d in dim_names}
    dims = [d for d in dim_names if len(labels.dimension_rows(d))]
    if not dims:
        raise BadInput("no dimension has both judge scores and human labels for the same transcripts")
    scales = {d: s for d, s in (scales or {}).items() if d in dims}

    def names_for(dim: str) -> list[str]:
        own = [dim] + [prob_feature(dim, k) for k in range(2, prob_levels.get(dim, 0) + 1)]
        if not settings.multi_signal:
            return own
        return own + [f for d in dim_names if d != dim
                      for f in [d] + [prob_feature(d, k) for k in range(2, prob_levels.get(d, 0) + 1)]]

    results = {}
    labelled = np.zeros(len(grid.items), dtype=bool)
    for d in dims:
        names = names_for(d)
        labelled |= labels.consensus(d, len(grid.items))[0]
        results[d] = calibrate_dimension(d, _dimension_data(d, data, names, prob_levels, groups), names,
                                         scales.get(d, scale), settings)
    fitted = [r for r in results.values() if r.status == "fitted"]
    if not fitted:
        counts = ", ".join(f"{r.dimension}: {r.n}" for r in results.values())
        raise BadInput(f"too few labels to calibrate: need at least {settings.min_labels} labelled transcripts "
                       f"with a judge score per dimension (have {counts}); label more transcripts, "
                       "or lower --min-labels knowing the held-out estimate will be unreliable")
    warnings = [w for r in results.values() for w in r.warnings]
    warnings += [f"{r.dimension}: not calibrated: {r.reason}" for r in results.values() if r.status == "refused"]
    fingerprint = labels_fingerprint(human)
    return CalibrationResult(
        id=calibration_id(judge_identity, settings, scale, results, fingerprint), judge=judge_identity, scale=scale,
        settings=settings, n_transcripts=int((grid.present.any(axis=1) & labelled).sum()),
        dimensions=results, label_imports=label_imports or [], warnings=warnings, scales=scales,
        features=dim_names, prob_levels=prob_levels,
    )


def calibrate_judgment(result_maps: dict[str, CalibrationMap], raw: dict[str, float | None]) -> dict[str, float | None]:
    """Calibrated scores for one judgment: dimension -> value (raw where no map applies)."""
    out: dict[str, float | None] = {}
    for dim, value in raw.items():
        m = result_maps.get(dim)
        out[dim] = apply_map(m, value, raw) if m is not None else value
    return out


# -- applying a calibration to other data -----------------------------------------------------------------
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
            shift[order] = _shift(raters, m.rater_offsets)
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


def write_calibration_file(result: CalibrationResult, path) -> None:
    """The calibration as versioned JSON (format, format_version, id, maps as plain numbers)."""
    from pathlib import Path

    Path(path).write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")


def read_calibration_document(text: str, where: str) -> CalibrationResult:
    """Parse a calibration document; bad JSON or a wrong format is a clear BadInput."""
    from pydantic import ValidationError

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{where}: not a calibration file (not JSON: {e.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise BadInput(f"{where}: not a calibration file (no \"format\": \"{FILE_FORMAT}\")")
    if doc.get("format_version") != FILE_VERSION:
        raise BadInput(f"{where}: calibration file version {doc.get('format_version')}; this evaluator reads "
                       f"version {FILE_VERSION}")
    try:
        return CalibrationResult.model_validate(doc)
    except ValidationError as e:
        raise BadInput(f"{where}: invalid calibration file: {e.errors()[0]['msg']} at "
                       f"{'.'.join(map(str, e.errors()[0]['loc']))}") from None
