"""Calibration: map judge scores onto the human scale, judged only by held-out agreement.

Why isotonic regression per dimension (the default):
- the only assumption is the one we can defend: a higher judge score should never mean a lower
  expected human score. A judge that is harsh at the bottom and lenient at the top (a bent, not a
  shifted, scale) is corrected without choosing a curve;
- with a 1-5 judge it is a per-level lookup table in which adjacent levels are pooled when the data
  contradict monotonicity, so it cannot invent structure the labels do not show;
- it keeps ranking (ties aside), so it fixes bias and scale use, not discrimination; and its output
  is an expected human score on the human scale (fractional, rounded only for kappa/exact).
An ordinal logistic model would give a distribution per level, but needs more labels per level than
rubric calibration sets usually have, and scikit-learn has no ordinal model.

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
from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore, ScaleSpec
from evaluator.errors import BadInput

Method = Literal["identity", "isotonic", "multi_ridge"]
DEFAULT_MIN_LABELS = 10
ABSOLUTE_MIN_LABELS = 4
_SIMPLER_FIRST: tuple[Method, ...] = ("identity", "isotonic", "multi_ridge")


class CalibrationSettings(BaseModel):
    folds: int = Field(5, ge=2, le=50)
    min_labels: int = Field(DEFAULT_MIN_LABELS, ge=ABSOLUTE_MIN_LABELS)
    seed: int = 0
    multi_signal: bool = True
    n_bootstrap: int = Field(500, ge=0)


class IsotonicParams(BaseModel):
    """sklearn IsotonicRegression's X_thresholds_ / y_thresholds_; prediction is linear interpolation,
    clipped at the ends (out_of_bounds='clip')."""

    x: list[float]
    y: list[float]


class RidgeParams(BaseModel):
    """SimpleImputer(mean, indicator) -> StandardScaler -> RidgeCV, as numbers."""

    features: list[str]
    impute: list[float]
    indicator_columns: list[int]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    alpha: float
    clip: tuple[float, float]


class CrossValidation(BaseModel):
    folds: int
    n: int
    before: MetricSet = Field(description="raw judge scores vs human, on the held-out items")
    after: MetricSet = Field(description="calibrated scores vs human, on the same held-out items")


class CalibrationMap(BaseModel):
    dimension: str
    method: Method
    n: int
    params: dict | None = None
    cv: CrossValidation | None = None
    chosen: bool = False
    warning: str | None = None


class DimensionCalibration(BaseModel):
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
    id: str = Field(description="version: hash of judge identity, rubric versions, settings, labels and fit")
    judge: JudgeIdentity | None
    scale: ScaleSpec
    settings: CalibrationSettings
    n_transcripts: int
    dimensions: dict[str, DimensionCalibration]
    label_imports: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


# -- the maps -------------------------------------------------------------------------------------
def fit_isotonic(x: np.ndarray, y: np.ndarray, scale: ScaleSpec) -> IsotonicParams:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=scale.min, y_max=scale.max, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return IsotonicParams(x=model.X_thresholds_.tolist(), y=model.y_thresholds_.tolist())


def apply_isotonic(params: IsotonicParams, x: np.ndarray) -> np.ndarray:
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
    x = np.atleast_2d(np.asarray(features, dtype=float))
    missing = np.isnan(x)
    filled = np.where(missing, np.asarray(params.impute)[None, :], x)
    if params.indicator_columns:
        filled = np.hstack([filled, missing[:, params.indicator_columns].astype(float)])
    z = (filled - np.asarray(params.mean)) / np.asarray(params.scale)
    return np.clip(z @ np.asarray(params.coef) + params.intercept, *params.clip)


def apply_map(m: CalibrationMap, raw: float | None, all_raw: dict[str, float | None]) -> float | None:
    """A calibrated score for one judgment's dimension; None stays None (not observed stays so)."""
    if raw is None:
        return None
    if m.method == "identity":
        return float(raw)
    if m.method == "isotonic":
        return float(apply_isotonic(IsotonicParams.model_validate(m.params), np.array([raw]))[0])
    params = RidgeParams.model_validate(m.params)
    row = np.array([[np.nan if all_raw.get(f) is None else all_raw[f] for f in params.features]])
    return float(apply_multi(params, row)[0])


# -- fitting with cross-validation --------------------------------------------------------------------
class _Data(BaseModel):
    transcripts: list[str]
    x: list[float]
    y: list[float]
    features: list[list[float]]


def _dimension_data(dim: str, judge: dict[str, dict[str, JudgeScore]], consensus, feature_names: list[str]) -> _Data:
    ts, xs, ys, fs = [], [], [], []
    for transcript in sorted(judge):
        j = judge[transcript].get(dim)
        h_status, h_score = consensus.get((transcript, dim), ("missing", None))
        if j is None or j.status != "scored" or h_status != "scored":
            continue
        ts.append(transcript)
        xs.append(float(j.score))
        ys.append(float(h_score))
        fs.append([float(judge[transcript][f].score) if f in judge[transcript]
                   and judge[transcript][f].status == "scored" else float("nan") for f in feature_names])
    return _Data(transcripts=ts, x=xs, y=ys, features=fs)


