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
Fitted parameters are plain JSON (thresholds, coefficients), applied with numpy (maps.py) and checked
against scikit-learn's own predict in tests, so stored calibrations never depend on pickles. This
module fits; maps.py holds the document and its maps, applying.py applies them to other scores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluator.calibrate.agreement import metric_set
from evaluator.calibrate.applying import (
    apply_calibration,
    calibrate_frame,
    check_applicable,
)
from evaluator.calibrate.fitdata import (
    CalibrationInput,
    Labels,
    human_frame_of,
    judge_frame_of,
    labels_fingerprint,
    prob_feature,
)
from evaluator.calibrate.maps import (
    ABSOLUTE_MIN_LABELS,
    DEFAULT_MIN_LABELS,
    FILE_FORMAT,
    FILE_VERSION,
    CalibrationMap,
    CalibrationResult,
    CalibrationSettings,
    CrossValidation,
    DimensionCalibration,
    IsotonicParams,
    Method,
    RidgeParams,
    after_mae,
    apply_isotonic,
    apply_multi,
    fit_isotonic,
    fit_multi,
    read_calibration_document,
    write_calibration_file,
)
from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore, ScaleSpec
from evaluator.errors import BadInput

OFFSET_SHRINK = 5.0  # a rater's offset is sum(residuals) / (n + OFFSET_SHRINK): few labels, small offset
MIN_RATER_LABELS = 5
_SIMPLER_FIRST: tuple[Method, ...] = ("identity", "isotonic", "multi_ridge", "ordinal")


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


def _with_offsets(pred: np.ndarray, labels: Labels, offsets: dict[str, float], scale: ScaleSpec) -> np.ndarray:
    return np.clip(pred + labels.item_shift(offsets), scale.min, scale.max)


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


# the document's types and maps (maps.py) and the applying (applying.py), importable from here as before
__all__ = [
    "ABSOLUTE_MIN_LABELS", "DEFAULT_MIN_LABELS", "FILE_FORMAT", "FILE_VERSION", "CalibrationMap",
    "CalibrationResult", "CalibrationSettings", "CrossValidation", "DimensionCalibration", "DimensionData",
    "IsotonicParams", "Method", "RidgeParams", "after_mae", "apply_calibration", "apply_isotonic",
    "apply_multi", "calibrate_dimension", "calibrate_frame", "calibration_id",
    "check_applicable", "fit_calibration", "fit_calibration_frames", "fit_isotonic", "fit_multi", "rater_offsets",
    "raters_recur", "read_calibration_document", "write_calibration_file",
]
