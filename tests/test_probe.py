"""Bias probes (`evaluate probe`) against the scripted fake server: the reply depends on what the
perturbation changed in the prompt, so each probe's stored movement is known in advance."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fakellm import Call, FakeLLM
from replies import build_reply
from support import LRU, Scripted, _prompt, query
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.judge.perturb import PERTURBATIONS

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("isolated")


def run(base_url: str, tmp_path: Path, target: Path, *extra: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(app, [
        "probe", str(target), "--model", "openai/test-model", "--api-base", base_url,
        "--db", str(tmp_path / "e.duckdb"), "--format", "json", "--retry-wait", "0.01", *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}), result.stderr


def _movement(doc: dict, perturbation: str, dim: str) -> dict:
    return next(m for m in doc["movements"] if m["perturbation"] == perturbation and m["dimension_id"] == dim)


def test_probe_stores_each_perturbation_and_reports_the_movement(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(Scripted()))

    code, doc, err = run(fake_llm.base_url, tmp_path, LRU)

    assert code == 0, (doc, err)
    # 3 unchanged samples + 6 perturbations, one call each (a single-call rubric)
    assert len(fake_llm.chat_requests) == 3 + len(PERTURBATIONS)
    items = query(tmp_path / "e.duckdb", "SELECT perturbation, sample, judgment_id, detail, skipped FROM probe_items")
    assert Counter(i["perturbation"] for i in items) == Counter({"none": 3, **{p: 1 for p in PERTURBATIONS}})
    assert all(i["judgment_id"] and not i["skipped"] for i in items)
    keys = query(tmp_path / "e.duckdb", "SELECT DISTINCT cache_key FROM judgments")
    assert len(keys) == 9  # each perturbation and each sample is its own judgment
    # reference for recovery is mean(3, 4, 3); everything perturbed says 3 there
    assert _movement(doc, "code_removed", "edge_cases")["mean_delta"] == -1
    assert _movement(doc, "code_removed", "edge_cases")["flagged"] is False  # sensitivity probe: may move
    anchors = _movement(doc, "anchors_reversed", "invariant")
    assert anchors["mean_delta"] == 1 and anchors["flagged"] is True
    assert _movement(doc, "filler_doubled", "restraint")["mean_abs_delta"] == 1
    names = _movement(doc, "names_swapped", "edge_cases")
    assert names["mean_delta"] == 0 and names["flagged"] is False
    assert _movement(doc, "names_swapped", "recovery")["mean_delta"] == pytest.approx(3 - 10 / 3)
    retest = {r["dimension_id"]: r for r in doc["retest_stats"]}
    assert retest["recovery"]["agreement"] == pytest.approx(1 / 3) and retest["recovery"]["spread"] == 1
    assert retest["edge_cases"]["agreement"] == 1 and retest["edge_cases"]["k"] == 3
    # the perturbed prompts really differ the way they say
    prompts = [_prompt(r.body) for r in fake_llm.chat_requests]
    assert sum("Dana" not in p for p in prompts) == 1
    assert sum("<<<CODE file=" not in p for p in prompts) == 1


def test_second_probe_reuses_the_stored_judgments(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(Scripted()))
    run(fake_llm.base_url, tmp_path, LRU, "--perturb", "names_swapped", "--retest", "2")
    calls = len(fake_llm.chat_requests)
    code, doc, _ = run(fake_llm.base_url, tmp_path, LRU, "--perturb", "names_swapped", "--retest", "2")
    assert code == 0 and len(fake_llm.chat_requests) == calls == 3
    assert doc["judged"] == 0 and doc["reused"] == 3 and doc["calls"] == 0
    assert len(query(tmp_path / "e.duckdb", "SELECT id FROM probe_runs")) == 2


def test_folder_with_a_bad_file_and_an_inapplicable_probe(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.md").write_text("Interviewer: Explain the cache.\n\nCandidate: Okay. I would keep a dict and a list"
                                 " so both operations stay constant time.\n")
    (folder / "b.md").write_bytes(b"\xff\xfe\x00\x00" * 10)
    fake_llm.script(Call(lambda body: json.dumps(build_reply(body))))

    code, doc, _ = run(fake_llm.base_url, tmp_path, folder, "--perturb", "code_removed", "--perturb",
                         "names_swapped", "--perturb", "filler_removed", "--retest", "1")

    notes = {(n["perturbation"], Path(n["source"]).name): n for n in doc["notes"]}
    assert notes[("code_removed", "a.md")]["why"] == "no code files are attached"
    assert "speaker names" in notes[("names_swapped", "a.md")]["why"]
    assert ("none", "b.md") in notes and notes[("none", "b.md")]["failed"]
    assert code == 1  # a file could not be read: not a clean run
    assert len(fake_llm.chat_requests) == 2  # the unchanged sample and the filler probe


def test_bad_options_exit_2(tmp_path: Path) -> None:
    for extra in (["--retest", "0"], ["--perturb", "nonsense"]):
        result = CliRunner().invoke(app, ["probe", str(LRU), "--db", str(tmp_path / "e.duckdb"), *extra])
        assert result.exit_code == 2, result.output
    result = CliRunner().invoke(app, ["probe", str(tmp_path / "missing"), "--db", str(tmp_path / "e.duckdb")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_quality_page_shows_the_probe_and_perturbed_inputs_stay_out_of_the_scores(
        fake_llm: FakeLLM, tmp_path: Path) -> None:
    from evaluator.report.build import build_report

    fake_llm.script(Call(Scripted()))
    code, doc, _ = run(fake_llm.base_url, tmp_path, LRU)
    assert code == 0
    swapped = next(m for m in doc["movements"] if m["perturbation"] == "names_swapped")
    assert swapped  # the swapped-name transcript is stored (its own judgment) ...
    candidates = {r["candidate"] for r in query(tmp_path / "e.duckdb", "SELECT candidate FROM transcripts")}
    assert "Dana Smith" in candidates and len(candidates) == 2

    build_report(tmp_path / "e.duckdb", tmp_path / "report")

    quality = (tmp_path / "report" / "quality.html").read_text()
    assert 'id="probe-movement"' in quality and 'id="probe-retest"' in quality
    assert "anchors_reversed" in quality and "code_removed" in quality and ">moves<" in quality
    assert "33%" in quality  # recovery: 1 of 3 sample pairs agree
    (other,) = candidates - {"Dana Smith"}
    overview = (tmp_path / "report" / "index.html").read_text()
    assert other not in overview  # ... but is no candidate of the report
    assert "Dana Smith" in overview
    cost = (tmp_path / "report" / "cost.html").read_text()
    assert ">9<" in cost  # every probe judgment was paid for and is counted


def test_name_swap_is_skipped_when_names_are_redacted(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(lambda body: json.dumps(build_reply(body))))
    code, doc, _ = run(fake_llm.base_url, tmp_path, LRU, "--redact", "--perturb", "names_swapped",
                       "--perturb", "code_removed", "--retest", "1")
    assert code == 0, doc
    (note,) = doc["notes"]
    assert note["perturbation"] == "names_swapped" and "--no-redact" in note["why"]
    assert len(fake_llm.chat_requests) == 2 and all("Dana" not in json.dumps(r.body) for r in fake_llm.chat_requests)


def test_offline_baseline_can_be_probed_and_prints_tables(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["probe", str(LRU), "--db", str(tmp_path / "e.duckdb"), "--retest", "2"])
    assert result.exit_code == 0, result.output
    assert "Score movement under perturbation" in result.stdout and "Test-retest" in result.stdout
    assert "offline baseline" in result.stderr
    rows = query(tmp_path / "e.duckdb", "SELECT perturbation FROM probe_items WHERE judgment_id IS NOT NULL")
    assert len(rows) == 2 + len(PERTURBATIONS)
