"""What a model request carries: the run's `ModelConfig` and the request built from it.

Why a module of its own: the live adapter sends this request (llm_adapter.py) and a provider batch
stores the same body (batch_transport.py), and its custom_id is that body's hash, so there is one
builder. Everything in the config that changes the result is in `ModelConfig.sampling()`, which
goes into the cache key; the rest (where to send it, retries, prices) changes how it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from evaluator.judge.capabilities import _model_facts
from evaluator.judge.transport import Capabilities

# Providers serving Claude models, whose prompt cache needs an explicit marker (litellm passes it on).
CACHE_CONTROL_PROVIDERS = frozenset({"anthropic", "bedrock", "vertex_ai"})


@dataclass
class ModelConfig:
    """Everything about the model call that changes the result is in `sampling()` (-> cache key)."""

    model: str
    api_base: str | None = None
    api_key: SecretStr | None = None
    temperature: float = 0.0
    max_tokens: int = 4096
    seed: int | None = None
    timeout: float = 120.0
    max_retries: int = 4
    retry_initial_wait: float = 1.0
    retry_max_wait: float = 60.0
    context_tokens: int | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    # > 0: ask for this many alternatives per reply token, for score distributions (only when the
    # model's capabilities say it returns log-probabilities). 0: never ask.
    logprobs: int = 0

    def sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def user_price(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD at the user's prices (--price-in/--price-out), None when none were given. Computed
        here: passing them to litellm would register the model in its process-wide price table."""
        if self.input_cost_per_token is None:
            return None
        return prompt_tokens * self.input_cost_per_token + completion_tokens * (self.output_cost_per_token or 0.0)


def build_request(config: ModelConfig, capabilities: Capabilities, messages: list[dict[str, Any]],
                  schema: dict[str, Any], mode: str, top_logprobs: int = 0,
                  sampling: dict[str, float] | None = None) -> dict[str, Any]:
    """The arguments of litellm's `acompletion` for one request: structured-output `mode`, `top_logprobs`
    alternatives per token (0: none asked), and a repair's `sampling` overrides, kept to the levers
    the capabilities list. Both of litellm's retry layers are off: the adapter retries."""
    c = config
    if _explicit_cache(c.model):
        messages = _mark_static_prefix(messages)
    kwargs: dict[str, Any] = dict(
        model=c.model, messages=messages, temperature=c.temperature, max_tokens=c.max_tokens,
        timeout=c.timeout, num_retries=0, max_retries=0,
    )
    levers = capabilities.sampling_levers
    kwargs.update({k: v for k, v in (sampling or {}).items() if k in levers})  # never a parameter it refuses
    if top_logprobs:
        kwargs.update(logprobs=True, top_logprobs=top_logprobs)
    if c.seed is not None:
        kwargs["seed"] = c.seed
    if c.api_base:
        kwargs["api_base"] = c.api_base
    if c.api_key is not None:
        kwargs["api_key"] = c.api_key.get_secret_value()
    elif c.api_base and c.model.startswith("openai/"):
        # never send the user's real OPENAI_API_KEY to another host; EVALUATOR_API_KEY is for that
        kwargs["api_key"] = "not-needed"  # local OpenAI-compatible servers ignore it; the SDK insists
    if mode == "json_schema":
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "judgment", "strict": True, "schema": schema},
        }
    elif mode == "json_object":
        kwargs["response_format"] = {"type": "json_object"}
    return kwargs


def _explicit_cache(model: str) -> bool:
    """Claude models cache a prompt prefix only where the request marks it (Anthropic's
    `cache_control`); OpenAI-style providers cache identical prefixes by themselves."""
    return _model_facts(model)[2] in CACHE_CONTROL_PROVIDERS and "claude" in model.lower()


def _mark_static_prefix(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The system message (the rules and the rubric: the same bytes for every transcript) as one text
    block marked `cache_control: ephemeral`, litellm's documented form for Anthropic prompt caching.
    The stored exchange keeps the plain messages; only the request carries the marker."""
    out = list(messages)
    for i, m in enumerate(out):
        if m.get("role") == "system" and isinstance(m.get("content"), str):
            out[i] = {**m, "content": [{"type": "text", "text": m["content"], "cache_control": {"type": "ephemeral"}}]}
            break
    return out
