"""Proportional-odds (ordinal logistic) regression, small and dependency-free beyond scipy.

P(Y <= k | x) = sigmoid(theta_k - x.beta), k = 1..K-1, theta increasing. Fitted by L-BFGS on the
penalised negative log-likelihood with its analytic gradient. Why our own: scikit-learn has no
ordinal model, statsmodels (OrderedModel) is a heavy dependency for one model, and mord is
unmaintained; the model is ~40 lines and the tests check it recovers known parameters.

Targets may be soft: a row of `weights` (one per level, summing to 1), so an item's several raters
(3, 4, 4) or a fractional mean (3.5 -> half 3, half 4) enter the likelihood as they are, without
rounding. The prediction used for calibration is the expected level under the fitted distribution.

Features are standardised and missing values imputed with the training mean plus a missing
indicator, as the ridge model does; everything needed to predict is plain JSON (OrdinalParams).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from evaluator.calibrate.records import LinearParams, ScaleSpec


class OrdinalParams(LinearParams):
    """A fitted ordinal (proportional-odds) model as plain numbers, so it applies without refitting."""

    thresholds: list[float]
    levels: list[int]
    penalty: float


def soft_targets(labels: list[list[float]], scale: ScaleSpec) -> np.ndarray:
    """(items x levels) weights: each label split between the two nearest levels, averaged per item."""
    counts = np.array([len(values) for values in labels], dtype=np.int64)
    flat = np.array([v for values in labels for v in values], dtype=float)
    return soft_targets_grouped(flat, counts, scale)


def soft_targets_grouped(values: np.ndarray, counts: np.ndarray, scale: ScaleSpec) -> np.ndarray:
    """soft_targets for labels given item after item (`counts[i]` labels of item i, then item i+1's).
    Each cell sums its shares in label order (bincount adds in input order), as a loop would."""
    k = len(scale.levels)
    n = len(counts)
    item = np.repeat(np.arange(n), counts)
    pos = np.minimum(np.maximum(np.asarray(values, dtype=float) - scale.min, 0), k - 1)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    per = counts[item]
    cells = np.column_stack([item * k + lo, item * k + np.minimum(lo + 1, k - 1)]).ravel()
    shares = np.column_stack([(1 - frac) / per, frac / per]).ravel()  # a zero share adds nothing
    return np.bincount(cells, weights=shares, minlength=n * k).reshape(n, k)


def _design(x: np.ndarray, params: OrdinalParams) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=float))
    missing = np.isnan(x)
    filled = np.where(missing, np.asarray(params.impute)[None, :], x)
    if params.indicator_columns:
        filled = np.hstack([filled, missing[:, params.indicator_columns].astype(float)])
    return (filled - np.asarray(params.mean)) / np.asarray(params.scale)


def _unpack(theta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    cuts = np.concatenate([[theta[0]], theta[0] + np.cumsum(np.exp(theta[1:k - 1]))])
    return cuts, theta[k - 1:]


def _nll(theta: np.ndarray, z: np.ndarray, w: np.ndarray, penalty: float) -> tuple[float, np.ndarray]:
    k = w.shape[1]
    cuts, beta = _unpack(theta, k)
    eta = z @ beta
    cdf = expit(cuts[None, :] - eta[:, None])  # n x (k-1)
    upper = np.hstack([cdf, np.ones((len(eta), 1))])
    lower = np.hstack([np.zeros((len(eta), 1)), cdf])
    p = np.clip(upper - lower, 1e-12, None)
    loss = -(w * np.log(p)).sum() + penalty * beta @ beta
    dens = cdf * (1 - cdf)  # derivative of the cdf at each cut
    du = np.hstack([dens, np.zeros((len(eta), 1))])
    dl = np.hstack([np.zeros((len(eta), 1)), dens])
    r = w / p  # n x k
    # d loss / d eta: -sum_k r_k * (-(du_k - dl_k))
    g_eta = (r * (du - dl)).sum(axis=1)
    g_beta = z.T @ g_eta + 2 * penalty * beta
    # d loss / d cut_j: -sum_i [r_ij * dens_ij - r_i,j+1 * dens_ij]
    g_cut = -((r[:, :-1] - r[:, 1:]) * dens).sum(axis=0)
    # cuts = c0 + cumsum(exp(t)): d cut_j / d t_m = exp(t_m) for j >= m
    g_t0 = g_cut.sum()
    inc = np.exp(theta[1:k - 1])
    g_inc = np.array([g_cut[m + 1:].sum() * inc[m] for m in range(k - 2)])
    return float(loss), np.concatenate([[g_t0], g_inc, g_beta])


def fit_ordinal(features: np.ndarray, weights: np.ndarray, names: list[str], scale: ScaleSpec,
                penalty: float = 1.0) -> OrdinalParams:
    """Fit on (items x features) with NaN for missing, and (items x levels) soft targets."""
    x = np.atleast_2d(np.asarray(features, dtype=float))
    missing = np.isnan(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an all-missing column: imputed with 0, its indicator carries it
        impute = np.nan_to_num(np.nanmean(x, axis=0), nan=0.0)
    indicator = [j for j in range(x.shape[1]) if missing[:, j].any()]
    filled = np.where(missing, impute[None, :], x)
    if indicator:
        filled = np.hstack([filled, missing[:, indicator].astype(float)])
    mean = filled.mean(axis=0)
    sd = filled.std(axis=0)
    sd[sd < 1e-12] = 1.0
    z = (filled - mean) / sd
    k = weights.shape[1]
    freq = np.clip(weights.sum(axis=0) / max(weights.sum(), 1e-12), 1e-3, None)
    cum = np.clip(np.cumsum(freq / freq.sum())[:-1], 1e-3, 1 - 1e-3)
    start_cuts = np.log(cum / (1 - cum))
    start = np.concatenate([[start_cuts[0]], np.log(np.maximum(np.diff(start_cuts), 1e-3)), np.zeros(z.shape[1])])
    res = minimize(_nll, start, args=(z, weights, penalty), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500})
    cuts, beta = _unpack(res.x, k)
    return OrdinalParams(features=names, impute=impute.tolist(), indicator_columns=indicator, mean=mean.tolist(),
                         scale=sd.tolist(), coef=beta.tolist(), thresholds=cuts.tolist(), levels=scale.levels,
                         penalty=penalty)


def predict_proba(params: OrdinalParams, features: np.ndarray) -> np.ndarray:
    """Each scale level's probability under the ordinal model (rows sum to 1)."""
    eta = _design(features, params) @ np.asarray(params.coef)
    cdf = expit(np.asarray(params.thresholds)[None, :] - eta[:, None])
    upper = np.hstack([cdf, np.ones((len(eta), 1))])
    lower = np.hstack([np.zeros((len(eta), 1)), cdf])
    return np.clip(upper - lower, 0, 1)


def predict_expected(params: OrdinalParams, features: np.ndarray) -> np.ndarray:
    """The expected level: the calibrated score on the human scale (fractional)."""
    return predict_proba(params, features) @ np.asarray(params.levels, dtype=float)
