"""Calibration on arrays (fitdata.py) gives the results the records-based fit gave.

tests/data/calibration_golden holds a fixed dataset (judge A with level probabilities for d0,
"not_observed" cells, fractional and missing labels, four raters with personal offsets, a `doc`
group column; and a second set B labelled by the same raters) with what the records-based
implementation (the last before the columnar fit) wrote for

    evaluate calibrate --judge judge_a.jsonl --human human_a.csv --group-by doc --bootstrap 20 --out C
    evaluate calibrated --judge judge_b.jsonl --human human_b.csv --calibration C --out expected_calibrated.csv

The columnar fit reproduced that document bit for bit (id included) on the machine that wrote it;
numbers are compared here to 1e-9 so that another BLAS does not fail the test, and the id (a hash
of the fitted numbers) exactly whenever every number is bit-identical. Applying evaluates each
model once per matrix instead of once per row, which moves a dot product by at most an ulp: the
calibrated scores are compared to 1e-12.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from evaluator.calibrate.calibration import CalibrationSettings, fit_calibration, fit_calibration_frames
from evaluator.calibrate.columns import human_records, judge_records, read_columns
from evaluator.calibrate.fitdata import CalibrationInput, Labels, labels_fingerprint
from evaluator.calibrate.ordinal import soft_targets, soft_targets_grouped
from evaluator.calibrate.records import ScaleSpec
from evaluator.cli import app

GOLDEN = Path(__file__).parent / "data" / "calibration_golden"
runner = CliRunner()


def _compare(got, want, path: str, inexact: list[str]) -> None:
    """Equal structure and values; floats to 1e-9 (their paths collected when not bit-identical)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), path
        for k in want:
            if k != "id":
                _compare(got[k], want[k], f"{path}/{k}", inexact)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, f"{path}[{i}]", inexact)
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), path
        if got != want:
            inexact.append(path)
    else:
        assert got == want, path


