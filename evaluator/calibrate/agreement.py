"""Judge-human agreement, per dimension and overall, with bootstrap intervals and the human ceiling.

Point estimates come straight from the reference libraries: scikit-learn (quadratic-weighted
Cohen's kappa, MAE, RMSE, confusion matrix), krippendorff (ordinal alpha) and scipy.stats
(Spearman, Kendall tau-b, Pearson).

Bootstrap intervals need each statistic on ~1000 resamples per dimension; calling those libraries
a thousand times per dimension takes minutes on a laptop (sklearn's argument validation alone costs
about a millisecond a call). So the resamples use the same definitions in vectorised numpy
(`_batch_metrics`), and tests/test_agreement.py checks them against the libraries on random data
with ties and fractional scores. Resampling is by transcript (a cluster bootstrap), so the pooled
"overall" row keeps a transcript's dimensions together instead of pretending they are independent.

Conventions for fractional scores (a mean of raters, an expected score): `exact` is |judge-human| < 0.5
and `within_one` is |judge-human| <= 1 (the usual definitions on integers); kappa and the confusion
matrix use scores rounded half up to the nearest level; the other statistics use the values as given.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from itertools import combinations

import numpy as np
from pydantic import BaseModel, Field

from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore, ScaleSpec

METRICS = ("exact", "within_one", "qwk", "krippendorff_alpha", "spearman", "kendall", "pearson", "mae", "rmse", "bias")
DEFAULT_BOOTSTRAP = 1000
_EPS = 1e-9


class MetricSet(BaseModel):
    """Agreement between two score vectors; None where a statistic is undefined (e.g. constant scores)."""

    n: int
    n_transcripts: int
    exact: float | None = None
    within_one: float | None = None
    qwk: float | None = None
    krippendorff_alpha: float | None = None
    spearman: float | None = None
    kendall: float | None = None
    pearson: float | None = None
    mae: float | None = None
    rmse: float | None = None
    bias: float | None = Field(None, description="mean of first minus second (judge minus human)")
    exact_ci: tuple[float, float] | None = None
    within_one_ci: tuple[float, float] | None = None
    qwk_ci: tuple[float, float] | None = None
    krippendorff_alpha_ci: tuple[float, float] | None = None
    spearman_ci: tuple[float, float] | None = None
    kendall_ci: tuple[float, float] | None = None
    pearson_ci: tuple[float, float] | None = None
    mae_ci: tuple[float, float] | None = None
    rmse_ci: tuple[float, float] | None = None
    bias_ci: tuple[float, float] | None = None


class Confusion(BaseModel):
    """Rows: human level; columns: judge level (both rounded to the scale)."""

    labels: list[int]
    matrix: list[list[int]]


class StatusCounts(BaseModel):
    """How 'not observed' and missing scores line up; these items are outside the score statistics."""

    both_scored: int = 0
    both_not_observed: int = 0
    judge_not_observed_human_scored: int = 0
    human_not_observed_judge_scored: int = 0
    no_judge_score: int = 0
    no_human_label: int = 0


class DimensionAgreement(BaseModel):
    dimension: str
    judge_vs_human: MetricSet
    confusion: Confusion
    statuses: StatusCounts
    human_human: MetricSet | None = None
    raters: list[str] = Field(default_factory=list)


class AgreementReport(BaseModel):
    scale: ScaleSpec
    judge: JudgeIdentity | None = None
    human: str = "mean of raters"
    n_bootstrap: int
    seed: int
    dimensions: dict[str, DimensionAgreement]
    overall: DimensionAgreement
    notes: list[str] = Field(default_factory=list)

    def to_json(self) -> dict:
        """The documented JSON: keyed by dimension id plus `overall`; metrics at the top of each value."""

        def one(d: DimensionAgreement) -> dict:
            out = d.judge_vs_human.model_dump(mode="json")
            out.update(confusion=d.confusion.model_dump(mode="json"), statuses=d.statuses.model_dump(mode="json"),
                       human_human=d.human_human.model_dump(mode="json") if d.human_human else None,
                       raters=d.raters)
            return out

        doc = {dim: one(d) for dim, d in self.dimensions.items()}
        doc["overall"] = one(self.overall)
        return doc


# -- point estimates (reference libraries) -----------------------------------------------------
def to_levels(x: np.ndarray, scale: ScaleSpec) -> np.ndarray:
    """Round half up to the nearest level and clip to the scale (for kappa and confusion matrices)."""
    return np.clip(np.floor(np.asarray(x, dtype=float) + 0.5), scale.min, scale.max).astype(int)


def _clean(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def point_metrics(first: np.ndarray, second: np.ndarray, scale: ScaleSpec) -> dict[str, float | None]:
    """Every agreement statistic for paired scores (first = judge, second = human)."""
    import krippendorff
    from scipy import stats
    from sklearn.metrics import (
        cohen_kappa_score,
        mean_absolute_error,
        root_mean_squared_error,
    )

    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    n = len(a)
    out: dict[str, float | None] = dict.fromkeys(METRICS)
    if n == 0:
        return out
    diff = a - b
    out["exact"] = float(np.mean(np.abs(diff) < 0.5))
    out["within_one"] = float(np.mean(np.abs(diff) <= 1 + _EPS))
    out["mae"] = float(mean_absolute_error(b, a))
    out["rmse"] = float(root_mean_squared_error(b, a))
    out["bias"] = float(np.mean(diff))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["qwk"] = _clean(cohen_kappa_score(to_levels(a, scale), to_levels(b, scale), labels=scale.levels,
                                              weights="quadratic"))
        domain = sorted(set(scale.levels) | set(a.tolist()) | set(b.tolist()))
        try:
            out["krippendorff_alpha"] = _clean(krippendorff.alpha(
                reliability_data=np.vstack([a, b]), level_of_measurement="ordinal", value_domain=domain))
        except (ValueError, ZeroDivisionError):
            out["krippendorff_alpha"] = None
        if n >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
            out["spearman"] = _clean(stats.spearmanr(a, b).statistic)
            out["kendall"] = _clean(stats.kendalltau(a, b).statistic)
            out["pearson"] = _clean(stats.pearsonr(a, b).statistic)
    return out


# -- bootstrap (vectorised, checked against the libraries in tests) ---------------------------------
def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / den
    r[den <= _EPS] = np.nan
    return np.clip(r, -1.0, 1.0)


def _rowwise_kendall_b(x: np.ndarray, y: np.ndarray, chunk_cells: int = 4_000_000) -> np.ndarray:
    """Kendall tau-b per row: (P - Q) / sqrt((n0 - ties_x)(n0 - ties_y)), as scipy's kendalltau."""
    b, n = x.shape
    out = np.empty(b)
    step = max(1, chunk_cells // max(1, n * n))
    n0 = n * (n - 1) / 2
    for s in range(0, b, step):
        xs, ys = x[s:s + step], y[s:s + step]
        sx = np.sign(xs[:, :, None] - xs[:, None, :])
        sy = np.sign(ys[:, :, None] - ys[:, None, :])
        con = (sx * sy).sum(axis=(1, 2)) / 2
        tx = ((sx == 0).sum(axis=(1, 2)) - n) / 2
        ty = ((sy == 0).sum(axis=(1, 2)) - n) / 2
        den = np.sqrt((n0 - tx) * (n0 - ty))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + step] = np.where(den > 0, con / np.where(den > 0, den, 1), np.nan)
    return out


