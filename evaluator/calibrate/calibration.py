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

Every choice is made by k-fold cross-validation: the method with the lowest held-out MAE wins, raw
scores included ("identity"), so a calibration that makes things worse is reported and not used.
Fitted parameters are plain JSON (thresholds, coefficients), applied here with numpy and checked
against scikit-learn's own predict in tests, so stored calibrations never depend on pickles.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from evaluator.calibrate.agreement import MetricSet, human_consensus, metric_set
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


def prob_feature(dim: str, level: int) -> str:
    """The feature name of a dimension's probability of its `level`-th scale level (1 = lowest)."""
    return f"{dim}#p{level}"


def feature_row(scores: dict[str, JudgeScore], prob_levels: dict[str, int]) -> dict[str, float | None]:
    """A transcript's features: each dimension's score (None unless scored) and, for dimensions fitted
    with level probabilities, p2..pK (p1 is implied by the others)."""
    row: dict[str, float | None] = {}
    for dim, j in scores.items():
        row[dim] = float(j.score) if j.status == "scored" and j.score is not None else None
    for dim, k in prob_levels.items():
        js = scores.get(dim)
        probs = js.probs if js is not None and js.probs is not None and len(js.probs) == k else None
        for level in range(2, k + 1):
            row[prob_feature(dim, level)] = probs[level - 1] if probs else None
    return row


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


class _Data(BaseModel):
    transcripts: list[str]
    x: list[float]
    y: list[float]
    features: list[list[float]]
    labels: list[dict[str, float]] = Field(default_factory=list, description="rater -> score, per transcript")
    groups: list[str] = Field(default_factory=list, description="the CV group of each transcript (when grouped)")


def _dimension_data(dim: str, judge: dict[str, dict[str, JudgeScore]], consensus, feature_names: list[str],
                    labels: dict[tuple[str, str], dict[str, float]] | None = None,
                    prob_levels: dict[str, int] | None = None, groups: dict[str, str] | None = None) -> _Data:
    ts, xs, ys, fs, ls = [], [], [], [], []
    for transcript in sorted(judge):
        j = judge[transcript].get(dim)
        h_status, h_score = consensus.get((transcript, dim), ("missing", None))
        if j is None or j.status != "scored" or j.score is None or h_status != "scored" or h_score is None:
            continue
        ts.append(transcript)
        xs.append(float(j.score))
        ys.append(float(h_score))
        row = feature_row(judge[transcript], prob_levels or {})
        fs.append([np.nan if (v := row.get(f)) is None else float(v) for f in feature_names])
        ls.append((labels or {}).get((transcript, dim), {}) or {"mean": float(h_score)})
    return _Data(transcripts=ts, x=xs, y=ys, features=fs, labels=ls,
                 groups=[groups.get(t, f"transcript {t}") for t in ts] if groups is not None else [])


def rater_offsets(pred: np.ndarray, labels: list[dict[str, float]]) -> dict[str, float]:
    """Each rater's mean residual (label minus prediction), shrunk towards 0 and centred so the
    label-weighted mean offset is 0 (an item with unknown raters gets the plain prediction)."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for p, lab in zip(pred, labels, strict=True):
        for r, v in lab.items():
            sums[r] += v - p
            counts[r] += 1
    raw = {r: sums[r] / (counts[r] + OFFSET_SHRINK) for r in sums}
    total = sum(counts.values())
    centre = sum(raw[r] * counts[r] for r in raw) / total if total else 0.0
    return {r: raw[r] - centre for r in raw}


def _with_offsets(pred: np.ndarray, labels: list[dict[str, float]], offsets: dict[str, float],
                  scale: ScaleSpec) -> np.ndarray:
    shift = np.array([np.mean([offsets.get(r, 0.0) for r in lab]) if lab else 0.0 for lab in labels])
    return np.clip(pred + shift, scale.min, scale.max)


def raters_recur(labels: list[dict[str, float]]) -> bool:
    """True when at least two raters each labelled MIN_RATER_LABELS items: offsets are estimable."""
    counts: dict[str, int] = defaultdict(int)
    for lab in labels:
        for r in lab:
            counts[r] += 1
    return sum(c >= MIN_RATER_LABELS for c in counts.values()) >= 2


class _Fitter:
    """Fit and predict each method on index subsets of one dimension's data."""

    def __init__(self, data: _Data, feature_names: list[str], scale: ScaleSpec):
        from evaluator.calibrate.ordinal import soft_targets

        self.x, self.y, self.f = np.array(data.x), np.array(data.y), np.array(data.features, dtype=float)
        self.names = feature_names
        self.scale = scale
        self.targets = soft_targets([list(lab.values()) for lab in data.labels], scale)

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


