"""Agreement statistics: reference libraries, hand-worked cases, the vectorised bootstrap path."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from evaluator.calibrate.agreement import (
    METRICS,
    agreement,
    batch_metrics,
    bootstrap_cis,
    human_consensus,
    point_metrics,
)
from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec

SCALE = ScaleSpec(min=1, max=5)


def test_hand_worked_small_case():
    judge = np.array([1, 2, 3, 4], dtype=float)
    human = np.array([1, 2, 4, 4], dtype=float)
    m = point_metrics(judge, human, SCALE)
    assert m["exact"] == pytest.approx(0.75)
    assert m["within_one"] == pytest.approx(1.0)
    assert m["mae"] == pytest.approx(0.25)
    assert m["rmse"] == pytest.approx(0.5)
    assert m["bias"] == pytest.approx(-0.25)


def test_qwk_hand_worked_two_levels():
    # confusion [[1,1],[0,2]], expected [[.5,1.5],[.5,1.5]]: kappa = 1 - 1/2
    m = point_metrics(np.array([1, 2, 2, 2.0]), np.array([1, 1, 2, 2.0]), ScaleSpec(min=1, max=2))
    assert m["qwk"] == pytest.approx(0.5)


def test_alpha_hand_worked_total_disagreement():
    # values 1 and 2 twice each; delta(1,2) = (4 - 2)^2 = 4; alpha = 1 - 3 * 16 / 32 = -0.5
    m = point_metrics(np.array([1.0, 2.0]), np.array([2.0, 1.0]), SCALE)
    assert m["krippendorff_alpha"] == pytest.approx(-0.5)


@pytest.mark.parametrize("seed", range(6))
def test_point_metrics_match_reference_libraries(seed):
    rng = np.random.default_rng(seed)
    human = rng.integers(1, 6, 30).astype(float)
    judge = np.clip(human + rng.integers(-2, 3, 30), 1, 5).astype(float)
    m = point_metrics(judge, human, SCALE)
    assert m["qwk"] == pytest.approx(cohen_kappa_score(judge.astype(int), human.astype(int), weights="quadratic"))
    assert m["krippendorff_alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=[judge, human], level_of_measurement="ordinal"))
    assert m["spearman"] == pytest.approx(stats.spearmanr(judge, human).statistic)
    assert m["kendall"] == pytest.approx(stats.kendalltau(judge, human).statistic)
    assert m["pearson"] == pytest.approx(stats.pearsonr(judge, human).statistic)


@pytest.mark.parametrize("seed", range(8))
def test_vectorised_bootstrap_statistics_equal_the_libraries(seed):
    """The resample path must compute exactly what the libraries compute, ties and fractions included."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 40))
    human = rng.integers(1, 6, n).astype(float)
    judge = np.clip(human + rng.integers(-2, 3, n), 1, 5).astype(float)
    if seed % 2:
        judge = np.clip(judge + rng.choice([0.0, 0.25, 0.5, -0.5], n), 1, 5)
        human = np.clip(human + rng.choice([0.0, 0.5], n), 1, 5)
    reference = point_metrics(judge, human, SCALE)
    fast = batch_metrics(judge[None, :], human[None, :], SCALE)
    for name in METRICS:
        if reference[name] is None:
            assert np.isnan(fast[name][0]), name
        else:
            assert fast[name][0] == pytest.approx(reference[name], abs=1e-9), name


def test_undefined_statistics_are_none_not_numbers():
    m = point_metrics(np.array([3.0, 3.0, 3.0]), np.array([3.0, 3.0, 3.0]), SCALE)
    assert m["exact"] == 1.0
    assert m["qwk"] is None and m["spearman"] is None and m["pearson"] is None and m["krippendorff_alpha"] is None


def test_bootstrap_is_reproducible_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    human = rng.integers(1, 6, 60).astype(float)
    judge = np.clip(human + rng.integers(-1, 2, 60), 1, 5).astype(float)
    clusters = [f"t{i}" for i in range(60)]
    a = bootstrap_cis(judge, human, clusters, SCALE, 400, seed=3)
    b = bootstrap_cis(judge, human, clusters, SCALE, 400, seed=3)
    assert a == b
    point = point_metrics(judge, human, SCALE)
    for name in ("qwk", "mae", "spearman"):
        lo, hi = a[name]
        assert lo <= point[name] <= hi
        assert hi - lo > 0


