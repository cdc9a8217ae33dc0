"""Judge-human agreement, per dimension and overall, with bootstrap intervals and like-for-like ceilings.

Point estimates come from the reference libraries where they scale: scikit-learn (quadratic-weighted
Cohen's kappa, MAE, RMSE, confusion matrix) and scipy.stats (Spearman, Kendall tau-b, Pearson).
Krippendorff's alpha for two coders is computed in closed form (resample.py) and checked against the
krippendorff package in tests: the package builds a matrix over every distinct value and runs out of
memory on thousands of fractional scores.

Alpha's level of measurement follows the data and is stated in the output: ordinal over the scale's
levels when every score is a level, interval when any score is fractional (a mean of raters, an
expected score): ranking 1,700 distinct fractional values as "ordinal categories" is not what ordinal
alpha means, and interval alpha is the standard choice for averaged ratings.

Intervals are a cluster bootstrap over transcripts (resample.py): a transcript's pairs (its dimensions
in the pooled row, its raters under `--pairing each`) are resampled together. Every statistic that is
undefined (constant scores, fewer than 3 pairs, one rater) is None with a reason, never NaN and never
a zero-width interval presented as certainty.

Conventions for fractional scores: `exact` is |judge-human| < 0.5 and `within_one` is |judge-human| <= 1
(the usual definitions on integers); kappa and the confusion matrix use scores rounded half up to the
nearest level; the other statistics use the values as given.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from evaluator.calibrate.coded import (
    STATUS_FIELDS,
    CodedLabels,
    JudgeRows,
    code_frames,
    each_pairs,
    leave_one_out_pairs,
    mean_pairs,
    rater_pairs,
    system_pairs,
)
from evaluator.calibrate.pairing import (
    EXACT_DEFINITION,
    PAIRING_DEFINITIONS,
    Pairing,
    Pairs,
    human_frame,
    judge_frame,
)
from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore, ScaleSpec
from evaluator.calibrate.resample import (
    Prepared,
    Resampler,
    bootstrap_distribution,
    bootstrap_distributions,
    cluster_index,
    to_levels,
)

METRICS = ("exact", "within_one", "qwk", "krippendorff_alpha", "spearman", "kendall", "pearson", "mae", "rmse", "bias")
DEFAULT_BOOTSTRAP = 1000
MIN_PAIRS = 3
MIN_CLUSTERS_FOR_CI = 5
_EPS = 1e-9


class MetricSet(BaseModel):
    """Agreement between two score vectors; None where a statistic is undefined, with the reason."""

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
    krippendorff_alpha_level: str | None = Field(None, description="ordinal (all scores are levels) or interval")
    reasons: dict[str, str] = Field(default_factory=dict,
                                    description="why a statistic or an interval (key `<name>_ci`) is null")


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


class GroupedMetrics(BaseModel):
    """Statistics computed within each group (e.g. per source document), then averaged over groups.

    `used[m]` groups define metric m; the others are skipped (fewer than 3 pairs, constant scores).
    Intervals resample groups (the per-group values are the units)."""

    by: str
    n_groups: int
    mean: dict[str, float | None]
    ci: dict[str, tuple[float, float] | None]
    used: dict[str, int]
    skipped: dict[str, int]


class LeaveOneOut(BaseModel):
    """The like-for-like ceiling: each rater vs the mean of the other raters, and the judge vs that
    same mean, on the same items (pooled over held-out raters)."""

    human: MetricSet
    judge: MetricSet


class DimensionAgreement(BaseModel):
    """One dimension's judge-vs-human agreement, with the human ceiling to read it against."""

    dimension: str
    judge_vs_human: MetricSet
    confusion: Confusion
    statuses: StatusCounts
    human_human: MetricSet | None = None
    raters: list[str] = Field(default_factory=list)
    leave_one_out: LeaveOneOut | None = None
    grouped: GroupedMetrics | None = None
    calibrated: MetricSet | None = None
    scale: ScaleSpec | None = None


