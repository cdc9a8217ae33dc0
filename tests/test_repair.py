"""Repairs that can succeed: a reply that looped or was cut off at the token limit is not re-asked the
same way, and a request that would repeat an earlier one with deterministic sampling is not sent.

The pure parts (the loop detector, the policy's steps) are tested directly; the judge end to end
through the real CLI, litellm and HTTP against the scripted server (tests/fakellm.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM, Reply
from replies import answer, build_reply
from support import DIMS, REPO, evaluate, query

from evaluator.judge.degenerate import find_loop
from evaluator.judge.repair import (
    FREQUENCY_PENALTY,
    MIN_REASONING_CHARS,
    REASONING_CHARS,
    REPAIR_TEMPERATURE,
    Failure,
    Step,
    deterministic,
    next_step,
    reasoning_chars,
)

pytestmark = pytest.mark.usefixtures("isolated")

# What SmolLM2-135M at temperature 0 sent back through llama.cpp's json_schema grammar: the reasoning
# string starts sensibly, then one clause repeats until the token limit cuts it mid-word.
LOOP_REPLY = ('{"dimensions": {"invariant": {"reasoning": "The candidate explains the invariant of the cache '
              'and the interviewer asks about eviction, '
              + "and the interviewer is a candidate, and the candidate is an interviewer, " * 40
              + "and the intervi")
NORMAL_REASONING = (
    "The candidate states the invariant before writing code: every key in the dictionary has exactly one "
    "node in the recency list, and the list is ordered from least to most recently used. When the "
    "interviewer asks about expiry they first propose a background sweeper, then notice it needs a lock and "
    "a thread, and settle on lazy expiry checked on read, which keeps get and put at constant time. They "
    "test the empty cache, a capacity of one, and a key that expires between two reads, but they never "
    "consider what happens when the clock goes backwards. Cost is discussed only briefly: the candidate "
    "mentions that a sweeper would cost a thread per cache and that lazy expiry keeps stale entries in "
    "memory until they are read, and chooses the latter because the interviewer said memory is cheap here. "
)


# ------------------------------------------------------------------------------- the loop detector

@pytest.mark.parametrize("text", [
    LOOP_REPLY,
    # a loop inside the evidence list (the schema's maxItems not enforced), cut off mid-quote
    '{"dimensions": {"edge_cases": {"reasoning": "Handles capacity one.", "score": 3, "evidence": ['
    + '"def get(self, key): return self.data[key]", ' * 12 + '"def get(se',
    # one word said over and over
    "The candidate is " + "very " * 60,
    # a near loop: a counter changes every round, so no exact period
    " ".join(f"Step {i}: the candidate checks the cache again and the interviewer nods." for i in range(40)),
], ids=["clause", "evidence", "word", "counter"])
def test_loops_that_run_into_the_end_of_a_reply_are_found(text: str) -> None:
    loop = find_loop(text)
    assert loop is not None
    assert loop.chars >= 160
    assert "repeat" in loop.describe() or "loop" in loop.describe()


SMOLLM2 = json.loads((REPO / "tests" / "data" / "smollm2_replies.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["copies_lines_until_cut_off", "bounded_strings_cut_off", "one_sentence_everywhere"])
def test_real_small_model_replies_that_went_round_in_circles_are_found(name: str) -> None:
    """Replies SmolLM2-135M really sent: the same anchor line copied into every dimension and quote
    until the limit (twice cut off, once closed). None has an exact period; compression finds them."""
    loop = find_loop(SMOLLM2[name])
    assert loop is not None and loop.unit == "" and "loop" in loop.describe()


def test_the_loop_is_described_by_its_repeated_unit() -> None:
    loop = find_loop(LOOP_REPLY)
    assert loop is not None and loop.repeats >= 30  # the tail searched holds most of the 40 rounds
    clause = "and the interviewer is a candidate, and the candidate is an interviewer,".split()
    words = loop.unit.split()
    assert len(words) == len(clause) and " ".join(words) in " ".join(clause * 2)  # the clause, rotated


@pytest.mark.parametrize("text", [
    NORMAL_REASONING * 1,
    # a long but ordinary reply: five dimensions of varied reasoning, closed JSON
    json.dumps({"dimensions": {d: {"reasoning": NORMAL_REASONING[i * 90:] + NORMAL_REASONING[:i * 90],
                                   "score": 3, "evidence": ["every key in the dictionary has exactly one node"]}
                               for i, d in enumerate(DIMS)}}, indent=2),
    # a phrase repeated in the middle, then the reply goes on and closes
    "Intro. " + "and again, " * 30 + NORMAL_REASONING,
    # a short stammer at the end is not a loop
    NORMAL_REASONING + "no, no, no, no",
    "",
], ids=["prose", "long-json", "middle", "stammer", "empty"])
def test_normal_long_replies_are_not_loops(text: str) -> None:
    assert find_loop(text) is None


@pytest.mark.parametrize("path", sorted((REPO / "transcripts").glob("*.md")), ids=lambda p: p.name)
def test_no_sample_transcript_reads_as_a_loop(path: Path) -> None:
    """Real dialogue with code, long and repetitive in places, is never taken for a loop."""
    text = path.read_text(encoding="utf-8")
    assert find_loop(text) is None
    assert find_loop(text[: len(text) // 2]) is None


# ------------------------------------------------------------------------------------ the policy

def test_reasoning_bound_fits_the_token_budget() -> None:
    assert reasoning_chars(4096, 1) == REASONING_CHARS  # plenty of room: the cap
    assert reasoning_chars(600, 5) == 150  # 600 tokens for five dimensions: a sentence or two each
    assert reasoning_chars(100, 5) == MIN_REASONING_CHARS  # never below one sentence
    assert reasoning_chars(1200, 5) > reasoning_chars(600, 5)


def test_steps_after_a_loop_each_change_the_request_and_use_only_the_providers_levers() -> None:
    cut = Failure(cut_off=True)
    both = ("frequency_penalty", "temperature")
    first = next_step(cut, [], 600, 0.0, both)
    assert first.brief and first.reasoning_chars == 300
    assert first.sampling == {"frequency_penalty": FREQUENCY_PENALTY}
    second = next_step(cut, [first], 600, 0.0, both)
    assert second.reasoning_chars == 150
    assert second.sampling == {"frequency_penalty": FREQUENCY_PENALTY, "temperature": REPAIR_TEMPERATURE}
    assert next_step(cut, [first, second], 600, 0.0, both) == second  # nothing left to change
    # a provider without frequency_penalty (Anthropic): the prompt first, then the temperature
    only_t = ("temperature",)
    assert next_step(cut, [], 600, 0.0, only_t).sampling == {}
    assert next_step(cut, [first], 600, 0.0, only_t).sampling["temperature"] == REPAIR_TEMPERATURE
    # already sampling above the repair temperature: it is not lowered
    assert "temperature" not in next_step(cut, [first], 600, 0.7, both).sampling
    # an ordinary failure (a missing dimension) keeps the conversation and the last sampling
    plain = next_step(Failure(), [first], 600, 0.0, both)
    assert not plain.brief and plain.sampling == first.sampling


def test_only_deterministic_sampling_makes_a_repeated_request_pointless() -> None:
    assert deterministic(0.0, None, {})
    assert not deterministic(0.0, None, {"temperature": 0.4})
    assert deterministic(0.0, 7, {"temperature": 0.4})  # a seeded sample is reproduced
    assert not deterministic(0.7, None, {})


def test_the_brief_repair_names_no_loop_text() -> None:
    loop = find_loop(LOOP_REPLY)
    why = Failure(cut_off=True, loop=loop).why(600)
    assert "interviewer is a candidate" not in why and "600-token limit" in why
    assert Step(True, 150, {"frequency_penalty": 0.5}).describe() == (
        "brief reasoning (at most 150 characters), frequency_penalty=0.5")


# ------------------------------------------------------------------------------ end to end (HTTP)

def _schema_bound(body: dict[str, Any]) -> int | None:
    schema = body["response_format"]["json_schema"]["schema"]
    dim = next(iter(schema["$defs"].values()))
    return dim["properties"]["reasoning"].get("maxLength")


def _exchanges(db: Path) -> list[dict[str, Any]]:
    rows = query(db, "SELECT * FROM exchanges ORDER BY attempt")
    for r in rows:
        r["errors"] = json.loads(r["errors"])
        r["request_messages"] = json.loads(r["request_messages"])
    return rows


def test_a_looping_cut_off_reply_is_repaired_briefly_without_showing_the_loop(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Reply(LOOP_REPLY, finish_reason="length"), answer())
    run = evaluate(fake_llm.base_url, tmp_path, "--max-tokens", "600")

    assert run.code == 0, run.stderr
    assert run.statuses() == dict.fromkeys(DIMS, "scored")
    first, second = (r.body for r in fake_llm.chat_requests)
    # the bound is told and, at a local server (llama.cpp grammars), carried by the schema
    assert _schema_bound(first) == 150 and "at most 150 characters" in first["messages"][0]["content"]
    # the repair keeps the first messages byte for byte, leaves the loop out and asks for less
    assert second["messages"][:2] == first["messages"]
    assert [m["role"] for m in second["messages"][2:]] == ["assistant", "user"]
    sent = json.dumps(second["messages"])
    assert "interviewer is a candidate" not in sent
    assert "600-token limit" in second["messages"][2]["content"]
    assert "at most 80 characters" in second["messages"][3]["content"]
    assert _schema_bound(second) == 80
    # a sampling lever the provider takes, on the repair only
    assert "frequency_penalty" not in first and second["frequency_penalty"] == FREQUENCY_PENALTY
    assert first["temperature"] == second["temperature"] == 0

    exchanges = _exchanges(run.db)
    assert [(e["attempt"], e["purpose"]) for e in exchanges] == [(1, "initial"), (2, "repair")]
    assert exchanges[0]["raw_response"] == LOOP_REPLY  # the failed reply is kept for audit
    assert any("cut off" in err for err in exchanges[0]["errors"])
    assert any("repetition" in err for err in exchanges[0]["errors"])
    assert exchanges[1]["request_messages"] == second["messages"]
    assert exchanges[0]["completion_tokens"] and exchanges[1]["completion_tokens"]
    changed = [f["detail"] for f in run.doc["flag_details"] if f["kind"] == "repair_changed"]
    assert changed == [f"repair 1 ({', '.join(DIMS)}): brief reasoning (at most 80 characters), "
                       f"frequency_penalty={FREQUENCY_PENALTY:g}"]


def test_a_loop_that_would_repeat_is_not_paid_for_again(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """A model that loops whatever it is asked, with a fixed seed (deterministic even above
    temperature 0): every request sent differs from the ones before, and the one that would repeat
    the last request byte for byte is not sent; the dimensions end unscored saying why."""
    fake_llm.script(Reply(LOOP_REPLY, finish_reason="length"))  # repeated for every request
    run = evaluate(fake_llm.base_url, tmp_path, "--max-tokens", "600", "--seed", "7", "--repair-attempts", "3")

    assert run.code == 1
    assert run.doc["status"] == "unscored"
    bodies = [r.body for r in fake_llm.chat_requests]
    assert len(bodies) == 3  # not 4: the third repair would have been the second one again
    assert len({json.dumps(b, sort_keys=True) for b in bodies}) == 3
    assert [b.get("frequency_penalty") for b in bodies] == [None, FREQUENCY_PENALTY, FREQUENCY_PENALTY]
    assert [b["temperature"] for b in bodies] == [0, 0, REPAIR_TEMPERATURE]
    assert [_schema_bound(b) for b in bodies] == [150, 80, 80]
    for d in run.doc["dimensions"]:
        assert d["score"] is None
        assert "cut off" in d["reason"] and "not asked again" in d["reason"] and "request 3" in d["reason"]
    stopped = [f["detail"] for f in run.doc["flag_details"] if f["kind"] == "repair_stopped"]
    assert len(stopped) == 1 and "deterministic" in stopped[0]
    exchanges = _exchanges(run.db)
    assert [(e["attempt"], e["purpose"]) for e in exchanges] == [(1, "initial"), (2, "repair"), (3, "repair")]
    assert all(e["raw_response"] == LOOP_REPLY for e in exchanges)
    assert [e["request_messages"] for e in exchanges] == [b["messages"] for b in bodies]


def test_without_a_seed_a_repair_above_temperature_zero_may_be_sent_again(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """The same request at temperature 0.4 without a seed can get a different reply: it is sent."""
    fake_llm.script(Reply(LOOP_REPLY, finish_reason="length"))
    run = evaluate(fake_llm.base_url, tmp_path, "--max-tokens", "600", "--repair-attempts", "3")

    assert run.code == 1
    assert len(fake_llm.chat_requests) == 4
    assert "repair_stopped" not in run.doc["flags"]


def test_an_ordinary_failure_after_a_brief_repair_goes_on_in_the_conversation(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """Loop -> brief repair answers all but one dimension -> the usual repair appends that reply and
    names the missing dimension, keeping the repair's sampling."""
    fake_llm.script(Reply(LOOP_REPLY, finish_reason="length"), answer(omit=("recovery",)), answer())
    run = evaluate(fake_llm.base_url, tmp_path, "--max-tokens", "600")

    assert run.code == 0, run.stderr
    second, third = (r.body for r in fake_llm.chat_requests[1:])
    assert third["messages"][: len(second["messages"])] == second["messages"]
    assert json.loads(third["messages"][-2]["content"]) == build_reply(second, omit=("recovery",))
    assert "`recovery`" in third["messages"][-1]["content"]
    assert third["frequency_penalty"] == FREQUENCY_PENALTY
