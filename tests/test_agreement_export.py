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