class AgreementReport(BaseModel):
    """The agreement result (per dimension and overall) as `evaluate agreement` prints and writes it."""

    scale: ScaleSpec
    judge: JudgeIdentity | None = None
    human: str = "mean of raters"
    pairing: Pairing = "mean"
    level: str = "item"
    n_bootstrap: int
    seed: int
    dimensions: dict[str, DimensionAgreement]
    overall: DimensionAgreement
    notes: list[str] = Field(default_factory=list)
    definitions: dict[str, str] = Field(default_factory=dict)
    label_versions: dict | None = Field(None, description="from the store: the labels paired, by how their rubric "
                                                          "version matches the judgments' (LabelMatch's counts)")

    @property
    def pooled_key(self) -> str:
        """Where the pooled row goes: `overall`, unless a dimension is itself called that (Topical-Chat's
        "overall" criterion): then `overall (pooled)`, so neither hides the other."""
        return "overall (pooled)" if "overall" in self.dimensions else "overall"

    def rows(self) -> list[dict]:
        """One flat row per dimension and `overall` (metrics, their intervals as _lo/_hi, the ceiling's
        QWK and the calibrated QWK where present): the table `evaluate agreement --out` writes."""
        out = []
        for dim_id, d in [*self.dimensions.items(), (self.pooled_key, self.overall)]:
            row: dict = {"dimension": dim_id, "pairing": self.pairing, "level": self.level}
            for key, value in d.judge_vs_human.model_dump().items():
                if key.endswith("_ci"):
                    row[f"{key[:-3]}_lo"], row[f"{key[:-3]}_hi"] = value if value else (None, None)
                elif not isinstance(value, (dict, list)):
                    row[key] = value
            row["human_human_qwk"] = d.human_human.qwk if d.human_human else None
            row["calibrated_qwk"] = d.calibrated.qwk if d.calibrated else None
            if self.judge is not None:  # the store's scores: which rubric version(s) they were made under
                row["rubric_versions"] = ", ".join(self.judge.rubric_versions)
            out.append(row)
        return out

    def to_json(self) -> dict:
        """The documented JSON: keyed by dimension id plus `overall` (the pooled row; `overall (pooled)`
        when a dimension has that name); metrics at the top of each value."""

        def one(d: DimensionAgreement) -> dict:
            out = d.judge_vs_human.model_dump(mode="json")
            out.update(confusion=d.confusion.model_dump(mode="json"), statuses=d.statuses.model_dump(mode="json"),
                       human_human=d.human_human.model_dump(mode="json") if d.human_human else None,
                       raters=d.raters, pairing=self.pairing, level=self.level,
                       leave_one_out=d.leave_one_out.model_dump(mode="json") if d.leave_one_out else None,
                       scale=(d.scale or self.scale).model_dump())
            if d.grouped is not None:
                out["grouped"] = d.grouped.model_dump(mode="json")
            if d.calibrated is not None:
                out["calibrated"] = d.calibrated.model_dump(mode="json")
            return out

        doc = {dim: one(d) for dim, d in self.dimensions.items()}
        doc[self.pooled_key] = one(self.overall)
        doc[self.pooled_key]["definitions"] = self.definitions
        if self.judge is not None:  # more than one only when pooling them was asked for
            doc[self.pooled_key]["rubric_versions"] = self.judge.rubric_versions
        if self.label_versions is not None:
            doc[self.pooled_key]["label_versions"] = self.label_versions
        return doc


# -- point estimates ------------------------------------------------------------------------------
def _clean(value: float) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else value


def undefined_reasons(a: np.ndarray, b: np.ndarray, scale: ScaleSpec) -> dict[str, str]:
    """Why chance-corrected and correlation statistics are undefined for these pairs, if they are."""
    n = len(a)
    if n == 0:
        return dict.fromkeys(METRICS, "no paired scores")
    reasons: dict[str, str] = {}
    if n < MIN_PAIRS:  # two points always correlate perfectly: no information
        reasons.update(dict.fromkeys(("spearman", "kendall", "pearson"),
                                     f"only {n} pair(s); a correlation needs at least {MIN_PAIRS}"))
    if (np.ptp(a) == 0 or np.ptp(b) == 0) and n >= MIN_PAIRS:
        side = "judge" if np.ptp(a) == 0 else "human"
        for name in ("spearman", "kendall", "pearson"):
            reasons[name] = f"{side} scores are all equal ({(a if side == 'judge' else b)[0]:g}): no correlation"
    la, lb = to_levels(a, scale), to_levels(b, scale)
    if np.ptp(la) == 0 or np.ptp(lb) == 0:
        side = "judge" if np.ptp(la) == 0 else "human"
        reasons["qwk"] = f"{side} scores round to a single level: kappa is not informative"
    if np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]:
        reasons["krippendorff_alpha"] = "every score is the same value: alpha is undefined"
    return reasons