def _cross_validate(data: _Data, feature_names: list[str], scale: ScaleSpec, settings: CalibrationSettings,
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
                off = rater_offsets(fitter.predict(method, params, train), [data.labels[i] for i in train])
                with_off[method][test] = _with_offsets(preds[method][test], [data.labels[i] for i in test], off, scale)
    return preds, with_off


def _folds(data: _Data, settings: CalibrationSettings):
    """(train, test) index pairs: k-fold over transcripts, or over groups (every transcript of a
    group, e.g. a source document, held out together: a map is then judged on documents it never
    saw, as it will be used)."""
    from sklearn.model_selection import GroupKFold, KFold

    n = len(data.x)
    if data.groups:
        k = min(settings.folds, len(set(data.groups)))
        return GroupKFold(n_splits=k, shuffle=True, random_state=settings.seed).split(data.x, groups=data.groups)
    return KFold(n_splits=min(settings.folds, n), shuffle=True, random_state=settings.seed).split(data.x)


def _held_out(data: _Data, settings: CalibrationSettings) -> tuple[int, str]:
    if data.groups:
        return min(settings.folds, len(set(data.groups))), f"group ({settings.cv_group_by})"
    return min(settings.folds, len(data.x)), "transcript"


def calibrate_dimension(dim: str, data: _Data, feature_names: list[str], scale: ScaleSpec,
                        settings: CalibrationSettings) -> DimensionCalibration:
    """Fit every candidate map for one dimension; choose by held-out MAE (ties: the simpler)."""
    n = len(data.x)
    if n < settings.min_labels:
        return DimensionCalibration(
            dimension=dim, n=n, status="refused",
            reason=f"{n} labelled transcript(s) with a judge score; need at least {settings.min_labels} "
                   f"(--min-labels) to fit and cross-validate a calibration")
    if data.groups and len(set(data.groups)) < 2:
        return DimensionCalibration(
            dimension=dim, n=n, status="refused",
            reason=f"every labelled transcript is in one {settings.cv_group_by} group: cross-validation by group "
                   "needs at least 2")
    methods: list[Method] = ["identity", "isotonic"]
    if len(feature_names) > 1:
        methods.append("multi_ridge")
    if settings.ordinal:
        methods.append("ordinal")
    offsets = settings.rater_offsets and raters_recur(data.labels)
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


def _prob_levels(judge: list[JudgeScore]) -> dict[str, int]:
    """Dimension -> number of level probabilities the judge gives (one number per dimension)."""
    seen: dict[str, set[int]] = defaultdict(set)
    for j in judge:
        if j.probs is not None:
            seen[j.dimension].add(len(j.probs))
    bad = {d: sorted(k) for d, k in seen.items() if len(k) > 1}
    if bad:
        raise BadInput(f"level probabilities have different lengths within a dimension: {bad}")
    return {d: next(iter(k)) for d, k in seen.items()}


def fit_calibration(
    judge: list[JudgeScore], human: list[HumanLabel], scale: ScaleSpec, settings: CalibrationSettings, *,
    judge_identity: JudgeIdentity | None = None, dimension_order: list[str] | None = None,
    label_imports: list[str] | None = None, scales: dict[str, ScaleSpec] | None = None,
    groups: dict[str, str] | None = None,
) -> CalibrationResult:
    """Fit and cross-validate every dimension that has enough labels; refuse the others.

    `groups` (transcript -> group, with settings.cv_group_by naming the column): folds hold out whole
    groups. Raises BadInput when no dimension has enough labels, saying how many are needed.
    """
    consensus = human_consensus(human)
    labels: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for h in human:
        if h.status == "scored" and h.score is not None:
            labels[(h.transcript, h.dimension)][h.rater] = float(h.score)
    by_transcript: dict[str, dict[str, JudgeScore]] = defaultdict(dict)
    for j in judge:
        by_transcript[j.transcript][j.dimension] = j
    dim_names = list(dict.fromkeys((dimension_order or []) + sorted({j.dimension for j in judge})))
    dim_names = [f for f in dim_names if any(f in d for d in by_transcript.values())]
    prob_levels = {d: k for d, k in _prob_levels(judge).items() if d in dim_names}
    dims = [d for d in dim_names if any(k[1] == d for k in consensus)]
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
    for d in dims:
        names = names_for(d)
        data = _dimension_data(d, by_transcript, consensus, names, labels, prob_levels, groups)
        results[d] = calibrate_dimension(d, data, names, scales.get(d, scale), settings)
    fitted = [r for r in results.values() if r.status == "fitted"]
    if not fitted:
        counts = ", ".join(f"{r.dimension}: {r.n}" for r in results.values())
        raise BadInput(f"too few labels to calibrate: need at least {settings.min_labels} labelled transcripts "
                       f"with a judge score per dimension (have {counts}); label more transcripts, "
                       "or lower --min-labels knowing the held-out estimate will be unreliable")
    warnings = [w for r in results.values() for w in r.warnings]
    warnings += [f"{r.dimension}: not calibrated: {r.reason}" for r in results.values() if r.status == "refused"]
    fingerprint = hashlib.sha256(json.dumps(
        sorted((h.transcript, h.rater, h.dimension, h.status, h.score) for h in human), default=str
    ).encode()).hexdigest()
    return CalibrationResult(
        id=calibration_id(judge_identity, settings, scale, results, fingerprint), judge=judge_identity, scale=scale,
        settings=settings, n_transcripts=len({t for t in by_transcript if any((t, d) in consensus for d in dims)}),
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
def check_applicable(result: CalibrationResult, judge: list[JudgeScore], scale: ScaleSpec,
                     scales: dict[str, ScaleSpec] | None = None) -> None:
    """BadInput when the calibration cannot be applied to these scores: no dimension in common, a
    feature dimension (or its level probabilities) missing, or a different scale."""
    scales = scales or {}
    present = {j.dimension for j in judge}
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
            if any(f.startswith(f"{d}#p") for f in needed) and not any(
                    j.dimension == d and j.probs is not None and len(j.probs) == k for j in judge):
                problems.append(f"{dim}: its {m.method} map uses {d}'s {k} level probabilities (p1..p{k}), "
                                "absent from these scores")
    if problems:
        raise BadInput(f"calibration {result.id} does not fit these scores:\n  " + "\n  ".join(problems))


def apply_calibration(result: CalibrationResult, judge: list[JudgeScore],
                      human: list[HumanLabel] | None = None) -> list[JudgeScore]:
    """Calibrated copies of the judge scores (raw where a dimension has no fitted map). With human
    labels, per-rater offsets apply for each item's raters."""
    maps = {d: c.map(c.chosen) for d, c in result.dimensions.items() if c.status == "fitted"}
    raters: dict[tuple[str, str], list[str]] = defaultdict(list)
    for h in human or []:
        if h.status == "scored":
            raters[(h.transcript, h.dimension)].append(h.rater)
    by_transcript: dict[str, dict[str, JudgeScore]] = defaultdict(dict)
    for j in judge:
        by_transcript[j.transcript][j.dimension] = j
    out = []
    for transcript, scores in by_transcript.items():
        row = feature_row(scores, result.prob_levels)
        for dim, j in scores.items():
            m = maps.get(dim)
            if m is None or j.status != "scored" or j.score is None:
                out.append(j)
                continue
            value = apply_map(m, j.score, row, raters.get((transcript, dim)), result.scale_of(dim))
            out.append(j.model_copy(update={"score": value}))
    return out


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
