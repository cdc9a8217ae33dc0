"""Agreement for research data: every statistic against scipy / scikit-learn / krippendorff computed
here, the resampling engine against the libraries on the expanded resample, both pairings, the
leave-one-rater-out ceiling, grouping, system level, degenerate input, and the CLI options."""

from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from evaluator.calibrate.agreement import METRICS, agreement, metric_set, point_metrics
from evaluator.calibrate.pairing import exact_agreement
from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec
from evaluator.calibrate.resample import RANK_BINS, Prepared, Resampler
from evaluator.cli import app

SCALE = ScaleSpec(min=1, max=5)
runner = CliRunner()


def reference(a: np.ndarray, b: np.ndarray, scale: ScaleSpec = SCALE) -> dict[str, float]:
    """Every statistic straight from the libraries (the definitions the product must reproduce)."""
    ints = bool(np.all(a == np.round(a)) and np.all(b == np.round(b)))

    def levels(v):
        return np.clip(np.floor(v + 0.5), scale.min, scale.max).astype(int)

    d = a - b
    return {
        "exact": float(np.mean(np.abs(d) < 0.5)), "within_one": float(np.mean(np.abs(d) <= 1)),
        "mae": float(np.mean(np.abs(d))), "rmse": float(np.sqrt(np.mean(d * d))), "bias": float(np.mean(d)),
        "qwk": cohen_kappa_score(levels(a), levels(b), weights="quadratic", labels=scale.levels),
        "krippendorff_alpha": krippendorff.alpha(reliability_data=[a, b],
                                                 level_of_measurement="ordinal" if ints else "interval"),
        "spearman": stats.spearmanr(a, b).statistic, "kendall": stats.kendalltau(a, b).statistic,
        "pearson": stats.pearsonr(a, b).statistic,
    }


def sample(rng, n, fractional):
    human = rng.integers(1, 6, n).astype(float)
    judge = np.clip(human + rng.integers(-2, 3, n), 1, 5).astype(float)
    if fractional:
        judge = np.clip(judge + rng.uniform(-0.5, 0.5, n), 1, 5).round(3)
        human = np.clip(human + rng.choice([0.0, 1 / 3, 2 / 3, -1 / 3], n), 1, 5)
    return judge, human


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fractional", [False, True])
def test_every_statistic_equals_the_libraries(seed, fractional):
    rng = np.random.default_rng(seed)
    judge, human = sample(rng, int(rng.integers(8, 120)), fractional)
    ours = point_metrics(judge, human, SCALE)
    for name, value in reference(judge, human).items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name


@pytest.mark.parametrize("seed", range(4))
def test_a_weighted_resample_equals_the_libraries_on_the_expanded_data(seed):
    """The bootstrap computes each resample from counts: it must equal the libraries applied to the
    resample written out row by row (ties from repeated transcripts included)."""
    rng = np.random.default_rng(50 + seed)
    n = 60
    judge, human = sample(rng, n, fractional=seed % 2 == 1)
    prep = Prepared(judge, human, np.arange(n), n, SCALE)
    weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
    ours = {k: v[0] for k, v in prep.stats(weights[None, :]).items()}
    idx = np.repeat(np.arange(n), weights.astype(int))
    for name, value in reference(judge[idx], human[idx]).items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name