def _spearman_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho as scipy's spearmanr defines it (Pearson of average ranks), one rank vector at a
    time: spearmanr stacks both and copies them several times, the peak of a 3-million-pair pooled
    comparison."""
    from scipy import stats

    ra = stats.rankdata(a)
    ra -= ra.mean()
    rb = stats.rankdata(b)
    rb -= rb.mean()
    den = np.sqrt(np.dot(ra, ra) * np.dot(rb, rb))
    return float(np.dot(ra, rb) / den) if den > 0 else float("nan")


def point_metrics(first: np.ndarray, second: np.ndarray, scale: ScaleSpec) -> dict[str, float | None]:
    """Every agreement statistic for paired scores (first = judge, second = human); None if undefined."""
    values, _, _ = point_metrics_explained(first, second, scale)
    return values


def point_metrics_explained(first, second, scale: ScaleSpec,
                            prep: Prepared | None = None) -> tuple[dict[str, float | None], dict[str, str], str]:
    """(values, reasons for the None values, alpha's level of measurement).

    Every value comes from the pooled count tables (resample.py), the same code the bootstrap runs;
    tests check each against scipy, scikit-learn and krippendorff. Where a side has more distinct
    values than the value table holds, Spearman and Kendall come from scipy on the exact values."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    out: dict[str, float | None] = dict.fromkeys(METRICS)
    reasons = undefined_reasons(a, b, scale)
    if len(a) == 0:
        return out, reasons, "ordinal"
    if prep is None:
        prep = Prepared(a, b, np.zeros(len(a), dtype=np.int64), 1, scale)
    table = prep.point()
    if prep.binned and "kendall" not in reasons:
        from scipy import stats

        table["spearman"] = _spearman_exact(a, b)
        table["kendall"] = stats.kendalltau(a, b).statistic
    for name in METRICS:
        if name not in reasons:
            out[name] = _clean(table[name])
            if out[name] is None:
                reasons[name] = "undefined for these scores"
    return out, reasons, prep.alpha_level


# -- bootstrap -------------------------------------------------------------------------------------
def batch_metrics(a: np.ndarray, b: np.ndarray, scale: ScaleSpec) -> dict[str, np.ndarray]:
    """All statistics for each row of two (resamples x n) arrays, by the resampling engine (for tests
    and callers with explicit resamples)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    rows = [Prepared(a[i], b[i], np.zeros(a.shape[1], dtype=np.int64), 1, scale).point() for i in range(len(a))]
    return {name: np.array([r[name] for r in rows]) for name in METRICS}


def _percentile_cis(
    dist: dict[str, np.ndarray], n_boot: int, level: float, defined: dict[str, float | None] | None = None,
) -> tuple[dict[str, tuple[float, float] | None], dict[str, str]]:
    out: dict[str, tuple[float, float] | None] = dict.fromkeys(METRICS)
    reasons: dict[str, str] = {}
    tail = (1 - level) / 2 * 100
    for name in METRICS:
        if defined is not None and defined.get(name) is None:
            reasons[f"{name}_ci"] = "the statistic itself is undefined"
            continue
        values = dist[name]
        valid = values[np.isfinite(values)]
        if len(valid) < n_boot / 2:
            reasons[f"{name}_ci"] = f"defined in only {len(valid)} of {n_boot} resamples"
            continue
        lo, hi = np.percentile(valid, [tail, 100 - tail])
        if hi - lo <= 1e-12:
            reasons[f"{name}_ci"] = (f"every resample gives {lo:.3g}: the bootstrap cannot measure the uncertainty "
                                     "(too few or too uniform items)")
            continue
        out[name] = (float(lo), float(hi))
    return out, reasons


def bootstrap_cis(
    first: np.ndarray, second: np.ndarray, clusters: list[str], scale: ScaleSpec, n_boot: int, seed: int,
    level: float = 0.95, resampler: Resampler | None = None, universe: dict[str, int] | None = None,
    defined: dict[str, float | None] | None = None,
) -> dict[str, tuple[float, float] | None]:
    """Percentile intervals from resampling whole transcripts with replacement (see resample.py)."""
    return bootstrap_cis_explained(first, second, clusters, scale, n_boot, seed, level, resampler, universe,
                                   defined)[0]


def bootstrap_cis_explained(first, second, clusters, scale, n_boot, seed, level=0.95, resampler=None,
                            universe=None, defined=None, n_units: int | None = None, prep: Prepared | None = None):
    """Intervals and the reason each missing one is missing.

    An interval is None when there are fewer than 5 transcripts, when fewer than half the resamples
    define the statistic, or when every resample gives the same value: an interval built from those
    would look far surer than it is."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    if n_boot <= 0:
        return dict.fromkeys(METRICS), {}
    if n_units is not None:  # clusters are already codes in 0..n_units-1
        idx, size = np.asarray(clusters), n_units
    else:
        idx, size = cluster_index(list(clusters), universe)
    n_clusters = len(np.unique(idx))
    if n_clusters < MIN_CLUSTERS_FOR_CI:
        reason = (f"only {n_clusters} transcript(s) (systems, at system level) to resample; at least "
                  f"{MIN_CLUSTERS_FOR_CI} are needed")
        return dict.fromkeys(METRICS), {f"{m}_ci": reason for m in METRICS}
    if resampler is None or resampler.n_clusters != size:
        resampler = Resampler(size, n_boot, seed)
    if prep is None or prep.F.shape[0] != size:
        prep = Prepared(a, b, idx, size, scale)
    dist = bootstrap_distribution(prep, resampler)
    return _percentile_cis(dist, n_boot, level, defined)


class BootstrapPlan:
    """Metric sets whose intervals are computed later, together in one pass over the shared resamples
    (each chunk of counts converted once for all of them); run it every few comparisons to bound memory."""

    def __init__(self, resampler: Resampler, level: float = 0.95):
        self.resampler = resampler
        self.level = level
        self.pending: list[tuple[MetricSet, Prepared, dict[str, float | None]]] = []

    def run(self) -> None:
        if not self.pending:
            return
        dists = bootstrap_distributions([p for _, p, _ in self.pending], self.resampler)
        for (m, _, values), dist in zip(self.pending, dists, strict=True):
            cis, reasons = _percentile_cis(dist, self.resampler.n_boot, self.level, values)
            for name, ci in cis.items():
                setattr(m, f"{name}_ci", ci)
            m.reasons.update(reasons)
        self.pending = []


def metric_set(first, second, clusters, scale: ScaleSpec, n_boot: int, seed: int, *,
               resampler: Resampler | None = None, universe: dict[str, int] | None = None,
               n_units: int | None = None, plan: BootstrapPlan | None = None) -> MetricSet:
    """Point estimates plus bootstrap intervals for one pair of score vectors, with reasons for nulls.
    With a `plan`, the intervals are filled in when the plan runs."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    prep = None
    n_clusters = 0
    if len(a):
        idx, size = (np.asarray(clusters), n_units) if n_units is not None \
            else cluster_index(list(clusters), universe)
        n_clusters = int(np.count_nonzero(np.bincount(idx, minlength=size)))
        prep = Prepared(a, b, idx, size, scale)
    values, reasons, alpha_level = point_metrics_explained(a, b, scale, prep)
    head = {"n": len(a), "n_transcripts": n_clusters, **values, "reasons": reasons,
            "krippendorff_alpha_level": alpha_level if len(a) else None}
    if plan is not None and prep is not None and n_boot > 0 and n_clusters >= MIN_CLUSTERS_FOR_CI:
        m = MetricSet.model_validate(head)
        plan.pending.append((m, prep, values))
        return m
    cis, ci_reasons = bootstrap_cis_explained(a, b, clusters, scale, n_boot, seed, resampler=resampler,
                                              universe=universe, defined=values, n_units=n_units, prep=prep)
    return MetricSet.model_validate({**head, **{f"{k}_ci": v for k, v in cis.items()},
                                     "reasons": {**reasons, **ci_reasons}})


def confusion(first, second, scale: ScaleSpec) -> Confusion:
    """Counts of (human level, judge level), as sklearn's confusion_matrix(human, judge)."""
    k = len(scale.levels)
    if len(first) == 0:
        return Confusion(labels=scale.levels, matrix=[[0] * k for _ in scale.levels])
    cells = (to_levels(second, scale) - scale.min) * k + (to_levels(first, scale) - scale.min)
    return Confusion(labels=scale.levels, matrix=np.bincount(cells, minlength=k * k).reshape(k, k).tolist())


def grouped_metrics(judge: np.ndarray, human: np.ndarray, group: np.ndarray, by: str, scale: ScaleSpec,
                    n_boot: int, seed: int) -> GroupedMetrics:
    """Each statistic within each group (`group`: a code per pair), then the unweighted mean over the
    groups that define it; intervals resample groups."""
    table: dict[str, list[float]] = {name: [] for name in METRICS}
    order = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[order])) + 1
    n_groups = 0
    for rows in np.split(order, cuts) if len(order) else []:
        n_groups += 1
        values = point_metrics(judge[rows], human[rows], scale)
        for name in METRICS:
            value = values[name]
            table[name].append(np.nan if value is None else value)
    mean: dict[str, float | None] = {}
    ci: dict[str, tuple[float, float] | None] = {}
    used: dict[str, int] = {}
    skipped: dict[str, int] = {}
    rng = np.random.default_rng(seed)
    for name, vals in table.items():
        v = np.asarray(vals, dtype=float)
        ok = v[np.isfinite(v)]
        used[name], skipped[name] = len(ok), len(v) - len(ok)
        mean[name] = float(ok.mean()) if len(ok) else None
        ci[name] = None
        if len(ok) >= MIN_CLUSTERS_FOR_CI and n_boot > 0:
            boots = ok[rng.integers(0, len(ok), size=(n_boot, len(ok)))].mean(axis=1)
            lo, hi = np.percentile(boots, [2.5, 97.5])
            ci[name] = (float(lo), float(hi)) if hi - lo > 1e-12 else None
    return GroupedMetrics(by=by, n_groups=n_groups, mean=mean, ci=ci, used=used, skipped=skipped)


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
            out[item] = ("scored", float(sum(scores) / len(scores)))
        elif n_no:
            out[item] = ("not_observed", None)
        else:
            out[item] = ("missing", None)
    return out