def _labels(rows):
    return [HumanLabel(transcript=t, rater=r, dimension=d, status=s, score=v) for t, r, d, s, v in rows]


def test_consensus_keeps_not_observed_and_missing_apart():
    labels = _labels([
        ("t1", "a", "recovery", "scored", 4), ("t1", "b", "recovery", "scored", 3),
        ("t2", "a", "recovery", "not_observed", None), ("t2", "b", "not_observed", "not_observed", None),
        ("t3", "a", "recovery", "missing", None),
        ("t4", "a", "recovery", "not_observed", None), ("t4", "b", "recovery", "not_observed", None),
        ("t4", "c", "recovery", "scored", 2),
    ])
    c = human_consensus(labels)
    assert c[("t1", "recovery")] == ("scored", 3.5)
    assert c[("t2", "recovery")] == ("not_observed", None)
    assert c[("t3", "recovery")] == ("missing", None)
    assert c[("t4", "recovery")] == ("not_observed", None)


def test_report_with_two_raters_has_human_ceiling_and_status_counts():
    rng = np.random.default_rng(5)
    rows, judge = [], []
    for i in range(25):
        truth = int(rng.integers(1, 6))
        for rater in ("a", "b"):
            rows.append((f"t{i}", rater, "invariant", "scored", float(np.clip(truth + rng.integers(-1, 2), 1, 5))))
        judge.append(JudgeScore(transcript=f"t{i}", dimension="invariant", status="scored", score=float(truth)))
        judge.append(JudgeScore(transcript=f"t{i}", dimension="recovery",
                                status="not_observed" if i % 3 == 0 else "scored", score=None if i % 3 == 0 else 3.0))
        rows.append((f"t{i}", "a", "recovery", "not_observed" if i % 2 == 0 else "scored", None if i % 2 == 0 else 3.0))
    report = agreement(judge, _labels(rows), SCALE, n_boot=200, seed=1)
    doc = report.to_json()
    assert set(doc) == {"invariant", "recovery", "overall"}
    for key in ("n", "exact", "within_one", "qwk", "krippendorff_alpha", "spearman", "kendall", "pearson", "mae",
                "rmse", "bias", "qwk_ci", "mae_ci"):
        assert key in doc["invariant"] and key in doc["overall"]
    inv = report.dimensions["invariant"]
    assert inv.human_human is not None and inv.human_human.n == 25
    assert inv.judge_vs_human.n == 25
    st = report.dimensions["recovery"].statuses
    assert st.both_not_observed == sum(1 for i in range(25) if i % 3 == 0 and i % 2 == 0)
    assert st.both_scored + st.both_not_observed + st.judge_not_observed_human_scored \
        + st.human_not_observed_judge_scored == 25
    assert report.overall.judge_vs_human.n == inv.judge_vs_human.n + st.both_scored


def test_fractional_scores_are_accepted_on_both_sides():
    judge = [JudgeScore(transcript=f"t{i}", dimension="d", status="scored", score=s)
             for i, s in enumerate([1.2, 2.6, 3.4, 4.9, 2.0, 3.5])]
    human = _labels([(f"t{i}", "a", "d", "scored", s) for i, s in enumerate([1.0, 2.5, 3.5, 5.0, 2.5, 3.0])])
    report = agreement(judge, human, SCALE, n_boot=100)
    m = report.dimensions["d"].judge_vs_human
    assert m.exact == pytest.approx(4 / 6)  # differences of exactly 0.5 (2.0/2.5, 3.5/3.0) are not exact
    assert m.mae == pytest.approx(np.mean([0.2, 0.1, 0.1, 0.1, 0.5, 0.5]))


@pytest.mark.parametrize(("k", "n"), [(0, 7), (3, 7), (7, 7), (50, 50), (1, 3)])
def test_wilson_interval_matches_scipy_and_reaches_the_bounds_exactly(k: int, n: int) -> None:
    """All pairs agreeing is an upper bound of exactly 1 (floating point used to land a hair below)."""
    from scipy.stats import binomtest

    from evaluator.calibrate.pairing import wilson

    lo, hi = wilson(k, n)
    ci = binomtest(k, n).proportion_ci(method="wilson")
    assert lo == pytest.approx(ci.low, abs=1e-4) and hi == pytest.approx(ci.high, abs=1e-4)
    assert (hi == 1.0) == (k == n) and (lo == 0.0) == (k == 0)
