"""Calibration: maps equal scikit-learn's, simulations, refusal, warnings, versioning, CLI end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluator.calibrate.align import INSTALL_HINT, select_examples, split_holdout
from evaluator.calibrate.calibration import (
    CalibrationSettings,
    apply_isotonic,
    apply_multi,
    fit_calibration,
    fit_isotonic,
    fit_multi,
)
from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore, ScaleSpec
from evaluator.cli import app
from evaluator.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
SCALE = ScaleSpec(min=1, max=5)
FAST = CalibrationSettings(n_bootstrap=100)
runner = CliRunner()


def records(human, judge, dim="d", extra: dict | None = None):
    h = [HumanLabel(transcript=f"t{i}", rater="a", dimension=dim, status="scored", score=float(x))
         for i, x in enumerate(human)]
    j = [JudgeScore(transcript=f"t{i}", dimension=dim, status="scored", score=float(x)) for i, x in enumerate(judge)]
    for name, values in (extra or {}).items():
        j += [JudgeScore(transcript=f"t{i}", dimension=name, status="scored", score=float(x))
              for i, x in enumerate(values)]
    return j, h


def test_stored_isotonic_parameters_predict_like_sklearn():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, 80).astype(float)
    y = np.clip(x + rng.normal(0, 1, 80), 1, 5)
    params = fit_isotonic(x, y, SCALE)
    model = IsotonicRegression(y_min=1, y_max=5, out_of_bounds="clip").fit(x, y)
    grid = np.linspace(0, 6, 49)
    np.testing.assert_allclose(apply_isotonic(params, grid), model.predict(grid))


def test_stored_multi_signal_parameters_predict_like_sklearn():
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    f = rng.integers(1, 6, (60, 3)).astype(float)
    f[rng.random((60, 3)) < 0.15] = np.nan
    y = np.clip(np.nan_to_num(f[:, 0], nan=3) * 0.6 + 1, 1, 5)
    params = fit_multi(f, y, ["a", "b", "c"], SCALE)
    pipe = make_pipeline(SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True),
                         StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 16))).fit(f, y)
    np.testing.assert_allclose(apply_multi(params, f), np.clip(pipe.predict(f), 1, 5))


def test_monotone_distortion_plus_noise_is_clearly_improved_held_out():
    rng = np.random.default_rng(7)
    human = rng.integers(1, 6, 200).astype(float)
    # A lenient judge with a bent scale: a human 2 gets ~3.5, a human 3 ~4.1 (an expected score, fractional).
    judge = np.clip(1 + 4 * ((human - 1) / 4) ** 0.35 + rng.normal(0, 0.3, 200), 1, 5)
    result = fit_calibration(*records(human, judge), SCALE, FAST)
    d = result.dimensions["d"]
    iso = d.map("isotonic").cv
    assert iso.after.mae < iso.before.mae - 0.3
    assert iso.after.qwk > iso.before.qwk + 0.05
    assert iso.after.exact > iso.before.exact + 0.2
    assert d.chosen != "identity"


def test_pure_noise_is_not_made_to_look_good():
    rng = np.random.default_rng(11)
    human = rng.integers(1, 6, 200).astype(float)
    judge = rng.integers(1, 6, 200).astype(float)
    result = fit_calibration(*records(human, judge), SCALE, FAST)
    for m in result.dimensions["d"].maps:
        after = m.cv.after
        assert after.qwk is None or after.qwk < 0.2
        assert after.spearman is None or (after.spearman_ci[0] < 0 < after.spearman_ci[1])


def test_refuses_too_few_labels_and_says_how_many():
    j, h = records([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    with pytest.raises(BadInput) as err:
        fit_calibration(j, h, SCALE, FAST)
    assert "need at least 10" in str(err.value) and "d: 5" in str(err.value)


def test_warns_and_keeps_raw_when_calibration_is_worse_held_out():
    truth = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 3, 3]
    result = fit_calibration(*records(truth, truth), SCALE, FAST)
    d = result.dimensions["d"]
    assert d.chosen == "identity"
    assert any("makes held-out agreement worse" in w for w in result.warnings)


def test_multi_signal_beats_per_dimension_when_judge_mixes_dimensions_up():
    rng = np.random.default_rng(3)
    human = rng.integers(1, 6, 150).astype(float)
    other = rng.integers(1, 6, 150).astype(float)
    # The judge's "d" score is half the human d and half an unrelated dimension; "other" is reported too.
    judge_d = np.clip(0.5 * human + 0.5 * other + rng.normal(0, 0.2, 150), 1, 5)
    result = fit_calibration(*records(human, judge_d, extra={"other": other}), SCALE, FAST)
    d = result.dimensions["d"]
    assert d.map("multi_ridge").cv.after.mae < d.map("isotonic").cv.after.mae - 0.2
    assert d.chosen == "multi_ridge"


def test_version_follows_rubric_version_and_model():
    rng = np.random.default_rng(0)
    human = rng.integers(1, 6, 30)
    j, h = records(human, np.clip(human + 1, 1, 5))
    base = JudgeIdentity(judge_kind="llm", model="openai/m1", prompt_version="p1", rubric_versions=["default@aaa"])
    ids = {
        "base": fit_calibration(j, h, SCALE, FAST, judge_identity=base).id,
        "again": fit_calibration(j, h, SCALE, FAST, judge_identity=base).id,
        "model": fit_calibration(j, h, SCALE, FAST, judge_identity=base.model_copy(update={"model": "openai/m2"})).id,
        "rubric": fit_calibration(j, h, SCALE, FAST,
                                  judge_identity=base.model_copy(update={"rubric_versions": ["default@bbb"]})).id,
        "prompt": fit_calibration(j, h, SCALE, FAST, judge_identity=base.model_copy(update={"prompt_version": "p2"})).id,
    }
    assert ids["base"] == ids["again"]
    assert len({ids["base"], ids["model"], ids["rubric"], ids["prompt"]}) == 4


def test_stored_calibration_applies_only_to_its_judge_and_rubric_versions(tmp_path):
    from evaluator.calibrate.store import latest_calibration_maps, save_calibration
    from evaluator.store.db import Store

    rng = np.random.default_rng(0)
    human = rng.integers(1, 6, 30)
    j, h = records(human, np.clip(human + 1, 1, 5))
    ident = JudgeIdentity(judge_kind="llm", model="m1", prompt_version="p1", rubric_versions=["default@aaa"])
    result = fit_calibration(j, h, SCALE, FAST, judge_identity=ident)
    with Store(tmp_path / "c.duckdb") as store:
        save_calibration(store, result)
        assert latest_calibration_maps(store, ident, "default@aaa")[0] == result.id
        assert latest_calibration_maps(store, ident, "default@bbb") is None
        assert latest_calibration_maps(store, ident.model_copy(update={"model": "m2"}), "default@aaa") is None


# -- align: the pure parts and the missing extra ---------------------------------------------------------
def test_split_holdout_is_deterministic_and_disjoint():
    items = [f"t{i}" for i in range(10)]
    train, test = split_holdout(items, 0.3, seed=1)
    assert (train, test) == split_holdout(list(reversed(items)), 0.3, seed=1)
    assert not set(train) & set(test) and len(test) == 3 and sorted(train + test) == sorted(items)


def test_few_shot_selection_covers_levels_and_prefers_agreement():
    labels = []
    for t, scores in {"a": (1, 1), "b": (1, 2), "c": (5, 5), "d": (3, 3), "e": (3, 4), "f": (2, 2), "g": (5, 4)}.items():
        labels += [HumanLabel(transcript=t, rater=r, dimension="x", status="scored", score=s)
                   for r, s in zip(("r1", "r2"), scores, strict=True)]
    labels.append(HumanLabel(transcript="z", rater="r1", dimension="x", status="not_observed"))
    chosen = select_examples(labels, "x", train=list("abcdefgz"), k=4, scale=SCALE)
    assert [e.transcript for e in chosen][:3] == ["a", "c", "d"]  # extremes first, agreed-on first
    assert len({e.level for e in chosen}) == 4
    assert "z" not in {e.transcript for e in chosen}


def test_align_without_ragas_says_how_to_install(monkeypatch):
    from evaluator.calibrate import align

    monkeypatch.setattr(align, "ragas_available", lambda: False)
    result = runner.invoke(app, ["align", "--model", "openai/x"])
    assert result.exit_code == 2
    assert "pip install -e '.[ragas]'" in result.output  # as the README: the package is not on an index
    assert "pip install -e '.[ragas]'" in INSTALL_HINT and "evaluator[ragas]" not in INSTALL_HINT


# -- the CLI end to end --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("e2e") / "e.duckdb"
    result = runner.invoke(app, ["labels", "import", str(ROOT / "datasets" / "sample_labels.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    for transcript in sorted((ROOT / "transcripts").glob("*.md")):
        judged = runner.invoke(app, [str(transcript), "--db", str(db)])
        assert judged.exit_code in (0, 1), judged.output
    return db


def test_cli_agreement_on_the_samples(sample_db):
    # the samples are judged under four rubrics (default and three exercise rubrics), each one version:
    # one report per rubric version, unless pooling them is asked for
    split = runner.invoke(app, ["agreement", "--db", str(sample_db), "--bootstrap", "0", "--format", "json"])
    assert split.exit_code == 0, split.output
    versions = json.loads(split.stdout)["rubric_versions"]
    assert len(versions) == 4 and {v.split("@")[0] for v in versions} == {
        "default", "lru_ttl_cache", "agent_loop", "rag_pipeline"}
    assert all(doc["overall"]["rubric_versions"] == [v] for v, doc in versions.items())
    table = runner.invoke(app, ["agreement", "--db", str(sample_db), "--bootstrap", "200", "--pool-rubric-versions"])
    assert table.exit_code == 0, table.output
    assert "Human vs human" in table.output and "overall" in table.output and "POOLED" in table.output
    doc = runner.invoke(app, ["agreement", "--db", str(sample_db), "--bootstrap", "200", "--format", "json",
                              "--pool-rubric-versions"])
    assert doc.exit_code == 0
    data = json.loads(doc.stdout)
    assert "overall" in data and "invariant" in data and sorted(data["overall"]["rubric_versions"]) == sorted(versions)
    for key in ("n", "exact", "within_one", "qwk", "krippendorff_alpha", "spearman", "kendall", "pearson", "mae",
                "rmse", "bias", "qwk_ci", "krippendorff_alpha_ci", "mae_ci"):
        assert key in data["overall"]
    assert data["invariant"]["human_human"]["n"] == 10
    one = runner.invoke(app, ["agreement", "--db", str(sample_db), "--rater", "rater_a", "--bootstrap", "0",
                              "--format", "json", "--pool-rubric-versions"])
    assert json.loads(one.stdout)["overall"]["human_human"] is None


def test_cli_agreement_with_a_filter_matching_nothing_says_what_is_stored(sample_db):
    for flag, value in (("--model", "openai/gpt-4o-mini"), ("--rubric", "defualt")):
        r = runner.invoke(app, ["agreement", "--db", str(sample_db), flag, value, "--bootstrap", "0"])
        message = " ".join(r.output.split())
        assert r.exit_code == 2, r.output
        assert "stored judges: baseline" in message and "default" in message and "judge some transcripts" not in message


def test_cli_calibrate_on_the_samples_and_show_calibrated(sample_db):
    per_version = runner.invoke(app, ["calibrate", "--db", str(sample_db), "--bootstrap", "0"])
    assert per_version.exit_code == 2  # no rubric version alone has 10 labelled transcripts
    assert "fitted per rubric version" in per_version.output and "--pool-rubric-versions" in per_version.output
    result = runner.invoke(app, ["calibrate", "--db", str(sample_db), "--bootstrap", "100", "--pool-rubric-versions"])
    assert result.exit_code == 0, result.output
    assert "POOLED" in result.output
    assert "refused" in result.output  # grounding has one labelled transcript
    assert "stored as cal-" in result.output
    shown = runner.invoke(app, ["calibrated", "--db", str(sample_db), "--format", "json"])
    rows = json.loads(shown.stdout)
    assert rows and {"raw", "calibrated", "method"} <= set(rows[0])
    assert not {r["dimension"] for r in rows} & {"recovery", "grounding"}  # refused: raw scores only
    import duckdb

    con = duckdb.connect(str(sample_db), read_only=True)
    raw = {(j, d): s for j, d, s in con.execute("SELECT judgment_id, dimension_id, score FROM dimension_scores").fetchall()}
    con.close()
    assert all(raw[(r["judgment_id"], r["dimension"])] == r["raw"] for r in rows)  # raw never overwritten


def test_cli_refuses_with_exit_2_when_too_few_labels(sample_db):
    result = runner.invoke(app, ["calibrate", "--db", str(sample_db), "--min-labels", "50"])
    assert result.exit_code == 2
    assert "need at least 50" in result.output


def test_cli_on_two_plain_files(tmp_path):
    rng = np.random.default_rng(2)
    judge_rows, human_rows = ["transcript,dimension,score"], ["transcript,rater,dimension,score"]
    for i in range(40):
        truth = int(rng.integers(1, 6))
        judge_rows.append(f"x{i},quality,{min(5, truth + 1)}")
        judge_rows.append(f"x{i},style,{truth}")
        for rater in ("ann", "bob"):
            human_rows.append(f"x{i},{rater},quality,{int(np.clip(truth + rng.integers(-1, 2), 1, 5))}")
        human_rows.append(f"x{i},ann,style,{'not_observed' if i % 5 == 0 else truth}")
    judge = tmp_path / "judge.csv"
    human = tmp_path / "human.csv"
    judge.write_text("\n".join(judge_rows) + "\n")
    human.write_text("\n".join(human_rows) + "\n")
    agree = runner.invoke(app, ["agreement", "--judge", str(judge), "--human", str(human), "--scale", "1-5",
                                "--bootstrap", "100", "--format", "json"])
    assert agree.exit_code == 0, agree.output
    data = json.loads(agree.stdout)
    assert set(data) == {"quality", "style", "overall"}
    assert data["quality"]["bias"] > 0.4 and data["style"]["exact"] == 1.0
    assert data["style"]["statuses"]["human_not_observed_judge_scored"] == 8
    cal = runner.invoke(app, ["calibrate", "--judge", str(judge), "--human", str(human), "--bootstrap", "50"])
    assert cal.exit_code == 0, cal.output
    assert "not stored" in cal.output
    missing_half = runner.invoke(app, ["agreement", "--judge", str(judge)])
    assert missing_half.exit_code == 2 and "go together" in missing_half.output


def test_cli_bad_options_exit_2(tmp_path):
    assert runner.invoke(app, ["agreement", "--db", str(tmp_path / "none.duckdb")]).exit_code == 2
    assert runner.invoke(app, ["calibrate", "--folds", "1"]).exit_code == 2
    assert runner.invoke(app, ["agreement", "--format", "xml"]).exit_code == 2
    assert not (tmp_path / "none.duckdb").exists()
    os.environ.pop("EVALUATOR_MODEL", None)
