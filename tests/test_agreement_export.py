"""`evaluate agreement --out FILE`: the per-dimension agreement table as CSV, JSON Lines or Parquet,
the same figures as `--format json`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from evaluator.cli import app

pytestmark = pytest.mark.usefixtures("isolated")


def _files(tmp_path: Path) -> tuple[Path, Path]:
    judge, human = tmp_path / "judge.csv", tmp_path / "human.csv"
    judge_rows, human_rows = ["transcript,dimension,score"], ["transcript,rater,dimension,score"]
    for i in range(12):
        for dim, offset in (("clarity", 0), ("depth", 1)):
            h = 1 + (i * 7 + offset) % 5
            judge_rows.append(f"t{i},{dim},{min(5, h + (i % 3 == 0))}")
            human_rows += [f"t{i},ann,{dim},{h}", f"t{i},bob,{dim},{max(1, h - (i % 4 == 0))}"]
    judge.write_text("\n".join(judge_rows) + "\n")
    human.write_text("\n".join(human_rows) + "\n")
    return judge, human


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_agreement_table_is_written_with_the_json_figures(tmp_path: Path, suffix: str) -> None:
    judge, human = _files(tmp_path)
    args = ["agreement", "--judge", str(judge), "--human", str(human), "--scale", "1-5", "--bootstrap", "50"]
    shown = CliRunner().invoke(app, [*args, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    out = tmp_path / f"agreement{suffix}"
    written = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert written.exit_code == 0, written.output
    reader = {".csv": "read_csv_auto", ".jsonl": "read_json_auto", ".parquet": "read_parquet"}[suffix]
    rows = duckdb.sql(f"SELECT * FROM {reader}('{out}') ORDER BY dimension").fetchall()
    cols = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM {reader}('{out}')").fetchall()]
    table = {r[cols.index("dimension")]: dict(zip(cols, r, strict=True)) for r in rows}
    assert set(table) == {"clarity", "depth", "overall"}
    for dim in ("clarity", "depth", "overall"):
        assert table[dim]["n"] == doc[dim]["n"]
        assert table[dim]["qwk"] == pytest.approx(doc[dim]["qwk"])
        assert table[dim]["qwk_lo"] == pytest.approx(doc[dim]["qwk_ci"][0])
    assert not list(tmp_path.glob(".*.partial"))


def test_agreement_table_into_a_missing_folder_is_bad_input(tmp_path: Path) -> None:
    judge, human = _files(tmp_path)
    r = CliRunner().invoke(app, ["agreement", "--judge", str(judge), "--human", str(human), "--scale", "1-5",
                                 "--out", str(tmp_path / "nowhere" / "a.csv")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_labels_written_against_an_export_match_its_judgments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`evaluate export` keyed its rows by content hash while people name transcripts by file (or by the
    row's judgment id): a label file written against an export matched nothing. Now the export carries
    `transcript` (the file as judged), which labels import and the plain-file agreement both read, and
    labels import also takes the export's `judgment_id`: export -> labels -> import -> agreement."""
    import csv

    from support import make_cohort

    make_cohort(tmp_path / "c", 4)
    db = tmp_path / "e.duckdb"
    judged = CliRunner().invoke(app, ["cohort", "c", "--cohort", "spring", "--db", str(db)])  # relative paths
    assert judged.exit_code == 0, judged.output
    export = tmp_path / "scores.csv"
    assert CliRunner().invoke(app, ["export", str(export), "--table", "dimensions", "--db", str(db)]).exit_code == 0
    rows = [r for r in csv.DictReader(export.open()) if r["score"]]
    assert {r["transcript"] for r in rows} == {f"c/round_{i:02d}.md" for i in range(4)}
    by_name, by_judgment = tmp_path / "ann.csv", tmp_path / "bob.csv"
    with by_name.open("w", newline="") as a, by_judgment.open("w", newline="") as b:
        ann, bob = csv.writer(a), csv.writer(b)
        ann.writerow(["transcript", "rater", "dimension", "score"])
        bob.writerow(["id", "rater", "dimension", "score"])
        for r in rows:
            score = int(float(r["score"]))
            ann.writerow([r["transcript"], "ann", r["dimension_id"], score])
            bob.writerow([r["judgment_id"], "bob", r["dimension_id"], max(1, score - 1)])
    elsewhere = tmp_path / "elsewhere"  # the files are not at the exported paths from here: matched in the store
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for labels in (by_name, by_judgment):
        imported = CliRunner().invoke(app, ["labels", "import", str(labels), "--db", str(db)])
        assert imported.exit_code == 0, imported.output
    stored = CliRunner().invoke(app, ["agreement", "--db", str(db), "--bootstrap", "0", "--format", "json"])
    assert stored.exit_code == 0, stored.output
    doc = json.loads(stored.stdout)  # one report per rubric version when the cohort spans several
    per_dim: dict[str, int] = {}
    for report in doc["rubric_versions"].values() if "rubric_versions" in doc else [doc]:
        for d, v in report.items():
            if d != "overall":
                per_dim[d] = per_dim.get(d, 0) + v["n"]
    expected: dict[str, int] = {}
    for r in rows:
        expected[r["dimension_id"]] = expected.get(r["dimension_id"], 0) + 1
    assert per_dim == expected  # every exported score paired with its labels
    plain = CliRunner().invoke(app, ["agreement", "--judge", str(export), "--human", str(by_name), "--scale", "1-5",
                                     "--bootstrap", "0", "--format", "json"])
    assert plain.exit_code == 0, plain.output
    doc = json.loads(plain.stdout)
    assert doc["overall"]["n"] == len(rows) and doc["overall"]["exact"] == 1.0
