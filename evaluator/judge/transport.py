"""The model-call boundary: a small `ChatTransport` protocol and what every transport returns.

Why a protocol: the LLM judge, the cost estimate and the cohort runner need five things from a model
(send a chat, the context size, a token count, a price, what the model can do) and nothing about how
they are obtained. The litellm adapter (`llm_adapter.py`) is the implementation; a batch-API transport
or a jury of models can be another without the judge changing. litellm itself is imported in one
place (`litellm_client.py`), on first need, and only the adapter's modules and the provider batch
calls use it.

The capability flags are data (`Capabilities`), resolved once per model: which structured-output
modes to try and in which order, whether token log-probabilities can be asked for, tool calling, a
batch API. Stepping down after a rejected request walks that order; nothing is decided by matching
model names in the call path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Structured-output modes, strongest first: `json_schema` (the server enforces the rubric's schema),
# `json_object` (valid JSON, shape from the prompt), `none` (prompt-only JSON, repaired by the parser).
FORMAT_MODES: tuple[str, ...] = ("json_schema", "json_object", "none")

# One conservative characters-per-token figure (real English and code tokenise at ~3.5-4.5), used
# wherever a token count is needed before (or without) a tokenizer: fitting a transcript into the
# context, the rate limiter's advance estimate, and the count when no tokenizer knows the model.
CHARS_PER_TOKEN = 3.2

# Sampling parameters a repair request may set (judge/repair.py), strongest for a loop first:
# `frequency_penalty` makes tokens already said less likely (OpenAI's range -2..2; llama.cpp, vLLM and
# most OpenAI-compatible servers take it), `temperature` lets a deterministic reply differ at all.
SAMPLING_LEVERS: tuple[str, ...] = ("frequency_penalty", "temperature")


def tokens_for_chars(chars: int) -> int:
    """Tokens of `chars` characters by the conservative heuristic (rounded down)."""
    return int(chars / CHARS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    """Tokens of `text` by the conservative heuristic, plus one (never under-counts in practice)."""
    return tokens_for_chars(len(text)) + 1


def estimate_message_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of chat messages by the heuristic (each message's content, counted as text)."""
    return sum(estimate_tokens(str(m.get("content") or "")) for m in messages)


@dataclass(frozen=True)
class Capabilities:
    """What one model (as served) can do; the transport decides the request from these flags."""

    structured_output: tuple[str, ...] = FORMAT_MODES  # modes to try, in preferred order
    logprobs: bool = False  # returns per-token log-probabilities with top alternatives
    max_top_logprobs: int = 0  # how many alternatives per token it returns at most
    tool_calling: bool = False
    batch_api: bool = False  # an asynchronous batch endpoint (cheaper, hours of latency)
    # the json_schema mode holds strings to `maxLength` (llama.cpp's grammars do; OpenAI's strict mode
    # rejects the keyword), so a bound on the reasoning's length can go into the schema, not only the prompt
    string_bounds: bool = False
    # sampling parameters a repair may change after a reply that looped or was cut off, in the order
    # tried (a subset of SAMPLING_LEVERS the provider accepts); empty: only the prompt can change
    sampling_levers: tuple[str, ...] = ()

    def top_logprobs(self, wanted: int) -> int:
        """Alternatives per token to ask for: `wanted` within what the model returns (0: do not ask)."""
        return min(wanted, self.max_top_logprobs) if wanted > 0 and self.logprobs else 0


@dataclass
class TokenLogprob:
    """One generated token, its log-probability and the top alternatives at that position
    (OpenAI's `choices[0].logprobs.content[i]`)."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class CallResult:
    """One answered request (after any retries). `logprobs` is the reply's token list when asked for
    and returned, else None."""

    text: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    latency_ms: float
    transport_attempts: int
    response_format: str
    error: str | None = None
    finish_reason: str | None = None
    reasoning: str | None = None
    logprobs: list[TokenLogprob] | None = None


class CallFailed(Exception):
    """Transient errors outlasted the retry policy; the judgment records it as unscored."""

    def __init__(self, message: str, attempts: int, latency_ms: float, response_format: str):
        super().__init__(message)
        self.attempts = attempts
        self.latency_ms = latency_ms
        self.response_format = response_format


@runtime_checkable
class ChatTransport(Protocol):
    """Sends chats to one model. Implementations own retries, timeouts and format fallback."""

    model: str
    fallbacks: list[str]  # what was stepped down during this run and why (shown as a flag)

    @property
    def capabilities(self) -> Capabilities: ...

    async def complete(self, messages: list[dict[str, Any]], schema: dict[str, Any],
                       top_logprobs: int = 0, sampling: dict[str, float] | None = None) -> CallResult:
        """One logical call: retried on transient errors, within a total deadline per request,
        stepped down through `capabilities.structured_output` when the server rejects a mode.
        `top_logprobs` > 0 asks for that many alternatives per token (only if the model can).
        `sampling` overrides the configured sampling for this request (a repair's levers, taken
        only from `capabilities.sampling_levers`).
        Raises CallFailed (recorded as unscored) or JudgeUnavailable (stop: nothing can work)."""
        ...

    def context_tokens(self) -> int:
        """The model's input window in tokens (user's figure, else the model's, else a safe default)."""
        ...

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of these messages by the model's tokenizer (the heuristic if none is known)."""
        ...

    def price(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for this many tokens; None when the price is unknown (never a made-up zero)."""
        ...