def test_continuous_scores_scale_and_use_interval_alpha():
    """1,700 distinct fractional values: no category explosion, interval alpha as the library computes it."""
    rng = np.random.default_rng(3)
    human = rng.uniform(1, 5, 1700)
    judge = np.clip(human + rng.normal(0, 0.7, 1700), 1, 5)
    m = metric_set(judge, human, [f"t{i}" for i in range(1700)], SCALE, 200, 0)
    assert m.krippendorff_alpha_level == "interval"
    # the package itself needs 127 GiB here (a units x values x values array), so the definition is
    # written out: 1 - (N - 1) * sum over units of pairable differences / sum over all value pairs
    values = np.concatenate([judge, human])
    within = 2 * np.sum((judge - human) ** 2)
    between = np.sum((values[:, None] - values[None, :]) ** 2)
    assert m.krippendorff_alpha == pytest.approx(1 - (len(values) - 1) * within / between)
    part = slice(0, 150)  # and the package on a part it can hold
    assert point_metrics(judge[part], human[part], SCALE)["krippendorff_alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=[judge[part], human[part]], level_of_measurement="interval"))
    assert m.kendall == pytest.approx(stats.kendalltau(judge, human).statistic)
    lo, hi = m.kendall_ci
    assert lo < m.kendall < hi and hi - lo < 0.1  # binned ranks (> RANK_BINS values) stay centred
    assert len(np.unique(judge)) > RANK_BINS


def test_degenerate_inputs_are_null_with_a_reason_and_json_has_no_nan():
    two = metric_set([1.0, 5.0], [1.0, 5.0], ["a", "b"], SCALE, 100, 0)
    assert two.pearson is None and two.spearman is None and two.kendall is None
    assert "at least 3" in two.reasons["pearson"]
    assert two.pearson_ci is None and "transcript" in two.reasons["pearson_ci"]
    rng = np.random.default_rng(0)
    human = rng.integers(1, 6, 40).astype(float)
    const = metric_set(np.full(40, 3.0), human, [f"t{i}" for i in range(40)], SCALE, 200, 0)
    assert const.qwk is None and const.qwk_ci is None and "single level" in const.reasons["qwk"]
    assert const.pearson is None and "judge scores are all equal" in const.reasons["pearson"]
    assert const.mae is not None and const.mae_ci is not None
    same = metric_set(np.full(30, 4.0), np.full(30, 4.0), [f"t{i}" for i in range(30)], SCALE, 200, 0)
    assert same.exact == 1.0 and same.exact_ci is None and "every resample" in same.reasons["exact_ci"]
    assert same.krippendorff_alpha is None
    for m in (two, const, same):
        json.dumps(m.model_dump(mode="json"), allow_nan=False)


def test_resampler_bounds_memory_by_chunks_and_is_reproducible():
    r1, r2 = Resampler(1000, 250, 7), Resampler(1000, 250, 7)
    a = np.vstack(list(r1.chunks(width=10**6)))
    b = np.vstack(list(r2.chunks()))
    assert a.shape == (250, 1000) and (a == b).all()
    assert (a.sum(axis=1) == 1000).all()  # each resample draws every transcript's count: n in total
    assert r1.chunk_size(10**6) < 250


# -- pairings, ceilings, groups, systems ---------------------------------------------------------
def dataset(rng, items=40, raters=("r1", "r2", "r3"), dims=("a", "b"), groups=5):
    judge, human, truth = [], [], {}
    for i in range(items):
        for dim in dims:
            t = rng.uniform(1, 5)
            truth[(f"t{i}", dim)] = t
            judge.append(JudgeScore(transcript=f"t{i}", dimension=dim, status="scored",
                                    score=float(np.clip(round(t + rng.normal(0.3, 0.8), 2), 1, 5))))
            for r in raters:
                if rng.random() < 0.85:
                    human.append(HumanLabel(transcript=f"t{i}", rater=r, dimension=dim, status="scored",
                                            score=float(np.clip(round(t + rng.normal(0, 0.8)), 1, 5))))
    return judge, human, {f"t{i}": f"g{i % groups}" for i in range(items)}


def by_item(human, dim):
    out = {}
    for h in human:
        if h.dimension == dim:
            out.setdefault(h.transcript, {})[h.rater] = h.score
    return out


def test_both_pairings_equal_the_libraries_on_pairs_built_here():
    rng = np.random.default_rng(11)
    judge, human, _ = dataset(rng)
    jmap = {(j.transcript, j.dimension): j.score for j in judge}
    labels = by_item(human, "a")
    mean_j = [jmap[(t, "a")] for t in sorted(labels)]
    mean_h = [np.mean(list(labels[t].values())) for t in sorted(labels)]
    each_j = [jmap[(t, "a")] for t in sorted(labels) for _ in labels[t]]
    each_h = [s for t in sorted(labels) for s in labels[t].values()]
    for pairing, (a, b) in (("mean", (mean_j, mean_h)), ("each", (each_j, each_h))):
        rep = agreement(judge, human, SCALE, n_boot=50, pairing=pairing)
        m = rep.dimensions["a"].judge_vs_human
        ref = reference(np.array(a), np.array(b))
        assert m.n == len(a)
        for name in METRICS:
            assert getattr(m, name) == pytest.approx(ref[name], abs=1e-9), (pairing, name)
        assert rep.pairing == pairing and pairing in json.dumps(rep.to_json()["a"])
    # the report page's function uses the same definition
    for pairing, (a, b) in (("mean", (mean_j, mean_h)), ("each", (each_j, each_h))):
        row = next(r for r in exact_agreement(judge, human, pairing) if r.dimension == "a")
        assert row.n == len(a)
        assert row.exact == pytest.approx(np.mean(np.abs(np.array(a) - np.array(b)) < 0.5))
        assert row.exact_lo < row.exact < row.exact_hi


def test_leave_one_rater_out_ceiling_is_like_for_like():
    rng = np.random.default_rng(12)
    judge, human, _ = dataset(rng)
    jmap = {(j.transcript, j.dimension): j.score for j in judge}
    labels = by_item(human, "b")
    rater, rest, machine = [], [], []
    for t in sorted(labels):
        if len(labels[t]) < 2:
            continue
        for r, s in labels[t].items():
            others = [v for q, v in labels[t].items() if q != r]
            rater.append(s)
            rest.append(np.mean(others))
            machine.append(jmap[(t, "b")])
    loo = agreement(judge, human, SCALE, n_boot=50).dimensions["b"].leave_one_out
    assert loo.human.n == loo.judge.n == len(rater)
    assert loo.human.pearson == pytest.approx(stats.pearsonr(rater, rest).statistic)
    assert loo.judge.pearson == pytest.approx(stats.pearsonr(machine, rest).statistic)
    assert loo.judge.mae == pytest.approx(np.mean(np.abs(np.array(machine) - np.array(rest))))


def test_group_by_averages_within_group_statistics_and_counts_skipped_groups():
    rng = np.random.default_rng(13)
    judge, human, groups = dataset(rng, items=42, groups=8)
    groups["t0"] = "tiny"  # one item alone: no correlation there, counted as skipped
    for t in ("t8", "t16", "t24", "t32", "t40"):  # one big group beside smaller ones
        groups[t] = "g0"
    rep = agreement(judge, human, SCALE, n_boot=100, groups=groups, group_by="doc")
    g = rep.dimensions["a"].grouped
    jmap = {(j.transcript, j.dimension): j.score for j in judge}
    labels = by_item(human, "a")
    taus, maes = [], []
    for grp in sorted(set(groups.values())):
        ts = [t for t in sorted(labels) if groups[t] == grp]
        a = np.array([jmap[(t, "a")] for t in ts])
        b = np.array([np.mean(list(labels[t].values())) for t in ts])
        maes.append(np.mean(np.abs(a - b)))
        if len(ts) >= 3 and np.ptp(a) > 0 and np.ptp(b) > 0:
            taus.append(stats.kendalltau(a, b).statistic)
    assert g.by == "doc" and g.n_groups == len(set(groups.values()))
    assert g.mean["kendall"] == pytest.approx(np.mean(taus))
    assert g.used["kendall"] == len(taus) and g.skipped["kendall"] == g.n_groups - len(taus)
    assert g.mean["mae"] == pytest.approx(np.mean(maes)) and g.used["mae"] == g.n_groups


def test_system_level_correlates_system_means():
    rng = np.random.default_rng(14)
    judge, human, _ = dataset(rng, items=60)
    systems = {f"t{i}": f"s{i % 6}" for i in range(60)}
    rep = agreement(judge, human, SCALE, n_boot=100, systems=systems)
    jmap = {(j.transcript, j.dimension): j.score for j in judge}
    labels = by_item(human, "a")
    sj, sh = [], []
    for s in sorted(set(systems.values())):
        ts = [t for t in sorted(labels) if systems[t] == s]
        sj.append(np.mean([jmap[(t, "a")] for t in ts]))
        sh.append(np.mean([np.mean(list(labels[t].values())) for t in ts]))
    m = rep.dimensions["a"].judge_vs_human
    assert rep.level == "system" and m.n == 6
    assert m.pearson == pytest.approx(stats.pearsonr(sj, sh).statistic)
    assert m.kendall == pytest.approx(stats.kendalltau(sj, sh).statistic)


def test_one_rater_gives_no_ceiling_but_a_note():
    rng = np.random.default_rng(15)
    judge, human, _ = dataset(rng, raters=("solo",))
    rep = agreement(judge, human, SCALE, n_boot=50)
    assert rep.dimensions["a"].human_human is None and rep.dimensions["a"].leave_one_out is None
    assert any("one human rater" in n for n in rep.notes)


# -- the CLI -------------------------------------------------------------------------------------
def write_files(tmp_path, rng, items=60, zero_na=False, doc=True):
    j = ["id,doc_id,dimension,score"]
    h = ["id,doc_id,annotator,dimension,score"]
    for i in range(items):
        for dim in ("coherence", "relevance"):
            t = rng.uniform(1, 5)
            j.append(f"x{i},d{i % 6},{dim},{np.clip(t + rng.normal(0, 0.5), 1, 5):.3f}")
            for r in ("r1", "r2", "r3"):
                v = int(np.clip(round(t + rng.normal(0, 0.7)), 1, 5))
                if zero_na and dim == "relevance" and r == "r1" and i % 4 == 0:
                    v = 0
                h.append(f"x{i},d{i % 6},{r},{dim},{v}")
    (tmp_path / "j.csv").write_text("\n".join(j) + "\n")
    (tmp_path / "h.csv").write_text("\n".join(h) + "\n")
    return str(tmp_path / "j.csv"), str(tmp_path / "h.csv")


def test_cli_zero_sentinel_warns_and_na_keeps_it_apart(tmp_path):
    jf, hf = write_files(tmp_path, np.random.default_rng(1), zero_na=True)
    plain = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", "--format", "json"])
    assert plain.exit_code == 0, plain.output
    assert "starts at 0" in plain.stderr and "--na 0" in plain.stderr
    na = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", "--na", "0",
                             "--format", "json"])
    data = json.loads(na.stdout)
    assert "starts at 0" not in na.stderr
    assert data["overall"]["scale"] == {"min": 1, "max": 5}
    assert data["relevance"]["confusion"]["labels"] == [1, 2, 3, 4, 5]
    rater_pairs = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", "--na", "0",
                                      "--pairing", "each", "--format", "json"])
    assert json.loads(rater_pairs.stdout)["relevance"]["n"] == 60 * 3 - 15  # 15 zeros are not scores


