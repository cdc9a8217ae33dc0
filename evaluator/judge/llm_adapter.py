"""The one place that knows litellm: the `ChatTransport` (see transport.py) for every model it routes.

Why this shape:
- litellm and the openai SDK both retry by default, and they stack (see shared STACK-NOTES). We turn
  both off per call and own a single tenacity policy: exponential backoff with jitter, bounded, and
  honouring Retry-After on 429/503.
- Local servers differ in structured-output support. We walk the model's capability order (normally
  `json_schema`, `json_object`, prompt-only JSON repaired by the parser) and remember a step down for
  the rest of the run. A server refusing the log-probability parameters is stepped down the same way.
- `timeout=` given to litellm bounds each socket read, so a reply trickling one byte per second is
  never timed out by it: every request also runs under a total deadline (connect to last byte).
- Capabilities, context size, token counting and prices come from litellm's bundled model map, looked
  up once per model; an explicit user figure (--context-tokens, --price-in/--price-out) wins.
- Authentication errors and unknown models fail fast as JudgeUnavailable: retrying cannot help.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from evaluator.errors import JudgeUnavailable
from evaluator.judge.capabilities import (  # re-exported: the adapter's public names before the split
    BATCH_PROVIDERS,
    OPENAI_MAX_TOP_LOGPROBS,
    _facts_file,
    _model_facts,
    is_local,
    resolve_capabilities,
)
from evaluator.judge.ratelimit import RateLimiter
from evaluator.judge.transport import (
    FORMAT_MODES,
    CallFailed,
    CallResult,
    Capabilities,
    TokenLogprob,
    estimate_tokens,
    tokens_for_chars,
)

__all__ = ["BATCH_PROVIDERS", "FORMAT_MODES", "OPENAI_MAX_TOP_LOGPROBS", "CallFailed", "CallResult", "Capabilities",
           "LiteLLMAdapter", "ModelConfig", "RequestTimeout", "_facts_file", "is_local", "resolve_capabilities"]

# Conservative speeds of a CPU-only local server (llama.cpp on 2-8 cores, 1B-8B model), for the advice
# given when a local request times out; a real measurement from this run replaces the prompt figure.
LOCAL_PROMPT_TOKENS_PER_S = 10
LOCAL_REPLY_TOKENS_PER_S = 5
DEFAULT_CONTEXT_TOKENS = 16000  # for models litellm's map does not know: safe for most local servers
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


class RequestTimeout(TimeoutError):
    """No complete reply within the request's total deadline (connect, first byte and whole body)."""


_on_load: list[Callable[[], None]] = []


def on_client_load(announce: Callable[[], None]) -> None:
    """Have `announce` called once, just before litellm is first imported (5-25 s on a cold disk), so
    a terminal can say what the wait is. Nothing is imported now: a run whose judgments are all
    cached never loads the client, and announces nothing."""
    _on_load.append(announce)


