"""Judge versions follow what the judge produces, not its source text.

Each case copies the `evaluator` package, edits the copy, and computes both versions in a fresh
interpreter that imports the copy: a comment or docstring edit must keep the versions (stored
judgments, trends and calibrations stay valid), a change in fencing, turn layout or scoring must
change them (cached judgments are not reused for a judge that would answer differently).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import evaluator

PACKAGE = Path(evaluator.__file__).resolve().parent
SHOW = ("import json, evaluator; from evaluator.judge.prompt import prompt_version; "
        "from evaluator.judge.baseline import baseline_version; "
        "print(json.dumps([evaluator.__file__, prompt_version(), baseline_version()]))")


def versions(tmp_path: Path, edits: dict[str, str], cache: Path | None = None) -> tuple[str, str]:
    """(prompt version, baseline version) of a copy of the package with `edits` appended to files
    (`cache`: the folder where versions are kept between processes, else the suite's)."""
    root = tmp_path / "copy"
    shutil.copytree(PACKAGE, root / "evaluator", ignore=shutil.ignore_patterns("__pycache__"))
    for name, addition in edits.items():
        path = root / "evaluator" / name
        path.write_text(path.read_text(encoding="utf-8") + addition, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    if cache is not None:
        env["EVALUATOR_CACHE_DIR"] = str(cache)
    out = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, env=env, check=False,
                         cwd=root, timeout=120)  # `-c` puts the working directory first on sys.path
    assert out.returncode == 0, out.stderr
    where, prompt, baseline = json.loads(out.stdout)
    assert Path(where).resolve().is_relative_to(root)  # the copy was measured, not the installed package
    return prompt, baseline


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return versions(tmp_path_factory.mktemp("original"), {})


def test_the_versions_are_those_of_the_running_code(original: tuple[str, str]) -> None:
    from evaluator.judge.baseline import BaselineJudge
    from evaluator.judge.prompt import prompt_version

    assert original == (prompt_version(), BaselineJudge().info().prompt_version)


def test_comments_and_docstrings_keep_both_versions(tmp_path: Path, original: tuple[str, str]) -> None:
    comment = "\n# A comment that changes nothing the judge produces.\n"
    edits = {
        "judge/prompt.py": comment + 'def _unused_helper():\n    """A docstring."""\n',
        "safety/fencing.py": comment, "judge/baseline.py": comment, "judge/signals.py": comment,
    }
    assert versions(tmp_path, edits) == original


def test_a_change_in_fencing_changes_the_prompt_version(tmp_path: Path, original: tuple[str, str]) -> None:
    fencing = ("\n_fence = fence\n\n"
               "def fence(kind, label, body, tag):  # one more blank line after the opening delimiter\n"
               "    return _fence(kind, label, body, tag).replace('\\n', '\\n\\n', 1)\n")
    prompt, baseline = versions(tmp_path, {"safety/fencing.py": fencing})
    assert prompt != original[0]
    assert baseline == original[1]  # the baseline reads no prompt


def test_a_change_in_turn_layout_changes_the_prompt_version(tmp_path: Path, original: tuple[str, str]) -> None:
    layout = ("\n\ndef _turn_line(t):  # timestamps no longer shown\n"
              "    return f'[{t.id}] {t.speaker} ({t.role}): {t.text}'\n")
    assert versions(tmp_path, {"judge/prompt.py": layout})[0] != original[0]


def test_a_change_in_scoring_changes_the_baseline_version(tmp_path: Path, original: tuple[str, str]) -> None:
    rounding = ("\n\ndef map_score(score, lo, hi):  # round down instead of half up\n"
                "    return int(lo + (score - 1) * (hi - lo) / 4)\n")
    prompt, baseline = versions(tmp_path, {"judge/baseline.py": rounding})
    assert baseline != original[1]
    assert prompt == original[0]


def test_versions_are_kept_for_this_exact_code_and_computed_again_after_any_edit(
        tmp_path: Path, original: tuple[str, str]) -> None:
    """A fully cached re-run must not render the probes again (judge/memo.py keeps the versions on
    disk), yet a kept version is never read back for code or templates that changed."""
    cache = tmp_path / "cache"
    assert versions(tmp_path / "a", {}, cache) == original  # computed, then kept
    kept_file = cache / "judge-versions.json"
    kept = json.loads(kept_file.read_text(encoding="utf-8"))
    assert list(kept.values()) == [{"prompt": original[0], "baseline": original[1]}]

    # a later process of the same code reads what is kept (planted here: it is not computed again)
    planted = {"prompt": "judge-v1@planted", "baseline": "baseline-v1+planted"}
    kept_file.write_text(json.dumps({key: planted for key in kept}), encoding="utf-8")
    assert versions(tmp_path / "b", {}, cache) == ("judge-v1@planted", "baseline-v1+planted")

    # an edited template is other code: its versions are computed, not read back
    prompt, baseline = versions(tmp_path / "c", {"prompts/judge_system.md.j2": "\nOne more rule.\n"}, cache)
    assert prompt not in (planted["prompt"], original[0])
    assert baseline == original[1]  # computed again, and the same: the baseline reads no template
    assert len(json.loads(kept_file.read_text(encoding="utf-8"))) == 2  # both kept
