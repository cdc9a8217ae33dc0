"""A re-run whose judgments are all cached makes no call and never imports litellm (its import costs
5-10 s, more than the whole cached run): the judge's identity (cache key) is known without it. Nor
does it import what only judging, statistics or reports need (pandas, numpy, scipy, jinja2...): a
cached re-run's whole cost is start-up, reading the files and the cache lookups.

The first run is in-process against the scripted server; the re-runs are real `evaluate` processes
that report which heavy modules they imported, through the real CLI. Nothing here measures time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakellm import Call, FakeLLM
from replies import valid
from test_cohort import cohort, cohort_args, make_cohort

MODEL = "openai/test-model"

# what a cached re-run has no use for: the model client, tables and statistics, templates, charts
HEAVY = ("litellm", "openai", "pandas", "numpy", "scipy", "sklearn", "jinja2", "plotly", "rapidfuzz")
# runs the CLI, then says (on stderr, after the command's own output) which of HEAVY were imported
PROBE = ("import json, sys\nfrom evaluator.cli import run\ntry:\n    run()\nfinally:\n"
         f"    print('HEAVY-IMPORTED', json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n")


@pytest.fixture(autouse=True)
def _clean_env(isolated: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVALUATOR_CACHE_DIR", str(tmp_path / "cache"))  # a fresh facts cache per test
    # the facts are also kept per process: an earlier test of this process that asked for the same
    # model left them in memory, so the in-process first run would not write them to this test's
    # cache and the re-run process would have to ask litellm (the order-dependent failure seen before)
    # The same holds for the judge's prompt version (kept in the cache folder by the first run).
    from evaluator.judge import capabilities, prompt

    capabilities._model_facts.cache_clear()
    prompt.prompt_version.cache_clear()


LOADING = "loading the model client"
TERMINAL = {"FORCE_COLOR": "1"}  # rich takes stderr for a terminal: the progress bar and the loading notice


def run_process(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, list[str], str]:
    """(exit code, stdout, which of HEAVY were imported, stderr) of one `evaluate` process."""
    p = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}, timeout=300)
    marks = re.findall(r"HEAVY-IMPORTED (\[.*\])", p.stderr)  # after a progress bar's cursor controls
    assert marks, p.stderr
    return p.returncode, p.stdout, json.loads(marks[-1]), p.stderr


def test_cached_cohort_rerun_never_imports_litellm(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    make_cohort(folder, 4)
    first = cohort(folder, db, "--concurrency", "2", base_url=fake_llm.base_url)
    assert first.code == 0, first.stderr
    assert len(fake_llm.chat_requests) == 4

    # on a terminal too: the "loading the model client" notice no longer loads it up front
    code, out, imported, err = run_process(cohort_args(folder, db, base_url=fake_llm.base_url), tmp_path, TERMINAL)
    assert code == 0, out
    doc = json.loads(out)
    assert doc["cached"] == 4 and doc["scored"] == 4
    assert len(fake_llm.chat_requests) == 4  # no call
    assert imported == [] and LOADING not in err

    # one new transcript: the same command now needs the client, and judges only that one
    (folder / "new.md").write_text((folder / "round_00.md").read_text(encoding="utf-8") + "\nInterviewer: One more.\n",
                                   encoding="utf-8")
    code, out, imported, err = run_process(cohort_args(folder, db, base_url=fake_llm.base_url), tmp_path, TERMINAL)
    assert code == 0, out
    assert json.loads(out)["cached"] == 4 and len(fake_llm.chat_requests) == 5
    assert "litellm" in imported and "jinja2" in imported  # the probe sees what a judging run loads
    assert LOADING in err  # said when the client is loaded, and only then


def test_cached_single_file_never_imports_litellm(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(valid))
    folder, db = tmp_path / "c", tmp_path / "e.duckdb"
    path = make_cohort(folder, 1)[0]
    args = ["judge", str(path), "--db", str(db), "--format", "json", "--model", MODEL,
            "--api-base", fake_llm.base_url, "--retry-wait", "0.01", "--timeout", "20"]
    code, out, imported, _ = run_process(args, tmp_path)
    assert code == 0, out
    assert "litellm" in imported and len(fake_llm.chat_requests) == 1

    code, out, imported, err = run_process(args, tmp_path, TERMINAL)
    assert code == 0, out
    assert len(fake_llm.chat_requests) == 1
    assert imported == [] and LOADING not in err


def test_model_facts_are_kept_per_litellm_version(tmp_path: Path) -> None:
    """The facts the judge's identity needs are kept on disk and read back identically."""
    from evaluator.judge import capabilities

    capabilities._model_facts.cache_clear()
    first = capabilities._model_facts("openai/gpt-4o-mini")
    path = capabilities._facts_file()
    assert path is not None and path.exists() and path.parent == tmp_path / "cache"
    capabilities._model_facts.cache_clear()
    assert capabilities._model_facts("openai/gpt-4o-mini") == first
    assert first[0].get("max_input_tokens")  # a model litellm's map knows