def test_cli_per_dimension_scale_group_by_and_system_level(tmp_path):
    jf, hf = write_files(tmp_path, np.random.default_rng(2))
    bad = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--scale", "1-5", "--scale",
                              "coherence=1-3", "--bootstrap", "0"])
    assert bad.exit_code == 2 and "outside the scale 1-3" in bad.output
    ok = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--scale", "1-5", "--scale", "coherence=1-5",
                             "--group-by", "doc_id", "--bootstrap", "50", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["coherence"]["grouped"]["n_groups"] == 6 and data["coherence"]["grouped"]["by"] == "doc_id"
    assert "definitions" in data["overall"] and "pairing" in data["overall"]["definitions"]
    table = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--group-by", "doc_id", "--bootstrap", "0"])
    assert "Within groups" in table.output and "pairing: judge vs the mean" in table.output
    system = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--level", "system", "--system-col",
                                 "doc_id", "--bootstrap", "0", "--format", "json"])
    assert system.exit_code == 0 and json.loads(system.stdout)["coherence"]["n"] == 6
    for args, text in ((["--level", "system"], "--system-col"), (["--pairing", "some"], "--pairing"),
                       (["--group-by", "nope"], "no column 'nope'")):
        r = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", *args])
        assert r.exit_code == 2 and text in r.output, (args, r.output)


