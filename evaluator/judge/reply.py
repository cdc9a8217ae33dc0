"""Reading a litellm reply: its text, reasoning, token log-probabilities, usage and cost.

Why a module of its own: real servers answer in more shapes than the happy path (no choices, the
JSON in a tool call's arguments, a reasoning model's separate reasoning, no usage block, litellm
objects or plain dicts), and each of those is a decision about what gets stored. Keeping them here
lets the adapter (llm_adapter.py) be only about sending: it hands the response over and gets back
the parts a `CallResult` holds.
"""

from __future__ import annotations

from typing import Any

from evaluator.judge.capabilities import _model_facts
from evaluator.judge.request import ModelConfig
from evaluator.judge.transport import TokenLogprob


def _field(obj: Any, name: str) -> Any:
    """An attribute of a litellm object or a key of a plain dict (servers' extras arrive as dicts)."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def token_logprobs(choice: Any) -> list[TokenLogprob] | None:
    """The reply's tokens with their top alternatives (OpenAI's `choices[0].logprobs.content`)."""
    content = _field(_field(choice, "logprobs"), "content")
    if not content:
        return None
    out = []
    for item in content:
        token, logprob = _field(item, "token"), _field(item, "logprob")
        if token is None or logprob is None:
            return None  # a shape we cannot read: no distribution rather than a wrong one
        top = [(str(_field(t, "token")), float(_field(t, "logprob"))) for t in (_field(item, "top_logprobs") or [])
               if _field(t, "token") is not None and _field(t, "logprob") is not None]
        out.append(TokenLogprob(str(token), float(logprob), top))
    return out


def reply_parts(response: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(text, reasoning, finish_reason, note) of a reply, tolerating what real servers send:
    no choices at all, JSON in tool-call arguments instead of content, and reasoning models'
    separate `reasoning_content` (kept for audit, never parsed as the answer)."""
    choices = getattr(response, "choices", None) or []
    if not choices:
        return None, None, None, "the server answered with no choices"
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    reasoning = getattr(message, "reasoning_content", None)
    note = None
    if not text:
        calls = getattr(message, "tool_calls", None) or []
        args = [getattr(getattr(c, "function", None), "arguments", None) for c in calls]
        args = [a for a in args if a]
        if args:
            text, note = args[0], "content was empty; the answer was taken from the tool call's arguments"
    return text, reasoning, getattr(choice, "finish_reason", None), note


def reply_usage(response: Any) -> tuple[int | None, int | None]:
    """(prompt_tokens, completion_tokens) the server reported; None for a figure it did not send
    (litellm reports 0 when the server sent none, which is unknown, not free)."""
    usage = getattr(response, "usage", None)
    return getattr(usage, "prompt_tokens", None) or None, getattr(usage, "completion_tokens", None) or None


def reply_cost(config: ModelConfig, response: Any, prompt_tokens: int | None,
               completion_tokens: int | None) -> float | None:
    """USD for one reply: the user's prices if given, else litellm's, else unknown (None)."""
    if config.input_cost_per_token is not None:
        if prompt_tokens is None and completion_tokens is None:
            return None  # the server reported no usage: the cost is unknown, not zero
        cost = config.user_price(prompt_tokens or 0, completion_tokens or 0) or 0.0
        cached = min(_cached_tokens(response), prompt_tokens or 0)
        # prompt tokens the provider served from its prefix cache cost less: the model's own
        # discount from litellm's map (e.g. 50% at OpenAI, 90% at Anthropic), else none is assumed
        info = _model_facts(config.model)[0]
        read, full = info.get("cache_read_input_token_cost"), info.get("input_cost_per_token")
        if cached and read is not None and full:
            cost -= cached * config.input_cost_per_token * (1 - float(read) / float(full))
        return cost
    hidden = getattr(response, "_hidden_params", None) or {}
    reported = hidden.get("response_cost")
    return None if reported is None else float(reported)  # litellm leaves it None for unmapped models


def _cached_tokens(response: Any) -> int:
    """Prompt tokens the provider reports it read from its prompt cache (OpenAI's
    `usage.prompt_tokens_details.cached_tokens`, which litellm also fills for Anthropic's cache reads)."""
    details = _field(getattr(response, "usage", None), "prompt_tokens_details")
    try:
        return max(int(_field(details, "cached_tokens") or 0), 0)
    except (TypeError, ValueError):
        return 0