def _rowwise_qwk(a_idx: np.ndarray, b_idx: np.ndarray, k: int) -> np.ndarray:
    """Quadratic-weighted kappa per row from level indices, as sklearn's cohen_kappa_score."""
    bsz, n = a_idx.shape
    flat = (np.arange(bsz)[:, None] * k * k + b_idx * k + a_idx).ravel()
    conf = np.bincount(flat, minlength=bsz * k * k).reshape(bsz, k, k).astype(float)
    rows, cols = conf.sum(axis=2), conf.sum(axis=1)
    expected = rows[:, :, None] * cols[:, None, :] / n
    grid = np.arange(k)
    w = (grid[:, None] - grid[None, :]) ** 2
    num = (w * conf).sum(axis=(1, 2))
    den = (w * expected).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > _EPS, 1 - num / np.where(den > _EPS, den, 1), np.nan)


def _rowwise_alpha_ordinal(a_idx: np.ndarray, b_idx: np.ndarray, k: int) -> np.ndarray:
    """Krippendorff's ordinal alpha for two coders with no missing values, per row (as krippendorff.alpha)."""
    bsz, n = a_idx.shape
    base = np.arange(bsz)[:, None] * k * k
    o = np.bincount((base + a_idx * k + b_idx).ravel(), minlength=bsz * k * k).reshape(bsz, k, k).astype(float)
    o = o + o.transpose(0, 2, 1)
    nv = o.sum(axis=2)
    cum = np.cumsum(nv, axis=1)
    grid = np.arange(k)
    lo = np.minimum(grid[:, None], grid[None, :])
    hi = np.maximum(grid[:, None], grid[None, :])
    between = cum[:, hi] - cum[:, lo] + nv[:, lo]
    delta = (between - (nv[:, :, None] + nv[:, None, :]) / 2) ** 2
    total = 2 * n
    d_o = (o * delta).sum(axis=(1, 2))
    d_e = (nv[:, :, None] * nv[:, None, :] * delta).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d_e > _EPS, 1 - (total - 1) * d_o / np.where(d_e > _EPS, d_e, 1), np.nan)