def _cross_validate(data: _Data, feature_names: list[str], scale: ScaleSpec, settings: CalibrationSettings,
                    multi: bool) -> dict[Method, np.ndarray]:
    """Held-out predictions of each method, every item predicted by a model that never saw it."""
    from sklearn.model_selection import KFold

    x, y, f = np.array(data.x), np.array(data.y), np.array(data.features)
    preds: dict[Method, np.ndarray] = {"identity": x.copy(), "isotonic": np.empty(len(x))}
    if multi:
        preds["multi_ridge"] = np.empty(len(x))
    folds = KFold(n_splits=min(settings.folds, len(x)), shuffle=True, random_state=settings.seed)
    for train, test in folds.split(x):
        preds["isotonic"][test] = apply_isotonic(fit_isotonic(x[train], y[train], scale), x[test])
        if multi:
            preds["multi_ridge"][test] = apply_multi(fit_multi(f[train], y[train], feature_names, scale), f[test])
    return preds


def calibrate_dimension(dim: str, data: _Data, feature_names: list[str], scale: ScaleSpec,
                        settings: CalibrationSettings) -> DimensionCalibration:
    n = len(data.x)
    if n < settings.min_labels:
        return DimensionCalibration(
            dimension=dim, n=n, status="refused",
            reason=f"{n} labelled transcript(s) with a judge score; need at least {settings.min_labels} "
                   f"(--min-labels) to fit and cross-validate a calibration")
    multi = settings.multi_signal and len(feature_names) > 1
    preds = _cross_validate(data, feature_names, scale, settings, multi)
    k = min(settings.folds, n)
    y = np.array(data.y)
    before = metric_set(preds["identity"], y, data.transcripts, scale, settings.n_bootstrap, settings.seed)
    maps: list[CalibrationMap] = []
    x, f = np.array(data.x), np.array(data.features)
    for method, held_out in preds.items():
        after = metric_set(held_out, y, data.transcripts, scale, settings.n_bootstrap, settings.seed)
        if method == "identity":
            params = None
        elif method == "isotonic":
            params = fit_isotonic(x, y, scale).model_dump()
        else:
            params = fit_multi(f, y, feature_names, scale).model_dump()
        maps.append(CalibrationMap(dimension=dim, method=method, n=n, params=params,
                                   cv=CrossValidation(folds=k, n=n, before=before, after=after)))
    # Lowest held-out MAE wins; on a tie (within 1e-9) the simpler method.
    best = min(maps, key=lambda m: (round(m.cv.after.mae, 9), _SIMPLER_FIRST.index(m.method)))
    best.chosen = True
    warnings: list[str] = []
    iso = next(m for m in maps if m.method == "isotonic")
    if iso.cv.after.mae > before.mae + 1e-9:
        iso.warning = (f"calibration makes held-out agreement worse: MAE {before.mae:.2f} -> {iso.cv.after.mae:.2f}"
                       f"; raw scores are kept for {dim}" if best.method == "identity" else
                       f"isotonic map is worse held out (MAE {before.mae:.2f} -> {iso.cv.after.mae:.2f})")
        warnings.append(f"{dim}: {iso.warning}")
    multi_map = next((m for m in maps if m.method == "multi_ridge"), None)
    if multi_map is not None and multi_map.cv.after.mae > before.mae + 1e-9 and best.method == "identity":
        multi_map.warning = (f"multi-signal calibration makes held-out agreement worse: MAE {before.mae:.2f} -> "
                             f"{multi_map.cv.after.mae:.2f}")
    return DimensionCalibration(dimension=dim, n=n, status="fitted", chosen=best.method, maps=maps,
                                warnings=warnings)


def calibration_id(judge: JudgeIdentity | None, settings: CalibrationSettings, scale: ScaleSpec,
                   dims: dict[str, DimensionCalibration], labels_fingerprint: str) -> str:
    """A content hash: any change of rubric version, judge model or prompt, labels or fit changes it."""
    payload = {
        "judge": judge.model_dump(mode="json") if judge else None, "settings": settings.model_dump(mode="json"),
        "scale": scale.model_dump(), "labels": labels_fingerprint,
        "maps": {d: [(m.method, m.params) for m in c.maps] for d, c in sorted(dims.items())},
    }
    return "cal-" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def fit_calibration(
    judge: list[JudgeScore], human: list[HumanLabel], scale: ScaleSpec, settings: CalibrationSettings, *,
    judge_identity: JudgeIdentity | None = None, dimension_order: list[str] | None = None,
    label_imports: list[str] | None = None,
) -> CalibrationResult:
    """Fit and cross-validate every dimension that has enough labels; refuse the others.

    Raises BadInput when no dimension has enough labels, saying how many are needed.
    """
    consensus = human_consensus(human)
    by_transcript: dict[str, dict[str, JudgeScore]] = defaultdict(dict)
    for j in judge:
        by_transcript[j.transcript][j.dimension] = j
    feature_names = list(dict.fromkeys((dimension_order or []) + sorted({j.dimension for j in judge})))
    feature_names = [f for f in feature_names if any(f in d for d in by_transcript.values())]
    dims = [d for d in feature_names if any(k[1] == d for k in consensus)]
    if not dims:
        raise BadInput("no dimension has both judge scores and human labels for the same transcripts")
    results = {d: calibrate_dimension(d, _dimension_data(d, by_transcript, consensus, feature_names),
                                      feature_names, scale, settings) for d in dims}
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
        dimensions=results, label_imports=label_imports or [], warnings=warnings,
    )


def calibrate_judgment(result_maps: dict[str, CalibrationMap], raw: dict[str, float | None]) -> dict[str, float | None]:
    """Calibrated scores for one judgment: dimension -> value (raw where no map applies)."""
    out: dict[str, float | None] = {}
    for dim, value in raw.items():
        m = result_maps.get(dim)
        out[dim] = apply_map(m, value, raw) if m is not None else value
    return out
