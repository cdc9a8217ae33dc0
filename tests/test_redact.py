"""PII redaction before the prompt is sent: what leaves the machine, what is stored, what is restored."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, FakeLLM
from replies import build_reply
from support import query
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.ingest import load_transcript
from evaluator.redact import Redactor, is_hosted, redact_transcript

pytestmark = pytest.mark.usefixtures("isolated")

TRANSCRIPT = """---
candidate: Dana Smith
interviewer: Priya Nair
company: Globex
---

Priya Nair (interviewer): Hi Dana. Tell me about a cache you built at your last job.

Dana Smith (candidate): At Initech I built a read-through cache in front of the pricing service, which cut p99 latency from 300 ms to 40 ms.

Dana Smith (candidate): You can reach me at dana.smith@example.com or +44 20 7946 0958, and the code is on https://github.com/danasmith/cachekit for review.

Priya Nair (interviewer): Thanks Dana. Why not use Redis? The docs at https://redis.io/docs/latest are good.

Dana Smith (candidate): We measured it: the network hop cost more than the misses we saved, so an in-process LRU was the better trade at Initech.
"""
SECRETS = ["Dana", "Smith", "Priya", "Nair", "Initech", "Globex", "dana.smith@example.com", "7946", "danasmith"]


def _reply(body: dict[str, Any]) -> str:
    prompt = "\n".join(m["content"] for m in body["messages"] if m["role"] in ("system", "user"))
    dims = re.findall(r"^### `([^`]+)`", prompt, re.MULTILINE)
    line = next(m.group(1) for m in re.finditer(r"\] C: (.*)", prompt) if "[COMPANY_" in m.group(1))
    quote = " ".join(line.split()[:9])  # "At [COMPANY_1] I built a read-through cache in front ..."
    return json.dumps({"dimensions": {d: {
        "reasoning": "[CANDIDATE] measured before choosing, at [COMPANY_1]; [INTERVIEWER] pushed on Redis.",
        "score": 4, "evidence": [quote]} for d in dims}})


def _judge(base_url: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    path = tmp_path / "dana_round.md"
    path.write_text(TRANSCRIPT)
    terms = tmp_path / "companies.txt"
    terms.write_text("# employers to keep private\nInitech\n")
    result = CliRunner().invoke(app, [
        str(path), "--model", "openai/test-model", "--api-base", base_url, "--db", str(tmp_path / "e.duckdb"),
        "--format", "json", "--retry-wait", "0.01", "--redact-list", str(terms), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def test_redacted_prompt_leaves_nothing_personal_and_the_store_gets_the_originals_back(
        fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(_reply))

    code, doc = _judge(fake_llm.base_url, tmp_path, "--redact")

    assert code == 0, doc
    sent = json.dumps(fake_llm.chat_requests[0].body)
    for secret in SECRETS:
        assert secret not in sent, secret
    # the turn labels give roles, not names: the interviewer's name appeared only there, so it is not sent
    for placeholder in ("[CANDIDATE]", "[EMAIL_1]", "[PHONE_1]", "[URL_1]", "[COMPANY_1]"):
        assert placeholder in sent
    assert "https://redis.io/docs/latest" in sent  # a documentation URL is not personal
    # the stored exchange is what was sent
    exchange = query(tmp_path / "e.duckdb", "SELECT request_messages FROM exchanges")[0]["request_messages"]
    assert "Initech" not in exchange and "[COMPANY_1]" in exchange
    # the stored rationale and quotes read the real text, with spans into the real turn
    dims = query(tmp_path / "e.duckdb", "SELECT rationale, evidence FROM dimension_scores")
    texts = json.loads(query(tmp_path / "e.duckdb", "SELECT turns FROM transcript_texts")[0]["turns"])
    by_id = {t["id"]: t["text"] for t in texts}
    for d in dims:
        assert d["rationale"].startswith("Dana Smith measured before choosing, at Initech; Priya Nair")
        (e,) = json.loads(d["evidence"])
        assert e["quote"] == "At Initech I built a read-through cache in front"
        assert by_id[e["source"]][e["start"]:e["end"]] == e["quote"]
    assert "redacted" in doc["flags"]
    (stored,) = query(tmp_path / "e.duckdb", "SELECT flags FROM judgments")
    detail = next(f["detail"] for f in json.loads(stored["flags"]) if f["kind"] == "redacted")
    assert "1 e-mail address" in detail and "2 company names" in detail  # Initech (list), Globex (front matter)


def test_local_server_is_not_redacted_by_default_and_the_cache_keeps_them_apart(
        fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(lambda body: json.dumps(build_reply(body))))
    code, doc = _judge(fake_llm.base_url, tmp_path)
    assert code == 0, doc
    assert "Initech" in json.dumps(fake_llm.chat_requests[0].body)
    assert "redacted" not in doc["flags"]
    fake_llm.script(Call(_reply))
    code, doc = _judge(fake_llm.base_url, tmp_path, "--redact")  # a redacted prompt is another cache key
    assert code == 0 and len(fake_llm.chat_requests) == 2
    keys = query(tmp_path / "e.duckdb", "SELECT DISTINCT cache_key FROM judgments")
    assert len(keys) == 2


def test_unreadable_redact_list_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "t.md"
    path.write_text(TRANSCRIPT)
    result = CliRunner().invoke(app, [str(path), "--model", "openai/x", "--api-base", "http://127.0.0.1:9",
                                      "--redact-list", str(tmp_path / "nope.txt"), "--no-store"])
    assert result.exit_code == 2 and "--redact-list" in result.output


@pytest.mark.parametrize(("model", "api_base", "hosted"), [
    ("openai/gpt-4o-mini", None, True),
    ("ollama/llama3.1", None, False),
    ("openai/x", "http://127.0.0.1:8000/v1", False),
    ("openai/x", "http://localhost:11434", False),
    ("openai/x", "http://10.0.0.5:8000", False),
    ("openai/x", "http://192.168.1.20/v1", False),
    ("openai/x", "http://[::1]:8000", False),
    ("openai/x", "https://api.together.xyz/v1", True),
    ("openai/x", "http://8.8.8.8/v1", True),
])
def test_hosted_is_no_api_base_or_a_public_one(model: str, api_base: str | None, hosted: bool) -> None:
    assert is_hosted(model, api_base) is hosted


def test_placeholders_are_stable_and_spans_map_back(tmp_path: Path) -> None:
    path = tmp_path / "t.md"
    path.write_text(TRANSCRIPT)
    transcript = load_transcript(path)
    first, redaction = redact_transcript(transcript, ("Initech",))
    again, _ = redact_transcript(transcript, ("Initech",))
    assert [t.text for t in first.turns] == [t.text for t in again.turns]
    turn = first.turns[2]
    assert turn.text.startswith("You can reach me at [EMAIL_1] or [PHONE_1], and the code is on [URL_1]")
    original = transcript.turns[2].text
    place = redaction.places[turn.id]
    start = turn.text.index("[EMAIL_1]")
    s, e = place.to_original(start, start + len("[EMAIL_1] or [PHONE_1]"))
    assert original[s:e] == "dana.smith@example.com or +44 20 7946 0958"
    s, e = place.to_original(0, 6)  # before any placeholder: unchanged
    assert original[s:e] == "You ca"
    assert first.turns[4].text.endswith("better trade at [COMPANY_1].")  # the same company, the same placeholder
    assert first.source == "transcript.md" and "Dana" not in first.raw_text


def test_phone_pattern_leaves_code_numbers_alone() -> None:
    r = Redactor({})
    for text in ("capacity = 1000000", "192.168.1.100", "2025-03-14 10:32", "O(1) for 300 ms to 40 ms"):
        assert r.redact(text).text == text
    assert r.redact("call 415-555-0100 now").text == "call [PHONE_1] now"


def test_a_first_name_label_is_the_same_person_as_the_front_matter_name() -> None:
    r = Redactor({"Dana Smith": "candidate", "Dana": "candidate", "Sam": "interviewer", "Lee Wong": "unknown"})
    assert r.redact("Dana Smith, Dana, Smith, Sam and Lee").text == \
        "[CANDIDATE], [CANDIDATE], [CANDIDATE], [INTERVIEWER] and [PERSON_1]"
    assert r.restore("[CANDIDATE] and [PERSON_1]") == "Dana Smith and Lee Wong"