def batch_metrics(a: np.ndarray, b: np.ndarray, scale: ScaleSpec) -> dict[str, np.ndarray]:
    """All statistics for each row of two (resamples x n) arrays, vectorised."""
    from scipy.stats import rankdata

    diff = a - b
    out = {
        "exact": np.mean(np.abs(diff) < 0.5, axis=1),
        "within_one": np.mean(np.abs(diff) <= 1 + _EPS, axis=1),
        "mae": np.mean(np.abs(diff), axis=1),
        "rmse": np.sqrt(np.mean(diff**2, axis=1)),
        "bias": np.mean(diff, axis=1),
        "pearson": _rowwise_pearson(a, b),
        "spearman": _rowwise_pearson(rankdata(a, axis=1), rankdata(b, axis=1)),
        "kendall": _rowwise_kendall_b(a, b),
    }
    k = scale.max - scale.min + 1
    out["qwk"] = _rowwise_qwk(to_levels(a, scale) - scale.min, to_levels(b, scale) - scale.min, k)
    domain = np.array(sorted(set(scale.levels) | set(np.unique(a).tolist()) | set(np.unique(b).tolist())))
    out["krippendorff_alpha"] = _rowwise_alpha_ordinal(np.searchsorted(domain, a), np.searchsorted(domain, b),
                                                       len(domain))
    return out


def bootstrap_cis(
    first: np.ndarray, second: np.ndarray, clusters: list[str], scale: ScaleSpec, n_boot: int, seed: int,
    level: float = 0.95,
) -> dict[str, tuple[float, float] | None]:
    """Percentile intervals from resampling whole transcripts with replacement.

    An interval is None when fewer than half the resamples define the statistic (e.g. most resamples
    have constant scores): an interval built from the few that do would look far surer than it is.
    """
    out: dict[str, tuple[float, float] | None] = dict.fromkeys(METRICS)
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    if n_boot <= 0 or len(a) < 2:
        return out
    uniq, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    if len(uniq) < 2:
        return out
    members = [np.flatnonzero(inverse == c) for c in range(len(uniq))]
    sizes = np.array([len(m) for m in members])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    # Resamples differ in length when clusters differ in size: group them by total length.
    lengths = sizes[picks].sum(axis=1)
    collected: dict[str, list[np.ndarray]] = defaultdict(list)
    for length in np.unique(lengths):
        rows = picks[lengths == length]
        idx = np.array([np.concatenate([members[c] for c in row]) for row in rows])
        for name, values in batch_metrics(a[idx], b[idx], scale).items():
            collected[name].append(values)
    tail = (1 - level) / 2 * 100
    for name in METRICS:
        values = np.concatenate(collected[name])
        valid = values[~np.isnan(values)]
        if len(valid) >= n_boot / 2:
            lo, hi = np.percentile(valid, [tail, 100 - tail])
            out[name] = (float(lo), float(hi))
    return out


