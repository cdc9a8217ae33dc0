"""LLM judge modes beyond the default: one call per dimension, and transcripts too long for the context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fakellm import FakeLLM
from replies import answer, requested_dims
from support import query
from typer.testing import CliRunner

from evaluator.cli import app

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("isolated")


def run(base_url: str, tmp_path: Path, transcript: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, [
        str(transcript), "--model", "openai/test-model", "--api-base", base_url, "--db", str(tmp_path / "e.duckdb"),
        "--format", "json", "--retry-wait", "0.01", *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def test_per_dimension_rubric_makes_one_call_per_dimension(fake_llm: FakeLLM, tmp_path: Path) -> None:
    base = yaml.safe_load((ROOT / "rubrics" / "default.yaml").read_text())
    rubric = tmp_path / "per_dim.yaml"
    rubric.write_text(yaml.safe_dump({**base, "id": "per_dim", "judge_mode": "per_dimension"}))
    fake_llm.script(answer())

    code, doc = run(fake_llm.base_url, tmp_path, ROOT / "transcripts" / "lru_ttl_cache.md", "--rubric", str(rubric))

    assert code == 0, doc
    assert doc["status"] == "scored" and doc["usage"]["calls"] == 5
    asked = [requested_dims(r.body) for r in fake_llm.chat_requests]
    assert sorted(map(tuple, asked)) == sorted((d["id"],) for d in base["dimensions"])
    for r in fake_llm.chat_requests:  # each request's schema holds exactly its one dimension
        props = r.body["response_format"]["json_schema"]["schema"]["$defs"]["Dimensions"]["properties"]
        assert list(props) == requested_dims(r.body)
    rows = query(tmp_path / "e.duckdb", "SELECT dimensions FROM exchanges")
    assert sorted(json.loads(r["dimensions"])[0] for r in rows) == sorted(d["id"] for d in base["dimensions"])


def test_long_transcript_keeps_opening_and_end_and_says_what_was_left_out(fake_llm: FakeLLM, tmp_path: Path) -> None:
    turns = []
    for i in range(1, 301):
        who = "Interviewer" if i % 2 else "Candidate"
        turns.append(f"{who}: Turn {i}. " + ("We keep talking about the cache design in some detail. " * 6))
    long = tmp_path / "long.md"
    long.write_text("\n\n".join(turns) + "\n")
    fake_llm.script(answer())

    code, doc = run(fake_llm.base_url, tmp_path, long, "--context-tokens", "12000", "--max-tokens", "1000")

    assert code == 0, doc
    assert "truncated" in doc["flags"]
    assert any("left out" in w for w in doc["warnings"]), doc["warnings"]
    prompt = fake_llm.chat_requests[0].body["messages"][1]["content"]
    assert "Turn 1." in prompt and "Turn 300." in prompt  # the opening and the end are kept
    assert "Turn 150." not in prompt and "turn(s) omitted here" in prompt
    assert len(prompt) / 3.2 < 12000  # the conservative estimate fits the declared context
