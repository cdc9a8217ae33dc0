"""Every CLI path a researcher takes on data shaped like published judge-vs-human datasets
(tests/published_like.py), each figure checked against scipy / scikit-learn / krippendorff computed
here on pairs built here from the generator's own records (never from the product's output)."""

from __future__ import annotations

import csv
import json
import math

import krippendorff
import numpy as np
import pytest
from published_like import NA_CODE, SUMMEVAL_CRITERIA, TOPICAL_SCALES, summeval_like, topical_chat_like
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from evaluator.cli import app

runner = CliRunner()


def run_json(*args: str) -> dict:
    r = runner.invoke(app, [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout
    return json.loads(r.stdout)


def levels(v, lo, hi):
    return np.clip(np.floor(np.asarray(v, dtype=float) + 0.5), lo, hi).astype(int)


def check_against_libraries(entry: dict, a, b, lo: int = 1, hi: int = 5) -> None:
    """Every statistic of one JSON entry against the libraries on the pairs (a: judge, b: human)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    fractional = bool(np.any(a != np.round(a)) or np.any(b != np.round(b)))
    assert entry["n"] == len(a)
    expected = {
        "exact": np.mean(np.abs(a - b) < 0.5), "within_one": np.mean(np.abs(a - b) <= 1),
        "mae": np.mean(np.abs(a - b)), "rmse": np.sqrt(np.mean((a - b) ** 2)), "bias": np.mean(a - b),
        "pearson": stats.pearsonr(a, b).statistic, "spearman": stats.spearmanr(a, b).statistic,
        "kendall": stats.kendalltau(a, b).statistic,
        "qwk": cohen_kappa_score(levels(a, lo, hi), levels(b, lo, hi), weights="quadratic",
                                 labels=list(range(lo, hi + 1))),
        "krippendorff_alpha": krippendorff.alpha(reliability_data=[a, b],
                                                 level_of_measurement="interval" if fractional else "ordinal",
                                                 value_domain=None if fractional else list(range(lo, hi + 1))),
    }
    assert entry["krippendorff_alpha_level"] == ("interval" if fractional else "ordinal")
    for name, value in expected.items():
        assert entry[name] == pytest.approx(value, abs=1e-9), name
    for name in expected:
        ci = entry.get(f"{name}_ci")
        if ci is not None:  # an interval is never zero-width, and brackets the estimate
            assert ci[0] < ci[1] and ci[0] - 1e-9 <= entry[name] <= ci[1] + 1e-9, name


def no_zero_width_interval(doc) -> None:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key.endswith("_ci") and isinstance(value, list):  # (`reasons` holds strings under such keys)
                assert value[0] < value[1], key
            no_zero_width_interval(value)
    elif isinstance(doc, list):
        for v in doc:
            no_zero_width_interval(v)


@pytest.fixture(scope="module")
def summeval(tmp_path_factory):
    folder = tmp_path_factory.mktemp("summeval")
    data = summeval_like(seed=5)
    judge_file, human_file = data.write(folder, "A")
    return data, judge_file, human_file, folder


def test_item_level_both_pairings_and_the_like_for_like_ceiling(summeval):
    data, jf, hf, _ = summeval
    mean = run_json("agreement", "--judge", jf, "--human", hf, "--bootstrap", "200")
    each = run_json("agreement", "--judge", jf, "--human", hf, "--bootstrap", "200", "--pairing", "each")
    for crit in SUMMEVAL_CRITERIA:
        items = data.items(crit)
        judge = [data.judge[(i, crit)] for i in items]
        check_against_libraries(mean[crit], judge, [np.mean(list(data.human[(i, crit)].values())) for i in items])
        assert mean[crit]["n_transcripts"] == len(items) == 144
        check_against_libraries(each[crit], [data.judge[(i, crit)] for i in items for _ in data.human[(i, crit)]],
                                [v for i in items for v in data.human[(i, crit)].values()])
        assert each[crit]["n_transcripts"] == 144  # items are still the resampling unit
        # leave one rater out: each expert vs the mean of the other two, and the judge vs that same mean
        rater, rest, machine = [], [], []
        for i in items:
            scores = data.human[(i, crit)]
            for r, v in sorted(scores.items()):
                rater.append(v)
                rest.append(np.mean([w for q, w in scores.items() if q != r]))
                machine.append(data.judge[(i, crit)])
        loo = mean[crit]["leave_one_out"]
        check_against_libraries(loo["human"], rater, rest)
        check_against_libraries(loo["judge"], machine, rest)
        assert loo == each[crit]["leave_one_out"]  # the ceiling does not depend on the pairing
    # pooled over criteria: the same statistics on every criterion's pairs together
    pooled = [(data.judge[(i, c)], np.mean(list(data.human[(i, c)].values())))
              for c in SUMMEVAL_CRITERIA for i in data.items(c)]
    check_against_libraries(mean["overall"], *zip(*pooled, strict=True))
    assert mean["overall"]["pairing"] == "mean" and each["overall"]["pairing"] == "each"


def test_per_document_statistics_averaged_and_system_level(summeval):
    data, jf, hf, _ = summeval
    grouped = run_json("agreement", "--judge", jf, "--human", hf, "--bootstrap", "200", "--group-by", "doc_id")
    system = run_json("agreement", "--judge", jf, "--human", hf, "--bootstrap", "200", "--level", "system",
                      "--system-col", "system_id")
    for crit in SUMMEVAL_CRITERIA:
        items = data.items(crit)
        per_doc: dict[str, list[str]] = {}
        for i in items:
            per_doc.setdefault(data.doc[i], []).append(i)
        taus, rhos = [], []
        for ids in per_doc.values():  # Chiang & Lee style: tau within each document, then the mean
            a = [data.judge[(i, crit)] for i in ids]
            b = [np.mean(list(data.human[(i, crit)].values())) for i in ids]
            taus.append(stats.kendalltau(a, b).statistic)
            rhos.append(stats.spearmanr(a, b).statistic)
        g = grouped[crit]["grouped"]
        assert g["by"] == "doc_id" and g["n_groups"] == 24
        assert g["mean"]["kendall"] == pytest.approx(np.nanmean(taus), abs=1e-9)
        assert g["mean"]["spearman"] == pytest.approx(np.nanmean(rhos), abs=1e-9)
        assert g["used"]["kendall"] == int(np.sum(np.isfinite(taus)))
        assert g["ci"]["kendall"][0] < g["mean"]["kendall"] < g["ci"]["kendall"][1]
        # system level: each system's mean judge score vs its mean human score (raters' mean per item)
        per_sys: dict[str, list[str]] = {}
        for i in items:
            per_sys.setdefault(data.system[i], []).append(i)
        sj = [np.mean([data.judge[(i, crit)] for i in ids]) for _, ids in sorted(per_sys.items())]
        sh = [np.mean([np.mean(list(data.human[(i, crit)].values())) for i in ids]) for _, ids in sorted(per_sys.items())]
        entry = system[crit]
        assert entry["level"] == "system" and entry["n"] == 6
        assert entry["pearson"] == pytest.approx(stats.pearsonr(sj, sh).statistic, abs=1e-9)
        assert entry["kendall"] == pytest.approx(stats.kendalltau(sj, sh).statistic, abs=1e-9)
        assert entry["human_human"] is None and entry["leave_one_out"] is None


def test_averaged_expert_scores_use_interval_alpha_and_have_no_ceiling(summeval):
    data, _, _, folder = summeval
    jf, hf = data.write(folder, "avg", averaged=True)
    r = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "100", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    for crit in SUMMEVAL_CRITERIA:
        items = data.items(crit)
        check_against_libraries(doc[crit], [data.judge[(i, crit)] for i in items],
                                [float(f"{np.mean(list(data.human[(i, crit)].values())):.4f}") for i in items])
        assert doc[crit]["human_human"] is None and doc[crit]["leave_one_out"] is None
    assert "one human rater" in r.stderr


def test_fit_on_some_documents_apply_to_others_with_level_probabilities(summeval, tmp_path):
    """Calibrate on documents 0-23, apply to documents 100-117 labelled by the same experts: the
    calibration file carries the p1..p5 features; `agreement --calibration` gives the calibrated
    metrics beside the raw ones, equal to the metrics of the scores `calibrated --out` writes."""
    _, ja, ha, _ = summeval
    other = summeval_like(seed=6, docs=18, first_doc=100)
    jb, hb = other.write(tmp_path, "B")
    cal_file = tmp_path / "cal.json"
    fit = runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--out", str(cal_file), "--bootstrap", "0",
                              "--format", "json"])
    assert fit.exit_code == 0, fit.output
    doc = json.loads(cal_file.read_text())
    assert doc["prob_levels"] == dict.fromkeys(SUMMEVAL_CRITERIA, 5)
    assert json.loads(fit.stdout)["id"] == doc["id"]
    coherence = doc["dimensions"]["coherence"]
    chosen = next(m for m in coherence["maps"] if m["chosen"])
    assert chosen["method"] != "identity"
    multi = next(m for m in coherence["maps"] if m["method"] == "multi_ridge")
    features = multi["params"]["features"]
    assert "coherence#p2" in features and "relevance" in features and "fluency#p5" in features

    both = run_json("agreement", "--judge", jb, "--human", hb, "--calibration", str(cal_file), "--bootstrap", "100")
    out = tmp_path / "B_calibrated.csv"
    applied = runner.invoke(app, ["calibrated", "--judge", jb, "--calibration", str(cal_file), "--out", str(out)])
    assert applied.exit_code == 0, applied.output
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 18 * 6 * 4
    calibrated = {(r["transcript"], r["dimension"]): float(r["calibrated"]) for r in rows}
    for crit in SUMMEVAL_CRITERIA:
        items = other.items(crit)
        raw = both[crit]
        cal = raw["calibrated"]
        human = [np.mean(list(other.human[(i, crit)].values())) for i in items]
        check_against_libraries(raw, [other.judge[(i, crit)] for i in items], human)
        check_against_libraries(cal, [calibrated[(i, crit)] for i in items], human)
        assert cal["mae"] < raw["mae"]  # the lenient judge is pulled down, on documents it never saw
    assert both["overall"]["calibrated"]["n"] == both["overall"]["n"]

    # stored by id in a database, applied by id (prefix)
    db = tmp_path / "cal.duckdb"
    saved = runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--save", "--db", str(db),
                                "--bootstrap", "0", "--format", "json"])
    assert saved.exit_code == 0, saved.output
    by_id = run_json("agreement", "--judge", jb, "--human", hb, "--calibration", json.loads(saved.stdout)["id"][:12],
                     "--db", str(db), "--bootstrap", "0")
    assert by_id["coherence"]["calibrated"]["mae"] == pytest.approx(both["coherence"]["calibrated"]["mae"])


def test_topical_chat_scales_and_the_na_code(tmp_path):
    data = topical_chat_like(seed=9)
    jf, hf = data.write(tmp_path, "tc")
    scales = [a for crit, (lo, hi) in TOPICAL_SCALES.items() for a in ("--scale", f"{crit}={lo}-{hi}")]
    na = [a for crit, (lo, _) in TOPICAL_SCALES.items() if lo == 1 for a in ("--na", f"{crit}={NA_CODE}")]
    doc = run_json("agreement", "--judge", jf, "--human", hf, "--bootstrap", "100", *scales, *na)
    for crit, (lo, hi) in TOPICAL_SCALES.items():
        items = data.items(crit)
        check_against_libraries(doc[crit], [data.judge[(i, crit)] for i in items],
                                [np.mean(list(data.human[(i, crit)].values())) for i in items], lo, hi)
        assert doc[crit]["scale"] == {"min": lo, "max": hi}
        assert doc[crit]["confusion"]["labels"] == list(range(lo, hi + 1))
    assert sum(data.na.values()) > 0 and doc["natural"]["n"] < 120  # N/A items are kept apart
    assert any(v for k, v in doc["natural"]["statuses"].items() if "not_observed" in k)
    # "overall" is a criterion here: the pooled row moves aside instead of hiding it
    assert doc["overall"]["scale"] == {"min": 1, "max": 5} and doc["overall"]["qwk"] is not None
    pooled = doc["overall (pooled)"]
    assert all(pooled[m] is None for m in ("qwk", "pearson"))  # scales differ: no pooled statistics
    assert "different scales" in pooled["reasons"]["qwk"] and "definitions" in pooled
    table = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", *scales, *na])
    assert table.exit_code == 0 and "overall (pooled)" in table.output

    # a global --na 0 would throw away the real zeros of the 0-1 criteria: refused, with the way out
    r = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", *scales, "--na", "0"])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "understandable" in text and "0-1" in text and "--na natural=0" in text
    # without --scale or --na: the 0-based inferred scale is named, with the options that settle it
    r = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", "--format", "json"])
    assert r.exit_code == 0 and "starts at 0" in r.stderr and "--na" in r.stderr


def test_degenerate_data_is_null_with_reasons_never_nan_or_certainty(tmp_path):
    """A constant judge criterion, a criterion with two items, one where every score ties, a single
    rater, and a document holding one item: nulls with reasons, no NaN, no zero-width interval."""
    j = ["id,doc_id,dimension,score"]
    h = ["id,doc_id,annotator,dimension,score"]
    rng = np.random.default_rng(3)
    for i in range(30):
        doc = "lonely" if i == 0 else f"d{i % 5}"
        truth = int(rng.integers(1, 6))
        j.append(f"x{i},{doc},constant_judge,3")
        h.append(f"x{i},{doc},solo,constant_judge,{truth}")
        j.append(f"x{i},{doc},all_ties,4")
        h.append(f"x{i},{doc},solo,all_ties,4")
        j.append(f"x{i},{doc},varied,{np.clip(truth + rng.integers(-1, 2), 1, 5)}")
        h.append(f"x{i},{doc},solo,varied,{truth}")
        if i < 2:
            j.append(f"x{i},{doc},two_items,{truth}")
            h.append(f"x{i},{doc},solo,two_items,{truth}")
    (tmp_path / "j.csv").write_text("\n".join(j) + "\n")
    (tmp_path / "h.csv").write_text("\n".join(h) + "\n")
    for pairing in ("mean", "each"):
        doc = run_json("agreement", "--judge", str(tmp_path / "j.csv"), "--human", str(tmp_path / "h.csv"),
                       "--scale", "1-5", "--bootstrap", "200", "--group-by", "doc_id", "--pairing", pairing)
        no_zero_width_interval(doc)
        const = doc["constant_judge"]
        assert const["qwk"] is None and "single level" in const["reasons"]["qwk"]
        assert const["pearson"] is None and "judge scores are all equal" in const["reasons"]["pearson"]
        assert const["mae"] is not None and const["mae_ci"] is not None
        ties = doc["all_ties"]
        assert ties["exact"] == 1.0 and ties["exact_ci"] is None and ties["reasons"]["exact_ci"]
        assert ties["krippendorff_alpha"] is None and ties["reasons"]["krippendorff_alpha"]
        two = doc["two_items"]
        assert two["n"] == 2 and two["pearson"] is None and "at least 3" in two["reasons"]["pearson"]
        assert two["mae_ci"] is None and "transcript" in two["reasons"]["mae_ci"]
        assert doc["varied"]["human_human"] is None and doc["varied"]["leave_one_out"] is None
        g = doc["varied"]["grouped"]
        assert g["n_groups"] == 6 and g["skipped"]["kendall"] >= 1  # the lonely document cannot define tau
        assert g["used"]["mae"] == 6
        for crit in ("varied", "constant_judge"):
            for key, value in doc[crit].items():
                if isinstance(value, float):
                    assert math.isfinite(value), key


@pytest.mark.parametrize(("args", "message"), [
    (["--scale", "1..5"], "--scale must look like 1-5"),
    (["--scale", "coherence=5-1"], "min < max"),
    (["--scale", "=1-3"], "no dimension before '='"),
    (["--scale", "nosuch=1-3"], "neither file has"),
    (["--na", "n/a"], "--na"),
    (["--na", "coherence=x"], "--na"),
    (["--group-by", "document"], "no column 'document'"),
    (["--group-by", "id"], "is the transcript column itself"),
    (["--level", "system", "--system-col", "sys"], "no column 'sys'"),
    (["--level", "system"], "--system-col"),
])
def test_a_researchers_mistakes_are_exit_2_with_a_clear_message(summeval, args, message):
    _, jf, hf, _ = summeval
    r = runner.invoke(app, ["agreement", "--judge", jf, "--human", hf, "--bootstrap", "0", *args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_a_calibration_for_other_criteria_or_another_scale_is_refused(summeval, tmp_path):
    _, ja, ha, _ = summeval
    cal_file = tmp_path / "cal.json"
    assert runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--out", str(cal_file),
                               "--bootstrap", "0"]).exit_code == 0
    tc = topical_chat_like(seed=4)
    jf, hf = tc.write(tmp_path, "tc")
    for command in (["agreement", "--judge", jf, "--human", hf], ["calibrated", "--judge", jf]):
        r = runner.invoke(app, [*command, "--calibration", str(cal_file), "--bootstrap", "0"]
                          if command[0] == "agreement" else [*command, "--calibration", str(cal_file)])
        assert r.exit_code == 2, r.output
        assert "no dimension in common" in " ".join(r.output.split())
    r = runner.invoke(app, ["agreement", "--judge", ja, "--human", ha, "--calibration", str(cal_file),
                            "--scale", "0-10", "--bootstrap", "0"])
    assert r.exit_code == 2 and "1-5" in r.output and "0-10" in r.output


def test_calibration_cross_validation_can_hold_out_whole_documents(summeval, tmp_path):
    """`calibrate --group-by doc_id`: every fold holds out whole documents (checked on the folds
    themselves), and the document records what was held out; without it, folds hold out transcripts."""
    from evaluator.calibrate.calibration import CalibrationSettings, DimensionData, _folds

    data, ja, ha, _ = summeval
    items = data.items("coherence")
    groups = [data.doc[i] for i in items]
    d = DimensionData(transcripts=np.array(items, dtype=object), x=np.zeros(len(items)), y=np.zeros(len(items)),
                      features=np.zeros((len(items), 1)), groups=np.array(groups, dtype=object))
    seen_test = set()
    for train, test in _folds(d, CalibrationSettings(folds=5, cv_group_by="doc_id")):
        held = {groups[i] for i in test}
        assert not held & {groups[i] for i in train}
        assert not held & seen_test
        seen_test |= held
    assert seen_test == set(groups)

    grouped = runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--group-by", "doc_id", "--bootstrap",
                                  "0", "--format", "json"])
    assert grouped.exit_code == 0, grouped.output
    doc = json.loads(grouped.stdout)
    assert doc["settings"]["cv_group_by"] == "doc_id"
    for crit in SUMMEVAL_CRITERIA:
        for m in doc["dimensions"][crit]["maps"]:
            assert m["cv"]["held_out"] == "group (doc_id)" and m["cv"]["folds"] == 5
    plain = json.loads(runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--bootstrap", "0",
                                           "--format", "json"]).stdout)
    assert plain["dimensions"]["coherence"]["maps"][0]["cv"]["held_out"] == "transcript"
    assert plain["id"] != doc["id"]  # a different validation is a different calibration version
    table = runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--group-by", "doc_id", "--bootstrap", "0"])
    assert table.exit_code == 0 and "holding out whole doc_id groups" in " ".join(table.output.split())
    bad = runner.invoke(app, ["calibrate", "--judge", ja, "--human", ha, "--group-by", "nope", "--bootstrap", "0"])
    assert bad.exit_code == 2 and "no column 'nope'" in " ".join(bad.output.split())


def test_the_report_page_figures_are_the_cli_figures(summeval):
    """The judge-quality page's exact agreement and ceiling (pairing.py) come from the same pairing
    code as `evaluate agreement`; empty inputs give no rows, not an error."""
    from evaluator.calibrate.agreement import agreement
    from evaluator.calibrate.pairing import ceiling_agreement, exact_agreement
    from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec

    data = summeval[0]
    judge = [JudgeScore(transcript=i, dimension=d, status="scored", score=v) for (i, d), v in data.judge.items()]
    human = [HumanLabel(transcript=i, rater=r, dimension=d, status="scored", score=v)
             for (i, d), scores in data.human.items() for r, v in scores.items()]
    human.append(HumanLabel(transcript="doc0-sys0", rater="late", dimension="coherence", status="not_observed"))
    for pairing in ("mean", "each"):
        report = agreement(judge, human, ScaleSpec(min=1, max=5), n_boot=0, pairing=pairing)
        for row in exact_agreement(judge, human, pairing):
            m = report.dimensions[row.dimension].judge_vs_human
            assert (row.n, row.exact, row.within_one) == (m.n, m.exact, m.within_one)
            assert row.mae == pytest.approx(m.mae)
    report = agreement(judge, human, ScaleSpec(min=1, max=5), n_boot=0)
    for c in ceiling_agreement(human):
        loo = report.dimensions[c.dimension].leave_one_out.human
        assert (c.n, c.exact) == (loo.n, loo.exact)
    assert exact_agreement([], []) == [] and ceiling_agreement([]) == [] and exact_agreement(judge[:1], []) == []
