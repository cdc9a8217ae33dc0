"""Replies shaped the way real servers send them, beyond plain `content`: tool calls, reasoning
models' separate thinking, no choices at all, and quotes that are only the interviewer's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakellm import Call, Error, FakeLLM
from replies import answer, build_reply, requested_dims
from support import query
from typer.testing import CliRunner

from evaluator.cli import app

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPT = ROOT / "transcripts" / "lru_ttl_cache.md"


pytestmark = pytest.mark.usefixtures("isolated")


def run(server: FakeLLM, tmp_path: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(app, [
        str(TRANSCRIPT), "--model", "openai/test-model", "--api-base", server.base_url,
        "--db", str(tmp_path / "e.duckdb"), "--format", "json", "--retry-wait", "0.01"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def completion(message: dict) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}}


def probe_request(server: FakeLLM, tmp_path: Path) -> dict:
    """The body of a real judge request for TRANSCRIPT (to build a custom-shaped reply from it)."""
    holder: dict = {}
    server.script(Call(lambda body: holder.setdefault("body", body) and "not json"))
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    run(server, probe_dir)
    server.clear()
    return holder["body"]


def test_answer_in_tool_call_arguments_is_used(fake_llm: FakeLLM, tmp_path: Path) -> None:
    body = probe_request(fake_llm, tmp_path)
    args = json.dumps(build_reply(body))
    fake_llm.script(Error(200, body=completion({"content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "judgment", "arguments": args}}]})))

    code, doc = run(fake_llm, tmp_path)

    assert code == 0, doc
    assert doc["status"] == "scored" and doc["usage"]["calls"] == 1
    rows = query(tmp_path / "e.duckdb", "SELECT raw_response, error FROM exchanges")
    assert rows[0]["raw_response"] == args and "tool call" in rows[0]["error"]


def test_reasoning_content_is_kept_apart_from_the_answer(fake_llm: FakeLLM, tmp_path: Path) -> None:
    body = probe_request(fake_llm, tmp_path)
    fake_llm.script(Error(200, body=completion({"content": json.dumps(build_reply(body)),
                                               "reasoning_content": "Let me weigh the anchors first."})))

    code, doc = run(fake_llm, tmp_path)

    assert code == 0 and doc["status"] == "scored", doc
    rows = query(tmp_path / "e.duckdb", "SELECT raw_response, reasoning FROM exchanges")
    assert rows[0]["reasoning"] == "Let me weigh the anchors first."
    assert rows[0]["raw_response"].lstrip().startswith("{")


def test_no_choices_is_an_explicit_unscored_result_not_a_crash(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Error(200, body={"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                     "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0,
                                                              "total_tokens": 1}}))

    code, doc = run(fake_llm, tmp_path)

    assert code == 1 and doc["status"] == "unscored"
    assert doc["usage"]["calls"] == 3  # the first ask and two repairs
    assert "no choices" in doc["dimensions"][0]["reason"]


def test_quotes_that_are_only_the_interviewers_words_are_not_support(fake_llm: FakeLLM, tmp_path: Path) -> None:
    def interviewer_quotes(body: dict) -> str:
        prompt = body["messages"][1]["content"]
        line = next(x for x in prompt.splitlines() if x.startswith("[t1] I: "))
        quote = line.split(": ", 1)[1][:60]
        return json.dumps({"dimensions": {d: {"reasoning": "r", "score": 5, "evidence": [quote]}
                                          for d in requested_dims(body)}})

    fake_llm.script(Call(interviewer_quotes), answer())

    code, doc = run(fake_llm, tmp_path)

    assert code == 0 and doc["usage"]["calls"] == 2, doc  # re-asked once, then the candidate's words
    repair = fake_llm.chat_requests[1].body["messages"][-1]["content"]
    assert "interviewer's words" in repair
    assert all(e["role"] == "candidate" for d in doc["dimensions"] for e in d["evidence"])