def metric_set(first, second, clusters: list[str], scale: ScaleSpec, n_boot: int, seed: int) -> MetricSet:
    """Point estimates (libraries) plus bootstrap intervals for one pair of score vectors."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    values = point_metrics(a, b, scale)
    cis = bootstrap_cis(a, b, clusters, scale, n_boot, seed)
    return MetricSet(n=len(a), n_transcripts=len(set(clusters)), **values,
                     **{f"{k}_ci": v for k, v in cis.items()})


def confusion(first, second, scale: ScaleSpec) -> Confusion:
    from sklearn.metrics import confusion_matrix

    if len(first) == 0:
        return Confusion(labels=scale.levels, matrix=[[0] * len(scale.levels) for _ in scale.levels])
    m = confusion_matrix(to_levels(second, scale), to_levels(first, scale), labels=scale.levels)
    return Confusion(labels=scale.levels, matrix=m.tolist())


# -- assembling the report ------------------------------------------------------------------------
def human_consensus(labels: list[HumanLabel]) -> dict[tuple[str, str], tuple[str, float | None]]:
    """(transcript, dimension) -> (status, score). Scored when at least as many raters scored as said
    'not observed' (score = mean of their scores); not_observed when most did; otherwise missing."""
    by_item: dict[tuple[str, str], list[HumanLabel]] = defaultdict(list)
    for label in labels:
        by_item[(label.transcript, label.dimension)].append(label)
    out: dict[tuple[str, str], tuple[str, float | None]] = {}
    for item, group in by_item.items():
        scores = [g.score for g in group if g.status == "scored" and g.score is not None]
        n_no = sum(g.status == "not_observed" for g in group)
        if scores and len(scores) >= n_no:
            out[item] = ("scored", float(np.mean(scores)))
        elif n_no:
            out[item] = ("not_observed", None)
        else:
            out[item] = ("missing", None)
    return out


def _human_pairs(labels: list[HumanLabel], dims: set[str]) -> dict[str, tuple[list[float], list[float], list[str]]]:
    """Per dimension, every pair of raters who both scored a transcript (pooled over rater pairs)."""
    table: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for label in labels:
        if label.status == "scored" and label.score is not None and label.dimension in dims:
            table[label.dimension][label.rater][label.transcript] = label.score
    out = {}
    for dim, by_rater in table.items():
        a, b, clusters = [], [], []
        for r1, r2 in combinations(sorted(by_rater), 2):
            for transcript in sorted(set(by_rater[r1]) & set(by_rater[r2])):
                a.append(by_rater[r1][transcript])
                b.append(by_rater[r2][transcript])
                clusters.append(transcript)
        out[dim] = (a, b, clusters)
    return out


def agreement(
    judge: list[JudgeScore], human: list[HumanLabel], scale: ScaleSpec, *, n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0, judge_identity: JudgeIdentity | None = None, dimension_order: list[str] | None = None,
) -> AgreementReport:
    """The full report: judge vs human consensus per dimension and overall, and human vs human."""
    consensus = human_consensus(human)
    judge_by_item = {(j.transcript, j.dimension): j for j in judge}
    dims = list(dict.fromkeys((dimension_order or []) + [j.dimension for j in judge]))
    labelled_dims = {d for _, d in consensus}
    dims = [d for d in dims if d in labelled_dims]
    notes: list[str] = []
    if not dims:
        from evaluator.errors import BadInput

        raise BadInput("no dimension has both a judge score and a human label for the same transcript: "
                       "check that the labels and the judgments are about the same transcripts")
    raters = sorted({h.rater for h in human})
    pairs_hh = _human_pairs(human, set(dims))
    per_dim: dict[str, DimensionAgreement] = {}
    pooled_j: list[float] = []
    pooled_h: list[float] = []
    pooled_c: list[str] = []
    pooled_status = StatusCounts()
    pooled_hh: tuple[list[float], list[float], list[str]] = ([], [], [])
    for dim in dims:
        js, hs, cl = [], [], []
        st = StatusCounts()
        items = sorted({t for (t, d) in consensus if d == dim} | {t for (t, d) in judge_by_item if d == dim})
        for transcript in items:
            j = judge_by_item.get((transcript, dim))
            h_status, h_score = consensus.get((transcript, dim), ("missing", None))
            j_status = j.status if j else "missing"
            if h_status == "missing":
                st.no_human_label += 1
            elif j_status == "missing":
                st.no_judge_score += 1
            elif j_status == "scored" and h_status == "scored":
                st.both_scored += 1
                js.append(float(j.score))
                hs.append(float(h_score))
                cl.append(transcript)
            elif j_status == "not_observed" and h_status == "not_observed":
                st.both_not_observed += 1
            elif j_status == "not_observed":
                st.judge_not_observed_human_scored += 1
            else:
                st.human_not_observed_judge_scored += 1
        hh = None
        if dim in pairs_hh and pairs_hh[dim][0]:
            a, b, c = pairs_hh[dim]
            hh = metric_set(a, b, c, scale, n_boot, seed)
            for acc, part in zip(pooled_hh, (a, b, c)):
                acc.extend(part)
        per_dim[dim] = DimensionAgreement(
            dimension=dim, judge_vs_human=metric_set(js, hs, cl, scale, n_boot, seed),
            confusion=confusion(js, hs, scale), statuses=st, human_human=hh,
            raters=sorted({h.rater for h in human if h.dimension == dim}),
        )
        pooled_j += js
        pooled_h += hs
        pooled_c += cl
        for field in StatusCounts.model_fields:
            setattr(pooled_status, field, getattr(pooled_status, field) + getattr(st, field))
        if len(js) < 10:
            notes.append(f"{dim}: only {len(js)} paired scores; intervals are wide and the point values fragile")
    overall = DimensionAgreement(
        dimension="overall", judge_vs_human=metric_set(pooled_j, pooled_h, pooled_c, scale, n_boot, seed),
        confusion=confusion(pooled_j, pooled_h, scale), statuses=pooled_status,
        human_human=metric_set(*pooled_hh, scale, n_boot, seed) if pooled_hh[0] else None, raters=raters,
    )
    if len(raters) < 2:
        notes.append("one human rater: no human-human ceiling (add a second rater's labels to get one)")
    elif len(raters) > 2:
        notes.append("human-human metrics pool every pair of raters; bias there is earlier minus later rater id")
    return AgreementReport(scale=scale, judge=judge_identity, n_bootstrap=n_boot, seed=seed, dimensions=per_dim,
                           overall=overall, notes=notes)
