"""What real local servers need from the judge, checked against the scripted server (tests/fakellm.py).

Found with a real llama.cpp server and a small model (see tests/test_real_model.py):
- a repair request must extend the first request byte for byte, so the server's prompt cache
  (llama.cpp `cache_prompt`) re-reads only the new tail instead of the whole transcript;
- a small model quotes the rubric's anchors instead of the transcript and repeats it on a generic
  repair request: the repair message names each such quote and where it came from;
- prompt reading on a CPU takes minutes: a timeout against a local server says which --timeout fits.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, FakeLLM
from replies import answer, build_reply
from test_llm_judge import evaluate, stored

from evaluator.judge.capabilities import is_local

pytestmark = pytest.mark.usefixtures("isolated")


def raw_messages(raw: bytes) -> str:
    """The `messages` array exactly as it went over the wire (no re-serialising)."""
    text = raw.decode("utf-8")
    start = text.index("[", text.index('"messages"'))
    _, end = json.JSONDecoder().raw_decode(text, start)
    return text[start:end]


def test_repair_request_extends_the_first_request_byte_for_byte(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(answer(omit=("recovery",)), answer(omit=("recovery",)), answer())
    run = evaluate(fake_llm.base_url, tmp_path)

    assert run.code == 0, run.stderr
    requests = fake_llm.chat_requests
    assert len(requests) == 3
    wire = [raw_messages(r.raw) for r in requests]
    for earlier, later in itertools.pairwise(wire):
        head = earlier[:-1]  # without the closing bracket: the later array continues after it
        assert later.startswith(head + ","), "a repair request re-rendered an earlier message"
        assert len(later) > len(earlier)
    n = len(requests[0].body["messages"])
    assert [m["role"] for m in requests[2].body["messages"][n:]] == ["assistant", "user", "assistant", "user"]


def _anchor_lines(body: dict[str, Any], dim: str) -> list[str]:
    """The anchor texts of one dimension as the prompt shows them ("4: ...")."""
    prompt = "\n".join(m["content"] for m in body["messages"][:2])  # the rubric sits in the system message
    section = prompt.split(f"### `{dim}`", 1)[1].split("###", 1)[0]
    return [m.group(1).strip() for m in re.finditer(r"^\d: (.+)$", section, re.MULTILINE)]


def test_repair_names_quotes_copied_from_the_rubric_and_the_instructions(fake_llm: FakeLLM, tmp_path: Path) -> None:
    def copies_the_prompt(body: dict[str, Any]) -> str:
        reply = build_reply(body)
        reply["dimensions"]["invariant"]["evidence"] = [_anchor_lines(body, "invariant")[1][:90]]
        reply["dimensions"]["restraint"]["evidence"] = ["Grade behaviour, not claims: \"I'll handle edge cases\" without handling any"]
        return json.dumps(reply)

    fake_llm.script(Call(copies_the_prompt), answer())
    run = evaluate(fake_llm.base_url, tmp_path)

    assert run.code == 0, run.stderr
    assert run.statuses()["invariant"] == "scored" and run.statuses()["restraint"] == "scored"
    first, repair = fake_llm.chat_requests
    tag = re.search(r"; tag (\w+)\)", first.body["messages"][1]["content"]).group(1)  # type: ignore[union-attr]
    ask = repair.body["messages"][-1]["content"]
    assert "`invariant`: " in ask and "is from the rubric's anchors for `invariant`" in ask
    assert "`restraint`: " in ask and "is from the grading instructions (system message)" in ask
    assert "never evidence" in ask
    assert f"<<<TRANSCRIPT ... tag={tag}>>>" in ask and f"<<<END TRANSCRIPT tag={tag}>>>" in ask
    _, _, exchanges = stored(run.db)
    assert exchanges[1]["request_messages"][-1]["content"] == ask  # what was sent is what is stored


def test_a_quote_not_in_the_prompt_is_not_called_a_rubric_quote(fake_llm: FakeLLM, tmp_path: Path) -> None:
    invented = "I have shipped this exact cache to production at planet scale on Kubernetes clusters"
    fake_llm.script(answer(evidence={"invariant": [invented]}), answer())
    run = evaluate(fake_llm.base_url, tmp_path)

    assert run.code == 0, run.stderr
    ask = fake_llm.chat_requests[1].body["messages"][-1]["content"]
    assert "quotes not found" in ask and "copied them from this prompt" not in ask
    assert "<<<TRANSCRIPT ... tag=" in ask  # where to quote from is always said


def test_a_timeout_on_a_local_server_says_which_timeout_fits(fake_llm: FakeLLM, tmp_path: Path) -> None:
    slow = answer()
    slow.delay = 3.0
    fake_llm.script(answer(omit=("recovery",)), slow)  # the repair times out after one answered request
    run = evaluate(fake_llm.base_url, tmp_path, "--timeout", "0.5", "--retries", "0")

    assert run.code == 1, run.stderr
    recovery = run.dim("recovery")
    assert recovery["status"] == "unscored"
    reason = recovery["reason"]
    assert "0.5 s deadline" in reason and "local server" in reason
    assert re.search(r"sent a ~\d+-token prompt", reason)
    assert "earlier replies in this run came at >= " in reason  # measured, not a guess
    fits = re.search(r"pass --timeout (\d+)", reason)
    assert fits and int(fits.group(1)) >= 60


def test_a_first_request_timeout_uses_the_cpu_speed_range(fake_llm: FakeLLM, tmp_path: Path) -> None:
    slow = answer()
    slow.delay = 3.0
    fake_llm.script(slow)
    run = evaluate(fake_llm.base_url, tmp_path, "--timeout", "0.5", "--retries", "0")

    assert run.code == 3  # no reply to any request: the judge is unavailable, and the advice says why
    reason = run.doc["error"]
    assert "CPU servers read prompts at 10-60 tokens/s" in reason
    prompt = int(re.search(r"sent a ~(\d+)-token prompt", reason).group(1))  # type: ignore[union-attr]
    fits = int(re.search(r"pass --timeout (\d+)", reason).group(1))  # type: ignore[union-attr]
    assert fits >= prompt / 10  # at least the prompt at the slowest CPU speed


@pytest.mark.parametrize(("model", "api_base", "local"), [
    ("openai/x", "http://127.0.0.1:8089/v1", True),
    ("openai/x", "http://localhost:11434/v1", True),
    ("openai/x", "http://192.168.1.20:8000/v1", True),
    ("openai/x", "http://gpu-box.local:8000/v1", True),
    ("ollama/llama3.1", None, True),
    ("openai/gpt-4o-mini", None, False),
    ("openai/x", "https://api.together.xyz/v1", False),
    ("openai/x", "https://8.8.8.8/v1", False),
])
def test_which_servers_count_as_local(model: str, api_base: str | None, local: bool) -> None:
    assert is_local(model, api_base) is local


def test_a_quote_repeated_many_times_is_named_once_in_the_repair(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """SmolLM2-135M under llama.cpp's schema enforcement repeated one non-quote ~90 times."""
    fake_llm.script(answer(evidence={"invariant": ["This is a JSON object"] * 90}), answer())
    run = evaluate(fake_llm.base_url, tmp_path)

    assert run.code == 0, run.stderr
    ask = fake_llm.chat_requests[1].body["messages"][-1]["content"]
    assert ask.count("This is a JSON object") == 1
