"""The columnar reader of plain score files (`--judge/--human`): what it must keep exactly as written,
and that the store import reads files through the same parser."""

from __future__ import annotations

import math

import pytest

from evaluator.calibrate.columns import read_columns
from evaluator.calibrate.labels import read_score_file
from evaluator.errors import BadInput


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def labels(cols):
    f = cols.frame
    return sorted((str(t), str(r), str(d), str(s), None if math.isnan(v) else v)
                  for t, r, d, s, v in zip(f.transcript, f.rater, f.dimension, f.status, f.score, strict=True))


def test_ids_stay_text(tmp_path):
    """'001' and '1' are two transcripts; a score ' 02 ' is the number 2."""
    path = write(tmp_path, "h.csv", "transcript,rater,a\n001,r1, 02 \n1,r1,3\n")
    assert labels(read_columns(path, kind="human")) == [("001", "r1", "a", "scored", 2.0), ("1", "r1", "a", "scored", 3.0)]


def test_short_row_is_a_problem_not_a_missing_label(tmp_path):
    path = write(tmp_path, "h.csv", "transcript,rater,a,b\nt1,r1,1,2\nt2,r1\n")
    with pytest.raises(BadInput, match="line 3: 2 fields, the header has 4"):
        read_columns(path, kind="human")


def test_jsonl_absent_key_is_no_label_and_null_is_missing(tmp_path):
    path = write(tmp_path, "h.jsonl", '{"transcript": "t1", "rater": "r1", "a": 1, "b": null}\n'
                                      '{"transcript": "t2", "rater": "r1", "scores": {"a": "not_observed"}}\n')
    assert labels(read_columns(path, kind="human")) == [
        ("t1", "r1", "a", "scored", 1.0), ("t1", "r1", "b", "missing", None), ("t2", "r1", "a", "not_observed", None)]


def test_problems_of_every_kind_with_lines(tmp_path):
    path = write(tmp_path, "j.csv", "transcript,dimension,score,p1,p2\nt1,a,2,0.5,0.5\nt1,a,3,0.5,0.5\n"
                                    "t2,a,x,0.5,0.5\nt3,a,1,0.9,0.9\n")
    with pytest.raises(BadInput) as err:
        read_columns(path, kind="judge")
    assert str(err.value).splitlines()[1:] == [
        "  line 3: second judge score for t1 / a (first on line 2); a judge file holds one score per transcript and "
        "dimension (from `evaluate export`: --current --model M --rubric-version V writes one judge's one judgment "
        "per transcript)",
        "  line 4: a: score 'x' is not a number, 'not_observed' or empty",
        "  line 5: a: level probabilities must sum to 1 (sum 1.800)"]


def test_na_codes_per_dimension(tmp_path):
    path = write(tmp_path, "h.csv", "transcript,rater,a,b\nt1,r1,0,0\n")
    got = labels(read_columns(path, kind="human", na_by_dimension={"a": (0.0,)}))
    assert got == [("t1", "r1", "a", "not_observed", None), ("t1", "r1", "b", "scored", 0.0)]


def test_store_import_parses_with_the_same_reader(tmp_path):
    path = write(tmp_path, "h.csv", "transcript,rater,a,b\n\nt1,r1,1,\n")
    parsed = read_score_file(path)
    assert [(r.line, r.transcript, r.dimension, r.cell) for r in parsed.rows] == [(3, "t1", "a", "1"), (3, "t1", "b", None)]
    assert parsed.layout == "wide" and parsed.n_records == 1


def test_a_transcript_belongs_to_one_group(tmp_path):
    from evaluator.calibrate.gathering import ScoreSource
    from evaluator.calibrate.service import AgreementRequest, run_agreement

    judge = write(tmp_path, "j.csv", "transcript,doc,a\nt1,d1,2\nt2,d1,3\nt3,d2,4\n")
    inside = write(tmp_path, "bad.csv", "transcript,rater,doc,a\nt1,r1,d1,2\nt1,r2,d2,3\n")
    with pytest.raises(BadInput, match="line 3: t1: column 'doc' is 'd2' here but 'd1' on an earlier row"):
        read_columns(inside, kind="human", meta_columns=frozenset({"doc"}))
    human = write(tmp_path, "h.csv", "transcript,rater,doc,a\nt1,r1,d1,2\nt2,r1,d9,3\nt3,r1,d2,4\n")
    request = AgreementRequest(source=ScoreSource(judge_file=judge, human_file=human, scale="1-5", group_by="doc"),
                               n_bootstrap=0)
    with pytest.raises(BadInput, match="t2: column 'doc' is 'd1' in the judge file but 'd9' in the human file"):
        run_agreement(request)


def test_parquet_reads_as_the_same_table_in_csv(tmp_path):
    """Typed Parquet columns (integer rater ids, decimal scores, nulls) are read as their text, so the
    file is validated exactly as the same table written as CSV; a problem's line is the row number."""
    import duckdb

    path = tmp_path / "h.parquet"
    duckdb.sql(f"COPY (SELECT * FROM (VALUES ('001', 1, 2.5, NULL), ('t2', 2, NULL, 'not_observed')) "
               f"t(transcript, rater, a, b)) TO '{path}' (FORMAT parquet)")
    assert labels(read_columns(path, kind="human")) == [
        ("001", "1", "a", "scored", 2.5), ("001", "1", "b", "missing", None),
        ("t2", "2", "a", "missing", None), ("t2", "2", "b", "not_observed", None)]
    with pytest.raises(BadInput, match="line 1: a: score 2.5 is outside the scale 3-5"):
        from evaluator.calibrate.records import ScaleSpec

        read_columns(path, kind="human", scale=ScaleSpec(min=3, max=5))
    broken = write(tmp_path, "broken.parquet", "PAR1 not really")
    with pytest.raises(BadInput, match="not a readable Parquet file"):
        read_columns(broken, kind="human")
