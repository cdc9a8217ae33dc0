"""Score distributions from token log-probabilities, and the transport under them.

End to end: the real CLI, litellm over HTTP to the fake server, which answers with OpenAI's
`choices[0].logprobs.content[i] = {token, logprob, top_logprobs: [{token, logprob}]}`. The reading of
the score position (multi-digit levels, missing and ambiguous levels, repaired replies) is also
tested directly on token lists, since a fake tokenizer can produce cases a real server rarely shows.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, Error, FakeLLM, split_tokens
from replies import build_reply
from support import evaluate, query

from evaluator.judge.capabilities import resolve_capabilities
from evaluator.judge.distribution import score_distribution
from evaluator.judge.llm_adapter import LiteLLMAdapter
from evaluator.judge.request import ModelConfig
from evaluator.judge.transport import Capabilities, ChatTransport, TokenLogprob

pytestmark = pytest.mark.usefixtures("isolated")

DIMS = ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]  # rubric lru_ttl_cache
SCORE_KEY = ['"', "score", '"', ":", " "]


def at_scores(alternatives: list[dict[str, float]]):
    """A logprobs script: the default tokens, with these alternatives at each score token in turn."""
    def edit(tokens: list[tuple[str, dict[str, float]]]) -> list[tuple[str, dict[str, float]]]:
        out, n = list(tokens), 0
        for i in range(len(SCORE_KEY), len(out)):
            if [t for t, _ in out[i - len(SCORE_KEY):i]] == SCORE_KEY and n < len(alternatives):
                out[i] = (out[i][0], alternatives[n])
                n += 1
        assert n == len(alternatives), "fewer score tokens than scripted alternatives"
        return out
    return edit


SCORES = {"invariant": 4, "edge_cases": 3, "restraint": 5, "recovery": 4, "cost_awareness": 2}
ALTERNATIVES = [
    {"4": 0.6, "3": 0.3, "5": 0.1},
    {"3": 0.5, "2": 0.25, "4": 0.2, "1": 0.04, "5": 0.01},
    {"5": 0.9, "4": 0.08, '"': 0.02},  # '"' would start "not_observed" or a quoted score: not a level
    {"4": 1.0},
    {"2": 0.7, "1": 0.2, "3": 0.1},
]


def scripted_reply(**kw: Any) -> Call:
    return Call(lambda body: json.dumps(build_reply(body, scores=SCORES)), logprobs=at_scores(ALTERNATIVES), **kw)


# ----------------------------------------------------------------------------------------- end to end

def test_logprobs_give_each_dimension_a_distribution_and_expected_score(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(scripted_reply())
    run = evaluate(fake_llm.base_url, tmp_path, "--logprobs", "5")

    assert run.code == 0, run.stderr
    body = fake_llm.chat_requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    inv = run.dim("invariant")
    assert inv["score"] == 4
    assert inv["distribution"] == {"1": None, "2": None, "3": pytest.approx(0.3), "4": pytest.approx(0.6),
                                   "5": pytest.approx(0.1)}
    assert inv["expected_score"] == pytest.approx(3.8)
    assert "level(s) 1, 2 not among the top-5 alternatives" in inv["distribution_note"]
    edge = run.dim("edge_cases")
    assert edge["distribution"] == {"1": 0.04, "2": 0.25, "3": 0.5, "4": 0.2, "5": 0.01}
    assert edge["expected_score"] == pytest.approx(2.89) and edge["distribution_note"] is None
    restraint = run.dim("restraint")  # 2% went to '"': renormalised over the levels
    assert restraint["distribution"]["5"] == pytest.approx(0.9 / 0.98, abs=1e-6)
    assert run.dim("recovery")["distribution"]["4"] == 1.0 and run.dim("recovery")["expected_score"] == 4.0
    assert run.dim("cost_awareness")["expected_score"] == pytest.approx(1.9)
    assert run.doc["judge"]["params"]["top_logprobs"] == 5

    rows = {r["dimension_id"]: r for r in query(run.db, "SELECT * FROM dimension_scores")}
    assert json.loads(rows["invariant"]["distribution"])["4"] == pytest.approx(0.6)
    assert rows["edge_cases"]["expected_score"] == pytest.approx(2.89)

    from evaluator.calibrate.store import _level_probs
    assert _level_probs(rows["invariant"]["distribution"], rows["invariant"]["expected_score"]) == \
        pytest.approx([0.0, 0.0, 0.3, 0.6, 0.1])

    again = evaluate(fake_llm.base_url, tmp_path, "--logprobs", "5")  # the cache gives the distributions back
    assert again.doc["cache"]["hit"] and again.dim("invariant")["distribution"] == inv["distribution"]
    without = evaluate(fake_llm.base_url, tmp_path)  # a different result: not the same cache entry
    assert not without.doc["cache"]["hit"]


def test_without_the_option_nothing_is_asked_and_nothing_is_shown(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(scripted_reply())
    run = evaluate(fake_llm.base_url, tmp_path)

    assert run.code == 0, run.stderr
    assert "logprobs" not in fake_llm.chat_requests[0].body
    assert all(d["distribution"] is None and d["expected_score"] is None and d["distribution_note"] is None
               for d in run.doc["dimensions"])
    assert "top_logprobs" not in run.doc["judge"]["params"]


def test_a_server_that_sends_no_logprobs_gives_a_reason_not_a_guess(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(lambda body: json.dumps(build_reply(body))))  # logprobs requested, none scripted
    run = evaluate(fake_llm.base_url, tmp_path, "--logprobs", "3")

    assert run.code == 0, run.stderr
    for d in run.doc["dimensions"]:
        assert d["score"] == 4 and d["distribution"] is None and d["expected_score"] is None
        assert d["distribution_note"] == "the server returned no log-probabilities for this reply"


@pytest.mark.parametrize("status", [400, 500])
def test_a_server_that_rejects_logprobs_is_not_asked_again(fake_llm: FakeLLM, tmp_path: Path, status: int) -> None:
    fake_llm.script(Error(status, "logprobs is not supported by this server"), scripted_reply())
    run = evaluate(fake_llm.base_url, tmp_path, "--logprobs", "5")

    assert run.code == 0, run.stderr
    first, second = (r.body for r in fake_llm.chat_requests)
    assert first["logprobs"] is True and "logprobs" not in second
    assert any(f["kind"] == "response_format_fallback" and "logprobs -> none" in f["detail"]
               for f in run.doc["flag_details"])
    assert run.dim("invariant")["distribution_note"] == "the server returned no log-probabilities for this reply"


def test_logprobs_option_is_checked(fake_llm: FakeLLM, tmp_path: Path) -> None:
    run = evaluate(fake_llm.base_url, tmp_path, "--logprobs", "50")
    assert run.code == 2 and "--logprobs" in run.stderr and "20" in run.stderr, run.stderr  # checked by the option (0-20)
    assert fake_llm.chat_requests == []


# ------------------------------------------------------------------------------- the score position

def tokens(text: str, at: dict[int, dict[str, float]] | None = None, digits: int = 3) -> list[TokenLogprob]:
    """`text` split like a tokenizer; `at` gives alternatives (probabilities) at token indexes."""
    out = []
    for i, tok in enumerate(split_tokens(text, digits)):
        alts = (at or {}).get(i, {})
        out.append(TokenLogprob(tok, math.log(alts.get(tok, 1.0)), [(t, math.log(p)) for t, p in alts.items()]))
    return out


def index_of(text: str, token: str, digits: int = 3, nth: int = 0) -> int:
    return [i for i, t in enumerate(split_tokens(text, digits)) if t == token][nth]


def test_multi_digit_levels_split_over_tokens_are_followed_digit_by_digit() -> None:
    text = '{"dimensions": {"a": {"reasoning": "ok", "score": 10, "evidence": ["x"]}}}'
    first = index_of(text, "1", digits=1)
    toks = tokens(text, {first: {"1": 0.6, "9": 0.3, "8": 0.1}, first + 1: {"0": 0.75, ",": 0.25}}, digits=1)
    dist = score_distribution(text, toks, "a", list(range(11)), 5)
    assert dist.probs is not None
    assert dist.probs[10] == pytest.approx(0.45) and dist.probs[1] == pytest.approx(0.15)
    assert dist.probs[9] == pytest.approx(0.3) and dist.probs[8] == pytest.approx(0.1) and dist.probs[5] is None
    assert dist.expected == pytest.approx(0.45 * 10 + 0.15 + 0.3 * 9 + 0.1 * 8)


def test_a_first_digit_that_may_start_a_longer_level_is_unknown_unless_numbers_are_one_token() -> None:
    text = '{"a": {"score": 7}}'
    at = index_of(text, "7", digits=1)
    split = score_distribution(text, tokens(text, {at: {"7": 0.7, "1": 0.3}}, digits=1), "a", list(range(11)), 5)
    assert split.probs is not None and split.probs[1] is None and split.probs[10] is None
    assert split.probs[7] == 1.0 and split.expected is None and "start with the same token" in (split.note or "")
    # a reply that shows numbers written as one token ("2025") means "1" was the whole number 1
    text = '{"a": {"score": 7, "reasoning": "since 2025"}}'
    merged = score_distribution(text, tokens(text, {index_of(text, "7"): {"7": 0.7, "1": 0.3}}), "a",
                                list(range(11)), 5)
    assert merged.probs is not None and merged.probs[1] == pytest.approx(0.3) and merged.expected == pytest.approx(5.2)


@pytest.mark.parametrize("text, dim, note", [
    ('```json\n{"a": {"score": 4,}}\n```', "a", "had to be repaired"),
    ('{"a": {"score": "not_observed"}}', "a", "not a scale level"),
    ('{"b": {"score": 4}}', "a", "no score for this dimension"),
])
def test_no_position_means_no_distribution(text: str, dim: str, note: str) -> None:
    dist = score_distribution(text, tokens(text), dim, [1, 2, 3, 4, 5], 5)
    assert dist.probs is None and dist.expected is None and note in (dist.note or "")


def test_quoted_scores_list_items_and_tokens_that_carry_the_lead() -> None:
    text = '{"dimensions": [{"id": "a", "score": "3"}]}'
    toks = tokens(text)
    i = index_of(text, "3")  # the quote before it is its own token here; merge them as BPE would
    toks[i - 1:i + 1] = [TokenLogprob('"3', math.log(0.8), [('"3', math.log(0.8)), ('"4', math.log(0.2))])]
    dist = score_distribution(text, toks, "a", [1, 2, 3, 4, 5], 2)
    assert dist.probs == {1: None, 2: None, 3: pytest.approx(0.8), 4: pytest.approx(0.2), 5: None}


def test_a_fenced_reply_with_chatter_and_braces_before_it_is_read() -> None:
    text = 'Here it is {as asked}:\n```json\n{"a": {"score": 4}}\n```'
    dist = score_distribution(text, tokens(text, {index_of(text, "4"): {"4": 0.5, "5": 0.5}}), "a", [1, 2, 3, 4, 5], 5)
    assert dist.probs is not None and dist.probs[4] == 0.5 and dist.expected == 4.5


def test_tokens_that_do_not_spell_the_reply_are_refused() -> None:
    dist = score_distribution('{"a": {"score": 4}}', tokens('{"a": {"score": 5}}'), "a", [1, 2, 3, 4, 5], 5)
    assert dist.probs is None and "do not spell" in (dist.note or "")


# ---------------------------------------------------------------------------------------- transport

def test_the_litellm_adapter_is_a_chat_transport_with_capabilities_from_the_model_map() -> None:
    adapter = LiteLLMAdapter(ModelConfig(model="openai/test-model", api_base="http://127.0.0.1:9/v1",
                                         context_tokens=8000, input_cost_per_token=1e-6, output_cost_per_token=2e-6))
    assert isinstance(adapter, ChatTransport)
    assert adapter.context_tokens() == 8000
    assert adapter.price(1000, 500) == pytest.approx(0.002)
    assert adapter.count_tokens([{"role": "user", "content": "hello world"}]) > 0
    local = adapter.capabilities
    assert local.structured_output == ("json_schema", "json_object", "none") and local.logprobs
    assert not local.batch_api  # a self-hosted server: no batch endpoint we know of
    assert resolve_capabilities("gpt-4o-mini", None).batch_api
    assert not resolve_capabilities("o3-mini", None).logprobs  # reasoning models return none
    assert resolve_capabilities("anthropic/claude-3-5-haiku-latest", None).top_logprobs(5) == 0
    assert Capabilities(logprobs=True, max_top_logprobs=20).top_logprobs(50) == 20


def test_unknown_models_get_the_safe_context_and_an_unknown_price() -> None:
    adapter = LiteLLMAdapter(ModelConfig(model="openai/not-a-real-model-xyz"))
    assert adapter.context_tokens() == 16000
    assert adapter.price(1000, 1000) is None


# ---------------------------------------------------------------------------------- total deadline

def test_a_reply_trickling_one_byte_at_a_time_ends_at_the_deadline(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """Each byte arrives well within the read timeout, so only a total deadline per request ends it:
    without one this request would take ~10 minutes."""
    fake_llm.script(Call(lambda body: json.dumps(build_reply(body)), drip=0.3))
    started = time.monotonic()
    run = evaluate(fake_llm.base_url, tmp_path, "--timeout", "2", "--retries", "1")
    elapsed = time.monotonic() - started

    assert elapsed < 90  # generous: the point is that it ends, not how fast
    assert run.code == 3, run.stderr  # no reply to any request: the judge is unavailable
    assert "RequestTimeout after 2 attempts" in run.doc["error"]
    assert "no complete reply within the 2 s deadline per request (--timeout)" in run.doc["error"]
    assert len(fake_llm.chat_requests) == 2


def test_a_slow_reply_that_finishes_within_the_deadline_is_kept(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(lambda body: json.dumps(build_reply(body)), drip=0.0005))
    run = evaluate(fake_llm.base_url, tmp_path, "--timeout", "60", "--retries", "0")
    assert run.code == 0, run.stderr
    assert run.doc["status"] == "scored" and len(fake_llm.chat_requests) == 1