def agreement(
    judge: list[JudgeScore], human: list[HumanLabel], scale: ScaleSpec, *, n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0, judge_identity: JudgeIdentity | None = None, dimension_order: list[str] | None = None,
    pairing: Pairing = "mean", scales: dict[str, ScaleSpec] | None = None, groups: dict[str, str] | None = None,
    group_by: str | None = None, systems: dict[str, str] | None = None, calibrated: list[JudgeScore] | None = None,
) -> AgreementReport:
    """The full report from records (see agreement_frames, which does the work on columns)."""
    return agreement_frames(judge_frame(judge), human_frame(human), scale, n_boot=n_boot, seed=seed,
                            judge_identity=judge_identity, dimension_order=dimension_order, pairing=pairing,
                            scales=scales, groups=groups, group_by=group_by, systems=systems,
                            calibrated=None if calibrated is None else judge_frame(calibrated))


def agreement_frames(
    judge: pd.DataFrame, human: pd.DataFrame, scale: ScaleSpec, *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
    judge_identity: JudgeIdentity | None = None, dimension_order: list[str] | None = None, pairing: Pairing = "mean",
    scales: dict[str, ScaleSpec] | None = None, groups: dict[str, str] | None = None, group_by: str | None = None,
    systems: dict[str, str] | None = None, calibrated: pd.DataFrame | None = None,
) -> AgreementReport:
    """Judge vs humans per dimension and overall, the human ceilings (pairwise and leave-one-rater-out),
    and optionally within-group averages (`groups`: transcript -> group), system-level statistics
    (`systems`: transcript -> system; each system's mean judge score vs its mean human score) and a
    calibrated judge (`calibrated`, same columns as `judge`) measured the same way beside the raw one.

    `judge`: columns transcript, dimension, status, score; `human`: the same plus rater."""
    coded = code_frames(judge, human, calibrated, dimension_order)
    dims, dim_names, n_items, labels = coded.dims, coded.dim_names, coded.n_items, coded.labels
    if not dims:
        from evaluator.errors import BadInput

        raise BadInput("no dimension has both a judge score and a human label for the same transcript: "
                       "check that the labels and the judgments are about the same transcripts")
    dim_code = {d: i for i, d in enumerate(dim_names)}
    scales = scales or {}
    level = "system" if systems is not None else "item"
    notes: list[str] = []
    raters = coded.raters
    units = sorted(set(systems.values())) if systems is not None else coded.items
    code = {u: i for i, u in enumerate(units)}
    resampler = Resampler(len(code), n_boot, seed)

    plan = BootstrapPlan(resampler)

    def measure(p: Pairs, sc: ScaleSpec) -> MetricSet:
        return metric_set(p.judge, p.human, p.items, sc, n_boot, seed, resampler=resampler, n_units=len(code),
                          plan=plan)

    statuses = {d: StatusCounts(**dict(zip(STATUS_FIELDS, map(int, row), strict=True)))
                for d, row in coded.statuses.items()}

    system_of_item = np.zeros(0, dtype=np.int64)
    if systems is not None:
        system_of_item = np.array([code.get(systems.get(t, ""), -1) for t in coded.items], dtype=np.int64)

    def judge_vs_human(rows: JudgeRows, lab: CodedLabels) -> Pairs:
        if level == "system":
            return system_pairs(rows, lab, n_items, system_of_item, len(code))
        return (mean_pairs if pairing == "mean" else each_pairs)(rows, lab, n_items)

    raw, cal_rows = coded.judge, coded.calibrated
    group_of_item = None
    if groups is not None and level == "item":
        gcode = {g: i for i, g in enumerate(sorted(set(groups.values())))}
        group_of_item = np.array([gcode.get(groups.get(t, ""), -1) for t in coded.items], dtype=np.int64)
    rater_by_dim = human.groupby("dimension", observed=True)["rater"].unique()
    per_dim: dict[str, DimensionAgreement] = {}
    pooled_status = StatusCounts()
    for dim in dims:  # each dimension's pairs are built here and released after its bootstrap pass
        sc = scales.get(dim, scale)
        d = dim_code[dim]
        lab, rows = labels.dimension(d, n_items), raw.dimension(d, n_items)
        p = judge_vs_human(rows, lab)
        hh_m = loo_m = grouped = cal_m = None
        if level == "item":
            if len(hp := rater_pairs(lab, n_items)):
                hh_m = measure(hp, sc)
            lh, lj = leave_one_out_pairs(rows, lab, n_items)
            if len(lh):
                loo_m = LeaveOneOut(human=measure(lh, sc), judge=measure(lj, sc))
        if group_of_item is not None:
            g = group_of_item[p.items]
            grouped = grouped_metrics(p.judge[g >= 0], p.human[g >= 0], g[g >= 0], group_by or "group", sc,
                                      n_boot, seed)
        if cal_rows is not None:
            cal_m = measure(judge_vs_human(cal_rows.dimension(d, n_items), lab), sc)
        st = statuses.get(dim, StatusCounts())
        per_dim[dim] = DimensionAgreement(
            dimension=dim, judge_vs_human=measure(p, sc), confusion=confusion(p.judge, p.human, sc), statuses=st,
            human_human=hh_m, raters=sorted(map(str, rater_by_dim.get(dim, []))), leave_one_out=loo_m,
            grouped=grouped, calibrated=cal_m, scale=sc)
        plan.run()  # this dimension's comparisons in one pass; their tables are then released
        for field in StatusCounts.model_fields:
            setattr(pooled_status, field, getattr(pooled_status, field) + getattr(st, field))
        if len(p) < 10:
            notes.append(f"{dim}: only {len(p)} paired scores; intervals are wide and the point values fragile")
    used_scales = sorted({(s.min, s.max) for s in (scales.get(d, scale) for d in dims)})
    overall_scale = ScaleSpec(min=used_scales[0][0], max=used_scales[0][1]) if len(used_scales) == 1 else scale

    def pooled_measure(p: Pairs) -> MetricSet | None:
        """One pooled comparison measured and its bootstrap run before the next is built (one set of
        pooled pairs alive at a time)."""
        if not len(p):
            return None
        m = measure(p, overall_scale)
        plan.run()
        return m

    if len(used_scales) == 1:
        all_jh = judge_vs_human(raw, labels)
        overall_conf = confusion(all_jh.judge, all_jh.human, overall_scale)
        overall_jh = pooled_measure(all_jh) or measure(all_jh, overall_scale)
        del all_jh
        overall_hh = overall_loo = None
        if level == "item":
            overall_hh = pooled_measure(rater_pairs(labels, n_items))
            lh, lj = leave_one_out_pairs(raw, labels, n_items)
            loo_human, loo_judge = pooled_measure(lh), pooled_measure(lj)
            del lh, lj
            overall_loo = LeaveOneOut(human=loo_human, judge=loo_judge) if loo_human and loo_judge else None
        overall_cal = pooled_measure(judge_vs_human(cal_rows, labels)) if cal_rows is not None else None
    else:
        why = "dimensions are on different scales; no pooled row (see each dimension)"
        items = judge_vs_human(raw, labels).items
        overall_jh = MetricSet(n=len(items), n_transcripts=len(np.unique(items)), reasons=dict.fromkeys(METRICS, why))
        overall_hh = overall_loo = overall_cal = None
        overall_conf = Confusion(labels=[], matrix=[])
        notes.append(why)
    overall = DimensionAgreement(
        dimension="overall", judge_vs_human=overall_jh, confusion=overall_conf, statuses=pooled_status,
        human_human=overall_hh, raters=raters, leave_one_out=overall_loo, calibrated=overall_cal,
        scale=overall_scale)
    if level == "system":
        notes.append(f"system level: each of {len(code)} systems' mean judge score vs its mean human score "
                     "(raters' mean per item); intervals resample systems; no human ceiling at this level")
    elif len(raters) < 2:
        notes.append("one human rater: no human-human ceiling (add a second rater's labels to get one)")
    elif len(raters) > 2:
        notes.append("human-human metrics pool every pair of raters; bias there is earlier minus later rater id")
    if groups is not None and level == "item":
        notes.append(f"grouped by {group_by}: statistics within each of {len(set(groups.values()))} groups, then "
                     "averaged (`grouped` gives the groups used and skipped per statistic)")
    definitions = {
        "pairing": PAIRING_DEFINITIONS[pairing], "exact": EXACT_DEFINITION,
        "leave_one_out": "ceiling: each rater vs the mean of the other raters of the item; beside it the judge "
                         "vs that same mean, on the same items",
        "human_human": "every pair of raters who scored the same item (single rater vs single rater)",
        "krippendorff_alpha": "ordinal when every score is a scale level, interval when any score is fractional "
                              "(stated per entry as krippendorff_alpha_level)",
        "intervals": f"95% percentile bootstrap, {n_boot} resamples of "
                     f"{'systems' if level == 'system' else 'transcripts'} (seed {seed})",
    }
    return AgreementReport(scale=overall_scale, judge=judge_identity, n_bootstrap=n_boot, seed=seed,
                           dimensions=per_dim, overall=overall, notes=notes, pairing=pairing, level=level,
                           human="mean of raters" if pairing == "mean" else "each rater", definitions=definitions)
