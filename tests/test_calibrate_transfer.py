"""Calibration models (ordinal, level probabilities, per-rater offsets) and the fit-on-A / apply-to-B
workflow, end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import expit
from typer.testing import CliRunner

from evaluator.calibrate.calibration import (
    CalibrationSettings,
    apply_calibration,
    check_applicable,
    fit_calibration,
)
from evaluator.calibrate.labels import read_plain
from evaluator.calibrate.ordinal import _nll, fit_ordinal, predict_expected, soft_targets
from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec
from evaluator.cli import app
from evaluator.errors import BadInput

SCALE = ScaleSpec(min=1, max=5)
FAST = CalibrationSettings(n_bootstrap=0)
runner = CliRunner()


# -- the ordinal model -----------------------------------------------------------------------------
def test_ordinal_gradient_is_exact_and_parameters_are_recovered():
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(0, 1, (n, 2))
    beta, cuts = np.array([1.5, -0.7]), np.array([-2.0, -0.5, 0.5, 2.0])
    cdf = expit(cuts[None, :] - (x @ beta)[:, None])
    y = (rng.random(n)[:, None] > cdf).sum(axis=1) + 1
    w = soft_targets([[v] for v in y], SCALE)
    z = (x - x.mean(0)) / x.std(0)
    theta = rng.normal(0, 0.5, 6)
    assert check_grad(lambda t: _nll(t, z, w, 1.0)[0], lambda t: _nll(t, z, w, 1.0)[1], theta) < 1e-3
    params = fit_ordinal(x, w, ["a", "b"], SCALE, penalty=0.01)
    np.testing.assert_allclose(np.array(params.coef) / np.array(params.scale), beta, atol=0.12)
    # the expected level tracks the true expected level
    true_expected = (np.hstack([cdf, np.ones((n, 1))]) - np.hstack([np.zeros((n, 1)), cdf])) @ np.arange(1, 6)
    assert np.corrcoef(predict_expected(params, x), true_expected)[0, 1] > 0.99


def test_soft_targets_split_fractional_and_several_raters():
    w = soft_targets([[3.5], [2, 4], [5, 5, 4]], SCALE)
    np.testing.assert_allclose(w[0], [0, 0, 0.5, 0.5, 0])
    np.testing.assert_allclose(w[1], [0, 0.5, 0, 0.5, 0])
    np.testing.assert_allclose(w[2], [0, 0, 0, 1 / 3, 2 / 3])


# -- data for calibration ----------------------------------------------------------------------------
OFFSETS = {"lenient": 0.8, "middle": 0.0, "harsh": -0.8, "mild": 0.3}


def labelled(rng, n, prefix, subsets=True, probs=False):
    """A judge that is lenient and bent; raters with personal offsets, each item labelled by two of them."""
    judge, human = [], []
    for i in range(n):
        t = f"{prefix}{i}"
        truth = rng.uniform(1, 5)
        raw = float(np.clip(1 + 4 * ((truth - 1) / 4) ** 0.5 + rng.normal(0, 0.35), 1, 5))
        p = None
        if probs:
            logits = -((np.arange(1, 6) - truth) ** 2) / 0.8
            p = list(np.exp(logits) / np.exp(logits).sum())
        judge.append(JudgeScore(transcript=t, dimension="d", status="scored", score=round(raw, 3), probs=p))
        raters = rng.choice(list(OFFSETS), 2, replace=False) if subsets else list(OFFSETS)
        for r in raters:
            human.append(HumanLabel(transcript=t, rater=str(r), dimension="d", status="scored",
                                    score=float(np.clip(round(truth + OFFSETS[str(r)] + rng.normal(0, 0.4)), 1, 5))))
    return judge, human


def test_per_rater_offsets_are_learned_and_used_when_raters_recur():
    rng = np.random.default_rng(5)
    judge, human = labelled(rng, 400, "a")
    result = fit_calibration(judge, human, SCALE, FAST)
    d = result.dimensions["d"]
    chosen = d.map(d.chosen)
    assert chosen.rater_offsets is not None, [m.cv_with_offsets.after.mae for m in d.maps]
    assert chosen.rater_offsets["lenient"] - chosen.rater_offsets["harsh"] == pytest.approx(1.6, abs=0.35)
    assert chosen.cv_with_offsets.after.mae < chosen.cv.after.mae - 0.05
    # applied to new items labelled by the same raters, the offsets help there too
    judge_b, human_b = labelled(np.random.default_rng(6), 300, "b")
    with_raters = apply_calibration(result, judge_b, human_b)
    without = apply_calibration(result, judge_b)
    consensus = {}
    for h in human_b:
        consensus.setdefault(h.transcript, []).append(h.score)
    y = np.array([np.mean(consensus[j.transcript]) for j in judge_b])
    mae = lambda scores: np.mean(np.abs(np.array([s.score for s in scores]) - y))  # noqa: E731
    assert mae(with_raters) < mae(without) - 0.05
    assert mae(without) < np.mean(np.abs(np.array([j.score for j in judge_b]) - y))


def test_offsets_are_not_used_when_every_item_has_every_rater():
    judge, human = labelled(np.random.default_rng(7), 120, "a", subsets=False)
    d = fit_calibration(judge, human, SCALE, FAST).dimensions["d"]
    assert d.map(d.chosen).rater_offsets is None  # each item's mean already includes every rater


def test_level_probabilities_are_features_and_must_be_present_to_apply():
    rng = np.random.default_rng(8)
    judge, human = labelled(rng, 300, "a", probs=True)
    result = fit_calibration(judge, human, SCALE, CalibrationSettings(n_bootstrap=0, rater_offsets=False))
    assert result.prob_levels == {"d": 5}
    d = result.dimensions["d"]
    ordinal = d.map("ordinal")
    assert ordinal.params["features"] == ["d", "d#p2", "d#p3", "d#p4", "d#p5"]
    assert ordinal.cv.after.mae < d.map("identity").cv.after.mae
    if d.chosen in ("ordinal", "multi_ridge"):
        stripped = [j.model_copy(update={"probs": None}) for j in judge]
        with pytest.raises(BadInput, match="level probabilities"):
            check_applicable(result, stripped, SCALE)


def test_cross_validated_error_carries_over_to_another_sample():
    """The CV estimate must be honest: applied to fresh data from the same process it is about as good."""
    judge_a, human_a = labelled(np.random.default_rng(9), 400, "a")
    judge_b, human_b = labelled(np.random.default_rng(10), 400, "b")
    result = fit_calibration(judge_a, human_a, SCALE, FAST)
    d = result.dimensions["d"]
    chosen = d.map(d.chosen)
    cv = (chosen.cv_with_offsets if chosen.rater_offsets else chosen.cv).after.mae
    cal = apply_calibration(result, judge_b, human_b)
    consensus = {}
    for h in human_b:
        consensus.setdefault(h.transcript, []).append(h.score)
    mae_b = np.mean([abs(c.score - np.mean(consensus[c.transcript])) for c in cal])
    assert abs(mae_b - cv) < 0.06


# -- files and the CLI ---------------------------------------------------------------------------------
def write_pair(tmp_path, name, judge, human, wide_probs=False):
    jrows = ["transcript,dimension,score" + (",p1,p2,p3,p4,p5" if judge[0].probs and not wide_probs else "")]
    for j in judge:
        extra = "," + ",".join(f"{p:.6f}" for p in j.probs) if j.probs and not wide_probs else ""
        jrows.append(f"{j.transcript},{j.dimension},{j.score}{extra}")
    if wide_probs:
        jrows = ["transcript,d," + ",".join(f"d_p{k}" for k in range(1, 6))]
        jrows += [f"{j.transcript},{j.score}," + ",".join(f"{p:.6f}" for p in j.probs) for j in judge]
    hrows = ["transcript,rater,dimension,score"] + [f"{h.transcript},{h.rater},{h.dimension},{h.score:g}" for h in human]
    (tmp_path / f"{name}_judge.csv").write_text("\n".join(jrows) + "\n")
    (tmp_path / f"{name}_human.csv").write_text("\n".join(hrows) + "\n")
    return str(tmp_path / f"{name}_judge.csv"), str(tmp_path / f"{name}_human.csv")


def test_probability_columns_long_and_wide(tmp_path):
    judge, human = labelled(np.random.default_rng(1), 5, "a", probs=True)
    jl, _ = write_pair(tmp_path, "long", judge, human)
    jw, _ = write_pair(tmp_path, "wide", judge, human, wide_probs=True)
    for path in (jl, jw):
        got = read_plain(path, kind="judge")
        assert len(got.labels) == 5 and {lb.dimension for lb in got.labels} == {"d"}
        np.testing.assert_allclose(got.probs[("a0", "d")], judge[0].probs, atol=1e-5)
    bad = tmp_path / "bad.csv"
    bad.write_text("transcript,dimension,score,p1,p2\na,d,2,0.9,0.9\n")
    with pytest.raises(BadInput, match="sum to 1"):
        read_plain(bad, kind="judge")


def test_fit_on_a_apply_to_b_through_the_cli(tmp_path):
    ja, ha = write_pair(tmp_path, "A", *labelled(np.random.default_rng(21), 200, "a"))
    jb, hb = write_pair(tmp_path, "B", *labelled(np.random.default_rng(22), 150, "b"))
    cal_file = tmp_path / "cal.json"
    fit = runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--out", str(cal_file), "--bootstrap", "0"])
    assert fit.exit_code == 0, fit.output
    assert "written to" in fit.output
    doc = json.loads(cal_file.read_text())
    assert doc["format"] == "evaluator.calibration" and doc["format_version"] == 1 and doc["id"].startswith("cal-")

    agree = runner.invoke(app, ["agreement", "--judge", jb, "--human", hb, "--calibration", str(cal_file),
                                "--bootstrap", "100", "--format", "json"])
    assert agree.exit_code == 0, agree.output
    data = json.loads(agree.stdout)
    raw, cal = data["d"], data["d"]["calibrated"]
    for key in ("n", "exact", "within_one", "qwk", "krippendorff_alpha", "spearman", "kendall", "pearson", "mae",
                "rmse", "bias", "mae_ci", "reasons"):
        assert key in cal
    assert cal["n"] == raw["n"] and cal["mae"] < raw["mae"] - 0.2
    assert "calibrated" in data["overall"]

    out = tmp_path / "b_cal.csv"
    applied = runner.invoke(app, ["calibrated", "--judge", jb, "--calibration", str(cal_file), "--out", str(out)])
    assert applied.exit_code == 0, applied.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("transcript,dimension,status,raw,calibrated,method") and len(lines) == 151

    # stored by id, applied by id
    db = tmp_path / "c.duckdb"
    saved = runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--save", "--db", str(db),
                                "--bootstrap", "0", "--format", "json"])
    assert saved.exit_code == 0, saved.output
    cal_id = json.loads(saved.stdout)["id"]
    by_id = runner.invoke(app, ["agreement", "--judge", jb, "--human", hb, "--calibration", cal_id[:10], "--db",
                                str(db), "--bootstrap", "0", "--format", "json"])
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout)["d"]["calibrated"]["mae"] == pytest.approx(cal["mae"])


def test_mismatched_calibration_is_a_clear_error(tmp_path):
    ja, ha = write_pair(tmp_path, "A", *labelled(np.random.default_rng(31), 80, "a"))
    cal_file = tmp_path / "cal.json"
    assert runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--out", str(cal_file),
                               "--bootstrap", "0"]).exit_code == 0
    other = tmp_path / "other.csv"
    other.write_text("transcript,dimension,score\nz1,style,3\nz2,style,4\n")
    r = runner.invoke(app, ["calibrated", "--judge", str(other), "--calibration", str(cal_file)])
    assert r.exit_code == 2 and "no dimension in common" in r.output
    r = runner.invoke(app, ["calibrated", "--judge", ja, "--calibration", str(cal_file), "--scale", "1-7"])
    assert r.exit_code == 2 and "scale 1-5" in r.output and "1-7" in r.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "something else"}')
    r = runner.invoke(app, ["calibrated", "--judge", ja, "--calibration", str(broken)])
    assert r.exit_code == 2 and "not a calibration file" in r.output
    r = runner.invoke(app, ["calibrated", "--judge", ja, "--calibration", "cal-nope", "--db", str(tmp_path / "x.duckdb")])
    assert r.exit_code == 2
    assert not (tmp_path / "x.duckdb").exists()


def test_an_inferred_scale_takes_the_calibrations_when_the_scores_fit_in_it(tmp_path):
    ja, ha = write_pair(tmp_path, "A", *labelled(np.random.default_rng(41), 80, "a"))
    cal_file = tmp_path / "cal.json"
    assert runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--out", str(cal_file),
                               "--bootstrap", "0"]).exit_code == 0
    judge, human = labelled(np.random.default_rng(42), 40, "b")
    narrow = [j.model_copy(update={"score": float(np.clip(j.score, 2, 4))}) for j in judge]
    human = [h.model_copy(update={"score": float(np.clip(h.score, 2, 4))}) for h in human]
    jb, hb = write_pair(tmp_path, "B", narrow, human)
    r = runner.invoke(app, ["agreement", "--judge", jb, "--human", hb, "--calibration", str(cal_file),
                            "--bootstrap", "0", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["d"]["scale"] == {"min": 1, "max": 5}