def test_columnar_fit_reproduces_the_records_fit(tmp_path: Path) -> None:
    out = tmp_path / "calibration.json"
    r = runner.invoke(app, ["calibrate", "--judge", str(GOLDEN / "judge_a.jsonl"), "--human", str(GOLDEN / "human_a.csv"),
                            "--group-by", "doc", "--bootstrap", "20", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    got, want = json.loads(out.read_text()), json.loads((GOLDEN / "expected_calibration.json").read_text())
    inexact: list[str] = []
    _compare(got, want, "", inexact)
    if not inexact:
        assert got["id"] == want["id"]
    # the golden set exercises what the columnar code must get right
    assert {d: c["chosen"] for d, c in want["dimensions"].items()} == {"d0": "ordinal", "d1": "isotonic",
                                                                         "d2": "isotonic"}
    assert want["prob_levels"] == {"d0": 5} and want["settings"]["cv_group_by"] == "doc"
    assert any(m["rater_offsets"] for c in want["dimensions"].values() for m in c["maps"])

    # the library's records API is the same fit
    settings = CalibrationSettings(n_bootstrap=20, cv_group_by="doc")
    jf = read_columns(GOLDEN / "judge_a.jsonl", kind="judge", meta_columns=frozenset({"doc"}))
    hf = read_columns(GOLDEN / "human_a.csv", kind="human", meta_columns=frozenset({"doc"}))
    groups = dict(zip(jf.meta["transcript"], jf.meta["doc"], strict=True))
    scale = ScaleSpec(min=1, max=5)
    from_records = fit_calibration(judge_records(jf.frame), human_records(hf.frame), scale, settings,
                                   dimension_order=["d0", "d1", "d2"], groups=groups)
    from_frames = fit_calibration_frames(jf.frame, hf.frame, scale, settings, dimension_order=["d0", "d1", "d2"],
                                         groups=groups)
    assert from_records.model_dump() == from_frames.model_dump()
    assert from_frames.id == got["id"]


def test_columnar_apply_reproduces_the_records_apply(tmp_path: Path) -> None:
    out = tmp_path / "calibrated.csv"
    r = runner.invoke(app, ["calibrated", "--judge", str(GOLDEN / "judge_b.jsonl"), "--human", str(GOLDEN / "human_b.csv"),
                            "--calibration", str(GOLDEN / "expected_calibration.json"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    with open(out, newline="") as f:
        got = list(csv.DictReader(f))
    with open(GOLDEN / "expected_calibrated.csv", newline="") as f:
        want = list(csv.DictReader(f))
    assert [{k: v for k, v in row.items() if k != "calibrated"} for row in got] == \
        [{k: v for k, v in row.items() if k != "calibrated"} for row in want]  # same rows, order and methods
    for g, w in zip(got, want, strict=True):
        assert (g["calibrated"] == w["calibrated"] == "") or \
            float(g["calibrated"]) == pytest.approx(float(w["calibrated"]), rel=1e-12, abs=1e-12)
    assert sum(w["method"] == "ordinal + raters" for w in want) > 50  # offsets were applied


def test_labels_fingerprint_is_the_json_of_the_sorted_labels() -> None:
    """The fingerprint (part of a calibration's id) is written in chunks, never as one string: it
    must equal the hash of the whole JSON text, ids with characters JSON escapes included."""
    import hashlib

    frame = pd.DataFrame({"transcript": ["b", "a\u00e9", "a\"q", "b", "a\u00e9"] * 30_000,
                          "rater": ["r2", "r1", "r1", "r1", "r2"] * 30_000,
                          "dimension": [f"d{i}" for i in range(150_000)],
                          "status": ["scored", "not_observed", "scored", "missing", "scored"] * 30_000,
                          "score": [3.0, np.nan, 2.5, np.nan, 1.0 / 3] * 30_000})
    rows = sorted((t, r, d, s, None if np.isnan(v) else float(v)) for t, r, d, s, v in frame.itertuples(index=False))
    want = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
    assert labels_fingerprint(frame) == want
    assert labels_fingerprint(frame.astype({c: "category" for c in ("transcript", "rater", "dimension")})) == want


def test_per_item_means_and_soft_targets_equal_their_per_item_loops() -> None:
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 14, 400)
    values = rng.normal(0, 1, counts.sum()) * 1e3
    labels = Labels(np.concatenate([[0], np.cumsum(counts)]), np.zeros(counts.sum(), dtype=np.int64), values, ["r"])
    means = labels.item_means(values)
    for i, c in enumerate(counts):
        part = values[labels.offsets[i]:labels.offsets[i + 1]].tolist()
        assert means[i] == (np.mean(part) if c else 0.0)  # bit for bit, as np.mean of the item's list
    scale = ScaleSpec(min=0, max=4)
    lists = [rng.choice([-1, 0, 0.5, 1, 2.25, 3, 4, 4.5], int(c)).tolist() for c in counts if c]
    loop = np.zeros((len(lists), 5))
    for i, vs in enumerate(lists):  # the definition, one label at a time
        for v in vs:
            pos = min(max(v - scale.min, 0), 4)
            lo = int(np.floor(pos))
            loop[i, lo] += (1 - (pos - lo)) / len(vs)
            if pos - lo > 0:
                loop[i, min(lo + 1, 4)] += (pos - lo) / len(vs)
    assert np.array_equal(soft_targets(lists, scale), loop)
    flat = np.array([v for vs in lists for v in vs])
    assert np.array_equal(soft_targets_grouped(flat, np.array([len(vs) for vs in lists]), scale), loop)


def test_the_score_grid_reads_statuses_probabilities_and_labels_as_the_records_did() -> None:
    judge = pd.DataFrame({"transcript": ["t2", "t1", "t1", "t3"], "dimension": ["a", "a", "b", "a"],
                          "status": ["scored", "not_observed", "scored", "scored"], "score": [4.0, np.nan, 2.0, 1.0],
                          "p1": [0.5, np.nan, 0.1, 0.2], "p2": [0.5, np.nan, 0.9, 0.8], "p3": [np.nan] * 4})
    human = pd.DataFrame({"transcript": ["t1", "t2", "t2", "t2", "t9"], "rater": ["x", "y", "x", "y", "x"],
                          "dimension": ["a"] * 5, "status": ["scored", "scored", "scored", "scored", "not_observed"],
                          "score": [3.0, 2.0, 5.0, 4.0, np.nan]})
    data = CalibrationInput.build(judge, human)
    grid = data.grid
    assert list(grid.items) == ["t1", "t2", "t3", "t9"] and grid.dims == ["a", "b"]
    assert np.array_equal(grid.score, [[np.nan, 2.0], [4.0, np.nan], [1.0, np.nan], [np.nan, np.nan]], equal_nan=True)
    assert grid.prob_levels() == {"a": 2, "b": 2}
    feats = grid.features(["a", "a#p2", "b#p2", "missing"], {"a": 2, "b": 2})
    assert np.array_equal(feats[:, 1], [np.nan, 0.5, 0.8, np.nan], equal_nan=True)
    assert np.array_equal(feats[:, 2], [0.9, np.nan, np.nan, np.nan], equal_nan=True)
    assert np.isnan(feats[:, 3]).all()
    assert data.human is not None
    labelled, agreed, mean = data.human.consensus("a", 4)
    assert labelled.tolist() == [True, True, False, True] and agreed.tolist() == [True, True, False, False]
    assert mean[1] == (2.0 + 5.0 + 4.0) / 3
    fit = data.human.labels("a", np.array([0, 1]))  # rater y twice on t2: one entry, first place, last value
    assert fit.counts.tolist() == [1, 2] and [fit.names[r] for r in fit.rater] == ["x", "y", "x"]
    assert fit.score.tolist() == [3.0, 4.0, 5.0]
    applying = data.human.labels("a", np.array([1]), for_fit=False)  # as a list of raters: both kept
    assert applying.counts.tolist() == [3]


def test_calibrated_rows_keep_the_files_order_and_their_own_scores(tmp_path: Path) -> None:
    """A long-form judge file sorted by dimension (not grouped by transcript): every output row is the
    file's row with its own calibrated score. (The records path paired the file's rows with scores
    listed transcript by transcript, so such a file got other rows' calibrated scores.)"""
    lines = (GOLDEN / "judge_b.jsonl").read_text().splitlines()
    by_dimension = sorted(lines, key=lambda ln: json.loads(ln)["dimension"])
    shuffled = tmp_path / "judge_b_by_dimension.jsonl"
    shuffled.write_text("\n".join(by_dimension) + "\n")
    out = tmp_path / "calibrated.csv"
    r = runner.invoke(app, ["calibrated", "--judge", str(shuffled), "--human", str(GOLDEN / "human_b.csv"),
                            "--calibration", str(GOLDEN / "expected_calibration.json"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    with open(out, newline="") as f:
        got = list(csv.DictReader(f))
    assert [(g["transcript"], g["dimension"]) for g in got] == \
        [(json.loads(ln)["transcript"], json.loads(ln)["dimension"]) for ln in by_dimension]
    with open(GOLDEN / "expected_calibrated.csv", newline="") as f:
        want = {(w["transcript"], w["dimension"]): w for w in csv.DictReader(f)}
    for g in got:
        w = want[(g["transcript"], g["dimension"])]
        assert (g["raw"], g["method"]) == (w["raw"], w["method"])
        assert (g["calibrated"] == w["calibrated"] == "") or \
            float(g["calibrated"]) == pytest.approx(float(w["calibrated"]), rel=1e-12, abs=1e-12)