def _litellm():
    """Import litellm lazily (4-5 s) and without its network fetch of the price map.

    Also import what litellm would otherwise import inside the first call (the openai SDK's resource
    classes and a proxy helper, ~0.9 s): paid here once, the first judgment of a cohort is not ~1 s
    late while the others queue behind it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    first = "litellm" not in sys.modules
    while _on_load and first:
        _on_load.pop(0)()
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    try:
        import litellm.proxy.openai_files_endpoints.common_utils
        import openai.resources  # noqa: F401
    except ImportError:  # pragma: no cover - a litellm that moved them: they load on first call instead
        pass
    if first:
        # ~400k objects of module state that never become garbage: out of the cycle collector's
        # full passes, which otherwise re-scan them all (~0.3 s each, every call in flight stalled)
        gc.freeze()
    return litellm


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After header on the error's HTTP response, if the provider sent one."""
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    # litellm keeps the provider's headers in `litellm_response_headers`; `response.headers` is a stub
    headers = getattr(exc, "litellm_response_headers", None) or headers or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(float(ms) / 1000, 0.0)
        value = headers.get("retry-after") or headers.get("Retry-After")
    except (AttributeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


def _format_rejected(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(k in text for k in ("response_format", "json_schema", "json_object", "response format", "schema",
                                   "unsupported parameter", "not supported"))


def _logprobs_rejected(exc: BaseException) -> bool:
    return "logprobs" in str(exc).lower()


def _field(obj: Any, name: str) -> Any:
    """An attribute of a litellm object or a key of a plain dict (servers' extras arrive as dicts)."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _token_logprobs(choice: Any) -> list[TokenLogprob] | None:
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


def _reply_parts(response: Any) -> tuple[str | None, str | None, str | None, str | None]:
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


class LiteLLMAdapter:
    """The `ChatTransport` for any model litellm routes. Holds the run's structured-output mode (and
    whether log-probabilities are still asked for) once a server has refused them."""

    def __init__(self, config: ModelConfig, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.model = config.model
        self.limiter = limiter
        self.fallbacks: list[str] = []
        self._capabilities: Capabilities | None = None
        self._format_mode: str | None = None
        self._logprobs_refused = False
        self._read_rate: float | None = None  # prompt tokens/s seen on this server (for timeout advice)
        self._module: Any = None
        self._loading: asyncio.Lock | None = None

    @property
    def _ll(self) -> Any:
        """litellm, imported on first need: a run whose judgments are all cached never pays for it."""
        if self._module is None:
            self._module = _litellm()
        return self._module

    async def _load(self) -> None:
        """Import litellm off the event loop before the first request (once, however many judgments
        start together), so the loop keeps serving the store and progress meanwhile."""
        if self._module is not None:
            return
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._module is None:
                self._module = await asyncio.to_thread(_litellm)

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = resolve_capabilities(self.config.model, self.config.api_base)
        return self._capabilities

    @property
    def format_mode(self) -> str:
        """The structured-output mode the next request is sent with."""
        return self._format_mode or self.capabilities.structured_output[0]

    @format_mode.setter
    def format_mode(self, mode: str) -> None:
        self._format_mode = mode

    # -- classification ------------------------------------------------------------------------
    def _transient(self, exc: BaseException, sent_mode: str, sent_top: int = 0) -> bool:
        ll = self._ll
        if _missing_credentials(exc) or _quota_exhausted(exc):
            return False
        transient = (ll.RateLimitError, ll.InternalServerError, ll.ServiceUnavailableError, ll.Timeout,
                     ll.APIConnectionError, ll.BadGatewayError, RequestTimeout)
        if self._format_rejection(exc, sent_mode) or self._logprobs_rejection(exc, sent_top):
            return False  # a server refusing a parameter will refuse it again: step down instead
        return isinstance(exc, transient) and not isinstance(exc, self._fatal_types())

    def _format_rejection(self, exc: BaseException, sent_mode: str) -> bool:
        """400 (most servers) or 500 (llama-cpp-python 0.3.x) naming the response format we sent."""
        ll = self._ll
        kinds = (ll.BadRequestError, ll.UnsupportedParamsError, ll.InternalServerError)
        return sent_mode != "none" and isinstance(exc, kinds) and _format_rejected(exc)

    def _logprobs_rejection(self, exc: BaseException, sent_top: int) -> bool:
        """An error naming the log-probability parameters we sent (400, or 500 like format rejections)."""
        ll = self._ll
        kinds = (ll.BadRequestError, ll.UnsupportedParamsError, ll.InternalServerError)
        return bool(sent_top) and isinstance(exc, kinds) and _logprobs_rejected(exc)

    def _connection_error(self, exc: BaseException | None) -> bool:
        """Nothing answered (refused, reset, DNS): litellm wraps some of these as InternalServerError
        ("Connection error."), so look down the exception chain for the transport's own error."""
        import httpx

        ll = self._ll
        transport: tuple[type[BaseException], ...] = (httpx.ConnectError, httpx.RemoteProtocolError, ConnectionError)
        try:
            import aiohttp

            transport += (aiohttp.ClientConnectionError,)
        except ImportError:  # pragma: no cover - litellm's default transport brings it
            pass
        # litellm maps *any* unmapped error to APIConnectionError, so its class proves nothing: only
        # the transport's own error further down the chain says that nothing answered.
        seen = 0
        while exc is not None and seen < 8:
            if isinstance(exc, ll.Timeout) or isinstance(exc, httpx.TimeoutException):
                return False
            if isinstance(exc, transport):
                return True
            exc = exc.__cause__ or exc.__context__
            seen += 1
        return False

    def _fatal_types(self) -> tuple[type[BaseException], ...]:
        ll = self._ll
        return (ll.AuthenticationError, ll.PermissionDeniedError, ll.NotFoundError)

    def _unavailable(self, exc: BaseException) -> JudgeUnavailable:
        ll = self._ll
        model = self.config.model
        if _missing_credentials(exc) and "invalid" not in str(exc).lower():
            return JudgeUnavailable(
                f"no API key for {model}: set the provider's key (e.g. OPENAI_API_KEY, ANTHROPIC_API_KEY), "
                "or EVALUATOR_API_KEY for an OpenAI-compatible server."
            )
        if isinstance(exc, ll.AuthenticationError) or _missing_credentials(exc):
            return JudgeUnavailable(
                f"the provider refused the credentials for {model} (authentication error). Set the "
                "provider's key (e.g. OPENAI_API_KEY, ANTHROPIC_API_KEY) or EVALUATOR_API_KEY."
            )
        if isinstance(exc, ll.PermissionDeniedError):
            return JudgeUnavailable(f"the provider denied access to {model} (permission denied).")
        if _quota_exhausted(exc):
            return JudgeUnavailable(f"the provider says the quota for {model} is exhausted (insufficient_quota).")
        if isinstance(exc, ll.NotFoundError):
            return JudgeUnavailable(f"model {model} was not found at the provider: check --model / EVALUATOR_MODEL.")
        return JudgeUnavailable(f"cannot use model {model}: {_short(exc)}")

    # -- the call ------------------------------------------------------------------------------
    def _kwargs(self, messages: list[dict[str, Any]], schema: dict[str, Any], mode: str,
                top_logprobs: int = 0, sampling: dict[str, float] | None = None) -> dict[str, Any]:
        c = self.config
        if self._explicit_cache():
            messages = _mark_static_prefix(messages)
        kwargs: dict[str, Any] = dict(
            model=c.model, messages=messages, temperature=c.temperature, max_tokens=c.max_tokens,
            timeout=c.timeout, num_retries=0, max_retries=0,
        )
        levers = self.capabilities.sampling_levers
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

    def _explicit_cache(self) -> bool:
        """Claude models cache a prompt prefix only where the request marks it (Anthropic's
        `cache_control`); OpenAI-style providers cache identical prefixes by themselves."""
        return (_model_facts(self.config.model)[2] in CACHE_CONTROL_PROVIDERS
                and "claude" in self.config.model.lower())

    def _cost(self, response: Any, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """USD for one reply: the user's prices if given (computed here: passing them to litellm would
        register the model in its process-wide price table), else litellm's, else unknown (None)."""
        if self.config.input_cost_per_token is not None:
            if prompt_tokens is None and completion_tokens is None:
                return None  # the server reported no usage: the cost is unknown, not zero
            cost = self.price(prompt_tokens or 0, completion_tokens or 0) or 0.0
            cached = min(_cached_tokens(response), prompt_tokens or 0)
            # prompt tokens the provider served from its prefix cache cost less: the model's own
            # discount from litellm's map (e.g. 50% at OpenAI, 90% at Anthropic), else none is assumed
            info = _model_facts(self.config.model)[0]
            read, full = info.get("cache_read_input_token_cost"), info.get("input_cost_per_token")
            if cached and read is not None and full:
                cost -= cached * self.config.input_cost_per_token * (1 - float(read) / float(full))
            return cost
        hidden = getattr(response, "_hidden_params", None) or {}
        reported = hidden.get("response_cost")
        return None if reported is None else float(reported)  # litellm leaves it None for unmapped models

    def _degrade(self, exc: BaseException, sent_mode: str) -> bool:
        """After the server rejected the mode a request was sent with, step down once (concurrent
        requests rejected for the same mode must not step down again) and ask to retry."""
        if not self._format_rejection(exc, sent_mode):
            return False
        if self.format_mode == sent_mode:
            order = self.capabilities.structured_output
            later = order[order.index(sent_mode) + 1:] if sent_mode in order else ()
            self.format_mode = later[0] if later else "none"
            self.fallbacks.append(f"{sent_mode} -> {self.format_mode}: {_short(exc)}")
        return True

    def _refuse_logprobs(self, exc: BaseException, sent_top: int) -> bool:
        """A server that rejects the log-probability parameters is not asked for them again."""
        if not self._logprobs_rejection(exc, sent_top):
            return False
        if not self._logprobs_refused:
            self._logprobs_refused = True
            self.fallbacks.append(f"logprobs -> none: {_short(exc)}")
        return True

    async def complete(self, messages: list[dict[str, Any]], schema: dict[str, Any],
                       top_logprobs: int = 0, sampling: dict[str, float] | None = None) -> CallResult:
        """One logical call: retried on transient errors, each request within a total deadline of
        `timeout` seconds, stepped down on format (or log-probability) rejection. `sampling`: a
        repair's overrides of the configured sampling (only the levers the capabilities list)."""
        from tenacity import AsyncRetrying, RetryError, retry_if_exception, stop_after_attempt
        from tenacity.wait import wait_exponential_jitter

        await self._load()
        ll = self._ll
        c = self.config
        backoff = wait_exponential_jitter(multiplier=c.retry_initial_wait, max=c.retry_max_wait,
                                          jitter=c.retry_initial_wait)

        def wait(state) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = _retry_after(exc) if exc else None
            if after is not None:
                if after > c.retry_max_wait:  # e.g. an hourly or daily quota: retrying sooner is refused
                    stop = JudgeUnavailable(
                        f"the provider asks to wait {after:.0f} s before the next request (Retry-After), longer "
                        f"than the {c.retry_max_wait:.0f} s this run waits: stopped; finished judgments are kept, "
                        "run the same command again later")
                    stop.requests = attempts
                    raise stop
                if self.limiter:
                    self.limiter.pause(after)  # every worker backs off, not just this one
                return after
            return backoff(state)

        estimate = self.estimate_tokens(messages)

        attempts = 0
        sent = [self.format_mode]
        sent_top = [0]
        started = time.perf_counter()
        while True:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(lambda e: self._transient(e, sent[0], sent_top[0])), wait=wait,
                    stop=stop_after_attempt(c.max_retries + 1), reraise=False,
                ):
                    with attempt:
                        attempts += 1
                        if self.limiter:
                            await self.limiter.acquire(estimate)
                        sent[0] = self.format_mode  # this request's mode (others may step it down meanwhile)
                        sent_top[0] = 0 if self._logprobs_refused else self.capabilities.top_logprobs(top_logprobs)
                        response = await self._request(self._kwargs(messages, schema, sent[0], sent_top[0],
                                                                     sampling))
            except RetryError as e:
                exc = e.last_attempt.exception() or e  # a failed attempt always holds its exception
                latency = (time.perf_counter() - started) * 1000
                if self._connection_error(exc):
                    raise JudgeUnavailable(
                        f"model {c.model} is unreachable{f' at {c.api_base}' if c.api_base else ''} "
                        f"after {attempts} attempts: {_short(exc)}"
                    ) from None
                raise CallFailed(f"{type(exc).__name__} after {attempts} attempts: "
                                 f"{_short(exc, 700 if isinstance(exc, RequestTimeout) else 300)}",
                                 attempts, latency, self.format_mode) from None
            except Exception as exc:  # non-transient: degrade format, or fail fast
                if self._refuse_logprobs(exc, sent_top[0]) or self._degrade(exc, sent[0]):
                    continue
                if isinstance(exc, self._fatal_types()) or _missing_credentials(exc) or _quota_exhausted(exc):
                    refused = self._unavailable(exc)
                    refused.requests = attempts  # the provider answered them (with a refusal): they count
                    raise refused from None
                if isinstance(exc, ll.BadRequestError) and "llm provider not provided" in str(exc).lower():
                    raise JudgeUnavailable(  # an unknown model, like any other: exit 3 (README)
                        f"litellm cannot route model '{c.model}': prefix it with its provider, e.g. "
                        "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.1"
                    ) from None
                if isinstance(exc, ll.ContextWindowExceededError):
                    raise CallFailed(
                        f"the prompt exceeds the model's context window; pass --context-tokens with the "
                        f"model's real window so the transcript is cut to fit ({_short(exc, 160)})",
                        attempts, (time.perf_counter() - started) * 1000, self.format_mode) from None
                if isinstance(exc, (ll.APIError, ll.BadRequestError)) or isinstance(exc, ll.exceptions.OpenAIError):
                    raise CallFailed(f"{type(exc).__name__}: {_short(exc)}", attempts,
                                     (time.perf_counter() - started) * 1000, self.format_mode) from None
                raise
            break
        latency = (time.perf_counter() - started) * 1000
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None) or None  # litellm reports 0 when the server sent none
        completion_tokens = getattr(usage, "completion_tokens", None) or None
        if self.limiter and (prompt_tokens or completion_tokens):  # no usage reported: keep the estimate
            self.limiter.settle(estimate, (prompt_tokens or 0) + (completion_tokens or 0))
        text, reasoning, finish_reason, note = _reply_parts(response)
        choices = getattr(response, "choices", None) or []
        return CallResult(
            logprobs=_token_logprobs(choices[0]) if sent_top[0] and choices else None,
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=self._cost(response, prompt_tokens, completion_tokens),
            latency_ms=latency,
            transport_attempts=attempts,
            response_format=sent[0],
            finish_reason=finish_reason,
            reasoning=reasoning,
            error=note,
        )

    async def _request(self, kwargs: dict[str, Any]) -> Any:
        """One HTTP request under a total deadline. litellm's `timeout=` bounds each read only; on
        expiry the request is cancelled, which closes its connection (nothing keeps reading). Not
        `wait_for`: on Python 3.11 a reply arriving with a Ctrl-C returned the reply and swallowed the
        cancellation, and the interrupted worker went on judging."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.timeout):
                response = await self._ll.acompletion(**kwargs)
        except TimeoutError:
            message = (f"no complete reply within the {self.config.timeout:g} s deadline per request (--timeout): "
                       "the server was too slow to connect, answer or finish sending")
            if is_local(self.config.model, self.config.api_base):
                message += "; " + self._local_timeout_advice(kwargs["messages"])
            raise RequestTimeout(message) from None
        usage = getattr(response, "usage", None)
        read = getattr(usage, "prompt_tokens", None)
        if read:  # a lower bound on the server's prompt reading speed (the time includes the reply)
            self._read_rate = read / max(time.perf_counter() - started, 1e-3)
        return response

    def _local_timeout_advice(self, messages: list[dict[str, Any]]) -> str:
        """Why a local server timed out and the --timeout that fits it. Prompt reading on a CPU runs at
        10-60 tokens/s, so a 7,000-token judgment can take over 10 minutes before the first reply token."""
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)  # no tokenizer load here
        rate = self._read_rate or LOCAL_PROMPT_TOKENS_PER_S
        reply = min(self.config.max_tokens, 1000) / LOCAL_REPLY_TOKENS_PER_S
        fits = max(int(-(-(prompt / rate + reply) * 1.5 // 60)) * 60, 60)
        seen = (f"earlier replies in this run came at >= {self._read_rate:.0f} prompt tokens/s"
                if self._read_rate else f"CPU servers read prompts at {LOCAL_PROMPT_TOKENS_PER_S}-60 tokens/s")
        return (f"this local server ({self.config.api_base or self.config.model}) was sent a ~{prompt}-token prompt "
                f"and {seen}, so reading it can take ~{prompt / rate:.0f} s before the reply starts: "
                f"pass --timeout {fits} (or more), and judge one transcript at a time (concurrency 1)")

    def estimate_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Tokens a request will use, for the tpm limiter before the provider tells us: the prompt
        (the conservative heuristic) plus an expected reply of ~1,000 tokens, capped at max_tokens.
        The limiter is corrected with the real usage once the reply arrives."""
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        return tokens_for_chars(chars) + min(self.config.max_tokens, 1000)

    def context_tokens(self) -> int:
        """The model's input window: --context-tokens, else litellm's bundled map, else a safe 16k."""
        if self.config.context_tokens:
            return self.config.context_tokens
        info = _model_facts(self.config.model)[0]
        return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_CONTEXT_TOKENS)

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens by the model's tokenizer as litellm knows it, else the heuristic."""
        try:
            return int(self._ll.token_counter(model=self.config.model, messages=messages))
        except Exception:  # noqa: BLE001 - litellm raises assorted errors for models it cannot tokenise
            return sum(estimate_tokens(str(m.get("content") or "")) for m in messages)

    def price(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD: the user's prices if given (computed here: passing them to litellm would register the
        model in its process-wide price table), else litellm's map, else None (unknown)."""
        c = self.config
        if c.input_cost_per_token is not None:
            return prompt_tokens * c.input_cost_per_token + completion_tokens * (c.output_cost_per_token or 0.0)
        try:
            p, q = self._ll.cost_per_token(model=c.model, prompt_tokens=prompt_tokens,
                                          completion_tokens=completion_tokens)
            return float(p) + float(q)
        except Exception:  # noqa: BLE001 - litellm raises assorted errors for unmapped models
            return None


