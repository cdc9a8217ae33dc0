"""The calibration document: its maps as plain numbers, and how one map turns a judge score into a
human-scale score.

Why apart from the fitting (calibration.py) and the applying to whole files (applying.py): a stored
or written calibration is read back by the store, the report and `--calibration`, none of which fit
anything; they need the document's types, the per-map evaluation (numpy on the stored thresholds and
coefficients, checked against scikit-learn's own predict in tests, so a stored calibration never
depends on a pickle) and the versioned JSON reader, and nothing else.
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from evaluator.calibrate.agreement import MetricSet
from evaluator.calibrate.records import JudgeIdentity, LinearParams, ScaleSpec
from evaluator.errors import BadInput

Method = Literal["identity", "isotonic", "multi_ridge", "ordinal"]
FILE_FORMAT = "evaluator.calibration"
FILE_VERSION = 1
DEFAULT_MIN_LABELS = 10
ABSOLUTE_MIN_LABELS = 4


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


def after_mae(cv: CrossValidation | None) -> float:
    """Held-out MAE after calibration; infinite when not measured, so an unmeasured map never wins."""
    return cv.after.mae if cv is not None and cv.after.mae is not None else float("inf")


# -- the document as a file ------------------------------------------------------------------------
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