def test_cli_json_never_contains_nan(tmp_path):
    (tmp_path / "j.csv").write_text("transcript,dimension,score\na,d,3\nb,d,3\n")
    (tmp_path / "h.csv").write_text("transcript,rater,dimension,score\na,r,d,2\nb,r,d,4\n")
    r = runner.invoke(app, ["agreement", "--judge", str(tmp_path / "j.csv"), "--human", str(tmp_path / "h.csv"),
                            "--bootstrap", "100", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout
    d = json.loads(r.stdout)["d"]
    assert d["pearson"] is None and d["reasons"]["pearson"] and d["qwk"] is None
    assert not math.isnan(d["mae"])


@pytest.mark.parametrize("command", ["agreement", "calibrate"])
def test_cli_files_that_name_transcripts_differently_are_refused_not_an_empty_table(tmp_path, command):
    """A judge file keyed by content hash (`evaluate export --table dimensions`) against labels keyed by
    file name shares no item: a clear error (exit 2) naming ids from both files, never n = 0 and exit 0."""
    (tmp_path / "j.csv").write_text("transcript_hash,dimension,score\n" +
                                    "".join(f"{h}abc,d,{s}\n" for h, s in zip("0123456", "1234512", strict=True)))
    (tmp_path / "h.csv").write_text("transcript,rater,dimension,score\n" +
                                    "".join(f"t{h}.md,r,d,{s}\n" for h, s in zip("0123456", "1234512", strict=True)))
    r = runner.invoke(app, [command, "--judge", str(tmp_path / "j.csv"), "--human", str(tmp_path / "h.csv")])
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert "share no transcript id" in text and "'0abc'" in text and "'t0.md'" in text