def _cached_tokens(response: Any) -> int:
    """Prompt tokens the provider reports it read from its prompt cache (OpenAI's
    `usage.prompt_tokens_details.cached_tokens`, which litellm also fills for Anthropic's cache reads)."""
    details = _field(getattr(response, "usage", None), "prompt_tokens_details")
    try:
        return max(int(_field(details, "cached_tokens") or 0), 0)
    except (TypeError, ValueError):
        return 0


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


def _quota_exhausted(exc: BaseException) -> bool:
    """OpenAI's 429 `insufficient_quota` is not a rate limit: waiting will not help."""
    return "insufficient_quota" in str(exc).lower()


_CREDENTIAL_HINTS = ("missing credentials", "api key", "api_key", "no auth credentials")


def _missing_credentials(exc: BaseException) -> bool:
    """Providers' SDKs report a missing key as assorted errors (the openai SDK's even arrives as a
    litellm InternalServerError): retrying cannot help, the user must set the key."""
    text = str(exc).lower()
    return any(h in text for h in _CREDENTIAL_HINTS) and any(
        w in text for w in ("missing", "must be", "not set", "not provided", "environment variable", "invalid"))


def _short(exc: BaseException, limit: int = 300) -> str:
    """One line of an error, without litellm's repeated class-name prefixes."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^(litellm\.\w+: )?(\w+Error: )?(OpenAIException - )?", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
