"""Mistakes a new user makes on the first day, over the real CLI: a typo in `labels import --rubric`,
a `--db` path in a folder that does not exist on `evaluate report`, and commands with nothing to list."""

from __future__ import annotations

import pytest
from support import REPO
from typer.testing import CliRunner

from evaluator.cli import app

pytestmark = pytest.mark.usefixtures("isolated")
LABELS = REPO / "datasets" / "sample_labels.csv"


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def words(text: str) -> str:
    """The output with rich's line wrapping undone (tests never depend on the terminal's width)."""
    return " ".join(text.split())


# -- labels import --rubric TYPO -----------------------------------------------------------------------------
def test_a_mistyped_label_rubric_is_one_error_before_anything_is_read(tmp_path):
    """Checked once, up front: not repeated for every transcript of the file."""
    r = run("labels", "import", LABELS, "--rubric", "defualt", "--transcripts", REPO / "transcripts",
            "--db", tmp_path / "l.duckdb")
    assert r.exit_code == 2, r.output
    out = words(r.output)
    assert out.count("unknown rubric 'defualt'") == 1, r.output
    assert "did you mean 'default'?" in out
    assert "Traceback" not in r.output


def test_a_mistyped_label_rubric_is_refused_when_the_file_was_imported_already(tmp_path):
    """"Already imported, nothing to do" with exit 0 would hide the typo."""
    db = tmp_path / "l.duckdb"
    first = run("labels", "import", LABELS, "--transcripts", REPO / "transcripts", "--db", db)
    assert first.exit_code == 0, first.output
    again = run("labels", "import", LABELS, "--rubric", "defualt", "--db", db)
    assert again.exit_code == 2, again.output
    assert "unknown rubric 'defualt'" in words(again.output)
    assert "already imported" not in words(again.output)
