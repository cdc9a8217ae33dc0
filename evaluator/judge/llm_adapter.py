"""The one place that sends requests through litellm: the `ChatTransport` (see transport.py) for every
model it routes.

Why this shape:
- litellm and the openai SDK both retry by default, and they stack (see shared STACK-NOTES). We turn
  both off per call (request.py) and own a single tenacity policy: exponential backoff with jitter,
  bounded, and honouring Retry-After on 429/503. What each error means is call_errors.py's call.
- Local servers differ in structured-output support. We walk the model's capability order (normally
  `json_schema`, `json_object`, prompt-only JSON repaired by the parser) and remember a step down for
  the rest of the run. A server refusing the log-probability parameters is stepped down the same way.
- `timeout=` given to litellm bounds each socket read, so a reply trickling one byte per second is
  never timed out by it: every request also runs under a total deadline (connect to last byte).
- Capabilities, context size, token counting and prices come from litellm's bundled model map, looked
  up once per model (capabilities.py); an explicit user figure (--context-tokens, --price-in/--price-out)
  wins. Reading the reply (text, usage, cost) is reply.py's.
- Authentication errors and unknown models fail fast as JudgeUnavailable: retrying cannot help.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from evaluator.errors import JudgeUnavailable
from evaluator.judge import call_errors
from evaluator.judge.call_errors import RequestTimeout, short_error
from evaluator.judge.capabilities import _model_facts, is_local, resolve_capabilities
from evaluator.judge.litellm_client import load_litellm
from evaluator.judge.ratelimit import RateLimiter
from evaluator.judge.reply import reply_cost, reply_parts, reply_usage, token_logprobs
from evaluator.judge.request import ModelConfig, build_request
from evaluator.judge.transport import CallResult, Capabilities, estimate_message_tokens, tokens_for_chars

# Conservative speeds of a CPU-only local server (llama.cpp on 2-8 cores, 1B-8B model), for the advice
# given when a local request times out; a real measurement from this run replaces the prompt figure.
LOCAL_PROMPT_TOKENS_PER_S = 10
LOCAL_REPLY_TOKENS_PER_S = 5
DEFAULT_CONTEXT_TOKENS = 16000  # for models litellm's map does not know: safe for most local servers


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
            self._module = load_litellm()
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
                self._module = await asyncio.to_thread(load_litellm)

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

    def request_kwargs(self, messages: list[dict[str, Any]], schema: dict[str, Any], mode: str,
                       top_logprobs: int = 0, sampling: dict[str, float] | None = None) -> dict[str, Any]:
        """What this adapter sends for these messages in `mode` (a provider batch stores the same body)."""
        return build_request(self.config, self.capabilities, messages, schema, mode, top_logprobs, sampling)

    # -- stepping down -------------------------------------------------------------------------
    def _degrade(self, exc: BaseException, sent_mode: str) -> bool:
        """After the server rejected the mode a request was sent with, step down once (concurrent
        requests rejected for the same mode must not step down again) and ask to retry."""
        if not call_errors.format_rejection(self._ll, exc, sent_mode):
            return False
        if self.format_mode == sent_mode:
            order = self.capabilities.structured_output
            later = order[order.index(sent_mode) + 1:] if sent_mode in order else ()
            self.format_mode = later[0] if later else "none"
            self.fallbacks.append(f"{sent_mode} -> {self.format_mode}: {short_error(exc)}")
        return True

    def _refuse_logprobs(self, exc: BaseException, sent_top: int) -> bool:
        """A server that rejects the log-probability parameters is not asked for them again."""
        if not call_errors.logprobs_rejection(self._ll, exc, sent_top):
            return False
        if not self._logprobs_refused:
            self._logprobs_refused = True
            self.fallbacks.append(f"logprobs -> none: {short_error(exc)}")
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
            after = call_errors.retry_after(exc) if exc else None
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
                    retry=retry_if_exception(lambda e: call_errors.transient(ll, e, sent[0], sent_top[0])),
                    wait=wait, stop=stop_after_attempt(c.max_retries + 1), reraise=False,
                ):
                    with attempt:
                        attempts += 1
                        if self.limiter:
                            await self.limiter.acquire(estimate)
                        sent[0] = self.format_mode  # this request's mode (others may step it down meanwhile)
                        sent_top[0] = 0 if self._logprobs_refused else self.capabilities.top_logprobs(top_logprobs)
                        response = await self._request(self.request_kwargs(messages, schema, sent[0], sent_top[0],
                                                                           sampling))
            except RetryError as e:
                exc = e.last_attempt.exception() or e  # a failed attempt always holds its exception
                raise call_errors.retries_exhausted(ll, exc, c.model, c.api_base, attempts, _since(started),
                                                    self.format_mode) from None
            except Exception as exc:  # non-transient: degrade format, or fail fast
                if self._refuse_logprobs(exc, sent_top[0]) or self._degrade(exc, sent[0]):
                    continue
                failure = call_errors.refusal(ll, exc, c.model, attempts, _since(started), self.format_mode)
                if failure is None:
                    raise
                raise failure from None
            break
        latency = _since(started)
        prompt_tokens, completion_tokens = reply_usage(response)
        if self.limiter and (prompt_tokens or completion_tokens):  # no usage reported: keep the estimate
            self.limiter.settle(estimate, (prompt_tokens or 0) + (completion_tokens or 0))
        text, reasoning, finish_reason, note = reply_parts(response)
        choices = getattr(response, "choices", None) or []
        return CallResult(
            logprobs=token_logprobs(choices[0]) if sent_top[0] and choices else None,
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=reply_cost(self.config, response, prompt_tokens, completion_tokens),
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
        prompt = estimate_message_tokens(messages)  # no tokenizer load here
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
            return estimate_message_tokens(messages)

    def price(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD: the user's prices if given (ModelConfig.user_price), else litellm's map, else None (unknown)."""
        c = self.config
        user = c.user_price(prompt_tokens, completion_tokens)
        if user is not None:
            return user
        try:
            p, q = self._ll.cost_per_token(model=c.model, prompt_tokens=prompt_tokens,
                                          completion_tokens=completion_tokens)
            return float(p) + float(q)
        except Exception:  # noqa: BLE001 - litellm raises assorted errors for unmapped models
            return None


def _since(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading)."""
    return (time.perf_counter() - started) * 1000
